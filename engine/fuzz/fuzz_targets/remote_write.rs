//! Remote-write bodies: whatever a sender posts to `/api/v1/write`.
//!
//! Run from `engine/`:
//! `cargo +nightly fuzz run remote_write fuzz/seeds/remote_write`
//!
//! The first byte picks how the rest is read: as the snappy body itself, or
//! as the protobuf inside it (random bytes are rarely valid snappy, so this
//! is how the protobuf decoder gets exercised). Besides "never panics":
//! the strict and the lenient decoder agree; what decodes re-encodes to the
//! same series; appending to a fresh head creates one series per distinct
//! label set with samples, and never accounts for more samples than sent.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use tocsin_engine::remote_write::{
    MAX_ERRORS, RemoteWriteError, TimeSeries, append_request, decode, decode_request, encode,
};
use tocsin_engine::storage::Head;

const LIMIT: usize = 1 << 20;

/// `data` as a snappy block of one uncompressed literal: the length as a
/// varint, then tag 0xfc (a literal whose length - 1 follows in 4 bytes).
fn snappy_literal(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 10);
    let mut n = data.len() as u64;
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    if let Some(last) = data.len().checked_sub(1) {
        out.push(0xfc);
        out.extend_from_slice(&(last as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// Equal labels and bit-equal samples (NaN equals itself), except that a
/// zero may lose its sign: proto3 leaves zero values out, as Prometheus does.
fn assert_same(a: &[TimeSeries], b: &[TimeSeries]) {
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.samples.len(), b.samples.len());
        for (x, y) in a.samples.iter().zip(&b.samples) {
            assert!(x.bit_eq(y) || (x.t == y.t && x.v == 0.0 && y.v == 0.0), "{x:?} vs {y:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode & 1 == 0 { rest.to_vec() } else { snappy_literal(rest) };

    let strict = decode(&body, LIMIT);
    let lenient = decode_request(&body, LIMIT);
    let req = match (&strict, lenient) {
        (Ok(series), Ok(req)) => {
            assert_eq!(req.invalid_series + req.histograms, 0);
            assert_same(series, &req.series);
            req
        }
        (Err(_), Ok(req)) => {
            assert!(req.invalid_series + req.histograms > 0, "{strict:?}");
            assert_eq!(req.errors.first(), strict.as_ref().err());
            req
        }
        (Err(a), Err(b)) => {
            // The strict decoder may stop at a bad series before the
            // malformed bytes the lenient one goes on to.
            let series_error = matches!(
                a,
                RemoteWriteError::InvalidSeries { .. } | RemoteWriteError::NativeHistograms { .. }
            );
            assert!(series_error || a == &b, "{a} vs {b}");
            return;
        }
        (Ok(_), Err(e)) => panic!("only the lenient decoder failed: {e}"),
    };
    assert!(req.errors.len() <= MAX_ERRORS);

    assert_same(
        &decode(&encode(&req.series), LIMIT).expect("re-encoded series decode"),
        &req.series,
    );

    let head = Head::default();
    let report = append_request(&head, &req, i64::MAX);
    let sent: usize = req.series.iter().map(|s| s.samples.len()).sum();
    assert!(
        report.appended + report.out_of_order + report.duplicate + report.out_of_bounds <= sent
    );
    let distinct: BTreeSet<_> =
        req.series.iter().filter(|s| !s.samples.is_empty()).map(|s| &s.labels).collect();
    assert_eq!(report.series_created, distinct.len());
    assert_eq!(head.stats().series as usize, distinct.len());
    assert_eq!(report.status_hint() == 204, report.error_message().is_none());
});
