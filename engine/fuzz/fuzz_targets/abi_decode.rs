//! Every ABI message decoder on arbitrary bytes: the host decodes what a guest
//! module wrote, so no input may panic, and whatever decodes must re-encode to
//! the same bytes (one encoding per value).
//!
//! Run from `engine/`: `cargo +nightly fuzz run abi_decode`
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_abi::{
    EvalRequest, EvalResponse, Message, QueryReply, QueryRequest, RangeQueryRequest,
    SeriesRequest,
};

fn check<M: Message>(data: &[u8]) {
    if let Ok(msg) = M::decode(data) {
        assert_eq!(msg.encode(), data);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<EvalRequest>(data);
    check::<EvalResponse>(data);
    check::<QueryRequest>(data);
    check::<RangeQueryRequest>(data);
    check::<SeriesRequest>(data);
    check::<QueryReply>(data);
});
