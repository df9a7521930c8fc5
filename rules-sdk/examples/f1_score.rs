//! Recording rule: precision, recall and F-beta of a classifier from its
//! true-positive, false-positive and false-negative counters, per model.
//!
//! ```yaml
//! - record: model:quality
//!   wasm: f1_score
//!   config: {tp: "tp_total", fp: "fp_total", fn: "fn_total", window: "10m", by: ["model"]}
//! ```
//!
//! Each group gets three samples told apart by a `score` label
//! (`precision`, `recall`, `f1`); a score whose denominator is zero is omitted
//! rather than recorded as NaN.

use std::collections::BTreeMap;

use serde::Deserialize;
use tocsin_rules_sdk::{Context, Error, Labels, Output};

#[derive(Deserialize)]
struct Config {
    tp: String,
    fp: String,
    #[serde(rename = "fn")]
    fn_: String,
    #[serde(default = "default_window")]
    window: String,
    #[serde(default)]
    by: Vec<String>,
    /// Recall is weighted `beta` times as much as precision.
    #[serde(default = "one")]
    beta: f64,
}

fn default_window() -> String {
    "5m".into()
}

fn one() -> f64 {
    1.0
}

#[derive(Default)]
struct Counts {
    tp: f64,
    fp: f64,
    fn_: f64,
}

fn f1_score(ctx: &mut Context) -> Result<Output, Error> {
    let cfg: Config = ctx.config()?;
    let by = cfg.by.join(", ");
    let mut groups: BTreeMap<Labels, Counts> = BTreeMap::new();
    for (metric, slot) in [(&cfg.tp, 0), (&cfg.fp, 1), (&cfg.fn_, 2)] {
        let expr = format!("sum by ({by}) (increase({metric}[{}]))", cfg.window);
        for series in ctx.query(&expr)? {
            let Some((_, v)) = series.last() else { continue };
            let mut labels = series.labels;
            labels.sort();
            let c = groups.entry(labels).or_default();
            *[&mut c.tp, &mut c.fp, &mut c.fn_][slot] = v;
        }
    }
    let b2 = cfg.beta * cfg.beta;
    let mut out = Output::new();
    for (labels, c) in groups {
        let precision = ratio(c.tp, c.tp + c.fp);
        let recall = ratio(c.tp, c.tp + c.fn_);
        let f = ratio((1.0 + b2) * c.tp, (1.0 + b2) * c.tp + b2 * c.fn_ + c.fp);
        for (score, value) in [("precision", precision), ("recall", recall), ("f1", f)] {
            if let Some(v) = value {
                let mut l = labels.clone();
                l.push(("score".into(), score.into()));
                out = out.sample(l, v);
            }
        }
    }
    Ok(out)
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

tocsin_rules_sdk::rule!(f1_score);

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_rules_sdk::Series;

    fn counts(model: &str, v: f64) -> Vec<Series> {
        vec![Series::new([("model", model)], [(0, v)])]
    }

    #[test]
    fn scores_per_model() {
        let mut ctx = Context::for_test(600_000)
            .with_config(
                r#"{"tp": "tp_total", "fp": "fp_total", "fn": "fn_total", "by": ["model"]}"#,
            )
            .on_query("sum by (model) (increase(tp_total[5m]))", counts("m1", 8.0))
            .on_query("sum by (model) (increase(fp_total[5m]))", counts("m1", 2.0))
            .on_query("sum by (model) (increase(fn_total[5m]))", counts("m1", 8.0));
        let out = ctx.run(f1_score).unwrap();
        let got: Vec<_> = out.samples().iter().map(|s| (s.labels[1].1.as_str(), s.value)).collect();
        // precision 8/10, recall 8/16, F1 = 2PR/(P+R) = 0.8/1.3
        assert_eq!(got, [("precision", 0.8), ("recall", 0.5), ("f1", 16.0 / 26.0)]);
        assert_eq!(ctx.queries().len(), 3);
    }

    #[test]
    fn no_traffic_records_nothing() {
        let zero = || vec![Series::new([("model", "m1")], [(0, 0.0)])];
        let mut ctx = Context::for_test(0)
            .with_config(r#"{"tp": "t", "fp": "p", "fn": "n", "window": "1h"}"#)
            .on_query("sum by () (increase(t[1h]))", zero())
            .on_query("sum by () (increase(p[1h]))", zero())
            .on_query("sum by () (increase(n[1h]))", zero());
        assert!(ctx.run(f1_score).unwrap().samples().is_empty());
    }

    #[test]
    fn query_errors_become_rule_errors() {
        let mut ctx = Context::for_test(0)
            .with_config(r#"{"tp": "t", "fp": "p", "fn": "n"}"#)
            .on_query_error("sum by () (increase(t[5m]))", "parse error");
        let err = ctx.run(f1_score).unwrap_err();
        assert_eq!(err.to_string(), "query `sum by () (increase(t[5m]))`: parse error");
    }
}
