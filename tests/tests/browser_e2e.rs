//! The playground in real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tests/browser/`; `tests/run.sh` installs both):
//! the page served by `tocsin serve` is loaded, edited and run, its error
//! displays checked, a screenshot saved to `tests/artifacts/`; and the same
//! rules over the same data give the same timeline in the browser as from
//! `tocsin backtest`, for a PromQL rule and for the `hysteresis` example
//! module (wasmtime on one side, the browser's WebAssembly on the other).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tocsin_tests::{
    Proc, TempDir, browser_script, build_example_rules, free_port, start_tocsin, tocsin_bin,
    wait_ready_blocking,
};

fn serve(dir: &TempDir, tag: &str) -> (Proc, String) {
    let port = free_port();
    let mut p = start_tocsin(dir.path(), None, port, tag);
    wait_ready_blocking(&mut p, port);
    (p, format!("http://127.0.0.1:{port}"))
}

fn cli_backtest(rules: &Path, data: &Path) -> Value {
    let out = Command::new(tocsin_bin())
        .args(["backtest", "--output", "json", "--rules"])
        .arg(rules)
        .arg("--data")
        .arg(data)
        .output()
        .expect("running tocsin backtest");
    assert!(out.status.success(), "tocsin backtest: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("backtest JSON")
}

fn browser_backtest(base: &str, rules: &Path, data: &Path, modules: &[&Path], dir: &Path) -> Value {
    let out_path = dir.join("browser.json");
    let mut args = vec![
        base.to_owned(),
        rules.display().to_string(),
        data.display().to_string(),
        out_path.display().to_string(),
    ];
    args.extend(modules.iter().map(|m| m.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = browser_script("backtest.mjs", &args);
    assert!(
        out.status.success(),
        "browser backtest failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out_path).expect("browser result")).expect("JSON")
}

/// The parts of a backtest both sides must agree on exactly.
fn timeline(v: &Value) -> Value {
    serde_json::json!({
        "evaluations": v["evaluations"],
        "transitions": v["transitions"],
        "notifications": v["notifications"],
        "errors": v["errors"],
    })
}

fn assert_same(cli: &Value, browser: &Value, what: &str) {
    let (c, b) = (timeline(cli), timeline(browser));
    assert!(
        c["transitions"].as_array().is_some_and(|t| t.len() >= 3),
        "{what}: the data should drive alerts through several states: {c:#}"
    );
    if c != b {
        panic!("{what}: browser and CLI disagree\n--- tocsin backtest\n{c:#}\n--- browser\n{b:#}");
    }
}

#[test]
fn browser_and_cli_give_identical_timelines() {
    let dir = TempDir::new("browser-same");
    let (mut tocsin, base) = serve(&dir, "browser-same");

    // A PromQL rule with rate(), `for`, labels and templated annotations.
    let rules = dir.path().join("promql.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: api\n  interval: 1m\n  rules:\n  - record: job:errors:ratio5m\n    expr: sum by (job) (rate(errors_total[5m])) / sum by (job) (rate(requests_total[5m]))\n  - alert: HighErrorRatio\n    expr: job:errors:ratio5m > 0.05\n    for: 3m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.job }} error ratio {{ $value | humanizePercentage }}'\n",
    )
    .unwrap();
    let data = dir.path().join("data.yml");
    std::fs::write(
        &data,
        "interval: 1m\ninput_series:\n  - series: 'requests_total{job=\"api\"}'\n    values: '0+100x90'\n  - series: 'errors_total{job=\"api\"}'\n    values: '0+1x20 20+15x25 395+1x45'\n  - series: 'requests_total{job=\"web\"}'\n    values: '0+50x90'\n  - series: 'errors_total{job=\"web\"}'\n    values: '0+0x40 0+10x10 100+0x40'\n",
    )
    .unwrap();
    let cli = cli_backtest(&rules, &data);
    let browser = browser_backtest(&base, &rules, &data, &[], dir.path());
    assert_same(&cli, &browser, "PromQL rule");

    // The hysteresis example module, named by path as the CLI needs it; the
    // browser resolves the same path to the module dropped on the page.
    let module = build_example_rules().join("hysteresis.wasm");
    let rules = dir.path().join("wasm.yml");
    std::fs::write(
        &rules,
        format!(
            "groups:\n- name: queues\n  interval: 30s\n  rules:\n  - alert: QueueBacklog\n    wasm: {}\n    config: {{metric: 'queue_depth', high: 1000, low: 200}}\n    for: 1m\n    labels: {{severity: ticket}}\n    annotations:\n      summary: 'queue {{{{ $labels.queue }}}} at {{{{ $value }}}}'\n",
            module.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("queues.yml");
    std::fs::write(
        &data,
        "interval: 30s\ninput_series:\n  - series: 'queue_depth{queue=\"a\"}'\n    values: '100+100x12 1300-50x20 300-30x10 0x20'\n  - series: 'queue_depth{queue=\"b\"}'\n    values: '900+20x30 1500x10 150x20'\n",
    )
    .unwrap();
    let cli = cli_backtest(&rules, &data);
    let browser = browser_backtest(&base, &rules, &data, &[&module], dir.path());
    assert_same(&cli, &browser, "hysteresis module");

    assert!(tocsin.terminate(Duration::from_secs(10)), "tocsin did not stop:\n{}", tocsin.log());
}
