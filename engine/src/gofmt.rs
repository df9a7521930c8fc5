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
    fn float_f_matches_go() {
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(0.5), "0.5");
        assert_eq!(format_float_f(-3.0), "-3");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
    }
}
