//! Native histograms, as Prometheus's float histograms: exponential buckets
//! (a `schema` from -4 to 8, each bucket `2^(2^-schema)` times wider than the
//! one before), a zero bucket, or custom bucket bounds (schema -53, "NHCB").
//! Buckets are stored sparsely: spans of consecutive bucket indexes, each
//! with its bucket counts (absolute counts, as floats).

/// Whether a histogram sample follows its predecessor as a counter, started
/// over (a reset), or is a gauge. Storage sets it on read; it decides how
/// `rate` and friends treat the sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    Reset,
    NotReset,
    Gauge,
}

/// A run of `length` consecutive buckets starting `offset` indexes after the
/// previous span ends (after index 0 for the first span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// One native histogram sample's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<Span>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the buckets when `schema` is [`CUSTOM_BUCKETS_SCHEMA`].
    pub custom_values: Vec<f64>,
}

/// The schema of histograms with custom bucket bounds.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
