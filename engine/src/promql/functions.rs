//! PromQL functions.
//!
//! Functions over instant vectors work point by point where they can, with
//! label work done once per series. Functions over range vectors slide a window
//! over each series' samples: both window edges only move forward as the steps
//! advance, so a series is read once however many steps the query has.

use promql_parser::parser::{Call, Expr};

use crate::labels::{Labels, METRIC_NAME};
use crate::matcher::compile_anchored;
use crate::sample::Sample;

use super::QueryError;
use super::aggregate::quantile;
use super::eval::{
    EvalResult, Evaluator, SSeries, StepIndex, Val, merge_same_labels, reject_histograms,
    unwrap_parens,
};
use super::kahan;
use super::{annotations, histogram};

/// Per-step context of a range function.
struct RangeCtx<'a> {
    /// The step's evaluation time.
    ts: i64,
    /// The window `(range_start, range_end]`.
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    /// The values of the non-range (scalar) arguments at this step, in order.
    scalars: &'a [f64],
    /// All arguments of the call, for annotation positions.
    args: &'a [&'a Expr],
}

pub(crate) fn eval_call(ev: &mut Evaluator, expr: &Expr, call: &Call) -> EvalResult<Val> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();

    match name {
        "timestamp" => {
            if let Some(Expr::VectorSelector(vs)) = args.first() {
                let mut series = ev.eval_vector_selector(vs, true)?;
                series.iter_mut().for_each(|s| s.drop_name = true);
                return Ok(Val::Vector(ev.drop_names_now(series)?));
            }
        }
        "label_replace" => return label_replace(ev, &args),
        "label_join" => return label_join(ev, &args),
        "info" | "start_timestamp" => {
            return Err(QueryError::Eval(format!(
                "function {name}() is not supported by tocsin yet"
            )));
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" if ev.start != ev.end => {
            ev.note(annotations::sort_in_range_query(), expr);
        }
        _ => {}
    }

    if let Some(range_idx) =
        args.iter().position(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_)))
    {
        return eval_range_call(ev, name, &args, range_idx);
    }

    // Evaluate the arguments in order, as Prometheus does.
    let mut vals = Vec::with_capacity(args.len());
    for a in &args {
        vals.push(ev.eval(a)?);
    }
    if !matches!(
        name,
        "timestamp" | "absent" | "histogram_count" | "histogram_sum" | "histogram_avg"
    ) {
        for v in &vals {
            if let Val::Vector(series) = v {
                reject_histograms(series, format_args!("function {name}()"))?;
            }
        }
    }
    eval_instant_call(ev, name, &args, vals)
}

fn scalar_arg(vals: &[Val], i: usize) -> EvalResult<&[f64]> {
    match vals.get(i) {
        Some(Val::Scalar(v)) => Ok(v),
        _ => Err(QueryError::Eval(format!("expected a scalar as argument {}", i + 1))),
    }
}

fn string_arg<'e>(args: &[&'e Expr], i: usize) -> EvalResult<&'e str> {
    match args.get(i) {
        Some(Expr::StringLiteral(s)) => Ok(&s.val),
        _ => Err(QueryError::Eval(format!("expected a string literal as argument {}", i + 1))),
    }
}

fn take_vector(vals: &mut [Val], i: usize) -> EvalResult<Vec<SSeries>> {
    match vals.get_mut(i) {
        Some(Val::Vector(v)) => Ok(std::mem::take(v)),
        _ => Err(QueryError::Eval(format!("expected an instant vector as argument {}", i + 1))),
    }
}

/// Applies `f` to every point, dropping the metric name.
fn map_points(ev: &Evaluator, mut series: Vec<SSeries>, f: impl Fn(f64) -> f64) -> EvalResult<Val> {
    for s in &mut series {
        s.points.iter_mut().for_each(|p| p.v = f(p.v));
        s.drop_name = true;
    }
    Ok(Val::Vector(ev.drop_names_now(series)?))
}

/// Like [`map_points`] with a per-step scalar; `None` drops the point.
fn map_points_step(
    ev: &Evaluator,
    mut series: Vec<SSeries>,
    f: impl Fn(f64, usize) -> Option<f64>,
) -> EvalResult<Val> {
    for s in &mut series {
        s.points = s
            .points
            .iter()
            .filter_map(|p| f(p.v, ev.step_of(p.t)).map(|v| Sample { t: p.t, v }))
            .collect();
        s.drop_name = true;
    }
    series.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(ev.drop_names_now(series)?))
}

fn eval_instant_call(
    ev: &mut Evaluator,
    name: &str,
    args: &[&Expr],
    mut vals: Vec<Val>,
) -> EvalResult<Val> {
    let n = ev.n_steps();
    let step_scalar = |ev: &Evaluator, f: &dyn Fn(i64) -> f64| -> Val {
        Val::Scalar((0..n).map(|i| f(ev.ts(i))).collect())
    };
    match name {
        "abs" => map_points(ev, take_vector(&mut vals, 0)?, f64::abs),
        "ceil" => map_points(ev, take_vector(&mut vals, 0)?, f64::ceil),
        "floor" => map_points(ev, take_vector(&mut vals, 0)?, f64::floor),
        "exp" => map_points(ev, take_vector(&mut vals, 0)?, libm::exp),
        "sqrt" => map_points(ev, take_vector(&mut vals, 0)?, f64::sqrt),
        "ln" => map_points(ev, take_vector(&mut vals, 0)?, libm::log),
        "log2" => map_points(ev, take_vector(&mut vals, 0)?, libm::log2),
        "log10" => map_points(ev, take_vector(&mut vals, 0)?, libm::log10),
        "sin" => map_points(ev, take_vector(&mut vals, 0)?, libm::sin),
        "cos" => map_points(ev, take_vector(&mut vals, 0)?, libm::cos),
        "tan" => map_points(ev, take_vector(&mut vals, 0)?, libm::tan),
        "asin" => map_points(ev, take_vector(&mut vals, 0)?, libm::asin),
        "acos" => map_points(ev, take_vector(&mut vals, 0)?, libm::acos),
        "atan" => map_points(ev, take_vector(&mut vals, 0)?, libm::atan),
        "sinh" => map_points(ev, take_vector(&mut vals, 0)?, libm::sinh),
        "cosh" => map_points(ev, take_vector(&mut vals, 0)?, libm::cosh),
        "tanh" => map_points(ev, take_vector(&mut vals, 0)?, libm::tanh),
        "asinh" => map_points(ev, take_vector(&mut vals, 0)?, libm::asinh),
        "acosh" => map_points(ev, take_vector(&mut vals, 0)?, libm::acosh),
        "atanh" => map_points(ev, take_vector(&mut vals, 0)?, libm::atanh),
        "rad" => map_points(ev, take_vector(&mut vals, 0)?, |v| v * std::f64::consts::PI / 180.0),
        "deg" => map_points(ev, take_vector(&mut vals, 0)?, |v| v * 180.0 / std::f64::consts::PI),
        "sgn" => map_points(ev, take_vector(&mut vals, 0)?, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "timestamp" => map_timestamps(ev, take_vector(&mut vals, 0)?),
        "round" => {
            let series = take_vector(&mut vals, 0)?;
            let to_nearest: Vec<f64> =
                if vals.len() > 1 { scalar_arg(&vals, 1)?.to_vec() } else { vec![1.0; n] };
            map_points_step(ev, series, |v, i| {
                // Inverting first loses less precision, as Prometheus notes.
                let inv = 1.0 / to_nearest[i];
                Some((v * inv + 0.5).floor() / inv)
            })
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let series = take_vector(&mut vals, 0)?;
            let (lo, hi): (Vec<f64>, Vec<f64>) = match name {
                "clamp" => (scalar_arg(&vals, 1)?.to_vec(), scalar_arg(&vals, 2)?.to_vec()),
                "clamp_min" => (scalar_arg(&vals, 1)?.to_vec(), vec![f64::INFINITY; n]),
                _ => (vec![f64::NEG_INFINITY; n], scalar_arg(&vals, 1)?.to_vec()),
            };
            map_points_step(ev, series, |v, i| {
                if hi[i] < lo[i] {
                    return None;
                }
                Some(go_max(lo[i], go_min(hi[i], v)))
            })
        }
        "time" => Ok(step_scalar(ev, &|t| t as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "max_of" | "min_of" => {
            let (a, b) = (scalar_arg(&vals, 0)?, scalar_arg(&vals, 1)?);
            let f = if name == "max_of" { go_max } else { go_min };
            Ok(Val::Scalar(a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()))
        }
        "start" => Ok(Val::Scalar(vec![ev.query_start as f64 / 1000.0; n])),
        "end" => Ok(Val::Scalar(vec![ev.query_end as f64 / 1000.0; n])),
        "range" => Ok(Val::Scalar(vec![(ev.query_end - ev.query_start) as f64 / 1000.0; n])),
        "step" => Ok(Val::Scalar(vec![ev.query_step as f64 / 1000.0; n])),
        "vector" => {
            let values = scalar_arg(&vals, 0)?;
            Ok(Val::Vector(vec![SSeries::new(Labels::empty(), ev.scalar_points(values), false)]))
        }
        "scalar" => {
            let series = take_vector(&mut vals, 0)?;
            let idx = StepIndex::new(ev, &series);
            Ok(Val::Scalar(
                (0..n)
                    .map(|i| match idx.at(i) {
                        [(_, v)] => *v,
                        _ => f64::NAN,
                    })
                    .collect(),
            ))
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            let mut series = take_vector(&mut vals, 0)?;
            if n == 1 {
                let labels: Vec<&str> =
                    (1..args.len()).map(|i| string_arg(args, i)).collect::<EvalResult<_>>()?;
                sort_instant(name, &mut series, &labels);
            }
            Ok(Val::Vector(series))
        }
        "absent" => {
            let series = take_vector(&mut vals, 0)?;
            let mut present = vec![false; n];
            for s in &series {
                let times = s.points.iter().map(|p| p.t).chain(s.hists.iter().map(|h| h.t));
                times.for_each(|t| present[ev.step_of(t)] = true);
            }
            let points: Vec<Sample> =
                (0..n).filter(|&i| !present[i]).map(|i| Sample { t: ev.ts(i), v: 1.0 }).collect();
            if points.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![SSeries::new(absent_labels(args[0]), points, false)]))
        }
        "histogram_quantile" => {
            let q = scalar_arg(&vals, 0)?.to_vec();
            let series = take_vector(&mut vals, 1)?;
            histogram::classic_quantile(ev, &q, series, args)
        }
        "histogram_fraction" => {
            let lo = scalar_arg(&vals, 0)?.to_vec();
            let hi = scalar_arg(&vals, 1)?.to_vec();
            let series = take_vector(&mut vals, 2)?;
            histogram::classic_fraction(ev, &lo, &hi, series, args[2])
        }
        "histogram_quantiles" => {
            let series = take_vector(&mut vals, 0)?;
            let label = string_arg(args, 1)?.to_owned();
            let qs: Vec<Vec<f64>> = (2..vals.len())
                .map(|i| scalar_arg(&vals, i).map(<[f64]>::to_vec))
                .collect::<EvalResult<_>>()?;
            histogram::classic_quantiles(ev, series, &label, &qs, args)
        }
        // Native-histogram functions ignore float samples, as in Prometheus.
        "histogram_count" | "histogram_sum" | "histogram_avg" => {
            let mut series = take_vector(&mut vals, 0)?;
            for s in &mut series {
                s.points = s
                    .hists
                    .drain(..)
                    .map(|p| {
                        let h = &p.h;
                        let v = match name {
                            "histogram_count" => h.count,
                            "histogram_sum" => h.sum,
                            _ => h.sum / h.count,
                        };
                        Sample { t: p.t, v }
                    })
                    .collect();
                s.drop_name = true;
            }
            series.retain(|s| !s.points.is_empty());
            Ok(Val::Vector(ev.drop_names_now(series)?))
        }
        // Only reached without histograms (refused above): nothing to select.
        "histogram_stddev" | "histogram_stdvar" => Ok(Val::Vector(Vec::new())),
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let f = date_fn(name);
            if vals.is_empty() {
                // Without an argument: the step's own time, as a one-element vector.
                let points = (0..n)
                    .map(|i| Sample { t: ev.ts(i), v: f(ev.ts(i).div_euclid(1000)) })
                    .collect();
                Ok(Val::Vector(vec![SSeries::new(Labels::empty(), points, false)]))
            } else {
                let series = take_vector(&mut vals, 0)?;
                map_points(ev, series, |v| f(go_float_to_i64(v)))
            }
        }
        other => {
            Err(QueryError::Eval(format!("function {other}() is not supported by tocsin yet")))
        }
    }
}

/// Go's `math.Max`: NaN wins, +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_positive() { a } else { b };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`: NaN wins, -0 beats +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

/// Go's float-to-int64 conversion as on amd64, where Prometheus runs: values
/// out of range (and NaN) become the minimum int64.
fn go_float_to_i64(v: f64) -> i64 {
    // 2^63 is exactly representable; everything from it upwards overflows.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || !(-LIMIT..LIMIT).contains(&v) { i64::MIN } else { v as i64 }
}

fn map_timestamps(ev: &Evaluator, mut series: Vec<SSeries>) -> EvalResult<Val> {
    for s in &mut series {
        if !s.hists.is_empty() {
            s.points.extend(s.hists.drain(..).map(|h| Sample { t: h.t, v: 0.0 }));
            crate::sort::by_key(&mut s.points, |p| p.t);
        }
        s.points.iter_mut().for_each(|p| p.v = p.t as f64 / 1000.0);
        s.drop_name = true;
    }
    Ok(Val::Vector(ev.drop_names_now(series)?))
}

/// Orders an instant vector like Prometheus's sort functions. NaN sorts last
/// in both directions. Stable, as Go's insertion sort is for small inputs.
fn sort_instant(name: &str, series: &mut [SSeries], labels: &[&str]) {
    let v = |s: &SSeries| s.points.first().map_or(f64::NAN, |p| p.v);
    match name {
        "sort" => crate::sort::by(series, |a, b| {
            let (x, y) = (v(a), v(b));
            // Reverse of "NaN first, then descending" = ascending, NaN last.
            order_by_less(|p, q| p.is_nan() || p > q, y, x)
        }),
        "sort_desc" => crate::sort::by(series, |a, b| {
            let (x, y) = (v(a), v(b));
            order_by_less(|p, q| p.is_nan() || p < q, y, x)
        }),
        _ => {
            let desc = name == "sort_by_label_desc";
            crate::sort::by(series, |a, b| {
                for l in labels {
                    let (x, y) = (a.labels.get_or_empty(l), b.labels.get_or_empty(l));
                    if x == y {
                        continue;
                    }
                    let ord = if natural_less(x, y) {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    };
                    return if desc { ord.reverse() } else { ord };
                }
                let ord = a.labels.cmp(&b.labels);
                if desc { ord.reverse() } else { ord }
            });
        }
    }
}

fn order_by_less(less: impl Fn(f64, f64) -> bool, a: f64, b: f64) -> std::cmp::Ordering {
    if less(a, b) {
        std::cmp::Ordering::Less
    } else if less(b, a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// Natural ("human") string order, as the natsort package Prometheus uses:
/// runs of digits compare by numeric value, everything else byte-wise.
fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i]).unwrap_or("").trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j]).unwrap_or("").trim_start_matches('0');
            if na.len() != nb.len() {
                return na.len() < nb.len();
            }
            if na != nb {
                return na < nb;
            }
            continue;
        }
        if ca != cb {
            return ca < cb;
        }
        i += 1;
        j += 1;
    }
    a.len() - i < b.len() - j
}

/// The labels `absent()` reports: the selector's equality matchers, except
/// the metric name and labels matched more than once or otherwise.
fn absent_labels(arg: &Expr) -> Labels {
    let vs = match arg {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            b.set(m.name.as_str(), m.value.as_str());
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.labels()
}

fn label_replace(ev: &mut Evaluator, args: &[&Expr]) -> EvalResult<Val> {
    let dst = string_arg(args, 1)?;
    let repl = string_arg(args, 2)?;
    let src = string_arg(args, 3)?;
    let regex_src = string_arg(args, 4)?;
    let re = compile_anchored(regex_src).map_err(|_| {
        QueryError::Eval(format!("invalid regular expression in label_replace(): {regex_src}"))
    })?;
    if dst.is_empty() {
        return Err(QueryError::Eval(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut series = ev.eval_vector(args[0])?;
    for s in &mut series {
        let src_val = s.labels.get_or_empty(src);
        if let Some(caps) = re.captures(src_val) {
            let mut res = String::new();
            caps.expand(repl, &mut res);
            let mut b = s.labels.builder();
            b.set(dst, res);
            s.labels = b.labels();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(merge_same_labels(series)?))
}

fn label_join(ev: &mut Evaluator, args: &[&Expr]) -> EvalResult<Val> {
    let dst = string_arg(args, 1)?;
    let sep = string_arg(args, 2)?;
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        let s = string_arg(args, i)?;
        if s.is_empty() {
            return Err(QueryError::Eval(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if dst.is_empty() {
        return Err(QueryError::Eval(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut series = ev.eval_vector(args[0])?;
    for s in &mut series {
        let joined = srcs.iter().map(|l| s.labels.get_or_empty(l)).collect::<Vec<_>>().join(sep);
        let mut b = s.labels.builder();
        b.set(dst, joined);
        s.labels = b.labels();
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(merge_same_labels(series)?))
}

// ----- date functions ---------------------------------------------------------

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (y, m, d) = crate::duration::civil_from_days(days);
    (y, m as u32, d as u32)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// The calendar function `name` of a Unix time in seconds, in UTC.
fn date_fn(name: &str) -> fn(i64) -> f64 {
    fn parts(secs: i64) -> (i64, u32, u32, i64) {
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs.rem_euclid(86_400))
    }
    match name {
        "day_of_month" => |s| parts(s).2 as f64,
        "day_of_week" => |s| (s.div_euclid(86_400) + 4).rem_euclid(7) as f64,
        "day_of_year" => |s| {
            let (y, m, d, _) = parts(s);
            ((1..m).map(|mm| days_in_month(y, mm)).sum::<u32>() + d) as f64
        },
        "days_in_month" => |s| {
            let (y, m, _, _) = parts(s);
            days_in_month(y, m) as f64
        },
        "hour" => |s| (parts(s).3 / 3600) as f64,
        "minute" => |s| ((parts(s).3 % 3600) / 60) as f64,
        "month" => |s| parts(s).1 as f64,
        _ => |s| parts(s).0 as f64,
    }
}

// ----- range functions --------------------------------------------------------

fn eval_range_call(
    ev: &mut Evaluator,
    name: &str,
    args: &[&Expr],
    range_idx: usize,
) -> EvalResult<Val> {
    // Scalar arguments first (they are cheap), in argument order.
    let mut scalar_args: Vec<Vec<f64>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != range_idx {
            scalar_args.push(ev.eval_scalar(a)?);
        }
    }
    let input = ev.range_input(args[range_idx])?;
    let n = ev.n_steps();
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let mut out: Vec<SSeries> = Vec::with_capacity(input.len());
    let mut buf: Vec<Sample> = Vec::new();
    let mut scalars = vec![0.0; scalar_args.len()];
    let mut present = if name == "absent_over_time" { vec![false; n] } else { Vec::new() };
    for si in 0..input.len() {
        let (labels, in_drop) = input.load(si, ev.storage, &mut buf, name)?;
        ev.account(buf.len())?;
        let mut points = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        for step in 0..n {
            let ts = ev.ts(step);
            let end = input.window_end(ts);
            let start = end - input.range;
            while lo < buf.len() && buf[lo].t <= start {
                lo += 1;
            }
            hi = hi.max(lo);
            // Mostly the window reaches the newest sample: always so in an
            // instant query, whose single window would otherwise be walked.
            if buf.last().is_some_and(|s| s.t <= end) {
                hi = buf.len();
            }
            while hi < buf.len() && buf[hi].t <= end {
                hi += 1;
            }
            if lo == hi {
                continue;
            }
            if name == "absent_over_time" {
                present[step] = true;
                continue;
            }
            for (k, a) in scalar_args.iter().enumerate() {
                scalars[k] = a[step];
            }
            let ctx = RangeCtx {
                ts,
                range_start: start,
                range_end: end,
                range_ms: input.range,
                scalars: &scalars,
                args,
            };
            if let Some(v) = range_fn(ev, name, &buf[lo..hi], &ctx)? {
                // Sized once for the steps left: one point for an instant query.
                if points.capacity() == 0 {
                    points.reserve_exact(n - step);
                }
                points.push(Sample { t: ts, v });
            }
        }
        if (name == "rate" || name == "increase") && !points.is_empty() {
            let metric = labels.metric_name().unwrap_or_default();
            if !metric.is_empty()
                && !["_total", "_sum", "_count", "_bucket"].iter().any(|s| metric.ends_with(s))
            {
                ev.note(annotations::possible_non_counter(metric), args[range_idx]);
            }
        }
        if !points.is_empty() {
            out.push(SSeries::new(labels, points, !keep_name || in_drop));
        }
    }
    if name == "absent_over_time" {
        let points: Vec<Sample> =
            (0..n).filter(|&i| !present[i]).map(|i| Sample { t: ev.ts(i), v: 1.0 }).collect();
        if points.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![SSeries::new(absent_labels(args[range_idx]), points, true)]));
    }
    Ok(Val::Vector(ev.drop_names_now(out)?))
}

/// One range function over one window (never empty).
fn range_fn(
    ev: &mut Evaluator,
    name: &str,
    w: &[Sample],
    ctx: &RangeCtx,
) -> EvalResult<Option<f64>> {
    Ok(match name {
        "rate" => extrapolated_rate(w, ctx, true, true),
        "increase" => extrapolated_rate(w, ctx, true, false),
        "delta" => extrapolated_rate(w, ctx, false, false),
        "irate" => instant_value(w, true),
        "idelta" => instant_value(w, false),
        "deriv" => {
            if w.len() < 2 {
                None
            } else {
                Some(linear_regression(w, w[0].t).0)
            }
        }
        "predict_linear" => {
            if w.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(w, ctx.ts);
                Some(slope * ctx.scalars[0] + intercept)
            }
        }
        "count_over_time" => Some(w.len() as f64),
        "present_over_time" => Some(1.0),
        "last_over_time" => w.last().map(|s| s.v),
        "first_over_time" => w.first().map(|s| s.v),
        "ts_of_last_over_time" => w.last().map(|s| s.t as f64 / 1000.0),
        "ts_of_first_over_time" => w.first().map(|s| s.t as f64 / 1000.0),
        "max_over_time" => Some(compare_over_time(w, |cur, best| cur > best || best.is_nan()).1),
        "min_over_time" => Some(compare_over_time(w, |cur, best| cur < best || best.is_nan()).1),
        "ts_of_max_over_time" => {
            Some(compare_over_time(w, |cur, best| cur >= best || best.is_nan()).0 as f64 / 1000.0)
        }
        "ts_of_min_over_time" => {
            Some(compare_over_time(w, |cur, best| cur <= best || best.is_nan()).0 as f64 / 1000.0)
        }
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for s in w {
                (sum, c) = kahan::inc(s.v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        "avg_over_time" => Some(avg_over_time(w)),
        "stddev_over_time" => Some(variance_over_time(w).sqrt()),
        "stdvar_over_time" => Some(variance_over_time(w)),
        "quantile_over_time" => {
            let q = ctx.scalars[0];
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ev.note(annotations::invalid_quantile(q), ctx.args[0]);
            }
            let mut values: Vec<f64> = w.iter().map(|s| s.v).collect();
            Some(quantile(q, &mut values))
        }
        "mad_over_time" => {
            if w.iter().any(|s| s.v.is_nan()) {
                Some(f64::NAN)
            } else {
                let mut values: Vec<f64> = w.iter().map(|s| s.v).collect();
                let median = quantile(0.5, &mut values);
                values.iter_mut().for_each(|v| *v = (*v - median).abs());
                Some(quantile(0.5, &mut values))
            }
        }
        "changes" => {
            let mut changes = 0;
            for p in w.windows(2) {
                let (prev, cur) = (p[0].v, p[1].v);
                if cur != prev && !(cur.is_nan() && prev.is_nan()) {
                    changes += 1;
                }
            }
            Some(changes as f64)
        }
        "resets" => Some(w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64),
        "double_exponential_smoothing" | "holt_winters" => double_exponential_smoothing(w, ctx)?,
        other => {
            return Err(QueryError::Eval(format!(
                "function {other}() is not supported by tocsin yet"
            )));
        }
    })
}

/// Prometheus's `extrapolatedRate`: the increase over the samples in the
/// window, extrapolated towards the window edges when the samples come close
/// enough to them, never below zero for counters.
fn extrapolated_rate(w: &[Sample], ctx: &RangeCtx, is_counter: bool, is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    // Resets are rare: looking for one first spares the sum's chain of
    // dependent additions, which keeps the order that makes it bit-exact.
    if is_counter && w.windows(2).any(|p| p[1].v < p[0].v) {
        for p in w.windows(2) {
            if p[1].v < p[0].v {
                result += p[0].v;
            }
        }
    }
    let mut duration_to_start = (first.t - ctx.range_start) as f64 / 1000.0;
    let mut duration_to_end = (ctx.range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (w.len() - 1) as f64;
    let threshold = average_between * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_between / 2.0;
    }
    if is_counter {
        // A counter cannot go below zero: do not extrapolate past the point
        // where the slope would reach it.
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first.v >= 0.0 {
            duration_to_zero = sampled_interval * (first.v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_between / 2.0;
    }
    let mut factor = if sampled_interval != 0.0 {
        (sampled_interval + duration_to_start + duration_to_end) / sampled_interval
    } else {
        1.0
    };
    if is_rate {
        factor /= ctx.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples.
fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (a, b) = (w[w.len() - 2], w[w.len() - 1]);
    let interval = b.t - a.t;
    if interval == 0 {
        return None;
    }
    let mut v = b.v;
    // A counter reset leaves the newest value as the increase.
    if !is_rate || b.v >= a.v || b.v.is_nan() || a.v.is_nan() {
        v = b.v - a.v;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit of value over time (seconds since `intercept_time`),
/// with Prometheus's compensated sums and its special case for constant values.
fn linear_regression(w: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut cxy, mut sum_x2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].v;
    let mut const_y = true;
    for (i, s) in w.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, cx) = kahan::inc(x, sum_x, cx);
        (sum_y, cy) = kahan::inc(s.v, sum_y, cy);
        (sum_xy, cxy) = kahan::inc(x * s.v, sum_xy, cxy);
        (sum_x2, cx2) = kahan::inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += cx;
    sum_y += cy;
    sum_xy += cxy;
    sum_x2 += cx2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// The winning sample under `better(candidate, best)`: (timestamp, value).
fn compare_over_time(w: &[Sample], better: impl Fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut best_t, mut best) = (w[0].t, w[0].v);
    for s in w {
        if better(s.v, best) {
            best = s.v;
            best_t = s.t;
        }
    }
    (best_t, best)
}

fn avg_over_time(w: &[Sample]) -> f64 {
    let (mut sum, mut count, mut mean, mut c) = (w[0].v, 1.0, 0.0, 0.0);
    let mut incremental = false;
    for (i, s) in w[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan::inc(s.v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan::inc(s.v / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

fn variance_over_time(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan::inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan::inc(delta * (s.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Holt's linear (double exponential) smoothing, as Prometheus computes it.
fn double_exponential_smoothing(w: &[Sample], ctx: &RangeCtx) -> EvalResult<Option<f64>> {
    let (sf, tf) = (ctx.scalars[0], ctx.scalars[1]);
    if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
        return Err(QueryError::Eval(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
        return Err(QueryError::Eval(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if w.len() < 2 {
        return Ok(None);
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 { b } else { tf * (s1 - s0) + (1.0 - tf) * b }
    };
    let (mut s0, mut s1) = (0.0, w[0].v);
    let mut b = w[1].v - w[0].v;
    for (i, s) in w.iter().enumerate().skip(1) {
        let x = sf * s.v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        let f = date_fn("day_of_week");
        assert_eq!(f(0), 4.0); // a Thursday
        assert_eq!(date_fn("day_of_year")(86_400 * 59), 60.0);
        assert_eq!(date_fn("days_in_month")(86_400 * 31), 28.0);
    }

    #[test]
    fn natural_order() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("a", "b"));
        assert!(natural_less("a", "aa"));
    }

    #[test]
    fn go_min_max_nan_and_zero() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert!(go_min(1.0, f64::NAN).is_nan());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
    }
}
