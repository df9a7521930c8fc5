//! Go's `strconv` number parsing, as Prometheus's test scripts inherit it:
//! every number token goes through `ParseInt(s, 0, 64)` and then
//! `ParseFloat(s, 64)`, so these accept exactly what Go accepts.

use super::ErrorKind;

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `strconv.ParseFloat(s, 64)`,
/// which is how Prometheus turns every number token of a test script into a value.
pub(super) fn go_number(s: &str) -> Result<f64, ErrorKind> {
    if let Some(i) = go_parse_int(s) {
        return Ok(i as f64);
    }
    go_parse_float(s)
}

/// `strconv.ParseInt(s, 0, 64)`: optional sign; `0x`, `0o`, `0b` or a bare
/// leading `0` (octal) choose the base; `_` may separate digits. `None` on any
/// error, including overflow (the caller then tries a float).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let b = body.as_bytes();
    let (radix, digits) = match b {
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'x') => (16, &body[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'o') => (8, &body[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'b') => (2, &body[2..]),
        [b'0', ..] => (8, &body[1..]),
        [] => return None,
        _ => (10, body),
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for ch in digits.chars() {
        if ch == '_' {
            underscores = true;
            continue;
        }
        let d = ch.to_digit(radix)?;
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    if underscores && !underscore_ok(body) {
        return None;
    }
    if neg {
        if n <= i64::MAX as u64 + 1 { Some((n as i64).wrapping_neg()) } else { None }
    } else {
        i64::try_from(n).ok()
    }
}

/// `strconv.ParseFloat(s, 64)`: optional sign, `Inf`/`Infinity` (any case),
/// `NaN` (any case, no sign), decimal with optional exponent, or hexadecimal
/// mantissa with a mandatory `p` exponent; `_` may separate digits. Values
/// beyond the float range are an error, as Go reports them.
fn go_parse_float(s: &str) -> Result<f64, ErrorKind> {
    let bad = || ErrorKind::BadNumber(s.to_owned());
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let sign = if neg { -1.0 } else { 1.0 };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Ok(sign * f64::INFINITY);
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    if body.contains('_') && !underscore_ok(body) {
        return Err(bad());
    }
    let clean: String = body.chars().filter(|&ch| ch != '_').collect();
    let bytes = clean.as_bytes();
    let v = if bytes.len() > 2 && bytes[0] == b'0' && bytes[1].eq_ignore_ascii_case(&b'x') {
        parse_hex_float(&clean[2..]).ok_or_else(bad)?
    } else {
        // Rust's float syntax is a superset of Go's decimal one only in the
        // spellings of infinity and NaN (handled above) and in signs, which Go
        // allows only at the start (stripped above) and in the exponent.
        let b = clean.as_bytes();
        let ok = b.iter().enumerate().all(|(i, &ch)| match ch {
            b'0'..=b'9' | b'.' | b'e' | b'E' => true,
            b'+' | b'-' => i > 0 && matches!(b[i - 1], b'e' | b'E'),
            _ => false,
        });
        if !ok {
            return Err(bad());
        }
        clean.parse::<f64>().map_err(|_| bad())?
    };
    if v.is_infinite() {
        return Err(ErrorKind::NumberOutOfRange(s.to_owned()));
    }
    Ok(sign * v)
}

/// The part of a hexadecimal float after `0x`: hex digits with at most one
/// `.`, then `p` and a signed decimal exponent of two.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = s.split_once(['p', 'P'])?;
    // i32::from_str takes one optional sign, exactly Go's exponent syntax.
    let exp: i32 = exp.parse().ok()?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // Accumulate up to 60 significant bits exactly; further digits only make
    // the value inexact (sticky bit), which the final rounding honours.
    let mut m: u64 = 0;
    let mut e2: i64 = i64::from(exp);
    let mut sticky = false;
    for (i, ch) in int_part.chars().chain(frac_part.chars()).enumerate() {
        let d = u64::from(ch.to_digit(16)?);
        let is_frac = i >= int_part.len();
        if m >> 56 == 0 {
            m = m << 4 | d;
            if is_frac {
                e2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !is_frac {
                e2 += 4;
            }
        }
    }
    if sticky {
        m |= 1;
    }
    // m < 2^60 converts to f64 with one rounding; scaling by a power of two is
    // exact unless the result is subnormal (then it may round twice, unlike Go)
    // or overflows (reported by the caller).
    Some(scale_by_power_of_two(m as f64, e2))
}

/// `x * 2^e` without intermediate overflow or underflow of the power itself.
fn scale_by_power_of_two(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 && x.is_finite() && x != 0.0 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 && x != 0.0 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    let e = e.clamp(-1100, 1100) as i32;
    x * 2f64.powi(e)
}

/// Go's `underscoreOK`: underscores only between digits (a base prefix
/// counts as a digit).
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    for &ch in &b[i..] {
        if ch.is_ascii_digit() || hex && ch.is_ascii_hexdigit() {
            saw = b'0';
        } else if ch == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}
