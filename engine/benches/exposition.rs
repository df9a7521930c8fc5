//! Exposition throughput: parsing alone, and parsing plus appending to the
//! head, over node_exporter-like bodies of 10k and 100k series.
//!
//! - `ingest/cold`: a target's first scrape (every series new: labels built,
//!   series created).
//! - `ingest/warm`: the steady state. The scrape cache knows every series
//!   text, values move as a real exporter's do (counters grow, gauges
//!   wander), and the head has run for 2.5 h with 2 h retention, so every
//!   series seals a chunk every 120 scrapes and memory is being reused.
//! - `ingest/warm_random`: the first 16 minutes of a fresh head with values
//!   that jump anywhere between scrapes: the worst case for compression, and
//!   the measurement this benchmark made before `warm` was realistic.
//!
//! Run: `cargo bench -p tocsin-engine --bench exposition`.

mod common;

use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tocsin_engine::exposition::{Entry, Format, Ingester, Parser};
use tocsin_engine::storage::Head;

/// The host's allocator, so the numbers are the host's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Which values a body carries; its lines are the same either way.
#[derive(Clone, Copy)]
enum Values {
    /// Scrape `k` of one target: counters grow by per-series steps, gauges
    /// wander or change now and then, as in successive scrapes of a real
    /// exporter.
    Scrape(u64),
    /// Unrelated random values per seed: between two bodies every counter
    /// jumps anywhere, the worst case for the head's XOR compression.
    Random(u64),
}

/// A well-mixed hash of `x`: the first output of a splitmix64 seeded with it.
fn mix(x: u64) -> u64 {
    common::SplitMix::new(x).next_u64()
}

/// A node_exporter-like body with about `series` series: families of CPU,
/// disk, filesystem, network counters and gauges, a summary and a histogram,
/// each with HELP and TYPE lines.
fn exposition(series: usize, values: Values, format: Format) -> String {
    let mut out = String::with_capacity(series * 100);
    let (mut rng, scrape) = match values {
        Values::Random(seed) => (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, None),
        Values::Scrape(k) => (0, Some(k)),
    };
    // The series' number, from which `Values::Scrape` derives its constants.
    let mut index = 0u64;
    let mut next = move || match scrape {
        None => {
            // xorshift: cheap, deterministic values of realistic spread.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        }
        Some(_) => {
            index += 1;
            mix(index)
        }
    };
    // At scrape `k`: a counter from `base` by `step` (at least 1) plus a
    // jitter below `step`, so that it grows every scrape; a gauge that takes
    // a new value every `every` scrapes.
    let counter = |base: u64, step: u64, k: u64| base + k * step + mix(base ^ k) % step;
    let changing = |r: u64, every: u64, k: u64| mix(r ^ ((k + r % every) / every));
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
            // Under `Values::Random`, `r` is the value; under `Scrape(k)` it
            // is the series' constant, from which its value at `k` grows.
            let grow = |modulus: u64, step: u64| match scrape {
                None => r % modulus,
                Some(k) => counter(r % modulus, 1 + r % step, k),
            };
            match kind {
                0 => {
                    let _ = write!(
                        out,
                        "{name}_{host}{{cpu=\"{}\",mode=\"{}\"}} ",
                        i / 8,
                        modes[i % 8]
                    );
                    // Hundredths of a second: up to 15 s per 15 s scrape.
                    out.push_str(&go_float(grow(1_000_000_000, 1_500) as f64 / 100.0));
                }
                1 => {
                    let _ = write!(out, "{name}_{host}{{device=\"nvme{}n1\"}} ", i);
                    let step = 10u64.pow(2 + (r % 5) as u32);
                    out.push_str(&go_float(grow(1_000_000_000_000, step) as f64));
                }
                2 => {
                    let _ = write!(
                        out,
                        "{name}_{host}{{device=\"/dev/sda{i}\",fstype=\"ext4\",mountpoint=\"/srv/data{i}\"}} "
                    );
                    // Free space: changes on one scrape in fifty, by whole blocks.
                    let v = match scrape {
                        None => r % 100_000_000_000,
                        Some(k) => 4096 * (r % 25_000_000 + changing(r, 50, k) % 1_000),
                    };
                    out.push_str(&go_float(v as f64));
                }
                3 => {
                    let _ = write!(
                        out,
                        "{name}_{host}{{device=\"eth{i}\"}} {}",
                        grow(100_000_000, 1_000)
                    );
                }
                4 => {
                    let q = ["0", "0.25", "0.5", "0.75", "1"][i];
                    // GC pauses: a new summary on one scrape in ten.
                    let v = match scrape {
                        None => r,
                        Some(k) => changing(r, 10, k),
                    };
                    let v = go_float((v % 10_000) as f64 * 1e-7);
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
                        grow(100_000, 50)
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
            let body = exposition(n, Values::Scrape(0), format);
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_function(format!("{fname}/{label}"), |b| {
                b.iter(|| parse_all(black_box(body.as_bytes()), format))
            });
        }
    }
    g.finish();
}

/// Successive scrapes generated for the steady-state benchmark, which
/// replays them in a loop: each counter resets once a cycle (16 minutes).
const CYCLE: usize = 64;
/// Scrapes appended before the steady state is timed: 2.5 h, so that every
/// series has sealed chunks and sized its open one by them, and retention
/// has dropped the oldest, as in a head that has been running for a while.
const PREFILL: usize = 600;
/// Samples a series keeps in the steady-state head: 2 h, Prometheus's
/// usual head span.
const RETAINED: i64 = 480;
/// Scrapes between two runs of retention: 5 minutes, the host's default
/// `checkpoint_interval`.
const RETENTION_EVERY: i64 = 20;
const INTERVAL_MS: i64 = 15_000;

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("exposition/ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    for (label, n) in SIZES {
        let cycle: Vec<String> = (0..CYCLE as u64)
            .map(|k| exposition(n, Values::Scrape(k), Format::PrometheusText))
            .collect();
        g.throughput(Throughput::Bytes(cycle[1].len() as u64));
        g.bench_function(format!("cold/{label}"), |b| {
            b.iter_batched(
                || (Head::default(), Ingester::new()),
                |(head, mut ingester)| {
                    let r =
                        ingester.ingest(&head, cycle[0].as_bytes(), Format::PrometheusText, 1000);
                    (head, ingester, r)
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("warm/{label}"), |b| {
            let mut target = Steady::new(&cycle);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let appended = target.scrape();
                    total += start.elapsed();
                    assert_eq!(appended, target.series);
                    target.retain();
                }
                total
            })
        });
        drop(cycle);
        let random: Vec<String> = (1..=4)
            .map(|seed| exposition(n, Values::Random(seed), Format::PrometheusText))
            .collect();
        g.throughput(Throughput::Bytes(random[1].len() as u64));
        g.bench_function(format!("warm_random/{label}"), |b| {
            b.iter_custom(|iters| warm_random(iters, &random))
        });
    }
    g.finish();
}

/// One target scraped into one head for the whole benchmark, past its first
/// chunks and trimmed to 2 h as retention would (untimed): the steady state
/// of a server that has been running for a while.
struct Steady<'a> {
    head: Head,
    ingester: Ingester,
    cycle: &'a [String],
    /// Scrapes so far.
    k: usize,
    series: usize,
}

impl<'a> Steady<'a> {
    fn new(cycle: &'a [String]) -> Self {
        let mut s =
            Steady { head: Head::default(), ingester: Ingester::new(), cycle, k: 0, series: 0 };
        s.series = s.scrape();
        for _ in 1..PREFILL {
            assert_eq!(s.scrape(), s.series);
            s.retain();
        }
        s
    }

    /// Ingests the next scrape; returns the samples appended.
    fn scrape(&mut self) -> usize {
        let t = self.k as i64 * INTERVAL_MS;
        let body = self.cycle[self.k % self.cycle.len()].as_bytes();
        self.k += 1;
        let r = self.ingester.ingest(&self.head, body, Format::PrometheusText, t);
        r.map(|r| r.appended).unwrap_or(0)
    }

    /// Drops what is older than 2 h, every 5 minutes of scrapes.
    fn retain(&self) {
        let k = self.k as i64;
        if k % RETENTION_EVERY == 0 && k > RETAINED {
            self.head.truncate_before((k - RETAINED) * INTERVAL_MS);
        }
    }
}

/// Times `iters` scrapes of a fresh head's first 16 minutes, cycling
/// through `bodies[1..]` of unrelated values: a head every 64 scrapes bounds
/// the memory the benchmark holds, and setting it up (a first scrape of
/// `bodies[0]`) is not timed.
fn warm_random(iters: u64, bodies: &[String]) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let head = Head::default();
        let mut ingester = Ingester::new();
        let first = ingester.ingest(&head, bodies[0].as_bytes(), Format::PrometheusText, 0);
        let series = first.map(|r| r.appended).unwrap_or(0);
        let batch = (iters - done).min(64);
        let start = Instant::now();
        for i in 0..batch {
            let body = &bodies[1 + (i as usize % (bodies.len() - 1))];
            let t = (i as i64 + 1) * INTERVAL_MS;
            let r = ingester.ingest(&head, body.as_bytes(), Format::PrometheusText, t);
            assert_eq!(r.map(|r| r.appended).unwrap_or(0), series);
        }
        total += start.elapsed();
        done += batch;
    }
    total
}

criterion_group!(benches, parse, ingest);
criterion_main!(benches);
