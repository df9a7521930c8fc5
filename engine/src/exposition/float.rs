//! Numbers in exposition text, parsed exactly as Prometheus parses them.
//!
//! Prometheus reads sample values with Go's `strconv.ParseFloat` after rejecting
//! `_`, `p` and `P` (so no Go digit separators and no hex floats). Rust's
//! `str::parse::<f64>` accepts the same decimal syntax and is correctly rounded
//! (Eisel-Lemire with a big-decimal fallback), but differs at the edges, which
//! are handled here first:
//! - Go spells specials `inf`, `infinity` (optionally signed) and `nan` (never
//!   signed), all case-insensitive; Rust also accepts a signed `nan`.
//! - Go reports a finite literal that overflows (`1e400`) as a range error,
//!   which fails the scrape in Prometheus; Rust returns infinity.
//!
//! Most values in real expositions are short decimals (`0`, `42`, `1.5e+06`),
//! so a Clinger fast path handles every literal whose digits fit in 2^53 and
//! whose decimal exponent is within ±22: both factors are then exact doubles
//! and one IEEE multiplication or division rounds correctly.

/// Why a number was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    Syntax,
    Range,
}

/// Exact powers of ten representable as doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a float as Prometheus's text parsers do (Go `ParseFloat` rules).
pub(crate) fn parse_float(s: &[u8]) -> Result<f64, NumberError> {
    match fast_prefix(s) {
        Some((v, len)) if len == s.len() => Ok(v),
        _ => slow_float(s),
    }
}

/// The Clinger fast path over the longest prefix of `s` that is a plain
/// decimal (`[+-]digits[.digits][e[+-]digits]`): its value and length, or
/// `None` to defer to the general parser, which also produces the error for
/// malformed input. Parsing a prefix lets the lexer read a value without
/// first scanning for the end of its token.
#[inline]
pub(crate) fn fast_prefix(s: &[u8]) -> Option<(f64, usize)> {
    let (neg, mut i) = match s.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let mut mant: u64 = 0;
    let mut digits = 0u32;
    let mut exp: i32 = 0;
    while digits <= 11
        && let Some(eight) = eight_digits(s, i)
    {
        mant = mant * 100_000_000 + eight;
        digits += 8;
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if digits == 19 {
            return None;
        }
        mant = mant * 10 + u64::from(d);
        digits += 1;
        i += 1;
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        // The same loops as for the integer part, plus the exponent step.
        // Kept apart on purpose: a shared helper measured ~10% slower here.
        while digits <= 11
            && let Some(eight) = eight_digits(s, i)
        {
            mant = mant * 100_000_000 + eight;
            digits += 8;
            exp -= 8;
            i += 8;
        }
        while let Some(&b) = s.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if digits == 19 {
                return None;
            }
            mant = mant * 10 + u64::from(d);
            digits += 1;
            exp -= 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        let exp_neg = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut e: i32 = 0;
        let mut exp_digits = 0;
        while let Some(&b) = s.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Saturate: anything this large leaves the fast path anyway.
            if e < 10_000 {
                e = e * 10 + i32::from(d);
            }
            exp_digits += 1;
            i += 1;
        }
        if exp_digits == 0 {
            return None;
        }
        exp += if exp_neg { -e } else { e };
    }
    let v = if mant == 0 {
        0.0
    } else {
        if mant > 1 << 53 {
            return None;
        }
        let m = mant as f64;
        match exp {
            0 => m,
            1..=22 => m * POW10[exp as usize],
            -22..=-1 => m / POW10[(-exp) as usize],
            _ => return None,
        }
    };
    Some((if neg { -v } else { v }, i))
}

/// The value of the eight ASCII digits at `s[i..i + 8]`, if they are all
/// digits: exposition values are often long digit runs (`1.23456789e+10`),
/// and this takes them eight at a time with a few multiplications instead of
/// one dependent multiply-add per digit (the technique of Lemire's
/// fast_float).
#[inline]
fn eight_digits(s: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = s.get(i..i + 8)?.try_into().ok()?;
    let v = u64::from_le_bytes(chunk);
    // Every byte is in '0'..='9' iff its high nibble is 3 and adding 6 does
    // not carry into it.
    let all_digits = (v & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030
        && (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030;
    if !all_digits {
        return None;
    }
    // Combine pairs, then quads, then the two halves; the first digit is the
    // lowest byte, so it ends up most significant.
    let v = v - 0x3030_3030_3030_3030;
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

#[cold]
fn slow_float(s: &[u8]) -> Result<f64, NumberError> {
    let (signed, neg, body) = match s.first() {
        Some(b'-') => (true, true, &s[1..]),
        Some(b'+') => (true, false, &s[1..]),
        _ => (false, false, s),
    };
    if body.first().is_some_and(u8::is_ascii_alphabetic) {
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Ok(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
        }
        if !signed && body.eq_ignore_ascii_case(b"nan") {
            return Ok(f64::NAN);
        }
        return Err(NumberError::Syntax);
    }
    let text = std::str::from_utf8(s).map_err(|_| NumberError::Syntax)?;
    let v: f64 = text.parse().map_err(|_| NumberError::Syntax)?;
    // Specials were handled above, so an infinity here is an overflow.
    if v.is_infinite() { Err(NumberError::Range) } else { Ok(v) }
}

/// Parses the Prometheus text format's timestamp: decimal digits only (the
/// lexer admits no sign), in milliseconds.
pub(crate) fn parse_millis(digits: &[u8]) -> Result<i64, NumberError> {
    if digits.is_empty() {
        return Err(NumberError::Syntax);
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(NumberError::Syntax);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d)))
            .ok_or(NumberError::Range)?;
    }
    Ok(v)
}

/// Parses an OpenMetrics timestamp (float seconds) into milliseconds,
/// truncating toward zero as Prometheus's `int64(ts * 1000)` does.
pub(crate) fn parse_seconds_as_millis(s: &[u8]) -> Result<i64, NumberError> {
    let secs = parse_float(s)?;
    if !secs.is_finite() {
        return Err(NumberError::Syntax);
    }
    let ms = secs * 1000.0;
    // Go's conversion of an out-of-range float is undefined; refuse instead.
    if !(-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&ms) {
        return Err(NumberError::Range);
    }
    Ok(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(s: &str) -> Result<f64, NumberError> {
        parse_float(s.as_bytes())
    }

    #[test]
    fn plain_decimals() {
        assert_eq!(f("0"), Ok(0.0));
        assert_eq!(f("42"), Ok(42.0));
        assert_eq!(f("-1.5"), Ok(-1.5));
        assert_eq!(f("+2"), Ok(2.0));
        assert_eq!(f("1."), Ok(1.0));
        assert_eq!(f(".5"), Ok(0.5));
        assert_eq!(f("1.2345678e+06"), Ok(1_234_567.8));
        assert_eq!(f("4.9351e-05"), Ok(4.9351e-05));
        assert_eq!(f("7.424100000000001e-05"), Ok(7.424100000000001e-05));
        assert_eq!(f("1E3"), Ok(1000.0));
        assert_eq!(f("5.e3"), Ok(5000.0));
        assert!(f("-0").unwrap().is_sign_negative());
        assert_eq!(f("0e99999999"), Ok(0.0));
        assert_eq!(f("1e-400"), Ok(0.0));
        assert_eq!(f("123456789012345678901234567890"), Ok(1.2345678901234568e29));
        assert_eq!(f("1.7976931348623157e308"), Ok(f64::MAX));
    }

    #[test]
    fn eight_digits_at_a_time() {
        assert_eq!(eight_digits(b"12345678", 0), Some(12_345_678));
        assert_eq!(eight_digits(b"x00000001", 1), Some(1));
        assert_eq!(eight_digits(b"99999999", 0), Some(99_999_999));
        assert_eq!(eight_digits(b"1234567", 0), None);
        for bad in
            [b"1234567/", b"1234567:", b"1234.678", b"12345 78", b"\x001234567", b"123456\xff7"]
        {
            assert_eq!(eight_digits(bad, 0), None, "{bad:?}");
        }
        assert_eq!(f("1234567890123456789"), Ok(1_234_567_890_123_456_789.0));
        assert_eq!(f("0.12345678901234567"), Ok(0.123_456_789_012_345_67));
    }

    #[test]
    fn specials_follow_go() {
        for s in ["Inf", "+Inf", "inf", "INF", "+inf", "Infinity", "+infinity", "iNfInItY"] {
            assert_eq!(f(s), Ok(f64::INFINITY), "{s}");
        }
        for s in ["-Inf", "-inf", "-Infinity"] {
            assert_eq!(f(s), Ok(f64::NEG_INFINITY), "{s}");
        }
        for s in ["NaN", "nan", "NAN", "nAn"] {
            assert!(f(s).unwrap().is_nan(), "{s}");
        }
        // Go rejects a signed NaN and partial spellings.
        for s in ["+NaN", "-nan", "in", "infin", "infinityy", "nana", "true", "e5", "E"] {
            assert_eq!(f(s), Err(NumberError::Syntax), "{s}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for s in [
            "", "+", "-", ".", "1e", "1e+", "1_000", "0x1p-3", "0x10", "1.2.3", " 1", "1 ", "1\r",
            "--1", "\u{e9}",
        ] {
            assert_eq!(f(s), Err(NumberError::Syntax), "{s:?}");
        }
        assert_eq!(f("1e400"), Err(NumberError::Range));
        assert_eq!(f("-1e400"), Err(NumberError::Range));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_millis(b"0"), Ok(0));
        assert_eq!(parse_millis(b"1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_millis(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_millis(b"9223372036854775808"), Err(NumberError::Range));
        assert_eq!(parse_millis(b""), Err(NumberError::Syntax));
        assert_eq!(parse_millis(b"1a"), Err(NumberError::Syntax));
        assert_eq!(parse_seconds_as_millis(b"1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_seconds_as_millis(b"-1.5"), Ok(-1500));
        // Truncates like Go's int64(float): 1.001 * 1000 = 1000.9999999999999.
        assert_eq!(parse_seconds_as_millis(b"1.001"), Ok(1000));
        assert_eq!(parse_seconds_as_millis(b"NaN"), Err(NumberError::Syntax));
        assert_eq!(parse_seconds_as_millis(b"+Inf"), Err(NumberError::Syntax));
        assert_eq!(parse_seconds_as_millis(b"1e300"), Err(NumberError::Range));
    }

    proptest! {
        // The fast path must agree bit for bit with the general parser.
        #[test]
        fn fast_path_is_exact(m in 0u64..(1 << 53), e in -22i32..=22, neg: bool, style in 0..3) {
            let text = match style {
                0 => format!("{}{m}e{e}", if neg { "-" } else { "" }),
                1 => format!("{}{m}E{e:+}", if neg { "-" } else { "" }),
                _ => {
                    let digits = m.to_string();
                    let split = (e.unsigned_abs() as usize).min(digits.len());
                    format!("{}.{}", &digits[..split], &digits[split..])
                }
            };
            let want: f64 = text.parse().unwrap();
            prop_assert_eq!(f(&text).unwrap().to_bits(), want.to_bits(), "{}", text);
        }

        #[test]
        fn round_trips_every_finite_double(bits: u64) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            for text in [format!("{v}"), format!("{v:e}"), format!("{v:?}")] {
                prop_assert_eq!(f(&text).unwrap().to_bits(), v.to_bits(), "{}", text);
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = f(&s);
            let _ = parse_millis(s.as_bytes());
            let _ = parse_seconds_as_millis(s.as_bytes());
        }
    }
}
