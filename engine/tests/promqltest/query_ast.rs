//! What the runner needs to know about a query's syntax: which series its
//! selectors can match (to recognise native-histogram cases) and its `@`
//! variants (Prometheus's step-invariance re-runs). Parsed with promql-parser,
//! the parser the engine uses too.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, AtModifier, BinModifier, Expr, LabelModifier, VectorSelector};
use regex::Regex;
use tocsin_engine::Labels;
use tocsin_engine::labels::METRIC_NAME;
use tocsin_engine::matcher::{MatchOp, Matcher, matches_all};

/// One vector selector: it selects a series if any group of matchers
/// (`{a="1" or b="2"}` has two) all match.
#[derive(Debug)]
pub struct Selector {
    groups: Vec<Vec<Matcher>>,
}

impl Selector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.groups.iter().any(|g| matches_all(g, labels))
    }
}

/// Every vector and matrix selector of `expr`, including those in subqueries.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let ast = parser::parse(expr)?;
    let mut out = Vec::new();
    collect_selectors(&ast, &mut out)?;
    Ok(out)
}

fn collect_selectors(e: &Expr, out: &mut Vec<Selector>) -> Result<(), String> {
    for child in children(e) {
        collect_selectors(child, out)?;
    }
    match e {
        Expr::VectorSelector(vs) => out.push(selector(vs)?),
        Expr::MatrixSelector(ms) => out.push(selector(&ms.vs)?),
        _ => {}
    }
    Ok(())
}

fn selector(vs: &VectorSelector) -> Result<Selector, String> {
    let convert = |m: &promql_parser::label::Matcher| {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::Regex,
            PMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        Matcher::new(op, m.name.as_str(), m.value.as_str()).map_err(|e| e.to_string())
    };
    let common: Vec<Matcher> = vs
        .name
        .iter()
        .map(|n| Ok(Matcher::equal(METRIC_NAME, n.as_str())))
        .chain(vs.matchers.matchers.iter().map(convert))
        .collect::<Result<_, String>>()?;
    if vs.matchers.or_matchers.is_empty() {
        return Ok(Selector { groups: vec![common] });
    }
    let mut groups = Vec::new();
    for g in &vs.matchers.or_matchers {
        let mut group = common.clone();
        for m in g {
            group.push(convert(m)?);
        }
        groups.push(group);
    }
    Ok(Selector { groups })
}

fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Aggregate(a) => {
            let mut v: Vec<&Expr> = vec![&a.expr];
            v.extend(a.param.as_deref());
            v
        }
        Expr::Unary(u) => vec![&u.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Subquery(s) => vec![&s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => Vec::new(),
    }
}

/// The identifiers (metric names, function names, keywords, label names)
/// that occur in a query's text outside string literals.
pub fn identifiers(expr: &str) -> HashSet<String> {
    static STRING_OR_WORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|([a-zA-Z_:][a-zA-Z0-9_:]*)"#)
            .expect("static regex is valid")
    });
    STRING_OR_WORD
        .captures_iter(expr)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
        .collect()
}

/// Functions whose result changes with the evaluation time even when their
/// arguments do not (Prometheus's `AtModifierUnsafeFunctions`).
const AT_MODIFIER_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
];

/// Functions that read the query's own start, end, range or step; their
/// instant result cannot be compared with a range query's middle step.
pub static QUERY_CONTEXT_FUNCTIONS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(start|end|range|step)\(\)").expect("static regex is valid"));

/// Prometheus's `atModifierTestCases`: the query with `@ t` on every selector
/// and subquery outside subqueries (unless it already has a numeric `@`),
/// to be evaluated at other times where it must give the same result.
/// `Ok(None)` when the query uses a function that makes this meaningless.
pub fn at_modifier_variants(expr: &str, t_ms: i64) -> Result<Option<Vec<(String, i64)>>, String> {
    // Parsed the way the engine parses (Go string literals decoded first); a
    // query the engine cannot parse has no variants, it fails as it is.
    let Ok(mut ast) = tocsin_engine::promql::parse(expr) else { return Ok(None) };
    if uses_unsafe_function(&ast) {
        return Ok(None);
    }
    let Ok(ms) = u64::try_from(t_ms) else {
        // promql-parser prints times before 1970 as 0.
        return Err(format!("cannot print an @ modifier for negative time {t_ms}"));
    };
    set_at(&mut ast, SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    let printed = ast.to_string();
    // The variants test the engine only if the printed query says what the
    // modified tree says; a printer bug must not pass for an engine bug.
    let reparsed = parser::parse(&printed)
        .map_err(|e| format!("promql-parser cannot re-read its own output {printed:?}: {e}"))?;
    if format!("{:?}", normalized(reparsed)) != format!("{:?}", normalized(ast)) {
        return Err(format!("promql-parser prints the @ variant unfaithfully as {printed:?}"));
    }
    let times = if t_ms == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t_ms, 0, t_ms / 5, t_ms, 10 * t_ms]
    };
    Ok(Some(times.into_iter().map(|t| (printed.clone(), t)).collect()))
}

/// The tree with what the printer legitimately changes made canonical:
/// matcher order, and empty `by ()`/`ignoring ()` (the same as none).
/// Whatever else differs is reported, not excused.
fn normalized(mut e: Expr) -> Expr {
    normalize(&mut e);
    e
}

fn normalize(e: &mut Expr) {
    let sort = |vs: &mut VectorSelector| {
        let key =
            |m: &promql_parser::label::Matcher| (m.name.clone(), m.op.to_string(), m.value.clone());
        vs.matchers.matchers.sort_by_key(key);
        for g in &mut vs.matchers.or_matchers {
            g.sort_by_key(key);
        }
    };
    match e {
        Expr::VectorSelector(vs) => sort(vs),
        Expr::MatrixSelector(ms) => sort(&mut ms.vs),
        Expr::Aggregate(a) => {
            if matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.labels.is_empty()) {
                a.modifier = None;
            }
        }
        Expr::Binary(b) => {
            if let Some(m) = &mut b.modifier
                && matches!(&m.matching, Some(LabelModifier::Exclude(l)) if l.labels.is_empty())
            {
                m.matching = None;
            }
            if b.modifier.as_ref().is_some_and(|m| *m == BinModifier::default()) {
                b.modifier = None;
            }
        }
        _ => {}
    }
    match e {
        Expr::Aggregate(a) => {
            normalize(&mut a.expr);
            if let Some(p) = a.param.as_deref_mut() {
                normalize(p);
            }
        }
        Expr::Unary(u) => normalize(&mut u.expr),
        Expr::Binary(b) => {
            normalize(&mut b.lhs);
            normalize(&mut b.rhs);
        }
        Expr::Paren(p) => normalize(&mut p.expr),
        Expr::Subquery(s) => normalize(&mut s.expr),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| normalize(a)),
        _ => {}
    }
}

fn uses_unsafe_function(e: &Expr) -> bool {
    if let Expr::Call(c) = e
        && AT_MODIFIER_UNSAFE_FUNCTIONS.contains(&c.func.name)
    {
        return true;
    }
    children(e).into_iter().any(uses_unsafe_function)
}

/// Sets `@ at` where Prometheus's test framework does. The outermost
/// subqueries get it themselves, and what is inside them keeps its timing.
fn set_at(e: &mut Expr, at: SystemTime) {
    let fix = |slot: &mut Option<AtModifier>| {
        // `@ start()`/`@ end()` count as unset: Prometheus keeps them apart
        // from the numeric timestamp, which wins when printed.
        if !matches!(slot, Some(AtModifier::At(_))) {
            *slot = Some(AtModifier::At(at));
        }
    };
    match e {
        Expr::Aggregate(a) => {
            set_at(&mut a.expr, at);
            if let Some(p) = a.param.as_deref_mut() {
                set_at(p, at);
            }
        }
        Expr::Unary(u) => set_at(&mut u.expr, at),
        Expr::Binary(b) => {
            set_at(&mut b.lhs, at);
            set_at(&mut b.rhs, at);
        }
        Expr::Paren(p) => set_at(&mut p.expr, at),
        Expr::Subquery(s) => fix(&mut s.at),
        Expr::VectorSelector(vs) => fix(&mut vs.at),
        Expr::MatrixSelector(ms) => fix(&mut ms.vs.at),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                set_at(a, at);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
