//! Head throughput and latency: appends through cached handles (the scrape
//! hot path), appends by labels, selects with typical matchers, and sample
//! reads. Data from `common`: 10k series for appends, 100k series x 2 h at
//! 15 s for queries.
//!
//! `cargo bench -p tocsin-engine --bench storage`

mod common;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Dataset, INTERVAL_MS, SAMPLES_2H, START_MS};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tocsin_engine::matcher::{MatchOp, Matcher};
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::chunk::{self, ChunkAppender};
use tocsin_engine::storage::{Head, Queryable};

/// The host's allocator, so the numbers are the host's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rounds generated up front so the timed loop only appends; reused with a
/// time offset when criterion asks for more.
const ROUNDS: usize = 120;

fn scrape_rounds(data: &Dataset) -> Vec<Vec<Sample>> {
    let mut scrapes = data.scrapes(ROUNDS);
    let mut rounds = Vec::with_capacity(ROUNDS);
    let mut round = Vec::new();
    while scrapes.next_round(&mut round) {
        rounds.push(round.clone());
    }
    rounds
}

fn append(c: &mut Criterion) {
    let data = Dataset::new(10_000);
    let rounds = scrape_rounds(&data);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(data.len() as u64));

    let head = Head::default();
    let handles: Vec<_> = data.series.iter().map(|s| head.get_or_create(&s.labels)).collect();
    let mut i = 0;
    g.bench_function("scrape_10k_series/cached_handles", |b| {
        b.iter(|| {
            let offset = (i / ROUNDS) as i64 * ROUNDS as i64 * INTERVAL_MS;
            for (h, s) in handles.iter().zip(&rounds[i % ROUNDS]) {
                let _ = black_box(head.append(h, s.t + offset, s.v));
            }
            i += 1;
        })
    });

    let head = Head::default();
    let mut i = 0;
    g.bench_function("scrape_10k_series/by_labels", |b| {
        b.iter(|| {
            let offset = (i / ROUNDS) as i64 * ROUNDS as i64 * INTERVAL_MS;
            for (spec, s) in data.series.iter().zip(&rounds[i % ROUNDS]) {
                let _ = black_box(head.append_labels(&spec.labels, s.t + offset, s.v));
            }
            i += 1;
        })
    });

    // Remote-write shape: each series arrives with a batch of samples.
    let head = Head::default();
    let handles: Vec<_> = data.series.iter().map(|s| head.get_or_create(&s.labels)).collect();
    let per_series: Vec<Vec<Sample>> =
        (0..data.len()).map(|s| rounds.iter().take(10).map(|r| r[s]).collect()).collect();
    g.throughput(Throughput::Elements(data.len() as u64 * 10));
    let mut i = 0i64;
    g.bench_function("remote_write_10k_series_x10/append_many", |b| {
        b.iter(|| {
            let offset = i * 10 * INTERVAL_MS;
            for (h, batch) in handles.iter().zip(&per_series) {
                let shifted: [Sample; 10] =
                    std::array::from_fn(|k| Sample::new(batch[k].t + offset, batch[k].v));
                black_box(head.append_many(h, &shifted));
            }
            i += 1;
        })
    });
    g.finish();
}

/// The 100k x 2 h head, loaded once for the query benches.
fn loaded() -> &'static (Head, Dataset) {
    static HEAD: OnceLock<(Head, Dataset)> = OnceLock::new();
    HEAD.get_or_init(|| {
        let data = Dataset::new(100_000);
        let head = Head::default();
        data.load(&head, SAMPLES_2H);
        (head, data)
    })
}

const END_MS: i64 = START_MS + SAMPLES_2H as i64 * INTERVAL_MS;

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid matcher")
}

fn selectors() -> Vec<(&'static str, Vec<Matcher>)> {
    vec![
        ("up", vec![m("__name__", MatchOp::Equal, "up")]),
        (
            "one_instance_metric",
            vec![
                m("__name__", MatchOp::Equal, "http_requests_total"),
                m("instance", MatchOp::Equal, "10.0.0.1:8080"),
                m("code", MatchOp::Regex, "5.."),
            ],
        ),
        (
            "cpu_not_idle",
            vec![
                m("__name__", MatchOp::Equal, "node_cpu_seconds_total"),
                m("mode", MatchOp::NotEqual, "idle"),
            ],
        ),
        (
            "histogram_one_handler",
            vec![
                m("__name__", MatchOp::Equal, "http_request_duration_seconds_bucket"),
                m("handler", MatchOp::Equal, "/api/v1/users"),
            ],
        ),
        (
            "name_regex_and_job",
            vec![
                m("__name__", MatchOp::Regex, "node_network_io.*"),
                m("job", MatchOp::Equal, "node"),
            ],
        ),
        (
            "grafana_instance_list",
            vec![
                m("__name__", MatchOp::Equal, "up"),
                m("instance", MatchOp::Regex, "10.0.0.1:8080|10.0.0.5:8080|10.0.0.9:8080"),
            ],
        ),
        ("whole_job", vec![m("job", MatchOp::Equal, "api")]),
    ]
}

fn select(c: &mut Criterion) {
    let (head, _) = loaded();
    let mut g = c.benchmark_group("select_100k");
    for (name, ms) in selectors() {
        let n = head.select(&ms, START_MS, END_MS).map(|s| s.len()).unwrap_or(0);
        g.bench_function(format!("{name}/{n}_series"), |b| {
            b.iter(|| black_box(head.select(&ms, START_MS, END_MS)))
        });
    }
    g.bench_function("label_values_instance", |b| {
        b.iter(|| black_box(head.label_values("instance", &[], START_MS, END_MS)))
    });
    g.bench_function("label_names", |b| {
        b.iter(|| black_box(head.label_names(&[], START_MS, END_MS)))
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let (head, _) = loaded();
    let mut g = c.benchmark_group("read_100k");
    let ms = [m("__name__", MatchOp::Equal, "node_cpu_seconds_total")];
    let ids: Vec<_> = head
        .select(&ms, START_MS, END_MS)
        .map(|s| s.into_iter().map(|s| s.id).collect())
        .unwrap_or_default();
    for (name, from) in [("2h", START_MS), ("5m", END_MS - 5 * 60_000)] {
        let mut total = 0;
        let mut out = Vec::new();
        for &id in &ids {
            out.clear();
            head.samples(id, from, END_MS, &mut out).expect("readable");
            total += out.len();
        }
        g.throughput(Throughput::Elements(total as u64));
        g.bench_function(format!("{name}_of_{}_series/{total}_samples", ids.len()), |b| {
            b.iter_batched_ref(
                || Vec::with_capacity(SAMPLES_2H),
                |out| {
                    for &id in &ids {
                        out.clear();
                        head.samples(id, from, END_MS, out).expect("readable");
                        black_box(&out);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// Encoding and decoding alone, on one chunk of a busy counter in cache.
fn chunk(c: &mut Criterion) {
    let data = Dataset::new(10);
    let samples: Vec<Sample> = scrape_rounds(&data).iter().map(|r| r[0]).collect();
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("encode_120", |b| {
        b.iter(|| {
            let mut a = ChunkAppender::new();
            for s in &samples {
                a.append(s.t, s.v);
            }
            black_box(a)
        })
    });
    let mut a = ChunkAppender::new();
    for s in &samples {
        a.append(s.t, s.v);
    }
    let mut out = Vec::with_capacity(samples.len());
    g.bench_function("decode_120", |b| {
        b.iter(|| {
            out.clear();
            chunk::decode_range(a.bytes(), i64::MIN, i64::MAX, &mut out).expect("valid chunk");
            black_box(&out);
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // The machine is shared: short runs, few samples.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = chunk, append, select, read }
criterion_main!(benches);
