//! The same PromQL queries over the same data, in tocsin's engine and in a real
//! Prometheus (the Debian `prometheus` package), in one run.
//!
//! The dataset of the engine benches (`engine/benches/common`) is written as
//! OpenMetrics text, imported with `promtool tsdb create-blocks-from
//! openmetrics`, and served by a Prometheus started here on 127.0.0.1. For
//! each query the harness takes Prometheus's own evaluation time from the
//! query statistics (`stats=all`, `evalTotalTime`: no HTTP or JSON in it) and
//! the engine's in-process time, medians of several runs, and checks that both
//! return the same series and values.
//!
//! `cargo bench -p tocsin-tests --bench promql_vs_prometheus`
//! (`TOCSIN_BENCH_SERIES=N` for another size; default 10000.)

#[path = "../../engine/benches/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Dataset, RULE_QUERIES, SAMPLES_2H, last_scrape_ms};
use tocsin_engine::promql::{Engine, Value};
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::Head;

const RUNS: usize = 9;

/// Stops Prometheus (by pid) however the harness ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("promql_vs_prometheus: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let n: usize =
        std::env::var("TOCSIN_BENCH_SERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    for tool in ["prometheus", "promtool"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!("{tool} not found: install the Debian package `prometheus`"));
        }
    }
    let dir = std::env::temp_dir().join(format!("tocsin-vs-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = compare(n, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn compare(n: usize, dir: &std::path::Path) -> Result<(), String> {
    let data = Dataset::new(n);
    let head = Head::default();
    let handles: Vec<_> = data.series.iter().map(|s| head.get_or_create(&s.labels)).collect();
    let om_path = dir.join("data.om");
    let mut om = BufWriter::new(std::fs::File::create(&om_path).map_err(|e| e.to_string())?);
    let mut scrapes = data.scrapes(SAMPLES_2H);
    let mut round: Vec<Sample> = Vec::new();
    let rendered: Vec<String> = data.series.iter().map(|s| om_series(&s.labels)).collect();
    while scrapes.next_round(&mut round) {
        for ((h, s), name) in handles.iter().zip(&round).zip(&rendered) {
            head.append(h, s.t, s.v).map_err(|e| e.to_string())?;
            // OpenMetrics timestamps are seconds.
            writeln!(om, "{name} {} {}.{:03}", s.v, s.t / 1000, s.t % 1000)
                .map_err(|e| e.to_string())?;
        }
    }
    writeln!(om, "# EOF").map_err(|e| e.to_string())?;
    om.flush().map_err(|e| e.to_string())?;
    drop(om);
    println!("dataset: {} series x {} samples (2 h at 15 s)", data.len(), SAMPLES_2H);

    let tsdb = dir.join("tsdb");
    let started = Instant::now();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(&tsdb)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("promtool import failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    println!("promtool import: {:.1} s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_file(&om_path);

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").map_err(|e| e.to_string())?;
    let server = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start prometheus: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while http_get(port, "/-/ready").map(|(code, _)| code) != Some(200) {
        if Instant::now() > deadline {
            return Err("prometheus did not become ready within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("prometheus {} on 127.0.0.1:{port} (pid {})", prom_version(), server.0.id());

    // Off the scrape grid by a few ms, so no sample sits exactly on a range
    // boundary, where Prometheus 2.x (closed ranges) and 3.x (left-open) differ.
    let t = last_scrape_ms(SAMPLES_2H) + 3;
    let engine = Engine::default();
    println!(
        "\n| query | tocsin (ms) | Prometheus 2.42 (ms) | Prometheus / tocsin | same result |"
    );
    println!("|---|---|---|---|---|");
    for (name, q) in RULE_QUERIES {
        let mut ours = Vec::new();
        let mut value = None;
        for _ in 0..RUNS {
            let s = Instant::now();
            let r = engine.instant(&head, q, t).map_err(|e| format!("{q}: {e}"))?;
            ours.push(s.elapsed().as_secs_f64() * 1000.0);
            value = Some(r.value);
        }
        let mut theirs = Vec::new();
        let mut body = String::new();
        for _ in 0..RUNS {
            let path = format!(
                "/api/v1/query?query={}&time={}.{:03}&stats=all",
                url_encode(q),
                t / 1000,
                t % 1000
            );
            let (code, b) = http_get(port, &path).ok_or("prometheus did not answer")?;
            if code != 200 {
                return Err(format!("{q}: prometheus answered {code}: {b}"));
            }
            let json: serde_json::Value = serde_json::from_str(&b).map_err(|e| e.to_string())?;
            let secs = json["data"]["stats"]["timings"]["evalTotalTime"]
                .as_f64()
                .ok_or("no evalTotalTime in prometheus's stats")?;
            theirs.push(secs * 1000.0);
            body = b;
        }
        let same = match value {
            Some(Value::Vector(v)) => same_result(&v, &body),
            _ => "n/a".to_owned(),
        };
        let (a, b) = (median(&mut ours), median(&mut theirs));
        println!("| {name} | {a:.2} | {b:.2} | {:.2}x | {same} |", b / a);
    }
    Ok(())
}

fn prom_version() -> String {
    Command::new("prometheus")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_default()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `name{a="b",...}` in OpenMetrics text.
fn om_series(labels: &tocsin_engine::labels::Labels) -> String {
    let name = labels.metric_name().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|l| &*l.name != "__name__")
        .map(|l| format!("{}=\"{}\"", l.name, l.value.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minimal HTTP/1.0 GET on loopback: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1.to_owned()).unwrap_or_default();
    Some((code, body))
}

/// Whether Prometheus's JSON vector holds the same series and values (to a
/// relative 1e-9) as ours; a short description of the difference if not.
fn same_result(ours: &[tocsin_engine::promql::InstantSample], prom_body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(prom_body) else {
        return "bad json".into();
    };
    let Some(result) = json["data"]["result"].as_array() else { return "no result".into() };
    let mut theirs = BTreeMap::new();
    for r in result {
        let Some(metric) = r["metric"].as_object() else { continue };
        let mut pairs: Vec<(String, String)> =
            metric.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect();
        pairs.sort();
        let v: f64 = r["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        theirs.insert(pairs, v);
    }
    let mut mismatched = 0;
    for s in ours {
        let key: Vec<(String, String)> =
            s.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
        match theirs.remove(&key) {
            Some(v) if v == s.v || (v.is_nan() && s.v.is_nan()) || ((v - s.v) / v).abs() < 1e-9 => {
            }
            other => {
                mismatched += 1;
                eprintln!(
                    "  tocsin only or different: {} {} (prometheus: {other:?})",
                    s.labels, s.v
                );
            }
        }
    }
    for (k, v) in &theirs {
        eprintln!("  prometheus only: {k:?} {v}");
    }
    mismatched += theirs.len();
    if mismatched == 0 {
        format!("yes ({} series)", ours.len())
    } else {
        format!("NO: {mismatched} differ")
    }
}
