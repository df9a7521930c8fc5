//! Text formatting that matches Go's standard library byte for byte.
//!
//! Prometheus prints label sets, error messages, JSON sample values and label
//! values produced by PromQL (`count_values`) with Go's `strconv`. Users compare
//! tocsin's output with Prometheus's, and conformance tests compare error texts, so
//! these few routines are reimplemented here once and used everywhere.

use std::fmt::Write;

/// Go's `strconv.Quote`: a double-quoted string literal with Go escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// Appends `strconv.Quote(s)` to `out`.
pub fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote` of a byte string: like [`quote`], with every byte
/// that is not part of valid UTF-8 written as `\xNN`.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        let q = quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Rust's std has no Unicode category
/// tables, so non-ASCII characters count as printable unless they are control,
/// format or separator characters we can name; that covers what appears in labels.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || (0x80..0xa0).contains(&u)
        || u == 0xad
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || (0xd800..=0xdfff).contains(&u)
        || u == 0xa0)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that
/// round-trips, never in exponent form. Used for `count_values` label values.
pub fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    // Rust's Display is the shortest round-trip representation without exponent,
    // which is exactly what Go's 'f' with precision -1 prints.
    format!("{v}")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as used by Prometheus's JSON API
/// and by `%v`/`String()` of sample values: shortest round-trip digits, exponent
/// form when the exponent is < -4 or >= 21.
pub fn format_float_g(v: f64) -> String {
    let mut out = String::new();
    format_float_g_into(&mut out, v);
    out
}

/// Appends [`format_float_g`] of `v` to `out`.
pub fn format_float_g_into(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // `{:e}` gives the shortest round-trip digits in scientific form, e.g.
    // "1.2345e-7"; from it we decide the layout Go's %g -1 would choose.
    let sci = format!("{v:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    // Go uses exponent form when exp < -4 || exp >= eprec, where eprec is the
    // number of digits, raised to 21 when it is smaller (shortest formatting).
    let (neg, digits_part) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = digits_part.chars().filter(|c| *c != '.').collect();
    let ndigits = digits.len() as i32;
    let eprec = if ndigits > 21 { ndigits } else { 21 };
    if exp < -4 || exp >= eprec {
        if neg {
            out.push('-');
        }
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Prometheus's `FormatOpenMetricsFloat`: like [`format_float_g`], but a
/// number without `.` or exponent gets a trailing `.0` (so `1` prints `1.0`).
pub fn format_openmetrics_float(v: f64) -> String {
    if v == 0.0 {
        return "0.0".to_owned();
    }
    let s = format_float_g(v);
    if v.is_nan() || v.is_infinite() || s.contains(['.', 'e']) { s } else { s + ".0" }
}

/// Go's `strconv.ParseFloat(s, 64)` for the inputs Prometheus feeds it (label
/// values such as `le`, exposition values): decimal and exponent forms,
/// `Inf`/`Infinity`/`NaN` in any case with an optional sign, hexadecimal
/// mantissa-exponent forms (`0x1p-2`), and `_` digit separators only where Go
/// allows them (with a base prefix).
pub fn parse_float(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        // Rust also accepts "infinity"/"inf"/"nan" case-insensitively, like Go.
        return Some(v);
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let hex = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))?;
    let hex: String = hex.chars().filter(|c| *c != '_').collect();
    // Go requires the binary exponent on hexadecimal floats.
    let i = hex.find(['p', 'P'])?;
    let (mant, exp) = (&hex[..i], hex[i + 1..].parse::<i32>().ok()?);
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int_part.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(quote("\u{1}"), r#""\x01""#);
        assert_eq!(quote("ünï"), "\"ünï\"");
        assert_eq!(quote("\u{200b}"), r#""\u200b""#);
    }

    #[test]
    fn quote_bytes_escapes_invalid_utf8() {
        assert_eq!(quote_bytes(b"a\xc5z"), r#""a\xc5z""#);
        assert_eq!(quote_bytes("é".as_bytes()), "\"é\"");
    }

    #[test]
    fn float_g_matches_go() {
        assert_eq!(format_float_g(1.0), "1");
        assert_eq!(format_float_g(0.1), "0.1");
        assert_eq!(format_float_g(1e21), "1e+21");
        assert_eq!(format_float_g(1e20), "100000000000000000000");
        assert_eq!(format_float_g(123456789.0), "123456789");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_g(-2.5e-7), "-2.5e-07");
        assert_eq!(format_float_g(f64::INFINITY), "+Inf");
        assert_eq!(format_float_g(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float_g(f64::NAN), "NaN");
        assert_eq!(format_float_g(-0.0), "-0");
        assert_eq!(format_float_g(1.7976931348623157e308), "1.7976931348623157e+308");
    }

    #[test]
    fn openmetrics_float() {
        assert_eq!(format_openmetrics_float(1.0), "1.0");
        assert_eq!(format_openmetrics_float(-0.0), "0.0");
        assert_eq!(format_openmetrics_float(0.25), "0.25");
        assert_eq!(format_openmetrics_float(1e21), "1e+21");
        assert_eq!(format_openmetrics_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn parse_float_like_go() {
        assert_eq!(parse_float("1e0"), Some(1.0));
        assert_eq!(parse_float(".2"), Some(0.2));
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_float("0x10p0"), Some(16.0));
        assert_eq!(parse_float("0x10"), None);
        assert_eq!(parse_float("Hello World"), None);
        assert_eq!(parse_float(""), None);
    }

    #[test]
    fn float_f_matches_go() {
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(0.5), "0.5");
        assert_eq!(format_float_f(-3.0), "-3");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
    }
}
