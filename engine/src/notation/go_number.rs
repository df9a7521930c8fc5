//! Go's `strconv` number parsing, as Prometheus's test scripts inherit it:
//! every number token goes through `ParseInt(s, 0, 64)` and then
//! `ParseFloat(s, 64)`, so these accept exactly what Go accepts.

use super::ErrorKind;
use crate::gofmt::{self, FloatError};

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `strconv.ParseFloat(s, 64)`,
/// which is how Prometheus turns every number token of a test script into a value.
pub(super) fn go_number(s: &str) -> Result<f64, ErrorKind> {
    if let Some(i) = go_parse_int(s) {
        return Ok(i as f64);
    }
    gofmt::parse_float(s).map_err(|e| match e {
        FloatError::Syntax => ErrorKind::BadNumber(s.to_owned()),
        FloatError::Range => ErrorKind::NumberOutOfRange(s.to_owned()),
    })
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
    if underscores && !gofmt::underscore_ok(body) {
        return None;
    }
    if neg {
        if n <= i64::MAX as u64 + 1 { Some((n as i64).wrapping_neg()) } else { None }
    } else {
        i64::try_from(n).ok()
    }
}
