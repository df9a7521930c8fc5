//! Backtest data and test-file series: promtool's expanding notation, native
//! histograms included, inside YAML. Data files come from users of
//! `tocsin backtest`, the playground and `POST /api/v1/backtest`, so they are
//! untrusted input: every text must load or fail with an error, never panic,
//! and never expand past the sample bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_engine::notation;
use tocsin_engine::rules::backtest::load_data_bounded;
use tocsin_engine::storage::Head;

fuzz_target!(|data: &[u8]| {
    if data.len() > 4096 {
        return;
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(desc) = notation::parse_series(text)
        && desc.values.len() <= 100_000
    {
        let _ = desc.samples(0, 15_000);
    }
    let head = Head::default();
    let _ = load_data_bounded(&head, "data.yml", data, 100_000);
});
