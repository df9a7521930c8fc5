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

#[test]
fn the_playground_page_runs_a_rule_and_shows_errors_where_they_are() {
    let dir = TempDir::new("browser-page");
    let (mut tocsin, base) = serve(&dir, "browser-page");
    // Screenshots are the test's artifacts, kept after the run.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    let out =
        browser_script("playground.mjs", &[&format!("{base}/"), &artifacts.display().to_string()]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim_end().ends_with("ok"),
        "playground.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(artifacts.join("playground.png").is_file(), "no screenshot was saved");
    assert!(tocsin.terminate(Duration::from_secs(10)), "tocsin did not stop:\n{}", tocsin.log());
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

/// A rule module in WAT: `extra` imports, a bump allocator from 64 KiB,
/// `body` as `tocsin_evaluate`; the 8 bytes at 1024 are a (junk) response.
fn module(version: i32, body: &str, extra: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
          (import "tocsin_v1" "panic" (func $panic (param i32 i32)))
          {extra}
          (memory (export "memory") 2)
          (global $next (mut i32) (i32.const 65536))
          (data (i32.const 1024) "boom\01\02\03\04")
          (func (export "tocsin_abi_version") (result i32) i32.const {version})
          (func (export "tocsin_alloc") (param $n i32) (result i32)
            (local $p i32)
            global.get $next local.set $p
            global.get $next local.get $n i32.add global.set $next
            local.get $p)
          (func (export "tocsin_evaluate") (param $p i32) (param $n i32) (result i64)
            {body}))"#
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn hostile_modules_get_clear_errors_in_the_browser_and_the_engine_keeps_serving() {
    let dir = TempDir::new("browser-hostile");
    let (mut tocsin, base) = serve(&dir, "browser-hostile");
    let modules: Vec<(&str, Vec<u8>)> = vec![
        ("spin", module(1, "(loop $l br $l) i64.const 0", "")),
        (
            "bomb",
            module(
                1,
                "i32.const 2000 memory.grow drop i64.const 1024 i64.const 32 i64.shl i64.const 8 i64.or",
                "",
            ),
        ),
        ("huge", module(1, "i64.const 1024 i64.const 32 i64.shl i64.const 2147483647 i64.or", "")),
        ("junk", module(1, "i64.const 1024 i64.const 32 i64.shl i64.const 8 i64.or", "")),
        ("panics", module(1, "i32.const 1024 i32.const 4 call $panic unreachable", "")),
        ("future", module(2, "i64.const 0", "")),
        ("refuses", module(1, "i64.const -1", "")),
        (
            "wasi",
            module(
                1,
                "i64.const 0",
                r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
            ),
        ),
        ("noexports", wat::parse_str("(module (memory (export \"memory\") 1))").unwrap()),
        ("garbage", b"\0asm but not really".to_vec()),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in &modules {
        let p = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&p, bytes).unwrap();
        paths.push(p.display().to_string());
    }
    let mut args = vec![base.as_str()];
    args.extend(paths.iter().map(String::as_str));
    let out = browser_script("hostile.mjs", &args);
    assert!(
        out.status.success(),
        "hostile.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let run = |m: &str| v[m]["run"].as_str().unwrap_or_default().to_owned();
    let add = |m: &str| v[m]["error"].as_str().unwrap_or_default().to_owned();
    let expect = |what: String, needle: &str| {
        assert!(what.contains(needle), "expected {needle:?} in {what:?}\nall: {v:#}");
    };
    // An endless loop is stopped by the watchdog terminating the worker.
    expect(run("spin"), "ran longer than 2.0s");
    expect(run("bomb"), r#"module "bomb": exceeded its memory limit of 64 MiB"#);
    expect(run("huge"), "more than the limit");
    expect(run("junk"), r#"module "junk""#);
    expect(run("panics"), r#"module "panics" panicked: boom"#);
    expect(run("future"), "was built for ABI version 2; this host speaks version 1");
    expect(run("refuses"), "refused the evaluation with error code -1");
    expect(
        add("wasi"),
        "imports `wasi_snapshot_preview1::fd_write`, which the host does not provide",
    );
    expect(add("noexports"), "does not export the function `tocsin_abi_version`");
    expect(add("garbage"), "is not a valid WebAssembly module");
    // ...and afterwards the (restarted) engine still runs rules, data intact.
    assert_eq!(v["after"], serde_json::json!(["firing"]), "{v:#}");
    assert!(tocsin.terminate(Duration::from_secs(10)), "tocsin did not stop:\n{}", tocsin.log());
}
