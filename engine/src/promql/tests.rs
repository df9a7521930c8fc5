//! Evaluator unit tests over a small head. The full conformance suite is the
//! promqltest runner (`engine/tests/promqltest.rs`); these pin the basics and
//! the engine's own edges.

use super::*;
use crate::labels::Labels;
use crate::storage::Head;

const M: i64 = 60_000;

type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn head(series: &[TestSeries]) -> Head {
    let h = Head::default();
    for (labels, samples) in series {
        let l = Labels::from_pairs(labels);
        for &(t, v) in *samples {
            h.append_labels(&l, t, v).unwrap();
        }
    }
    h
}

fn counter(step: f64) -> Vec<(i64, f64)> {
    (0..=10).map(|i| (i * M, i as f64 * step)).collect()
}

fn instant(h: &Head, q: &str, t: i64) -> Vec<(String, f64)> {
    let e = Engine::new(EngineOptions::default());
    match e.instant(h, q, t).unwrap().value {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        Value::Scalar { v, .. } => vec![("scalar".into(), v)],
        other => panic!("unexpected {other:?}"),
    }
}

fn sorted(mut v: Vec<(String, f64)>) -> Vec<(String, f64)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn rate_extrapolates_like_prometheus() {
    let a = counter(60.0);
    let h = head(&[(&[("__name__", "x_total"), ("job", "a")], &a)]);
    // 1/s counter sampled every minute: rate over 5m is exactly 1.
    assert_eq!(instant(&h, "rate(x_total[5m])", 10 * M), vec![(r#"{job="a"}"#.into(), 1.0)]);
    assert_eq!(instant(&h, "increase(x_total[5m])", 10 * M), vec![(r#"{job="a"}"#.into(), 300.0)]);
}

#[test]
fn aggregation_by_and_topk_order() {
    let h = head(&[
        (&[("__name__", "x"), ("job", "a"), ("i", "1")], &[(0, 1.0)]),
        (&[("__name__", "x"), ("job", "a"), ("i", "2")], &[(0, 5.0)]),
        (&[("__name__", "x"), ("job", "b"), ("i", "1")], &[(0, 3.0)]),
    ]);
    assert_eq!(
        sorted(instant(&h, "sum by (job) (x)", 0)),
        vec![(r#"{job="a"}"#.into(), 6.0), (r#"{job="b"}"#.into(), 3.0)]
    );
    let top = instant(&h, "topk(2, x)", 0);
    assert_eq!(top.iter().map(|x| x.1).collect::<Vec<_>>(), vec![5.0, 3.0]);
    assert_eq!(instant(&h, "count(x)", 0), vec![("{}".into(), 3.0)]);
    assert_eq!(instant(&h, "quantile(0.5, x)", 0), vec![("{}".into(), 3.0)]);
}

#[test]
fn group_left_copies_labels() {
    let h = head(&[
        (&[("__name__", "req"), ("job", "a"), ("i", "1")], &[(0, 10.0)]),
        (&[("__name__", "req"), ("job", "a"), ("i", "2")], &[(0, 20.0)]),
        (&[("__name__", "info"), ("job", "a"), ("team", "t1")], &[(0, 1.0)]),
    ]);
    assert_eq!(
        sorted(instant(&h, "req * on(job) group_left(team) info", 0)),
        vec![
            (r#"{i="1", job="a", team="t1"}"#.into(), 10.0),
            (r#"{i="2", job="a", team="t1"}"#.into(), 20.0)
        ]
    );
    let e = Engine::default();
    let err = e.instant(&h, "info * on(job) req", 0).unwrap_err().to_string();
    assert!(err.contains("many-to-many matching not allowed"), "{err}");
}

#[test]
fn staleness_and_lookback() {
    let h = head(&[(&[("__name__", "x")], &[(0, 1.0), (M, crate::STALE_NAN)])]);
    assert_eq!(instant(&h, "x", 30_000).len(), 1);
    assert!(instant(&h, "x", M).is_empty(), "a staleness marker ends the series");
    let h = head(&[(&[("__name__", "x")], &[(0, 1.0)])]);
    assert_eq!(instant(&h, "x", 5 * M - 1).len(), 1);
    assert!(instant(&h, "x", 5 * M).is_empty(), "lookback is left-open");
}

#[test]
fn offset_at_and_subquery() {
    let a = counter(1.0);
    let h = head(&[(&[("__name__", "x")], &a)]);
    assert_eq!(instant(&h, "x offset 2m", 10 * M)[0].1, 8.0);
    assert_eq!(instant(&h, "x @ 180", 10 * M)[0].1, 3.0);
    assert_eq!(instant(&h, "max_over_time(x[5m:1m])", 10 * M)[0].1, 10.0);
    assert_eq!(instant(&h, "count_over_time(x[5m:1m])", 10 * M)[0].1, 5.0);
}

#[test]
fn range_query_steps_and_scalars() {
    let a = counter(1.0);
    let h = head(&[(&[("__name__", "x")], &a)]);
    let e = Engine::default();
    let r = e.range(&h, "x * 2", 0, 4 * M, 2 * M).unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.iter().map(|p| p.v).collect::<Vec<_>>(), vec![0.0, 4.0, 8.0]);
    assert_eq!(m[0].labels.to_string(), "{}");
    let r = e.range(&h, "time()", 0, 2 * M, M).unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m[0].points.iter().map(|p| p.v).collect::<Vec<_>>(), vec![0.0, 60.0, 120.0]);
}

#[test]
fn errors_read_like_prometheus() {
    let h = head(&[]);
    let e = Engine::default();
    assert!(matches!(e.instant(&h, "sum(", 0), Err(QueryError::Parse(_))));
    let err = e.range(&h, "x[5m]", 0, 10, 1).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    let err = e.instant(&h, "topk(scalar(vector(NaN)), vector(1))", 0).unwrap_err().to_string();
    assert_eq!(err, "Parameter value is NaN");
}

#[test]
fn rate_on_non_counter_name_is_an_info() {
    let a = counter(1.0);
    let h = head(&[(&[("__name__", "gauge")], &a)]);
    let r = Engine::default().instant(&h, "rate(gauge[5m])", 10 * M).unwrap();
    assert_eq!(
        r.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"gauge\" (1:6)"
        ]
    );
}

#[test]
fn unbounded_resolution_is_refused_before_allocating() {
    let h = head(&[(&[("__name__", "x")], &[(0, 1.0)])]);
    let e = Engine::default();
    let err = e.range(&h, "x", 0, 1_000_000_000, 1).unwrap_err().to_string();
    assert!(err.starts_with("exceeded maximum resolution"), "{err}");
    let e = Engine::new(EngineOptions { max_samples: 1000, ..EngineOptions::default() });
    let err = e.instant(&h, "max_over_time(x[1000d:1s])", 0).unwrap_err().to_string();
    assert_eq!(
        err,
        "query processing would load too many samples into memory in subquery evaluation"
    );
}

#[test]
fn parse_errors_use_prometheus_words() {
    let err = |q: &str| parse(q).unwrap_err().to_string();
    assert_eq!(
        err("rate(x)"),
        "parse error: expected type range vector in call to function \"rate\", got instant vector"
    );
    assert_eq!(
        err("topk(x, y)"),
        "parse error: expected type scalar in aggregation parameter, got instant vector"
    );
    assert_eq!(err("1 > 2"), "parse error: comparisons between scalars must use BOOL modifier");
}

#[test]
fn dropping_names_merges_or_refuses_only_what_collides() {
    let e = Engine::new(EngineOptions::default());
    let a = counter(60.0);
    // `b_total` starts where `a_total` ends, `c_total` overlaps it.
    let b: Vec<(i64, f64)> = (20..=30).map(|i| (i * M, i as f64)).collect();
    let h = head(&[
        (&[("__name__", "a_total"), ("job", "x")], &a),
        (&[("__name__", "a_total"), ("job", "y")], &a),
        (&[("__name__", "b_total"), ("job", "x")], &b),
        (&[("__name__", "c_total"), ("job", "y")], &a),
        (&[("job", "z")], &a),
        (&[("__name__", "d"), ("job", "z")], &a),
    ]);
    // One name dropped from every series: nothing can collide.
    assert_eq!(
        sorted(instant(&h, "rate(a_total[5m])", 10 * M)),
        vec![(r#"{job="x"}"#.into(), 1.0), (r#"{job="y"}"#.into(), 1.0)]
    );
    let err = |q: &str| e.instant(&h, q, 10 * M).err().map(|e| e.to_string()).unwrap_or_default();
    // Two names, equal labels left: an error when both have a point...
    assert!(err(r#"rate({__name__=~"a_total|c_total", job="y"}[5m])"#).contains("same labelset"));
    // ... and when a series had no name to drop.
    assert!(err(r#"-{job="z"}"#).contains("same labelset"));
    // In a range query, series that never share a step merge into one.
    let r = e.range(&h, r#"rate({__name__=~"a_total|b_total", job="x"}[5m])"#, 5 * M, 25 * M, M);
    match r.unwrap().value {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1, "{m:?}");
            assert_eq!(m[0].labels.to_string(), r#"{job="x"}"#);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// A head with series `h` (histograms of count 1, 2, 3 at minutes 0-2, then
/// a float 10 at minute 3) and a float series `f`.
fn histogram_head() -> Head {
    use crate::histogram::{FloatHistogram, Span};
    use std::sync::Arc;
    let h = head(&[(&[("__name__", "f")], &[(0, 1.0), (M, 2.0)])]);
    let s = h.get_or_create(&Labels::from_pairs(&[("__name__", "h")]));
    for i in 0..3 {
        let c = (i + 1) as f64;
        let fh = FloatHistogram {
            count: c,
            sum: 10.0 * c,
            positive_spans: vec![Span { offset: 0, length: 1 }],
            positive_buckets: vec![c],
            ..FloatHistogram::default()
        };
        h.append_histogram(&s, i * M, Arc::new(fh)).unwrap();
    }
    h.append(&s, 3 * M, 10.0).unwrap();
    h
}

#[test]
fn selectors_return_native_histograms_and_the_newest_sample_of_either_kind() {
    let h = histogram_head();
    let e = Engine::default();
    let Value::Vector(v) = e.instant(&h, "h", 2 * M + 30_000).unwrap().value else { panic!() };
    assert_eq!(v.len(), 1);
    let got = v[0].h.as_ref().expect("a histogram sample");
    assert_eq!((got.count, got.sum, v[0].v), (3.0, 30.0, 0.0));
    // The float at minute 3 is newer than every histogram.
    assert_eq!(instant(&h, "h", 3 * M), [("{__name__=\"h\"}".to_owned(), 10.0)]);
    assert_eq!(instant(&h, "timestamp(h)", 2 * M + 1), [("{}".to_owned(), 120.0)]);
    assert_eq!(instant(&h, "histogram_count(h)", M), [("{}".to_owned(), 2.0)]);
    assert_eq!(instant(&h, "histogram_sum(h)", M), [("{}".to_owned(), 20.0)]);
    assert_eq!(instant(&h, "histogram_avg(h)", M), [("{}".to_owned(), 10.0)]);
    // Floats are ignored by the histogram functions, as in Prometheus.
    assert!(instant(&h, "histogram_count(h)", 3 * M).is_empty());
    assert!(instant(&h, "absent(h)", M).is_empty());

    // A range query keeps both kinds, each at its steps.
    let Value::Matrix(m) = e.range(&h, "h", 0, 3 * M, M).unwrap().value else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].histograms.iter().map(|p| p.t).collect::<Vec<_>>(), [0, M, 2 * M]);
    assert_eq!(m[0].points, [crate::sample::Sample::new(3 * M, 10.0)]);
    // And a range selector shows the histograms in its window.
    let Value::Matrix(m) = e.instant(&h, "h[90s]", 2 * M).unwrap().value else { panic!() };
    assert_eq!(m[0].histograms.len(), 2);
}

#[test]
fn operations_without_native_histogram_support_say_so() {
    let h = histogram_head();
    let e = Engine::default();
    for q in
        ["sum(h)", "h + 1", "-h", "abs(h)", "rate(h[5m])", "h and f", "max_over_time(h[1m:30s])"]
    {
        let err = e.instant(&h, q, 2 * M).unwrap_err().to_string();
        assert!(err.contains("does not support native histograms yet"), "{q}: {err}");
        assert!(err.contains("{__name__=\"h\"}"), "{q}: {err}");
    }
    // Only series that hold histograms in what the operation reads matter.
    assert_eq!(instant(&h, "sum(f)", M), [("{}".to_owned(), 2.0)]);
    assert_eq!(instant(&h, "h + 1", 3 * M), [("{}".to_owned(), 11.0)]);
}

#[test]
fn huge_numbers_as_durations_are_errors_not_panics() {
    for q in [
        "x[1e999]",
        "rate(x[1e308])",
        "x offset 1e999",
        "x offset -1e999",
        "x[1m:1e999]",
        "x[1e9999:]",
        "x[18446744073709551616]",
        "x[1_0e20]",
    ] {
        let err = parse(q).map(|_| ()).unwrap_err().to_string();
        assert!(err.starts_with("parse error: duration out of range"), "{q}: {err}");
    }
    // Numbers elsewhere, and durations in range, are untouched.
    for q in ["x > 1e999", "x[1e9]", "x offset 5m", "x[5m:1m]", "vector(1e308)"] {
        assert!(parse(q).is_ok(), "{q}");
    }
}
