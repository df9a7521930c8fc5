//! Memory of the head per series and per sample, counted by a wrapping global
//! allocator (live bytes requested; allocator overhead is not included, the
//! process RSS is printed next to it as a cross-check).
//!
//! `cargo bench -p tocsin-engine --bench storage_memory`
//!
//! Targets: at most 1 KiB per active series besides its samples (Prometheus
//! needs about 3 KiB) and at most 2 bytes per sample, at 100k series holding
//! 2 h of 15 s scrapes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::{Dataset, INTERVAL_MS, Kind, SAMPLES_2H, START_MS};
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::chunk::ChunkAppender;
use tocsin_engine::storage::{Head, HeadOptions};

struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE_ALLOCS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (usize, usize) {
    (LIVE_BYTES.load(Ordering::Relaxed), LIVE_ALLOCS.load(Ordering::Relaxed))
}

/// Resident set size in bytes, where the OS tells it.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn measure(n: usize) {
    let data = Dataset::new(n);
    let rounds = SAMPLES_2H;
    let samples = (n * rounds) as f64;
    // Everything the workload itself needs is allocated before the baseline.
    let mut scrapes = data.scrapes(rounds + rounds / 2);
    let mut round: Vec<Sample> = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    let rss0 = rss();
    let (base, base_allocs) = live();

    let head = Head::new(HeadOptions::default());
    for s in &data.series {
        handles.push(head.get_or_create(&s.labels));
    }
    let (after_series, series_allocs) = live();

    let started = Instant::now();
    for _ in 0..rounds {
        scrapes.next_round(&mut round);
        for (h, s) in handles.iter().zip(&round) {
            head.append(h, s.t, s.v).expect("generated samples are in order");
        }
    }
    let load_time = started.elapsed();
    let (after_samples, sample_allocs) = live();

    let per_series = (after_series - base) as f64 / n as f64;
    let per_sample = (after_samples - after_series) as f64 / samples;
    let mem = head.memory_usage();
    println!("== {n} series x {rounds} samples ({} instances)", data.instances());
    println!(
        "   per series (labels, index, postings, strings, series state): {per_series:.0} B   [target <= 1024]  {}",
        verdict(per_series <= 1024.0)
    );
    println!(
        "   per sample (chunks, incl. open-chunk slack and framing):     {per_sample:.3} B  [target <= 2]     {}",
        verdict(per_sample <= 2.0)
    );
    println!(
        "   allocations: {:.1} per series for series, {:.2} per series for chunks",
        (series_allocs - base_allocs) as f64 / n as f64,
        (sample_allocs - series_allocs) as f64 / n as f64,
    );
    println!(
        "   head's own estimate: chunks {} series {} index {} strings {} (total {}, counted {})",
        mib(mem.chunks),
        mib(mem.series),
        mib(mem.index),
        mib(mem.strings),
        mib(mem.total()),
        mib(after_samples - base),
    );
    if let (Some(r0), Some(r1)) = (rss0, rss()) {
        println!(
            "   RSS grew by {} (allocator overhead and fragmentation included)",
            mib(r1.saturating_sub(r0))
        );
    }
    println!(
        "   loaded in {:.2} s: {:.1} M samples/s, one thread, sample generation included",
        load_time.as_secs_f64(),
        samples / load_time.as_secs_f64() / 1e6
    );

    // Retention: another hour, then keep only the last two hours.
    for _ in 0..rounds / 2 {
        scrapes.next_round(&mut round);
        for (h, s) in handles.iter().zip(&round) {
            head.append(h, s.t, s.v).expect("generated samples are in order");
        }
    }
    let before_truncate = live().0;
    let started = Instant::now();
    head.truncate_before(START_MS + (rounds / 2) as i64 * INTERVAL_MS);
    let st = head.stats();
    println!(
        "   +1 h then truncate to the last 2 h: {} -> {} in {:.0} ms, {} chunks, {} series",
        mib(before_truncate - base),
        mib(live().0 - base),
        started.elapsed().as_secs_f64() * 1e3,
        st.chunks,
        st.series
    );
    drop(handles);
    drop(head);
}

/// Compression alone, per kind of series: every series' 2 h encoded into
/// 120-sample chunks, counting exact encoded bytes.
fn compression_by_kind(n: usize) {
    let data = Dataset::new(n);
    let mut scrapes = data.scrapes(SAMPLES_2H);
    let mut per_series: Vec<Vec<Sample>> = vec![Vec::with_capacity(SAMPLES_2H); n];
    let mut round = Vec::new();
    while scrapes.next_round(&mut round) {
        for (dst, s) in per_series.iter_mut().zip(&round) {
            dst.push(*s);
        }
    }
    let mut by_kind: BTreeMap<Kind, (usize, usize, usize)> = BTreeMap::new();
    for (spec, samples) in data.series.iter().zip(&per_series) {
        let e = by_kind.entry(spec.kind).or_default();
        e.0 += 1;
        for chunk in samples.chunks(120) {
            let mut a = ChunkAppender::new();
            for s in chunk {
                a.append(s.t, s.v);
            }
            e.1 += a.bytes().len();
            e.2 += chunk.len();
        }
    }
    println!("== encoded bytes per sample by kind ({n} series)");
    let (mut bytes, mut count) = (0, 0);
    for (kind, (series, b, c)) in &by_kind {
        println!(
            "   {:<14} {:>5.1}% of series  {:.3} B/sample",
            format!("{kind:?}"),
            *series as f64 * 100.0 / n as f64,
            *b as f64 / *c as f64
        );
        bytes += b;
        count += c;
    }
    println!("   all            {:.3} B/sample", bytes as f64 / count as f64);
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "OVER TARGET" }
}

fn main() {
    compression_by_kind(10_000);
    measure(10_000);
    measure(100_000);
}
