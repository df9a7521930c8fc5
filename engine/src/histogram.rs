//! Native histograms, as Prometheus's float histograms: exponential buckets
//! (a `schema` from -4 to 8, each bucket `2^(2^-schema)` times wider than the
//! one before), a zero bucket, or custom bucket bounds (schema -53, "NHCB").
//! Buckets are stored sparsely: spans of consecutive bucket indexes, each
//! with its bucket counts (absolute counts, as floats).
//!
//! The arithmetic follows Prometheus's `FloatHistogram` step by step, down to
//! the span layout its results have before compaction, because test
//! expectations and `histogram_quantile` results are compared with
//! Prometheus's. Unlike Prometheus, nothing here panics: inputs Prometheus
//! would trip over (spans that do not match the buckets, unknown schemas, NaN
//! zero thresholds) are errors or are handled conservatively.
//!
//! The test notation, `{{schema:1 count:3 sum:5 buckets:[1 2]}}`, is parsed by
//! [`FloatHistogram::parse_notation`] and printed by
//! [`FloatHistogram::test_expression`].

use std::fmt;
use std::iter::Peekable;

use crate::gofmt::format_float_g;
use crate::notation::{self, ErrorKind as NotationErrorKind};

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

/// The lowest-resolution exponential schema.
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;

/// The highest-resolution exponential schema.
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;

/// Whether `schema` is one of the exponential schemas, -4 to 8.
pub fn is_exponential_schema(schema: i32) -> bool {
    (EXPONENTIAL_SCHEMA_MIN..=EXPONENTIAL_SCHEMA_MAX).contains(&schema)
}

/// Whether `schema` is exponential or [`CUSTOM_BUCKETS_SCHEMA`].
pub fn is_valid_schema(schema: i32) -> bool {
    is_exponential_schema(schema) || schema == CUSTOM_BUCKETS_SCHEMA
}

/// Which buckets an error is about; prefixes messages as Prometheus does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Positive,
    Negative,
    /// The (positive) buckets of a histogram with custom bounds.
    Custom,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Positive => "positive side",
            Side::Negative => "negative side",
            Side::Custom => "custom buckets",
        })
    }
}

/// What went wrong parsing, combining or validating histograms. Validation
/// and arithmetic messages are Prometheus's, so that they can be compared.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error("unexpected {found} in histogram description, expected {expected}")]
    Unexpected { found: String, expected: &'static str },
    #[error(
        "unknown histogram description key {0:?}: expected schema, sum, count, z_bucket, \
         z_bucket_w, custom_values, buckets, offset, n_buckets, n_offset or counter_reset_hint"
    )]
    UnknownKey(String),
    #[error("missing \":\" after histogram description key {0:?}")]
    MissingColon(String),
    #[error("duplicate key \"{0}\" in histogram")]
    DuplicateKey(&'static str),
    #[error("bad number syntax in histogram description: {0:?}")]
    BadNumber(String),
    #[error("number out of range in histogram description: {0:?}")]
    NumberOutOfRange(String),
    #[error("{key} must be a decimal integer, got {text:?}")]
    BadInteger { key: &'static str, text: String },
    #[error("{key} {text} is out of range")]
    IntegerOutOfRange { key: &'static str, text: String },
    #[error("unknown counter_reset_hint {0:?}: expected unknown, reset, not_reset or gauge")]
    BadCounterResetHint(String),
    #[error("unterminated native histogram: no closing \"}}}}\"")]
    Unterminated,

    #[error(
        "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
    )]
    IncompatibleSchema,
    #[error("error combining histograms: cannot merge from schema {from} to {to}")]
    CannotMergeSchema { from: i32, to: i32 },
    #[error("cannot reduce resolution from schema {from} to {to}")]
    CannotReduceResolution { from: i32, to: i32 },

    #[error(
        "histogram has an invalid schema, which must be between -4 and 8 for exponential buckets, \
         or -53 for custom buckets, got schema {0}"
    )]
    InvalidSchema(i32),
    #[error(
        "{side}: span number {span} with offset {offset}: histogram has a span whose offset is negative"
    )]
    SpanNegativeOffset { side: Side, span: usize, offset: i32 },
    #[error(
        "{side}: spans need {need} buckets, have {have} buckets: \
         histogram spans specify different number of buckets than provided"
    )]
    SpansBucketsMismatch { side: Side, need: u64, have: usize },
    #[error(
        "{side}: bucket number {bucket} has observation count of {}: \
         histogram has a bucket whose observation count is negative",
        format_float_g(*.count)
    )]
    NegativeBucketCount { side: Side, bucket: usize, count: f64 },
    #[error(
        "zero bucket has observation count of {}: \
         histogram has a bucket whose observation count is negative",
        format_float_g(*.0)
    )]
    NegativeZeroCount(f64),
    #[error(
        "observation count is {}: histogram's observation count is negative",
        format_float_g(*.0)
    )]
    NegativeCount(f64),
    #[error("custom buckets: histogram custom bounds must not be NaN")]
    CustomBoundsNaN,
    #[error(
        "custom buckets: previous bound is {} and current is {}: \
         histogram custom bounds must be in strictly increasing order",
        format_float_g(*.previous),
        format_float_g(*.current)
    )]
    CustomBoundsNotIncreasing { previous: f64, current: f64 },
    #[error(
        "custom buckets: last +Inf bound must not be explicitly defined: \
         histogram custom bounds must be finite"
    )]
    CustomBoundsInfinite,
    #[error(
        "custom buckets: only {bounds} custom bounds defined which is insufficient to cover \
         total span length of {span_length}: histogram custom bounds are too few"
    )]
    CustomBoundsTooFew { bounds: usize, span_length: i64 },
    #[error("custom buckets: must have zero count of 0")]
    CustomBucketsZeroCount,
    #[error("custom buckets: must have zero threshold of 0")]
    CustomBucketsZeroThreshold,
    #[error("custom buckets: must not have negative spans")]
    CustomBucketsNegativeSpans,
    #[error("custom buckets: must not have negative buckets")]
    CustomBucketsNegativeBuckets,
    #[error("histogram with exponential schema must not have custom bounds")]
    ExponentialSchemaCustomBounds,
}

/// What an addition or subtraction noticed besides its result, for PromQL's
/// warnings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddInfo {
    /// One operand said "reset" and the other "not reset"; the result's hint
    /// became unknown.
    pub counter_reset_collision: bool,
    /// The operands had different custom bounds; the result has the bounds
    /// both share, and buckets between them were merged.
    pub nhcb_bounds_reconciled: bool,
}

/// One bucket with its bounds, as the bucket iterators return it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    /// The bucket's index in its schema; 0 for the zero bucket.
    pub index: i32,
}

/// Beyond this many buckets per side, [`FloatHistogram::test_expression`]
/// does not fill the gaps between spans. Valid exponential histograms never
/// get near it (schema 8 covers every float in about 540,000 buckets); it
/// keeps absurd offsets from allocating gigabytes just to print a histogram.
const MAX_EXPRESSION_BUCKETS: u64 = 1 << 20;

impl FloatHistogram {
    /// Whether the histogram has custom bucket bounds.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// A copy as Prometheus's `Copy` makes it: a histogram with custom
    /// buckets loses the zero bucket and negative buckets it must not have.
    /// Arithmetic and printing work on such copies, so their results match.
    fn used_copy(&self) -> FloatHistogram {
        let mut c = self.clone();
        if c.uses_custom_buckets() {
            c.zero_threshold = 0.0;
            c.zero_count = 0.0;
            c.negative_spans.clear();
            c.negative_buckets.clear();
        }
        c
    }

    /// Parses one `{{…}}` histogram of the test notation (surrounding
    /// whitespace allowed), as Prometheus's series lexer and grammar read it:
    ///
    /// `{{`, then keys with values separated by whitespace, then `}}`
    /// (whitespace may precede `}}`, but follow `{{` only in `{{ }}`). A key
    /// is followed directly by `:` and its value: an integer for `schema`,
    /// `offset`, `n_offset`; a number for `sum`, `count`, `z_bucket` (with an
    /// optional `-`) and `z_bucket_w` (unsigned); `[numbers]` (at least one,
    /// whitespace-separated) for `buckets`, `n_buckets`, `custom_values`; one
    /// of `unknown`, `reset`, `not_reset`, `gauge` for `counter_reset_hint`.
    /// Keys and hints are case-insensitive, numbers are those of series values
    /// (`Inf` and `NaN` included, no `+`), and in a bucket list a `-` must be
    /// followed by digits, as Prometheus's bucket lexer requires. Each key may
    /// appear once; what is missing is zero (`count` is not derived from the
    /// buckets), an offset without buckets is ignored, and each side's buckets
    /// form one span.
    ///
    /// Like Prometheus, this does not validate the histogram; see
    /// [`FloatHistogram::validate`].
    pub fn parse_notation(s: &str) -> Result<FloatHistogram, HistogramError> {
        let trimmed = s.trim_matches(is_space);
        let (h, used) = parse_descriptor(trimmed).map_err(|(_, e)| e)?;
        match trimmed[used..].chars().next() {
            None => Ok(h),
            Some(ch) => Err(HistogramError::Unexpected {
                found: format!("character {ch:?}"),
                expected: "end of input",
            }),
        }
    }

    /// The histogram in the test notation, exactly as Prometheus's
    /// `TestExpression` prints it: compacted to one span per side, keys in a
    /// fixed order, zero values left out, floats as Go's `%g`.
    pub fn test_expression(&self) -> String {
        let mut m = self.used_copy();
        m.compact(0);
        let merge = |spans: &[Span], buckets: &[f64]| {
            let gaps: u64 = spans.iter().skip(1).map(|s| s.offset.max(0) as u64).sum();
            gaps.saturating_add(buckets.len() as u64) <= MAX_EXPRESSION_BUCKETS
        };
        if merge(&m.positive_spans, &m.positive_buckets)
            && merge(&m.negative_spans, &m.negative_buckets)
        {
            m.compact(usize::MAX);
        }
        let mut parts: Vec<String> = Vec::new();
        if m.schema != 0 {
            parts.push(format!("schema:{}", m.schema));
        }
        let mut float = |key: &str, v: f64| {
            if v != 0.0 {
                parts.push(format!("{key}:{}", format_float_g(v)));
            }
        };
        float("count", m.count);
        float("sum", m.sum);
        float("z_bucket", m.zero_count);
        float("z_bucket_w", m.zero_threshold);
        if m.uses_custom_buckets() {
            parts.push(format!("custom_values:{}", float_list(&m.custom_values)));
        }
        match m.counter_reset_hint {
            CounterResetHint::Unknown => {}
            CounterResetHint::Reset => parts.push("counter_reset_hint:reset".into()),
            CounterResetHint::NotReset => parts.push("counter_reset_hint:not_reset".into()),
            CounterResetHint::Gauge => parts.push("counter_reset_hint:gauge".into()),
        }
        // More than one span per side is left only where the notation cannot
        // express the histogram (see MAX_EXPRESSION_BUCKETS, or spans that do
        // not fit the buckets); every offset is then printed, as Prometheus's
        // loop would if it did not panic.
        for (spans, buckets, offset_key, buckets_key) in [
            (&m.positive_spans, &m.positive_buckets, "offset", "buckets"),
            (&m.negative_spans, &m.negative_buckets, "n_offset", "n_buckets"),
        ] {
            for s in spans.iter().filter(|s| s.offset != 0) {
                parts.push(format!("{offset_key}:{}", s.offset));
            }
            if !buckets.is_empty() {
                parts.push(format!("{buckets_key}:{}", float_list(buckets)));
            }
        }
        format!("{{{{{}}}}}", parts.join(" "))
    }

    /// `self * factor`, as Prometheus's `Mul`: every count, the sum and the
    /// zero bucket scale; a negative factor makes the result a gauge.
    pub fn scale(&self, factor: f64) -> FloatHistogram {
        let mut h = self.used_copy();
        h.mul_in_place(factor);
        h
    }

    /// In-place [`FloatHistogram::scale`].
    pub fn mul_in_place(&mut self, factor: f64) {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for b in self.positive_buckets.iter_mut().chain(&mut self.negative_buckets) {
            *b *= factor;
        }
        if factor < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// `self / scalar`, as Prometheus's `Div`. Dividing by zero leaves no
    /// buckets at all (and infinite or NaN totals).
    pub fn div(&self, scalar: f64) -> FloatHistogram {
        let mut h = self.used_copy();
        h.div_in_place(scalar);
        h
    }

    /// In-place [`FloatHistogram::div`].
    pub fn div_in_place(&mut self, scalar: f64) {
        self.zero_count /= scalar;
        self.count /= scalar;
        self.sum /= scalar;
        if scalar == 0.0 {
            self.positive_spans.clear();
            self.positive_buckets.clear();
            self.negative_spans.clear();
            self.negative_buckets.clear();
            return;
        }
        for b in self.positive_buckets.iter_mut().chain(&mut self.negative_buckets) {
            *b /= scalar;
        }
        if scalar < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// `self + other`, as Prometheus's `Add`: the result has the lower of the
    /// two schemas and the wider zero bucket; histograms with different
    /// custom bounds are added on the bounds they share. Mixing exponential
    /// and custom buckets is an error. The result is not compacted.
    pub fn add(&self, other: &FloatHistogram) -> Result<FloatHistogram, HistogramError> {
        let mut h = self.used_copy();
        h.add_in_place(other)?;
        Ok(h)
    }

    /// `self - other`, like [`FloatHistogram::add`]. The counter reset hint
    /// is combined as for addition; PromQL's `-` makes it a gauge afterwards.
    pub fn sub(&self, other: &FloatHistogram) -> Result<FloatHistogram, HistogramError> {
        let mut h = self.used_copy();
        h.sub_in_place(other)?;
        Ok(h)
    }

    /// In-place [`FloatHistogram::add`]. On error `self` is unchanged.
    pub fn add_in_place(&mut self, other: &FloatHistogram) -> Result<AddInfo, HistogramError> {
        self.combine(other, false)
    }

    /// In-place [`FloatHistogram::sub`]. On error `self` is unchanged.
    pub fn sub_in_place(&mut self, other: &FloatHistogram) -> Result<AddInfo, HistogramError> {
        self.combine(other, true)
    }

    fn combine(
        &mut self,
        other: &FloatHistogram,
        subtract: bool,
    ) -> Result<AddInfo, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::IncompatibleSchema);
        }
        // Prometheus trusts its operands here and would panic or corrupt
        // memory on inconsistent ones; checking first keeps every step below
        // in bounds and leaves `self` untouched on error.
        self.check_layout()?;
        other.check_layout()?;
        let mut info = AddInfo {
            counter_reset_collision: self.adjust_counter_reset(other),
            nhcb_bounds_reconciled: false,
        };
        // Prometheus's addBuckets takes the first span's offset for the index
        // of the first bucket, which an empty first span makes wrong.
        drop_leading_empty_spans(&mut self.positive_spans);
        drop_leading_empty_spans(&mut self.negative_spans);
        let sign = if subtract { -1.0 } else { 1.0 };
        if !self.uses_custom_buckets() {
            let other_zero_count = self.reconcile_zero_buckets(other);
            if subtract {
                self.zero_count -= other_zero_count;
            } else {
                self.zero_count += other_zero_count;
            }
        }
        if subtract {
            self.count -= other.count;
            self.sum -= other.sum;
        } else {
            self.count += other.count;
            self.sum += other.sum;
        }

        if self.uses_custom_buckets() {
            if custom_bounds_match(&self.custom_values, &other.custom_values) {
                add_buckets(
                    self.schema,
                    self.zero_threshold,
                    sign,
                    &mut self.positive_spans,
                    &mut self.positive_buckets,
                    &other.positive_spans,
                    &other.positive_buckets,
                );
            } else {
                info.nhcb_bounds_reconciled = true;
                let shared = intersect_custom_bounds(&self.custom_values, &other.custom_values);
                let (spans, buckets) = add_custom_buckets_with_mismatches(
                    sign,
                    (&self.positive_spans, &self.positive_buckets, &self.custom_values),
                    (&other.positive_spans, &other.positive_buckets, &other.custom_values),
                    &shared,
                );
                self.positive_spans = spans;
                self.positive_buckets = buckets;
                self.custom_values = shared;
            }
            return Ok(info);
        }

        let mut other_pos = (other.positive_spans.clone(), other.positive_buckets.clone());
        let mut other_neg = (other.negative_spans.clone(), other.negative_buckets.clone());
        if other.schema < self.schema {
            let pos = std::mem::take(&mut self.positive_spans);
            (self.positive_spans, self.positive_buckets) = reduce_resolution(
                &pos,
                &self.positive_buckets,
                self.schema,
                other.schema,
                Side::Positive,
            )?;
            let neg = std::mem::take(&mut self.negative_spans);
            (self.negative_spans, self.negative_buckets) = reduce_resolution(
                &neg,
                &self.negative_buckets,
                self.schema,
                other.schema,
                Side::Negative,
            )?;
            self.schema = other.schema;
        } else if other.schema > self.schema {
            other_pos = reduce_resolution(
                &other_pos.0,
                &other_pos.1,
                other.schema,
                self.schema,
                Side::Positive,
            )?;
            other_neg = reduce_resolution(
                &other_neg.0,
                &other_neg.1,
                other.schema,
                self.schema,
                Side::Negative,
            )?;
        }
        add_buckets(
            self.schema,
            self.zero_threshold,
            sign,
            &mut self.positive_spans,
            &mut self.positive_buckets,
            &other_pos.0,
            &other_pos.1,
        );
        add_buckets(
            self.schema,
            self.zero_threshold,
            sign,
            &mut self.negative_spans,
            &mut self.negative_buckets,
            &other_neg.0,
            &other_neg.1,
        );
        Ok(info)
    }

    /// What arithmetic needs of an operand: spans that agree with the
    /// buckets (no negative offsets after the first span, for exponential
    /// buckets; none at all for custom ones). Unknown schemas are accepted
    /// where Prometheus accepts them (their bucket bounds are approximate).
    fn check_layout(&self) -> Result<(), HistogramError> {
        if self.uses_custom_buckets() {
            for (n, s) in self.positive_spans.iter().enumerate() {
                if s.offset < 0 {
                    return Err(HistogramError::SpanNegativeOffset {
                        side: Side::Custom,
                        span: n + 1,
                        offset: s.offset,
                    });
                }
            }
            return check_spans(&self.positive_spans, self.positive_buckets.len(), Side::Custom);
        }
        check_spans(&self.positive_spans, self.positive_buckets.len(), Side::Positive)?;
        check_spans(&self.negative_spans, self.negative_buckets.len(), Side::Negative)
    }

    /// Prometheus's `adjustCounterReset`: the hint of a sum of two
    /// histograms. Returns whether "reset" met "not reset".
    fn adjust_counter_reset(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::*;
        match (self.counter_reset_hint, other.counter_reset_hint) {
            (a, b) if a == b => false,
            (Gauge, _) => false,
            (_, Gauge) => {
                self.counter_reset_hint = Gauge;
                false
            }
            (Unknown, _) => false,
            (_, Unknown) => {
                self.counter_reset_hint = Unknown;
                false
            }
            _ => {
                self.counter_reset_hint = Unknown;
                true
            }
        }
    }

    /// Widens both zero buckets (this one in place, the other's virtually)
    /// until they agree, never cutting through a populated bucket. Returns
    /// the zero count `other` would have with the agreed threshold.
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_zero_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        // Each round moves a threshold up to a bucket bound, so the buckets
        // bound the rounds; the cap only guards against NaN thresholds, on
        // which Prometheus would loop forever.
        let rounds = self.positive_buckets.len()
            + self.negative_buckets.len()
            + other.positive_buckets.len()
            + other.negative_buckets.len()
            + 2;
        for _ in 0..rounds {
            if other_threshold == self.zero_threshold
                || other_threshold.is_nan()
                || self.zero_threshold.is_nan()
            {
                break;
            }
            if self.zero_threshold > other_threshold {
                (other_zero_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                (self.zero_count, self.zero_threshold) =
                    self.zero_count_for_larger_threshold(other_threshold);
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_zero_count
    }

    /// The zero count this histogram would have with the zero threshold
    /// raised to `larger`, and the threshold itself, which moves up to the
    /// end of a populated bucket it would otherwise cut through.
    fn zero_count_for_larger_threshold(&self, larger: f64) -> (f64, f64) {
        if larger == self.zero_threshold {
            return (self.zero_count, larger);
        }
        let mut threshold = larger;
        let mut zero_count = self.zero_count;
        // Restarts happen only when the threshold grows to a negative
        // bucket's bound, so there are at most as many as negative buckets.
        'outer: for _ in 0..=self.negative_buckets.len() {
            zero_count = self.zero_count;
            for b in self.positive_buckets() {
                if b.lower >= threshold {
                    break;
                }
                zero_count += b.count;
                if b.upper > threshold {
                    if b.count != 0.0 {
                        threshold = b.upper;
                    }
                    break;
                }
            }
            for b in self.negative_buckets() {
                if b.upper <= -threshold {
                    break;
                }
                zero_count += b.count;
                if b.lower < -threshold {
                    if b.count != 0.0 {
                        threshold = -b.lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            break;
        }
        (zero_count, threshold)
    }

    /// Empties the buckets that now lie inside the zero bucket (their counts
    /// are already in the zero count) and compacts them away.
    fn trim_buckets_in_zero_bucket(&mut self) {
        let threshold = self.zero_threshold;
        let n = self.positive_buckets().take_while(|b| b.lower < threshold).count();
        for b in self.positive_buckets.iter_mut().take(n) {
            *b = 0.0;
        }
        let n = self.negative_buckets().take_while(|b| b.upper > -threshold).count();
        for b in self.negative_buckets.iter_mut().take(n) {
            *b = 0.0;
        }
        self.compact(0);
    }

    /// Prometheus's `Compact`: drops empty buckets at the edges of spans and
    /// runs of more than `max_empty_buckets` empty buckets inside them, then
    /// merges spans at most `max_empty_buckets` apart (filling the gap with
    /// empty buckets) and spans without a gap.
    pub fn compact(&mut self, max_empty_buckets: usize) -> &mut Self {
        compact_buckets(&mut self.positive_buckets, &mut self.positive_spans, max_empty_buckets);
        compact_buckets(&mut self.negative_buckets, &mut self.negative_spans, max_empty_buckets);
        self
    }

    /// Lowers the resolution to `target_schema` (which must be a lower
    /// exponential schema), merging buckets.
    pub fn reduce_resolution(&mut self, target_schema: i32) -> Result<(), HistogramError> {
        if self.uses_custom_buckets()
            || !is_exponential_schema(target_schema)
            || target_schema >= self.schema
        {
            return Err(HistogramError::CannotReduceResolution {
                from: self.schema,
                to: target_schema,
            });
        }
        let pos = reduce_resolution(
            &self.positive_spans,
            &self.positive_buckets,
            self.schema,
            target_schema,
            Side::Positive,
        )?;
        let neg = reduce_resolution(
            &self.negative_spans,
            &self.negative_buckets,
            self.schema,
            target_schema,
            Side::Negative,
        )?;
        (self.positive_spans, self.positive_buckets) = pos;
        (self.negative_spans, self.negative_buckets) = neg;
        self.schema = target_schema;
        Ok(())
    }

    /// Prometheus's `DetectReset`: whether this histogram, following
    /// `previous`, must be a counter reset. A "reset" or "not reset" hint
    /// decides; otherwise any count that went down, a bucket that vanished
    /// while populated, a higher resolution or a narrower zero bucket is one.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::Reset => return true,
            CounterResetHint::NotReset => return false,
            // Gauges are treated as counters here, as in Prometheus, which
            // lets `rate` over gauge histograms do something (with a warning).
            CounterResetHint::Unknown | CounterResetHint::Gauge => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() {
            if !previous.uses_custom_buckets() {
                return true;
            }
            if !custom_bounds_match(&self.custom_values, &previous.custom_values) {
                return self.detect_reset_with_mismatched_bounds(previous);
            }
        }
        if self.schema > previous.schema || self.zero_threshold < previous.zero_threshold {
            return true;
        }
        // Comparing a custom-bucket histogram with an exponential one on a
        // common schema is impossible; Prometheus's earlier checks make it
        // unreachable there too, except with unknown schemas.
        if previous.uses_custom_buckets() != self.uses_custom_buckets() {
            return true;
        }
        let (previous_zero_count, threshold) =
            previous.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < previous_zero_count {
            return true;
        }
        let (schema, start) = (self.schema, self.zero_threshold);
        buckets_reset(self.merged(true, schema, start), previous.merged(true, schema, start))
            || buckets_reset(
                self.merged(false, schema, start),
                previous.merged(false, schema, start),
            )
    }

    /// One side's buckets merged to `target` schema, from the first bucket
    /// that ends above `start`.
    fn merged(&self, positive: bool, target: i32, start: f64) -> MergedBuckets<'_> {
        let (spans, buckets) = if positive {
            (&self.positive_spans, &self.positive_buckets)
        } else {
            (&self.negative_spans, &self.negative_buckets)
        };
        MergedBuckets::new(spans, buckets, self.schema, target, start)
    }

    /// Reset detection between custom-bucket histograms with different
    /// bounds: compares cumulative counts at every bound both share.
    fn detect_reset_with_mismatched_bounds(&self, previous: &FloatHistogram) -> bool {
        let mut curr = self.positive_buckets().peekable();
        let mut prev = previous.positive_buckets().peekable();
        let rollup = |it: &mut Peekable<BucketIter<'_>>, bound: f64| {
            let mut sum = 0.0;
            while let Some(b) = it.next_if(|b| b.upper <= bound) {
                sum += b.count;
            }
            sum
        };
        // The implicit +Inf bucket is always shared.
        intersect_custom_bounds(&self.custom_values, &previous.custom_values)
            .into_iter()
            .chain([f64::INFINITY])
            .any(|bound| rollup(&mut curr, bound) < rollup(&mut prev, bound))
    }

    /// Prometheus's `Validate` for float histograms: spans must agree with
    /// the buckets, counts must not be negative, custom bounds must increase
    /// and cover the spans, and fields the schema does not use must be empty.
    /// Like Prometheus, it does not compare `count` with the bucket counts,
    /// which float rounding would make fail spuriously.
    pub fn validate(&self) -> Result<(), HistogramError> {
        if self.uses_custom_buckets() {
            check_custom_bounds(
                &self.custom_values,
                &self.positive_spans,
                self.positive_buckets.len(),
            )?;
            if self.zero_count != 0.0 {
                return Err(HistogramError::CustomBucketsZeroCount);
            }
            if self.zero_threshold != 0.0 {
                return Err(HistogramError::CustomBucketsZeroThreshold);
            }
            if !self.negative_spans.is_empty() {
                return Err(HistogramError::CustomBucketsNegativeSpans);
            }
            if !self.negative_buckets.is_empty() {
                return Err(HistogramError::CustomBucketsNegativeBuckets);
            }
        } else if is_exponential_schema(self.schema) {
            check_spans(&self.positive_spans, self.positive_buckets.len(), Side::Positive)?;
            check_spans(&self.negative_spans, self.negative_buckets.len(), Side::Negative)?;
            check_bucket_counts(&self.negative_buckets, Side::Negative)?;
            if self.zero_count < 0.0 {
                return Err(HistogramError::NegativeZeroCount(self.zero_count));
            }
            if !self.custom_values.is_empty() {
                return Err(HistogramError::ExponentialSchemaCustomBounds);
            }
        } else {
            return Err(HistogramError::InvalidSchema(self.schema));
        }
        if self.count < 0.0 {
            return Err(HistogramError::NegativeCount(self.count));
        }
        check_bucket_counts(&self.positive_buckets, Side::Positive)
    }

    /// The positive buckets (all buckets, with custom bounds) in ascending
    /// order, with their bounds.
    pub fn positive_buckets(&self) -> BucketIter<'_> {
        BucketIter {
            raw: RawBuckets::new(&self.positive_spans, &self.positive_buckets),
            schema: self.schema,
            custom_values: &self.custom_values,
            positive: true,
        }
    }

    /// The negative buckets from the zero bucket down, i.e. by ascending
    /// index and descending value.
    pub fn negative_buckets(&self) -> BucketIter<'_> {
        BucketIter {
            raw: RawBuckets::new(&self.negative_spans, &self.negative_buckets),
            schema: self.schema,
            custom_values: &[],
            positive: false,
        }
    }

    /// The positive buckets from the highest down to the zero bucket.
    pub fn positive_buckets_rev(&self) -> ReverseBucketIter<'_> {
        ReverseBucketIter::new(
            &self.positive_spans,
            &self.positive_buckets,
            self.schema,
            &self.custom_values,
            true,
        )
    }

    /// The negative buckets from the lowest up to the zero bucket.
    pub fn negative_buckets_rev(&self) -> ReverseBucketIter<'_> {
        ReverseBucketIter::new(
            &self.negative_spans,
            &self.negative_buckets,
            self.schema,
            &[],
            false,
        )
    }

    /// The zero bucket, `[-threshold, threshold]`; `None` with custom buckets.
    pub fn zero_bucket(&self) -> Option<Bucket> {
        if self.uses_custom_buckets() {
            return None;
        }
        Some(Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        })
    }

    /// Every bucket in ascending order of value: negative buckets, the zero
    /// bucket if it is populated, positive buckets. Bucket bounds that reach
    /// into the zero bucket are clipped to it, as in Prometheus's
    /// `AllBucketIterator` (what `histogram_quantile` walks).
    pub fn all_buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        let clip = self.zero_clipper();
        self.negative_buckets_rev()
            .map(clip)
            .chain(self.populated_zero_bucket())
            .chain(self.positive_buckets().map(clip))
    }

    /// Every bucket in descending order of value, clipped like
    /// [`FloatHistogram::all_buckets`].
    pub fn all_buckets_rev(&self) -> impl Iterator<Item = Bucket> + '_ {
        let clip = self.zero_clipper();
        self.positive_buckets_rev()
            .map(clip)
            .chain(self.populated_zero_bucket())
            .chain(self.negative_buckets().map(clip))
    }

    fn populated_zero_bucket(&self) -> Option<Bucket> {
        self.zero_bucket().filter(|z| z.count > 0.0)
    }

    fn zero_clipper(&self) -> impl Fn(Bucket) -> Bucket + Copy {
        let threshold = self.zero_threshold;
        move |mut b: Bucket| {
            if b.upper < 0.0 && b.upper > -threshold {
                b.upper = -threshold;
            } else if b.lower > 0.0 && b.lower < threshold {
                b.lower = threshold;
            }
            b
        }
    }
}

/// Removes empty spans at the start, moving their offsets to the first span
/// with buckets.
fn drop_leading_empty_spans(spans: &mut Vec<Span>) {
    let empty = spans.iter().take_while(|s| s.length == 0).count();
    if empty == 0 {
        return;
    }
    let carry = spans[..empty].iter().fold(0i32, |acc, s| acc.wrapping_add(s.offset));
    spans.drain(..empty);
    if let Some(first) = spans.first_mut() {
        first.offset = first.offset.wrapping_add(carry);
    }
}

/// `[a b c]` with Go's `%g` for each value.
fn float_list(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format_float_g(*v)).collect();
    format!("[{}]", items.join(" "))
}

fn custom_bounds_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The bounds two sets of custom bounds have in common.
fn intersect_custom_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x == y {
            out.push(x);
            i += 1;
            j += 1;
        } else if x < y {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Adds (`sign` 1) or subtracts (`sign` -1) custom-bucket histograms with
/// different bounds: each bucket goes to the first shared bound at or above
/// its own upper bound (or the +Inf bucket); empty results are dropped.
fn add_custom_buckets_with_mismatches(
    sign: f64,
    a: (&[Span], &[f64], &[f64]),
    b: (&[Span], &[f64], &[f64]),
    shared: &[f64],
) -> (Vec<Span>, Vec<f64>) {
    let mut sums = vec![0.0; shared.len() + 1];
    let mut comps = vec![0.0; shared.len() + 1];
    let mut map = |(spans, buckets, bounds): (&[Span], &[f64], &[f64]), sign: f64| {
        let mut src_idx: i64 = 0;
        let mut bucket_idx = 0;
        let mut shared_idx = 0;
        for span in spans {
            src_idx += i64::from(span.offset);
            for _ in 0..span.length {
                let Some(&value) = buckets.get(bucket_idx) else { return };
                let mut target = shared.len();
                if let Some(&bound) = usize::try_from(src_idx).ok().and_then(|i| bounds.get(i)) {
                    while let Some(&s) = shared.get(shared_idx) {
                        if s >= bound {
                            target = shared_idx;
                            break;
                        }
                        shared_idx += 1;
                    }
                }
                // Compensated as Go's `kahansum.Inc`: Prometheus's results use
                // only the sum, but whether a bucket counts as empty also
                // looks at the compensation.
                (sums[target], comps[target]) =
                    crate::promql::kahan::inc(sign * value, sums[target], comps[target]);
                src_idx += 1;
                bucket_idx += 1;
            }
        }
    };
    map(a, 1.0);
    map(b, sign);
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::new();
    let mut last: Option<usize> = None;
    for (i, (&v, &c)) in sums.iter().zip(&comps).enumerate() {
        if v == 0.0 && c == 0.0 {
            continue;
        }
        buckets.push(v);
        match (last, spans.last_mut()) {
            (Some(l), Some(s)) if i == l + 1 => s.length += 1,
            (Some(l), _) => spans.push(Span { offset: (i - l - 1) as i32, length: 1 }),
            (None, _) => spans.push(Span { offset: i as i32, length: 1 }),
        }
        last = Some(i);
    }
    (spans, buckets)
}

/// Checks that spans describe exactly `buckets` buckets and that no span but
/// the first has a negative offset.
fn check_spans(spans: &[Span], buckets: usize, side: Side) -> Result<(), HistogramError> {
    let mut need: u64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(HistogramError::SpanNegativeOffset { side, span: n + 1, offset: s.offset });
        }
        need += u64::from(s.length);
    }
    if need != buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch { side, need, have: buckets });
    }
    Ok(())
}

fn check_bucket_counts(buckets: &[f64], side: Side) -> Result<(), HistogramError> {
    match buckets.iter().position(|&c| c < 0.0) {
        Some(i) => {
            Err(HistogramError::NegativeBucketCount { side, bucket: i + 1, count: buckets[i] })
        }
        None => Ok(()),
    }
}

fn check_custom_bounds(
    bounds: &[f64],
    spans: &[Span],
    buckets: usize,
) -> Result<(), HistogramError> {
    let mut previous = f64::NEG_INFINITY;
    for (i, &b) in bounds.iter().enumerate() {
        if b.is_nan() {
            return Err(HistogramError::CustomBoundsNaN);
        }
        if i > 0 && b <= previous {
            return Err(HistogramError::CustomBoundsNotIncreasing { previous, current: b });
        }
        previous = b;
    }
    if previous == f64::INFINITY {
        return Err(HistogramError::CustomBoundsInfinite);
    }
    let mut need: u64 = 0;
    let mut span_length: i64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if s.offset < 0 {
            return Err(HistogramError::SpanNegativeOffset {
                side: Side::Custom,
                span: n + 1,
                offset: s.offset,
            });
        }
        need += u64::from(s.length);
        span_length += i64::from(s.length) + i64::from(s.offset);
    }
    if need != buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch {
            side: Side::Custom,
            need,
            have: buckets,
        });
    }
    if (bounds.len() as i64) + 1 < span_length {
        return Err(HistogramError::CustomBoundsTooFew { bounds: bounds.len(), span_length });
    }
    Ok(())
}

/// The upper bound of bucket `index` (the lower bound is that of `index-1`):
/// Prometheus's `getBound`. Exponential buckets are `(2^((i-1)/2^s), 2^(i/2^s)]`;
/// custom bucket `i` ends at `custom_values[i]`, the last one at +Inf.
/// Indexes outside the custom bounds give ±Inf instead of panicking.
pub fn bucket_bound(index: i32, schema: i32, custom_values: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        return match usize::try_from(index) {
            Ok(i) => custom_values.get(i).copied().unwrap_or(f64::INFINITY),
            Err(_) => f64::NEG_INFINITY,
        };
    }
    exponential_bound(index, schema)
}

/// The upper bound of exponential bucket `index`. The bucket just below the
/// one for ±Inf observations ends at the largest float rather than at +Inf.
///
/// Prometheus takes the mantissas `2^(i/2^schema)/2` from a table; computing
/// them with `exp2` gives bounds that can differ from it in the last bits
/// (a few ulps; powers of two are exact), far below what comparisons of
/// query results tolerate.
fn exponential_bound(index: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(index) << (-i64::from(schema)).min(32);
        if exp == 1024 {
            return f64::MAX;
        }
        return libm::ldexp(1.0, exp.clamp(-4000, 4000) as i32);
    }
    // Schemas above 8 are invalid; they get a bound (of a coarser grid)
    // only so that nothing panics on them.
    let schema = schema.min(30);
    let frac_idx = index & ((1 << schema) - 1);
    // 2^(frac_idx/2^schema) lies in [1, 2): its half is the mantissa.
    let frac = 0.5 * libm::exp2(f64::from(frac_idx) / f64::from(1u32 << schema));
    let exp = (i64::from(index) >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    libm::ldexp(frac, exp.clamp(-4000, 4000) as i32)
}

/// The index in `target` schema of the bucket holding bucket `index` of
/// `origin` schema.
fn target_index(index: i32, origin: i32, target: i32) -> i32 {
    let shift = (i64::from(origin) - i64::from(target)).clamp(0, 31) as u32;
    (index.wrapping_sub(1) >> shift).wrapping_add(1)
}

/// Merges buckets into the lower-resolution `target` schema. Errors on the
/// inconsistencies Prometheus reports here.
fn reduce_resolution(
    spans: &[Span],
    buckets: &[f64],
    origin: i32,
    target: i32,
    side: Side,
) -> Result<(Vec<Span>, Vec<f64>), HistogramError> {
    let mismatch = || HistogramError::SpansBucketsMismatch {
        side,
        need: spans.iter().map(|s| u64::from(s.length)).sum(),
        have: buckets.len(),
    };
    let mut out_spans: Vec<Span> = Vec::new();
    let mut out_buckets: Vec<f64> = Vec::new();
    let mut index: i32 = 0;
    let mut used = 0;
    let mut last_target: i64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(HistogramError::SpanNegativeOffset { side, span: n + 1, offset: s.offset });
        }
        index = index.wrapping_add(s.offset);
        for _ in 0..s.length {
            let Some(&count) = buckets.get(used) else { return Err(mismatch()) };
            let t = i64::from(target_index(index, origin, target));
            match (out_spans.last_mut(), out_buckets.last_mut()) {
                (None, _) | (_, None) => {
                    out_spans.push(Span { offset: t as i32, length: 1 });
                    out_buckets.push(count);
                    last_target = t;
                }
                (Some(_), Some(b)) if t == last_target => *b += count,
                (Some(span), Some(_)) if t == last_target + 1 => {
                    span.length += 1;
                    last_target = t;
                    out_buckets.push(count);
                }
                (Some(_), Some(_)) if t > last_target + 1 => {
                    out_spans.push(Span { offset: (t - last_target - 1) as i32, length: 1 });
                    last_target = t;
                    out_buckets.push(count);
                }
                // Only wrapped-around indexes go backwards; Prometheus drops
                // such buckets too.
                _ => {}
            }
            index = index.wrapping_add(1);
            used += 1;
        }
    }
    if used != buckets.len() {
        return Err(mismatch());
    }
    Ok((out_spans, out_buckets))
}

/// Prometheus's `addBuckets`: adds `sign` times the buckets of B into A,
/// inserting buckets and spans into A where B has buckets A lacks. Exponential
/// buckets of B at or below `threshold` (inside A's zero bucket) are skipped.
/// Both layouts must be consistent ([`FloatHistogram::check_layout`]); the
/// span structure of the result is Prometheus's, uncompacted.
fn add_buckets(
    schema: i32,
    threshold: f64,
    sign: f64,
    spans_a: &mut Vec<Span>,
    buckets_a: &mut Vec<f64>,
    spans_b: &[Span],
    buckets_b: &[f64],
) {
    // Position in A: the span, the bucket, the position in the span, and the
    // bucket index there. `None` until B's first bucket at or after A's first.
    let mut at: Option<(usize, usize, i64)> = None;
    let mut index_a: i64 = 0;
    let mut index_b: i64 = 0;
    let mut b_idx = 0;
    let mut below_threshold = true;
    for span_b in spans_b {
        index_b += i64::from(span_b.offset);
        for _ in 0..span_b.length {
            'bucket: {
                if below_threshold
                    && is_exponential_schema(schema)
                    && exponential_bound(index_b as i32, schema) <= threshold
                {
                    break 'bucket;
                }
                below_threshold = false;
                let Some(&b) = buckets_b.get(b_idx) else { return };
                let value = sign * b;
                let (mut i_span, mut i_bucket, mut i_in_span) = match at {
                    Some(p) => p,
                    None => {
                        let first = spans_a.first().map(|s| i64::from(s.offset));
                        match first {
                            Some(f) if f == index_b => {
                                if let Some(x) = buckets_a.first_mut() {
                                    *x += value;
                                }
                                break 'bucket;
                            }
                            Some(f) if f < index_b => {
                                index_a = f;
                                (0, 0, 0)
                            }
                            _ => {
                                // Before all of A's buckets.
                                buckets_a.insert(0, value);
                                if let Some(s) = spans_a.first_mut()
                                    && i64::from(s.offset) == index_b + 1
                                {
                                    s.length += 1;
                                    s.offset -= 1;
                                    break 'bucket;
                                }
                                spans_a.insert(0, Span { offset: index_b as i32, length: 1 });
                                if let Some(s) = spans_a.get_mut(1) {
                                    s.offset = (i64::from(s.offset) - (index_b + 1)) as i32;
                                }
                                break 'bucket;
                            }
                        }
                    }
                };
                let mut delta = index_b - index_a;
                loop {
                    let remaining = i64::from(spans_a[i_span].length) - i_in_span;
                    if delta < remaining {
                        i_bucket += delta as usize;
                        i_in_span += delta;
                        if let Some(x) = buckets_a.get_mut(i_bucket) {
                            *x += value;
                        }
                        break;
                    }
                    delta -= remaining;
                    i_bucket += remaining as usize;
                    i_span += 1;
                    match spans_a.get(i_span).map(|s| i64::from(s.offset)) {
                        Some(next_offset) if delta >= next_offset => {
                            // Try the start of the next span.
                            delta -= next_offset;
                            i_in_span = 0;
                        }
                        next_offset => {
                            // In the gap after the previous span.
                            buckets_a.insert(i_bucket.min(buckets_a.len()), value);
                            if delta == 0 {
                                // Directly after the previous span: extend it.
                                if let Some(s) = spans_a.get_mut(i_span) {
                                    s.offset -= 1;
                                }
                                i_span -= 1;
                                i_in_span = i64::from(spans_a[i_span].length);
                                spans_a[i_span].length += 1;
                            } else if next_offset == Some(delta + 1) {
                                // Directly before the next span: extend it.
                                i_in_span = 0;
                                spans_a[i_span].offset -= 1;
                                spans_a[i_span].length += 1;
                            } else {
                                i_in_span = 0;
                                if let Some(s) = spans_a.get_mut(i_span) {
                                    s.offset = (i64::from(s.offset) - (delta + 1)) as i32;
                                }
                                spans_a.insert(i_span, Span { offset: delta as i32, length: 1 });
                            }
                            break;
                        }
                    }
                }
                at = Some((i_span, i_bucket, i_in_span));
            }
            index_a = index_b;
            index_b += 1;
            b_idx += 1;
        }
    }
}

/// Prometheus's `compactBuckets` for absolute counts. Tolerates spans that do
/// not match the buckets (it then stops where either runs out).
fn compact_buckets(buckets: &mut Vec<f64>, spans: &mut Vec<Span>, max_empty: usize) {
    let nothing_to_do = buckets.iter().all(|&b| b != 0.0)
        && spans
            .iter()
            .all(|s| s.length != 0 && s.offset >= 0 && s.offset as u64 > max_empty as u64);
    if nothing_to_do {
        return;
    }

    // Merge spans without a gap, then drop empty spans (their offsets carry
    // over to the next), so that the loop below has fewer cases.
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        match merged.last_mut() {
            Some(last) if i > 0 && s.offset == 0 => {
                last.length = last.length.wrapping_add(s.length)
            }
            _ => merged.push(*s),
        }
    }
    let mut carry: i32 = 0;
    spans.clear();
    for s in merged {
        if s.length == 0 {
            carry = carry.wrapping_add(s.offset);
            continue;
        }
        spans.push(Span { offset: s.offset.wrapping_add(carry), length: s.length });
        carry = 0;
    }
    if spans.is_empty() {
        buckets.clear();
        return;
    }

    // Cut empty buckets from the edges of spans, and runs of more than
    // `max_empty` from their middles (splitting the span).
    let (mut ib, mut is, mut pos) = (0usize, 0usize, 0u32);
    while ib < buckets.len() && is < spans.len() {
        let span_len = spans[is].length;
        let mut n_empty = 0usize;
        while (pos as u64 + n_empty as u64) < u64::from(span_len)
            && buckets.get(ib + n_empty).is_some_and(|&b| b == 0.0)
        {
            n_empty += 1;
        }
        if n_empty == 0 {
            ib += 1;
            pos += 1;
            if pos >= span_len {
                pos = 0;
                is += 1;
            }
            continue;
        }
        if pos > 0 && (n_empty as u64) < u64::from(span_len - pos) && n_empty <= max_empty {
            // Few enough empty buckets inside a span: keep them.
            ib += n_empty;
            pos += n_empty as u32;
            continue;
        }
        buckets.drain(ib..ib + n_empty);
        if pos == 0 {
            if n_empty as u64 == u64::from(span_len) {
                let removed = spans.remove(is);
                if let Some(next) = spans.get_mut(is) {
                    next.offset =
                        next.offset.wrapping_add(removed.offset).wrapping_add(n_empty as i32);
                }
            } else {
                spans[is].length -= n_empty as u32;
                spans[is].offset = spans[is].offset.wrapping_add(n_empty as i32);
            }
            continue;
        }
        // Empty buckets in the middle or at the end of a span: split it.
        let rest = span_len - pos - n_empty as u32;
        spans[is].length = pos;
        is += 1;
        pos = 0;
        if rest == 0 {
            if let Some(next) = spans.get_mut(is) {
                next.offset = next.offset.wrapping_add(n_empty as i32);
            }
        } else {
            spans.insert(is, Span { offset: n_empty as i32, length: rest });
        }
    }
    if max_empty == 0 || buckets.is_empty() {
        return;
    }

    // Merge spans at most `max_empty` apart, filling the gap.
    let Some(first) = spans.first() else { return };
    let mut ib = first.length as usize;
    let mut is = 1;
    while is < spans.len() {
        let Span { offset, length } = spans[is];
        if offset < 0 || offset as u64 > max_empty as u64 {
            ib = ib.saturating_add(length as usize);
            is += 1;
            continue;
        }
        spans[is - 1].length =
            spans[is - 1].length.wrapping_add(offset as u32).wrapping_add(length);
        spans.remove(is);
        let at = ib.min(buckets.len());
        buckets.splice(at..at, std::iter::repeat_n(0.0, offset as usize));
        ib = at + offset as usize + length as usize;
    }
}

/// Prometheus's `detectReset` on two sides merged to a common schema.
fn buckets_reset(mut curr: MergedBuckets<'_>, mut prev: MergedBuckets<'_>) -> bool {
    let mut c = curr.next();
    for (p_idx, p_count) in prev.by_ref() {
        // Forward to the current bucket at or after the previous one.
        while let Some((c_idx, _)) = c {
            if c_idx >= p_idx {
                break;
            }
            c = curr.next();
        }
        match c {
            Some((c_idx, c_count)) if c_idx == p_idx => {
                if c_count < p_count {
                    return true;
                }
            }
            // The previous histogram has a bucket the current one lacks.
            _ => {
                if p_count != 0.0 {
                    return true;
                }
            }
        }
    }
    false
}

/// Walks spans and buckets: `(index, count)` at the original schema. Stops
/// where the spans or the buckets run out.
#[derive(Clone, Debug)]
struct RawBuckets<'a> {
    spans: &'a [Span],
    buckets: &'a [f64],
    span_idx: usize,
    in_span: u32,
    bucket_idx: usize,
    index: i32,
}

impl<'a> RawBuckets<'a> {
    fn new(spans: &'a [Span], buckets: &'a [f64]) -> Self {
        RawBuckets { spans, buckets, span_idx: 0, in_span: 0, bucket_idx: 0, index: 0 }
    }
}

impl Iterator for RawBuckets<'_> {
    type Item = (i32, f64);

    fn next(&mut self) -> Option<(i32, f64)> {
        let mut span = *self.spans.get(self.span_idx)?;
        let count = *self.buckets.get(self.bucket_idx)?;
        if self.bucket_idx == 0 {
            self.index = span.offset;
        } else {
            self.index = self.index.wrapping_add(1);
        }
        while self.in_span >= span.length {
            self.in_span = 0;
            self.span_idx += 1;
            span = *self.spans.get(self.span_idx)?;
            self.index = self.index.wrapping_add(span.offset);
        }
        self.in_span += 1;
        self.bucket_idx += 1;
        Some((self.index, count))
    }
}

/// Buckets merged to a lower `target` schema, skipping the exponential
/// buckets that end at or below `start` (the zero bucket's threshold).
struct MergedBuckets<'a> {
    raw: Peekable<RawBuckets<'a>>,
    schema: i32,
    target: i32,
    start: f64,
    reached_start: bool,
}

impl<'a> MergedBuckets<'a> {
    fn new(spans: &'a [Span], buckets: &'a [f64], schema: i32, target: i32, start: f64) -> Self {
        MergedBuckets {
            raw: RawBuckets::new(spans, buckets).peekable(),
            schema,
            // Custom buckets cannot be merged; keep them as they are.
            target: if schema == CUSTOM_BUCKETS_SCHEMA || target > schema {
                schema
            } else {
                target
            },
            start,
            reached_start: start == 0.0,
        }
    }
}

impl Iterator for MergedBuckets<'_> {
    type Item = (i32, f64);

    fn next(&mut self) -> Option<(i32, f64)> {
        loop {
            let (index, first) = self.raw.next()?;
            let (index, count) = if self.schema == self.target {
                (index, first)
            } else {
                let t = target_index(index, self.schema, self.target);
                let mut count = 0.0 + first;
                let (schema, target) = (self.schema, self.target);
                while let Some((_, c)) =
                    self.raw.next_if(|&(i, _)| target_index(i, schema, target) == t)
                {
                    count += c;
                }
                (t, count)
            };
            if !self.reached_start
                && is_exponential_schema(self.target)
                && exponential_bound(index, self.target) <= self.start
            {
                continue;
            }
            self.reached_start = true;
            return Some((index, count));
        }
    }
}

/// Bounds of bucket `index`, as Prometheus's iterators compute them.
fn bucket_at(index: i32, count: f64, schema: i32, custom_values: &[f64], positive: bool) -> Bucket {
    let upper = bucket_bound(index, schema, custom_values);
    let lower = bucket_bound(index.wrapping_sub(1), schema, custom_values);
    let (lower, upper) = if positive { (lower, upper) } else { (-upper, -lower) };
    let (lower_inclusive, upper_inclusive) = if schema == CUSTOM_BUCKETS_SCHEMA {
        (index == 0, true)
    } else {
        (lower < 0.0, upper > 0.0)
    };
    Bucket { lower, upper, lower_inclusive, upper_inclusive, count, index }
}

/// Buckets of one side in index order; see [`FloatHistogram::positive_buckets`].
#[derive(Clone, Debug)]
pub struct BucketIter<'a> {
    raw: RawBuckets<'a>,
    schema: i32,
    custom_values: &'a [f64],
    positive: bool,
}

impl Iterator for BucketIter<'_> {
    type Item = Bucket;

    fn next(&mut self) -> Option<Bucket> {
        let (index, count) = self.raw.next()?;
        Some(bucket_at(index, count, self.schema, self.custom_values, self.positive))
    }
}

/// Buckets of one side in reverse index order; see
/// [`FloatHistogram::positive_buckets_rev`].
#[derive(Clone, Debug)]
pub struct ReverseBucketIter<'a> {
    spans: &'a [Span],
    buckets: &'a [f64],
    schema: i32,
    custom_values: &'a [f64],
    positive: bool,
    /// Next span and bucket to read, and the position in that span, all
    /// counted from 1 so that 0 means exhausted.
    span_pos: usize,
    bucket_pos: usize,
    in_span: u32,
    index: i64,
}

impl<'a> ReverseBucketIter<'a> {
    fn new(
        spans: &'a [Span],
        buckets: &'a [f64],
        schema: i32,
        custom_values: &'a [f64],
        positive: bool,
    ) -> Self {
        let index = spans.iter().map(|s| i64::from(s.offset) + i64::from(s.length)).sum();
        ReverseBucketIter {
            spans,
            buckets,
            schema,
            custom_values,
            positive,
            span_pos: spans.len(),
            bucket_pos: buckets.len(),
            in_span: spans.last().map_or(0, |s| s.length),
            index,
        }
    }
}

impl Iterator for ReverseBucketIter<'_> {
    type Item = Bucket;

    fn next(&mut self) -> Option<Bucket> {
        if self.bucket_pos == 0 || self.span_pos == 0 {
            return None;
        }
        self.index -= 1;
        while self.in_span == 0 {
            let left = self.spans.get(self.span_pos - 1).map_or(0, |s| s.offset);
            self.span_pos -= 1;
            let span = self.spans.get(self.span_pos.checked_sub(1)?)?;
            self.in_span = span.length;
            self.index -= i64::from(left);
        }
        self.bucket_pos -= 1;
        self.in_span -= 1;
        let count = *self.buckets.get(self.bucket_pos)?;
        Some(bucket_at(self.index as i32, count, self.schema, self.custom_values, self.positive))
    }
}

/// Prometheus's lexer's whitespace.
fn is_space(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\r')
}

/// Prometheus's lexer's letters: ASCII letters and `_`.
fn is_alpha(ch: char) -> bool {
    ch.is_ascii_alphabetic() || ch == '_'
}

/// The keys of a histogram description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Schema,
    Sum,
    Count,
    ZeroBucket,
    ZeroBucketWidth,
    CustomValues,
    Buckets,
    Offset,
    NegativeBuckets,
    NegativeOffset,
    CounterResetHint,
}

impl Key {
    const ALL: [Key; 11] = [
        Key::Schema,
        Key::Sum,
        Key::Count,
        Key::ZeroBucket,
        Key::ZeroBucketWidth,
        Key::CustomValues,
        Key::Buckets,
        Key::Offset,
        Key::NegativeBuckets,
        Key::NegativeOffset,
        Key::CounterResetHint,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::Schema => "schema",
            Key::Sum => "sum",
            Key::Count => "count",
            Key::ZeroBucket => "z_bucket",
            Key::ZeroBucketWidth => "z_bucket_w",
            Key::CustomValues => "custom_values",
            Key::Buckets => "buckets",
            Key::Offset => "offset",
            Key::NegativeBuckets => "n_buckets",
            Key::NegativeOffset => "n_offset",
            Key::CounterResetHint => "counter_reset_hint",
        }
    }

    /// Keys are case-insensitive, as in Prometheus's lexer.
    fn from_word(word: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(word))
    }
}

/// The values given in one description, by key.
#[derive(Default)]
struct Descriptor {
    schema: Option<i32>,
    sum: Option<f64>,
    count: Option<f64>,
    zero_count: Option<f64>,
    zero_threshold: Option<f64>,
    custom_values: Option<Vec<f64>>,
    buckets: Option<Vec<f64>>,
    offset: Option<i32>,
    negative_buckets: Option<Vec<f64>>,
    negative_offset: Option<i32>,
    counter_reset_hint: Option<CounterResetHint>,
}

impl Descriptor {
    fn is_set(&self, key: Key) -> bool {
        match key {
            Key::Schema => self.schema.is_some(),
            Key::Sum => self.sum.is_some(),
            Key::Count => self.count.is_some(),
            Key::ZeroBucket => self.zero_count.is_some(),
            Key::ZeroBucketWidth => self.zero_threshold.is_some(),
            Key::CustomValues => self.custom_values.is_some(),
            Key::Buckets => self.buckets.is_some(),
            Key::Offset => self.offset.is_some(),
            Key::NegativeBuckets => self.negative_buckets.is_some(),
            Key::NegativeOffset => self.negative_offset.is_some(),
            Key::CounterResetHint => self.counter_reset_hint.is_some(),
        }
    }

    /// Prometheus's `buildHistogramFromMap`: whatever is not given is zero
    /// (`count` is not derived from the buckets), an offset without buckets
    /// is ignored, and the buckets of each side form one span.
    fn build(self) -> FloatHistogram {
        let side = |buckets: Option<Vec<f64>>, offset: Option<i32>| {
            let buckets = buckets.unwrap_or_default();
            if buckets.is_empty() {
                return (Vec::new(), buckets);
            }
            let length = u32::try_from(buckets.len()).unwrap_or(u32::MAX);
            (vec![Span { offset: offset.unwrap_or(0), length }], buckets)
        };
        let (positive_spans, positive_buckets) = side(self.buckets, self.offset);
        let (negative_spans, negative_buckets) = side(self.negative_buckets, self.negative_offset);
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint.unwrap_or_default(),
            schema: self.schema.unwrap_or(0),
            zero_threshold: self.zero_threshold.unwrap_or(0.0),
            zero_count: self.zero_count.unwrap_or(0.0),
            count: self.count.unwrap_or(0.0),
            sum: self.sum.unwrap_or(0.0),
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            custom_values: self.custom_values.unwrap_or_default(),
        }
    }
}

/// An error and the byte offset where it was found.
type ParseResult<T> = Result<T, (usize, HistogramError)>;

/// Parses the `{{…}}` at the start of `src` (syntax in
/// [`FloatHistogram::parse_notation`]). Returns the histogram and the bytes it
/// took (through the closing `}}`), or the byte offset of the error in `src`,
/// for the series parser to report a column.
pub(crate) fn parse_descriptor(src: &str) -> ParseResult<(FloatHistogram, usize)> {
    let mut p = DescriptorParser { src, pos: 0 };
    if !src.starts_with("{{") {
        let found = match p.peek() {
            None => "end of input".to_owned(),
            Some(ch) => format!("character {ch:?}"),
        };
        return Err((0, HistogramError::Unexpected { found, expected: "\"{{\"" }));
    }
    p.pos = 2;
    let mut d = Descriptor::default();
    if p.skip_space() {
        // Prometheus's grammar allows a space after `{{` only in `{{ }}`.
        return if p.eat("}}") {
            Ok((d.build(), p.pos))
        } else {
            Err(p.unexpected("\"}}\" (a histogram description must not start with a space)"))
        };
    }
    loop {
        if p.eat("}}") {
            return Ok((d.build(), p.pos));
        }
        p.item(&mut d)?;
        if !p.skip_space() && !p.rest().starts_with("}}") {
            return Err(p.unexpected("a space or \"}}\""));
        }
    }
}

struct DescriptorParser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> DescriptorParser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        while let Some(ch) = self.peek().filter(|&ch| is_space(ch)) {
            self.pos += ch.len_utf8();
        }
        self.pos > start
    }

    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|ch: char| !is_alpha(ch)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// "unexpected <what is here>"; the end of the input means the closing
    /// `}}` is missing, reported where the histogram starts.
    fn unexpected(&self, expected: &'static str) -> (usize, HistogramError) {
        match self.peek() {
            None => (0, HistogramError::Unterminated),
            Some(ch) => (
                self.pos,
                HistogramError::Unexpected { found: format!("character {ch:?}"), expected },
            ),
        }
    }

    fn item(&mut self, d: &mut Descriptor) -> ParseResult<()> {
        let start = self.pos;
        if !self.peek().is_some_and(is_alpha) {
            return Err(self.unexpected("a histogram description key, e.g. buckets:[5 10 7]"));
        }
        let word = self.word();
        let Some(key) = Key::from_word(word) else {
            return Err((start, HistogramError::UnknownKey(word.to_owned())));
        };
        if !self.eat(":") {
            if self.peek().is_none() {
                return Err((0, HistogramError::Unterminated));
            }
            return Err((self.pos, HistogramError::MissingColon(word.to_owned())));
        }
        if d.is_set(key) {
            return Err((start, HistogramError::DuplicateKey(key.name())));
        }
        match key {
            Key::Schema => d.schema = Some(self.integer(key)?),
            Key::Offset => d.offset = Some(self.integer(key)?),
            Key::NegativeOffset => d.negative_offset = Some(self.integer(key)?),
            Key::Sum => d.sum = Some(self.signed_number()?),
            Key::Count => d.count = Some(self.signed_number()?),
            Key::ZeroBucket => d.zero_count = Some(self.signed_number()?),
            Key::ZeroBucketWidth => d.zero_threshold = Some(self.number()?),
            Key::CustomValues => d.custom_values = Some(self.bucket_set()?),
            Key::Buckets => d.buckets = Some(self.bucket_set()?),
            Key::NegativeBuckets => d.negative_buckets = Some(self.bucket_set()?),
            Key::CounterResetHint => d.counter_reset_hint = Some(self.counter_reset_hint()?),
        }
        Ok(())
    }

    /// `-`? followed by an unsigned decimal integer (Go's `ParseUint(s, 10,
    /// 64)` of a number token), which must fit the field.
    fn integer(&mut self, key: Key) -> ParseResult<i32> {
        let start = self.pos;
        let negative = self.eat("-");
        let digits_start = self.pos;
        let bad =
            |text: &str| HistogramError::BadInteger { key: key.name(), text: text.to_owned() };
        match self.peek() {
            Some(ch) if ch.is_ascii_digit() => {}
            Some(ch) if is_alpha(ch) => return Err((digits_start, bad(self.word()))),
            _ => return Err(self.unexpected("an integer")),
        }
        let text = self.scan_number(digits_start)?;
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err((digits_start, bad(text)));
        }
        let out_of_range = || {
            (
                start,
                HistogramError::IntegerOutOfRange {
                    key: key.name(),
                    text: self.src[start..self.pos].to_owned(),
                },
            )
        };
        let magnitude: u64 = text.parse().map_err(|_| out_of_range())?;
        let value = if negative { -i128::from(magnitude) } else { i128::from(magnitude) };
        i32::try_from(value).map_err(|_| out_of_range())
    }

    /// A number with an optional `-` (no space between them).
    fn signed_number(&mut self) -> ParseResult<f64> {
        let negative = self.eat("-");
        let v = self.number()?;
        Ok(if negative { -v } else { v })
    }

    /// An unsigned number: digits as series values have them, or `Inf`/`NaN`.
    fn number(&mut self) -> ParseResult<f64> {
        let start = self.pos;
        match self.peek() {
            Some(ch) if ch.is_ascii_digit() => {
                let text = self.scan_number(start)?;
                number_value(text).map_err(|e| (start, e))
            }
            Some(ch) if is_alpha(ch) => {
                let word = self.word();
                if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
                    number_value(word).map_err(|e| (start, e))
                } else {
                    Err((
                        start,
                        HistogramError::Unexpected {
                            found: format!("identifier {word:?}"),
                            expected: "a number",
                        },
                    ))
                }
            }
            _ => Err(self.unexpected("a number")),
        }
    }

    /// Scans a number token at `start` (the current position) with the
    /// series lexer's rules.
    fn scan_number(&mut self, start: usize) -> ParseResult<&'a str> {
        let rest = self.rest();
        match notation::scan_series_number(rest) {
            Ok(len) => {
                self.pos += len;
                Ok(&rest[..len])
            }
            Err(len) => Err((start, HistogramError::BadNumber(rest[..len].to_owned()))),
        }
    }

    /// `[v v …]`: at least one number, separated by whitespace, optionally
    /// followed by whitespace before `]`.
    fn bucket_set(&mut self) -> ParseResult<Vec<f64>> {
        if !self.eat("[") {
            return Err(self.unexpected("\"[\""));
        }
        let mut out = Vec::new();
        loop {
            out.push(self.bucket_value()?);
            let spaced = self.skip_space();
            if self.eat("]") {
                return Ok(out);
            }
            if !spaced {
                return Err(self.unexpected("a space or \"]\""));
            }
        }
    }

    fn bucket_value(&mut self) -> ParseResult<f64> {
        let start = self.pos;
        if self.eat("-") {
            // Prometheus's bucket lexer scans a number right after the sign:
            // `-.5` is a number there, `-Inf` is not.
            let rest = self.rest();
            return match notation::scan_series_number(rest) {
                Ok(len) => {
                    self.pos += len;
                    number_value(&rest[..len]).map(|v| -v).map_err(|e| (start, e))
                }
                Err(len) => Err((
                    start,
                    HistogramError::BadNumber(self.src[start..self.pos + len].to_owned()),
                )),
            };
        }
        self.number()
    }

    fn counter_reset_hint(&mut self) -> ParseResult<CounterResetHint> {
        let start = self.pos;
        if !self.peek().is_some_and(is_alpha) {
            return Err(self.unexpected("unknown, reset, not_reset or gauge"));
        }
        let word = self.word();
        match word.to_ascii_lowercase().as_str() {
            "unknown" => Ok(CounterResetHint::Unknown),
            "reset" => Ok(CounterResetHint::Reset),
            "not_reset" => Ok(CounterResetHint::NotReset),
            "gauge" => Ok(CounterResetHint::Gauge),
            _ => Err((start, HistogramError::BadCounterResetHint(word.to_owned()))),
        }
    }
}

/// The value of a number token: Go's `ParseInt(s, 0, 64)`, then `ParseFloat`.
fn number_value(text: &str) -> Result<f64, HistogramError> {
    notation::series_number_value(text).map_err(|kind| match kind {
        NotationErrorKind::NumberOutOfRange(s) => HistogramError::NumberOutOfRange(s),
        _ => HistogramError::BadNumber(text.to_owned()),
    })
}

#[cfg(test)]
mod tests;
