//! Any query text: parsing (with the Go string-literal pass and the position
//! walk) and evaluation over a small fixed head, instant and range, must end
//! in a result or an error, never a panic, over floats and native histograms
//! alike. Queries reach the engine from the HTTP API and from rule files, so
//! they are untrusted input.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tocsin_engine::histogram::FloatHistogram;
use tocsin_engine::labels::Labels;
use tocsin_engine::promql::{Engine, EngineOptions};
use tocsin_engine::storage::Head;
use tocsin_engine::STALE_NAN;

fn head() -> &'static Head {
    static HEAD: OnceLock<Head> = OnceLock::new();
    HEAD.get_or_init(|| {
        let h = Head::default();
        let series: [&[(&str, &str)]; 5] = [
            &[("__name__", "x_total"), ("job", "a"), ("instance", "1")],
            &[("__name__", "x_total"), ("job", "b"), ("instance", "2")],
            &[("__name__", "g"), ("job", "a")],
            &[("__name__", "h_bucket"), ("le", "0.5")],
            &[("__name__", "h_bucket"), ("le", "+Inf")],
        ];
        for (i, pairs) in series.iter().enumerate() {
            let l = Labels::from_pairs(pairs);
            for k in 0..40i64 {
                let v = match (i, k) {
                    (2, 20) => STALE_NAN,
                    (2, _) => (k as f64).sin(),
                    _ => (k * (i as i64 + 1)) as f64,
                };
                let _ = h.append_labels(&l, k * 15_000, v);
            }
        }
        // Native histograms, alone and mixed with floats in one series, so
        // that every operation meets them.
        for (name, floats_from) in [("nh", 40), ("mixed", 20)] {
            let s = h.get_or_create(&Labels::from_pairs(&[("__name__", name)]));
            for k in 0..40i64 {
                if k >= floats_from {
                    let _ = h.append(&s, k * 15_000, k as f64);
                    continue;
                }
                let text = format!("{{{{schema:{} count:{} sum:{k} buckets:[{k} 1]}}}}", k % 3, k + 1);
                if let Ok(fh) = FloatHistogram::parse_notation(&text) {
                    let _ = h.append_histogram(&s, k * 15_000, Arc::new(fh));
                }
            }
        }
        h
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if query.len() > 512 {
        return;
    }
    // A small sample limit keeps a hostile query from exhausting the fuzzer.
    let engine = Engine::new(EngineOptions { max_samples: 200_000, ..EngineOptions::default() });
    let _ = engine.instant(head(), query, 300_000);
    let _ = engine.range(head(), query, 0, 600_000, 30_000);
});
