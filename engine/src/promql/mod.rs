//! PromQL evaluation with Prometheus 3.x float semantics.
//!
//! Queries are parsed with the `promql-parser` crate and evaluated over any
//! [`Queryable`]. Evaluation is columnar: an expression is evaluated for all steps
//! of a query at once, series are read from storage once per selector, and work
//! that depends only on labels (grouping keys, matching signatures, output label
//! sets) is done once per series rather than once per step.

mod aggregate;
mod analysis;
mod annotations;
mod binary;
mod eval;
mod functions;
mod histogram;
pub(crate) mod kahan;
mod literals;
mod positions;
mod value;

pub use analysis::{metric_names, steps_independent};
pub use annotations::Annotations;
pub use promql_parser::parser::Expr;
pub use value::{InstantSample, QueryResult, Series, Value};

use promql_parser::parser::value::ValueType;

use crate::storage::{Queryable, StorageError};

/// Errors of parsing or evaluating a query. Messages follow Prometheus's.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Eval(String),
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Most steps a range query may have, as in Prometheus's HTTP API.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Query settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample.
    pub lookback_delta_ms: i64,
    /// Upper bound on samples one query may hold in memory at once.
    pub max_samples: usize,
    /// Step of a subquery written without one (`x[1h:]`); Prometheus uses the
    /// global evaluation interval.
    pub default_subquery_step_ms: i64,
    /// Prometheus's `promql-delayed-name-removal` feature: keep `__name__` until
    /// the end of evaluation so later operations can still see it. Off by
    /// default, as in Prometheus; the conformance suite runs with it on, as
    /// Prometheus's own test harness does.
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            default_subquery_step_ms: 60_000,
            delayed_name_removal: false,
        }
    }
}

/// The PromQL engine. Holds only options; every query is independent.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

/// Parses a query, mapping the parser's errors into [`QueryError::Parse`].
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    literals::check_duration_numbers(query)?;
    let query = literals::normalize(query)?;
    promql_parser::parser::parse(&query).map_err(|e| QueryError::Parse(prometheus_wording(&e)))
}

/// Rewords a `promql-parser` error the way Prometheus words the same error:
/// its type names ("range vector", not "matrix"), its quoting of function
/// names, and its "parse error: " prefix. Prometheus also prefixes a
/// `line:column`, which the parser does not report.
fn prometheus_wording(msg: &str) -> String {
    let mut out = msg.to_owned();
    if out.starts_with("expected type ") {
        for (from, to) in [
            ("type matrix", "type range vector"),
            ("type vector", "type instant vector"),
            ("got matrix", "got range vector"),
            ("got vector", "got instant vector"),
            ("in aggregation expression", "in aggregation parameter"),
        ] {
            out = out.replace(from, to);
        }
        // function 'rate' -> function "rate"
        if let Some(i) = out.find("function '")
            && let Some(len) = out[i + 10..].find('\'')
        {
            let name = out[i + 10..i + 10 + len].to_owned();
            out.replace_range(
                i..i + 10 + len + 1,
                &format!("function {}", crate::gofmt::quote(&name)),
            );
        }
    }
    format!("parse error: {out}")
}

/// Parses a series selector such as the `match[]` parameter of the series and
/// label APIs (`up{job="x"}`): one matcher set per `or` alternative. Anything
/// other than a bare vector selector is refused, as Prometheus does.
pub fn parse_series_selector(s: &str) -> Result<Vec<Vec<crate::matcher::Matcher>>, QueryError> {
    match parse(s)? {
        Expr::VectorSelector(vs) => eval::Evaluator::matchers(&vs),
        _ => Err(QueryError::Parse(format!(
            "parse error: expected a vector selector, got {}",
            crate::gofmt::quote(s)
        ))),
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `query` at one instant `t` (ms).
    pub fn instant(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        let positions = positions::Positions::compute(query, &expr);
        self.instant_inner(storage, &expr, Some(&positions), t)
    }

    /// Evaluates a parsed expression at one instant `t` (ms).
    pub fn instant_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        self.instant_inner(storage, expr, None, t)
    }

    fn instant_inner(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        positions: Option<&positions::Positions>,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        let mut ev = eval::Evaluator::new(storage, &self.opts, t, t, 1);
        ev.positions = positions;
        let val = ev.eval_top(expr)?;
        let value = match val {
            eval::Val::Vector(series) => Value::Vector(
                series
                    .into_iter()
                    .filter_map(|mut s| match s.points.first() {
                        Some(p) => Some(InstantSample::float(s.labels, t, p.v)),
                        None => s.hists.pop().map(|h| InstantSample {
                            labels: s.labels,
                            t,
                            v: 0.0,
                            h: Some(h.h),
                        }),
                    })
                    .collect(),
            ),
            eval::Val::Scalar(v) => Value::Scalar { t, v: v.first().copied().unwrap_or(f64::NAN) },
            eval::Val::Str(s) => Value::String { t, s },
            eval::Val::Range(mut series) => {
                crate::sort::by(&mut series, |a, b| a.labels.cmp(&b.labels));
                Value::Matrix(series)
            }
        };
        Ok(ev.finish(value))
    }

    /// Evaluates `query` at every step from `start` to `end` inclusive (ms).
    pub fn range(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        let positions = positions::Positions::compute(query, &expr);
        self.range_inner(storage, &expr, Some(&positions), start, end, step)
    }

    /// Evaluates a parsed expression over a range of steps.
    pub fn range_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        self.range_inner(storage, expr, None, start, end, step)
    }

    fn range_inner(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        positions: Option<&positions::Positions>,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        if step <= 0 {
            return Err(QueryError::Eval(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::Eval("end timestamp must not be before start time".into()));
        }
        // Prometheus's API refuses more points per series than this; the engine
        // enforces it itself so no caller can make it allocate without bound.
        if (end - start) / step >= MAX_POINTS_PER_SERIES {
            return Err(QueryError::Eval(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            other => {
                return Err(QueryError::Eval(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(other)
                )));
            }
        }
        let mut ev = eval::Evaluator::new(storage, &self.opts, start, end, step);
        ev.positions = positions;
        let val = ev.eval_top(expr)?;
        let mut series: Vec<Series> = match val {
            eval::Val::Vector(series) => series
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| Series { labels: s.labels, points: s.points, histograms: s.hists })
                .collect(),
            eval::Val::Scalar(values) => vec![Series {
                labels: crate::labels::Labels::empty(),
                points: ev.scalar_points(&values),
                histograms: Vec::new(),
            }],
            eval::Val::Str(_) | eval::Val::Range(_) => {
                return Err(QueryError::Eval("unexpected result type for range query".into()));
            }
        };
        crate::sort::by(&mut series, |a, b| a.labels.cmp(&b.labels));
        Ok(ev.finish(Value::Matrix(series)))
    }
}

/// An expression evaluated over a range of steps, kept so that each step's
/// instant vector can be taken in turn: what a backtest needs to evaluate a
/// rule once per window instead of once per step.
#[derive(Clone, Debug)]
pub struct StepVectors {
    /// Each series with its points and a cursor to the next unread one.
    series: Vec<(crate::labels::Labels, Vec<crate::sample::Sample>, usize)>,
    /// The same for series with native histogram points.
    hists: Vec<(crate::labels::Labels, Vec<crate::sample::HistogramSample>, usize)>,
    scalar: bool,
}

impl StepVectors {
    /// What an instant query at `t` returns (as a vector; a scalar becomes
    /// one sample without labels), for a step `t` of the range. Steps are
    /// to be taken in increasing order.
    pub fn at(&mut self, t: i64) -> Vec<InstantSample> {
        let mut out = Vec::new();
        for (labels, points, next) in &mut self.series {
            while points.get(*next).is_some_and(|p| p.t < t) {
                *next += 1;
            }
            if let Some(p) = points.get(*next).filter(|p| p.t == t) {
                out.push(InstantSample::float(labels.clone(), t, p.v));
            }
        }
        for (labels, points, next) in &mut self.hists {
            while points.get(*next).is_some_and(|p| p.t < t) {
                *next += 1;
            }
            if let Some(p) = points.get(*next).filter(|p| p.t == t) {
                out.push(InstantSample { labels: labels.clone(), t, v: 0.0, h: Some(p.h.clone()) });
            }
        }
        if self.scalar && out.is_empty() {
            out.push(InstantSample::float(crate::labels::Labels::empty(), t, f64::NAN));
        }
        out
    }

    /// How many points the evaluation produced.
    pub fn points(&self) -> usize {
        self.series.iter().map(|(_, p, _)| p.len()).sum::<usize>()
            + self.hists.iter().map(|(_, p, _)| p.len()).sum::<usize>()
    }
}

impl Engine {
    /// Evaluates `expr` at every step from `start` to `end` inclusive and
    /// keeps the result per step; see [`StepVectors::at`]. Each step's
    /// samples are those of an instant query at that step when
    /// [`steps_independent`] holds for `expr`.
    pub fn range_vectors(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<StepVectors, QueryError> {
        if step <= 0 || end < start {
            return Err(QueryError::Eval("invalid step range".into()));
        }
        let mut ev = eval::Evaluator::new(storage, &self.opts, start, end, step);
        match ev.eval_top(expr)? {
            eval::Val::Vector(series) => {
                let mut floats = Vec::with_capacity(series.len());
                let mut hists = Vec::new();
                for s in series {
                    if !s.hists.is_empty() {
                        hists.push((s.labels.clone(), s.hists, 0));
                    }
                    if !s.points.is_empty() {
                        floats.push((s.labels, s.points, 0));
                    }
                }
                Ok(StepVectors { series: floats, hists, scalar: false })
            }
            eval::Val::Scalar(values) => Ok(StepVectors {
                series: vec![(crate::labels::Labels::empty(), ev.scalar_points(&values), 0)],
                hists: Vec::new(),
                scalar: true,
            }),
            eval::Val::Str(_) | eval::Val::Range(_) => {
                Err(QueryError::Eval("rule result is not a vector or scalar".into()))
            }
        }
    }
}

/// Prometheus's name for a value type, as used in its error messages.
pub(crate) fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

#[cfg(test)]
mod tests;
