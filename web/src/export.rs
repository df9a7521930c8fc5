//! A playground run as a promtool-format unit-test file: the data as
//! `input_series` in expanding notation, and one `alert_rule_test` per moment
//! an alert changed state, listing the alerts firing then. Running the file
//! with `tocsin test rules` (or `promtool test rules`, for PromQL rules)
//! replays the preview and pins it down.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tocsin_engine::duration::format_duration;
use tocsin_engine::gofmt::quote;
use tocsin_engine::labels::{Labels, is_legacy_label_name, is_legacy_metric_name};
use tocsin_engine::rules::backtest::{BacktestOptions, BacktestResult};
use tocsin_engine::sample::{Sample, is_stale_nan};

/// A firing alert's labels and annotations.
type FiringAlert = (Labels, Vec<(String, String)>);

/// `data` is sampled on a grid of `interval_ms` starting at the run's start;
/// samples off the grid or before the start cannot be written in expanding
/// notation and are counted in a comment instead.
pub fn promtool_test(
    rule_file: &str,
    data: &[(Labels, Vec<Sample>)],
    interval_ms: i64,
    eval_step_ms: i64,
    opts: &BacktestOptions,
    result: &BacktestResult,
) -> String {
    let interval_ms = interval_ms.max(1);
    let start = opts.from_ms;
    let end = opts.to_ms;
    let steps = ((end - start) / interval_ms).max(0) as usize + 1;
    let mut out = String::new();
    let mut dropped = 0usize;
    let mut series_text = String::new();
    for (labels, samples) in data {
        let mut grid: Vec<Option<f64>> = vec![None; steps];
        for s in samples {
            let off = s.t - start;
            if off < 0 || off % interval_ms != 0 || (off / interval_ms) as usize >= steps {
                dropped += 1;
                continue;
            }
            grid[(off / interval_ms) as usize] = Some(s.v);
        }
        while grid.last() == Some(&None) {
            grid.pop();
        }
        if grid.is_empty() {
            continue;
        }
        let _ = writeln!(series_text, "      - series: {}", quote(&series_name(labels)));
        let _ = writeln!(series_text, "        values: {}", quote(&values_notation(&grid)));
    }

    let _ =
        writeln!(out, "# A tocsin playground run as a unit test: `tocsin test rules <this file>`.");
    let _ = writeln!(
        out,
        "# Evaluated from {} every {}.",
        tocsin_engine::duration::format_rfc3339(start),
        format_duration(eval_step_ms)
    );
    if dropped > 0 {
        let _ = writeln!(
            out,
            "# {dropped} samples were off the {} grid or outside the range and are not included.",
            format_duration(interval_ms)
        );
    }
    let _ = writeln!(out, "rule_files:\n  - {}", quote(rule_file));
    let _ = writeln!(out, "evaluation_interval: {}", format_duration(eval_step_ms));
    let _ = writeln!(out, "tests:");
    let _ = writeln!(out, "  - interval: {}", format_duration(interval_ms));
    if start != 0 {
        let _ = writeln!(out, "    start_timestamp: {}", seconds(start));
    }
    if !opts.external_labels.is_empty() {
        let _ = writeln!(out, "    external_labels:");
        for l in opts.external_labels.iter() {
            let _ = writeln!(out, "      {}: {}", key(&l.name), quote(&l.value));
        }
    }
    let _ = writeln!(out, "    input_series:");
    out.push_str(&series_text);

    // By time and alert name: promtool asserts all alerts of one name at once.
    let mut at: BTreeMap<(i64, &str), Vec<&FiringAlert>> = BTreeMap::new();
    for s in &result.firing_snapshots {
        at.entry((s.t, s.rule.as_str())).or_default().extend(s.alerts.iter());
    }
    if !at.is_empty() {
        let _ = writeln!(out, "    alert_rule_test:");
    }
    for ((t, name), alerts) in at {
        let _ = writeln!(out, "      - eval_time: {}", format_duration(t - start));
        let _ = writeln!(out, "        alertname: {}", quote(name));
        if alerts.is_empty() {
            let _ = writeln!(out, "        exp_alerts: []");
            continue;
        }
        let _ = writeln!(out, "        exp_alerts:");
        for (labels, annotations) in alerts {
            let _ = writeln!(out, "          - exp_labels:");
            for l in labels.iter().filter(|l| &*l.name != "alertname") {
                let _ = writeln!(out, "              {}: {}", key(&l.name), quote(&l.value));
            }
            if !annotations.is_empty() {
                let _ = writeln!(out, "            exp_annotations:");
                for (k, v) in annotations {
                    let _ = writeln!(out, "              {}: {}", key(k), quote(v));
                }
            }
        }
    }
    out
}

/// `name{a="b"}` as people write series, when the name allows it.
fn series_name(labels: &Labels) -> String {
    match labels.get("__name__") {
        Some(name) if is_legacy_metric_name(name) => {
            let rest = labels.without_metric_name();
            if rest.is_empty() { name.to_owned() } else { format!("{name}{rest}") }
        }
        _ => labels.to_string(),
    }
}

/// A YAML mapping key, quoted only when it has to be.
fn key(k: &str) -> String {
    if is_legacy_label_name(k) { k.to_owned() } else { quote(k) }
}

fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 { (ms / 1000).to_string() } else { format!("{:.3}", ms as f64 / 1000.0) }
}

fn number(v: f64) -> String {
    if is_stale_nan(v) {
        "stale".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf".into() } else { "-Inf".into() }
    } else {
        // Rust prints the shortest text that reads back to the same f64.
        format!("{v}")
    }
}

/// Expanding notation, compressed where it reads back exactly: `_xN` for
/// gaps, `a+bxN` for runs that repeated addition reproduces bit for bit
/// (constants and counters), plain values otherwise.
pub fn values_notation(grid: &[Option<f64>]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < grid.len() {
        let Some(a) = grid[i] else {
            let mut j = i;
            while j < grid.len() && grid[j].is_none() {
                j += 1;
            }
            parts.push(if j - i == 1 { "_".into() } else { format!("_x{}", j - i) });
            i = j;
            continue;
        };
        // The longest run a, a+b, a+2b... (Go's repeated addition) from i.
        let mut j = i + 1;
        if a.is_finite()
            && let Some(Some(next)) = grid.get(i + 1)
        {
            let b = next - a;
            let mut acc = a;
            if b.is_finite() {
                while let Some(Some(v)) = grid.get(j) {
                    acc += b;
                    if acc.to_bits() != v.to_bits() {
                        break;
                    }
                    j += 1;
                }
            }
            if j - i >= 3 {
                let n = j - i - 1;
                parts.push(if b == 0.0 {
                    format!("{}x{n}", number(a))
                } else if b > 0.0 {
                    format!("{}+{}x{n}", number(a), number(b))
                } else {
                    format!("{}-{}x{n}", number(a), number(-b))
                });
                i = j;
                continue;
            }
        }
        parts.push(number(a));
        i += 1;
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_engine::notation::{SequenceValue, parse_values};

    fn roundtrip(grid: &[Option<f64>]) {
        let text = values_notation(grid);
        let parsed = parse_values(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let back: Vec<Option<f64>> = parsed
            .into_iter()
            .map(|v| match v {
                SequenceValue::Float(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(back.len(), grid.len(), "{text}");
        for (a, b) in back.iter().zip(grid) {
            assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{text}");
        }
    }

    #[test]
    fn notation_reads_back_bit_for_bit() {
        roundtrip(&[Some(1.0), Some(2.0), Some(3.0), Some(4.0), None, None, Some(7.5)]);
        roundtrip(&[Some(5.0); 10]);
        roundtrip(&[Some(0.1), Some(0.2), Some(0.30000000000000004), Some(0.4)]);
        roundtrip(&[Some(10.0), Some(8.0), Some(6.0), Some(-1e300), Some(f64::INFINITY)]);
        roundtrip(&[Some(f64::NAN), Some(tocsin_engine::sample::STALE_NAN), Some(1e-9), None]);
        assert_eq!(values_notation(&[Some(0.0), Some(1.0), Some(2.0), Some(3.0)]), "0+1x3");
        assert_eq!(values_notation(&[Some(2.0), Some(2.0), Some(2.0), None, None]), "2x2 _x2");
    }

    /// An exported run, replayed by the engine's promtool-compatible test
    /// runner, passes: the export says what the preview showed.
    #[test]
    fn exported_test_passes_tocsin_test_rules() {
        use crate::{RunOptions, Session};
        use tocsin_engine::rules::{TestFiles, UnitTestOptions, run_test_file};

        let rules = "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: High\n    expr: rate(reqs_total[5m]) > 1\n    for: 3m\n    labels: {severity: page}\n    annotations: {summary: 'rate {{ $value }} on {{ $labels.job }}'}\n  - record: job:reqs:rate5m\n    expr: sum by (job) (rate(reqs_total[5m]))\n";
        let data = "interval: 1m\ninput_series:\n  - series: 'reqs_total{job=\"a\"}'\n    values: '0+10x10 100+200x15 3100+10x20'\n  - series: 'reqs_total{job=\"b\"}'\n    values: '0+300x45'\n";
        let mut s = Session::default();
        s.load_data("data.yml", data.as_bytes()).unwrap();
        let opts = RunOptions {
            external_labels: vec![("cluster".into(), "eu".into())],
            ..Default::default()
        };
        let result: serde_json::Value = serde_json::from_str(
            &s.backtest("rules.yml", rules, &opts, None, &mut |_, _| {}).unwrap(),
        )
        .unwrap();
        let transitions = result["transitions"].as_array().unwrap();
        assert!(transitions.iter().any(|t| t["to"] == "firing"), "{result}");
        assert!(transitions.iter().any(|t| t["to"] == "resolved"), "{result}");
        let test = s.export_test("rules.yml").unwrap();
        assert!(test.contains("exp_alerts:"), "{test}");

        struct Files<'a>(&'a str, &'a str);
        impl TestFiles for Files<'_> {
            fn read(&self, path: &str) -> Result<String, String> {
                match path {
                    "test.yml" => Ok(self.0.to_owned()),
                    "./rules.yml" | "rules.yml" => Ok(self.1.to_owned()),
                    other => Err(format!("no file {other}")),
                }
            }
            fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
                Ok(vec![pattern.to_owned()])
            }
        }
        let report = run_test_file("test.yml", &Files(&test, rules), &UnitTestOptions::default());
        assert!(report.errors.is_empty(), "{:?}\n{test}", report.errors);
        let failures: Vec<_> = report.groups.iter().flat_map(|g| g.failures.clone()).collect();
        assert!(failures.is_empty(), "{}\n{test}", failures.join("\n"));
        assert!(!report.groups.is_empty());
    }
}
