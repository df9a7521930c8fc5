use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn h(s: &str) -> FloatHistogram {
    FloatHistogram::parse_notation(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn parse_err(s: &str) -> HistogramError {
    match FloatHistogram::parse_notation(s) {
        Ok(h) => panic!("{s:?} parsed as {h:?}"),
        Err(e) => e,
    }
}

fn span(offset: i32, length: u32) -> Span {
    Span { offset, length }
}

fn exponential(spans: &[(i32, u32)], buckets: &[f64]) -> FloatHistogram {
    FloatHistogram {
        positive_spans: spans.iter().map(|&(o, l)| span(o, l)).collect(),
        positive_buckets: buckets.to_vec(),
        ..FloatHistogram::default()
    }
}

/// The strings promtool's own rule tests use (unittest.yml).
const PROMTOOL_EXAMPLES: [&str; 5] = [
    "{{schema:1 sum:-0.3 count:32.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3 n_buckets:[4.1 5] n_offset:-5}}",
    "{{sum:3 count:2 buckets:[2]}}",
    "{{sum:1.3 count:1 buckets:[1]}}",
    "{{count:2 sum:3 counter_reset_hint:not_reset buckets:[2]}}",
    "{{count:4 sum:5.6 counter_reset_hint:not_reset buckets:[4]}}",
];

#[test]
fn parses_every_key() {
    let got = h(PROMTOOL_EXAMPLES[0]);
    let want = FloatHistogram {
        counter_reset_hint: CounterResetHint::Unknown,
        schema: 1,
        zero_threshold: 0.05,
        zero_count: 7.1,
        count: 32.1,
        sum: -0.3,
        positive_spans: vec![span(-3, 3)],
        positive_buckets: vec![5.1, 10.0, 7.0],
        negative_spans: vec![span(-5, 2)],
        negative_buckets: vec![4.1, 5.0],
        custom_values: vec![],
    };
    assert_eq!(got, want);
    let got = h(
        "{{schema:-53 sum:5 count:4 custom_values:[5 10] buckets:[1 2 1] counter_reset_hint:gauge}}",
    );
    assert_eq!(got.schema, CUSTOM_BUCKETS_SCHEMA);
    assert!(got.uses_custom_buckets());
    assert_eq!(got.custom_values, [5.0, 10.0]);
    assert_eq!(got.positive_spans, [span(0, 3)]);
    assert_eq!(got.counter_reset_hint, CounterResetHint::Gauge);
}

#[test]
fn missing_keys_are_zero_as_in_prometheus() {
    assert_eq!(h("{{}}"), FloatHistogram::default());
    assert_eq!(h("{{ }}"), FloatHistogram::default());
    assert_eq!(h("  {{ \t\n}}  "), FloatHistogram::default());
    // The count is not derived from the buckets, nor the schema guessed.
    let got = h("{{buckets:[1 2]}}");
    assert_eq!((got.count, got.schema), (0.0, 0));
    assert_eq!(got.positive_spans, [span(0, 2)]);
    // An offset without buckets has no span to go to.
    assert_eq!(h("{{offset:3 n_offset:-2}}"), FloatHistogram::default());
    assert_eq!(h("{{count:2}}").count, 2.0);
}

#[test]
fn keys_hints_and_numbers_as_the_lexer_reads_them() {
    let got =
        h("{{SUM:1e3 Count:010 z_bucket:1_000 Z_BUCKET_W:5e-1 counter_reset_hint:NOT_RESET}}");
    assert_eq!((got.sum, got.count, got.zero_count), (1000.0, 8.0, 1000.0));
    assert_eq!(got.zero_threshold, 0.5);
    assert_eq!(got.counter_reset_hint, CounterResetHint::NotReset);
    for (text, hint) in [
        ("unknown", CounterResetHint::Unknown),
        ("reset", CounterResetHint::Reset),
        ("not_reset", CounterResetHint::NotReset),
        ("Gauge", CounterResetHint::Gauge),
    ] {
        assert_eq!(h(&format!("{{{{counter_reset_hint:{text}}}}}")).counter_reset_hint, hint);
    }
    let got = h("{{count:Inf sum:-inf z_bucket:NaN}}");
    assert_eq!((got.count, got.sum), (f64::INFINITY, f64::NEG_INFINITY));
    assert!(got.zero_count.is_nan());
    let got = h("{{buckets:[Inf nan 1 -2 -.5] n_buckets:[1e-3]}}");
    assert_eq!(got.positive_buckets.len(), 5);
    assert_eq!(got.positive_buckets[0], f64::INFINITY);
    assert!(got.positive_buckets[1].is_nan());
    assert_eq!(got.positive_buckets[2..], [1.0, -2.0, -0.5]);
    assert_eq!(got.negative_buckets, [0.001]);
    // Integers are decimal for schema and offsets (Go's ParseUint base 10).
    let got = h("{{schema:010 offset:-0 n_offset:-2147483648 buckets:[1] n_buckets:[1]}}");
    assert_eq!(got.schema, 10);
    assert_eq!(got.positive_spans, [span(0, 1)]);
    assert_eq!(got.negative_spans, [span(i32::MIN, 1)]);
    // Whitespace between items may be any run of blanks, and may end the list.
    let got = h("{{sum:1\n\t count:2   buckets:[1   2 ] }}");
    assert_eq!((got.sum, got.count), (1.0, 2.0));
    assert_eq!(got.positive_buckets, [1.0, 2.0]);
}

#[test]
fn bucket_lists_follow_the_bucket_lexer() {
    // The bucket lexer scans a number right after `-`, so `-.5` is a
    // number there but `-Inf` is not; `.5` needs a leading digit.
    assert_eq!(h("{{buckets:[-.5]}}").positive_buckets, [-0.5]);
    assert!(matches!(parse_err("{{buckets:[-Inf]}}"), HistogramError::BadNumber(_)));
    assert!(matches!(parse_err("{{buckets:[.5]}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{buckets:[]}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{buckets:[ 1]}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{buckets:[1,2]}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{buckets:[1 abc]}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{buckets:[1x]}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{buckets:1}}"), HistogramError::Unexpected { .. }));
    assert!(matches!(parse_err("{{custom_values:[1 2]2}}"), HistogramError::Unexpected { .. }));
}

#[test]
fn bad_descriptions_are_clear_errors() {
    use HistogramError as E;
    let unexpected = |s: &str| matches!(parse_err(s), E::Unexpected { .. });
    // Prometheus's grammar allows no space after `{{` unless nothing follows.
    assert!(unexpected("{{ sum:1}}"));
    assert!(unexpected("{{sum:}}"));
    assert!(unexpected("{{sum:+1}}"));
    assert!(unexpected("{{sum:- 1}}"));
    assert!(unexpected("{{sum: 1}}"));
    assert!(unexpected("{{z_bucket_w:-1}}"));
    assert!(unexpected("{{sum:1x}}"));
    assert!(unexpected("{{sum:1}x}}"));
    assert!(unexpected("{{sum:1}}}"));
    assert!(unexpected("{{sum:1}} 2"));
    assert!(unexpected("{{sum:Infinity}}"));
    assert!(unexpected("{{counter_reset_hint:1}}"));
    assert!(unexpected("{{1}}"));
    assert!(unexpected(""));
    assert!(unexpected("sum:1"));
    assert!(matches!(parse_err("{{sum:1count:2}}"), E::BadNumber(_)));
    assert!(matches!(parse_err("{{sum:1e}}"), E::BadNumber(_)));
    assert_eq!(parse_err("{{sum:1e400}}"), E::NumberOutOfRange("1e400".into()));
    assert_eq!(parse_err("{{sum :1}}"), E::MissingColon("sum".into()));
    assert_eq!(parse_err("{{sum:1 sum:2}}"), E::DuplicateKey("sum"));
    assert_eq!(parse_err("{{buckets:[1] BUCKETS:[2]}}"), E::DuplicateKey("buckets"));
    assert_eq!(parse_err("{{foo:1}}"), E::UnknownKey("foo".into()));
    assert_eq!(parse_err("{{inf:1}}"), E::UnknownKey("inf".into()));
    assert_eq!(parse_err("{{counter_reset_hint:maybe}}"), E::BadCounterResetHint("maybe".into()));
    for (s, text) in [
        ("{{schema:1.5}}", "1.5"),
        ("{{schema:1e2}}", "1e2"),
        ("{{offset:1_0}}", "1_0"),
        ("{{schema:Inf}}", "Inf"),
    ] {
        assert!(matches!(parse_err(s), E::BadInteger { text: t, .. } if t == text), "{s}");
    }
    for s in
        ["{{schema:2147483648}}", "{{offset:-2147483649}}", "{{n_offset:18446744073709551616}}"]
    {
        assert!(matches!(parse_err(s), E::IntegerOutOfRange { .. }), "{s}");
    }
    assert!(unexpected("{{sum:1 }"));
    for s in ["{{", "{{sum:1", "{{sum", "{{buckets:[1 2", "{{ "] {
        assert_eq!(parse_err(s), E::Unterminated, "{s}");
    }
    assert_eq!(
        parse_err("{{sum :1}}").to_string(),
        "missing \":\" after histogram description key \"sum\""
    );
    assert_eq!(parse_err("{{sum:1 sum:2}}").to_string(), "duplicate key \"sum\" in histogram");
    assert_eq!(
        parse_err("{{sum:}}").to_string(),
        "unexpected character '}' in histogram description, expected a number"
    );
}

#[test]
fn the_descriptor_parser_reports_where() {
    assert_eq!(parse_descriptor("{{sum:1}} 2").map(|(_, used)| used), Ok(9));
    assert_eq!(parse_descriptor("{{sum:1}}x3").map(|(_, used)| used), Ok(9));
    assert_eq!(
        parse_descriptor("{{sum:1 foo:2}}").map(|(_, used)| used),
        Err((8, HistogramError::UnknownKey("foo".into())))
    );
    assert_eq!(parse_descriptor("{{sum:1 sum:2}}").unwrap_err().0, 8);
    assert_eq!(parse_descriptor("{{buckets:[1 x]}}").unwrap_err().0, 13);
    assert_eq!(parse_descriptor("{{sum:1").unwrap_err(), (0, HistogramError::Unterminated));
}

#[test]
fn test_expressions_match_prometheus() {
    let cases = [
        (
            PROMTOOL_EXAMPLES[0],
            "{{schema:1 count:32.1 sum:-0.3 z_bucket:7.1 z_bucket_w:0.05 offset:-3 buckets:[5.1 10 7] n_offset:-5 n_buckets:[4.1 5]}}",
        ),
        (PROMTOOL_EXAMPLES[1], "{{count:2 sum:3 buckets:[2]}}"),
        (PROMTOOL_EXAMPLES[3], PROMTOOL_EXAMPLES[3]),
        (PROMTOOL_EXAMPLES[4], PROMTOOL_EXAMPLES[4]),
        ("{{}}", "{{}}"),
        ("{{sum:-0 count:0}}", "{{}}"),
        ("{{counter_reset_hint:unknown}}", "{{}}"),
        ("{{counter_reset_hint:reset}}", "{{counter_reset_hint:reset}}"),
        ("{{count:1e6 sum:0.00001 z_bucket_w:1e21}}", "{{count:1e+06 sum:1e-05 z_bucket_w:1e+21}}"),
        ("{{sum:NaN count:Inf z_bucket:-Inf}}", "{{count:+Inf sum:NaN z_bucket:-Inf}}"),
        (
            "{{schema:-53 sum:5 count:4 custom_values:[5 10] buckets:[1 2 1]}}",
            "{{schema:-53 count:4 sum:5 custom_values:[5 10] buckets:[1 2 1]}}",
        ),
        // Custom buckets have no zero bucket and no negative buckets; like
        // Prometheus's copy, printing drops them.
        (
            "{{schema:-53 z_bucket:3 z_bucket_w:1 custom_values:[1] n_buckets:[1]}}",
            "{{schema:-53 custom_values:[1]}}",
        ),
        ("{{schema:-53}}", "{{schema:-53 custom_values:[]}}"),
        // Compaction trims empty buckets at the edges, keeps those inside.
        ("{{buckets:[0 0 1 0 0 2 0] offset:-1}}", "{{offset:1 buckets:[1 0 0 2]}}"),
        ("{{n_buckets:[0 0 0]}}", "{{}}"),
        ("{{buckets:[-0 3]}}", "{{offset:1 buckets:[3]}}"),
    ];
    for (input, want) in cases {
        assert_eq!(h(input).test_expression(), want, "{input}");
    }
}

#[test]
fn test_expressions_merge_spans_into_one() {
    let got = exponential(&[(-1, 1), (2, 2), (0, 1), (1, 0)], &[1.0, 2.0, 0.0, 3.0]);
    assert_eq!(got.test_expression(), "{{offset:-1 buckets:[1 0 0 2 0 3]}}");
    // Gaps no valid histogram has stay gaps rather than gigabytes of zeros.
    let got = exponential(&[(0, 1), (2_000_000_000, 1)], &[1.0, 1.0]);
    assert_eq!(got.test_expression(), "{{offset:2000000000 buckets:[1 1]}}");
}

#[test]
fn test_expressions_round_trip() {
    for s in PROMTOOL_EXAMPLES.into_iter().chain([
        "{{schema:-53 sum:1 count:1 custom_values:[5 10] buckets:[1]}}",
        "{{schema:3 sum:-12.5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 0 2] offset:7 counter_reset_hint:gauge}}",
        "{{schema:-4 n_buckets:[1 1] n_offset:3 count:2}}",
    ]) {
        let first = h(s);
        let again = h(&first.test_expression());
        assert_eq!(again, first, "{s}");
        assert_eq!(again.test_expression(), first.test_expression());
    }
}

#[test]
fn add_inserts_missing_buckets_like_prometheus() {
    let a = h("{{count:5 sum:10 z_bucket:1 z_bucket_w:0.001 buckets:[1 2] n_buckets:[1]}}");
    let b = h("{{count:3 sum:1 z_bucket:1 z_bucket_w:0.001 buckets:[1 1 1] offset:1}}");
    let got = a.add(&b).unwrap();
    assert_eq!((got.count, got.sum, got.zero_count, got.zero_threshold), (8.0, 11.0, 2.0, 0.001));
    assert_eq!(got.positive_spans, [span(0, 4)]);
    assert_eq!(got.positive_buckets, [1.0, 3.0, 1.0, 1.0]);
    assert_eq!(got.negative_spans, [span(0, 1)]);
    assert_eq!(got.negative_buckets, [1.0]);
    // Buckets before, between and after the existing spans.
    let a = exponential(&[(0, 2), (3, 1)], &[1.0, 1.0, 1.0]);
    let b = exponential(&[(-3, 1), (4, 1), (1, 1), (2, 1)], &[2.0, 2.0, 2.0, 2.0]);
    let got = a.add(&b).unwrap();
    assert_eq!(got.positive_spans, [span(-3, 1), span(2, 3), span(1, 2), span(1, 1)]);
    assert_eq!(got.positive_buckets, [2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 2.0]);
    assert_eq!(b.add(&a).unwrap().compact(0), got.clone().compact(0));
}

#[test]
fn add_and_sub_lower_the_resolution() {
    let a = h("{{schema:1 count:10 buckets:[1 2 3 4] offset:-1}}");
    let b = h("{{schema:0 count:1 buckets:[1]}}");
    let got = a.add(&b).unwrap();
    assert_eq!(got.schema, 0);
    assert_eq!(got.positive_spans, [span(0, 2)]);
    assert_eq!(got.positive_buckets, [4.0, 7.0]);
    assert_eq!(b.add(&a).unwrap(), got);
    let got = a.sub(&b).unwrap();
    assert_eq!((got.schema, got.count), (0, 9.0));
    assert_eq!(got.positive_buckets, [2.0, 7.0]);
    let got = b.sub(&a).unwrap();
    assert_eq!(got.positive_buckets, [-2.0, -7.0]);
}

#[test]
fn add_widens_the_zero_bucket_to_a_bucket_bound() {
    // a's zero bucket ends at 0.5; b's at 0.75, inside a's bucket (0.5, 1],
    // which therefore joins the zero bucket, which now ends at 1.
    let a = h("{{z_bucket:1 z_bucket_w:0.5 buckets:[1 1 1] offset:-1}}");
    let b = h("{{z_bucket:2 z_bucket_w:0.75 buckets:[1]}}");
    for (x, y) in [(&a, &b), (&b, &a)] {
        let got = x.add(y).unwrap();
        assert_eq!((got.zero_threshold, got.zero_count), (1.0, 6.0));
        assert_eq!(got.positive_spans, [span(1, 1)]);
        assert_eq!(got.positive_buckets, [1.0]);
    }
    // An empty bucket does not push the threshold up to its bound.
    let a = h("{{z_bucket_w:0.25 buckets:[0 5] offset:-1}}");
    let b = h("{{z_bucket_w:0.3}}");
    for (x, y) in [(&a, &b), (&b, &a)] {
        let got = x.add(y).unwrap();
        assert_eq!((got.zero_threshold, got.zero_count), (0.3, 0.0));
        assert_eq!(got.positive_buckets.iter().sum::<f64>(), 5.0);
    }
    // NaN thresholds, on which Prometheus would loop forever, stay apart.
    let a = h("{{z_bucket:1 buckets:[1]}}");
    let mut b = a.clone();
    b.zero_threshold = f64::NAN;
    assert_eq!(a.add(&b).unwrap().zero_count, 2.0);
}

#[test]
fn custom_buckets_add_on_shared_bounds() {
    let a = h("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 1 1]}}");
    let b = h("{{schema:-53 count:2 custom_values:[2] buckets:[1 1]}}");
    let mut got = a.clone();
    let info = got.add_in_place(&b).unwrap();
    assert!(info.nhcb_bounds_reconciled);
    assert_eq!(got.custom_values, [2.0]);
    assert_eq!(got.positive_spans, [span(0, 2)]);
    assert_eq!(got.positive_buckets, [3.0, 2.0]);
    assert_eq!(got.count, 5.0);
    // No shared bound: everything lands in the +Inf bucket.
    let c = h("{{schema:-53 custom_values:[3] buckets:[0 4]}}");
    let got = a.add(&c).unwrap();
    assert!(got.custom_values.is_empty());
    assert_eq!(
        (got.positive_spans.clone(), got.positive_buckets.clone()),
        (vec![span(0, 1)], vec![7.0])
    );
    // Equal bounds: plain bucket addition, no reconciliation.
    let mut same = a.clone();
    let info = same.add_in_place(&a).unwrap();
    assert_eq!(info, AddInfo::default());
    assert_eq!(same.positive_buckets, [2.0, 2.0, 2.0]);
    // Subtracting to zero drops the buckets when the bounds differ.
    let got = b.sub(&h("{{schema:-53 custom_values:[1 2] buckets:[1 0 1]}}")).unwrap();
    assert_eq!((got.positive_spans.clone(), got.positive_buckets.clone()), (vec![], vec![]));
}

#[test]
fn exponential_and_custom_buckets_do_not_mix() {
    let a = h("{{buckets:[1]}}");
    let b = h("{{schema:-53 custom_values:[1] buckets:[1]}}");
    assert_eq!(a.add(&b), Err(HistogramError::IncompatibleSchema));
    assert_eq!(b.sub(&a), Err(HistogramError::IncompatibleSchema));
    assert_eq!(
        HistogramError::IncompatibleSchema.to_string(),
        "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
    );
}

#[test]
fn counter_reset_hints_combine_as_in_prometheus() {
    use CounterResetHint::*;
    let with = |hint| FloatHistogram { counter_reset_hint: hint, ..FloatHistogram::default() };
    for (a, b, want, collision) in [
        (Reset, Reset, Reset, false),
        (Reset, NotReset, Unknown, true),
        (NotReset, Reset, Unknown, true),
        (Gauge, Reset, Gauge, false),
        (NotReset, Gauge, Gauge, false),
        (Unknown, Reset, Unknown, false),
        (NotReset, Unknown, Unknown, false),
    ] {
        let mut got = with(a);
        let info = got.add_in_place(&with(b)).unwrap();
        assert_eq!((got.counter_reset_hint, info.counter_reset_collision), (want, collision));
    }
}

#[test]
fn arithmetic_refuses_inconsistent_operands_and_leaves_them_alone() {
    let good = h("{{count:1 buckets:[1]}}");
    let bad = exponential(&[(0, 3)], &[1.0]);
    let mut target = good.clone();
    assert_eq!(
        target.add_in_place(&bad),
        Err(HistogramError::SpansBucketsMismatch { side: Side::Positive, need: 3, have: 1 })
    );
    assert_eq!(target, good);
    let bad = exponential(&[(0, 1), (-2, 1)], &[1.0, 1.0]);
    assert!(matches!(good.add(&bad), Err(HistogramError::SpanNegativeOffset { span: 2, .. })));
    assert!(matches!(bad.sub(&good), Err(HistogramError::SpanNegativeOffset { .. })));
}

#[test]
fn scale_and_div() {
    let a =
        h("{{count:4 sum:8 z_bucket:2 buckets:[2] n_buckets:[2] counter_reset_hint:not_reset}}");
    let got = a.scale(0.5);
    assert_eq!(
        got.test_expression(),
        "{{count:2 sum:4 z_bucket:1 counter_reset_hint:not_reset buckets:[1] n_buckets:[1]}}"
    );
    assert_eq!(a.scale(-1.0).counter_reset_hint, CounterResetHint::Gauge);
    assert_eq!(a.div(2.0), got);
    assert_eq!(a.div(-2.0).counter_reset_hint, CounterResetHint::Gauge);
    let got = a.div(0.0);
    assert_eq!((got.count, got.sum), (f64::INFINITY, f64::INFINITY));
    assert!(got.positive_spans.is_empty() && got.negative_buckets.is_empty());
}

#[test]
fn compaction_cases() {
    let compact = |spans: &[(i32, u32)], buckets: &[f64], max: usize| {
        let mut x = exponential(spans, buckets);
        x.compact(max);
        let spans: Vec<(i32, u32)> =
            x.positive_spans.iter().map(|s| (s.offset, s.length)).collect();
        (spans, x.positive_buckets)
    };
    // Spans without a gap merge.
    assert_eq!(
        compact(&[(0, 2), (0, 3)], &[1.0, 2.0, 3.0, 4.0, 5.0], 0),
        (vec![(0, 5)], vec![1.0, 2.0, 3.0, 4.0, 5.0])
    );
    // Edges are trimmed; a run inside is cut unless short enough.
    assert_eq!(
        compact(&[(-2, 4)], &[0.0, 1.0, 0.0, 2.0], 0),
        (vec![(-1, 1), (1, 1)], vec![1.0, 2.0])
    );
    assert_eq!(compact(&[(-2, 4)], &[0.0, 1.0, 0.0, 2.0], 1), (vec![(-1, 3)], vec![1.0, 0.0, 2.0]));
    assert_eq!(compact(&[(0, 3)], &[1.0, 0.0, 0.0], 5), (vec![(0, 1)], vec![1.0]));
    // Empty spans go, their offsets carry over.
    assert_eq!(compact(&[(1, 0), (2, 2)], &[1.0, 1.0], 0), (vec![(3, 2)], vec![1.0, 1.0]));
    assert_eq!(compact(&[(0, 2), (3, 1)], &[0.0, 0.0, 5.0], 0), (vec![(5, 1)], vec![5.0]));
    // Spans at most max apart merge, filling the gap.
    assert_eq!(
        compact(&[(0, 1), (2, 1), (3, 1)], &[1.0, 2.0, 3.0], 2),
        (vec![(0, 4), (3, 1)], vec![1.0, 0.0, 0.0, 2.0, 3.0])
    );
    // NaN is not empty.
    let (spans, buckets) = compact(&[(0, 2)], &[f64::NAN, 0.0], 0);
    assert_eq!(spans, [(0, 1)]);
    assert!(buckets[0].is_nan());
    // Spans that do not match the buckets do not make it panic.
    compact(&[(0, 5), (1, 1)], &[0.0, 1.0], 3);
    compact(&[(0, 1)], &[0.0, 1.0, 0.0], 3);
    compact(&[], &[1.0], 3);
}

#[test]
fn reduce_resolution_merges_buckets() {
    let mut a = h("{{schema:2 buckets:[1 1 1 1 1] offset:-1 n_buckets:[1 2] n_offset:4}}");
    a.reduce_resolution(0).unwrap();
    assert_eq!(a.schema, 0);
    assert_eq!(
        (a.positive_spans.clone(), a.positive_buckets.clone()),
        (vec![span(0, 2)], vec![2.0, 3.0])
    );
    assert_eq!(
        (a.negative_spans.clone(), a.negative_buckets.clone()),
        (vec![span(1, 2)], vec![1.0, 2.0])
    );
    assert!(a.reduce_resolution(1).is_err());
    assert!(h("{{schema:-53}}").reduce_resolution(0).is_err());
    assert!(h("{{schema:2}}").reduce_resolution(-5).is_err());
}

#[test]
fn reset_detection() {
    let prev = h("{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2]}}");
    let reset = |s: &str| h(s).detect_reset(&prev);
    assert!(!reset("{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2]}}"));
    assert!(!reset("{{count:12 z_bucket:3 z_bucket_w:0.001 buckets:[3 6 1] n_buckets:[1 2]}}"));
    // Hints decide.
    assert!(reset(
        "{{count:20 z_bucket:9 z_bucket_w:0.001 buckets:[9 9] n_buckets:[9 9] counter_reset_hint:reset}}"
    ));
    assert!(!reset("{{count:0 counter_reset_hint:not_reset}}"));
    // Any count going down is a reset, but not the sum.
    assert!(reset("{{count:9 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2]}}"));
    assert!(reset("{{count:10 z_bucket:1 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2]}}"));
    assert!(reset("{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 4] n_buckets:[0 2]}}"));
    assert!(!reset(
        "{{count:10 sum:-5 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2]}}"
    ));
    // A populated bucket vanishing is a reset; an empty one is not.
    assert!(!reset(
        "{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[2] n_offset:1}}"
    ));
    assert!(reset("{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0]}}"));
    assert!(!reset("{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2 0]}}"));
    assert!(reset("{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3] n_buckets:[0 2]}}"));
    // Gauges are compared like counters.
    assert!(reset(
        "{{count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3] n_buckets:[0 2] counter_reset_hint:gauge}}"
    ));
    // Higher resolution or a narrower zero bucket only come with a reset.
    assert!(reset(
        "{{schema:1 count:10 z_bucket:2 z_bucket_w:0.001 buckets:[3 5] n_buckets:[0 2]}}"
    ));
    assert!(reset("{{count:10 z_bucket:2 z_bucket_w:0.0001 buckets:[3 5] n_buckets:[0 2]}}"));

    // Lower resolution: the previous buckets are merged for the comparison.
    let prev = h("{{schema:1 count:4 buckets:[1 1 1 1] offset:-1}}");
    assert!(!h("{{schema:0 count:4 buckets:[2 2]}}").detect_reset(&prev));
    assert!(h("{{schema:0 count:4 buckets:[1 3]}}").detect_reset(&prev));
    // A wider zero bucket swallows the previous buckets below it...
    let prev = h("{{count:2 z_bucket:1 z_bucket_w:0.5 buckets:[1]}}");
    assert!(!h("{{count:2 z_bucket:2 z_bucket_w:1}}").detect_reset(&prev));
    assert!(h("{{count:2 z_bucket:1.5 z_bucket_w:1}}").detect_reset(&prev));
    // ...but may not end inside one of them.
    assert!(h("{{count:2 z_bucket:2 z_bucket_w:0.75}}").detect_reset(&prev));
}

#[test]
fn reset_detection_with_custom_buckets() {
    let prev = h("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 1 1]}}");
    assert!(h("{{count:3 buckets:[3]}}").detect_reset(&prev));
    assert!(
        h("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 1 1]}}")
            .detect_reset(&h("{{count:3 buckets:[3]}}"))
    );
    assert!(!h("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 2 1]}}").detect_reset(&prev));
    assert!(h("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 0 2]}}").detect_reset(&prev));
    // Different bounds compare on the bounds they share (2 and +Inf here).
    assert!(!h("{{schema:-53 count:3 custom_values:[2] buckets:[2 1]}}").detect_reset(&prev));
    assert!(h("{{schema:-53 count:3 custom_values:[2] buckets:[1 2]}}").detect_reset(&prev));
}

#[test]
fn validation_as_in_prometheus() {
    use HistogramError as E;
    let ok = |s: &str| h(s).validate().unwrap_or_else(|e| panic!("{s}: {e}"));
    for s in PROMTOOL_EXAMPLES {
        ok(s);
    }
    ok("{{schema:-53 count:4 custom_values:[5 10] buckets:[1 2 1]}}");
    ok("{{schema:-53 custom_values:[5] buckets:[1] offset:1}}");
    // The count is not checked against the buckets (float rounding).
    ok("{{count:1 buckets:[5 5]}}");
    let err = |x: FloatHistogram| x.validate().unwrap_err();
    assert_eq!(
        err(exponential(&[(0, 3)], &[1.0, 1.0])),
        E::SpansBucketsMismatch { side: Side::Positive, need: 3, have: 2 }
    );
    assert_eq!(
        err(exponential(&[(0, 3)], &[1.0, 1.0])).to_string(),
        "positive side: spans need 3 buckets, have 2 buckets: histogram spans specify different number of buckets than provided"
    );
    assert_eq!(
        err(exponential(&[(-5, 1), (-1, 1)], &[1.0, 1.0])),
        E::SpanNegativeOffset { side: Side::Positive, span: 2, offset: -1 }
    );
    assert_eq!(
        h("{{n_buckets:[1 -2]}}").validate(),
        Err(E::NegativeBucketCount { side: Side::Negative, bucket: 2, count: -2.0 })
    );
    assert_eq!(
        h("{{n_buckets:[1 -2]}}").validate().unwrap_err().to_string(),
        "negative side: bucket number 2 has observation count of -2: histogram has a bucket whose observation count is negative"
    );
    assert_eq!(
        h("{{buckets:[-1]}}").validate(),
        Err(E::NegativeBucketCount { side: Side::Positive, bucket: 1, count: -1.0 })
    );
    assert_eq!(h("{{z_bucket:-1}}").validate(), Err(E::NegativeZeroCount(-1.0)));
    assert_eq!(h("{{count:-1}}").validate(), Err(E::NegativeCount(-1.0)));
    assert_eq!(h("{{schema:9}}").validate(), Err(E::InvalidSchema(9)));
    assert_eq!(h("{{schema:-5}}").validate(), Err(E::InvalidSchema(-5)));
    assert_eq!(h("{{custom_values:[1]}}").validate(), Err(E::ExponentialSchemaCustomBounds));
    let custom = |s: &str| h(&format!("{{{{schema:-53 {s}}}}}")).validate();
    assert_eq!(custom("custom_values:[1 NaN]"), Err(E::CustomBoundsNaN));
    assert_eq!(
        custom("custom_values:[2 1]"),
        Err(E::CustomBoundsNotIncreasing { previous: 2.0, current: 1.0 })
    );
    assert_eq!(
        custom("custom_values:[1 1]"),
        Err(E::CustomBoundsNotIncreasing { previous: 1.0, current: 1.0 })
    );
    assert_eq!(custom("custom_values:[1 Inf]"), Err(E::CustomBoundsInfinite));
    assert_eq!(
        custom("custom_values:[1] buckets:[1 1 1]"),
        Err(E::CustomBoundsTooFew { bounds: 1, span_length: 3 })
    );
    assert_eq!(
        custom("custom_values:[1] buckets:[1] offset:-1"),
        Err(E::SpanNegativeOffset { side: Side::Custom, span: 1, offset: -1 })
    );
    assert_eq!(custom("z_bucket:1"), Err(E::CustomBucketsZeroCount));
    assert_eq!(custom("z_bucket_w:1"), Err(E::CustomBucketsZeroThreshold));
    assert_eq!(custom("n_buckets:[1]"), Err(E::CustomBucketsNegativeSpans));
    let mut x = h("{{schema:-53}}");
    x.negative_buckets = vec![1.0];
    assert_eq!(x.validate(), Err(E::CustomBucketsNegativeBuckets));
}

fn bounds(b: &Bucket) -> (f64, f64, bool, bool, f64) {
    (b.lower, b.upper, b.lower_inclusive, b.upper_inclusive, b.count)
}

#[test]
fn exponential_bucket_bounds() {
    let x = h("{{buckets:[1 2 3] offset:-1 n_buckets:[4] n_offset:1}}");
    let pos: Vec<_> = x.positive_buckets().map(|b| (b.index, bounds(&b))).collect();
    assert_eq!(
        pos,
        [
            (-1, (0.25, 0.5, false, true, 1.0)),
            (0, (0.5, 1.0, false, true, 2.0)),
            (1, (1.0, 2.0, false, true, 3.0)),
        ]
    );
    let neg: Vec<_> = x.negative_buckets().map(|b| bounds(&b)).collect();
    assert_eq!(neg, [(-2.0, -1.0, true, false, 4.0)]);
    // Schema -1: each bucket four times wider.
    let x = h("{{schema:-1 buckets:[1 1] offset:0}}");
    let got: Vec<_> = x.positive_buckets().map(|b| (b.lower, b.upper)).collect();
    assert_eq!(got, [(0.25, 1.0), (1.0, 4.0)]);
    // Schema 2: four buckets per power of two.
    let b = h("{{schema:2 buckets:[1] offset:1}}").positive_buckets().next().unwrap();
    assert_eq!(b.lower, 1.0);
    assert!((b.upper - 2f64.powf(0.25)).abs() < 1e-15, "{}", b.upper);
    for schema in 0..=8 {
        let per_octave = 1 << schema;
        assert_eq!(bucket_bound(per_octave, schema, &[]), 2.0, "schema {schema}");
        assert_eq!(bucket_bound(-3 * per_octave, schema, &[]), 0.125, "schema {schema}");
        for i in 0..per_octave {
            let want = 2f64.powf(f64::from(i) / f64::from(per_octave));
            assert!(
                (bucket_bound(i, schema, &[]) / want - 1.0).abs() < 4e-16,
                "schema {schema} index {i}"
            );
            assert!(bucket_bound(i, schema, &[]) < bucket_bound(i + 1, schema, &[]));
        }
        // The last finite bucket ends at the largest float, the next at +Inf.
        assert_eq!(bucket_bound(1024 * per_octave, schema, &[]), f64::MAX);
        assert_eq!(bucket_bound(1024 * per_octave + 1, schema, &[]), f64::INFINITY);
    }
    assert_eq!(bucket_bound(256, -2, &[]), f64::MAX);
    assert_eq!(bucket_bound(257, -2, &[]), f64::INFINITY);
    assert_eq!(bucket_bound(-300, -4, &[]), 0.0);
}

#[test]
fn custom_bucket_bounds() {
    let x = h("{{schema:-53 custom_values:[5 10] buckets:[1 2 3]}}");
    let got: Vec<_> = x.positive_buckets().map(|b| bounds(&b)).collect();
    assert_eq!(
        got,
        [
            (f64::NEG_INFINITY, 5.0, true, true, 1.0),
            (5.0, 10.0, false, true, 2.0),
            (10.0, f64::INFINITY, false, true, 3.0),
        ]
    );
    assert_eq!(bucket_bound(7, CUSTOM_BUCKETS_SCHEMA, &[1.0]), f64::INFINITY);
    assert_eq!(bucket_bound(-7, CUSTOM_BUCKETS_SCHEMA, &[1.0]), f64::NEG_INFINITY);
    assert!(x.zero_bucket().is_none());
    assert_eq!(x.all_buckets().count(), 3);
}

#[test]
fn all_buckets_clip_to_the_zero_bucket() {
    let x = h("{{z_bucket:1 z_bucket_w:0.6 buckets:[1 1] n_buckets:[2 3]}}");
    let got: Vec<_> = x.all_buckets().map(|b| bounds(&b)).collect();
    assert_eq!(
        got,
        [
            (-2.0, -1.0, true, false, 3.0),
            (-1.0, -0.6, true, false, 2.0),
            (-0.6, 0.6, true, true, 1.0),
            (0.6, 1.0, false, true, 1.0),
            (1.0, 2.0, false, true, 1.0),
        ]
    );
    let mut rev: Vec<_> = x.all_buckets_rev().map(|b| bounds(&b)).collect();
    rev.reverse();
    assert_eq!(rev, got);
    // An empty zero bucket is left out.
    assert_eq!(h("{{z_bucket_w:1 buckets:[1]}}").all_buckets().count(), 1);
}

#[test]
fn reverse_iterators_walk_back() {
    let x = exponential(&[(-2, 2), (0, 0), (3, 1)], &[1.0, 2.0, 3.0]);
    let fwd: Vec<_> = x.positive_buckets().map(|b| (b.index, b.count)).collect();
    assert_eq!(fwd, [(-2, 1.0), (-1, 2.0), (3, 3.0)]);
    let mut rev: Vec<_> = x.positive_buckets_rev().map(|b| (b.index, b.count)).collect();
    rev.reverse();
    assert_eq!(rev, fwd);
    assert_eq!(FloatHistogram::default().positive_buckets_rev().count(), 0);
}

// Property tests.

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i32..1000).prop_map(f64::from),
        -1e9f64..1e9,
        1e-300f64..1e300,
        Just(0.0),
        Just(-0.0)
    ]
}

fn non_negative() -> impl Strategy<Value = f64> {
    prop_oneof![(0u32..1000).prop_map(f64::from), 0.0f64..1e9, Just(0.0)]
}

fn bucket_count() -> impl Strategy<Value = f64> {
    prop_oneof![4 => (0u32..5).prop_map(f64::from), 1 => Just(0.5), 1 => 0.0f64..1e6]
}

fn hint() -> impl Strategy<Value = CounterResetHint> {
    prop_oneof![
        Just(CounterResetHint::Unknown),
        Just(CounterResetHint::Reset),
        Just(CounterResetHint::NotReset),
        Just(CounterResetHint::Gauge),
    ]
}

/// Moves the buckets up so that none lies inside the zero bucket, as in any
/// histogram an instrumented program exposes.
fn outside_zero_bucket(mut x: FloatHistogram) -> FloatHistogram {
    for spans in [&mut x.positive_spans, &mut x.negative_spans] {
        if let Some(first) = spans.first_mut() {
            while bucket_bound(first.offset - 1, x.schema, &[]) < x.zero_threshold {
                first.offset += 1;
            }
        }
    }
    x
}

/// Consistent spans (offsets after the first non-negative) and buckets.
fn side(first: std::ops::Range<i32>) -> impl Strategy<Value = (Vec<Span>, Vec<f64>)> {
    (first, prop::collection::vec((0i32..4, 0u32..4), 0..5)).prop_flat_map(|(first, rest)| {
        let mut spans: Vec<Span> = rest.iter().map(|&(o, l)| span(o, l)).collect();
        if let Some(s) = spans.first_mut() {
            s.offset = first;
        }
        let n: u32 = spans.iter().map(|s| s.length).sum();
        (Just(spans), prop::collection::vec(bucket_count(), n as usize))
    })
}

fn valid_exponential() -> impl Strategy<Value = FloatHistogram> {
    (
        (-4i32..=8, hint(), non_negative(), finite()),
        prop_oneof![Just(0.0), (0i32..12).prop_map(|k| 2f64.powi(-k)), Just(0.001)],
        bucket_count(),
        side(-20..20),
        side(-20..20),
    )
        .prop_map(|((schema, hint, count, sum), zero_threshold, zero_count, pos, neg)| {
            outside_zero_bucket(FloatHistogram {
                counter_reset_hint: hint,
                schema,
                zero_threshold,
                zero_count,
                count,
                sum,
                positive_spans: pos.0,
                positive_buckets: pos.1,
                negative_spans: neg.0,
                negative_buckets: neg.1,
                custom_values: Vec::new(),
            })
        })
}

fn valid_custom() -> impl Strategy<Value = FloatHistogram> {
    (hint(), non_negative(), finite(), side(0..3), 0usize..3, -50.0f64..50.0)
        .prop_flat_map(|(hint, count, sum, pos, extra, start)| {
            let covered: u32 = pos.0.iter().map(|s| s.offset as u32 + s.length).sum();
            let n = (covered as usize + extra).max(1);
            (
                Just((hint, count, sum, pos)),
                prop::collection::vec(0.1f64..100.0, n).prop_map(move |steps| {
                    steps
                        .iter()
                        .scan(start, |acc, s| {
                            *acc += s;
                            Some(*acc)
                        })
                        .collect::<Vec<f64>>()
                }),
            )
        })
        .prop_map(|((hint, count, sum, pos), custom_values)| FloatHistogram {
            counter_reset_hint: hint,
            schema: CUSTOM_BUCKETS_SCHEMA,
            count,
            sum,
            positive_spans: pos.0,
            positive_buckets: pos.1,
            custom_values,
            ..FloatHistogram::default()
        })
}

/// Anything at all, including what no valid histogram has.
fn arbitrary_histogram() -> impl Strategy<Value = FloatHistogram> {
    let float = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        (0u32..4).prop_map(f64::from),
    ];
    let offset = prop_oneof![-3i32..3, any::<i32>(), Just(i32::MIN), Just(i32::MAX)];
    let length = prop_oneof![0u32..4, Just(u32::MAX)];
    let spans = prop::collection::vec((offset, length).prop_map(|(o, l)| span(o, l)), 0..4);
    let floats = prop::collection::vec(float.clone(), 0..8);
    (
        (prop_oneof![-6i32..10, Just(CUSTOM_BUCKETS_SCHEMA), any::<i32>()], hint()),
        (float.clone(), float.clone(), float.clone(), float),
        (spans.clone(), floats.clone(), spans, floats.clone(), floats),
    )
        .prop_map(|((schema, hint), (zt, zc, count, sum), (ps, pb, ns, nb, cv))| {
            FloatHistogram {
                counter_reset_hint: hint,
                schema,
                zero_threshold: zt,
                zero_count: zc,
                count,
                sum,
                positive_spans: ps,
                positive_buckets: pb,
                negative_spans: ns,
                negative_buckets: nb,
                custom_values: cv,
            }
        })
}

/// Drops the zero buckets of histograms of different schemas. Prometheus
/// widens zero buckets before it lowers the resolution, so a bucket of the
/// higher-resolution operand that the other's zero bucket swallows can end
/// up in a merged bucket that reaches above the threshold, and then counts
/// twice (in the zero bucket and in that bucket), but only when that operand
/// is the second one. tocsin does the same; these properties hold elsewhere.
fn comparable_zero_buckets(
    mut a: FloatHistogram,
    mut b: FloatHistogram,
) -> (FloatHistogram, FloatHistogram) {
    if a.schema != b.schema {
        a.zero_threshold = 0.0;
        b.zero_threshold = 0.0;
    }
    (a, b)
}

/// index → count of one side, merging nothing.
fn dense(spans: &[Span], buckets: &[f64]) -> BTreeMap<i32, f64> {
    RawBuckets::new(spans, buckets).collect()
}

fn check_consistent(x: &FloatHistogram) -> Result<(), TestCaseError> {
    prop_assert!(
        check_spans(&x.positive_spans, x.positive_buckets.len(), Side::Positive).is_ok(),
        "{:?}",
        x
    );
    prop_assert!(
        check_spans(&x.negative_spans, x.negative_buckets.len(), Side::Negative).is_ok(),
        "{:?}",
        x
    );
    Ok(())
}

proptest! {
    #[test]
    fn parse_never_panics(input in "\\PC{0,60}") {
        let _ = FloatHistogram::parse_notation(&input);
        if let Err((at, _)) = parse_descriptor(&input) {
            prop_assert!(at <= input.len());
            prop_assert!(input.is_char_boundary(at));
        }
    }

    #[test]
    fn descriptor_like_input_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                Just("{{"), Just("}}"), Just(" "), Just("["), Just("]"), Just(":"), Just("-"),
                Just("schema"), Just("sum"), Just("count"), Just("buckets"), Just("offset"),
                Just("n_buckets"), Just("custom_values"), Just("counter_reset_hint"),
                Just("z_bucket_w"), Just("reset"), Just("Inf"), Just("NaN"), Just("1"),
                Just("2.5"), Just("1e3"), Just(".5"), Just("x"), Just("é"), Just("}"),
            ],
            0..24,
        )
    ) {
        let input = format!("{{{{{}", parts.concat());
        if let Ok(x) = FloatHistogram::parse_notation(&input) {
            // Whatever parses prints, and what prints parses back the same
            // (NaN aside, which equals nothing).
            let text = x.test_expression();
            let again = FloatHistogram::parse_notation(&text);
            prop_assert!(again.is_ok() || text.contains("+Inf") || text.contains("[]"), "{} -> {}", input, text);
        }
    }

    #[test]
    fn test_expressions_reparse_to_the_compacted_histogram(
        x in prop_oneof![valid_exponential(), valid_custom()]
    ) {
        prop_assert!(x.validate().is_ok(), "{:?}: {:?}", x, x.validate());
        let text = x.test_expression();
        let back = FloatHistogram::parse_notation(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let mut want = x.used_copy();
        want.compact(usize::MAX);
        prop_assert_eq!(back, want, "{}", text);
    }

    #[test]
    fn add_matches_a_dense_sum(a in valid_exponential(), b in valid_exponential()) {
        // Same schema and no zero bucket: addition is per index.
        let mut b = b;
        b.schema = a.schema;
        let (mut a, mut b) = (a, b);
        a.zero_threshold = 0.0;
        b.zero_threshold = 0.0;
        let got = a.add(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_consistent(&got)?;
        for (spans, buckets, sa, ba, sb, bb) in [
            (&got.positive_spans, &got.positive_buckets, &a.positive_spans, &a.positive_buckets, &b.positive_spans, &b.positive_buckets),
            (&got.negative_spans, &got.negative_buckets, &a.negative_spans, &a.negative_buckets, &b.negative_spans, &b.negative_buckets),
        ] {
            let mut want = dense(sa, ba);
            for (i, c) in dense(sb, bb) {
                *want.entry(i).or_insert(0.0) += c;
            }
            prop_assert_eq!(dense(spans, buckets), want);
        }
        let sub = got.sub(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_consistent(&sub)?;
    }

    #[test]
    fn add_is_commutative(a in valid_exponential(), b in valid_exponential()) {
        let (a, b) = comparable_zero_buckets(a, b);
        let ab = a.add(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ba = b.add(&a).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_consistent(&ab)?;
        prop_assert_eq!(ab.schema, a.schema.min(b.schema));
        prop_assert_eq!(ab.zero_threshold, ba.zero_threshold);
        prop_assert!(ab.zero_threshold >= a.zero_threshold.max(b.zero_threshold));
        let (mut ab, mut ba) = (ab, ba);
        ab.compact(0);
        ba.compact(0);
        prop_assert_eq!(ab, ba);
    }

    #[test]
    fn add_keeps_every_count(a in valid_exponential(), b in valid_exponential()) {
        let (a, b) = comparable_zero_buckets(a, b);
        // Integer counts add exactly, whatever the merging and widening.
        let total = |x: &FloatHistogram| {
            x.zero_count + x.positive_buckets.iter().sum::<f64>() + x.negative_buckets.iter().sum::<f64>()
        };
        let integral = |mut x: FloatHistogram| {
            for c in x.positive_buckets.iter_mut().chain(&mut x.negative_buckets).chain([&mut x.zero_count]) {
                *c = c.round();
            }
            x
        };
        let (a, b) = (integral(a), integral(b));
        let got = a.add(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(total(&got), total(&a) + total(&b));
    }

    #[test]
    fn reset_detection_on_growth(a in valid_exponential(), b in valid_exponential()) {
        // A histogram plus a counter increment is never a reset of itself.
        let mut inc = b;
        inc.schema = a.schema;
        inc.zero_threshold = a.zero_threshold;
        let mut a = a;
        a.counter_reset_hint = CounterResetHint::Unknown;
        inc.counter_reset_hint = CounterResetHint::Unknown;
        let grown = a.add(&inc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assume!(grown.count >= a.count);
        prop_assert!(!grown.detect_reset(&a), "{:?} after {:?}", grown, a);
        prop_assert!(!a.detect_reset(&a));
    }

    #[test]
    fn compaction_keeps_populated_buckets(x in valid_exponential(), max in 0usize..4) {
        let mut c = x.clone();
        c.compact(max);
        check_consistent(&c)?;
        let populated = |spans: &[Span], buckets: &[f64]| {
            dense(spans, buckets).into_iter().filter(|(_, v)| *v != 0.0).collect::<Vec<_>>()
        };
        prop_assert_eq!(populated(&c.positive_spans, &c.positive_buckets), populated(&x.positive_spans, &x.positive_buckets));
        prop_assert_eq!(populated(&c.negative_spans, &c.negative_buckets), populated(&x.negative_spans, &x.negative_buckets));
        if max == 0 {
            prop_assert!(c.positive_buckets.iter().all(|v| *v != 0.0));
            prop_assert!(c.positive_spans.iter().skip(1).all(|s| s.offset > 0 && s.length > 0));
        }
    }

    #[test]
    fn reverse_iterators_mirror_forward(x in prop_oneof![valid_exponential(), valid_custom()]) {
        let mut fwd: Vec<Bucket> = x.positive_buckets().collect();
        fwd.reverse();
        prop_assert_eq!(x.positive_buckets_rev().collect::<Vec<_>>(), fwd);
        let mut fwd: Vec<Bucket> = x.negative_buckets().collect();
        fwd.reverse();
        prop_assert_eq!(x.negative_buckets_rev().collect::<Vec<_>>(), fwd);
        let mut all: Vec<Bucket> = x.all_buckets().collect();
        all.reverse();
        prop_assert_eq!(x.all_buckets_rev().collect::<Vec<_>>(), all);
    }

    #[test]
    fn nothing_panics_on_arbitrary_histograms(a in arbitrary_histogram(), b in arbitrary_histogram()) {
        let _ = a.validate();
        let _ = a.test_expression();
        let _ = a.add(&b);
        let _ = b.sub(&a);
        let _ = a.detect_reset(&b);
        let _ = b.detect_reset(&a);
        let _ = a.scale(-2.0);
        let _ = a.div(0.0);
        let _ = a.all_buckets().count();
        let _ = a.all_buckets_rev().count();
        let mut c = a.clone();
        c.compact(3);
        let _ = c.reduce_resolution(a.schema.saturating_sub(1));
    }

    #[test]
    fn nothing_panics_on_valid_operands_of_any_layout(a in valid_exponential(), b in arbitrary_histogram()) {
        let mut b = b;
        b.positive_spans = a.negative_spans.clone();
        b.positive_buckets = a.negative_buckets.clone();
        let _ = a.add(&b);
        let _ = b.add(&a);
        let _ = a.detect_reset(&b);
        let _ = b.detect_reset(&a);
    }
}
