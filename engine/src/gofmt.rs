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

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is also what `%v` and `%g`
/// print: shortest round-trip digits, in exponent form when the decimal
/// exponent is below -4 or at least 6 (Go fixes the precision for this choice
/// at 6 when printing the shortest form), so `1e6` prints as `1e+06`.
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
    let (neg, digits_part) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = digits_part.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
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

/// Why [`parse_float`] refused its input, as Go's `strconv` distinguishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatError {
    /// Not a number in Go's syntax.
    Syntax,
    /// A finite literal too large for a float (`1e400`).
    Range,
}

/// `strconv.ParseFloat(s, 64)`: optional sign, `Inf`/`Infinity` (any case),
/// `NaN` (any case, no sign), decimal with optional exponent, or hexadecimal
/// mantissa with a mandatory `p` exponent; `_` may separate digits. Values
/// beyond the float range are an error, as Go reports them.
pub fn parse_float(s: &str) -> Result<f64, FloatError> {
    let bad = || FloatError::Syntax;
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
        return Err(FloatError::Range);
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
pub(crate) fn underscore_ok(s: &str) -> bool {
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

/// Go's `strconv.IsPrint`, as approximated by [`quote`].
pub(crate) fn is_print(c: char) -> bool {
    is_go_printable(c)
}

/// Appends `c` escaped as Go's `strconv` quoting functions do inside a literal
/// delimited by `quote`; `ascii_only` escapes every non-ASCII character too
/// (`QuoteToASCII`).
fn push_escaped_rune(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_go_printable(c) {
            out.push(c);
            return;
        }
    } else if is_go_printable(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
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

/// Go's `strconv.QuoteToASCII`: like [`quote`], with every non-ASCII
/// character escaped.
pub fn quote_to_ascii(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        push_escaped_rune(&mut out, c, '"', true);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (and `QuoteRuneToASCII` when `ascii_only`): a
/// single-quoted character literal. Values that are not Unicode scalar values
/// print as U+FFFD, as Go does.
pub fn quote_rune(r: u32, ascii_only: bool) -> String {
    let c = char::from_u32(r).unwrap_or('\u{fffd}');
    let mut out = String::from("'");
    push_escaped_rune(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// Go's `strconv.CanBackquote`: whether `s` can be written as a raw string
/// literal (no backquote, no control character other than tab, no U+FEFF).
pub fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || (c >= ' ' && c != '`' && c != '\u{7f}' && c != '\u{feff}'))
}

/// Go's `strconv.UnquoteChar(s, quote)`: decodes the first character or escape
/// of `s` and returns its value and the rest of `s`, or `None` for Go's
/// "invalid syntax". `\x` and octal escapes yield byte values (below 256).
pub fn unquote_char(s: &str, quote: char) -> Option<(u32, &str)> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((c as u32, chars.as_str()));
    }
    let rest = chars.as_str();
    let e = *rest.as_bytes().first()?;
    let after = &rest[1..];
    let simple = match e {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(0xc),
        b'n' => Some(b'\n' as u32),
        b'r' => Some(b'\r' as u32),
        b't' => Some(b'\t' as u32),
        b'v' => Some(0xb),
        b'\\' => Some(b'\\' as u32),
        b'\'' | b'"' => {
            if e as char != quote {
                return None;
            }
            Some(e as u32)
        }
        _ => None,
    };
    if let Some(v) = simple {
        return Some((v, after));
    }
    let hex_len = match e {
        b'x' => 2,
        b'u' => 4,
        b'U' => 8,
        b'0'..=b'7' => {
            let digits = rest.as_bytes().get(..3)?;
            let mut v = 0u32;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = v * 8 + u32::from(d - b'0');
            }
            if v > 255 {
                return None;
            }
            return Some((v, &rest[3..]));
        }
        _ => return None,
    };
    let digits = after.get(..hex_len)?;
    let v = u32::from_str_radix(digits, 16).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if e != b'x' && char::from_u32(v).is_none() {
        return None;
    }
    Some((v, &after[hex_len..]))
}

/// Go's `strconv.Unquote`: the value of a Go string literal (double-quoted,
/// back-quoted or single-quoted character), or `None` for "invalid syntax".
/// Byte escapes above `\x7f` cannot live in a Rust string and become U+FFFD.
pub fn unquote(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 {
        return None;
    }
    let quote = bytes[0];
    if quote != bytes[bytes.len() - 1] {
        return None;
    }
    let body = &s[1..s.len() - 1];
    match quote {
        b'`' => {
            if body.contains('`') {
                return None;
            }
            Some(body.replace('\r', ""))
        }
        b'"' | b'\'' => {
            if quote == b'"' && body.contains('\n') {
                return None;
            }
            let mut out = String::with_capacity(body.len());
            let mut rest = body;
            let mut count = 0;
            while !rest.is_empty() {
                let (v, tail) = unquote_char(rest, quote as char)?;
                out.push(
                    char::from_u32(v)
                        .filter(|_| v < 0x80 || !is_byte_escape(rest))
                        .unwrap_or('\u{fffd}'),
                );
                rest = tail;
                count += 1;
                if quote == b'\'' && count > 1 {
                    return None;
                }
            }
            if quote == b'\'' && count != 1 {
                return None;
            }
            Some(out)
        }
        _ => None,
    }
}

/// Whether `s` starts with a `\x` or octal escape, which denote bytes.
fn is_byte_escape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 1 && b[0] == b'\\' && (b[1] == b'x' || (b'0'..=b'7').contains(&b[1]))
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x`, `0o`, `0b` or
/// leading-`0` octal, with `_` between digits.
pub fn parse_uint_base0(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let (radix, digits, prefixed) = if b[0] == b'0' && b.len() >= 2 {
        match b[1].to_ascii_lowercase() {
            b'x' => (16, &s[2..], true),
            b'o' => (8, &s[2..], true),
            b'b' => (2, &s[2..], true),
            _ => (8, &s[1..], true),
        }
    } else {
        (10, s, false)
    };
    if digits.contains('_') && !underscore_ok(s) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        // "0x" alone is invalid; "0" itself took the decimal branch.
        return if prefixed && !s[1..].starts_with(['x', 'X', 'o', 'O', 'b', 'B']) {
            Some(0)
        } else {
            None
        };
    }
    if clean.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then what
/// [`parse_uint_base0`] accepts, within the range of `i64`.
pub fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint_base0(body)?;
    if neg {
        if u > 1 << 63 {
            return None;
        }
        Some((u as i64).wrapping_neg())
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for the formats `b`, `e`,
/// `E`, `f`, `g`, `G`, `x` and `X`; a negative `prec` asks for the shortest
/// representation that round-trips. Rounding is exact, ties to even, as Go's.
pub fn format_float(v: f64, fmt: u8, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let neg = v.is_sign_negative();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let a = v.abs();
    match fmt {
        b'b' => {
            let bits = a.to_bits();
            let mut exp = ((bits >> 52) & 0x7ff) as i64;
            let mut mant = bits & ((1 << 52) - 1);
            if exp == 0 {
                exp += 1;
            } else {
                mant |= 1 << 52;
            }
            exp += -1023 - 52;
            let _ = write!(out, "{mant}p{}{exp}", if exp >= 0 { "+" } else { "" });
        }
        b'x' | b'X' => format_hex_float(&mut out, a, fmt, prec),
        b'f' if prec < 0 => {
            let _ = write!(out, "{a}");
        }
        b'f' => {
            let _ = write!(out, "{a:.*}", prec as usize);
        }
        b'e' | b'E' => {
            let (digits, dp) =
                decimal_digits(a, if prec < 0 { None } else { Some(prec as usize + 1) });
            let p = if prec < 0 { digits.len().saturating_sub(1) } else { prec as usize };
            push_exp_form(&mut out, &digits, dp, p, fmt);
        }
        b'g' | b'G' => {
            let shortest = prec < 0;
            let sig = if shortest { None } else { Some(prec.max(1) as usize) };
            let (digits, dp) = decimal_digits(a, sig);
            let nd = digits.len() as i64;
            let mut p = if shortest { nd } else { i64::from(prec.max(1)) };
            let mut eprec = p;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                push_exp_form(&mut out, &digits, dp, (p - 1).max(0) as usize, fmt + b'e' - b'g');
            } else {
                if p > dp {
                    p = nd;
                }
                push_fixed_form(&mut out, &digits, dp, (p - dp).max(0) as usize);
            }
        }
        _ => {
            // Go prints '%' followed by the format byte for an unknown format.
            out.push('%');
            out.push(fmt as char);
        }
    }
    out
}

/// The decimal digits of `a` (non-negative, finite) without trailing zeros,
/// and the decimal point position: `a = 0.d1d2... * 10^dp`. `significant`
/// rounds to that many digits; `None` gives the shortest round-trip digits.
/// Zero has no digits and `dp` 0, as in Go's `decimal`.
fn decimal_digits(a: f64, significant: Option<usize>) -> (Vec<u8>, i64) {
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let sci = match significant {
        Some(n) => format!("{a:.*e}", n.saturating_sub(1)),
        None => format!("{a:e}"),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

/// Go's `fmtE`: `d.ddde±dd` with `prec` digits after the point.
fn push_exp_form(out: &mut String, digits: &[u8], dp: i64, prec: usize, fmt: u8) {
    out.push(digits.first().map_or('0', |&d| d as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(digits.get(i).map_or('0', |&d| d as char));
        }
    }
    out.push(fmt as char);
    let exp = if digits.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.abs());
}

/// Go's `fmtF`: the integer part, then `prec` digits after the point.
fn push_fixed_form(out: &mut String, digits: &[u8], dp: i64, prec: usize) {
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(digits.get(i).map_or('0', |&d| d as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i64 {
            let j = dp + i - 1;
            out.push(if j >= 0 { digits.get(j as usize).map_or('0', |&d| d as char) } else { '0' });
        }
    }
}

/// Go's `fmtX`: `0x1.hhhhp±dd`, rounded (ties to even) to `prec` hex digits
/// when `prec` is in 0..15.
fn format_hex_float(out: &mut String, a: f64, fmt: u8, prec: i32) {
    let bits = a.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1 << 52;
    }
    exp -= 1023;
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = prec as u32 * 4;
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 16] = if fmt == b'X' { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    out.push('0');
    out.push(fmt as char);
    out.push((b'0' + ((mant >> 60) & 1) as u8) as char);
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    }
    out.push(if fmt == b'X' { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.abs());
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
        assert_eq!(format_float_g(999999.0), "999999");
        assert_eq!(format_float_g(1e6), "1e+06");
        assert_eq!(format_float_g(123456789.0), "1.23456789e+08");
        assert_eq!(format_float_g(608863452348.1149), "6.088634523481149e+11");
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
    fn openmetrics_float_format_matches_go() {
        let cases = [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-1.0, "-1.0"),
            (10.0, "10.0"),
            (0.25, "0.25"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (2.5e6, "2.5e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-5, "2.5e-05"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(format_openmetrics_float(v), want, "{v}");
        }
    }

    #[test]
    fn parse_float_like_go() {
        assert_eq!(parse_float("1e0"), Ok(1.0));
        assert_eq!(parse_float(".2"), Ok(0.2));
        assert_eq!(parse_float("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_float("-NaN"), Err(FloatError::Syntax));
        assert_eq!(parse_float("0x1p-2"), Ok(0.25));
        assert_eq!(parse_float("0x10p0"), Ok(16.0));
        assert_eq!(parse_float("0x10"), Err(FloatError::Syntax));
        assert_eq!(parse_float("1_000.5"), Ok(1000.5));
        assert_eq!(parse_float("1e400"), Err(FloatError::Range));
        assert_eq!(parse_float("Hello World"), Err(FloatError::Syntax));
        assert_eq!(parse_float(""), Err(FloatError::Syntax));
    }

    #[test]
    fn float_f_matches_go() {
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(0.5), "0.5");
        assert_eq!(format_float_f(-3.0), "-3");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
    }
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: shortest digits, always in
/// exponent form with an upper-case `E` and at least two exponent digits
/// (`1E+00`, `2.5E-07`), as promtool prints sample values.
pub fn format_float_e_upper(v: f64) -> String {
    format_float(v, b'E', -1)
}

#[cfg(test)]
mod format_e_tests {
    use super::*;

    #[test]
    fn upper_e_is_shortest_with_two_digit_exponent() {
        use super::format_float_e_upper as e;
        assert_eq!(e(1.0), "1E+00");
        assert_eq!(e(0.5), "5E-01");
        assert_eq!(e(1234.5), "1.2345E+03");
        assert_eq!(e(-2.5e-7), "-2.5E-07");
        assert_eq!(e(1e100), "1E+100");
        assert_eq!(e(0.0), "0E+00");
        assert_eq!(e(f64::INFINITY), "+Inf");
    }

    #[test]
    fn format_float_formats_like_go() {
        assert_eq!(format_float(1234567.0, b'g', 4), "1.235e+06");
        assert_eq!(format_float(1.5, b'g', 4), "1.5");
        assert_eq!(format_float(1000.0, b'g', 4), "1000");
        assert_eq!(format_float(100000.0, b'g', 4), "1e+05");
        assert_eq!(format_float(0.0, b'g', 4), "0");
        assert_eq!(format_float(-0.0, b'g', -1), "-0");
        assert_eq!(format_float(0.0001234, b'g', 3), "0.000123");
        assert_eq!(format_float(0.00001234, b'g', 3), "1.23e-05");
        assert_eq!(format_float(1e6, b'g', -1), "1e+06");
        assert_eq!(format_float(123456.0, b'G', 3), "1.23E+05");
        assert_eq!(format_float(1.23456, b'e', 2), "1.23e+00");
        assert_eq!(format_float(0.0, b'e', 3), "0.000e+00");
        assert_eq!(format_float(0.0, b'e', -1), "0e+00");
        assert_eq!(format_float(1e-300, b'e', 1), "1.0e-300");
        assert_eq!(format_float(0.125, b'f', 2), "0.12");
        assert_eq!(format_float(2.5, b'f', 0), "2");
        assert_eq!(format_float(-0.0, b'f', 2), "-0.00");
        assert_eq!(format_float(1.0, b'x', -1), "0x1p+00");
        assert_eq!(format_float(3.0, b'x', -1), "0x1.8p+01");
        assert_eq!(format_float(1.0, b'X', 3), "0X1.000P+00");
        assert_eq!(format_float(0.0, b'x', -1), "0x0p+00");
        assert_eq!(format_float(1.0, b'b', -1), "4503599627370496p-52");
        assert_eq!(format_float(f64::NAN, b'e', 3), "NaN");
        assert_eq!(format_float(f64::NEG_INFINITY, b'f', 3), "-Inf");
    }

    #[test]
    fn unquote_like_go() {
        assert_eq!(unquote(r#""a\tb\u00e9\x41""#).as_deref(), Some("a\tbéA"));
        assert_eq!(unquote("`a\\n`").as_deref(), Some("a\\n"));
        assert_eq!(unquote("'x'").as_deref(), Some("x"));
        assert_eq!(unquote("'xy'"), None);
        assert_eq!(unquote(r#""\q""#), None);
        assert_eq!(unquote(r#""\'""#), None);
        assert_eq!(unquote(r#""\400""#), None);
        assert_eq!(unquote_char(r"\101rest", '"'), Some((65, "rest")));
        assert_eq!(unquote_char(r"\ud800", '"'), None);
    }

    #[test]
    fn quote_variants_like_go() {
        assert_eq!(quote_to_ascii("é\n"), r#""\u00e9\n""#);
        assert_eq!(quote_rune(u32::from('\''), false), r"'\''");
        assert_eq!(quote_rune(0x263a, false), "'☺'");
        assert_eq!(quote_rune(0x263a, true), r"'\u263a'");
        assert_eq!(quote_rune(0x110000, false), "'\u{fffd}'");
        assert!(can_backquote("a\tb"));
        assert!(!can_backquote("a`b"));
    }

    #[test]
    fn parse_int_base0_like_go() {
        assert_eq!(parse_int_base0("0x1F"), Some(31));
        assert_eq!(parse_int_base0("017"), Some(15));
        assert_eq!(parse_int_base0("0o17"), Some(15));
        assert_eq!(parse_int_base0("0b101"), Some(5));
        assert_eq!(parse_int_base0("-1_000"), Some(-1000));
        assert_eq!(parse_int_base0("0"), Some(0));
        assert_eq!(parse_int_base0("089"), None);
        assert_eq!(parse_int_base0("0x"), None);
        assert_eq!(parse_int_base0("1__0"), None);
        assert_eq!(parse_int_base0("9223372036854775808"), None);
        assert_eq!(parse_int_base0("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_uint_base0("18446744073709551615"), Some(u64::MAX));
    }
}
