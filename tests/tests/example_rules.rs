//! The SDK's four example rules as users run them: built for wasm32, their
//! promtool-format unit tests (`rules-sdk/examples/X.test.yml`) under
//! `tocsin test rules`, and all four uploaded to `tocsin serve` and
//! evaluated there over imported data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use tocsin_tests::{
    TempDir, build_example_rules, import_prometheus, start_tocsin_ready, tocsin_bin,
};

const EXAMPLES: [&str; 4] = ["hysteresis", "f1_score", "zscore_drift", "ewma_anomaly"];
const LIMIT: Duration = Duration::from_secs(30);

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules-sdk/examples")
}

/// `tocsin test rules FILE` run from `dir`, where the rule files' `wasm:`
/// paths point.
fn test_rules(dir: &Path, file: &str) -> Output {
    Command::new(tocsin_bin())
        .current_dir(dir)
        .args(["test", "rules", file])
        .output()
        .expect("tocsin runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn each_example_passes_its_promtool_unit_tests() {
    let modules = build_example_rules();
    let dir = TempDir::new("example-rules");
    for name in EXAMPLES {
        std::fs::copy(
            modules.join(format!("{name}.wasm")),
            dir.path().join(format!("{name}.wasm")),
        )
        .unwrap_or_else(|e| panic!("{name}.wasm: {e}"));
        for file in [format!("{name}.rules.yml"), format!("{name}.test.yml")] {
            std::fs::copy(sources().join(&file), dir.path().join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let out = test_rules(dir.path(), &format!("{name}.test.yml"));
        assert!(out.status.success(), "{name}:\n{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"), "{}", text(&out));
    }

    // The same test with one expectation wrong: the module's annotation is
    // "3.0", not "3". promtool's exit code and failure report.
    let good = std::fs::read_to_string(dir.path().join("ewma_anomaly.test.yml")).unwrap();
    let expected = r#"baseline_stddev: "3.0""#;
    assert!(good.contains(expected), "ewma_anomaly.test.yml no longer expects {expected}");
    let bad = good.replace(expected, r#"baseline_stddev: "3""#);
    std::fs::write(dir.path().join("wrong.test.yml"), bad).unwrap();
    let out = test_rules(dir.path(), "wrong.test.yml");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stderr);
    for line in [
        "  FAILED:",
        "    name: an anomaly against the EWMA baseline,",
        "    alertname: LatencyAnomaly, time: 5m, ",
        r#"baseline_stddev="3", summary="a latency is 3.5 standard deviations off its baseline"}"#,
        r#"baseline_stddev="3.0", summary="a latency is 3.5 standard deviations off its baseline"}"#,
    ] {
        assert!(report.contains(line), "no {line:?} in:\n{report}");
    }
}

/// Rules using all four modules by their uploaded names, with windows short
/// enough for a test that runs seconds.
const RULES: &str = r#"groups:
  - name: examples
    rules:
      - alert: QueueBacklog
        wasm: hysteresis
        config: {metric: queue_depth, high: 100, low: 20}
      - record: model:quality
        wasm: f1_score
        config: {tp: tp_total, fp: fp_total, fn: fn_total, window: 30s, by: [model]}
      - alert: FeatureDrift
        wasm: zscore_drift
        config: {expr: feature_mean, baseline: 10000, step: 1000, threshold: 3, min_points: 3}
      - alert: LatencyAnomaly
        wasm: ewma_anomaly
        config: {expr: request_latency_ms, alpha: 0.5, threshold: 3, warmup: 2}
"#;

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.expect("request");
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

/// The unhealthy or never-evaluated rules, by name, with why.
fn not_ok(rules: &Value) -> Vec<String> {
    let all = rules["data"]["groups"].as_array().into_iter().flatten();
    let rules: Vec<&Value> =
        all.flat_map(|g| g["rules"].as_array().into_iter().flatten()).collect();
    let mut bad: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok" || r["lastEvaluation"] == "0001-01-01T00:00:00Z")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    if rules.len() != EXAMPLES.len() {
        bad.push(format!("{} rules instead of {}", rules.len(), EXAMPLES.len()));
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_modules_evaluate_in_serve() {
    let modules = build_example_rules();
    let dir = TempDir::new("example-rules-serve");
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let config = dir.path().join("tocsin.yml");
    std::fs::write(&config, "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n")
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut tocsin, base) = start_tocsin_ready(&client, dir.path(), Some(&config), "1").await;

    for name in EXAMPLES {
        let wasm = std::fs::read(modules.join(format!("{name}.wasm"))).expect("built module");
        let r = client
            .post(format!("{base}/api/v1/modules?name={name}"))
            .body(wasm)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 200, "{name}: {}", r.text().await.unwrap_or_default());
    }

    // Fresh samples every round (at the request's time), until every rule
    // has been evaluated without error and F1's recording is in storage.
    let begin = Instant::now();
    for round in 0u32.. {
        let i = f64::from(round);
        let body = format!(
            "queue_depth{{queue=\"orders\"}} {}\n\
             tp_total{{model=\"m1\"}} {}\nfp_total{{model=\"m1\"}} {}\nfn_total{{model=\"m1\"}} {}\n\
             feature_mean{{feature=\"age\"}} {}\nrequest_latency_ms{{host=\"a\"}} {}\n",
            50.0 + 10.0 * (i % 3.0),
            8.0 * i,
            2.0 * i,
            8.0 * i,
            10.0 + i % 2.0,
            20.0 + i % 4.0,
        );
        import_prometheus(&client, &base, body).await;

        let rules = get_json(&client, &format!("{base}/api/v1/rules")).await;
        let bad = not_ok(&rules);
        let recorded = get_json(&client, &format!("{base}/api/v1/query?query=model:quality")).await;
        let scores = recorded["data"]["result"].as_array().map_or(0, Vec::len);
        if bad.is_empty() && scores == 3 {
            break;
        }
        tocsin.assert_running();
        assert!(
            begin.elapsed() < LIMIT,
            "after {LIMIT:?}: {bad:?}, model:quality has {scores} series\n{rules}\n{}",
            tocsin.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(tocsin.terminate(Duration::from_secs(20)), "clean shutdown:\n{}", tocsin.log());
}
