//! Aggregation operators: sum, avg, count, min, max, group, stddev, stdvar,
//! quantile, count_values, topk, bottomk, limitk, limit_ratio.

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK, TokenId,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::gofmt;
use crate::labels::{Labels, Str};

use super::QueryError;
use super::eval::{
    EvalResult, Evaluator, LabelBuilder, SSeries, SlotBuilder, StepIndex, Val, unwrap_parens,
};
use super::{annotations, kahan};

/// The scalar parameter of topk, quantile, ...: one value per step, plus the
/// extremes Prometheus checks before evaluating.
struct Param {
    values: Vec<f64>,
    min: f64,
    max: f64,
    has_nan: bool,
}

impl Param {
    fn eval(ev: &mut Evaluator, expr: &Expr) -> EvalResult<Param> {
        let values = ev.eval_scalar(expr)?;
        let constant = matches!(unwrap_parens(expr), Expr::NumberLiteral(_));
        let (mut min, mut max, mut has_nan) = (f64::MAX, -f64::MAX, false);
        if constant {
            if let Some(&v) = values.first() {
                (min, max, has_nan) = (v, v, v.is_nan());
            }
        } else {
            // Go's math.Max/Min propagate NaN, which the checks below rely on.
            for &v in &values {
                max = if v.is_nan() || max.is_nan() { f64::NAN } else { max.max(v) };
                min = if v.is_nan() || min.is_nan() { f64::NAN } else { min.min(v) };
                has_nan |= v.is_nan();
            }
        }
        if values.is_empty() {
            (min, max) = (0.0, 0.0);
        }
        Ok(Param { values, min, max, has_nan })
    }

    fn at(&self, step: usize) -> f64 {
        self.values.get(step).copied().unwrap_or(0.0)
    }
}

struct Grouping {
    without: bool,
    names: Vec<Str>,
}

impl Grouping {
    fn key(&self, l: &Labels) -> u64 {
        if self.without {
            l.hash_without(&self.names)
        } else if self.names.is_empty() {
            0
        } else {
            l.hash_for(&self.names)
        }
    }

    fn labels(&self, l: &Labels) -> Labels {
        if self.without {
            l.drop_with_name(&self.names)
        } else if self.names.is_empty() {
            Labels::empty()
        } else {
            l.keep(&self.names)
        }
    }
}

pub(crate) fn eval_aggregate(ev: &mut Evaluator, agg: &AggregateExpr) -> EvalResult<Val> {
    let op = agg.op.id();
    let (without, names) = match &agg.modifier {
        Some(LabelModifier::Include(ls)) => (false, &ls.labels),
        Some(LabelModifier::Exclude(ls)) => (true, &ls.labels),
        None => (false, &Vec::new()),
    };
    let mut grouping =
        Grouping { without, names: names.iter().map(|s| Str::from(s.as_str())).collect() };
    crate::sort::sort(&mut grouping.names);
    grouping.names.dedup();

    if op == T_COUNT_VALUES {
        let label = match agg.param.as_deref().map(unwrap_parens) {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => return Err(QueryError::Eval("count_values needs a string parameter".into())),
        };
        if label.is_empty() {
            return Err(QueryError::Eval(format!("invalid label name {}", gofmt::quote(&label))));
        }
        if !without {
            grouping.names.push(Str::from(label.as_str()));
            crate::sort::sort(&mut grouping.names);
            grouping.names.dedup();
        }
        let input = ev.eval_vector(&agg.expr)?;
        super::eval::reject_histograms(&input, format_args!("aggregation count_values"))?;
        return count_values(ev, &grouping, &label, input);
    }

    let param = match (&agg.param, op) {
        (Some(p), T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO | T_QUANTILE) => {
            Some(Param::eval(ev, p)?)
        }
        _ => None,
    };
    let input = ev.eval_vector(&agg.expr)?;
    super::eval::reject_histograms(&input, format_args!("aggregation {}", agg.op))?;

    // Map every input series to its group once, in order of first appearance.
    let mut group_of = Vec::with_capacity(input.len());
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut by_key: hashbrown::HashMap<u64, usize, foldhash::fast::RandomState> =
        Default::default();
    let k_style = matches!(op, T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO);
    for s in &input {
        let next = by_key.len();
        let g = *by_key.entry(grouping.key(&s.labels)).or_insert(next);
        if g == next && !k_style {
            group_labels.push(grouping.labels(&s.labels));
        }
        group_of.push(g);
    }
    let ngroups = by_key.len();

    match op {
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
            let param = param.ok_or_else(|| QueryError::Eval("parameter missing".into()))?;
            let at = agg.param.as_deref().map(unwrap_parens);
            aggregate_k(ev, op, &param, at, input, &group_of, ngroups)
        }
        _ => {
            if op == T_QUANTILE
                && let (Some(p), Some(at)) = (&param, agg.param.as_deref())
            {
                let at = unwrap_parens(at);
                if p.has_nan {
                    ev.note(annotations::invalid_quantile(f64::NAN), at);
                }
                if p.max > 1.0 {
                    ev.note(annotations::invalid_quantile(p.max), at);
                }
                if p.min < 0.0 {
                    ev.note(annotations::invalid_quantile(p.min), at);
                }
            }
            aggregate_values(ev, op, param.as_ref(), input, &group_of, group_labels)
        }
    }
}

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
    drop_name: bool,
}

fn aggregate_values(
    ev: &mut Evaluator,
    op: TokenId,
    param: Option<&Param>,
    input: Vec<SSeries>,
    group_of: &[usize],
    group_labels: Vec<Labels>,
) -> EvalResult<Val> {
    let idx = StepIndex::new(ev, &input);
    let mut groups: Vec<Group> = vec![Group::default(); group_labels.len()];
    let mut out = SlotBuilder::new();
    for l in group_labels {
        out.slot(l, false);
    }
    let mut touched: Vec<usize> = Vec::new();
    for step in 0..ev.n_steps() {
        let t = ev.ts(step);
        touched.clear();
        for &(si, f) in idx.at(step) {
            let gi = group_of[si as usize];
            let g = &mut groups[gi];
            let in_drop = input[si as usize].drop_name;
            if !g.seen {
                *g = Group {
                    seen: true,
                    value: f,
                    mean: f,
                    count: 1.0,
                    drop_name: in_drop,
                    ..Group::default()
                };
                g.values.clear();
                match op {
                    T_STDDEV | T_STDVAR => {
                        g.value = if f.is_nan() || f.is_infinite() { f64::NAN } else { 0.0 }
                    }
                    T_QUANTILE => g.values.push(f),
                    T_GROUP => g.value = 1.0,
                    _ => {}
                }
                touched.push(gi);
                continue;
            }
            g.drop_name |= in_drop;
            match op {
                T_SUM => (g.value, g.kahan_c) = kahan::inc(f, g.value, g.kahan_c),
                T_AVG => {
                    g.count += 1.0;
                    if !g.incremental_mean {
                        let (nv, nc) = kahan::inc(f, g.value, g.kahan_c);
                        if !nv.is_infinite() {
                            (g.value, g.kahan_c) = (nv, nc);
                            continue;
                        }
                        // The plain sum overflowed: switch to a running mean.
                        g.incremental_mean = true;
                        g.mean = g.value / (g.count - 1.0);
                        g.kahan_c /= g.count - 1.0;
                    }
                    let q = (g.count - 1.0) / g.count;
                    (g.mean, g.kahan_c) = kahan::inc(f / g.count, q * g.mean, q * g.kahan_c);
                }
                T_MAX if g.value < f || g.value.is_nan() => g.value = f,
                T_MIN if g.value > f || g.value.is_nan() => g.value = f,
                T_COUNT => g.count += 1.0,
                T_STDDEV | T_STDVAR => {
                    g.count += 1.0;
                    let delta = f - g.mean;
                    g.mean += delta / g.count;
                    g.value += delta * (f - g.mean);
                }
                T_QUANTILE => g.values.push(f),
                _ => {}
            }
        }
        for &gi in &touched {
            let g = &mut groups[gi];
            let v = match op {
                T_AVG => {
                    if g.incremental_mean {
                        g.mean + g.kahan_c
                    } else {
                        g.value / g.count + g.kahan_c / g.count
                    }
                }
                T_COUNT => g.count,
                T_STDVAR => g.value / g.count,
                T_STDDEV => (g.value / g.count).sqrt(),
                T_QUANTILE => quantile(param.map_or(f64::NAN, |p| p.at(step)), &mut g.values),
                T_SUM => g.value + g.kahan_c,
                _ => g.value,
            };
            if g.drop_name {
                out.series[gi].drop_name = true;
            }
            out.push(gi, t, v)?;
            g.seen = false;
        }
    }
    Ok(Val::Vector(out.finish()))
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks.
/// Sorts `values` in place.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as with Prometheus's value heap ordering.
    crate::sort::by(values, |a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// A binary heap with Go's `container/heap` algorithms, so that ties come out
/// in the same order as Prometheus's topk/bottomk/limitk.
struct GoHeap {
    items: Vec<(u32, f64)>,
    /// topk orders by value ascending (smallest on top); bottomk descending.
    reverse: bool,
}

impl GoHeap {
    fn less(&self, i: usize, j: usize) -> bool {
        let (vi, vj) = (self.items[i].1, self.items[j].1);
        if vi.is_nan() {
            return true;
        }
        if self.reverse { vi > vj } else { vi < vj }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize) -> bool {
        let n = self.items.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && self.less(j1 + 1, j1) {
                j = j1 + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
        i > i0
    }

    fn push(&mut self, item: (u32, f64)) {
        self.items.push(item);
        let last = self.items.len() - 1;
        self.up(last);
    }

    fn fix_top(&mut self) {
        if !self.down(0) {
            self.up(0);
        }
    }

    /// The items ordered as `sort.Sort(sort.Reverse(heap))` leaves them: the
    /// best first, NaN last. Stable, as Go's insertion sort is for the small
    /// inputs where ties are visible.
    fn into_sorted(self) -> Vec<(u32, f64)> {
        let reverse = self.reverse;
        let mut items = self.items;
        let less = |a: f64, b: f64| {
            if a.is_nan() {
                return true;
            }
            if reverse { a > b } else { a < b }
        };
        // Reverse(less)(i, j) = less(j, i).
        crate::sort::by(&mut items, |a, b| {
            if less(b.1, a.1) {
                std::cmp::Ordering::Less
            } else if less(a.1, b.1) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        items
    }
}

fn ratio_offset(labels: &Labels) -> f64 {
    labels.stable_hash() as f64 / u64::MAX as f64
}

fn ratio_selects(ratio: f64, offset: f64) -> bool {
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

fn aggregate_k(
    ev: &mut Evaluator,
    op: TokenId,
    param: &Param,
    param_expr: Option<&Expr>,
    input: Vec<SSeries>,
    group_of: &[usize],
    ngroups: usize,
) -> EvalResult<Val> {
    if op == T_LIMIT_RATIO {
        if param.max == 0.0 && param.min == 0.0 {
            return Ok(Val::Vector(Vec::new()));
        }
        if param.has_nan {
            return Err(QueryError::Eval("Ratio value is NaN".into()));
        }
        if let Some(at) = param_expr {
            if param.max > 1.0 {
                ev.note(annotations::invalid_ratio(param.max, 1.0), at);
            }
            if param.min < -1.0 {
                ev.note(annotations::invalid_ratio(param.min, -1.0), at);
            }
        }
    } else {
        if param.max < 1.0 {
            return Ok(Val::Vector(Vec::new()));
        }
        if param.has_nan {
            return Err(QueryError::Eval("Parameter value is NaN".into()));
        }
        if param.min <= i64::MIN as f64 {
            return Err(QueryError::Eval(format!(
                "Scalar value {} underflows int64",
                gofmt::format_float_g(param.min)
            )));
        }
        if param.max >= i64::MAX as f64 {
            return Err(QueryError::Eval(format!(
                "Scalar value {} overflows int64",
                gofmt::format_float_g(param.max)
            )));
        }
    }
    let idx = StepIndex::new(ev, &input);
    let offsets: Vec<f64> = if op == T_LIMIT_RATIO {
        input.iter().map(|s| ratio_offset(&s.labels)).collect()
    } else {
        Vec::new()
    };
    // Output series are created on first emission, so an instant query lists
    // them in Prometheus's order: by group, best first.
    let mut out = SlotBuilder::new();
    let mut slot_of: Vec<Option<usize>> = vec![None; input.len()];
    let mut heaps: Vec<Option<GoHeap>> = (0..ngroups).map(|_| None).collect();
    let mut group_order: Vec<usize> = Vec::new();
    for step in 0..ev.n_steps() {
        let t = ev.ts(step);
        let p = param.at(step);
        let (k, ratio) = if op == T_LIMIT_RATIO {
            (0usize, p.clamp(-1.0, 1.0))
        } else {
            let k = (p as i64).min(input.len() as i64);
            if k < 1 {
                continue;
            }
            (k as usize, 0.0)
        };
        if op == T_LIMIT_RATIO && p == 0.0 {
            continue;
        }
        group_order.clear();
        for &(si, f) in idx.at(step) {
            let gi = group_of[si as usize];
            let heap = match &mut heaps[gi] {
                Some(h) => h,
                slot @ None => {
                    group_order.push(gi);
                    slot.insert(GoHeap {
                        items: Vec::with_capacity(k.min(64)),
                        reverse: op == T_BOTTOMK,
                    })
                }
            };
            match op {
                T_TOPK | T_BOTTOMK => {
                    if heap.items.len() < k {
                        heap.push((si, f));
                    } else {
                        let top = heap.items[0].1;
                        let better = if op == T_TOPK { top < f } else { top > f };
                        if better || (top.is_nan() && !f.is_nan()) {
                            heap.items[0] = (si, f);
                            if k > 1 {
                                heap.fix_top();
                            }
                        }
                    }
                }
                T_LIMITK => {
                    if heap.items.len() < k {
                        heap.push((si, f));
                    }
                }
                _ => {
                    if ratio_selects(ratio, offsets[si as usize]) {
                        heap.push((si, f));
                    }
                }
            }
        }
        for &gi in &group_order {
            let Some(heap) = heaps[gi].take() else { continue };
            let items = match op {
                T_TOPK | T_BOTTOMK => heap.into_sorted(),
                _ => heap.items,
            };
            for (si, f) in items {
                let slot = *slot_of[si as usize].get_or_insert_with(|| {
                    let s = &input[si as usize];
                    out.slot(s.labels.clone(), s.drop_name)
                });
                out.push(slot, t, f)?;
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

fn count_values(
    ev: &mut Evaluator,
    grouping: &Grouping,
    label: &str,
    input: Vec<SSeries>,
) -> EvalResult<Val> {
    let idx = StepIndex::new(ev, &input);
    let mut out = LabelBuilder::new();
    let mut counts: Vec<(Labels, f64)> = Vec::new();
    let mut by_key: hashbrown::HashMap<u64, usize, foldhash::fast::RandomState> =
        Default::default();
    for step in 0..ev.n_steps() {
        let t = ev.ts(step);
        counts.clear();
        by_key.clear();
        for &(si, f) in idx.at(step) {
            let mut b = input[si as usize].labels.builder();
            b.set(label, gofmt::format_float_f(f));
            let metric = b.labels();
            let key = grouping.key(&metric);
            match by_key.get(&key) {
                Some(&i) => counts[i].1 += 1.0,
                None => {
                    by_key.insert(key, counts.len());
                    counts.push((grouping.labels(&metric), 1.0));
                }
            }
        }
        for (labels, n) in &counts {
            out.push(labels, false, t, *n)?;
        }
    }
    Ok(Val::Vector(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(0.5, &mut [1.0, 3.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [0.0, 10.0]), 2.5);
        assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
    }

    #[test]
    fn go_heap_keeps_k_largest_in_order() {
        let mut h = GoHeap { items: vec![], reverse: false };
        for (i, v) in [5.0, 1.0, 9.0].iter().enumerate() {
            h.push((i as u32, *v));
        }
        h.items[0] = (3, 7.0);
        h.fix_top();
        let sorted: Vec<f64> = h.into_sorted().into_iter().map(|x| x.1).collect();
        assert_eq!(sorted, vec![9.0, 7.0, 5.0]);
    }
}
