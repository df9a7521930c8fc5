//! `histogram_quantile`, `histogram_fraction` and `histogram_quantiles` over
//! classic histograms: `_bucket` series told apart by their `le` label.

use crate::gofmt;
use crate::labels::{Labels, METRIC_NAME, Str};
use crate::sample::almost_equal;

use promql_parser::parser::Expr;

use super::QueryError;
use super::annotations;
use super::eval::{EvalResult, Evaluator, LabelBuilder, SSeries, StepIndex, Val};

/// Relative difference below which adjacent bucket counts are treated as equal
/// (floating-point noise), as in Prometheus.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

fn sort_and_coalesce(buckets: &mut Vec<Bucket>) {
    crate::sort::by(buckets, |a, b| {
        a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(b),
        }
    }
    *buckets = out;
}

/// Removes decreases between successive buckets; returns whether a real
/// (not floating-point noise) decrease had to be removed.
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut forced = false;
    let Some(first) = buckets.first() else { return false };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    forced
}

/// The q-quantile of classic buckets, assuming observations spread uniformly
/// within each bucket. Returns the value and whether monotonicity was forced.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    crate::sort::by(buckets, |a, b| {
        a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal)
    });
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return (f64::NAN, false);
    }
    sort_and_coalesce(buckets);
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    // First bucket (among all but the +Inf one) whose count reaches the rank.
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    let v = if b == n {
        buckets[n - 1].upper
    } else if b == 0 && buckets[0].upper <= 0.0 {
        buckets[0].upper
    } else {
        let (mut start, end, mut count) = (0.0, buckets[b].upper, buckets[b].count);
        if b > 0 {
            start = buckets[b - 1].upper;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        start + (end - start) * (rank / count)
    };
    (v, forced)
}

/// The fraction of observations between `lower` and `upper`, interpolating
/// linearly within buckets.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    crate::sort::by(buckets, |a, b| {
        a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal)
    });
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return f64::NAN;
    }
    sort_and_coalesce(buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if buckets[0].upper <= 0.0 { f64::NEG_INFINITY } else { 0.0 };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper;
        }
        let upper_bound = b.upper;
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                return b.count;
            }
            rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Input series grouped into histograms, computed once per query: each
/// series' group (its labels without `le`) and parsed bucket bound.
struct Histograms {
    /// Group of each input series, or `None` for a malformed `le`.
    group_of: Vec<Option<usize>>,
    upper: Vec<f64>,
    /// Output labels per group: the input labels without `le`.
    labels: Vec<Labels>,
    drop_name: Vec<bool>,
}

impl Histograms {
    fn new(ev: &mut Evaluator, series: &[SSeries], arg: &Expr) -> Self {
        let le: [Str; 1] = [Str::from("le")];
        let mut by_sig: hashbrown::HashMap<Labels, usize, foldhash::fast::RandomState> =
            Default::default();
        let mut h = Histograms {
            group_of: Vec::new(),
            upper: Vec::new(),
            labels: Vec::new(),
            drop_name: Vec::new(),
        };
        for s in series {
            let le_val = s.labels.get_or_empty("le");
            match gofmt::parse_float(le_val) {
                Ok(u) => {
                    let mut b = s.labels.builder();
                    b.del(&le[0]);
                    let key = b.labels();
                    let next = h.labels.len();
                    let g = *by_sig.entry(key.clone()).or_insert(next);
                    if g == next {
                        h.labels.push(key);
                        h.drop_name.push(true);
                    }
                    h.group_of.push(Some(g));
                    h.upper.push(u);
                }
                Err(_) => {
                    let name = if ev.opts.delayed_name_removal {
                        s.labels.get_or_empty(METRIC_NAME)
                    } else {
                        ""
                    };
                    ev.note(annotations::bad_bucket_label(name, le_val), arg);
                    h.group_of.push(None);
                    h.upper.push(f64::NAN);
                }
            }
        }
        h
    }

    /// Buckets per group at one step.
    fn buckets_at(&self, at: &[(u32, f64)], out: &mut [Vec<Bucket>]) {
        out.iter_mut().for_each(Vec::clear);
        for &(si, v) in at {
            if let Some(g) = self.group_of[si as usize] {
                out[g].push(Bucket { upper: self.upper[si as usize], count: v });
            }
        }
    }
}

fn check_quantile(ev: &mut Evaluator, q: f64, at: &Expr) {
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ev.note(annotations::invalid_quantile(q), at);
    }
}

pub(crate) fn classic_quantile(
    ev: &mut Evaluator,
    q: &[f64],
    series: Vec<SSeries>,
    args: &[&Expr],
) -> EvalResult<Val> {
    let hs = Histograms::new(ev, &series, args[1]);
    let idx = StepIndex::new(ev, &series);
    let mut buckets = vec![Vec::new(); hs.labels.len()];
    let mut out = LabelBuilder::new();
    for (step, &q) in q.iter().enumerate().take(ev.n_steps()) {
        check_quantile(ev, q, args[0]);
        hs.buckets_at(idx.at(step), &mut buckets);
        for (g, b) in buckets.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let (v, forced) = bucket_quantile(q, b);
            if forced {
                let name = if ev.opts.delayed_name_removal {
                    hs.labels[g].get_or_empty(METRIC_NAME)
                } else {
                    ""
                };
                ev.note(annotations::forced_monotonicity(name), args[1]);
            }
            out.push(&hs.labels[g], hs.drop_name[g], ev.ts(step), v)?;
        }
    }
    Ok(Val::Vector(ev.drop_names_now(out.finish())?))
}

pub(crate) fn classic_fraction(
    ev: &mut Evaluator,
    lower: &[f64],
    upper: &[f64],
    series: Vec<SSeries>,
    arg: &Expr,
) -> EvalResult<Val> {
    let hs = Histograms::new(ev, &series, arg);
    let idx = StepIndex::new(ev, &series);
    let mut buckets = vec![Vec::new(); hs.labels.len()];
    let mut out = LabelBuilder::new();
    for step in 0..ev.n_steps() {
        hs.buckets_at(idx.at(step), &mut buckets);
        for (g, b) in buckets.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let v = bucket_fraction(lower[step], upper[step], b);
            out.push(&hs.labels[g], hs.drop_name[g], ev.ts(step), v)?;
        }
    }
    Ok(Val::Vector(ev.drop_names_now(out.finish())?))
}

pub(crate) fn classic_quantiles(
    ev: &mut Evaluator,
    series: Vec<SSeries>,
    label: &str,
    qs: &[Vec<f64>],
    args: &[&Expr],
) -> EvalResult<Val> {
    if label.is_empty() {
        return Err(QueryError::Eval(format!("invalid label name {}", gofmt::quote(label))));
    }
    let hs = Histograms::new(ev, &series, args[0]);
    let idx = StepIndex::new(ev, &series);
    let mut buckets = vec![Vec::new(); hs.labels.len()];
    let mut out = LabelBuilder::new();
    for step in 0..ev.n_steps() {
        for (k, q) in qs.iter().enumerate() {
            check_quantile(ev, q[step], args[k + 2]);
        }
        hs.buckets_at(idx.at(step), &mut buckets);
        for q in qs {
            let q = q[step];
            let qstr =
                if q.is_nan() { "NaN".to_owned() } else { gofmt::format_openmetrics_float(q) };
            for (g, b) in buckets.iter().enumerate() {
                if b.is_empty() {
                    continue;
                }
                let mut work = b.clone();
                let (v, forced) = bucket_quantile(q, &mut work);
                if forced {
                    let name = if ev.opts.delayed_name_removal {
                        hs.labels[g].get_or_empty(METRIC_NAME)
                    } else {
                        ""
                    };
                    ev.note(annotations::forced_monotonicity(name), args[0]);
                }
                let mut lb = hs.labels[g].builder();
                lb.set(label, qstr.as_str());
                out.push(&lb.labels(), hs.drop_name[g], ev.ts(step), v)?;
            }
        }
    }
    Ok(Val::Vector(ev.drop_names_now(out.finish())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
    }

    #[test]
    fn quantile_interpolates_within_bucket() {
        let mut bs = b(&[(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(bucket_quantile(0.5, &mut bs).0, 1.0);
        let mut bs = b(&[(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(bucket_quantile(0.75, &mut bs).0, 1.5);
    }

    #[test]
    fn quantile_needs_inf_bucket() {
        let mut bs = b(&[(1.0, 10.0)]);
        assert!(bucket_quantile(0.5, &mut bs).0.is_nan());
    }

    #[test]
    fn non_monotonic_buckets_are_fixed_and_reported() {
        let mut bs = b(&[(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 12.0)]);
        let (_, forced) = bucket_quantile(0.5, &mut bs);
        assert!(forced);
    }

    #[test]
    fn fraction_of_whole_range_is_one() {
        let mut bs = b(&[(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(bucket_fraction(0.0, 2.0, &mut bs), 1.0);
    }
}
