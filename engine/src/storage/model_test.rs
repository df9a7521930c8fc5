//! The head against a naive model: random appends (out of order, duplicates,
//! exact resends, stale handles), retention, selects and reads.
//!
//! The model drops samples exactly at the retention bound; the head drops
//! whole chunks but must read exactly the same samples. `select` and the label
//! queries may return series that only "may hold" samples in range (the head
//! knows a series' time span, not every gap in it), so those are checked
//! between the series that do hold samples in range and the series alive.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{AppendError, Head, HeadOptions, Queryable, SeriesHandle};
use crate::labels::Labels;
use crate::matcher::{MatchOp, Matcher, matches_all};
use crate::sample::{STALE_NAN_BITS, Sample};

const SERIES: [&[(&str, &str)]; 6] = [
    &[("__name__", "a"), ("job", "x"), ("inst", "1")],
    &[("__name__", "a"), ("job", "x"), ("inst", "2")],
    &[("__name__", "a"), ("job", "y")],
    &[("__name__", "b"), ("job", "x"), ("inst", "1")],
    &[("__name__", "b")],
    &[("job", "y"), ("inst", "2")],
];
const NAMES: [&str; 4] = ["__name__", "job", "inst", "zz"];
const PATTERNS: [&str; 8] = ["", "a", "x", "1", "a|b", ".*", ".+", "x|"];
const OPS: [MatchOp; 4] = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex];

#[derive(Clone, Debug)]
enum Op {
    /// Append through `append_labels`, which (re)creates the series.
    AppendLabels {
        series: usize,
        t: i64,
        v: u64,
    },
    /// Append through the handle taken by the last `Resolve` of this series.
    AppendHandle {
        series: usize,
        t: i64,
        v: u64,
    },
    AppendMany {
        series: usize,
        samples: Vec<(i64, u64)>,
    },
    Resolve {
        series: usize,
    },
    Truncate {
        mint: i64,
    },
    Select {
        matchers: Vec<(usize, usize, usize)>,
        mint: i64,
        maxt: i64,
    },
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(STALE_NAN_BITS),
        Just(f64::NAN.to_bits()),
        Just((-0.0f64).to_bits()),
        (0u32..4).prop_map(|x| f64::from(x).to_bits()),
        any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let series = 0..SERIES.len();
    let t = 0i64..80;
    prop_oneof![
        6 => (series.clone(), t.clone(), value()).prop_map(|(series, t, v)| Op::AppendLabels { series, t, v }),
        4 => (series.clone(), t.clone(), value()).prop_map(|(series, t, v)| Op::AppendHandle { series, t, v }),
        2 => (series.clone(), prop::collection::vec((t.clone(), value()), 0..6))
            .prop_map(|(series, samples)| Op::AppendMany { series, samples }),
        1 => series.prop_map(|series| Op::Resolve { series }),
        1 => (0i64..90).prop_map(|mint| Op::Truncate { mint }),
        2 => (prop::collection::vec((0..NAMES.len(), 0..OPS.len(), 0..PATTERNS.len()), 0..3), 0i64..90, 0i64..90)
            .prop_map(|(matchers, mint, maxt)| Op::Select { matchers, mint, maxt }),
    ]
}

#[derive(Default)]
struct Model {
    /// Samples per series slot; `None` when the series is not in the head.
    series: [Option<Vec<(i64, u64)>>; SERIES.len()],
    /// Whether the handle of each slot still refers to a live series.
    handle_live: [bool; SERIES.len()],
    min_valid: i64,
    appended: u64,
    out_of_order: u64,
    duplicates: u64,
    out_of_bounds: u64,
}

impl Model {
    fn append(&mut self, i: usize, t: i64, v: u64) -> Result<bool, AppendError> {
        let samples = self.series[i].get_or_insert_with(Vec::new);
        if t < self.min_valid {
            self.out_of_bounds += 1;
            return Err(AppendError::OutOfBounds { t, min_valid: self.min_valid });
        }
        if let Some(&(last_t, last_v)) = samples.last() {
            if t < last_t {
                self.out_of_order += 1;
                return Err(AppendError::OutOfOrder { t, last_t });
            }
            if t == last_t {
                if last_v == v {
                    return Ok(false);
                }
                self.duplicates += 1;
                return Err(AppendError::Duplicate { t });
            }
        }
        samples.push((t, v));
        self.appended += 1;
        Ok(true)
    }

    fn truncate(&mut self, mint: i64) {
        self.min_valid = self.min_valid.max(mint);
        for (i, slot) in self.series.iter_mut().enumerate() {
            if let Some(samples) = slot {
                samples.retain(|&(t, _)| t >= self.min_valid);
                if samples.is_empty() {
                    *slot = None;
                    self.handle_live[i] = false;
                }
            }
        }
    }

    fn in_range(&self, i: usize, mint: i64, maxt: i64) -> Vec<(i64, u64)> {
        let mint = mint.max(self.min_valid);
        self.series[i].iter().flatten().copied().filter(|&(t, _)| mint <= t && t <= maxt).collect()
    }
}

fn run(chunk_samples: usize, decoded_series: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let head = Head::new(HeadOptions { chunk_samples, decoded_series });
    let labels: Vec<Labels> = SERIES.iter().map(|s| Labels::from_pairs(s)).collect();
    let mut model = Model { min_valid: i64::MIN, ..Model::default() };
    let mut handles: Vec<Option<SeriesHandle>> = vec![None; SERIES.len()];
    for op in ops {
        match op {
            Op::AppendLabels { series, t, v } => {
                let got = head.append_labels(&labels[series], t, f64::from_bits(v));
                let want = model.append(series, t, v).map(|_| ());
                prop_assert_eq!(got, want);
            }
            Op::AppendHandle { series, t, v } => {
                let Some(h) = &handles[series] else { continue };
                let got = head.append(h, t, f64::from_bits(v));
                if model.handle_live[series] {
                    prop_assert_eq!(got, model.append(series, t, v).map(|_| ()));
                } else {
                    prop_assert_eq!(got, Err(AppendError::SeriesRemoved));
                }
            }
            Op::AppendMany { series, samples } => {
                let Some(h) = &handles[series] else { continue };
                let batch: Vec<Sample> =
                    samples.iter().map(|&(t, v)| Sample::new(t, f64::from_bits(v))).collect();
                let got = head.append_many(h, &batch);
                if model.handle_live[series] {
                    let results: Vec<_> =
                        samples.iter().map(|&(t, v)| model.append(series, t, v)).collect();
                    prop_assert_eq!(
                        got.appended,
                        results.iter().filter(|r| r == &&Ok(true)).count()
                    );
                    prop_assert_eq!(got.rejected, results.iter().filter(|r| r.is_err()).count());
                    prop_assert_eq!(got.first_error, results.into_iter().find_map(Result::err));
                } else if !samples.is_empty() {
                    prop_assert_eq!(got.first_error, Some(AppendError::SeriesRemoved));
                }
            }
            Op::Resolve { series } => {
                handles[series] = Some(head.get_or_create(&labels[series]));
                model.series[series].get_or_insert_with(Vec::new);
                model.handle_live[series] = true;
            }
            Op::Truncate { mint } => {
                head.truncate_before(mint);
                model.truncate(mint);
            }
            Op::Select { matchers, mint, maxt } => {
                let ms: Vec<Matcher> = matchers
                    .iter()
                    .map(|&(n, o, p)| Matcher::new(OPS[o], NAMES[n], PATTERNS[p]))
                    .collect::<Result<_, _>>()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_queries(&head, &model, &labels, &ms, mint, maxt)?;
            }
        }
    }
    check_queries(&head, &model, &labels, &[], i64::MIN, i64::MAX)?;
    let st = head.stats();
    let alive: Vec<&Vec<(i64, u64)>> = model.series.iter().flatten().collect();
    prop_assert_eq!(st.series, alive.len() as u64);
    prop_assert_eq!(st.samples_appended, model.appended);
    prop_assert_eq!(st.out_of_order_rejected, model.out_of_order);
    prop_assert_eq!(st.duplicate_rejected, model.duplicates);
    prop_assert_eq!(st.out_of_bounds_rejected, model.out_of_bounds);
    prop_assert_eq!(st.max_time, alive.iter().filter_map(|s| s.last().map(|x| x.0)).max());
    let model_min = alive.iter().filter_map(|s| s.first().map(|x| x.0)).min();
    prop_assert_eq!(st.min_time.is_some(), model_min.is_some());
    if let (Some(h), Some(m)) = (st.min_time, model_min) {
        prop_assert!(
            model.min_valid <= h && h <= m,
            "min_time {} not in [{}, {}]",
            h,
            model.min_valid,
            m
        );
    }
    Ok(())
}

fn check_queries(
    head: &Head,
    model: &Model,
    labels: &[Labels],
    ms: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Result<(), TestCaseError> {
    let matching: Vec<usize> = (0..SERIES.len())
        .filter(|&i| model.series[i].is_some() && matches_all(ms, &labels[i]))
        .collect();
    let holding: BTreeSet<usize> =
        matching.iter().copied().filter(|&i| !model.in_range(i, mint, maxt).is_empty()).collect();
    let lo = mint.max(model.min_valid);
    let may_hold: BTreeSet<usize> = matching
        .iter()
        .copied()
        .filter(|&i| {
            lo <= maxt && model.series[i].iter().flatten().last().is_some_and(|&(t, _)| t >= lo)
        })
        .collect();

    let selected = head.select(ms, mint, maxt).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        selected.windows(2).all(|w| w[0].labels < w[1].labels),
        "not sorted: {:?}",
        selected
    );
    let mut got = BTreeSet::new();
    for s in &selected {
        let Some(i) = labels.iter().position(|l| *l == s.labels) else {
            return Err(TestCaseError::fail(format!("unknown series {}", s.labels)));
        };
        got.insert(i);
        let mut out = Vec::new();
        head.samples(s.id, mint, maxt, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let out: Vec<(i64, u64)> = out.iter().map(|s| (s.t, s.v.to_bits())).collect();
        prop_assert_eq!(&out, &model.in_range(i, mint, maxt), "samples of {}", s.labels);
        // Again, now that a decoded chunk may be cached.
        let mut again = Vec::new();
        head.samples(s.id, mint, maxt, &mut again)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again: Vec<(i64, u64)> = again.iter().map(|s| (s.t, s.v.to_bits())).collect();
        prop_assert_eq!(again, out, "samples of {} read again", s.labels);
    }
    prop_assert!(holding.is_subset(&got), "{:?} misses series holding samples {:?}", got, holding);
    prop_assert!(got.is_subset(&may_hold), "{:?} has series outside {:?}", got, may_hold);

    let names_of = |set: &BTreeSet<usize>| -> BTreeSet<String> {
        set.iter().flat_map(|&i| labels[i].iter().map(|l| l.name.to_string())).collect()
    };
    let names: BTreeSet<String> = head
        .label_names(ms, mint, maxt)
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .iter()
        .map(|n| n.to_string())
        .collect();
    prop_assert!(names_of(&holding).is_subset(&names) && names.is_subset(&names_of(&may_hold)));
    let values_of = |set: &BTreeSet<usize>| -> BTreeSet<String> {
        set.iter().filter_map(|&i| labels[i].get("job").map(str::to_string)).collect()
    };
    let values =
        head.label_values("job", ms, mint, maxt).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(values.windows(2).all(|w| w[0] < w[1]));
    let values: BTreeSet<String> = values.iter().map(|v| v.to_string()).collect();
    prop_assert!(values_of(&holding).is_subset(&values) && values.is_subset(&values_of(&may_hold)));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn head_behaves_like_the_model(
        chunk_samples in 1usize..6,
        // None, too few for the six series, or enough.
        decoded_series in prop_oneof![Just(0usize), Just(2), Just(6)],
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(chunk_samples, decoded_series, ops)?;
    }
}
