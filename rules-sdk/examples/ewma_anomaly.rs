//! Alert rule: an anomaly alert on an EWMA baseline. Each series of `expr`
//! keeps an exponentially weighted mean and variance in the module's state;
//! a value `threshold` or more standard deviations from its series' baseline
//! fires, with that distance as the alert's value.
//!
//! ```yaml
//! - alert: LatencyAnomaly
//!   wasm: ewma_anomaly
//!   config: {expr: "job:latency_seconds:p99", alpha: 0.1, threshold: 4, warmup: 30}
//!   for: 5m
//! ```
//!
//! A value is scored against the baseline from before it, then folded in, so
//! a lasting shift fires for a while and then becomes the new normal. The
//! baseline advances once per evaluation, not per sample: `alpha` is the
//! weight of one evaluation. The baseline mean and standard deviation come
//! along as annotations.
//!
//! The state holds a baseline per series, about its labels' length plus
//! 70 bytes of JSON each: under the host's default 1 MiB state limit, an
//! `expr` of up to some thousands of series.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tocsin_rules_sdk::{Context, Error, Output, series_key};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Any instant-vector PromQL expression.
    expr: String,
    /// The weight of the newest value, in (0, 1]; 0.1 by default.
    #[serde(default = "tenth")]
    alpha: f64,
    /// Standard deviations from the mean at which a value fires; 3 by default.
    #[serde(default = "three")]
    threshold: f64,
    /// Values a series' baseline must have taken in before it can fire; 10
    /// by default.
    #[serde(default = "ten")]
    warmup: u64,
}

fn tenth() -> f64 {
    0.1
}
fn three() -> f64 {
    3.0
}
fn ten() -> u64 {
    10
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
struct Baseline {
    /// Values taken in.
    n: u64,
    mean: f64,
    var: f64,
}

impl Baseline {
    fn start(x: f64) -> Self {
        Baseline { n: 1, mean: x, var: 0.0 }
    }

    /// The incremental EWMA update of mean and variance (Finch, "Incremental
    /// calculation of weighted mean and variance", 2009).
    fn update(self, x: f64, alpha: f64) -> Self {
        let diff = x - self.mean;
        let incr = alpha * diff;
        let next = Baseline {
            n: self.n.saturating_add(1),
            mean: self.mean + incr,
            var: (1.0 - alpha) * (self.var + diff * incr),
        };
        // Values near f64::MAX can overflow, and an infinite baseline would
        // never recover (the next diff is NaN) nor fit in JSON state: start
        // over from this value instead.
        if next.mean.is_finite() && next.var.is_finite() { next } else { Baseline::start(x) }
    }
}

fn ewma_anomaly(ctx: &mut Context) -> Result<Output, Error> {
    let cfg: Config = ctx.config()?;
    // JSON has no NaN or infinity, so these comparisons see every case.
    if cfg.alpha <= 0.0 || cfg.alpha > 1.0 {
        return Err(Error::msg("config: alpha must be in (0, 1]"));
    }
    if cfg.threshold <= 0.0 {
        return Err(Error::msg("config: threshold must be positive"));
    }
    let previous: BTreeMap<String, Baseline> = match ctx.state() {
        Ok(state) => state.unwrap_or_default(),
        // Failing here would fail every evaluation after, as the state could
        // never be replaced (say, a different module's, uploaded under this name).
        Err(e) => {
            ctx.log(format!("{e}; every baseline starts over"));
            BTreeMap::new()
        }
    };
    let mut baselines = BTreeMap::new();
    let mut out = Output::new();
    for series in ctx.query(&cfg.expr)? {
        let Some((_, x)) = series.last() else { continue };
        let key = series_key(&series.labels);
        let prior = previous.get(&key).copied();
        if !x.is_finite() {
            // Nothing to learn from, but the series is still there.
            if let Some(b) = prior {
                baselines.insert(key, b);
            }
            continue;
        }
        let Some(b) = prior else {
            baselines.insert(key, Baseline::start(x));
            continue;
        };
        let sd = b.var.sqrt();
        // A flat baseline has no spread to measure a deviation in.
        if b.n >= cfg.warmup && sd > 0.0 {
            let deviation = (x - b.mean).abs() / sd;
            if deviation >= cfg.threshold {
                let notes = [("baseline_mean", number(b.mean)?), ("baseline_stddev", number(sd)?)];
                out = out.sample_with_annotations(series.labels, deviation, notes);
            }
        }
        baselines.insert(key, b.update(x, cfg.alpha));
    }
    // A series the query no longer returns is forgotten: if it comes back,
    // it warms up again rather than being scored against an old baseline.
    let vanished = previous.keys().filter(|k| !baselines.contains_key(*k)).count();
    if vanished > 0 {
        ctx.log(format!("dropped the baselines of {vanished} vanished series"));
    }
    ctx.set_state(&baselines)?;
    Ok(out)
}

tocsin_rules_sdk::rule!(ewma_anomaly);

/// A finite float as text, printed by serde_json, which the module has
/// anyway: `f64`'s `Display` would add 17 KB of float printing. Whole
/// numbers keep their `.0`.
fn number(x: f64) -> Result<String, Error> {
    Ok(serde_json::to_string(&x)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_rules_sdk::Series;

    const CONFIG: &str = r#"{"expr": "latency", "alpha": 0.25, "threshold": 3, "warmup": 4}"#;

    /// One evaluation, a minute after `ctx`'s, over these (host, value)
    /// series; returns its context and (host, deviation) of what fired.
    fn eval(ctx: Context, values: &[(&str, f64)]) -> (Context, Vec<(String, f64)>) {
        let series = values.iter().map(|&(host, v)| Series::new([("host", host)], [(0, v)]));
        let mut ctx = ctx.next().on_query("latency", series.collect());
        let out = ctx.run(ewma_anomaly).unwrap();
        let fired = out.samples().iter().map(|s| (s.labels[0].1.clone(), s.value)).collect();
        (ctx, fired)
    }

    fn start() -> Context {
        Context::for_test(0).with_config(CONFIG)
    }

    /// The baselines `ctx` saved, in key order.
    fn saved(ctx: &Context) -> Vec<Baseline> {
        let state: BTreeMap<String, Baseline> = ctx.saved_state().unwrap().unwrap();
        state.into_values().collect()
    }

    #[test]
    fn fires_on_a_deviation_from_the_baseline() {
        let mut ctx = start();
        let mut fired;
        for v in [10.0, 10.0, 10.0, 14.0] {
            (ctx, fired) = eval(ctx, &[("a", v)]);
            assert!(fired.is_empty());
        }
        // With alpha 1/4: mean 10 + 4/4 = 11, variance 3/4 * (0 + 4 * 1) = 3.
        assert_eq!(saved(&ctx), [Baseline { n: 4, mean: 11.0, var: 3.0 }]);
        // 17 is 6/sqrt(3) = 3.46 sd out, and moves the baseline to
        // mean 12.5, variance 3/4 * (3 + 6 * 1.5) = 9.
        (ctx, fired) = eval(ctx, &[("a", 17.0)]);
        assert_eq!(fired, [("a".to_string(), 6.0 / 3f64.sqrt())]);
        let series = vec![Series::new([("host", "a")], [(0, 23.0)])];
        let mut ctx = ctx.next().on_query("latency", series);
        let out = ctx.run(ewma_anomaly).unwrap();
        let [s] = out.samples() else { panic!("{out:?}") };
        assert_eq!(s.value, 3.5);
        let notes = [("baseline_mean", "12.5"), ("baseline_stddev", "3.0")];
        assert_eq!(s.annotations, notes.map(|(k, v)| (k.to_string(), v.to_string())));
        // Mean 15.125, variance 27.421875: 16 is 0.17 sd out.
        (ctx, fired) = eval(ctx, &[("a", 16.0)]);
        assert!(fired.is_empty());
        // Mean 15.34375, variance 20.7099609375: 0 is 3.37 sd out, below.
        (_, fired) = eval(ctx, &[("a", 0.0)]);
        assert_eq!(fired.len(), 1);
    }

    #[test]
    fn no_alert_during_warmup_or_on_a_flat_baseline() {
        let mut ctx = start();
        let mut fired;
        // 30 is 22.5 sd from the baseline of 10 and 12, which is only two values deep.
        for v in [10.0, 12.0, 30.0, 10.0] {
            (ctx, fired) = eval(ctx, &[("warming", v), ("flat", 5.0)]);
            assert!(fired.is_empty());
        }
        (_, fired) = eval(ctx, &[("warming", 1000.0), ("flat", 6.0)]);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].0, "warming");
    }

    #[test]
    fn vanished_series_are_forgotten_and_non_finite_values_skipped() {
        let (ctx, _) = eval(start(), &[("a", 1.0), ("b", 2.0)]);
        let (ctx, _) = eval(ctx, &[("a", f64::NAN), ("b", f64::INFINITY)]);
        assert!(ctx.logs().is_empty());
        assert_eq!(saved(&ctx), [Baseline::start(1.0), Baseline::start(2.0)]);
        let (ctx, _) = eval(ctx, &[("b", 3.0)]);
        assert_eq!(ctx.logs(), ["dropped the baselines of 1 vanished series"]);
        assert_eq!(saved(&ctx), [Baseline { n: 2, mean: 2.25, var: 0.1875 }]);
    }

    #[test]
    fn an_overflowing_baseline_starts_over() {
        let b = Baseline::start(-f64::MAX).update(f64::MAX, 0.5);
        assert_eq!(b, Baseline::start(f64::MAX));
    }

    #[test]
    fn a_series_is_keyed_by_its_labels_in_any_order() {
        let series = |labels: [(&str, &str); 2], v| Series::new(labels, [(0, v)]);
        let mut ctx = start().on_query(
            "latency",
            vec![series([("a", "bc"), ("d", "e")], 1.0), series([("ab", "c"), ("d", "e")], 2.0)],
        );
        ctx.run(ewma_anomaly).unwrap();
        let mut ctx = ctx.next().on_query(
            "latency",
            vec![series([("d", "e"), ("a", "bc")], 1.0), series([("d", "e"), ("ab", "c")], 2.0)],
        );
        ctx.run(ewma_anomaly).unwrap();
        let baselines = saved(&ctx);
        assert_eq!(baselines.len(), 2, "similar label sets kept apart: {baselines:?}");
        assert!(baselines.iter().all(|b| b.n == 2), "{baselines:?}");
    }

    #[test]
    fn unreadable_state_starts_over() {
        let mut ctx = start().with_state(&"not ours").on_query("latency", vec![]);
        assert!(ctx.run(ewma_anomaly).unwrap().samples().is_empty());
        let [log] = ctx.logs() else { panic!("{:?}", ctx.logs()) };
        assert!(log.starts_with("state: invalid type: string") && log.ends_with("starts over"));
        assert!(saved(&ctx).is_empty());
    }

    #[test]
    fn config_errors_are_clear() {
        let run = |json: &str| Context::for_test(0).with_config(json).run(ewma_anomaly);
        for alpha in ["0", "-0.5", "1.5"] {
            let err = run(&format!(r#"{{"expr": "x", "alpha": {alpha}}}"#)).unwrap_err();
            assert_eq!(err.to_string(), "config: alpha must be in (0, 1]");
        }
        let err = run(r#"{"expr": "x", "threshold": 0}"#).unwrap_err();
        assert_eq!(err.to_string(), "config: threshold must be positive");
        let err = run(r#"{"expr": "x", "treshold": 3}"#).unwrap_err();
        assert!(err.to_string().starts_with("config: unknown field `treshold`"), "{err}");
        let err = run(r#"{"alpha": 0.5}"#).unwrap_err();
        assert!(err.to_string().starts_with("config: missing field `expr`"), "{err}");
    }
}
