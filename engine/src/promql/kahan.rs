//! Compensated summation, exactly as Prometheus performs it.
//!
//! Prometheus sums with the Kahan–Babuška–Neumaier algorithm in `sum`, `avg`,
//! `sum_over_time`, `avg_over_time`, the variance functions and linear
//! regression. Results must match Prometheus's to the last bit, so every place
//! that sums goes through [`inc`].

/// Adds `inc` to `sum` with compensation `c`; returns the new sum and
/// compensation. Once the sum overflows to ±Inf the compensation is dropped.
#[inline]
pub fn inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensates_cancellation() {
        let mut s = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            s = inc(v, s.0, s.1);
        }
        assert_eq!(s.0 + s.1, 2.0);
    }

    #[test]
    fn infinity_drops_compensation() {
        let (s, c) = inc(f64::INFINITY, 1.0, 0.5);
        assert!(s.is_infinite());
        assert_eq!(c, 0.0);
    }
}
