//! Samples: a millisecond timestamp and a float value (or, for native
//! histograms, a histogram).

/// Bit pattern of the NaN that marks a series as stale (Prometheus's
/// `value.StaleNaN`). Ordinary NaN values are data; this one means "the series
/// ended here" and is never returned by a query.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the staleness marker (and not an ordinary NaN).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample. Timestamps are milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Bit-exact equality, under which NaN equals itself and the staleness
    /// marker differs from an ordinary NaN.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// One native histogram sample. The histogram is shared: a selection hands
/// out the stored value without copying its buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: std::sync::Arc<crate::histogram::FloatHistogram>,
}

/// Prometheus's `almost.Equal`: equal, or both NaN (but the staleness marker
/// only equals itself), or within `epsilon` relative to the sum of magnitudes
/// (absolute, scaled to the smallest normal float, near zero). Used where
/// Prometheus tolerates floating-point noise: histogram buckets, test
/// expectations.
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_distinct_from_nan() {
        assert!(STALE_NAN.is_nan());
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
        assert!(!Sample::new(1, f64::NAN).bit_eq(&Sample::new(1, STALE_NAN)));
        assert!(Sample::new(1, f64::NAN).bit_eq(&Sample::new(1, f64::NAN)));
    }
}
