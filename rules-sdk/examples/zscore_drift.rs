//! Alert rule: the z-score of each series' latest value against its own
//! baseline window, fired when `|z|` reaches `threshold`.
//!
//! ```yaml
//! - alert: FeatureDrift
//!   wasm: zscore_drift
//!   config: {expr: "avg by (feature) (feature_mean)", baseline: 3600000, step: 60000, threshold: 3}
//!   for: 5m
//! ```
//!
//! One range query covers the baseline and the present: its last point is the
//! current value, the points before it the baseline. The alert's value is z;
//! the baseline mean and standard deviation come along as annotations.

use serde::Deserialize;
use tocsin_rules_sdk::{Context, Error, Output};

#[derive(Deserialize)]
struct Config {
    expr: String,
    /// Baseline window in milliseconds.
    #[serde(default = "hour")]
    baseline: i64,
    #[serde(default = "minute")]
    step: i64,
    #[serde(default = "three")]
    threshold: f64,
    /// Fewer baseline points than this and the series is skipped: a z-score
    /// over a handful of samples is noise.
    #[serde(default = "ten")]
    min_points: usize,
}

fn hour() -> i64 {
    3_600_000
}
fn minute() -> i64 {
    60_000
}
fn three() -> f64 {
    3.0
}
fn ten() -> usize {
    10
}

fn zscore_drift(ctx: &mut Context) -> Result<Output, Error> {
    let cfg: Config = ctx.config()?;
    if cfg.step <= 0 || cfg.baseline <= 0 {
        return Err(Error::msg("baseline and step must be positive"));
    }
    let end = ctx.ts();
    let mut out = Output::new();
    for series in ctx.query_range(&cfg.expr, end - cfg.baseline, end, cfg.step)? {
        let Some((&current, baseline)) = series.values.split_last() else { continue };
        if series.timestamps.last() != Some(&end) || baseline.len() < cfg.min_points {
            continue;
        }
        let n = baseline.len() as f64;
        let mean = baseline.iter().sum::<f64>() / n;
        let stddev = (baseline.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        if stddev == 0.0 {
            continue;
        }
        let z = (current - mean) / stddev;
        if z.abs() >= cfg.threshold {
            let notes =
                [("baseline_mean", mean.to_string()), ("baseline_stddev", stddev.to_string())];
            out = out.sample_with_annotations(series.labels, z, notes);
        }
    }
    Ok(out)
}

tocsin_rules_sdk::rule!(zscore_drift);

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_rules_sdk::Series;

    const CONFIG: &str =
        r#"{"expr": "feature_mean", "baseline": 600000, "step": 60000, "threshold": 3}"#;

    /// Ten baseline points alternating 9 and 11 (mean 10, stddev 1), then `last`.
    fn history(feature: &str, last: f64) -> Series {
        let points = (0..10).map(|i| (i * 60_000, if i % 2 == 0 { 9.0 } else { 11.0 }));
        Series::new([("feature", feature)], points.chain([(600_000, last)]))
    }

    #[test]
    fn fires_on_drift_only() {
        let mut ctx = Context::for_test(600_000)
            .with_config(CONFIG)
            .on_query_range("feature_mean", vec![history("age", 14.5), history("income", 11.0)]);
        let out = ctx.run(zscore_drift).unwrap();
        let [s] = out.samples() else { panic!("{out:?}") };
        assert_eq!(s.labels, [("feature".to_string(), "age".to_string())]);
        assert_eq!(s.value, 4.5);
        assert_eq!(s.annotations[0], ("baseline_mean".into(), "10".into()));
    }

    #[test]
    fn skips_series_without_a_current_point() {
        let mut stale = history("age", 50.0);
        stale.timestamps.pop();
        stale.values.pop();
        let mut ctx = Context::for_test(600_000)
            .with_config(CONFIG)
            .on_query_range("feature_mean", vec![stale]);
        assert!(ctx.run(zscore_drift).unwrap().samples().is_empty());
    }
}
