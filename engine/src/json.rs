//! JSON exactly as Prometheus's API writes it: sample values as strings in Go's
//! shortest float notation, timestamps as Unix seconds with at most three
//! decimals, label sets as objects. Written by hand rather than through
//! `serde_json::Value` because a range query's result can hold millions of
//! points, and because the browser build is smaller without a JSON library.
//! The host's HTTP API and the playground both write through here.

use std::fmt::Write;

use crate::gofmt::format_float_f;
use crate::histogram::FloatHistogram;
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

/// A native histogram as Prometheus's API writes it: count, sum, and the
/// populated buckets as `[boundaries, lower, upper, count]`, where
/// `boundaries` says which ends are inclusive (0: upper only, 1: lower only,
/// 2: neither, 3: both).
pub fn push_histogram(out: &mut String, h: &FloatHistogram) {
    out.push_str(r#"{"count":"#);
    push_value(out, h.count);
    out.push_str(r#","sum":"#);
    push_value(out, h.sum);
    let mut first = true;
    for b in h.all_buckets().filter(|b| b.count != 0.0) {
        out.push_str(if std::mem::take(&mut first) { r#","buckets":["# } else { "," });
        let boundaries = match (b.lower_inclusive, b.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        };
        let _ = write!(out, "[{boundaries},");
        push_value(out, b.lower);
        out.push(',');
        push_value(out, b.upper);
        out.push(',');
        push_value(out, b.count);
        out.push(']');
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

/// `[t, {histogram}]`.
pub fn push_histogram_point(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    push_timestamp(out, t);
    out.push(',');
    push_histogram(out, h);
    out.push(']');
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
                match &s.h {
                    None => {
                        out.push_str(r#","value":"#);
                        push_point(out, s.t, s.v);
                    }
                    Some(h) => {
                        out.push_str(r#","histogram":"#);
                        push_histogram_point(out, s.t, h);
                    }
                }
                out.push('}');
            });
        }
        Value::Matrix(series) => {
            out.push_str(r#""matrix","result":"#);
            push_list(&mut out, series, |out, s| {
                out.push_str(r#"{"metric":"#);
                push_labels(out, &s.labels);
                // Each kind only when present, as Prometheus writes them.
                if !s.points.is_empty() || s.histograms.is_empty() {
                    out.push_str(r#","values":"#);
                    push_points(out, &s.points);
                }
                if !s.histograms.is_empty() {
                    out.push_str(r#","histograms":"#);
                    push_list(out, &s.histograms, |out, p| push_histogram_point(out, p.t, &p.h));
                }
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

    #[test]
    fn native_histograms_like_prometheus() {
        use crate::histogram::Span;
        use crate::promql::{InstantSample, Series};
        use crate::sample::HistogramSample;
        use std::sync::Arc;
        // Schema 0: bucket i holds (2^(i-1), 2^i].
        let h = Arc::new(FloatHistogram {
            count: 6.0,
            sum: 7.5,
            zero_threshold: 0.001,
            zero_count: 1.0,
            positive_spans: vec![Span { offset: 0, length: 3 }],
            positive_buckets: vec![2.0, 0.0, 3.0],
            ..FloatHistogram::default()
        });
        let hist = r#"{"count":"6","sum":"7.5","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","2"],[0,"2","4","3"]]}"#;
        let labels = Labels::from_pairs(&[("__name__", "h")]);
        let vector = QueryResult {
            value: Value::Vector(vec![InstantSample {
                labels: labels.clone(),
                t: 1000,
                v: 0.0,
                h: Some(h.clone()),
            }]),
            warnings: vec![],
            infos: vec![],
        };
        assert_eq!(
            query_result(&vector),
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"h"}},"histogram":[1,{hist}]}}]}}}}"#
            )
        );
        let matrix = QueryResult {
            value: Value::Matrix(vec![Series {
                labels,
                points: vec![],
                histograms: vec![HistogramSample { t: 2000, h }],
            }]),
            warnings: vec![],
            infos: vec![],
        };
        let got = query_result(&matrix);
        assert_eq!(
            got,
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"__name__":"h"}},"histograms":[[2,{hist}]]}}]}}}}"#
            )
        );
        let _: serde_json::Value = serde_json::from_str(&got).unwrap();
    }
}
