//! tocsin-engine: the pure core of tocsin.
//!
//! Everything here is deterministic computation over data passed in: no I/O, no
//! clocks, no threads of its own. The host service, the CLI and the browser
//! playground all run this same crate; it builds for the native target and for
//! `wasm32-unknown-unknown`.

pub mod duration;
pub mod exposition;
pub mod gofmt;
pub mod histogram;
pub mod json;
pub mod labels;
pub mod matcher;
pub mod notation;
pub mod prefetch;
pub mod promql;
pub mod relabel;
pub mod remote_write;
pub mod rules;
pub mod sample;
pub mod sort;
pub mod storage;
pub mod templates;
pub mod varint;
pub mod yaml;

pub use labels::{Label, Labels};
pub use matcher::{MatchOp, Matcher};
pub use sample::{STALE_NAN, Sample, is_stale_nan};
