//! Alert rule with hysteresis: a series starts firing above `high` and keeps
//! firing until it drops below `low`, so a value hovering around one threshold
//! does not flap. Which series fire is the state carried between evaluations.
//!
//! ```yaml
//! - alert: QueueBacklog
//!   wasm: hysteresis
//!   config: {metric: "queue_depth", high: 1000, low: 200}
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;
use tocsin_rules_sdk::{Context, Error, Output, series_key};

#[derive(Deserialize)]
struct Config {
    /// Any instant-vector PromQL expression.
    metric: String,
    high: f64,
    low: f64,
}

fn hysteresis(ctx: &mut Context) -> Result<Output, Error> {
    let cfg: Config = ctx.config()?;
    if cfg.low > cfg.high {
        // Not formatting the floats keeps ~15 KB of float printing out of the module.
        return Err(Error::msg("config: low must not exceed high"));
    }
    let was_firing: BTreeSet<String> = ctx.state()?.unwrap_or_default();
    let mut firing = BTreeSet::new();
    let mut out = Output::new();
    for series in ctx.query(&cfg.metric)? {
        let Some((_, value)) = series.last() else { continue };
        let key = series_key(&series.labels);
        // NaN compares false both ways, so a NaN sample keeps the current state.
        let fires =
            value > cfg.high || (was_firing.contains(&key) && (value >= cfg.low || value.is_nan()));
        if fires {
            firing.insert(key);
            out = out.sample(series.labels, value);
        }
    }
    if firing != was_firing {
        ctx.log(format!("{} series firing", firing.len()));
    }
    // Series that vanished drop out of the state with the rest.
    ctx.set_state(&firing)?;
    Ok(out)
}

tocsin_rules_sdk::rule!(hysteresis);

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_rules_sdk::Series;

    fn depth(ctx: Context, a: f64, b: f64) -> Context {
        ctx.on_query(
            "queue_depth",
            vec![Series::new([("queue", "a")], [(0, a)]), Series::new([("queue", "b")], [(0, b)])],
        )
    }

    fn firing(ctx: &mut Context) -> Vec<String> {
        let out = ctx.run(hysteresis).unwrap();
        out.samples().iter().map(|s| s.labels[0].1.clone()).collect()
    }

    #[test]
    fn fires_above_high_and_resolves_only_below_low() {
        let ctx =
            Context::for_test(0).with_config(r#"{"metric": "queue_depth", "high": 10, "low": 2}"#);
        let mut ctx = depth(ctx, 5.0, 11.0);
        assert_eq!(firing(&mut ctx), ["b"]);
        assert_eq!(ctx.logs(), ["1 series firing"]);

        // Between the thresholds: b keeps firing, a (never fired) stays quiet.
        let mut ctx = depth(ctx.next(), 5.0, 5.0);
        assert_eq!(firing(&mut ctx), ["b"]);
        assert!(ctx.logs().is_empty());

        let mut ctx = depth(ctx.next(), 12.0, 1.0);
        assert_eq!(firing(&mut ctx), ["a"]);
        assert_eq!(ctx.saved_state::<BTreeSet<String>>().unwrap().unwrap().len(), 1);
    }

    #[test]
    fn rejects_inverted_thresholds() {
        let mut ctx = Context::for_test(0).with_config(r#"{"metric": "x", "high": 1, "low": 2}"#);
        let err = ctx.run(hysteresis).unwrap_err();
        assert_eq!(err.to_string(), "config: low must not exceed high");
    }

    #[test]
    fn missing_config_is_a_rule_error() {
        let err = Context::for_test(0).run(hysteresis).unwrap_err();
        assert!(err.to_string().starts_with("config: invalid type: null"), "{err}");
    }
}
