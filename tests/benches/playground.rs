//! The playground's budget, measured: the engine bundle's size (raw and
//! gzip, as served) and a backtest of 1 rule × 1,000 series × 24 h of 15 s
//! samples in real headless Chromium, next to the very same code
//! (`tocsin_web::Session`) run natively, in one run.
//!
//! `cargo build --release -p tocsin-host && cargo bench -p tocsin-tests --bench playground`
//! (needs `tests/run.sh`'s chromium and playwright-core).

use std::fmt::Write as _;
use std::time::Instant;

use tocsin_tests::{
    BUNDLE_BUDGET_BYTES, BUNDLE_BUDGET_GZIP_BYTES, TempDir, browser_script, export_playground,
    free_port, gzip_len, start_tocsin, wait_ready_blocking,
};
use tocsin_web::{RunOptions, Session};

const SERIES: usize = 1_000;
/// 24 h at 15 s.
const STEPS: usize = 24 * 60 * 4;
const RUNS: usize = 5;

const RULES: &str = "groups:\n- name: bench\n  interval: 1m\n  rules:\n  - alert: FastCounter\n    expr: rate(requests_total[5m]) > 0.5\n    for: 10m\n    annotations: {summary: '{{ $labels.instance }} at {{ $value }}/s'}\n";

/// Counters; every tenth one speeds up past the threshold for the middle
/// third of the day, so alerts go pending, fire and resolve.
fn data() -> String {
    let mut s = String::from("interval: 15s\ninput_series:\n");
    let third = STEPS / 3;
    for i in 0..SERIES {
        let _ = writeln!(s, "  - series: 'requests_total{{instance=\"i-{i}\", job=\"bench\"}}'");
        if i % 10 == 0 {
            let (a, b) = (third * 2, third * 2 + third * 30);
            let _ = writeln!(
                s,
                "    values: '0+2x{} {a}+30x{} {b}+2x{}'",
                third - 1,
                third - 1,
                STEPS - 2 * third - 1
            );
        } else {
            let _ = writeln!(s, "    values: '0+{}x{}'", 1 + i % 5, STEPS - 1);
        }
    }
    s
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn native(data: &str, step: Option<i64>) -> (f64, u64) {
    let mut session = Session::default();
    session.load_data("data.yml", data.as_bytes()).expect("data");
    let opts = RunOptions { step_ms: step, ..Default::default() };
    let mut evals = 0;
    let times = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let r = session
                .backtest("rules.yml", RULES, &opts, None, &mut |_, _| {})
                .expect("backtest");
            let r: serde_json::Value = serde_json::from_str(&r).expect("backtest JSON");
            evals = r["evaluations"].as_u64().unwrap_or(0);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    (median(times), evals)
}

fn main() {
    let dir = TempDir::new("bench-playground");
    let export = export_playground(dir.path());
    let wasm = std::fs::read(export.join("tocsin_web_bg.wasm")).expect("bundle");
    let glue = std::fs::read(export.join("tocsin_web.js")).expect("glue");
    let kib = |n: usize| n as f64 / 1024.0;
    println!(
        "engine bundle: tocsin_web_bg.wasm {:.1} KiB ({:.1} KiB gzip), tocsin_web.js {:.1} KiB ({:.1} KiB gzip); budget {:.0} KiB ({:.0} KiB gzip)",
        kib(wasm.len()),
        kib(gzip_len(&wasm)),
        kib(glue.len()),
        kib(gzip_len(&glue)),
        kib(BUNDLE_BUDGET_BYTES),
        kib(BUNDLE_BUDGET_GZIP_BYTES),
    );

    let data = data();
    let data_path = dir.path().join("data.yml");
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&data_path, &data).expect("write data");
    std::fs::write(&rules_path, RULES).expect("write rules");

    let port = free_port();
    let mut tocsin = start_tocsin(dir.path(), None, port, "bench");
    wait_ready_blocking(&mut tocsin, port);
    let url = format!("http://127.0.0.1:{port}/");
    let runs = RUNS.to_string();
    let out = browser_script(
        "bench.mjs",
        &[&url, &data_path.display().to_string(), &rules_path.display().to_string(), &runs],
    );
    tocsin.terminate(std::time::Duration::from_secs(10));
    assert!(
        out.status.success(),
        "browser bench failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let browser: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench JSON");

    println!(
        "data: {} series, {} samples; loaded in the browser in {:.0} ms",
        browser["summary"]["series"],
        browser["summary"]["samples"],
        browser["loadMs"].as_f64().unwrap_or(0.0)
    );
    for (key, step, label) in [
        ("interval1m", None, "at the group's 1m interval"),
        ("step15s", Some(15_000), "at a 15s step"),
    ] {
        let b = browser[key]["ms"].as_f64().unwrap_or(f64::NAN);
        let (n, evals) = native(&data, step);
        println!(
            "backtest {label} ({evals} evaluations, {} transitions): Chromium {b:.0} ms, native {n:.0} ms, ratio {:.2}x",
            browser[key]["transitions"],
            b / n
        );
    }
}
