//! JSON exactly as Prometheus's API writes it: sample values as strings in Go's
//! shortest float notation, timestamps as Unix seconds with at most three
//! decimals, label sets as objects. Written by hand rather than through
//! `serde_json::Value` because a range query's result can hold millions of
//! points, and because the browser build is smaller without a JSON library.
//! The host's HTTP API and the playground both write through here.

use std::fmt::Write;

use crate::gofmt::format_float_f;
use crate::labels::Labels;
use crate::promql::{QueryResult, Value};
use crate::sample::Sample;

pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // Go's encoder escapes these for HTML safety; so does Prometheus's output.
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Milliseconds as Unix seconds: `1435781451.781`, `1435781451.78`, `1435781451`.
pub fn push_timestamp(out: &mut String, ms: i64) {
    let neg = ms < 0;
    let abs = ms.unsigned_abs();
    if neg {
        out.push('-');
    }
    let _ = write!(out, "{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let mut digits = format!("{frac:03}");
        while digits.ends_with('0') {
            digits.pop();
        }
        out.push('.');
        out.push_str(&digits);
    }
}

/// A sample value as Prometheus writes it: a string, `NaN`, `+Inf`, `-Inf`.
pub fn push_value(out: &mut String, v: f64) {
    out.push('"');
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        out.push_str(&format_float_f(v));
    }
    out.push('"');
}

/// A plain JSON number, `null` for NaN and ±Inf (which JSON cannot carry):
/// for charts, where a gap is the honest rendering.
pub fn push_number(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

pub fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push(',');
    push_value(out, v);
    out.push(']');
}

pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &l.name);
        out.push(':');
        push_str(out, &l.value);
    }
    out.push('}');
}

/// A JSON array of `items`, each written by `f`.
pub fn push_list<T>(out: &mut String, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        f(out, item);
    }
    out.push(']');
}

pub fn push_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    push_list(out, items, |out, s| push_str(out, s.as_ref()));
}

fn push_points(out: &mut String, points: &[Sample]) {
    push_list(out, points, |out, p| push_point(out, p.t, p.v));
}

/// `{"status":"success","data":{"resultType":…,"result":…}}` plus the
/// warnings and infos PromQL attached.
pub fn query_result(result: &QueryResult) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"status":"success","data":{"resultType":"#);
    match &result.value {
        Value::Scalar { t, v } => {
            out.push_str(r#""scalar","result":"#);
            push_point(&mut out, *t, *v);
        }
        Value::String { t, s } => {
            out.push_str(r#""string","result":["#);
            push_timestamp(&mut out, *t);
            out.push(',');
            push_str(&mut out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#""vector","result":"#);
            push_list(&mut out, samples, |out, s| {
                out.push_str(r#"{"metric":"#);
                push_labels(out, &s.labels);
                out.push_str(r#","value":"#);
                push_point(out, s.t, s.v);
                out.push('}');
            });
        }
        Value::Matrix(series) => {
            out.push_str(r#""matrix","result":"#);
            push_list(&mut out, series, |out, s| {
                out.push_str(r#"{"metric":"#);
                push_labels(out, &s.labels);
                out.push_str(r#","values":"#);
                push_points(out, &s.points);
                out.push('}');
            });
        }
    }
    out.push('}');
    if !result.warnings.is_empty() {
        out.push_str(r#","warnings":"#);
        push_str_array(&mut out, &result.warnings);
    }
    if !result.infos.is_empty() {
        out.push_str(r#","infos":"#);
        push_str_array(&mut out, &result.infos);
    }
    out.push('}');
    out
}

/// `{"status":"success","data":DATA}` around already-encoded data.
pub fn success(data: &str) -> String {
    format!(r#"{{"status":"success","data":{data}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_prometheus() {
        let cases = [
            (1_435_781_451_781, "1435781451.781"),
            (1_435_781_451_780, "1435781451.78"),
            (1_435_781_451_000, "1435781451"),
            (5, "0.005"),
            (-1_500, "-1.5"),
            (0, "0"),
        ];
        for (ms, want) in cases {
            let mut s = String::new();
            push_timestamp(&mut s, ms);
            assert_eq!(s, want, "{ms}");
        }
    }

    #[test]
    fn values_like_prometheus() {
        let cases = [
            (1.0, "\"1\""),
            (0.1, "\"0.1\""),
            (1e21, "\"1000000000000000000000\""),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"+Inf\""),
            (f64::NEG_INFINITY, "\"-Inf\""),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            push_value(&mut s, v);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\n<d>&\u{1}");
        assert_eq!(s, r#""a\"b\\c\n\u003cd\u003e\u0026\u0001""#);
        // Whatever we write must be valid JSON that decodes to the input.
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n<d>&\u{1}");
    }
}
