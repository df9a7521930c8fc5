//! `wasm:` rules in `tocsin test rules` and `tocsin backtest`: the SDK's
//! hysteresis example, built for wasm32, unit-tested in promtool's format.

use std::process::Command;

#[test]
fn a_wasm_rule_under_test_rules_and_backtest() {
    let wasm = tocsin_tests::build_example_rules().join("hysteresis.wasm");
    let dir = std::env::temp_dir().join(format!("tocsin-wasm-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.yml"),
        format!(
            r#"groups:
  - name: queues
    rules:
      - alert: QueueBacklog
        wasm: {}
        config: {{metric: queue_depth, high: 100, low: 20}}
        for: 2m
        annotations:
          summary: "{{{{ $labels.queue }}}} at {{{{ $value }}}}"
"#,
            wasm.display()
        ),
    )
    .unwrap();
    // Above 100 at 2m, between the thresholds from 4m to 9m, below 20 at 10m.
    let test = |expect_at_8m: &str| {
        format!(
            r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'queue_depth{{queue="orders"}}'
        values: '50 50 150 150 150 50x4 10 10'
    alert_rule_test:
      - eval_time: 8m
        alertname: QueueBacklog
        exp_alerts: {expect_at_8m}
      - eval_time: 10m
        alertname: QueueBacklog
        exp_alerts: []
"#
        )
    };
    let passing = test(
        r#"
          - exp_labels: {queue: orders}
            exp_annotations: {summary: "orders at 50"}"#,
    );
    std::fs::write(dir.join("pass.test.yml"), passing).unwrap();
    std::fs::write(dir.join("fail.test.yml"), test("[]")).unwrap();
    let bin = env!("CARGO_BIN_EXE_tocsin");
    let run =
        |f: &str| Command::new(bin).current_dir(&dir).args(["test", "rules", f]).output().unwrap();
    let ok = run("pass.test.yml");
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run("fail.test.yml");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("QueueBacklog"));

    std::fs::write(
        dir.join("data.txt"),
        (0..12)
            .map(|m| {
                let v = [50, 50, 150, 150, 150, 50, 50, 50, 50, 50, 10, 10][m];
                format!("queue_depth{{queue=\"orders\"}} {v} {}\n", m * 60_000)
            })
            .collect::<String>(),
    )
    .unwrap();
    let bt = Command::new(bin)
        .current_dir(&dir)
        .args(["backtest", "--rules", "rules.yml", "--data", "data.txt", "--output", "json"])
        .output()
        .unwrap();
    assert!(bt.status.success(), "{}", String::from_utf8_lossy(&bt.stderr));
    let v: serde_json::Value = serde_json::from_slice(&bt.stdout).unwrap();
    let to: Vec<&str> =
        v["transitions"].as_array().unwrap().iter().filter_map(|t| t["to"].as_str()).collect();
    assert_eq!(to, ["pending", "firing", "resolved"], "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
