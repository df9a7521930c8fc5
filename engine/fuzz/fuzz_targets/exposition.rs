//! Exposition parsing and ingestion on arbitrary bytes.
//!
//! Run from `engine/`:
//! `cargo +nightly fuzz run exposition -- -dict=fuzz/exposition.dict fuzz/seeds/exposition`
//!
//! Besides "never panics", it checks what must hold for any input: the
//! parser always ends; errors have positions; the pull parser and the
//! ingester accept exactly the same bodies; a rejected body appends nothing;
//! a second ingest of the same body (served from the cache and its series
//! guesses) behaves like the first; the ingester creates one series per
//! distinct label set the parser reports.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use tocsin_engine::exposition::{Entry, ErrorPolicy, Format, Ingester, Parser};
use tocsin_engine::storage::Head;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let format = if mode & 1 == 0 { Format::PrometheusText } else { Format::OpenMetrics };

    // The pull parser: every call consumes input or ends the parse.
    let mut parser = Parser::new(body, format);
    let mut first_error = None;
    let mut label_sets = BTreeSet::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls <= body.len() + 2, "parser does not progress");
        match parser.next_entry() {
            Ok(None) => break,
            Ok(Some(Entry::Sample(s))) => {
                let _ = s.labels().count();
                let _ = s.metric_name();
                label_sets.insert(s.to_labels());
            }
            Ok(Some(_)) => {}
            Err(e) => {
                assert!(e.line >= 1 && e.column >= 1);
                let _ = e.to_string();
                first_error.get_or_insert(e);
            }
        }
    }

    // The ingester, rejecting bad bodies: same verdict as the parser.
    let head = Head::default();
    let mut ingester = Ingester::new();
    let first = ingester.ingest(&head, body, format, 1_000);
    match (&first, &first_error) {
        (Ok(_), None) => {}
        (Err(e), Some(p)) => assert_eq!(e, p),
        _ => panic!("parser and ingester disagree: {first:?} vs {first_error:?}"),
    }
    match &first {
        Ok(report) => {
            assert_eq!(head.stats().series as usize, label_sets.len());
            assert_eq!(
                report.appended + report.duplicate + report.out_of_order,
                report.samples
            );
        }
        Err(_) => assert_eq!(head.stats().series, 0),
    }
    let before = head.stats().samples_appended;
    let second = ingester.ingest(&head, body, format, 2_000);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a.samples, b.samples),
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert_eq!(head.stats().samples_appended, before);
        }
        _ => panic!("second ingest differs: {first:?} vs {second:?}"),
    }

    // Skipping bad lines: never fails, reports as many errors as the parser.
    let mut lenient = Ingester::new().with_policy(ErrorPolicy::SkipLines);
    let report = lenient.ingest(&Head::default(), body, format, 1_000).expect("never fails");
    assert_eq!(report.invalid_lines == 0, first_error.is_none());
});
