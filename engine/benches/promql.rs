//! PromQL latency for typical rule queries over 10k and 100k series holding
//! 2 h of 15 s samples (see `common`): instant queries at the newest data, as
//! a rule evaluation runs them, and a 1 h range query at a 15 s step, as a
//! dashboard runs it.
//!
//! `cargo bench -p tocsin-engine --bench promql`

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Dataset, INTERVAL_MS, RULE_QUERIES, SAMPLES_2H, last_scrape_ms};
use criterion::{Criterion, criterion_group, criterion_main};
use tocsin_engine::promql::Engine;
use tocsin_engine::storage::Head;

/// The host's allocator, so the numbers are the host's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn loaded(n: usize) -> Head {
    let head = Head::default();
    Dataset::new(n).load(&head, SAMPLES_2H);
    head
}

fn promql(c: &mut Criterion) {
    let engine = Engine::default();
    for n in [10_000, 100_000] {
        let head = loaded(n);
        let t = last_scrape_ms(SAMPLES_2H);
        let mut g = c.benchmark_group(format!("promql_{}k", n / 1000));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        for (name, q) in RULE_QUERIES {
            // A query that fails or selects nothing would measure nothing.
            let r = engine.instant(&head, q, t).expect("benchmark query evaluates");
            assert!(
                !matches!(&r.value, tocsin_engine::promql::Value::Vector(v) if v.is_empty()),
                "{q} selects nothing"
            );
            g.bench_function(format!("instant/{name}"), |b| {
                b.iter(|| black_box(engine.instant(&head, q, t).expect("query evaluates")))
            });
        }
        let (start, end) = (t - 3600 * 1000, t);
        g.bench_function("range_1h_15s/sum_rate", |b| {
            b.iter(|| {
                black_box(
                    engine
                        .range(&head, RULE_QUERIES[0].1, start, end, INTERVAL_MS)
                        .expect("query evaluates"),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, promql);
criterion_main!(benches);
