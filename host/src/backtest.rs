//! What `tocsin backtest` and `POST /api/v1/backtest` share: rule files
//! parsed into groups, the run's range checked and bounded, the rules' input
//! taken from a live head. Both then run the engine's `rules::backtest`, the
//! call the browser playground makes too.

use std::collections::BTreeSet;

use tocsin_engine::duration::format_rfc3339;
use tocsin_engine::matcher::Matcher;
use tocsin_engine::promql::metric_names;
use tocsin_engine::rules::backtest::{BacktestOptions, evaluation_count};
use tocsin_engine::rules::{Group, ParseOptions, RuleExpr, parse_rule_file};
use tocsin_engine::storage::{Head, Queryable};

/// Parses rule files (name, text) into groups evaluated every
/// `interval_ms` unless they say otherwise; on failure, every problem with
/// its file:line:column.
pub fn parse_groups(
    files: &[(String, String)],
    interval_ms: i64,
) -> Result<Vec<Group>, Vec<String>> {
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for (name, text) in files {
        match parse_rule_file(name, text, ParseOptions::default()) {
            Ok(rf) => groups.extend(rf.groups.iter().map(|g| Group::new(name, g, interval_ms, 0))),
            Err(errs) => problems.extend(errs.iter().map(ToString::to_string)),
        }
    }
    if problems.is_empty() { Ok(groups) } else { Err(problems) }
}

/// Checks a run's range and refuses one of more than `max_evaluations`
/// group evaluations, which would take hours rather than look hung.
pub fn check(groups: &[Group], opts: &BacktestOptions, max_evaluations: u64) -> Result<(), String> {
    if opts.to_ms < opts.from_ms {
        return Err(format!(
            "the end ({}) is before the start ({})",
            format_rfc3339(opts.to_ms),
            format_rfc3339(opts.from_ms)
        ));
    }
    if opts.step_ms.is_some_and(|s| s <= 0) {
        return Err("the step must be greater than zero".into());
    }
    let total = evaluation_count(groups, opts);
    if total > max_evaluations {
        return Err(format!(
            "{total} group evaluations requested; narrow the range or use a larger step (limit {max_evaluations})"
        ));
    }
    Ok(())
}

/// Copies from `live` into `into` every series the groups' rules can read,
/// whole, so the backtest writes its `ALERTS` and recorded series into a
/// head of its own. Works when every selector names its metric; a `wasm:`
/// rule's queries, or a selector without a metric name, could read anything.
/// Refuses to copy more than `max_samples`. Returns how many series were
/// copied.
pub fn copy_inputs(
    groups: &[Group],
    live: &Head,
    into: &Head,
    max_samples: usize,
) -> Result<usize, String> {
    let mut names = BTreeSet::new();
    for g in groups {
        for r in &g.rules {
            let expr = match &r.spec.expr {
                RuleExpr::PromQL { expr, .. } => expr,
                RuleExpr::Wasm { module, .. } => {
                    return Err(format!(
                        "rule {:?} runs module {module:?}, whose queries cannot be known in advance: send the data to backtest over",
                        r.spec.name
                    ));
                }
            };
            let Some(read) = metric_names(expr) else {
                return Err(format!(
                    "rule {:?} has a selector without a metric name: send the data to backtest over",
                    r.spec.name
                ));
            };
            names.extend(read);
        }
    }
    let mut copied = 0;
    let mut samples = 0usize;
    let mut buf = Vec::new();
    for name in names {
        let matcher = Matcher::equal(tocsin_engine::labels::METRIC_NAME, name.as_str());
        let series = live.select(&[matcher], i64::MIN, i64::MAX).map_err(|e| e.to_string())?;
        for s in series {
            buf.clear();
            live.samples_of(&s, i64::MIN, i64::MAX, &mut buf).map_err(|e| e.to_string())?;
            samples += buf.len();
            if samples > max_samples {
                return Err(format!(
                    "the rules read more than {max_samples} stored samples (metric {name:?} among others): send the data to backtest over"
                ));
            }
            into.append_many(&into.get_or_create(&s.labels), &buf);
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_engine::Labels;

    #[test]
    fn copies_what_the_rules_read_and_no_more_than_allowed() {
        let live = Head::default();
        for (name, job) in [("x", "a"), ("x", "b"), ("y", "a")] {
            let l = Labels::from_pairs(&[("__name__", name), ("job", job)]);
            for m in 0..3 {
                live.append_labels(&l, m * 60_000, 1.0).unwrap();
            }
        }
        let rules = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n".to_owned();
        let groups = parse_groups(&[("r.yml".to_owned(), rules)], 60_000).unwrap();
        let into = Head::default();
        assert_eq!(copy_inputs(&groups, &live, &into, 100), Ok(2));
        assert_eq!(into.stats().series, 2, "only the series of x");
        let err = copy_inputs(&groups, &live, &Head::default(), 4).unwrap_err();
        assert!(err.contains("more than 4 stored samples"), "{err}");
    }
}
