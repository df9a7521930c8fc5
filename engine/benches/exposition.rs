//! Exposition throughput: parsing alone, and parsing plus appending to the
//! head, over node_exporter-like bodies of 10k and 100k series.
//!
//! `ingest_cold` is a target's first scrape (every series new: labels built,
//! series created); `ingest_warm` is the steady state, where the scrape cache
//! knows every series text and only values and timestamps change.
//!
//! Run: `cargo bench -p tocsin-engine --bench exposition`.

use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tocsin_engine::exposition::{Entry, Format, Ingester, Parser};
use tocsin_engine::storage::Head;

/// A node_exporter-like body with about `series` series: families of CPU,
/// disk, filesystem, network counters and gauges, a summary and a histogram,
/// each with HELP and TYPE lines. `seed` varies the values only, so bodies
/// with different seeds are successive scrapes of one target.
fn exposition(series: usize, seed: u64, format: Format) -> String {
    let mut out = String::with_capacity(series * 100);
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        // xorshift: cheap, deterministic values of realistic spread.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let modes = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
    let mut written = 0;
    let mut family = 0;
    while written < series {
        let kind = family % 6;
        let per_family = [64, 16, 24, 32, 5, 12][kind];
        let host = family / 6;
        let (name, help, typ) = match kind {
            0 => ("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", "counter"),
            1 => (
                "node_disk_read_bytes_total",
                "The total number of bytes read successfully.",
                "counter",
            ),
            2 => (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                "gauge",
            ),
            3 => (
                "node_network_receive_packets_total",
                "Network device statistic receive_packets.",
                "counter",
            ),
            4 => (
                "go_gc_duration_seconds",
                "A summary of the pause duration of garbage collection cycles.",
                "summary",
            ),
            _ => (
                "http_request_duration_seconds",
                "Histogram of latencies for HTTP requests.",
                "histogram",
            ),
        };
        let _ = writeln!(out, "# HELP {name}_{host} {help}");
        let _ = writeln!(out, "# TYPE {name}_{host} {typ}");
        for i in 0..per_family {
            let r = next();
            match kind {
                0 => {
                    let _ = write!(
                        out,
                        "{name}_{host}{{cpu=\"{}\",mode=\"{}\"}} ",
                        i / 8,
                        modes[i % 8]
                    );
                    out.push_str(&go_float((r % 1_000_000_000) as f64 / 100.0));
                }
                1 => {
                    let _ = write!(out, "{name}_{host}{{device=\"nvme{}n1\"}} ", i);
                    out.push_str(&go_float((r % 1_000_000_000_000) as f64));
                }
                2 => {
                    let _ = write!(
                        out,
                        "{name}_{host}{{device=\"/dev/sda{i}\",fstype=\"ext4\",mountpoint=\"/srv/data{i}\"}} "
                    );
                    out.push_str(&go_float((r % 100_000_000_000) as f64));
                }
                3 => {
                    let _ = write!(out, "{name}_{host}{{device=\"eth{i}\"}} {}", r % 100_000_000);
                }
                4 => {
                    let q = ["0", "0.25", "0.5", "0.75", "1"][i];
                    let v = go_float((r % 10_000) as f64 * 1e-7);
                    let _ = write!(out, "{name}_{host}{{quantile=\"{q}\"}} {v}");
                }
                _ => {
                    let le = [
                        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
                        "10", "+Inf",
                    ][i];
                    let _ = write!(
                        out,
                        "{name}_{host}_bucket{{handler=\"/api/v1/query_range\",method=\"GET\",le=\"{le}\"}} {}",
                        r % 100_000
                    );
                }
            }
            out.push('\n');
            written += 1;
        }
        family += 1;
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// A value as Go client libraries print it (`strconv.FormatFloat(v, 'g',
/// -1, 64)`): shortest digits, exponent form from 1e+06 on.
fn go_float(v: f64) -> String {
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
    }
}

fn parse_all(body: &[u8], format: Format) -> f64 {
    let mut p = Parser::new(body, format);
    let mut sum = 0.0;
    while let Some(entry) = p.next_entry().expect("valid exposition") {
        if let Entry::Sample(s) = entry {
            sum += s.value();
        }
    }
    sum
}

const SIZES: [(&str, usize); 2] = [("10k", 10_000), ("100k", 100_000)];

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("exposition/parse");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for (label, n) in SIZES {
        for (fname, format) in [("prom", Format::PrometheusText), ("om", Format::OpenMetrics)] {
            let body = exposition(n, 1, format);
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_function(format!("{fname}/{label}"), |b| {
                b.iter(|| parse_all(black_box(body.as_bytes()), format))
            });
        }
    }
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("exposition/ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    for (label, n) in SIZES {
        let bodies: Vec<String> =
            (1..=4).map(|seed| exposition(n, seed, Format::PrometheusText)).collect();
        g.throughput(Throughput::Bytes(bodies[0].len() as u64));
        g.bench_function(format!("cold/{label}"), |b| {
            b.iter_batched(
                || (Head::default(), Ingester::new()),
                |(head, mut ingester)| {
                    let r =
                        ingester.ingest(&head, bodies[0].as_bytes(), Format::PrometheusText, 1000);
                    (head, ingester, r)
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("warm/{label}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    // A fresh head every 64 scrapes bounds the memory the
                    // benchmark holds; setting it up is not timed.
                    let head = Head::default();
                    let mut ingester = Ingester::new();
                    let first =
                        ingester.ingest(&head, bodies[0].as_bytes(), Format::PrometheusText, 0);
                    let series = first.map(|r| r.appended).unwrap_or(0);
                    let batch = (iters - done).min(64);
                    let start = Instant::now();
                    for i in 0..batch {
                        let body = &bodies[1 + (i as usize % 3)];
                        let t = (i as i64 + 1) * 15_000;
                        let r = ingester.ingest(&head, body.as_bytes(), Format::PrometheusText, t);
                        assert_eq!(r.map(|r| r.appended).unwrap_or(0), series);
                    }
                    total += start.elapsed();
                    done += batch;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse, ingest);
criterion_main!(benches);
