//! Checking a query's outcome against a case's expectations, with the rules
//! and the order of checks of Prometheus's `promqltest` (`execInstantEval`,
//! `checkExpectedFailure`, `checkAnnotations`, `compareResult`).

use std::collections::HashSet;

use tocsin_engine::gofmt::format_float_g;
use tocsin_engine::is_stale_nan;
use tocsin_engine::notation::SequenceValue;
use tocsin_engine::promql::{InstantSample, QueryResult, Series, Value};
use tocsin_engine::{Labels, Sample};

use crate::script::{Eval, ExpectedSeries, TextMatch};

/// Relative error allowed between an expected and an actual float.
pub const EPSILON: f64 = 0.000001;

pub use tocsin_engine::sample::almost_equal;

/// What one evaluation returned, as seen from outside the engine.
#[derive(Debug)]
pub enum Outcome {
    Ok(QueryResult),
    /// The engine's error message.
    Err(String),
    /// The engine panicked; never an acceptable answer, not even to `expect fail`.
    Panicked(String),
    TimedOut(std::time::Duration),
}

/// The timestamps a matrix result is expected at: `start + i*step` up to `end`.
/// `end` is `None` for an instant query without `expect range vector`, where
/// Prometheus compares against its zero time, so no point can be expected.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub start_ms: i64,
    pub step_ms: i64,
    pub end_ms: Option<i64>,
}

/// Checks one evaluation of `query` (the case's expression or a variant of it)
/// against the case. `Err` carries the reason for a failure.
pub fn check(ev: &Eval, query: &str, outcome: &Outcome, frame: Frame) -> Result<(), String> {
    let res = match outcome {
        Outcome::Panicked(msg) => return Err(format!("engine panicked: {msg}")),
        Outcome::TimedOut(d) => return Err(format!("engine did not answer within {d:?}")),
        Outcome::Err(e) if ev.is_fail() => return check_expected_failure(ev, e),
        Outcome::Err(e) => return Err(format!("error evaluating query {query:?}: {e}")),
        Outcome::Ok(res) => res,
    };
    if ev.is_fail() {
        return Err(format!("expected error evaluating query {query:?} but got none"));
    }
    check_annotations(ev, query, res)?;
    compare_result(ev, &res.value, frame)
}

fn check_expected_failure(ev: &Eval, actual: &str) -> Result<(), String> {
    let q = &ev.expr;
    if let Some(m) = &ev.expected_fail_message
        && m != actual
    {
        return Err(format!("expected error {m:?} evaluating query {q:?}, but got: {actual}"));
    }
    if let Some(re) = &ev.expected_fail_regexp
        && !re.is_match(actual)
    {
        return Err(format!(
            "expected error matching pattern {:?} evaluating query {q:?}, but got: {actual}",
            re.as_str()
        ));
    }
    if let Some(m) = &ev.expect_fail
        && !m.matches(actual)
    {
        return Err(format!(
            "expected error matching {} evaluating query {q:?}, but got: {actual}",
            m.describe()
        ));
    }
    Ok(())
}

/// Warnings and infos are only checked when the case says something about
/// them; unmentioned annotations are fine, as in Prometheus.
pub fn check_annotations(ev: &Eval, query: &str, res: &QueryResult) -> Result<(), String> {
    if ev.legacy_warn && res.warnings.is_empty() {
        return Err(format!("expected warnings evaluating query {query:?} but got none"));
    }
    if ev.legacy_info && res.infos.is_empty() {
        return Err(format!("expected info annotations evaluating query {query:?} but got none"));
    }
    check_annotations_of_type(query, &ev.expect_warn, &res.warnings, "warn")?;
    check_annotations_of_type(query, &ev.expect_info, &res.infos, "info")?;
    if ev.expect_no_warn && !res.warnings.is_empty() {
        return Err(format!(
            "unexpected warning annotations evaluating query {query:?}: {:?}",
            res.warnings
        ));
    }
    if ev.expect_no_info && !res.infos.is_empty() {
        return Err(format!(
            "unexpected info annotations evaluating query {query:?}: {:?}",
            res.infos
        ));
    }
    Ok(())
}

/// Every expectation matches some annotation and every annotation matches
/// some expectation.
fn check_annotations_of_type(
    query: &str,
    expected: &[TextMatch],
    actual: &[String],
    kind: &str,
) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!("expected {kind} annotations but none were found for query {query:?}"));
    }
    for e in expected {
        if !actual.iter().any(|a| e.matches(a)) {
            return Err(format!(
                "expected {kind} annotation matching {} but no matching annotation was found for query {query:?}, found: {actual:?}",
                e.describe()
            ));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.matches(a)) {
            return Err(format!("unexpected {kind} annotation {a:?} found for query {query:?}"));
        }
    }
    Ok(())
}

/// Compares a value with the expected result lines.
pub fn compare_result(ev: &Eval, value: &Value, frame: Frame) -> Result<(), String> {
    match value {
        Value::Matrix(m) => compare_matrix(ev, m, frame),
        Value::Vector(v) => compare_vector(ev, v),
        Value::Scalar { v, .. } => compare_scalar(ev, *v, &render_value(value)),
        Value::String { s, .. } => {
            if ev.expected_string == *s {
                Ok(())
            } else {
                Err(format!("expected string {:?} but got {s:?}", ev.expected_string))
            }
        }
    }
}

fn compare_scalar(ev: &Eval, v: f64, rendered: &str) -> Result<(), String> {
    let Some(want) = ev.expected.scalar else {
        return Err(format!("expected vector or matrix result, but got {rendered}"));
    };
    if !almost_equal(want, v, EPSILON) {
        return Err(format!("expected scalar {} but got {}", g(want), g(v)));
    }
    Ok(())
}

fn compare_vector(ev: &Eval, vector: &[InstantSample]) -> Result<(), String> {
    if ev.expected.scalar.is_some() {
        return Err(format!("expected scalar result, but got vector {}", render_vector(vector)));
    }
    let mut seen = HashSet::new();
    for (pos, s) in vector.iter().enumerate() {
        let Some(exp) = ev.expected.series.get(&s.labels) else {
            return Err(format!("unexpected metric {} in result, has value {}", s.labels, g(s.v)));
        };
        if ev.is_ordered() && exp.pos != pos + 1 {
            return Err(format!(
                "expected metric {} with {} at position {} but was at {}",
                s.labels,
                render_values(&exp.values),
                exp.pos,
                pos + 1
            ));
        }
        let want = match exp.values.first() {
            Some(SequenceValue::Float(f)) => *f,
            // Prometheus reads an omitted value as its zero value.
            Some(SequenceValue::Omitted) => 0.0,
            Some(SequenceValue::Histogram(_)) => {
                return Err(format!(
                    "expected a native histogram for {} but got float value {}",
                    s.labels,
                    g(s.v)
                ));
            }
            None => return Err(format!("the expected line for {} has no value", s.labels)),
        };
        if !almost_equal(want, s.v, EPSILON) {
            return Err(format!("expected {} for {} but got {}", g(want), s.labels, g(s.v)));
        }
        seen.insert(&s.labels);
    }
    missing(ev, &seen)
}

fn compare_matrix(ev: &Eval, matrix: &[Series], frame: Frame) -> Result<(), String> {
    if ev.is_ordered() {
        return Err("expected ordered result, but query returned a matrix".into());
    }
    if ev.expected.scalar.is_some() {
        return Err(format!("expected scalar result, but got matrix {}", render_matrix(matrix)));
    }
    assert_matrix_sorted(matrix)?;
    let mut seen = HashSet::new();
    for s in matrix {
        let Some(exp) = ev.expected.series.get(&s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has {}",
                s.labels,
                render_points(&s.points)
            ));
        };
        seen.insert(&s.labels);
        let mut want: Vec<Sample> = Vec::new();
        let mut histograms = 0;
        for (i, v) in exp.values.iter().enumerate() {
            let t = frame.start_ms.saturating_add(frame.step_ms.saturating_mul(i as i64));
            if frame.end_ms.is_none_or(|end| t > end) {
                return Err(format!(
                    "expected {} points for {}, but query time range cannot return this many points",
                    exp.values.len(),
                    exp.labels
                ));
            }
            match v {
                SequenceValue::Float(f) => want.push(Sample::new(t, *f)),
                SequenceValue::Omitted => {}
                SequenceValue::Histogram(_) => histograms += 1,
            }
        }
        if want.len() != s.points.len() || histograms != 0 {
            return Err(format!(
                "expected {} float points and {histograms} histogram points for {}, but got {}",
                want.len(),
                exp.labels,
                render_points(&s.points)
            ));
        }
        for (i, (w, got)) in want.iter().zip(&s.points).enumerate() {
            if w.t != got.t {
                return Err(format!(
                    "expected float value at index {i} for {} to have timestamp {}, but it had timestamp {} (result has {})",
                    exp.labels,
                    w.t,
                    got.t,
                    render_points(&s.points)
                ));
            }
            if !almost_equal(got.v, w.v, EPSILON) {
                return Err(format!(
                    "expected float value at index {i} (t={}) for {} to be {}, but got {} (result has {})",
                    got.t,
                    exp.labels,
                    g(w.v),
                    g(got.v),
                    render_points(&s.points)
                ));
            }
        }
    }
    missing(ev, &seen)
}

/// Fails on the first expected series (in script order) that was not seen.
fn missing(ev: &Eval, seen: &HashSet<&Labels>) -> Result<(), String> {
    let mut unseen: Vec<&ExpectedSeries> =
        ev.expected.series.values().filter(|e| !seen.contains(&e.labels)).collect();
    unseen.sort_by_key(|e| e.pos);
    match unseen.first() {
        Some(e) => {
            Err(format!("expected metric {} with {} not found", e.labels, render_values(&e.values)))
        }
        None => Ok(()),
    }
}

/// Range query results are sorted by labels, always.
pub fn assert_matrix_sorted(m: &[Series]) -> Result<(), String> {
    for (i, w) in m.windows(2).enumerate() {
        if w[0].labels > w[1].labels {
            return Err(format!(
                "matrix results should always be sorted by labels, but matrix is not sorted: series at index {} with labels {} sorts before series at index {i} with labels {}",
                i + 1,
                w[1].labels,
                w[0].labels
            ));
        }
    }
    Ok(())
}

/// The check Prometheus makes after every successful instant query: the same
/// query as a range query from `t-1m` to `t+1m` with a 1m step must give the
/// expected result at its middle step. `range` is the range query's outcome.
pub fn check_range_mode(ev: &Eval, query: &str, t_ms: i64, range: &Outcome) -> Result<(), String> {
    let res = match range {
        Outcome::Ok(res) => res,
        Outcome::Err(e) => {
            return Err(format!("error evaluating query {query:?} in range mode: {e}"));
        }
        Outcome::Panicked(msg) => return Err(format!("engine panicked in range mode: {msg}")),
        Outcome::TimedOut(d) => {
            return Err(format!("engine did not answer within {d:?} in range mode"));
        }
    };
    // Range results are sorted by labels, so an ordered expectation cannot be
    // compared; Prometheus only requires that the range query succeeds.
    if ev.is_ordered() {
        return Ok(());
    }
    let Value::Matrix(matrix) = &res.value else {
        return Err(format!("range query returned {} instead of a matrix", kind(&res.value)));
    };
    assert_matrix_sorted(matrix)?;
    let vector: Vec<InstantSample> = matrix
        .iter()
        .filter_map(|s| {
            s.points
                .iter()
                .find(|p| p.t == t_ms)
                .map(|p| InstantSample::float(s.labels.clone(), p.t, p.v))
        })
        .collect();
    // Prometheus re-wraps the middle step as the instant query's type; a
    // passing instant query returned a scalar exactly when a scalar is expected.
    let outcome = if ev.expected.scalar.is_some() {
        match vector.first() {
            Some(s) => compare_scalar(ev, s.v, &format!("scalar: {}", g(s.v))),
            None => Err("range mode returned no point at the evaluation time".into()),
        }
    } else {
        compare_vector(ev, &vector)
    };
    outcome.map_err(|e| format!("range mode: {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Scalar { .. } => "a scalar",
        Value::String { .. } => "a string",
        Value::Vector(_) => "a vector",
        Value::Matrix(_) => "a matrix",
    }
}

/// Go's `%v` of a float64.
fn g(v: f64) -> String {
    format_float_g(v)
}

fn render_values(values: &[SequenceValue]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            SequenceValue::Omitted => "_".to_owned(),
            SequenceValue::Float(f) if is_stale_nan(*f) => "stale".to_owned(),
            SequenceValue::Float(f) => g(*f),
            SequenceValue::Histogram(_) => "{{...}}".to_owned(),
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

fn render_points(points: &[Sample]) -> String {
    let parts: Vec<String> = points.iter().map(|p| format!("{} @[{}]", g(p.v), p.t)).collect();
    let plural = if points.len() == 1 { "" } else { "s" };
    format!("{} float point{plural} [{}]", points.len(), parts.join(" "))
}

fn render_vector(v: &[InstantSample]) -> String {
    let parts: Vec<String> =
        v.iter().map(|s| format!("{} => {} @[{}]", s.labels, g(s.v), s.t)).collect();
    parts.join("\n")
}

fn render_matrix(m: &[Series]) -> String {
    let parts: Vec<String> =
        m.iter().map(|s| format!("{} =>\n{}", s.labels, render_points(&s.points))).collect();
    parts.join("\n")
}

/// A readable rendering of a whole value, for `-v` failure reports.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::Scalar { t, v } => format!("scalar: {} @[{t}]", g(*v)),
        Value::String { t, s } => format!("string: {s:?} @[{t}]"),
        Value::Vector(v) if v.is_empty() => "empty vector".to_owned(),
        Value::Vector(v) => render_vector(v),
        Value::Matrix(m) if m.is_empty() => "empty matrix".to_owned(),
        Value::Matrix(m) => render_matrix(m),
    }
}

/// A readable rendering of an outcome, for `-v` failure reports.
pub fn render_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ok(r) => {
            let mut s = render_value(&r.value);
            for w in &r.warnings {
                s.push_str(&format!("\nwarning: {w}"));
            }
            for i in &r.infos {
                s.push_str(&format!("\ninfo: {i}"));
            }
            s
        }
        Outcome::Err(e) => format!("error: {e}"),
        Outcome::Panicked(m) => format!("panic: {m}"),
        Outcome::TimedOut(d) => format!("no answer within {d:?}"),
    }
}
