//! Binary operators: arithmetic, comparisons, set operators, vector matching.

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::labels::{Labels, METRIC_NAME, Str};

use super::QueryError;
use super::eval::{EvalResult, Evaluator, LabelBuilder, SSeries, StepIndex, Val};

fn btos(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic operators produce a new kind of value, so the metric name goes.
fn changes_metric_schema(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW | T_ATAN2)
}

pub(crate) fn scalar_binop(op: TokenId, l: f64, r: f64) -> f64 {
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => libm::pow(l, r),
        T_MOD => l % r,
        T_EQLC => btos(l == r),
        T_NEQ => btos(l != r),
        T_GTR => btos(l > r),
        T_LSS => btos(l < r),
        T_GTE => btos(l >= r),
        T_LTE => btos(l <= r),
        T_ATAN2 => libm::atan2(l, r),
        _ => f64::NAN,
    }
}

/// The result of `l op r` for vector elements and whether the element is kept
/// (comparisons filter, keeping the left value).
fn vector_elem_binop(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (scalar_binop(op, l, r), true),
    }
}

pub(crate) fn eval_binary(ev: &mut Evaluator, be: &BinaryExpr) -> EvalResult<Val> {
    let op = be.op.id();
    let return_bool = be.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&be.lhs)?;
    let rhs = ev.eval(&be.rhs)?;
    for side in [&lhs, &rhs] {
        if let Val::Vector(series) = side {
            super::eval::reject_histograms(series, format_args!("binary operator {}", be.op))?;
        }
    }
    match (lhs, rhs) {
        (Val::Scalar(a), Val::Scalar(b)) => {
            Ok(Val::Scalar(a.iter().zip(b.iter()).map(|(x, y)| scalar_binop(op, *x, *y)).collect()))
        }
        (Val::Vector(v), Val::Scalar(s)) => vector_scalar(ev, op, v, &s, false, return_bool),
        (Val::Scalar(s), Val::Vector(v)) => vector_scalar(ev, op, v, &s, true, return_bool),
        (Val::Vector(l), Val::Vector(r)) => {
            let matching = Matching::from_expr(be);
            match op {
                T_LAND | T_LOR | T_LUNLESS => set_op(ev, op, l, r, &matching),
                _ => vector_binop(ev, op, l, r, &matching, return_bool),
            }
        }
        _ => Err(QueryError::Eval(
            "binary expression must contain only scalar and instant vector types".into(),
        )),
    }
}

fn vector_scalar(
    ev: &mut Evaluator,
    op: TokenId,
    series: Vec<SSeries>,
    scalar: &[f64],
    swap: bool,
    return_bool: bool,
) -> EvalResult<Val> {
    let drops_name = changes_metric_schema(op) || return_bool;
    let mut out = Vec::with_capacity(series.len());
    for mut s in series {
        s.points.retain_mut(|p| {
            let sv = scalar[ev.step_of(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut v, mut keep) = vector_elem_binop(op, l, r);
            // A comparison always yields the vector's own value.
            if is_comparison(op) && swap {
                v = r;
            }
            if return_bool {
                v = btos(keep);
                keep = true;
            }
            p.v = v;
            keep
        });
        if s.points.is_empty() {
            continue;
        }
        if drops_name {
            s.drop_name = true;
        }
        out.push(s);
    }
    Ok(Val::Vector(ev.drop_names_now(out)?))
}

/// How the two sides of a vector operation are matched.
struct Matching {
    card: Card,
    /// `on(...)` (true) or `ignoring(...)` (false).
    on: bool,
    /// The sorted labels named in on/ignoring.
    names: Vec<Str>,
    /// Labels copied from the "one" side by group_left/group_right.
    include: Vec<Str>,
}

#[derive(Clone, Copy, PartialEq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

impl Matching {
    fn from_expr(be: &BinaryExpr) -> Self {
        let set_op = matches!(be.op.id(), T_LAND | T_LOR | T_LUNLESS);
        let (mut card, mut include) =
            (if set_op { Card::ManyToMany } else { Card::OneToOne }, vec![]);
        let (mut on, mut names) = (false, vec![]);
        if let Some(m) = &be.modifier {
            match &m.card {
                VectorMatchCardinality::OneToOne => {}
                VectorMatchCardinality::ManyToOne(ls) => {
                    card = Card::ManyToOne;
                    include = ls.labels.iter().map(|s| Str::from(s.as_str())).collect();
                }
                VectorMatchCardinality::OneToMany(ls) => {
                    card = Card::OneToMany;
                    include = ls.labels.iter().map(|s| Str::from(s.as_str())).collect();
                }
                VectorMatchCardinality::ManyToMany => card = Card::ManyToMany,
            }
            match &m.matching {
                Some(LabelModifier::Include(ls)) => {
                    on = true;
                    names = ls.labels.iter().map(|s| Str::from(s.as_str())).collect();
                }
                Some(LabelModifier::Exclude(ls)) => {
                    names = ls.labels.iter().map(|s| Str::from(s.as_str())).collect();
                }
                None => {}
            }
        }
        if set_op {
            card = Card::ManyToMany;
        }
        crate::sort::sort(&mut names);
        names.dedup();
        Matching { card, on, names, include }
    }

    fn signature(&self, l: &Labels) -> u64 {
        if self.on { l.hash_for(&self.names) } else { l.hash_without(&self.names) }
    }

    /// The labels the match is made on, for error messages.
    fn match_labels(&self, l: &Labels) -> Labels {
        if self.on { l.keep(&self.names) } else { l.drop_with_name(&self.names) }
    }
}

/// Assigns each distinct signature of both sides a dense ordinal, once per
/// series rather than once per step.
fn signature_ordinals(
    m: &Matching,
    lhs: &[SSeries],
    rhs: &[SSeries],
) -> (Vec<u32>, Vec<u32>, usize) {
    let mut ords: hashbrown::HashMap<u64, u32, foldhash::fast::RandomState> = Default::default();
    let mut assign = |s: &SSeries| {
        let sig = m.signature(&s.labels);
        let next = ords.len() as u32;
        *ords.entry(sig).or_insert(next)
    };
    let l: Vec<u32> = lhs.iter().map(&mut assign).collect();
    let r: Vec<u32> = rhs.iter().map(&mut assign).collect();
    let n = ords.len();
    (l, r, n)
}

/// Marks the signatures of `side`'s series at this step as present,
/// remembering them so the next step can clear just those.
fn mark_present(side: &[(u32, f64)], sigs: &[u32], present: &mut [bool], touched: &mut Vec<u32>) {
    for &(si, _) in side {
        let sig = sigs[si as usize];
        present[sig as usize] = true;
        touched.push(sig);
    }
}

fn set_op(
    ev: &mut Evaluator,
    op: TokenId,
    lhs: Vec<SSeries>,
    rhs: Vec<SSeries>,
    m: &Matching,
) -> EvalResult<Val> {
    let (lsig, rsig, nsigs) = signature_ordinals(m, &lhs, &rhs);
    let lidx = StepIndex::new(ev, &lhs);
    let ridx = StepIndex::new(ev, &rhs);
    let mut present = vec![false; nsigs];
    let mut touched: Vec<u32> = Vec::new();
    let mut out = LabelBuilder::new();
    for step in 0..ev.n_steps() {
        let t = ev.ts(step);
        let (l, r) = (lidx.at(step), ridx.at(step));
        for &sig in &touched {
            present[sig as usize] = false;
        }
        touched.clear();
        match op {
            T_LAND => {
                if l.is_empty() || r.is_empty() {
                    continue;
                }
                mark_present(r, &rsig, &mut present, &mut touched);
                for &(si, v) in l {
                    if present[lsig[si as usize] as usize] {
                        let s = &lhs[si as usize];
                        out.push(&s.labels, s.drop_name, t, v)?;
                    }
                }
            }
            T_LOR => {
                for &(si, v) in l {
                    let sig = lsig[si as usize];
                    present[sig as usize] = true;
                    touched.push(sig);
                    let s = &lhs[si as usize];
                    out.push(&s.labels, s.drop_name, t, v)?;
                }
                for &(si, v) in r {
                    if !present[rsig[si as usize] as usize] {
                        let s = &rhs[si as usize];
                        out.push(&s.labels, s.drop_name, t, v)?;
                    }
                }
            }
            _ => {
                // unless
                mark_present(r, &rsig, &mut present, &mut touched);
                for &(si, v) in l {
                    if !present[lsig[si as usize] as usize] {
                        let s = &lhs[si as usize];
                        out.push(&s.labels, s.drop_name, t, v)?;
                    }
                }
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

fn vector_binop(
    ev: &mut Evaluator,
    op: TokenId,
    lhs: Vec<SSeries>,
    rhs: Vec<SSeries>,
    m: &Matching,
    return_bool: bool,
) -> EvalResult<Val> {
    // For group_right the "many" side is the right one; swap so that the
    // loop below always walks the many side and looks up the one side.
    let one_to_many = m.card == Card::OneToMany;
    let (many, one) = if one_to_many { (&rhs, &lhs) } else { (&lhs, &rhs) };
    let (many_sig, one_sig, nsigs) = signature_ordinals(m, many, one);
    let many_idx = StepIndex::new(ev, many);
    let one_idx = StepIndex::new(ev, one);

    let drop_name_now = (!ev.opts.delayed_name_removal && return_bool) || changes_metric_schema(op);
    let mut out = LabelBuilder::new();
    // Output label sets depend only on the pair of input series: cache them.
    let mut result_labels: hashbrown::HashMap<(u32, u32), Labels, foldhash::fast::RandomState> =
        Default::default();

    let mut one_present: Vec<Option<(u32, f64)>> = vec![None; nsigs];
    let mut matched_one: Vec<bool> = vec![false; nsigs];
    let mut matched_many: Vec<Vec<Labels>> = vec![Vec::new(); nsigs];
    let mut touched: Vec<u32> = Vec::new();

    for step in 0..ev.n_steps() {
        let t = ev.ts(step);
        let (ms, os) = (many_idx.at(step), one_idx.at(step));
        for &sig in &touched {
            one_present[sig as usize] = None;
            matched_one[sig as usize] = false;
            matched_many[sig as usize].clear();
        }
        touched.clear();
        if ms.is_empty() || os.is_empty() {
            continue;
        }
        for &(si, v) in os {
            let sig = one_sig[si as usize];
            if let Some((prev, _)) = one_present[sig as usize] {
                let a = one[si as usize].labels.to_string();
                let b = one[prev as usize].labels.to_string();
                let (d1, d2) = if a > b { (b, a) } else { (a, b) };
                return Err(QueryError::Eval(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    m.match_labels(&one[si as usize].labels),
                    if one_to_many { "left" } else { "right" },
                    d1,
                    d2
                )));
            }
            one_present[sig as usize] = Some((si, v));
            touched.push(sig);
        }
        for &(mi, mv) in ms {
            let sig = many_sig[mi as usize];
            let Some((oi, ov)) = one_present[sig as usize] else { continue };
            let (l, r) = if one_to_many { (ov, mv) } else { (mv, ov) };
            let (mut v, keep) = vector_elem_binop(op, l, r);
            if return_bool {
                v = btos(keep);
            }
            let labels = result_labels
                .entry((mi, oi))
                .or_insert_with(|| {
                    result_metric(
                        &many[mi as usize].labels,
                        &one[oi as usize].labels,
                        m,
                        drop_name_now,
                    )
                })
                .clone();
            if m.card == Card::OneToOne {
                if matched_one[sig as usize] {
                    return Err(QueryError::Eval(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                matched_one[sig as usize] = true;
            } else {
                if matched_many[sig as usize].contains(&labels) {
                    return Err(QueryError::Eval(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
                matched_many[sig as usize].push(labels.clone());
            }
            if !keep && !return_bool {
                continue;
            }
            let drop_name =
                return_bool || many[mi as usize].drop_name && !changes_metric_schema(op);
            out.push(&labels, drop_name, t, v)?;
        }
    }
    Ok(Val::Vector(ev.drop_names_now(out.finish())?))
}

/// The labels of an element produced from `many` and `one`, as Prometheus's
/// `resultMetric` builds them.
fn result_metric(many: &Labels, one: &Labels, m: &Matching, drop_name: bool) -> Labels {
    let mut b = many.builder();
    if drop_name {
        b.del(METRIC_NAME);
    }
    if m.card == Card::OneToOne {
        if m.on {
            let keep: Vec<String> = many
                .iter()
                .filter(|l| m.names.binary_search(&l.name).is_err())
                .map(|l| l.name.to_string())
                .collect();
            for n in keep {
                b.del(&n);
            }
        } else {
            for n in &m.names {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match one.get(n) {
            Some(v) => {
                b.set(n.clone(), v);
            }
            None => {
                b.del(n);
            }
        }
    }
    b.labels()
}
