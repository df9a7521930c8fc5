//! The PromQL test-script language, parsed as Prometheus's `promqltest` reads it.
//!
//! Line handling, command recognition, the regular expressions for `eval`
//! headers and `expect` lines, and the quirks (a scalar or an
//! `expected_fail_*` line ends its block; `expect range vector` moves the
//! evaluation time to its end) follow `promql/promqltest/test.go`, so that a
//! case means here exactly what it means to Prometheus.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use tocsin_engine::Labels;
use tocsin_engine::notation::{self, SequenceValue, SeriesDescription};

/// A parsed `.test` file.
#[derive(Debug)]
pub struct Script {
    pub commands: Vec<Command>,
}

#[derive(Debug)]
pub enum Command {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
}

/// `load <interval>` or `load_with_nhcb <interval>` and its series.
#[derive(Debug)]
pub struct Load {
    pub line: usize,
    pub interval_ms: i64,
    pub with_nhcb: bool,
    /// One entry per distinct label set; a later line for the same labels
    /// replaces the earlier one, as Prometheus's map of definitions does.
    pub series: Vec<SeriesDescription>,
}

/// An `eval` command: one test case.
#[derive(Debug)]
pub struct Eval {
    /// 1-based line of the `eval` command; the case's identity.
    pub line: usize,
    pub expr: String,
    pub kind: EvalKind,
    /// The old `eval_fail`/`eval_warn`/`eval_info`/`eval_ordered` spellings.
    pub legacy_fail: bool,
    pub legacy_warn: bool,
    pub legacy_info: bool,
    pub legacy_ordered: bool,
    pub expected_fail_message: Option<String>,
    pub expected_fail_regexp: Option<Regex>,
    /// `expect fail`: at most one.
    pub expect_fail: Option<TextMatch>,
    pub expect_warn: Vec<TextMatch>,
    pub expect_info: Vec<TextMatch>,
    pub expect_no_warn: bool,
    pub expect_no_info: bool,
    pub expect_ordered: bool,
    /// `expect range vector from … to … step …` on an instant query.
    pub range_vector: Option<RangeSpec>,
    pub expected_string: String,
    /// Set by `expect range vector` and `expect string`: the result is no
    /// instant vector, so Prometheus does not re-check it as a range query.
    pub exclude_from_range_query: bool,
    pub expected: Expected,
    /// The expected-result lines as written, for failure reports.
    pub expected_text: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EvalKind {
    Instant { at_ms: i64 },
    Range(RangeSpec),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeSpec {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

/// How an expected message is given: `msg:` (exact), `regex:` (unanchored
/// search, like Go's `MatchString`), or nothing (Prometheus then uses `^.*$`).
#[derive(Clone, Debug)]
pub enum TextMatch {
    Exact(String),
    Pattern(Regex),
}

impl TextMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            TextMatch::Exact(m) => m == s,
            TextMatch::Pattern(r) => r.is_match(s),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TextMatch::Exact(m) => format!("message {m:?}"),
            TextMatch::Pattern(r) => format!("pattern {:?}", r.as_str()),
        }
    }
}

/// The expected result of a case.
#[derive(Debug, Default)]
pub struct Expected {
    /// A bare number line: the result must be this scalar.
    pub scalar: Option<f64>,
    /// Expected series by label set, with their 1-based line position (for
    /// ordered results) and values.
    pub series: HashMap<Labels, ExpectedSeries>,
}

#[derive(Debug)]
pub struct ExpectedSeries {
    pub labels: Labels,
    pub pos: usize,
    pub values: Vec<SequenceValue>,
}

impl Eval {
    pub fn is_fail(&self) -> bool {
        self.legacy_fail || self.expect_fail.is_some()
    }

    pub fn is_ordered(&self) -> bool {
        self.legacy_ordered || self.expect_ordered
    }

    pub fn is_instant(&self) -> bool {
        matches!(self.kind, EvalKind::Instant { .. })
    }

    /// Whether an expected value is a native histogram `{{…}}`.
    pub fn expects_native_histograms(&self) -> bool {
        self.expected
            .series
            .values()
            .flat_map(|s| &s.values)
            .any(|v| matches!(v, SequenceValue::Histogram(_)))
    }
}

/// A parse error with its 1-based line.
#[derive(Debug)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

// Go's RE2 `\s` is ASCII whitespace; Rust's is Unicode, so spell it out.
macro_rules! go_re {
    ($pat:expr) => {
        LazyLock::new(|| {
            Regex::new(&$pat.replace(r"\s", r"[\t\n\x0C\r ]")).expect("static regex is valid")
        })
    };
}

static PAT_LOAD: LazyLock<Regex> = go_re!(r"^load(?:_(with_nhcb))?\s+(.+?)$");
static PAT_EVAL_INSTANT: LazyLock<Regex> =
    go_re!(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$");
static PAT_EVAL_RANGE: LazyLock<Regex> =
    go_re!(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$");
static PAT_EXPECT: LazyLock<Regex> =
    go_re!(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$");
static PAT_EXPECT_RANGE: LazyLock<Regex> =
    go_re!(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$");
static PAT_SPACE: LazyLock<Regex> = go_re!(r"[\t ]+");

const RANGE_VECTOR_PREFIX: &str = "expect range vector";
const EXPECT_STRING_PREFIX: &str = "expect string";

/// Parses a whole script. Any error is fatal for the file, as in Prometheus.
pub fn parse(input: &str) -> Result<Script, ScriptError> {
    // Lines are trimmed and full-line comments blanked, so a comment ends a block.
    let lines: Vec<&str> = input
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { "" } else { l }
        })
        .collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = PAT_SPACE.split(l).next().unwrap_or("").to_ascii_lowercase();
        let (next, cmd) = if first == "clear" {
            (i, Command::Clear)
        } else if first.starts_with("load") {
            let (next, load) = parse_load(&lines, i)?;
            (next, Command::Load(load))
        } else if first.starts_with("eval") {
            let (next, eval) = parse_eval(&lines, i)?;
            (next, Command::Eval(Box::new(eval)))
        } else {
            return Err(err(i, format!("invalid command {l:?}")));
        };
        commands.push(cmd);
        i = next + 1;
    }
    Ok(Script { commands })
}

fn err(i: usize, message: impl Into<String>) -> ScriptError {
    ScriptError { line: i + 1, message: message.into() }
}

/// Returns the index of the last line consumed.
fn parse_load(lines: &[&str], mut i: usize) -> Result<(usize, Load), ScriptError> {
    let caps = PAT_LOAD
        .captures(lines[i])
        .ok_or_else(|| err(i, "invalid load command. (load[_with_nhcb] <step:duration>)"))?;
    let with_nhcb = caps.get(1).is_some();
    let step = caps.get(2).map_or("", |m| m.as_str());
    let interval_ms = parse_duration(step)
        .map_err(|e| err(i, format!("invalid step definition {step:?}: {e}")))?;
    let mut load = Load { line: i + 1, interval_ms, with_nhcb, series: Vec::new() };
    let mut index: HashMap<Labels, usize> = HashMap::new();
    while i + 1 < lines.len() && !lines[i + 1].is_empty() {
        i += 1;
        let def = lines[i];
        if is_start_timestamp_line(def) {
            // `metric@st offsets…` gives start timestamps for the next line's
            // samples. tocsin stores none; only start_timestamps.test (out of
            // scope) uses them. Its metric must still parse.
            let metric = def.split([' ', '\t']).next().unwrap_or("");
            notation::parse_metric(metric.trim_end_matches("@st"))
                .map_err(|e| err(i, format!("invalid @st line: {e}")))?;
            continue;
        }
        let desc = notation::parse_series(def).map_err(|e| err(i, e.to_string()))?;
        match index.get(&desc.labels) {
            Some(&k) => load.series[k] = desc,
            None => {
                index.insert(desc.labels.clone(), load.series.len());
                load.series.push(desc);
            }
        }
    }
    Ok((i, load))
}

/// Prometheus's `isSTLine`: the first word ends in `@st`.
fn is_start_timestamp_line(line: &str) -> bool {
    line.split_once([' ', '\t']).is_some_and(|(head, _)| head.ends_with("@st"))
}

fn parse_eval(lines: &[&str], mut i: usize) -> Result<(usize, Eval), ScriptError> {
    let header = lines[i];
    let line = i + 1;
    let (modifier, expr, kind) = if let Some(c) = PAT_EVAL_INSTANT.captures(header) {
        let at = c.get(2).map_or("", |m| m.as_str());
        let expr = c.get(3).map_or("", |m| m.as_str());
        let at_ms = parse_duration(at).map_err(|e| {
            err(
                i,
                format!(
                    "error in eval {expr} (line {line}): invalid timestamp definition {at:?}: {e}"
                ),
            )
        })?;
        (c.get(1).map(|m| m.as_str()), expr, EvalKind::Instant { at_ms })
    } else if let Some(c) = PAT_EVAL_RANGE.captures(header) {
        let get = |k| c.get(k).map_or("", |m| m.as_str());
        let expr = get(5);
        let range = parse_range(get(2), get(3), get(4))
            .map_err(|e| err(i, format!("error in eval {expr} (line {line}): {e}")))?;
        (c.get(1).map(|m| m.as_str()), expr, EvalKind::Range(range))
    } else {
        return Err(err(
            i,
            "invalid evaluation command. Must be either 'eval[_fail|_warn|_ordered] instant [at <offset:duration>] <query>' or 'eval[_fail|_warn] range from <from> to <to> step <step> <query>'",
        ));
    };
    let mut ev = Eval {
        line,
        expr: expr.to_owned(),
        kind,
        legacy_fail: modifier == Some("fail"),
        legacy_warn: modifier == Some("warn"),
        legacy_info: modifier == Some("info"),
        legacy_ordered: modifier == Some("ordered"),
        expected_fail_message: None,
        expected_fail_regexp: None,
        expect_fail: None,
        expect_warn: Vec::new(),
        expect_info: Vec::new(),
        expect_no_warn: false,
        expect_no_info: false,
        expect_ordered: false,
        range_vector: None,
        expected_string: String::new(),
        exclude_from_range_query: false,
        expected: Expected::default(),
        expected_text: Vec::new(),
    };
    let fail_ctx =
        |i: usize, msg: String| err(i, format!("error in eval {expr} (line {line}): {msg}"));

    // `j` is the position of a result line; `expect <type>` lines do not
    // count, the `expect range vector`/`expect string` lines do (as in Go).
    let mut j = 1usize;
    while i + 1 < lines.len() && !lines[i + 1].is_empty() {
        i += 1;
        let def = lines[i];
        if ev.legacy_fail
            && let Some(rest) = def.strip_prefix("expected_fail_message")
        {
            ev.expected_fail_message = Some(rest.trim().to_owned());
            break;
        }
        if ev.legacy_fail
            && let Some(rest) = def.strip_prefix("expected_fail_regexp")
        {
            let pattern = rest.trim();
            let re = Regex::new(pattern).map_err(|e| {
                fail_ctx(i, format!("invalid regexp '{pattern}' for expected_fail_regexp: {e}"))
            })?;
            ev.expected_fail_regexp = Some(re);
            break;
        }
        if def.starts_with(RANGE_VECTOR_PREFIX) {
            let c = PAT_EXPECT_RANGE
                .captures(def)
                .ok_or_else(|| fail_ctx(i, format!("invalid range vector definition {def:?}")))?;
            let get = |k| c.get(k).map_or("", |m| m.as_str());
            let range = parse_range(get(1), get(2), get(3)).map_err(|e| fail_ctx(i, e))?;
            ev.range_vector = Some(range);
            // It replaces the evaluation's own range; an instant query then
            // runs at the end of the expected range.
            ev.kind = match ev.kind {
                EvalKind::Instant { .. } => EvalKind::Instant { at_ms: range.end_ms },
                EvalKind::Range(_) => EvalKind::Range(range),
            };
            ev.exclude_from_range_query = true;
            j += 1;
            continue;
        }
        if def.starts_with(EXPECT_STRING_PREFIX) {
            ev.expected_string = parse_expect_string(def).map_err(|e| fail_ctx(i, e))?;
            ev.exclude_from_range_query = true;
            j += 1;
            continue;
        }
        if def.split(' ').next() == Some("expect") {
            parse_expect(&mut ev, def).map_err(|e| fail_ctx(i, e))?;
            continue;
        }
        ev.expected_text.push(def.to_owned());
        if let Ok(v) = notation::parse_scalar(def) {
            ev.expected.scalar = Some(v);
            break;
        }
        let desc = notation::parse_series(def).map_err(|e| err(i, e.to_string()))?;
        if desc.values.len() > 1 && ev.is_instant() && ev.range_vector.is_none() {
            return Err(fail_ctx(
                i,
                "expecting multiple values in instant evaluation not allowed. consider using 'expect range vector' directive to enable a range vector result for an instant query".into(),
            ));
        }
        // A metric line after a scalar cannot happen (a scalar ends the
        // block), so this only ever replaces an earlier line for the same labels.
        ev.expected.series.insert(
            desc.labels.clone(),
            ExpectedSeries { labels: desc.labels, pos: j, values: desc.values },
        );
        j += 1;
    }
    Ok((i, ev))
}

fn parse_expect(ev: &mut Eval, def: &str) -> Result<(), String> {
    let c = PAT_EXPECT.captures(def.trim()).ok_or(
        "invalid expect statement, must match `expect <type> <match_type>: <string>` format",
    )?;
    let mode = c.get(1).map_or("", |m| m.as_str());
    let m = match (c.get(2).map(|m| m.as_str()), c.get(3).map(|m| m.as_str().trim())) {
        (Some("msg"), Some(text)) => TextMatch::Exact(text.to_owned()),
        (Some("regex"), Some(pattern)) => TextMatch::Pattern(
            Regex::new(pattern).map_err(|_| format!("invalid regex {pattern} for {mode}"))?,
        ),
        _ => TextMatch::Pattern(Regex::new("^.*$").map_err(|e| e.to_string())?),
    };
    match mode {
        "ordered" => ev.expect_ordered = true,
        "fail" if ev.expect_fail.is_some() => {
            return Err("invalid expect lines, multiple expect fail lines are not allowed".into());
        }
        "fail" => ev.expect_fail = Some(m),
        "warn" => ev.expect_warn.push(m),
        "info" => ev.expect_info.push(m),
        "no_warn" => ev.expect_no_warn = true,
        "no_info" => ev.expect_no_info = true,
        other => return Err(format!("invalid expected error/annotation type {other}")),
    }
    if !ev.expect_info.is_empty() && ev.expect_no_info {
        return Err("invalid expect lines, info and no_info cannot be used together".into());
    }
    if !ev.expect_warn.is_empty() && ev.expect_no_warn {
        return Err("invalid expect lines, warn and no_warn cannot be used together".into());
    }
    Ok(())
}

fn parse_expect_string(def: &str) -> Result<String, String> {
    const MISSING: &str = "expected string literal not valid - a quoted string literal is required";
    if def == EXPECT_STRING_PREFIX {
        return Err(MISSING.into());
    }
    let literal = def.strip_prefix("expect string ").unwrap_or(def);
    if literal.is_empty() {
        return Err(MISSING.into());
    }
    // Prometheus uses Go's strconv.Unquote, which reads '…' as one rune only;
    // PromQL's unquoting (used here) also takes longer single-quoted strings.
    // No script relies on that difference.
    notation::unquote(literal).map_err(|_| {
        "expected string literal not valid - check that the string is correctly quoted".into()
    })
}

fn parse_range(from: &str, to: &str, step: &str) -> Result<RangeSpec, String> {
    let start_ms = parse_duration(from)
        .map_err(|e| format!("invalid start timestamp definition {from:?}: {e}"))?;
    let end_ms =
        parse_duration(to).map_err(|e| format!("invalid end timestamp definition {to:?}: {e}"))?;
    if end_ms < start_ms {
        return Err(format!(
            "invalid test definition, end timestamp ({to}) is before start timestamp ({from})"
        ));
    }
    let step_ms =
        parse_duration(step).map_err(|e| format!("invalid step definition {step:?}: {e}"))?;
    Ok(RangeSpec { start_ms, end_ms, step_ms })
}

pub use tocsin_engine::duration::parse_duration;
