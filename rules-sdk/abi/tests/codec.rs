//! Roundtrips and hostile input for every message of the ABI.

use proptest::prelude::*;
use tocsin_abi::{
    DecodeError, EvalRequest, EvalResponse, Labels, Message, OutSample, QueryReply, QueryRequest,
    RangeQueryRequest, STALE_NAN_BITS, Series, SeriesRequest,
};

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::vec((".{0,8}", ".{0,8}"), 0..4)
}

/// Any bit pattern, so NaN payloads and signed zeros are covered.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![any::<u64>().prop_map(f64::from_bits), Just(f64::from_bits(STALE_NAN_BITS))]
}

fn series() -> impl Strategy<Value = Series> {
    (labels(), prop::collection::vec((any::<i64>(), float()), 0..6)).prop_map(|(labels, points)| {
        let (timestamps, values) = points.into_iter().unzip();
        Series { labels, timestamps, values }
    })
}

fn eval_response() -> impl Strategy<Value = EvalResponse> {
    let sample = (labels(), float(), labels()).prop_map(|(labels, value, annotations)| OutSample {
        labels,
        value,
        annotations,
    });
    (
        prop::collection::vec(sample, 0..4),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        prop::collection::vec(".{0,12}", 0..3),
        prop::option::of(".{0,12}"),
    )
        .prop_map(|(samples, state, logs, error)| EvalResponse { samples, state, logs, error })
}

fn query_reply() -> impl Strategy<Value = QueryReply> {
    prop_oneof![
        prop::collection::vec(series(), 0..4).prop_map(QueryReply::Series),
        ".{0,20}".prop_map(QueryReply::Error),
    ]
}

/// Floats compare by bits: `NaN != NaN` would hide a lost payload.
fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn response_bits(r: &EvalResponse) -> Vec<u64> {
    r.samples.iter().map(|s| s.value.to_bits()).collect()
}

fn reply_bits(r: &QueryReply) -> Vec<Vec<u64>> {
    match r {
        QueryReply::Series(s) => s.iter().map(|s| bits(&s.values)).collect(),
        QueryReply::Error(_) => vec![],
    }
}

/// Roundtrip, then re-encode: one encoding per value.
fn check<M: Message + std::fmt::Debug>(msg: &M) -> M {
    let bytes = msg.encode();
    let back = M::decode(&bytes).expect("own encoding decodes");
    assert_eq!(back.encode(), bytes);
    back
}

proptest! {
    #[test]
    fn eval_request_roundtrips(ts_ms: i64, interval_ms: i64, config: Vec<u8>, state: Vec<u8>) {
        let m = EvalRequest { ts_ms, interval_ms, config, state };
        prop_assert_eq!(check(&m), m);
    }

    #[test]
    fn eval_response_roundtrips(m in eval_response()) {
        let back = check(&m);
        prop_assert_eq!(response_bits(&back), response_bits(&m));
        prop_assert_eq!(back.logs, m.logs);
        prop_assert_eq!(back.state, m.state);
        prop_assert_eq!(back.error, m.error);
    }

    #[test]
    fn requests_roundtrip(ts_ms: i64, start_ms: i64, end_ms: i64, step_ms: i64, expr in ".{0,30}", matchers in prop::collection::vec(".{0,10}", 0..4)) {
        let q = QueryRequest { ts_ms, expr: expr.clone() };
        prop_assert_eq!(check(&q), q);
        let q = RangeQueryRequest { start_ms, end_ms, step_ms, expr };
        prop_assert_eq!(check(&q), q);
        let q = SeriesRequest { start_ms, end_ms, matchers };
        prop_assert_eq!(check(&q), q);
    }

    #[test]
    fn query_reply_roundtrips(m in query_reply()) {
        let back = check(&m);
        prop_assert_eq!(reply_bits(&back), reply_bits(&m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = EvalRequest::decode(&bytes);
        let _ = EvalResponse::decode(&bytes);
        let _ = QueryRequest::decode(&bytes);
        let _ = RangeQueryRequest::decode(&bytes);
        let _ = SeriesRequest::decode(&bytes);
        let _ = QueryReply::decode(&bytes);
    }

    /// Valid headers get past the first check, so mutations reach the bodies.
    #[test]
    fn corrupted_messages_never_panic(m in query_reply(), r in eval_response(), at: usize, byte: u8, cut: usize) {
        for mut bytes in [m.encode(), r.encode()] {
            let i = at % bytes.len();
            bytes[i] = byte;
            let _ = QueryReply::decode(&bytes);
            let _ = EvalResponse::decode(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = QueryReply::decode(&bytes);
            let _ = EvalResponse::decode(&bytes);
        }
    }
}

#[test]
fn staleness_marker_survives_bit_exact() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let reply = QueryReply::Series(vec![Series {
        labels: vec![("__name__".into(), "up".into())],
        timestamps: vec![1, 2, 3],
        values: vec![1.0, stale, f64::NAN],
    }]);
    let QueryReply::Series(s) = QueryReply::decode(&reply.encode()).unwrap() else { panic!() };
    assert_eq!(bits(&s[0].values), vec![1f64.to_bits(), STALE_NAN_BITS, f64::NAN.to_bits()]);

    let out = EvalResponse {
        samples: vec![OutSample { value: stale, ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(
        EvalResponse::decode(&out.encode()).unwrap().samples[0].value.to_bits(),
        STALE_NAN_BITS
    );
}

#[test]
fn columns_start_8_aligned() {
    let reply = QueryReply::Series(vec![Series {
        labels: vec![("a".into(), "bcd".into())],
        timestamps: vec![7],
        values: vec![0.5],
    }]);
    let bytes = reply.encode();
    // header 8, tag 1, series count 4, label count 4, "a" 5, "bcd" 7, points 4 = 33 -> pad to 40.
    assert_eq!(&bytes[33..40], &[0; 7]);
    assert_eq!(&bytes[40..48], &7i64.to_le_bytes());
    assert_eq!(&bytes[48..56], &0.5f64.to_le_bytes());
    assert_eq!(bytes.len(), 56);
}

#[test]
fn header_is_checked() {
    let bytes = QueryRequest { ts_ms: 1, expr: "up".into() }.encode();
    assert_eq!(&bytes[..8], b"TCSN\x01\x00\x03\x00");
    assert_eq!(EvalRequest::decode(&bytes), Err(DecodeError::WrongKind { expected: 1, found: 3 }));
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert_eq!(QueryRequest::decode(&v2), Err(DecodeError::UnsupportedVersion(2)));
    assert_eq!(QueryRequest::decode(b"JSON{}.."), Err(DecodeError::BadMagic));
    let mut flags = bytes.clone();
    flags[7] = 1;
    assert!(matches!(QueryRequest::decode(&flags), Err(DecodeError::BadTag { offset: 7, .. })));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(QueryRequest::decode(&long), Err(DecodeError::TrailingBytes { .. })));
}

#[test]
fn forged_counts_are_refused_before_allocating() {
    // A reply claiming u32::MAX series (and then u32::MAX points) in a few bytes.
    let mut bytes = QueryReply::Series(vec![]).encode();
    bytes[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(QueryReply::decode(&bytes), Err(DecodeError::Truncated { .. })));

    let mut bytes = QueryReply::Series(vec![Series::default()]).encode();
    let points_at = 8 + 1 + 4 + 4;
    bytes[points_at..points_at + 4].copy_from_slice(&(u32::MAX / 16).to_le_bytes());
    assert!(matches!(QueryReply::decode(&bytes), Err(DecodeError::Truncated { .. })));
}

#[test]
fn invalid_utf8_is_an_error() {
    let mut bytes = QueryRequest { ts_ms: 0, expr: "ab".into() }.encode();
    let last = bytes.len() - 1;
    bytes[last] = 0xff;
    assert!(matches!(QueryRequest::decode(&bytes), Err(DecodeError::InvalidUtf8 { .. })));
}
