use proptest::prelude::*;

use super::*;
use crate::gofmt;
use crate::histogram::Span;
use crate::sample::is_stale_nan;

fn floats(input: &str) -> Vec<f64> {
    parse_values(input)
        .unwrap()
        .into_iter()
        .map(|v| match v {
            SequenceValue::Float(f) => f,
            other => panic!("expected a float, got {other:?}"),
        })
        .collect()
}

fn err(input: &str) -> NotationError {
    match parse_series(input) {
        Ok(d) => panic!("{input:?} parsed as {d:?}"),
        Err(e) => e,
    }
}

#[test]
fn expansions_produce_n_plus_one_values() {
    assert_eq!(floats("1+1x3"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(floats("5-2x2"), [5.0, 3.0, 1.0]);
    assert_eq!(floats("-1+1x2"), [-1.0, 0.0, 1.0]);
    assert_eq!(floats("3x2"), [3.0, 3.0, 3.0]);
    assert_eq!(floats("7x0"), [7.0]);
    assert_eq!(floats("1+1x0"), [1.0]);
    assert_eq!(floats("-2x1"), [-2.0, -2.0]);
    assert_eq!(floats("+2"), [2.0]);
}

#[test]
fn omitted_values_repeat_n_times_not_n_plus_one() {
    let v = parse_values("_ _x3 1 _x0").unwrap();
    assert_eq!(v.len(), 5);
    assert!(v[..4].iter().all(|x| *x == SequenceValue::Omitted));
    assert_eq!(v[4], SequenceValue::Float(1.0));
}

#[test]
fn special_values() {
    let v = floats("stale Inf -Inf +Inf inf NaN nan -NaN Inf+0x1 NaN-1x1");
    assert!(is_stale_nan(v[0]));
    assert_eq!(&v[1..5], [f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY]);
    assert!(v[5..8].iter().all(|x| x.is_nan() && !is_stale_nan(*x)));
    assert_eq!(&v[8..10], [f64::INFINITY, f64::INFINITY]);
    assert!(v[10..12].iter().all(|x| x.is_nan()));
}

#[test]
fn number_forms_follow_the_promql_lexer() {
    assert_eq!(floats("1e3 1E-2 .5 5. 1_000 1.5e+2 0.25"), [1e3, 1e-2, 0.5, 5.0, 1e3, 150.0, 0.25]);
    // Go's base-0 integers: a leading zero means octal, unless that fails.
    assert_eq!(floats("010 08 0"), [8.0, 8.0, 0.0]);
    // Hexadecimal is not a number in series values: `0x5` is "0, five more times".
    assert_eq!(floats("0x5"), [0.0; 6]);
    // Repeated addition, as Prometheus does it, not a + i*b.
    let v = floats("0.1+0.1x9");
    let mut acc = 0.1;
    for x in v {
        assert_eq!(x.to_bits(), f64::to_bits(acc));
        acc += 0.1;
    }
    assert_eq!(floats("-0"), [-0.0]);
    assert!(floats("-0")[0].is_sign_negative());
}

#[test]
fn bad_numbers_and_repetitions_are_errors() {
    for bad in [
        "m 1e",
        "m 1__0",
        "m 1_",
        "m 1..2",
        "m 1ee2",
        "m 1.5.2",
        "m 0b1",
        "m 1m",
        "m 1x",
        "m 1x1.5",
        "m 1x1e2",
        "m 1x-1",
        "m 1+1",
        "m 1+-1x2",
        "m Infx3",
        "m stalex3",
        "m Stale",
        "m foo",
        "m 1 +",
        "m -stale",
        "m 1x1_0",
        "m 1e400",
        "m 1_000.5_",
    ] {
        let e = err(bad);
        assert!(e.column >= 3, "{bad:?}: {e}");
    }
}

#[test]
fn labels_and_names() {
    let d = parse_series(r#"http_requests{job="api", 'b'='x', c=`raw\n`,} 1"#).unwrap();
    assert_eq!(
        d.labels,
        Labels::from_pairs(&[
            ("__name__", "http_requests"),
            ("b", "x"),
            ("c", "raw\\n"),
            ("job", "api")
        ])
    );
    let d = parse_series(r#"{__name__="x", a="1"} 1"#).unwrap();
    assert_eq!(d.labels, Labels::from_pairs(&[("__name__", "x"), ("a", "1")]));
    let d = parse_series(r#"{"utf8.metric", "my label"="v"} 1"#).unwrap();
    assert_eq!(d.labels, Labels::from_pairs(&[("__name__", "utf8.metric"), ("my label", "v")]));
    // The identifier wins over a `__name__` label, as Prometheus's builder does.
    let d = parse_series(r#"a{__name__="b"} 1"#).unwrap();
    assert_eq!(d.labels.metric_name(), Some("a"));
    let d = parse_series("sum:rate5m{} 1").unwrap();
    assert_eq!(d.labels.metric_name(), Some("sum:rate5m"));
    // Keywords that the metric rule accepts are fine; operators are not.
    assert!(parse_series("sum 1").is_ok());
    assert!(parse_series("stale 1").is_ok());
    assert!(matches!(err("on 1").kind, ErrorKind::KeywordAsMetricName(_)));
    assert!(matches!(err("NaN 1").kind, ErrorKind::KeywordAsMetricName(_)));
    // No values is a valid (empty) description.
    assert_eq!(parse_series("up").unwrap().values, []);
    assert_eq!(parse_series("  up{}  1  ").unwrap().values, [SequenceValue::Float(1.0)]);
}

#[test]
fn go_string_escapes() {
    let d = parse_series(r#"m{a="\x41\101\u00e9\U0001F600\t\"", b='\'"'} 1"#).unwrap();
    assert_eq!(d.labels.get("a"), Some("AAé😀\t\""));
    assert_eq!(d.labels.get("b"), Some("'\""));
    for bad in [
        r#"m{a="\q"} 1"#,
        r#"m{a="\x4"} 1"#,
        r#"m{a="\400"} 1"#,
        r#"m{a="\ud800"} 1"#,
        r#"m{a='\"'} 1"#,
        r#"m{a="\xff"} 1"#,
        r#"m{a="open} 1"#,
        "m{a=`open} 1",
    ] {
        assert!(matches!(err(bad).kind, ErrorKind::BadString(_)), "{bad}");
    }
}

#[test]
fn unquote_takes_exactly_one_literal() {
    assert_eq!(unquote(r#""a\tb""#).unwrap(), "a\tb");
    assert_eq!(unquote("`raw\\n`").unwrap(), "raw\\n");
    assert_eq!(unquote("'two chars'").unwrap(), "two chars");
    assert_eq!(unquote(r#""""#).unwrap(), "");
    assert!(unquote(r#""a" "b""#).is_err());
    assert!(unquote("bare").is_err());
    assert!(unquote(r#""open"#).is_err());
}

#[test]
fn syntax_errors_name_the_column() {
    let e = err(r#"foo{a=b} 1"#);
    assert_eq!(e.column, 7);
    assert_eq!(
        e.to_string(),
        r#"column 7: unexpected character 'b' in label set, expected a quoted string"#
    );
    assert_eq!(err(r#"foo {a="b"} 1"#).column, 5);
    assert_eq!(err(r#"foo{a="b"}1"#).column, 11);
    assert_eq!(err(r#"foo{a="b"} 1 2 x"#).column, 16);
    assert_eq!(err(r#"fö{a="b"} 1 2 Q"#).column, 2);
    assert_eq!(err(r#"{a="é"} 1 Q"#).column, 11);
    assert_eq!(err(r#"foo{a="b" c="d"} 1"#).column, 11);
    assert_eq!(err(r#"foo{,} 1"#).column, 5);
    assert_eq!(err(r#"foo{a} 1"#).column, 6);
    assert_eq!(err(r#"foo{a!="b"} 1"#).column, 6);
    let e = err("m 1 Infx3");
    assert_eq!(e.column, 5);
    assert!(e.to_string().contains("identifier \"Infx3\""), "{e}");
}

fn hist(s: &str) -> Arc<FloatHistogram> {
    Arc::new(FloatHistogram::parse_notation(s).unwrap_or_else(|e| panic!("{s}: {e}")))
}

fn histograms(input: &str) -> Vec<Arc<FloatHistogram>> {
    parse_values(input)
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .into_iter()
        .map(|v| match v {
            SequenceValue::Histogram(h) => h,
            other => panic!("expected a histogram, got {other:?}"),
        })
        .collect()
}

#[test]
fn native_histograms_parse_and_expand() {
    let line =
        "h {{schema:0 sum:5 count:4 buckets:[1 2 1]}} _ {{}}x2 {{sum:1}}+{{sum:2}}x1 {{}}-{{}}x0";
    let d = parse_series(line).unwrap();
    assert_eq!(d.values.len(), 1 + 1 + 3 + 2 + 1);
    assert!(d.has_native_histograms());
    assert_eq!(
        d.values[0],
        SequenceValue::Histogram(hist("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}"))
    );
    assert_eq!(d.values[1], SequenceValue::Omitted);
    assert_eq!(d.values[2], SequenceValue::Histogram(Arc::new(FloatHistogram::default())));
    // `{{h}}xn` shares one histogram among its steps.
    let (SequenceValue::Histogram(a), SequenceValue::Histogram(b)) = (&d.values[2], &d.values[4])
    else {
        panic!("{:?}", d.values)
    };
    assert!(Arc::ptr_eq(a, b));
    assert_eq!(d.values[5], SequenceValue::Histogram(hist("{{sum:1}}")));
    assert_eq!(d.values[6], SequenceValue::Histogram(hist("{{sum:3}}")));
    assert_eq!(d.values[7], SequenceValue::Histogram(hist("{{}}")));
}

#[test]
fn histogram_increase_and_decrease_series_add_repeatedly() {
    // promtool's own example (unittest.yml): 2 buckets of 2, then +1 each step.
    let v = histograms("{{sum:3 count:2 buckets:[2]}}+{{sum:1.3 count:1 buckets:[1]}}x2");
    assert_eq!(v.len(), 3);
    assert_eq!(v[1].test_expression(), "{{count:3 sum:4.3 buckets:[3]}}");
    assert_eq!(v[2].count, 4.0);
    assert_eq!(v[2].sum.to_bits(), (3.0f64 + 1.3 + 1.3).to_bits());
    assert_eq!(v[2].positive_buckets, [4.0]);

    let v = histograms("{{count:10 buckets:[5 5] n_buckets:[1]}}-{{count:2 buckets:[1 1]}}x3");
    let counts: Vec<f64> = v.iter().map(|h| h.count).collect();
    assert_eq!(counts, [10.0, 8.0, 6.0, 4.0]);
    assert_eq!(v[3].positive_buckets, [2.0, 2.0]);
    assert_eq!(v[3].negative_buckets, [1.0]);

    // New buckets of the step appear in the running value, uncompacted as
    // in Prometheus.
    let v = histograms("{{buckets:[1] offset:2}}+{{buckets:[1] offset:5}}x2");
    assert_eq!(v[2].positive_spans, [Span { offset: 2, length: 1 }, Span { offset: 2, length: 1 }]);
    assert_eq!(v[2].positive_buckets, [1.0, 2.0]);

    // A step of lower resolution is refused, one of higher resolution is
    // merged into the running value's buckets.
    let e = err("h {{schema:1 buckets:[1]}}+{{schema:0 buckets:[1]}}x1");
    assert_eq!(e.column, 3);
    assert_eq!(e.kind, ErrorKind::Histogram(HistogramError::CannotMergeSchema { from: 0, to: 1 }));
    assert_eq!(
        e.to_string(),
        "column 3: error combining histograms: cannot merge from schema 0 to 1"
    );
    // ... but only when there is something to add.
    assert_eq!(histograms("{{schema:1}}+{{schema:0}}x0").len(), 1);
    let v = histograms("{{schema:0 buckets:[4]}}+{{schema:2 buckets:[1 1 1 1]}}x1");
    assert_eq!((v[1].schema, v[1].positive_buckets.clone()), (0, vec![5.0, 3.0]));

    // Exponential and custom buckets do not mix (the schema check comes
    // first when the step has custom buckets).
    let e = err("h {{schema:-53 custom_values:[1] buckets:[1]}}+{{buckets:[1]}}x1");
    assert_eq!(e.kind, ErrorKind::Histogram(HistogramError::IncompatibleSchema));
    let e = err("h {{buckets:[1]}}+{{schema:-53 custom_values:[1] buckets:[1]}}x1");
    assert_eq!(
        e.kind,
        ErrorKind::Histogram(HistogramError::CannotMergeSchema { from: -53, to: 0 })
    );
    // Custom buckets with different bounds add on the bounds they share.
    let v = histograms(
        "{{schema:-53 custom_values:[1 2] buckets:[1 1 1]}}+{{schema:-53 custom_values:[2] buckets:[1 1]}}x1",
    );
    assert_eq!(v[1].custom_values, [2.0]);
    assert_eq!(v[1].positive_buckets, [3.0, 2.0]);
}

#[test]
fn samples_split_floats_and_histograms() {
    let d = parse_series("h 1 {{count:1}} _ 4 {{count:2}}x1").unwrap();
    let (floats, hs) = d.samples(1000, 10);
    assert_eq!(floats, [Sample::new(1000, 1.0), Sample::new(1030, 4.0)]);
    let times: Vec<i64> = hs.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [1010, 1040, 1050]);
    assert_eq!(hs[2].1.count, 2.0);
    assert_eq!(d.histogram_samples(1000, 10), hs);
    // Callers that store floats only get a typed refusal, naming the step.
    let e = d.float_samples(0, 1000).unwrap_err();
    assert_eq!(e.step, 1);
    assert_eq!(
        e.to_string(),
        r#"native histograms are not supported: series {__name__="h"} has a {{...}} value at step 1"#
    );
}

#[test]
fn histogram_syntax_errors_name_the_column() {
    let kind = |input: &str| match err(input).kind {
        ErrorKind::Histogram(k) => k,
        other => panic!("{input}: {other:?}"),
    };
    assert_eq!(kind("h {{schema:1"), HistogramError::Unterminated);
    assert_eq!(err("h 1 {{schema:1").column, 5);
    assert_eq!(kind("h {{sum:1 sum:2}}"), HistogramError::DuplicateKey("sum"));
    assert_eq!(err("h {{sum:1 sum:2}}").column, 11);
    assert_eq!(kind("h {{foo:1}}"), HistogramError::UnknownKey("foo".into()));
    assert_eq!(err(r#"{a="é"} {{sum:1 bucket:[1]}}"#).column, 17);
    assert!(matches!(err("h {{}}+1x2").kind, ErrorKind::Unexpected { .. }));
    assert!(matches!(err("h {{}}+{{}}").kind, ErrorKind::Unexpected { .. }));
    assert!(matches!(err("h {{}}1").kind, ErrorKind::Unexpected { .. }));
    assert!(matches!(err("h {{}}x").kind, ErrorKind::Unexpected { .. }));
    assert!(matches!(err("h {{}}}").kind, ErrorKind::Unexpected { .. }));
    assert!(matches!(err("h {{}}x1.5").kind, ErrorKind::BadRepetition(_)));
    assert_eq!(err("h {{sum:1}}+{{sum:x}}x1").column, 19);
}

#[test]
fn histogram_expansions_are_bounded() {
    assert!(matches!(err("m {{}}x99999999999").kind, ErrorKind::TooManyValues));
    assert!(matches!(err("m {{}}+{{}}x99999999999").kind, ErrorKind::TooManyValues));
    // Every computed histogram holds its buckets: 10 million values of
    // 10 buckets each are too many.
    let e = err("m {{buckets:[1 1 1 1 1 1 1 1 1 1]}}+{{buckets:[1]}}x9999999");
    assert!(matches!(e.kind, ErrorKind::TooManyBuckets), "{e}");
}

#[test]
fn float_samples_place_values_on_the_interval() {
    let d = parse_series("m 1 _ stale 4").unwrap();
    let s = d.float_samples(1000, 60_000).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].t, s[0].v), (1000, 1.0));
    assert_eq!(s[1].t, 121_000);
    assert!(is_stale_nan(s[1].v));
    assert_eq!((s[2].t, s[2].v), (181_000, 4.0));
    assert!(!d.has_native_histograms());
}

#[test]
fn huge_repetitions_are_refused_before_allocating() {
    assert!(matches!(err("m 1x10000000000").kind, ErrorKind::TooManyValues));
    assert!(matches!(err("m _x18446744073709551615").kind, ErrorKind::TooManyValues));
    assert!(matches!(err("m 1x18446744073709551616").kind, ErrorKind::BadRepetition(_)));
}

#[test]
fn parse_metric_alone() {
    assert_eq!(parse_metric(" up{job=\"a\"} ").unwrap().to_string(), r#"{__name__="up", job="a"}"#);
    assert!(parse_metric("up 1").is_err());
}

#[test]
fn scalar_lines_use_go_parse_int_then_parse_float() {
    let ok = |s: &str| parse_scalar(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(ok("0x1F"), 31.0);
    assert_eq!(ok("-0x10"), -16.0);
    assert_eq!(ok("0b101"), 5.0);
    assert_eq!(ok("0o17"), 15.0);
    assert_eq!(ok("017"), 15.0);
    assert_eq!(ok("1_000"), 1000.0);
    assert_eq!(ok("0x1p-2"), 0.25);
    assert_eq!(ok("0x1.8p1"), 3.0);
    assert_eq!(ok("0X_1FFFP-16"), 0.1249847412109375);
    assert_eq!(ok("12340000"), 12_340_000.0);
    assert_eq!(ok("0.00001234"), 0.00001234);
    assert_eq!(ok("-0.0000002"), -0.0000002);
    assert_eq!(ok("1.e2"), 100.0);
    assert_eq!(ok("+Inf"), f64::INFINITY);
    assert_eq!(ok("-infinity"), f64::NEG_INFINITY);
    assert!(ok("NaN").is_nan());
    assert_eq!(ok("9223372036854775808"), 2f64.powi(63));
    for bad in
        ["", "+NaN", "--5", "1e400", "0x1F.8", "0x", "abc", "1 2", "_1", "1__0", "0xp1", "1e+"]
    {
        assert!(parse_scalar(bad).is_err(), "{bad:?}");
    }
}

/// One item of a value sequence and what it must expand to.
#[derive(Clone, Debug)]
enum Item {
    Value(f64),
    Omitted,
    OmittedN(u64),
    Repeat(f64, u64),
    Step(f64, f64, u64),
    Stale,
}

fn item_strategy() -> impl Strategy<Value = Item> {
    let num = prop_oneof![
        (-1000i64..1000).prop_map(|i| i as f64),
        (-1e6f64..1e6),
        prop::num::f64::NORMAL,
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ];
    prop_oneof![
        num.clone().prop_map(Item::Value),
        Just(Item::Omitted),
        (0u64..20).prop_map(Item::OmittedN),
        (num.clone(), 0u64..20).prop_map(|(v, n)| Item::Repeat(v, n)),
        // An infinite step would print as `+Infx3`, one word to the lexer.
        (num, -1e6f64..1e6, 0u64..20).prop_map(|(a, b, n)| Item::Step(a, b, n)),
        Just(Item::Stale),
    ]
}

/// Prints a float so that the notation reads it back exactly: Rust's shortest
/// round-trip form is also valid in Prometheus's number syntax.
fn render_num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    format!("{v:?}")
}

fn render(item: &Item) -> String {
    match item {
        Item::Value(v) => render_num(*v),
        Item::Omitted => "_".into(),
        Item::OmittedN(n) => format!("_x{n}"),
        // `Infx3` is one word to the lexer, hence an error; `Inf+0x3` is the idiom.
        Item::Repeat(v, n) if v.is_infinite() => format!("{}+0x{n}", render_num(*v)),
        Item::Repeat(v, n) => format!("{}x{n}", render_num(*v)),
        Item::Step(a, b, n) => {
            let sign = if b.is_sign_negative() { '-' } else { '+' };
            format!("{}{sign}{}x{n}", render_num(*a), render_num(b.abs()))
        }
        Item::Stale => "stale".into(),
    }
}

/// The expansion, computed independently of the parser.
fn expand(item: &Item) -> Vec<SequenceValue> {
    match *item {
        Item::Value(v) => vec![SequenceValue::Float(v)],
        Item::Omitted => vec![SequenceValue::Omitted],
        Item::OmittedN(n) => vec![SequenceValue::Omitted; n as usize],
        Item::Repeat(v, n) => vec![SequenceValue::Float(v); n as usize + 1],
        Item::Step(a, b, n) => {
            let mut out = Vec::new();
            let mut v = a;
            for _ in 0..=n {
                out.push(SequenceValue::Float(v));
                v += b;
            }
            out
        }
        Item::Stale => vec![SequenceValue::Float(STALE_NAN)],
    }
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{1,8}"]
}

proptest! {
    #[test]
    fn rendered_sequences_parse_to_their_expansion(items in prop::collection::vec(item_strategy(), 0..12)) {
        let text = items.iter().map(render).collect::<Vec<_>>().join(" ");
        let want: Vec<SequenceValue> = items.iter().flat_map(expand).collect();
        let got = parse_series(&format!("metric {text}")).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(got.values, want, "{}", text);
    }

    #[test]
    fn step_items_have_n_plus_one_values(a in -1e9f64..1e9, b in -1e9f64..1e9, n in 0u64..200) {
        let text = format!("m {}", render(&Item::Step(a, b, n)));
        prop_assert_eq!(parse_series(&text).unwrap().values.len() as u64, n + 1);
    }

    #[test]
    fn labels_round_trip_through_go_quoting(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,10}",
        pairs in prop::collection::vec((label_name(), "\\PC{0,12}"), 0..5),
    ) {
        let mut text = format!("{name}{{");
        for (n, v) in &pairs {
            if crate::labels::is_legacy_label_name(n) {
                text.push_str(n);
            } else {
                text.push_str(&gofmt::quote(n));
            }
            text.push('=');
            text.push_str(&gofmt::quote(v));
            text.push(',');
        }
        text.push_str("} 1");
        let lowered = name.to_ascii_lowercase();
        prop_assume!(!NOT_METRIC_NAMES.contains(&lowered.as_str()));
        let mut want: Vec<Label> = pairs.iter().map(|(n, v)| Label::new(n.as_str(), v.as_str())).collect();
        want.push(Label::new(METRIC_NAME, name.as_str()));
        let got = parse_series(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(got.labels, Labels::new(want));
    }

    #[test]
    fn arbitrary_input_never_panics_and_errors_point_inside(input in "\\PC{0,40}") {
        if let Err(e) = parse_series(&input) {
            prop_assert!(e.column >= 1 && e.column <= input.chars().count() + 1, "{}: {}", input, e);
        }
        let _ = parse_values(&input);
        let _ = parse_scalar(&input);
    }

    #[test]
    fn notation_like_input_never_panics(input in "[a-z{}=\"'_ 0-9.eExX+\\-:,\\[\\]]{0,40}") {
        if let Err(e) = parse_series(&input) {
            prop_assert!(e.column >= 1 && e.column <= input.chars().count() + 1, "{}: {}", input, e);
        }
    }

    #[test]
    fn integers_agree_with_rust(i in any::<i64>()) {
        prop_assert_eq!(parse_scalar(&i.to_string()).unwrap(), i as f64);
        prop_assert_eq!(floats(&i.to_string()), vec![i as f64]);
    }

    #[test]
    fn finite_floats_agree_with_rust(v in prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO) {
        let text = format!("{v:?}");
        prop_assert_eq!(parse_scalar(&text).unwrap().to_bits(), v.to_bits());
    }
}
