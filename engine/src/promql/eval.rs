//! The expression walker: evaluates each node for all steps of a query at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};

use promql_parser::parser::value::ValueType;

use crate::labels::{Labels, METRIC_NAME, Str};
use crate::matcher::{MatchOp, Matcher};
use crate::sample::{HistogramSample, Sample, is_stale_nan};
use crate::storage::{Queryable, SelectedSeries};

use super::annotations::{Annotations, Level, Note};
use super::positions::Positions;
use super::value::{QueryResult, Series, Value};
use super::{EngineOptions, QueryError, aggregate, binary, functions};

/// One series of an instant vector evaluated over all steps: `points` holds at
/// most one point per step, with the step's timestamp.
#[derive(Clone, Debug)]
pub(crate) struct SSeries {
    pub labels: Labels,
    pub points: Vec<Sample>,
    /// Native histogram points, at steps where `points` has none. Empty
    /// unless the data holds native histograms; operations that do not
    /// support them refuse series that have any (see [`reject_histograms`]).
    pub hists: Vec<HistogramSample>,
    /// The metric name is to be dropped from `labels`. With delayed name
    /// removal this happens once at the very end; without, at the operation.
    pub drop_name: bool,
}

impl SSeries {
    pub fn new(labels: Labels, points: Vec<Sample>, drop_name: bool) -> Self {
        SSeries { labels, points, hists: Vec::new(), drop_name }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.hists.is_empty()
    }
}

/// Fails when any series holds native histogram points: for the operations
/// tocsin does not evaluate over native histograms yet, a clear error beats
/// the silently different result dropping them would give.
/// `what` is only formatted on failure, since this runs at every operation.
pub(crate) fn reject_histograms(
    series: &[SSeries],
    what: std::fmt::Arguments<'_>,
) -> EvalResult<()> {
    match series.iter().find(|s| !s.hists.is_empty()) {
        None => Ok(()),
        Some(s) => Err(histograms_unsupported(what, &s.labels)),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn histograms_unsupported(what: std::fmt::Arguments<'_>, labels: &Labels) -> QueryError {
    QueryError::Eval(format!(
        "{what} does not support native histograms yet in tocsin (series {labels} has native histogram samples)"
    ))
}

/// The value of a node for all steps.
pub(crate) enum Val {
    Vector(Vec<SSeries>),
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
    /// A range vector; only the result of an instant query of a range
    /// selector or subquery.
    Range(Vec<Series>),
}

/// Evaluation state for one query, or for one subquery inside it.
pub(crate) struct Evaluator<'a> {
    pub storage: &'a dyn Queryable,
    pub opts: &'a EngineOptions,
    /// First and last step, and the distance between steps (ms).
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    /// The top-level query's range, for `@ start()`, `@ end()`, `start()`...
    pub query_start: i64,
    pub query_end: i64,
    pub query_step: i64,
    pub annos: Annotations,
    /// Where nodes start in the query text, when there is one.
    pub positions: Option<&'a Positions<'a>>,
    samples_loaded: usize,
}

pub(crate) type EvalResult<T> = Result<T, QueryError>;

/// Milliseconds of a parser duration.
pub(crate) fn duration_ms(d: &Duration) -> i64 {
    d.as_millis() as i64
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Strips parentheses, which PromQL allows around any argument.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl<'a> Evaluator<'a> {
    pub fn new(
        storage: &'a dyn Queryable,
        opts: &'a EngineOptions,
        start: i64,
        end: i64,
        interval: i64,
    ) -> Self {
        // Steps never go past the last whole step, so `end` is aligned here
        // once and every loop can rely on `start + k * interval`.
        let interval = interval.max(1);
        let end = start + ((end - start) / interval) * interval;
        Evaluator {
            storage,
            opts,
            start,
            end,
            interval,
            query_start: start,
            query_end: end,
            query_step: if start == end { 0 } else { interval },
            annos: Annotations::default(),
            positions: None,
            samples_loaded: 0,
        }
    }

    /// A child evaluator for a subquery: same query, different steps.
    fn child(&self, start: i64, end: i64, interval: i64) -> Evaluator<'a> {
        Evaluator {
            storage: self.storage,
            opts: self.opts,
            start,
            end,
            interval,
            query_start: self.query_start,
            query_end: self.query_end,
            query_step: self.query_step,
            annos: Annotations::default(),
            positions: self.positions,
            samples_loaded: self.samples_loaded,
        }
    }

    pub fn n_steps(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.interval) as usize + 1
        }
    }

    #[inline]
    pub fn ts(&self, step: usize) -> i64 {
        self.start + step as i64 * self.interval
    }

    #[inline]
    pub fn step_of(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    /// A scalar's values as points at every step.
    pub fn scalar_points(&self, values: &[f64]) -> Vec<Sample> {
        values.iter().enumerate().map(|(i, v)| Sample { t: self.ts(i), v: *v }).collect()
    }

    pub fn finish(self, value: Value) -> QueryResult {
        QueryResult { value, warnings: self.annos.warnings, infos: self.annos.infos }
    }

    /// Records an annotation about `at`, with its position as Prometheus
    /// prints it when the query text is known.
    pub fn note(&mut self, note: Note, at: &Expr) {
        let text = match self.positions.and_then(|p| p.of(at)) {
            Some(pos) => format!("{} ({pos})", note.text),
            None => note.text,
        };
        match note.level {
            Level::Warning => self.annos.warn(text),
            Level::Info => self.annos.info(text),
        }
    }

    /// Counts samples held by the query and fails once over the limit.
    pub fn account(&mut self, n: usize) -> EvalResult<()> {
        self.samples_loaded += n;
        if self.samples_loaded > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    pub fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// Evaluates the whole query and applies the final name removal.
    pub fn eval_top(&mut self, expr: &Expr) -> EvalResult<Val> {
        match self.eval(expr)? {
            Val::Vector(series) => Ok(Val::Vector(drop_flagged_names(series)?)),
            other => Ok(other),
        }
    }

    pub fn eval(&mut self, expr: &Expr) -> EvalResult<Val> {
        if self.n_steps() == 0 {
            return Ok(match expr.value_type() {
                ValueType::Scalar => Val::Scalar(Vec::new()),
                ValueType::String => Val::Str(String::new()),
                _ => Val::Vector(Vec::new()),
            });
        }
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.n_steps()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut series) => {
                    reject_histograms(&series, format_args!("unary minus"))?;
                    for s in &mut series {
                        s.points.iter_mut().for_each(|p| p.v = -p.v);
                        s.drop_name = true;
                    }
                    Ok(Val::Vector(self.drop_names_now(series)?))
                }
                _ => Err(QueryError::Eval(
                    "unary minus is only defined for scalars and vectors".into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, false)?)),
            Expr::MatrixSelector(ms) => self.eval_matrix_selector_instant(ms),
            Expr::Subquery(sq) => self.eval_subquery_instant(sq),
            Expr::Call(call) => functions::eval_call(self, expr, call),
            Expr::Aggregate(agg) => aggregate::eval_aggregate(self, agg),
            Expr::Binary(be) => binary::eval_binary(self, be),
            Expr::Extension(_) => {
                Err(QueryError::Eval("extension expressions are not supported".into()))
            }
        }
    }

    /// Evaluates an expression that must yield a scalar.
    pub fn eval_scalar(&mut self, expr: &Expr) -> EvalResult<Vec<f64>> {
        match self.eval(expr)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::Eval(format!(
                "expected type scalar in expression, got {}",
                super::type_name(expr.value_type())
            ))),
        }
    }

    /// Evaluates an expression that must yield an instant vector.
    pub fn eval_vector(&mut self, expr: &Expr) -> EvalResult<Vec<SSeries>> {
        match self.eval(expr)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::Eval(format!(
                "expected type instant vector in expression, got {}",
                super::type_name(expr.value_type())
            ))),
        }
    }

    /// Without delayed name removal, operations that drop the metric name do
    /// so at once, which may make series collide; collisions merge when they
    /// never share a step and are an error otherwise, as in Prometheus.
    pub fn drop_names_now(&self, series: Vec<SSeries>) -> EvalResult<Vec<SSeries>> {
        if self.opts.delayed_name_removal {
            return Ok(series);
        }
        drop_flagged_names(series)
    }

    // ----- selectors -------------------------------------------------------

    pub(super) fn matchers(vs: &VectorSelector) -> EvalResult<Vec<Vec<Matcher>>> {
        let convert = |m: &promql_parser::label::Matcher| -> EvalResult<Matcher> {
            let op = match m.op {
                ParserOp::Equal => MatchOp::Equal,
                ParserOp::NotEqual => MatchOp::NotEqual,
                ParserOp::Re(_) => MatchOp::Regex,
                ParserOp::NotRe(_) => MatchOp::NotRegex,
            };
            Matcher::new(op, m.name.as_str(), m.value.as_str())
                .map_err(|e| QueryError::Parse(e.to_string()))
        };
        let mut base = Vec::with_capacity(vs.matchers.matchers.len() + 1);
        if let Some(name) = &vs.name {
            base.push(Matcher::equal(METRIC_NAME, name.as_str()));
        }
        for m in &vs.matchers.matchers {
            base.push(convert(m)?);
        }
        if vs.matchers.or_matchers.is_empty() {
            return Ok(vec![base]);
        }
        vs.matchers
            .or_matchers
            .iter()
            .map(|alt| {
                let mut set = base.clone();
                for m in alt {
                    set.push(convert(m)?);
                }
                Ok(set)
            })
            .collect()
    }

    /// Series selected by `vs` with samples in `[mint, maxt]`, sorted by labels.
    pub fn select(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> EvalResult<Vec<SelectedSeries>> {
        let sets = Self::matchers(vs)?;
        if sets.len() == 1 {
            return Ok(self.storage.select(&sets[0], mint, maxt)?);
        }
        let mut all: Vec<SelectedSeries> = Vec::new();
        for set in &sets {
            all.extend(self.storage.select(set, mint, maxt)?);
        }
        crate::sort::by(&mut all, |a, b| a.labels.cmp(&b.labels).then(a.id.cmp(&b.id)));
        all.dedup_by(|a, b| a.id == b.id);
        Ok(all)
    }

    /// An instant-vector selector at every step: the newest sample within the
    /// lookback window, unless it is a staleness marker. With `sample_times`
    /// each point holds the chosen sample's timestamp in seconds instead of its
    /// value, which is what `timestamp()` of a selector reports.
    pub fn eval_vector_selector(
        &mut self,
        vs: &VectorSelector,
        sample_times: bool,
    ) -> EvalResult<Vec<SSeries>> {
        let at = self.at_ms(&vs.at);
        let off = offset_ms(&vs.offset);
        let lookback = self.opts.lookback_delta_ms;
        let (rmin, rmax) = match at {
            Some(a) => (a - off, a - off),
            None => (self.start - off, self.end - off),
        };
        let mint = rmin - lookback + 1;
        let selected = self.select(vs, mint, rmax)?;
        let n = self.n_steps();
        let mut out = Vec::with_capacity(selected.len());
        let mut buf = Vec::new();
        let mut hbuf = Vec::new();
        for s in selected {
            buf.clear();
            self.storage.samples_of(&s, mint, rmax, &mut buf)?;
            hbuf.clear();
            self.storage.histograms_of(&s, mint, rmax, &mut hbuf)?;
            if !hbuf.is_empty() {
                if let Some(series) =
                    self.select_mixed(s.labels, &buf, &hbuf, at, off, sample_times)?
                {
                    out.push(series);
                }
                continue;
            }
            if buf.is_empty() {
                continue;
            }
            let mut points = Vec::new();
            let mut j = 0;
            for i in 0..n {
                let ts = self.ts(i);
                let r = at.unwrap_or(ts) - off;
                while j < buf.len() && buf[j].t <= r {
                    j += 1;
                }
                if j == 0 {
                    continue;
                }
                let smp = buf[j - 1];
                if smp.t <= r - lookback || is_stale_nan(smp.v) {
                    continue;
                }
                let v = if sample_times { smp.t as f64 / 1000.0 } else { smp.v };
                points.push(Sample { t: ts, v });
            }
            if !points.is_empty() {
                self.account(points.len())?;
                out.push(SSeries::new(s.labels, points, false));
            }
        }
        Ok(out)
    }

    /// [`Evaluator::eval_vector_selector`] for a series holding native
    /// histograms: at each step the newest sample of either kind wins.
    fn select_mixed(
        &mut self,
        labels: Labels,
        floats: &[Sample],
        hists: &[HistogramSample],
        at: Option<i64>,
        off: i64,
        sample_times: bool,
    ) -> EvalResult<Option<SSeries>> {
        let lookback = self.opts.lookback_delta_ms;
        let mut out = SSeries::new(labels, Vec::new(), false);
        let (mut j, mut k) = (0, 0);
        for i in 0..self.n_steps() {
            let ts = self.ts(i);
            let r = at.unwrap_or(ts) - off;
            while j < floats.len() && floats[j].t <= r {
                j += 1;
            }
            while k < hists.len() && hists[k].t <= r {
                k += 1;
            }
            let float = j.checked_sub(1).map(|j| floats[j]);
            let hist = k.checked_sub(1).map(|k| &hists[k]);
            match (float, hist) {
                (Some(f), h) if h.is_none_or(|h| h.t < f.t) => {
                    if f.t <= r - lookback || is_stale_nan(f.v) {
                        continue;
                    }
                    let v = if sample_times { f.t as f64 / 1000.0 } else { f.v };
                    out.points.push(Sample { t: ts, v });
                }
                (_, Some(h)) => {
                    if h.t <= r - lookback {
                        continue;
                    }
                    if sample_times {
                        out.points.push(Sample { t: ts, v: h.t as f64 / 1000.0 });
                    } else {
                        out.hists.push(HistogramSample { t: ts, h: h.h.clone() });
                    }
                }
                _ => {}
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        // A histogram holds many floats' worth of memory; Prometheus counts
        // it by its size too, which one point per bucket approximates.
        let weight: usize = out
            .hists
            .iter()
            .map(|h| 1 + h.h.positive_buckets.len() + h.h.negative_buckets.len())
            .sum();
        self.account(out.points.len() + weight)?;
        Ok(Some(out))
    }

    fn eval_matrix_selector_instant(&mut self, ms: &MatrixSelector) -> EvalResult<Val> {
        let input = self.range_input(&Expr::MatrixSelector(ms.clone()))?;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut hbuf = Vec::new();
        let r = input.at.unwrap_or(self.start) - input.offset;
        for i in 0..input.len() {
            let (labels, _) = input.load_all(i, self.storage, &mut buf, &mut hbuf)?;
            let points: Vec<Sample> =
                buf.iter().copied().filter(|p| p.t > r - input.range && p.t <= r).collect();
            let histograms: Vec<HistogramSample> =
                hbuf.iter().filter(|p| p.t > r - input.range && p.t <= r).cloned().collect();
            if !points.is_empty() || !histograms.is_empty() {
                out.push(Series { labels, points, histograms });
            }
        }
        Ok(Val::Range(out))
    }

    fn eval_subquery_instant(&mut self, sq: &SubqueryExpr) -> EvalResult<Val> {
        let input = self.range_input(&Expr::Subquery(sq.clone()))?;
        let r = input.at.unwrap_or(self.start) - input.offset;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut hbuf = Vec::new();
        for i in 0..input.len() {
            let (mut labels, drop_name) = input.load_all(i, self.storage, &mut buf, &mut hbuf)?;
            if drop_name {
                labels = labels.without_metric_name();
            }
            let points: Vec<Sample> =
                buf.iter().copied().filter(|p| p.t > r - input.range && p.t <= r).collect();
            let histograms: Vec<HistogramSample> =
                hbuf.iter().filter(|p| p.t > r - input.range && p.t <= r).cloned().collect();
            if !points.is_empty() || !histograms.is_empty() {
                out.push(Series { labels, points, histograms });
            }
        }
        Ok(Val::Range(out))
    }

    /// Prepares the range-vector argument of a function: a range selector
    /// (read lazily, one series at a time) or a subquery (evaluated once over
    /// every window the outer steps need).
    pub fn range_input(&mut self, arg: &Expr) -> EvalResult<RangeInput> {
        match unwrap_parens(arg) {
            Expr::MatrixSelector(ms) => {
                let at = self.at_ms(&ms.vs.at);
                let offset = offset_ms(&ms.vs.offset);
                let range = duration_ms(&ms.range);
                let (rmin, rmax) = match at {
                    Some(a) => (a - offset, a - offset),
                    None => (self.start - offset, self.end - offset),
                };
                let mint = rmin - range + 1;
                let series = self.select(&ms.vs, mint, rmax)?;
                Ok(RangeInput {
                    range,
                    offset,
                    at,
                    source: RangeSource::Stored { series, mint, maxt: rmax },
                })
            }
            Expr::Subquery(sq) => {
                let at = self.at_ms(&sq.at);
                let offset = offset_ms(&sq.offset);
                let range = duration_ms(&sq.range);
                let step = match &sq.step {
                    Some(d) if !d.is_zero() => duration_ms(d),
                    _ => self.opts.default_subquery_step_ms,
                };
                let (rmin, rmax) = match at {
                    Some(a) => (a - offset, a - offset),
                    None => (self.start - offset, self.end - offset),
                };
                // The subquery's steps are absolute multiples of its step: the
                // first one after the earliest window start. Go's truncating
                // division is intended here, as in Prometheus.
                let lowest = rmin - range;
                let mut sub_start = step * (lowest / step);
                if sub_start <= lowest {
                    sub_start += step;
                }
                // Every step of a subquery holds memory, so its step count
                // counts against the sample limit before anything is evaluated.
                if rmax >= sub_start
                    && ((rmax - sub_start) / step) as usize >= self.opts.max_samples
                {
                    return Err(QueryError::TooManySamples("subquery evaluation"));
                }
                let mut child = self.child(sub_start, rmax, step);
                let val = child.eval(&sq.expr)?;
                self.annos.merge(std::mem::take(&mut child.annos));
                self.samples_loaded = child.samples_loaded;
                let series = match val {
                    Val::Vector(v) => v,
                    Val::Scalar(values) => {
                        vec![SSeries::new(Labels::empty(), child.scalar_points(&values), false)]
                    }
                    _ => {
                        return Err(QueryError::Eval(
                            "subquery is only allowed on instant vector".into(),
                        ));
                    }
                };
                Ok(RangeInput { range, offset, at, source: RangeSource::Computed(series) })
            }
            other => Err(QueryError::Eval(format!(
                "expected type range vector in call to function, got {}",
                super::type_name(other.value_type())
            ))),
        }
    }
}

/// Where a range argument's samples come from.
pub(crate) enum RangeSource {
    Stored { series: Vec<SelectedSeries>, mint: i64, maxt: i64 },
    Computed(Vec<SSeries>),
}

/// A range-vector argument: per step, the window `(ref - range, ref]` with
/// `ref = (@ time or step time) - offset`.
pub(crate) struct RangeInput {
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub source: RangeSource,
}

impl RangeInput {
    pub fn len(&self) -> usize {
        match &self.source {
            RangeSource::Stored { series, .. } => series.len(),
            RangeSource::Computed(series) => series.len(),
        }
    }

    /// Loads series `i` into `buf` without staleness markers (they are never
    /// part of a range); returns its labels and whether its name is to be
    /// dropped. For `function`, which takes floats only: a series with
    /// native histogram samples in the range is refused.
    pub fn load(
        &self,
        i: usize,
        storage: &dyn Queryable,
        buf: &mut Vec<Sample>,
        function: &str,
    ) -> EvalResult<(Labels, bool)> {
        let mut hists = Vec::new();
        let loaded = self.load_all(i, storage, buf, &mut hists)?;
        if !hists.is_empty() {
            return Err(histograms_unsupported(format_args!("function {function}()"), &loaded.0));
        }
        Ok(loaded)
    }

    /// [`RangeInput::load`], with native histogram samples loaded into `hists`.
    pub fn load_all(
        &self,
        i: usize,
        storage: &dyn Queryable,
        buf: &mut Vec<Sample>,
        hists: &mut Vec<HistogramSample>,
    ) -> EvalResult<(Labels, bool)> {
        buf.clear();
        hists.clear();
        match &self.source {
            RangeSource::Stored { series, mint, maxt } => {
                let s = &series[i];
                storage.samples_of(s, *mint, *maxt, buf)?;
                storage.histograms_of(s, *mint, *maxt, hists)?;
                // Checked first: markers are rare, and finding none is cheaper
                // than a `retain` that keeps everything.
                if buf.iter().any(|p| is_stale_nan(p.v)) {
                    buf.retain(|p| !is_stale_nan(p.v));
                }
                Ok((s.labels.clone(), false))
            }
            RangeSource::Computed(series) => {
                let s = &series[i];
                buf.extend_from_slice(&s.points);
                hists.extend_from_slice(&s.hists);
                Ok((s.labels.clone(), s.drop_name))
            }
        }
    }

    /// The reference time (window end) for a step at `ts`.
    #[inline]
    pub fn window_end(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts) - self.offset
    }
}

/// Drops the metric name of the series flagged for it, merging series left
/// with equal labels.
fn drop_flagged_names(mut series: Vec<SSeries>) -> EvalResult<Vec<SSeries>> {
    if !series.iter().any(|s| s.drop_name) {
        return Ok(series);
    }
    // Sets that were distinct stay distinct when the names dropped are all
    // the same one (the usual `rate(x[5m])`), unless some set had no name
    // to begin with; only then is the costly merge needed.
    let mut dropped: Option<Str> = None;
    let mut may_collide = false;
    for s in &mut series {
        let name = s.labels.metric_name_label().map(|l| &l.value);
        match (s.drop_name, name) {
            (true, Some(name)) => {
                match &dropped {
                    None => dropped = Some(name.clone()),
                    Some(d) => may_collide |= d != name,
                }
                s.labels = s.labels.without_metric_name();
            }
            (_, None) => may_collide = true,
            (false, Some(_)) => {}
        }
        s.drop_name = false;
    }
    if dropped.is_some() && may_collide { merge_same_labels(series) } else { Ok(series) }
}

/// Merges series with equal labels whose points never share a timestamp;
/// equal labels at one timestamp are Prometheus's "same labelset" error.
pub(crate) fn merge_same_labels(series: Vec<SSeries>) -> EvalResult<Vec<SSeries>> {
    if series.len() < 2 {
        return Ok(series);
    }
    let mut index: hashbrown::HashMap<Labels, usize, foldhash::fast::RandomState> =
        hashbrown::HashMap::with_capacity_and_hasher(series.len(), Default::default());
    let mut out: Vec<SSeries> = Vec::with_capacity(series.len());
    let mut merged_any = false;
    for s in series {
        match index.get(&s.labels) {
            Some(&i) => {
                let target = &mut out[i];
                target.points.extend(s.points);
                target.hists.extend(s.hists);
                target.drop_name |= s.drop_name;
                merged_any = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged_any {
        for s in &mut out {
            if s.points.windows(2).any(|w| w[1].t <= w[0].t) {
                crate::sort::by_key(&mut s.points, |p| p.t);
                if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                    return Err(same_labelset());
                }
            }
            if !s.hists.is_empty() {
                crate::sort::by_key(&mut s.hists, |p| p.t);
                if s.hists.windows(2).any(|w| w[0].t == w[1].t)
                    || s.hists.iter().any(|h| s.points.binary_search_by_key(&h.t, |p| p.t).is_ok())
                {
                    return Err(same_labelset());
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn same_labelset() -> QueryError {
    QueryError::Eval("vector cannot contain metrics with the same labelset".into())
}

/// The points of all series at each step, in series order: the per-step view
/// that operations mixing series (binary operators, aggregations, sorting)
/// need. Built once per node in one pass over the points.
pub(crate) struct StepIndex {
    offsets: Vec<usize>,
    entries: Vec<(u32, f64)>,
}

impl StepIndex {
    pub fn new(ev: &Evaluator, series: &[SSeries]) -> Self {
        let n = ev.n_steps();
        let mut counts = vec![0usize; n + 1];
        for s in series {
            for p in &s.points {
                counts[ev.step_of(p.t) + 1] += 1;
            }
        }
        for i in 1..=n {
            counts[i] += counts[i - 1];
        }
        let mut fill = counts.clone();
        let mut entries = vec![(0u32, 0.0f64); counts[n]];
        for (si, s) in series.iter().enumerate() {
            for p in &s.points {
                let step = ev.step_of(p.t);
                entries[fill[step]] = (si as u32, p.v);
                fill[step] += 1;
            }
        }
        StepIndex { offsets: counts, entries }
    }

    /// `(series index, value)` of every series with a point at `step`.
    #[inline]
    pub fn at(&self, step: usize) -> &[(u32, f64)] {
        &self.entries[self.offsets[step]..self.offsets[step + 1]]
    }
}

/// Collects per-step outputs into series keyed by precomputed output slots,
/// rejecting two points for one slot at one step.
pub(crate) struct SlotBuilder {
    pub series: Vec<SSeries>,
    last_t: Vec<i64>,
}

impl SlotBuilder {
    pub fn new() -> Self {
        SlotBuilder { series: Vec::new(), last_t: Vec::new() }
    }

    /// Registers an output series and returns its slot.
    pub fn slot(&mut self, labels: Labels, drop_name: bool) -> usize {
        self.series.push(SSeries::new(labels, Vec::new(), drop_name));
        self.last_t.push(i64::MIN);
        self.series.len() - 1
    }

    pub fn push(&mut self, slot: usize, t: i64, v: f64) -> EvalResult<()> {
        if self.last_t[slot] == t {
            return Err(same_labelset());
        }
        self.last_t[slot] = t;
        self.series[slot].points.push(Sample { t, v });
        Ok(())
    }

    /// The series that received points, in slot order.
    pub fn finish(self) -> Vec<SSeries> {
        self.series.into_iter().filter(|s| !s.points.is_empty()).collect()
    }
}

/// Collects per-step outputs whose labels are only known per point, merging
/// by labels.
pub(crate) struct LabelBuilder {
    index: hashbrown::HashMap<Labels, usize, foldhash::fast::RandomState>,
    slots: SlotBuilder,
}

impl LabelBuilder {
    pub fn new() -> Self {
        LabelBuilder { index: Default::default(), slots: SlotBuilder::new() }
    }

    pub fn push(&mut self, labels: &Labels, drop_name: bool, t: i64, v: f64) -> EvalResult<()> {
        let slot = match self.index.get(labels) {
            Some(&s) => s,
            None => {
                let s = self.slots.slot(labels.clone(), drop_name);
                self.index.insert(labels.clone(), s);
                s
            }
        };
        if drop_name {
            self.slots.series[slot].drop_name = true;
        }
        self.slots.push(slot, t, v)
    }

    pub fn finish(self) -> Vec<SSeries> {
        self.slots.finish()
    }
}
