//! `tocsin serve` and a real Prometheus (Debian `prometheus`), side by side in
//! one run: both started here on 127.0.0.1, both fed the same remote-write
//! requests, then measured the same way.
//!
//! - ingest: samples/s over the whole load (same requests, same concurrency);
//! - memory: resident set growth per series (VmRSS after the load minus
//!   before it, from /proc);
//! - queries: median HTTP latency of the same queries over the same data.
//!
//! `cargo build --release -p tocsin-host && cargo bench -p tocsin-tests
//! --bench serve_vs_prometheus` (it runs `target/release/tocsin`, which
//! `cargo bench` does not rebuild)
//! (`TOCSIN_BENCH_SERIES=N`, default 100000; `TOCSIN_BENCH_SAMPLES=N` per
//! series, default 40, 15 s apart, ending now.)

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tocsin_engine::Labels;
use tocsin_engine::remote_write::{TimeSeries, encode};
use tocsin_engine::sample::Sample;
use tocsin_tests::{PROMETHEUS, Proc, TempDir, free_port, start_prometheus, start_tocsin};

const SERIES_PER_REQUEST: usize = 2_000;
const CONCURRENCY: usize = 4;
const QUERY_RUNS: usize = 15;
const QUERIES: &[&str] = &[
    "sum(bench_metric)",
    "sum by (job) (rate(bench_counter_total[5m]))",
    "topk(5, bench_metric)",
    "avg_over_time(bench_metric{instance=\"i-7\"}[10m])",
    "count by (job) (bench_metric > 50)",
];

fn main() {
    if let Err(e) = run() {
        eprintln!("serve_vs_prometheus: {e}");
        std::process::exit(1);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Every series' labels and samples, chunked into remote-write bodies.
fn requests(series: usize, samples: usize, end_ms: i64) -> Vec<Vec<u8>> {
    let start = end_ms - (samples as i64 - 1) * 15_000;
    let all: Vec<TimeSeries> = (0..series)
        .map(|i| {
            let (name, counter) =
                if i % 2 == 0 { ("bench_metric", false) } else { ("bench_counter_total", true) };
            let labels = Labels::from_pairs(&[
                ("__name__", name.to_owned()),
                ("job", format!("job-{}", i % 10)),
                ("instance", format!("i-{}", i % 1000)),
                ("shard", format!("{}", i / 1000)),
            ]);
            let samples = (0..samples)
                .map(|k| Sample {
                    t: start + k as i64 * 15_000,
                    v: if counter {
                        (k * (i % 7 + 1)) as f64
                    } else {
                        ((i * 31 + k * 7) % 100) as f64
                    },
                })
                .collect();
            TimeSeries { labels, samples }
        })
        .collect();
    // Time-major requests, as a real sender forwards them: every series'
    // sample k before any series' sample k+1.
    let mut out = Vec::new();
    for k in 0..samples {
        for chunk in all.chunks(SERIES_PER_REQUEST) {
            let part: Vec<TimeSeries> = chunk
                .iter()
                .map(|s| TimeSeries { labels: s.labels.clone(), samples: vec![s.samples[k]] })
                .collect();
            out.push(encode(&part));
        }
    }
    out
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".to_owned())
}

struct Measured {
    samples_per_s: f64,
    rss_per_series: f64,
    query_ms: Vec<f64>,
}

fn ready(
    client: &reqwest::Client,
    rt: &tokio::runtime::Runtime,
    url: &str,
    p: &mut Proc,
) -> Result<(), String> {
    let begin = Instant::now();
    while begin.elapsed() < Duration::from_secs(60) {
        p.assert_running();
        let ok =
            rt.block_on(async { client.get(url).send().await.map(|r| r.status().is_success()) });
        if ok.unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("{} not ready:\n{}", p.name, p.log()))
}

fn measure(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    bodies: &Arc<Vec<Vec<u8>>>,
    series: usize,
    total_samples: usize,
) -> Result<Measured, String> {
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kib(pid)?;
    let began = Instant::now();
    let write = format!("{base}/api/v1/write");
    rt.block_on(async {
        // Sent in order per worker; each worker owns every CONCURRENCY-th body
        // of a time step, so timestamps never go backwards for a series.
        let per_step = series.div_ceil(SERIES_PER_REQUEST);
        let mut tasks = Vec::new();
        for w in 0..CONCURRENCY {
            let bodies = bodies.clone();
            let client = client.clone();
            let write = write.clone();
            tasks.push(tokio::spawn(async move {
                for (i, b) in bodies.iter().enumerate() {
                    if (i % per_step) % CONCURRENCY != w {
                        continue;
                    }
                    let r = client
                        .post(&write)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(b.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !r.status().is_success() {
                        return Err(format!(
                            "{}: {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ));
                    }
                }
                Ok::<(), String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok::<(), String>(())
    })?;
    let took = began.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid)?;
    let mut query_ms = Vec::new();
    for q in QUERIES {
        let url = format!("{base}/api/v1/query");
        let mut runs = Vec::new();
        for _ in 0..QUERY_RUNS {
            let t = Instant::now();
            let r = rt.block_on(client.get(&url).query(&[("query", q)]).send());
            let r = r.map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("{q}: {}", r.status()));
            }
            let _ = rt.block_on(r.bytes());
            runs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        runs.sort_by(f64::total_cmp);
        query_ms.push(runs[runs.len() / 2]);
    }
    Ok(Measured {
        samples_per_s: total_samples as f64 / took.as_secs_f64(),
        rss_per_series: (after.saturating_sub(before) * 1024) as f64 / series as f64,
        query_ms,
    })
}

fn run() -> Result<(), String> {
    let series = env_usize("TOCSIN_BENCH_SERIES", 100_000);
    let samples = env_usize("TOCSIN_BENCH_SAMPLES", 40);
    if Command::new(PROMETHEUS).arg("--version").stdout(Stdio::null()).status().is_err() {
        return Err(format!("{PROMETHEUS} not found: install the Debian package `prometheus`"));
    }
    let dir = TempDir::new("serve-bench");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as i64;
    let bodies = Arc::new(requests(series, samples, now - 60_000));
    let total = series * samples;
    println!("{series} series x {samples} samples = {total} samples in {} requests", bodies.len());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;

    let config = dir.path().join("empty.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").map_err(|e| e.to_string())?;

    let tport = free_port();
    let mut tocsin = start_tocsin(dir.path(), Some(&config), tport, "bench");
    let tbase = format!("http://127.0.0.1:{tport}");
    ready(&client, &rt, &format!("{tbase}/-/ready"), &mut tocsin)?;
    let t = measure(&rt, &client, &tbase, tocsin.pid(), &bodies, series, total)?;
    drop(tocsin);

    let pport = free_port();
    let mut prom = start_prometheus(dir.path(), &config, pport);
    let pbase = format!("http://127.0.0.1:{pport}");
    ready(&client, &rt, &format!("{pbase}/-/ready"), &mut prom)?;
    let p = measure(&rt, &client, &pbase, prom.pid(), &bodies, series, total)?;
    drop(prom);

    println!("\n{:<48} {:>14} {:>14} {:>8}", "", "tocsin", "prometheus", "ratio");
    println!(
        "{:<48} {:>14.0} {:>14.0} {:>7.2}x",
        "ingest, samples/s (higher is better)",
        t.samples_per_s,
        p.samples_per_s,
        t.samples_per_s / p.samples_per_s
    );
    println!(
        "{:<48} {:>14.0} {:>14.0} {:>7.2}x",
        "RSS growth, bytes/series (lower is better)",
        t.rss_per_series,
        p.rss_per_series,
        t.rss_per_series / p.rss_per_series
    );
    for (i, q) in QUERIES.iter().enumerate() {
        println!(
            "{:<48} {:>12.2}ms {:>12.2}ms {:>7.2}x",
            format!("query {q}"),
            t.query_ms[i],
            p.query_ms[i],
            t.query_ms[i] / p.query_ms[i]
        );
    }
    Ok(())
}
