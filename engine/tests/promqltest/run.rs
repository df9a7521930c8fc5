//! Executing a script: loading data into a fresh [`Head`] per `clear`,
//! deciding which cases are skipped and why, and running the rest.

use std::fmt;
use std::sync::Arc;

use tocsin_engine::Labels;
use tocsin_engine::labels::METRIC_NAME;
use tocsin_engine::promql::{Engine, QueryResult};
use tocsin_engine::storage::Head;

use crate::compare::{self, Frame, Outcome};
use crate::query_ast::{self, QUERY_CONTEXT_FUNCTIONS};
use crate::sandbox::Sandbox;
use crate::script::{Command, Eval, EvalKind, Load, Script};

/// One query for the engine.
#[derive(Clone, Debug)]
pub enum Query {
    Instant { expr: String, t_ms: i64 },
    Range { expr: String, start_ms: i64, end_ms: i64, step_ms: i64 },
}

/// Whatever answers queries over a head: tocsin's engine, or a stand-in in
/// the runner's self-checks.
pub trait Evaluator: Send + Sync + 'static {
    fn eval(&self, head: &Head, q: &Query) -> Result<QueryResult, String>;
}

impl Evaluator for Engine {
    fn eval(&self, head: &Head, q: &Query) -> Result<QueryResult, String> {
        let r = match q {
            Query::Instant { expr, t_ms } => self.instant(head, expr, *t_ms),
            Query::Range { expr, start_ms, end_ms, step_ms } => {
                self.range(head, expr, *start_ms, *end_ms, *step_ms)
            }
        };
        r.map_err(|e| e.to_string())
    }
}

/// Why a case was not run. Every skip has one; nothing else is skipped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The whole file tests an experimental feature outside tocsin's scope.
    Experimental(&'static str),
    /// The expected result contains `{{…}}` points.
    NativeHistogramExpected,
    /// The query selects series that were loaded with `{{…}}` points.
    NativeHistogramSeries,
    /// The query selects the native histograms with custom buckets that
    /// `load_with_nhcb` derives from classic histogram series.
    NhcbSeries,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Experimental(feature) => write!(f, "experimental feature: {feature}"),
            SkipReason::NativeHistogramExpected => {
                f.write_str("native histograms: {{...}} in the expected result")
            }
            SkipReason::NativeHistogramSeries => {
                f.write_str("native histograms: query selects series loaded with {{...}} points")
            }
            SkipReason::NhcbSeries => f.write_str(
                "native histograms: query selects NHCB series derived by load_with_nhcb",
            ),
        }
    }
}

/// The files FORMAT.md puts out of scope, with the feature each one tests.
pub fn experimental_feature(file_name: &str) -> Option<&'static str> {
    Some(match file_name {
        "info.test" => "info() function",
        "fill-modifier.test" => "fill() modifiers of binary operators",
        "extended_vectors.test" => "anchored and smoothed range selectors",
        "duration_expression.test" => "duration expressions",
        "type_and_unit.test" => "type and unit labels",
        "start_timestamps.test" => "start timestamps",
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Pass,
    Fail(String),
    Skip(SkipReason),
}

/// The separate step-invariance check of an instant case.
#[derive(Clone, Debug, PartialEq)]
pub enum Invariance {
    /// Not an instant case, skipped, or nothing to re-run (Prometheus's own
    /// exclusions: `expect string`/`range vector`, expected failures in range
    /// mode, time-dependent functions, query-context functions).
    NotApplicable,
    Pass,
    Fail(String),
}

#[derive(Debug)]
pub struct CaseReport {
    pub line: usize,
    pub expr: String,
    pub status: Status,
    pub invariance: Invariance,
    pub expected_text: Vec<String>,
    /// What the engine answered to the case's own query, for `-v`.
    pub got: Option<String>,
}

/// Data loaded since the last `clear`.
struct State {
    head: Arc<Head>,
    /// Series loaded with native-histogram points (not stored).
    native: Vec<Labels>,
    /// Series `load_with_nhcb` derives (not stored).
    nhcb: Vec<Labels>,
    /// The first sample the head refused since the last `clear`.
    load_error: Option<String>,
}

impl State {
    fn new() -> Self {
        State {
            head: Arc::new(Head::default()),
            native: Vec::new(),
            nhcb: Vec::new(),
            load_error: None,
        }
    }
}

pub struct Runner {
    evaluator: Arc<dyn Evaluator>,
    sandbox: Sandbox,
    pub step_invariance: bool,
}

impl Runner {
    pub fn new(evaluator: Arc<dyn Evaluator>, timeout: std::time::Duration) -> Self {
        Runner { evaluator, sandbox: Sandbox::new(timeout), step_invariance: true }
    }

    /// Runs every case of a script; `experimental` marks an out-of-scope file,
    /// whose cases are all skipped without loading anything.
    pub fn run_script(
        &mut self,
        script: &Script,
        experimental: Option<&'static str>,
    ) -> Vec<CaseReport> {
        let mut state = State::new();
        let mut reports = Vec::new();
        for cmd in &script.commands {
            match cmd {
                Command::Clear => state = State::new(),
                Command::Load(load) if experimental.is_none() => load_into(&mut state, load),
                Command::Load(_) => {}
                Command::Eval(ev) => {
                    let skip = match experimental {
                        Some(feature) => Some(SkipReason::Experimental(feature)),
                        None => skip_reason(&state, ev),
                    };
                    let report = match skip {
                        Some(reason) => CaseReport {
                            line: ev.line,
                            expr: ev.expr.clone(),
                            status: Status::Skip(reason),
                            invariance: Invariance::NotApplicable,
                            expected_text: ev.expected_text.clone(),
                            got: None,
                        },
                        None => self.run_case(&state, ev),
                    };
                    reports.push(report);
                }
            }
        }
        reports
    }

    fn query(&mut self, state: &State, q: Query) -> Outcome {
        let evaluator = Arc::clone(&self.evaluator);
        let head = Arc::clone(&state.head);
        self.sandbox.run(Box::new(move || evaluator.eval(&head, &q)))
    }

    fn run_case(&mut self, state: &State, ev: &Eval) -> CaseReport {
        let mut report = CaseReport {
            line: ev.line,
            expr: ev.expr.clone(),
            status: Status::Pass,
            invariance: Invariance::NotApplicable,
            expected_text: ev.expected_text.clone(),
            got: None,
        };
        if let Some(e) = &state.load_error {
            report.status = Status::Fail(e.clone());
            return report;
        }
        let expr = ev.expr.clone();
        let (outcome, frame) = match ev.kind {
            EvalKind::Range(r) => {
                let q = Query::Range {
                    expr,
                    start_ms: r.start_ms,
                    end_ms: r.end_ms,
                    step_ms: r.step_ms,
                };
                (
                    self.query(state, q),
                    Frame { start_ms: r.start_ms, step_ms: r.step_ms, end_ms: Some(r.end_ms) },
                )
            }
            EvalKind::Instant { at_ms } => {
                let frame = match ev.range_vector {
                    Some(r) => {
                        Frame { start_ms: r.start_ms, step_ms: r.step_ms, end_ms: Some(r.end_ms) }
                    }
                    None => Frame { start_ms: at_ms, step_ms: 0, end_ms: None },
                };
                (self.query(state, Query::Instant { expr, t_ms: at_ms }), frame)
            }
        };
        if let Err(e) = compare::check(ev, &ev.expr, &outcome, frame) {
            report.status = Status::Fail(e);
        }
        report.got = Some(compare::render_outcome(&outcome));
        if let (EvalKind::Instant { at_ms }, true) = (ev.kind, self.step_invariance) {
            report.invariance = match outcome {
                // A dozen more queries would only time out as well.
                Outcome::TimedOut(_) => {
                    Invariance::Fail("not run: the case's own query timed out".into())
                }
                _ => self.check_step_invariance(state, ev, at_ms, frame),
            };
        }
        report
    }

    /// Prometheus's extra instant-query checks, kept apart from the case's
    /// own result: the query in range mode, and its `@` variants at other
    /// evaluation times (each also in range mode). Stops at the first failure.
    fn check_step_invariance(
        &mut self,
        state: &State,
        ev: &Eval,
        at_ms: i64,
        frame: Frame,
    ) -> Invariance {
        let range_mode_applies = |q: &str| {
            !ev.is_fail() && !ev.exclude_from_range_query && !QUERY_CONTEXT_FUNCTIONS.is_match(q)
        };
        let mut ran_any = false;
        if range_mode_applies(&ev.expr) {
            ran_any = true;
            if let Err(e) = self.range_mode(state, ev, &ev.expr, at_ms) {
                return Invariance::Fail(e);
            }
        }
        match query_ast::at_modifier_variants(&ev.expr, at_ms) {
            Ok(None) => {}
            Ok(Some(variants)) => {
                for (q, t) in variants {
                    ran_any = true;
                    let outcome = self.query(state, Query::Instant { expr: q.clone(), t_ms: t });
                    if let Err(e) = compare::check(ev, &q, &outcome, frame) {
                        return Invariance::Fail(format!("{q} at t={t}ms: {e}"));
                    }
                    if range_mode_applies(&q)
                        && let Err(e) = self.range_mode(state, ev, &q, t)
                    {
                        return Invariance::Fail(format!("{q} at t={t}ms: {e}"));
                    }
                }
            }
            Err(e) => return Invariance::Fail(format!("cannot build the @ variants: {e}")),
        }
        if ran_any { Invariance::Pass } else { Invariance::NotApplicable }
    }

    fn range_mode(&mut self, state: &State, ev: &Eval, q: &str, t_ms: i64) -> Result<(), String> {
        let query = Query::Range {
            expr: q.to_owned(),
            start_ms: t_ms - 60_000,
            end_ms: t_ms + 60_000,
            step_ms: 60_000,
        };
        let outcome = self.query(state, query);
        compare::check_range_mode(ev, q, t_ms, &outcome)
    }
}

/// Appends a load's float series; records the native-histogram series and,
/// for `load_with_nhcb`, the series Prometheus would derive from the classic
/// histograms, so that queries reading them are recognised as out of scope.
fn load_into(state: &mut State, load: &Load) {
    for desc in &load.series {
        let samples = match desc.float_samples(0, load.interval_ms) {
            Ok(s) => s,
            Err(_) => {
                state.native.push(desc.labels.clone());
                continue;
            }
        };
        for s in samples {
            if let Err(e) = state.head.append_labels(&desc.labels, s.t, s.v)
                && state.load_error.is_none()
            {
                state.load_error = Some(format!(
                    "the head refused a sample of the load at line {}: {} at t={}: {e}",
                    load.line, desc.labels, s.t
                ));
            }
        }
    }
    if load.with_nhcb {
        for desc in &load.series {
            let has_float = desc
                .values
                .iter()
                .any(|v| matches!(v, tocsin_engine::notation::SequenceValue::Float(_)));
            if let Some(base) = nhcb_base(&desc.labels)
                && has_float
                && !state.nhcb.contains(&base)
            {
                state.nhcb.push(base);
            }
        }
    }
}

/// The native histogram a classic histogram series feeds under
/// `load_with_nhcb`: `x_bucket` (with a numeric, non-NaN `le`), `x_sum` and
/// `x_count` all become `x` without `le` (Prometheus's `convertnhcb`).
fn nhcb_base(labels: &Labels) -> Option<Labels> {
    let name = labels.metric_name()?;
    let base = if let Some(b) = name.strip_suffix("_bucket") {
        let le: f64 = labels.get("le")?.parse().ok()?;
        if le.is_nan() {
            return None;
        }
        b
    } else {
        name.strip_suffix("_sum").or_else(|| name.strip_suffix("_count"))?
    };
    let mut b = labels.builder();
    b.set(METRIC_NAME, base).del("le");
    Some(b.labels())
}

fn skip_reason(state: &State, ev: &Eval) -> Option<SkipReason> {
    if ev.expects_native_histograms() {
        return Some(SkipReason::NativeHistogramExpected);
    }
    if state.native.is_empty() && state.nhcb.is_empty() {
        return None;
    }
    let reads = match query_ast::selectors(&ev.expr) {
        Ok(sels) => Reads::Selectors(sels),
        // promql-parser cannot read some newer syntax (the native-histogram
        // trim operators `</` and `>/`). Then a query reads a series if it
        // names its metric; the engine, which parses with promql-parser too,
        // could not run such a case anyway.
        Err(_) => Reads::Names(query_ast::identifiers(&ev.expr)),
    };
    let reads = |series: &[Labels]| series.iter().any(|l| reads.series(l));
    if reads(&state.native) {
        Some(SkipReason::NativeHistogramSeries)
    } else if reads(&state.nhcb) {
        Some(SkipReason::NhcbSeries)
    } else {
        None
    }
}

/// How a query's reach over series is judged.
enum Reads {
    Selectors(Vec<query_ast::Selector>),
    /// The identifiers of a query promql-parser cannot parse.
    Names(std::collections::HashSet<String>),
}

impl Reads {
    fn series(&self, labels: &Labels) -> bool {
        match self {
            Reads::Selectors(sels) => sels.iter().any(|s| s.matches(labels)),
            Reads::Names(names) => labels.metric_name().is_some_and(|n| names.contains(n)),
        }
    }
}
