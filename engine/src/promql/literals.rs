//! PromQL string literals are Go strings: byte strings, in which `\xNN` and
//! octal escapes stand for single bytes. `promql-parser` decodes such an escape
//! as the character U+00NN instead, so `"\xc3\xa9"` would become `"Ã©"` rather
//! than `"é"`, and `"\xff"` (not UTF-8 at all, which Prometheus rejects as a
//! label name) would pass as `"ÿ"`. Before parsing, literals with byte escapes
//! are decoded here the Go way and re-spelled with Unicode escapes the parser
//! reads correctly; literals that are not UTF-8 are refused, since no label
//! name or value can hold them.

use std::borrow::Cow;

use crate::gofmt;
use crate::notation;

use super::QueryError;
use super::positions::{Kind, Tok, tokenize};

/// The largest duration Prometheus can represent: an int64 count of
/// nanoseconds, about 292 years, in seconds.
const MAX_DURATION_SECONDS: f64 = i64::MAX as f64 / 1e9;

/// Refuses a plain number too large for a duration where the parser reads
/// one as seconds: `x[1e999]`, `x[5m:1e30]`, `x offset 1e20`. `promql-parser`
/// panics on those; Prometheus, whose durations are int64 nanoseconds,
/// reports them out of range, as this does.
pub(crate) fn check_duration_numbers(query: &str) -> Result<(), QueryError> {
    if !query.contains('[')
        && !query.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"offset"))
    {
        return Ok(());
    }
    let toks = tokenize(query);
    for (k, tok) in toks.iter().enumerate() {
        // After a subquery's colon the tokenizer keeps `:1e30` as one word.
        let (text, after_colon) = match tok.kind {
            Kind::Number => (tok.text, false),
            Kind::Ident if tok.text.len() > 1 && tok.text.starts_with(':') => {
                (&tok.text[1..], true)
            }
            _ => continue,
        };
        let Ok(seconds) = text.replace('_', "").parse::<f64>() else { continue };
        if seconds.abs() < MAX_DURATION_SECONDS {
            continue;
        }
        let mut before =
            toks[..k].iter().rev().skip_while(|t| matches!(t.kind, Kind::Minus | Kind::Plus));
        let in_duration = after_colon
            || match before.next() {
                Some(t) if t.kind == Kind::LBracket => true,
                Some(t) => t.kind == Kind::Ident && t.text.eq_ignore_ascii_case("offset"),
                None => false,
            };
        if in_duration {
            return Err(QueryError::Parse(format!(
                "parse error: duration out of range: {}",
                gofmt::quote(text)
            )));
        }
    }
    Ok(())
}

pub(crate) fn normalize(query: &str) -> Result<Cow<'_, str>, QueryError> {
    if !query.contains('\\') {
        return Ok(Cow::Borrowed(query));
    }
    let toks = tokenize(query);
    let mut out = String::new();
    let mut copied = 0;
    for (k, tok) in toks.iter().enumerate() {
        if tok.kind != Kind::Str || tok.text.starts_with('`') || !has_byte_escape(tok.text) {
            continue;
        }
        // A literal the Go rules reject is left for the parser to report.
        let Ok(bytes) = notation::unquote_bytes(tok.text) else { continue };
        match String::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(&query[copied..tok.start]);
                out.push_str(&gofmt::quote(&s));
                copied = tok.start + tok.text.len();
            }
            Err(e) => {
                let shown = gofmt::quote_bytes(e.as_bytes());
                return Err(if is_count_values_label(&toks, k) {
                    QueryError::Eval(format!("invalid label name {shown}"))
                } else {
                    QueryError::Parse(format!("string literal {shown} is not valid UTF-8"))
                });
            }
        }
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(query));
    }
    out.push_str(&query[copied..]);
    Ok(Cow::Owned(out))
}

/// Whether the literal has a `\x` or octal escape of a byte above 0x7f, the
/// only escapes the parser decodes differently from Go.
fn has_byte_escape(lit: &str) -> bool {
    let b = lit.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'x' if b
                    .get(i + 2)
                    .is_some_and(|d| matches!(d, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')) =>
                {
                    return true;
                }
                b'2'..=b'3' => return true,
                _ => {}
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Whether string token `k` is the label-name parameter of `count_values`,
/// where Prometheus reports an invalid string as an invalid label name.
fn is_count_values_label(toks: &[Tok], k: usize) -> bool {
    let is = |i: usize, kind: Kind| toks.get(i).is_some_and(|t| t.kind == kind);
    if k < 2 || !is(k - 1, Kind::LParen) {
        return false;
    }
    let mut j = k - 2;
    // `count_values by (a, b) ("x", ...)`: step back over the grouping clause.
    if is(j, Kind::RParen) {
        let mut depth = 0;
        loop {
            match toks[j].kind {
                Kind::RParen => depth += 1,
                Kind::LParen => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            if j == 0 {
                return false;
            }
            j -= 1;
        }
        if j < 2
            || !toks[j - 1].text.eq_ignore_ascii_case("by")
                && !toks[j - 1].text.eq_ignore_ascii_case("without")
        {
            return false;
        }
        j -= 2;
    }
    toks[j].kind == Kind::Ident && toks[j].text.eq_ignore_ascii_case("count_values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_escapes_decode_as_go_does() {
        let q = normalize(r#"x{a="\xc3\xa9"}"#).unwrap();
        let e = promql_parser::parser::parse(&q).unwrap();
        let promql_parser::parser::Expr::VectorSelector(vs) = e else { panic!() };
        assert_eq!(vs.matchers.matchers[0].value, "é");
    }

    #[test]
    fn plain_queries_are_untouched() {
        assert!(matches!(normalize(r#"x{a="\n\u00e9"}"#).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_utf8_is_refused_with_prometheus_words() {
        let err = normalize(r#"count_values("a\xc5z", x)"#).unwrap_err().to_string();
        assert_eq!(err, r#"invalid label name "a\xc5z""#);
        let err = normalize(r#"count_values by (b) ("a\xc5z", x)"#).unwrap_err().to_string();
        assert_eq!(err, r#"invalid label name "a\xc5z""#);
        let err =
            normalize(r#"label_replace(x, "\xff", "", "src", "(.*)")"#).unwrap_err().to_string();
        assert_eq!(err, r#"string literal "\xff" is not valid UTF-8"#);
    }
}
