//! The runner's own tests. This target has no libtest harness (it prints its
//! own report), so these run at the start of every run instead of under
//! `#[test]`: a runner whose comparisons are broken must not report anything.
//!
//! The end-to-end checks run a small script against a stand-in evaluator
//! with known answers and demand the exact pass/fail/skip of every case, so
//! that neither the comparison nor the skip logic can drift into "pass all".

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tocsin_engine::matcher::Matcher;
use tocsin_engine::promql::{InstantSample, QueryResult, Series, Value};
use tocsin_engine::storage::{Head, Queryable};
use tocsin_engine::{Labels, STALE_NAN, is_stale_nan};

use crate::compare::almost_equal;
use crate::query_ast;
use crate::ratchet::{self, CaseId};
use crate::run::{Evaluator, Invariance, Query, Runner, SkipReason, Status};
use crate::sandbox;
use crate::script::{self, Command, EvalKind};

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    ("almost_equal follows Prometheus", almost_equal_cases),
    ("durations parse like model.ParseDuration", durations),
    ("script forms parse like promqltest", script_forms),
    ("script errors are fatal", script_errors),
    ("result comparison edge cases", compare_cases),
    ("ratchet ids, judging and updating", ratchet_cases),
    ("@ variants and selectors", query_ast_cases),
    ("end to end against a stand-in engine", end_to_end),
];

pub const COUNT: usize = TESTS.len();

/// Runs every self-check; returns the failures.
pub fn run() -> Vec<(&'static str, String)> {
    TESTS.iter().filter_map(|(name, f)| sandbox::catch(f).err().map(|e| (*name, e))).collect()
}

fn almost_equal_cases() {
    let e = 1e-6;
    assert!(almost_equal(1.0, 1.0, e));
    assert!(almost_equal(1.0, 1.0 + 1e-7, e));
    assert!(!almost_equal(1.0, 1.00001, e));
    assert!(!almost_equal(1.0, 2.0, e));
    assert!(almost_equal(f64::NAN, f64::NAN, e));
    assert!(!almost_equal(f64::NAN, 1.0, e));
    assert!(!almost_equal(STALE_NAN, f64::NAN, e));
    assert!(almost_equal(STALE_NAN, STALE_NAN, e));
    assert!(almost_equal(f64::INFINITY, f64::INFINITY, e));
    assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY, e));
    assert!(!almost_equal(f64::INFINITY, 1e308, e));
    assert!(almost_equal(0.0, -0.0, e));
    assert!(almost_equal(0.0, 1e-320, e));
    assert!(!almost_equal(0.0, 1e-300, e));
    assert!(!almost_equal(1e308, 1.7e308, e));
    assert!(almost_equal(-3.0, -3.0000000001, e));
}

fn durations() {
    use script::parse_duration as d;
    assert_eq!(d("0"), Ok(0));
    assert_eq!(d("5m"), Ok(300_000));
    assert_eq!(d("1h30m"), Ok(5_400_000));
    assert_eq!(d("20s500ms"), Ok(20_500));
    assert_eq!(d("1y"), Ok(365 * 86_400_000));
    assert_eq!(d("2w"), Ok(14 * 86_400_000));
    for bad in ["", "5", "1m1h", "1.5m", "1x", "-1m", "1mm", "m"] {
        assert!(d(bad).is_err(), "{bad:?}");
    }
}

fn evals(s: &script::Script) -> Vec<&script::Eval> {
    s.commands
        .iter()
        .filter_map(|c| match c {
            Command::Eval(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn script_forms() {
    let text = r#"
# a comment
load 5m
  foo{a="1"} 1 2
  foo{a="1"} 7
  bar{b="x"}@st _ -1m
  bar{b="x"} 1 2

load_with_nhcb 1m
  h_bucket{le="1"} 1

eval instant at 10m foo
  expect no_info
  expect warn msg:   PromQL warning: x (1:1)
  foo{a="1"} 7
  foo{a="2"} 8

eval range from 0 to 10m step 5m sum(foo)
  {} 1 _ 3

eval_fail instant at 0 foo
  expected_fail_message some message

eval instant at 1m scalar(foo)
  0x10

eval_ordered instant at 0 foo
  expect fail regex: a.c
  expect info
  {__name__="foo", a="2"} 2
  foo{a="1"} 1

eval instant at 50m foo[10m]
  expect range vector from 30m to 40m step 5m
  foo 1 2 3

eval instant at 0 "x"
  expect string "a\tb"

eval range from 0 to 1m step 1m foo
  expect range vector from 1m to 3m step 30s

clear
"#;
    let s = script::parse(text).unwrap_or_else(|e| panic!("{e}"));
    let loads: Vec<&script::Load> = s
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Load(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(loads.len(), 2);
    assert_eq!(loads[0].interval_ms, 300_000);
    assert_eq!(loads[0].line, 3);
    // A later line for the same series replaces the earlier one; @st lines add none.
    assert_eq!(loads[0].series.len(), 2);
    assert_eq!(loads[0].series[0].values.len(), 1);
    assert!(loads[1].with_nhcb);
    assert!(matches!(s.commands.last(), Some(Command::Clear)));

    let ev = evals(&s);
    assert_eq!(ev.len(), 8, "{ev:#?}");
    let e0 = ev[0];
    assert_eq!((e0.line, e0.expr.as_str()), (12, "foo"));
    assert_eq!(e0.kind, EvalKind::Instant { at_ms: 600_000 });
    assert!(e0.expect_no_info && !e0.expect_no_warn);
    assert!(e0.expect_warn[0].matches("PromQL warning: x (1:1)"));
    assert!(!e0.expect_warn[0].matches("PromQL warning: x (1:2)"));
    let l2 = Labels::from_pairs(&[("__name__", "foo"), ("a", "2")]);
    assert_eq!(e0.expected.series[&l2].pos, 2);
    assert!(!e0.is_fail() && !e0.is_ordered());

    let e1 = ev[1];
    assert!(
        matches!(e1.kind, EvalKind::Range(r) if r.start_ms == 0 && r.end_ms == 600_000 && r.step_ms == 300_000)
    );
    assert_eq!(e1.expected.series[&Labels::empty()].values.len(), 3);

    let e2 = ev[2];
    assert!(e2.is_fail());
    assert_eq!(e2.expected_fail_message.as_deref(), Some("some message"));

    let e3 = ev[3];
    assert_eq!(e3.expected.scalar, Some(16.0));

    let e4 = ev[4];
    assert!(e4.is_ordered() && e4.is_fail());
    assert!(e4.expect_fail.as_ref().is_some_and(|m| m.matches("xxabcxx") && !m.matches("ac")));
    assert_eq!(e4.expect_info.len(), 1);
    let l1 = Labels::from_pairs(&[("__name__", "foo"), ("a", "1")]);
    assert_eq!(e4.expected.series[&l2].pos, 1);
    assert_eq!(e4.expected.series[&l1].pos, 2);

    let e5 = ev[5];
    // `expect range vector` moves the evaluation to the end of its range.
    assert_eq!(e5.kind, EvalKind::Instant { at_ms: 2_400_000 });
    assert!(e5.exclude_from_range_query);
    assert_eq!(e5.range_vector.map(|r| (r.start_ms, r.step_ms)), Some((1_800_000, 300_000)));
    // Positions count the `expect range vector` line, as Prometheus's do.
    let plain = Labels::from_pairs(&[("__name__", "foo")]);
    assert_eq!(e5.expected.series[&plain].pos, 2);

    let e6 = ev[6];
    assert_eq!(e6.expected_string, "a\tb");
    assert!(e6.exclude_from_range_query);

    // On a range evaluation, `expect range vector` replaces its range.
    let e7 = ev[7];
    assert!(
        matches!(e7.kind, EvalKind::Range(r) if r.start_ms == 60_000 && r.end_ms == 180_000 && r.step_ms == 30_000)
    );
}

fn script_errors() {
    for (bad, why) in [
        ("eval instant at 1m scalar(foo)\n  1\n  foo 1\n", "a scalar ends the block"),
        ("eval instant at 0 foo\n  foo 1 2\n", "several values in an instant case"),
        ("eval instant at 0 foo\n  expect warn\n  expect no_warn\n", "warn with no_warn"),
        ("eval instant at 0 foo\n  expect fail\n  expect fail\n", "two expect fail"),
        ("eval instant at 0 foo\n  expect bogus\n", "unknown expect"),
        ("eval instant at x foo\n", "bad time"),
        ("eval range from 1m to 0 step 1m foo\n", "end before start"),
        ("load 1m\n  foo 1\n\n  foo 2\n", "a series line outside a load"),
        ("load 1m\n  foo 1x\n", "bad notation"),
        ("frobnicate\n", "unknown command"),
        (
            "eval_fail instant at 0 foo\n  expected_fail_message m\n  foo 1\n",
            "expected_fail_message ends the block",
        ),
        ("eval instant at 0 foo\n  expect string\n", "expect string without literal"),
    ] {
        assert!(script::parse(bad).is_err(), "should not parse ({why}): {bad:?}");
    }
    // A comment inside a block ends it; what follows is a new command.
    assert!(script::parse("load 1m\n  foo 1\n# c\n  bar 1\n").is_err());
}

fn compare_cases() {
    use crate::compare::{Frame, Outcome, check_range_mode, compare_result};
    use tocsin_engine::Sample;
    let s = script::parse(
        "eval range from 0 to 2m step 1m m\n  m{a=\"1\"} 1 _ 3\n  m{a=\"2\"} 1\n\n\
         eval instant at 1m m[2m]\n  m 1\n\n\
         eval instant at 0 scalar(m)\n  7\n\n\
         eval instant at 0 m\n  expect ordered\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ev = evals(&s);
    let l = |a: &str| Labels::from_pairs(&[("__name__", "m"), ("a", a)]);
    let series = |a: &str, pts: &[(i64, f64)]| Series {
        labels: l(a),
        points: pts.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        ..Series::default()
    };
    let frame = Frame { start_ms: 0, step_ms: 60_000, end_ms: Some(120_000) };
    let good = vec![series("1", &[(0, 1.0), (120_000, 3.0)]), series("2", &[(0, 1.0)])];
    assert_eq!(compare_result(ev[0], &Value::Matrix(good.clone()), frame), Ok(()));
    let unsorted = vec![good[1].clone(), good[0].clone()];
    let e = compare_result(ev[0], &Value::Matrix(unsorted), frame).unwrap_err();
    assert!(e.contains("not sorted"), "{e}");
    let shifted = vec![series("1", &[(0, 1.0), (60_000, 3.0)]), good[1].clone()];
    assert!(compare_result(ev[0], &Value::Matrix(shifted), frame).is_err());
    let extra_point =
        vec![series("1", &[(0, 1.0), (60_000, 2.0), (120_000, 3.0)]), good[1].clone()];
    assert!(compare_result(ev[0], &Value::Matrix(extra_point), frame).is_err());
    let vector = Value::Vector(vec![InstantSample::float(l("2"), 0, 1.0)]);
    assert!(compare_result(ev[0], &vector, frame).is_err());
    // An instant query's matrix without `expect range vector` has no expected
    // timestamps, as in Prometheus: any expected point fails.
    let m = Value::Matrix(vec![Series {
        labels: Labels::from_pairs(&[("__name__", "m")]),
        points: vec![Sample::new(60_000, 1.0)],
        ..Series::default()
    }]);
    let e = compare_result(ev[1], &m, Frame { start_ms: 60_000, step_ms: 0, end_ms: None })
        .unwrap_err();
    assert!(e.contains("cannot return this many points"), "{e}");
    // Scalars: value, and only where a scalar is expected.
    assert_eq!(compare_result(ev[2], &Value::Scalar { t: 0, v: 7.0 }, frame), Ok(()));
    assert!(compare_result(ev[2], &Value::Scalar { t: 0, v: 7.1 }, frame).is_err());
    assert!(compare_result(ev[2], &vector, frame).is_err());
    assert!(compare_result(ev[1], &Value::Scalar { t: 0, v: 1.0 }, frame).is_err());
    // Strings compare with the `expect string` value, "" by default.
    assert_eq!(compare_result(ev[3], &Value::String { t: 0, s: String::new() }, frame), Ok(()));
    assert!(compare_result(ev[3], &Value::String { t: 0, s: "x".into() }, frame).is_err());
    // An ordered expectation rejects a matrix.
    assert!(compare_result(ev[3], &Value::Matrix(vec![]), frame).is_err());
    // Range mode: the middle step, re-wrapped as a scalar where one is expected.
    let ok = |value| Outcome::Ok(QueryResult { value, warnings: vec![], infos: vec![] });
    let mid = |v: f64| {
        ok(Value::Matrix(vec![Series {
            labels: Labels::empty(),
            points: vec![Sample::new(0, 0.0), Sample::new(60_000, v), Sample::new(120_000, 0.0)],
            ..Series::default()
        }]))
    };
    assert_eq!(check_range_mode(ev[2], "scalar(m)", 60_000, &mid(7.0)), Ok(()));
    assert!(check_range_mode(ev[2], "scalar(m)", 60_000, &mid(0.5)).is_err());
    assert!(check_range_mode(ev[2], "scalar(m)", 30_000, &mid(7.0)).is_err());
    assert!(
        check_range_mode(ev[2], "scalar(m)", 60_000, &ok(Value::Scalar { t: 0, v: 7.0 })).is_err()
    );
    assert!(check_range_mode(ev[2], "scalar(m)", 60_000, &Outcome::Err("x".into())).is_err());
}

fn ratchet_cases() {
    let id = CaseId::parse("functions.test:123/step_invariance").unwrap_or_else(|| panic!("id"));
    assert_eq!(id.to_string(), "functions.test:123/step_invariance");
    assert!(id.step_invariance);
    let list = ratchet::parse("# header\nfunctions.test:123  # rate(x[5m])\nother.test:7\n")
        .unwrap_or_default();
    assert_eq!(list.len(), 2);
    let a = CaseId::parse("functions.test:123").unwrap_or_else(|| panic!("id"));
    let b = CaseId::parse("functions.test:200").unwrap_or_else(|| panic!("id"));
    let ran: BTreeSet<String> = ["functions.test".to_owned()].into();
    // a listed and passing: fixed; b failing, unlisted: regression.
    let v = ratchet::judge(&list, &ran, &[b.clone()].into(), &[a.clone()].into());
    assert_eq!(v.regressions, vec![b.clone()]);
    assert_eq!(v.fixed, vec![a.clone()]);
    // a listed but neither passing nor failing (now skipped): stale.
    let v = ratchet::judge(&list, &ran, &BTreeSet::new(), &BTreeSet::new());
    assert_eq!(v.stale, vec![a.clone()]);
    assert!(v.regressions.is_empty());
    // Listed and failing: neither regression nor fixed.
    let v = ratchet::judge(&list, &ran, &[a.clone()].into(), &BTreeSet::new());
    assert!(v.regressions.is_empty() && v.fixed.is_empty() && v.still_failing == 1);
    // Updating keeps other files' entries and replaces the run file's.
    let failing = [(b.clone(), "q".to_owned())].into();
    let new = ratchet::updated(&list, &ran, &failing);
    let ids: Vec<String> = new.keys().map(ToString::to_string).collect();
    assert_eq!(ids, ["functions.test:200", "other.test:7"]);
    assert_eq!(ratchet::parse(&ratchet::render(&new)).unwrap_or_default(), new);
    assert!(ratchet::parse("not an id\n").is_err());
}

fn query_ast_cases() {
    let v = query_ast::at_modifier_variants("sum(rate(foo[5m])) / bar", 60_000)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("applicable"));
    let times: Vec<i64> = v.iter().map(|(_, t)| *t).collect();
    assert_eq!(times, [-600_000, 0, 12_000, 60_000, 600_000]);
    assert!(v[0].0.contains("foo[5m] @ 60.000") && v[0].0.contains("bar @ 60.000"), "{}", v[0].0);
    let v = query_ast::at_modifier_variants("foo", 0).unwrap_or_default().unwrap_or_default();
    assert_eq!(v.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [-1000, 0, 1000]);
    // Existing numeric @ stays; @ start() is replaced; subquery insides keep their timing.
    let v = query_ast::at_modifier_variants(
        "foo @ 5 + bar @ start() + max_over_time(baz[5m:1m])",
        120_000,
    )
    .unwrap_or_default()
    .unwrap_or_default();
    let q = &v[0].0;
    assert!(q.contains("foo @ 5.000") && q.contains("bar @ 120.000"), "{q}");
    assert!(q.contains("baz[5m:1m] @ 120.000") || q.contains("[5m:1m] @ 120.000"), "{q}");
    assert!(!q.contains("baz @"), "{q}");
    assert_eq!(query_ast::at_modifier_variants("time() - foo", 1000), Ok(None));
    assert_eq!(query_ast::at_modifier_variants("sum(timestamp(foo))", 1000), Ok(None));
    assert!(query_ast::QUERY_CONTEXT_FUNCTIONS.is_match("foo[step()]"));

    let sels =
        query_ast::selectors(r#"sum(foo{a=~"b.*"}) + on() group_left max_over_time(bar[5m:1m])"#)
            .unwrap_or_default();
    assert_eq!(sels.len(), 2);
    let foo_b = Labels::from_pairs(&[("__name__", "foo"), ("a", "bc")]);
    let foo_c = Labels::from_pairs(&[("__name__", "foo"), ("a", "cb")]);
    let bar = Labels::from_pairs(&[("__name__", "bar"), ("x", "y")]);
    assert!(sels.iter().any(|s| s.matches(&foo_b)));
    assert!(!sels.iter().any(|s| s.matches(&foo_c)));
    assert!(sels.iter().any(|s| s.matches(&bar)));
    let sels = query_ast::selectors(r#"{__name__=~"fo.*"}"#).unwrap_or_default();
    assert!(sels[0].matches(&foo_c));
    let ids =
        query_ast::identifiers(r#"histogram_count(h_test </ 2) + on(a) foo{a="bar_x", b='c\'d'}"#);
    for w in ["histogram_count", "h_test", "on", "a", "foo", "b"] {
        assert!(ids.contains(w), "{w} in {ids:?}");
    }
    assert!(!ids.contains("bar_x") && !ids.contains("d"), "{ids:?}");
}

/// Answers a handful of query shapes from the head, enough to drive every
/// path of the runner: bare selectors (also with `@`), and named behaviours.
struct StandIn;

impl StandIn {
    fn selector(head: &Head, name: &str, t: i64) -> Vec<InstantSample> {
        let m = [Matcher::equal("__name__", name)];
        let mut out = Vec::new();
        for s in head.select(&m, t - 300_000 + 1, t).unwrap_or_default() {
            let mut pts = Vec::new();
            let _ = head.samples(s.id, t - 300_000 + 1, t, &mut pts);
            if let Some(p) = pts.last()
                && !is_stale_nan(p.v)
            {
                out.push(InstantSample::float(s.labels, t, p.v));
            }
        }
        out
    }

    fn instant(head: &Head, q: &str, t: i64) -> Result<QueryResult, String> {
        let ok = |value| Ok(QueryResult { value, warnings: vec![], infos: vec![] });
        // `name @ secs` evaluates `name` at that time, as PromQL would.
        let (q, t) = match q.split_once(" @ ") {
            Some((n, at)) => (n, at.parse::<f64>().map_err(|e| e.to_string())? as i64 * 1000),
            None => (q, t),
        };
        match q {
            "panic_please" => panic!("boom"),
            "hang_please" => {
                std::thread::sleep(Duration::from_millis(500));
                Err("late".into())
            }
            "fail_please" => Err("some error message".into()),
            "scalar_please" => ok(Value::Scalar { t, v: 1.0 }),
            "string_please" => ok(Value::String { t, s: "hello".into() }),
            "warn_please" => Ok(QueryResult {
                value: Value::Vector(vec![]),
                warnings: vec!["PromQL warning: w (1:1)".into()],
                infos: vec![],
            }),
            "reversed_foo" => {
                let mut v = Self::selector(head, "foo", t);
                v.reverse();
                ok(Value::Vector(v))
            }
            name => ok(Value::Vector(Self::selector(head, name, t))),
        }
    }
}

impl Evaluator for StandIn {
    fn eval(&self, head: &Head, q: &Query) -> Result<QueryResult, String> {
        match q {
            Query::Instant { expr, t_ms } => Self::instant(head, expr, *t_ms),
            // Differs from the instant answer, to exercise the range-mode check.
            Query::Range { expr, .. } if expr == "inconsistent" => {
                Ok(QueryResult { value: Value::Matrix(vec![]), warnings: vec![], infos: vec![] })
            }
            Query::Range { expr, start_ms, end_ms, step_ms } => {
                let mut series: Vec<Series> = Vec::new();
                let mut t = *start_ms;
                while t <= *end_ms {
                    let r = Self::instant(head, expr, t)?;
                    let v = match r.value {
                        Value::Vector(v) => v,
                        Value::Scalar { v, .. } => {
                            vec![InstantSample::float(Labels::empty(), t, v)]
                        }
                        _ => return Err("stand-in: range of a string".into()),
                    };
                    for s in v {
                        match series.iter_mut().find(|x| x.labels == s.labels) {
                            Some(x) => x.points.push(tocsin_engine::Sample::new(t, s.v)),
                            None => series.push(Series {
                                labels: s.labels,
                                points: vec![tocsin_engine::Sample::new(t, s.v)],
                                ..Series::default()
                            }),
                        }
                    }
                    t += step_ms.max(&1);
                }
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(QueryResult { value: Value::Matrix(series), warnings: vec![], infos: vec![] })
            }
        }
    }
}

/// Each case's expected status: P pass, F fail, S skip; then the expected
/// step-invariance result: p pass, f fail, - not applicable.
const END_TO_END: &str = r#"
load 1m
  foo{a="1"} 1+1x10
  foo{a="2"} 5 _ stale
  nan_metric NaN
  hist {{schema:0 sum:1 count:1}}
  inconsistent 1

# P p
eval instant at 1m foo
  foo{a="1"} 2
  foo{a="2"} 5

# F f wrong value
eval instant at 1m foo
  foo{a="1"} 2.5
  foo{a="2"} 5

# P p within tolerance
eval instant at 1m foo
  foo{a="1"} 2.0000000001
  foo{a="2"} 5

# F f expected series missing from the result
eval instant at 1m foo
  foo{a="1"} 2
  foo{a="2"} 5
  foo{a="3"} 5

# F f unexpected series in the result
eval instant at 1m foo
  foo{a="1"} 2

# P p staleness marker ends foo{a="2"}
eval instant at 2m foo
  foo{a="1"} 3

# P p
eval instant at 0 nan_metric
  nan_metric NaN

# F f
eval instant at 0 nan_metric
  nan_metric 1

# P p
eval instant at 0 scalar_please
  1

# F f
eval instant at 0 scalar_please
  2

# F f vector expected, scalar returned
eval instant at 0 scalar_please
  foo 1

# F f nothing expected, scalar returned
eval instant at 0 scalar_please

# P p
eval instant at 0 fail_please
  expect fail

# P p
eval instant at 0 fail_please
  expect fail msg: some error message

# F f
eval instant at 0 fail_please
  expect fail msg: other message

# P p
eval instant at 0 fail_please
  expect fail regex: error m

# P p
eval_fail instant at 0 fail_please

# F f errors are failures unless expected
eval instant at 0 fail_please

# F f success when a failure is expected
eval instant at 1m foo
  expect fail

# F f a panic is never an expected failure
eval instant at 0 panic_please
  expect fail

# F f
eval instant at 0 hang_please

# P p
eval instant at 1m reversed_foo
  expect ordered
  foo{a="2"} 5
  foo{a="1"} 2

# F f wrong order (range mode does not check order, the @ variants do)
eval instant at 1m reversed_foo
  expect ordered
  foo{a="1"} 2
  foo{a="2"} 5

# P p order does not matter unless asked for
eval instant at 1m reversed_foo
  foo{a="1"} 2
  foo{a="2"} 5

# P -
eval range from 0 to 2m step 1m foo
  foo{a="1"} 1 2 3
  foo{a="2"} 5 5

# F -
eval range from 0 to 2m step 1m foo
  foo{a="1"} 1 2 4
  foo{a="2"} 5 5

# F - one point too many
eval range from 0 to 2m step 1m foo
  foo{a="1"} 1 2 3
  foo{a="2"} 5 5 5

# P -
eval range from 0 to 2m step 1m foo
  foo{a="1"} 1 2 3
  foo{a="2"} 5 5 _

# F - more points than the range has steps
eval range from 0 to 2m step 1m foo
  foo{a="1"} 1 2 3 4
  foo{a="2"} 5 5

# P p
eval instant at 0 warn_please
  expect warn

# F f
eval instant at 0 warn_please
  expect no_warn

# P p
eval instant at 0 warn_please
  expect warn msg: PromQL warning: w (1:1)

# F f
eval instant at 0 warn_please
  expect warn msg: PromQL warning: v (1:1)

# P p annotations nobody asked about are fine
eval instant at 0 warn_please

# F f
eval instant at 0 warn_please
  expect info

# P p no range mode for strings, but @ variants
eval instant at 0 string_please
  expect string "hello"

# F f
eval instant at 0 string_please
  expect string "bye"

# P f the instant answer is right, range mode disagrees
eval instant at 0 inconsistent
  inconsistent 1

# S - reads a series loaded with {{...}}
eval instant at 0 hist

# S - regex selector reaches it too
eval instant at 0 {__name__=~"h.*"}

# S - promql-parser cannot parse `</`; the metric name decides
eval instant at 0 histogram_count(hist </ 2)

# S - {{...}} expected
eval instant at 1m foo
  foo{a="1"} {{schema:0 sum:1 count:1}}

# P p other series still run
eval instant at 0 nan_metric
  nan_metric NaN

load_with_nhcb 1m
  cl_bucket{le="1"} 1
  cl_bucket{le="+Inf"} 2

# P p classic series run
eval instant at 0 cl_bucket
  cl_bucket{le="1"} 1
  cl_bucket{le="+Inf"} 2

# S - the derived NHCB series does not
eval instant at 0 cl

clear

# P p nothing loaded, nothing expected
eval instant at 0 hist
"#;

fn end_to_end() {
    let script = script::parse(END_TO_END).unwrap_or_else(|e| panic!("{e}"));
    let want: Vec<(usize, String)> = END_TO_END
        .lines()
        .enumerate()
        .filter_map(|(i, l)| l.strip_prefix("# ").map(|c| (i + 2, c.to_owned())))
        .collect();
    let mut runner = Runner::new(Arc::new(StandIn), Duration::from_millis(100));
    let reports = runner.run_script(&script, None);
    assert_eq!(reports.len(), want.len(), "one marker comment per case");
    for (r, (line, marker)) in reports.iter().zip(&want) {
        assert_eq!(r.line, *line, "marker comments sit right above their eval");
        let mut m = marker.chars();
        let status = matches!(
            (m.next(), &r.status),
            (Some('P'), Status::Pass) | (Some('F'), Status::Fail(_)) | (Some('S'), Status::Skip(_))
        );
        assert!(status, "line {line} ({marker}): got {:?}", r.status);
        m.next();
        let inv = matches!(
            (m.next(), &r.invariance),
            (Some('p'), Invariance::Pass)
                | (Some('f'), Invariance::Fail(_))
                | (Some('-'), Invariance::NotApplicable)
        );
        assert!(inv, "line {line} ({marker}): step invariance {:?}", r.invariance);
    }
    let reasons: Vec<&SkipReason> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Skip(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            &SkipReason::NativeHistogramSeries,
            &SkipReason::NativeHistogramSeries,
            &SkipReason::NativeHistogramSeries,
            &SkipReason::NativeHistogramExpected,
            &SkipReason::NhcbSeries
        ]
    );
    let panic = reports.iter().find(|r| r.expr == "panic_please").map(|r| r.status.clone());
    assert!(matches!(panic, Some(Status::Fail(m)) if m.contains("engine panicked: boom")));

    // An out-of-scope file skips everything, naming the feature.
    let reports = runner.run_script(&script, Some("info() function"));
    assert!(
        reports
            .iter()
            .all(|r| r.status == Status::Skip(SkipReason::Experimental("info() function")))
    );
}
