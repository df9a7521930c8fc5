//! promtool's "expanding notation" for series: the `load` lines of PromQL test
//! scripts and the `input_series` of `promtool test rules`.
//!
//! A series description is a metric followed by whitespace-separated values:
//!
//! ```text
//! http_requests{job="api", "utf8.name"="x"} 1 _ 3+2x4 10-1x2 _x3 stale Inf -NaN 5x2
//! ```
//!
//! | item     | values                                                       |
//! |----------|--------------------------------------------------------------|
//! | `a`      | one value `a`: a number, `±Inf`, `NaN`, or `stale`           |
//! | `_`      | one step without a sample                                    |
//! | `_xn`    | `n` steps without samples                                    |
//! | `axn`    | `n+1` copies of `a`                                          |
//! | `a+bxn`  | `n+1` values `a, a+b, …, a+n·b` (repeated addition, as Go)   |
//! | `a-bxn`  | `n+1` values `a, a-b, …, a-n·b`                              |
//! | `{{h}}`  | one native histogram sample `h`                              |
//! | `{{h}}xn`| `n+1` copies of `h`                                          |
//! | `{{a}}+{{b}}xn` | `n+1` histograms `a, a+b, …` (repeated addition)      |
//! | `{{a}}-{{b}}xn` | `n+1` histograms `a, a-b, …` (repeated subtraction)   |
//!
//! The metric is `name{labels}` or `{labels}`. Label values are PromQL string
//! literals (`"…"` or `'…'` with Go escapes, or raw `` `…` ``); label names may
//! be quoted UTF-8 (Prometheus 3), and a lone quoted name in the braces,
//! `{"my.metric", job="x"}`, is the metric name.
//!
//! The grammar and the number syntax follow Prometheus's series-description
//! lexer and parser exactly, including its less obvious corners, because test
//! files written for `promtool` must mean the same thing here:
//! numbers accept `_` digit separators, exponents, a leading `.`, and Go's base-0
//! integer rules (so `010` is octal 8); hexadecimal is *not* a number here,
//! since `0x5` reads as "0, repeated 5 more times"; `Inf` and `NaN` are
//! case-insensitive, `stale` is not; `Infx3` and `stalex3` are errors (the
//! lexer reads them as one word), write `Inf+0x3` instead; `on`, `bool`,
//! `ignoring`, `group_left`, `group_right`, `atan2`, `inf` and `nan` are not
//! metric names.
//!
//! Native histograms (`{{schema:0 sum:5 count:4 buckets:[1 2 1]}}`, syntax in
//! [`FloatHistogram::parse_notation`]) parse to [`SequenceValue::Histogram`].
//! Their sums and differences are computed as Prometheus computes them,
//! including its refusal to add a histogram of lower resolution to a running
//! value (`{{schema:1}}+{{schema:0}}x1` is an error, the reverse is fine).
//! [`SeriesDescription::samples`] gives float and histogram samples apart;
//! [`SeriesDescription::float_samples`], for callers that store only floats,
//! refuses histograms with the typed [`NativeHistogramUnsupported`] error.

use std::sync::Arc;

use crate::histogram::{FloatHistogram, HistogramError, parse_descriptor};
use crate::labels::{Label, Labels, METRIC_NAME};
use crate::sample::{STALE_NAN, Sample};

use go_number::go_number;

/// The most values one description may expand to. Prometheus has no limit and
/// would simply exhaust memory on `1x10000000000`; a clear error is kinder.
pub const MAX_VALUES: usize = 10_000_000;

/// A parsed series description: a label set and its expanded values, one per
/// step of the load interval.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDescription {
    pub labels: Labels,
    pub values: Vec<SequenceValue>,
}

/// One step of an expanded value sequence.
#[derive(Clone, Debug)]
pub enum SequenceValue {
    /// `_`: no sample at this step.
    Omitted,
    /// A float sample. `stale` is [`STALE_NAN`], the staleness marker.
    Float(f64),
    /// A native histogram sample `{{…}}`. The steps of `{{h}}xn` share one.
    Histogram(Arc<FloatHistogram>),
}

/// Bitwise on floats, so that `NaN` equals `NaN` and the staleness marker
/// differs from an ordinary `NaN`: what tests of expansions need. Histograms
/// compare field by field.
impl PartialEq for SequenceValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SequenceValue::Omitted, SequenceValue::Omitted) => true,
            (SequenceValue::Float(a), SequenceValue::Float(b)) => a.to_bits() == b.to_bits(),
            (SequenceValue::Histogram(a), SequenceValue::Histogram(b)) => a == b,
            _ => false,
        }
    }
}

/// A series description has native histogram samples, which the caller
/// cannot store.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "native histograms are not supported: series {labels} has a {{{{...}}}} value at step {step}"
)]
pub struct NativeHistogramUnsupported {
    pub labels: Labels,
    /// The first histogram's step: 0 for the first value.
    pub step: usize,
}

impl SeriesDescription {
    /// Whether any value is a native histogram.
    pub fn has_native_histograms(&self) -> bool {
        self.values.iter().any(|v| matches!(v, SequenceValue::Histogram(_)))
    }

    /// The float samples at `start_ms + i * interval_ms` for every step `i`
    /// that is not omitted, or the typed refusal when a step is a native
    /// histogram. Timestamps saturate instead of overflowing.
    pub fn float_samples(
        &self,
        start_ms: i64,
        interval_ms: i64,
    ) -> Result<Vec<Sample>, NativeHistogramUnsupported> {
        if let Some(step) =
            self.values.iter().position(|v| matches!(v, SequenceValue::Histogram(_)))
        {
            return Err(NativeHistogramUnsupported { labels: self.labels.clone(), step });
        }
        Ok(self.samples(start_ms, interval_ms).0)
    }

    /// The histogram samples, timed as in [`SeriesDescription::float_samples`].
    pub fn histogram_samples(
        &self,
        start_ms: i64,
        interval_ms: i64,
    ) -> Vec<(i64, Arc<FloatHistogram>)> {
        self.samples(start_ms, interval_ms).1
    }

    /// The float samples and the histogram samples, each in time order,
    /// timed as in [`SeriesDescription::float_samples`].
    pub fn samples(
        &self,
        start_ms: i64,
        interval_ms: i64,
    ) -> (Vec<Sample>, Vec<(i64, Arc<FloatHistogram>)>) {
        let mut floats = Vec::new();
        let mut histograms = Vec::new();
        for (i, v) in self.values.iter().enumerate() {
            let t = start_ms.saturating_add(interval_ms.saturating_mul(i as i64));
            match v {
                SequenceValue::Omitted => {}
                SequenceValue::Float(f) => floats.push(Sample::new(t, *f)),
                SequenceValue::Histogram(h) => histograms.push((t, Arc::clone(h))),
            }
        }
        (floats, histograms)
    }
}

/// A syntax error, with the 1-based character column where it was found.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct NotationError {
    pub column: usize,
    pub kind: ErrorKind,
}

/// What was wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("unexpected {found} in {context}, expected {expected}")]
    Unexpected { found: String, context: &'static str, expected: &'static str },
    #[error("bad number syntax: {0:?}")]
    BadNumber(String),
    #[error("number out of range: {0:?}")]
    NumberOutOfRange(String),
    #[error("invalid repetition count {0:?}: must be a non-negative decimal integer")]
    BadRepetition(String),
    #[error("invalid string literal: {0}")]
    BadString(&'static str),
    #[error("{0:?} is a PromQL keyword and cannot be a metric name")]
    KeywordAsMetricName(String),
    #[error("the series expands to more than {MAX_VALUES} values")]
    TooManyValues,
    #[error("the native histograms of the series expand to more than {MAX_VALUES} buckets")]
    TooManyBuckets,
    #[error("{0}")]
    Histogram(#[from] HistogramError),
}

/// Parses a whole series description: `metric{labels} values...`.
pub fn parse_series(input: &str) -> Result<SeriesDescription, NotationError> {
    let mut c = Cursor::new(input);
    c.skip_space();
    let labels = metric(&mut c)?;
    // Prometheus's grammar needs a space between the labels and the values.
    if let Some(ch) = c.peek()
        && !is_space(ch)
    {
        return Err(c.unexpected("series description", "a space before the values"));
    }
    let values = values(&mut c)?;
    Ok(SeriesDescription { labels, values })
}

/// Parses just the metric part, `name{labels}` or `{labels}`, as promtool's
/// `series:` field holds it. Surrounding whitespace is allowed.
pub fn parse_metric(input: &str) -> Result<Labels, NotationError> {
    let mut c = Cursor::new(input);
    c.skip_space();
    let labels = metric(&mut c)?;
    c.skip_space();
    if !c.at_end() {
        return Err(c.unexpected("series description", "end of the metric"));
    }
    Ok(labels)
}

/// Parses just the values, as promtool's `values:` field holds them.
pub fn parse_values(input: &str) -> Result<Vec<SequenceValue>, NotationError> {
    values(&mut Cursor::new(input))
}

/// Parses a bare number the way test scripts read an expected scalar: Go's
/// `strconv.ParseInt(s, 0, 64)` and, failing that, `strconv.ParseFloat(s, 64)`.
/// Unlike in series values, hexadecimal (`0x1F`, `0x1p-2`), octal (`0o17`,
/// `017`), binary (`0b101`), `Infinity`, and a sign are all accepted here.
pub fn parse_scalar(input: &str) -> Result<f64, NotationError> {
    go_number(input).map_err(|kind| NotationError { column: 1, kind })
}

/// Unquotes one PromQL string literal (`"…"`, `'…'` or `` `…` ``, the whole
/// input), with the Go escapes label values in series descriptions use.
pub fn unquote(literal: &str) -> Result<String, NotationError> {
    let bytes = unquote_bytes(literal)?;
    String::from_utf8(bytes).map_err(|_| NotationError {
        column: 1,
        kind: ErrorKind::BadString("the value is not valid UTF-8"),
    })
}

/// Unquotes one PromQL string literal to the bytes Go would produce. `\x`
/// and octal escapes make single bytes, so the result need not be UTF-8.
pub fn unquote_bytes(literal: &str) -> Result<Vec<u8>, NotationError> {
    let mut c = Cursor::new(literal);
    if !matches!(c.peek(), Some('"' | '\'' | '`')) {
        return Err(c.unexpected("string literal", "a quote"));
    }
    let b = string_bytes(&mut c)?;
    if !c.at_end() {
        return Err(c.unexpected("string literal", "end of input"));
    }
    Ok(b)
}

/// Words the PromQL lexer turns into tokens that the metric rule rejects.
/// `inf` and `nan` lex as numbers; the others are operators and modifiers.
const NOT_METRIC_NAMES: &[&str] =
    &["inf", "nan", "atan2", "bool", "on", "ignoring", "group_left", "group_right"];

fn metric(c: &mut Cursor<'_>) -> Result<Labels, NotationError> {
    match c.peek() {
        Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' => {
            let start = c.pos;
            let name = c.take_while(|ch| is_alnum(ch) || ch == ':');
            if NOT_METRIC_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(c.error_at(start, ErrorKind::KeywordAsMetricName(name.to_owned())));
            }
            let mut pairs = if c.peek() == Some('{') { label_set(c)? } else { Vec::new() };
            // Pushed last so that it wins over a `__name__` inside the braces,
            // as Prometheus's label builder lets it.
            pairs.push(Label::new(METRIC_NAME, name));
            Ok(Labels::new(pairs))
        }
        Some('{') => Ok(Labels::new(label_set(c)?)),
        _ => Err(c.unexpected("series description", "a metric name or \"{\"")),
    }
}

fn label_set(c: &mut Cursor<'_>) -> Result<Vec<Label>, NotationError> {
    c.bump(); // `{`
    let mut pairs = Vec::new();
    loop {
        c.skip_space();
        // Also accepts `{}` and a trailing comma, as Prometheus does.
        if c.eat('}') {
            return Ok(pairs);
        }
        match c.peek() {
            Some('"' | '\'' | '`') => {
                let name = string(c)?;
                c.skip_space();
                if c.eat('=') {
                    c.skip_space();
                    pairs.push(Label::new(name, label_value(c)?));
                } else {
                    // A lone quoted name inside the braces is the metric name.
                    pairs.push(Label::new(METRIC_NAME, name));
                }
            }
            Some(ch) if ch.is_ascii_alphabetic() || ch == '_' => {
                let name = c.take_while(is_alnum).to_owned();
                c.skip_space();
                if !c.eat('=') {
                    return Err(c.unexpected("label set", "\"=\""));
                }
                c.skip_space();
                pairs.push(Label::new(name, label_value(c)?));
            }
            _ => return Err(c.unexpected("label set", "a label name or \"}\"")),
        }
        c.skip_space();
        if c.eat('}') {
            return Ok(pairs);
        }
        if !c.eat(',') {
            return Err(c.unexpected("label set", "\",\" or \"}\""));
        }
    }
}

fn label_value(c: &mut Cursor<'_>) -> Result<String, NotationError> {
    match c.peek() {
        Some('"' | '\'' | '`') => string(c),
        _ => Err(c.unexpected("label set", "a quoted string")),
    }
}

/// A PromQL string literal: `"…"` or `'…'` with Go escapes, or a raw `` `…` ``.
fn string(c: &mut Cursor<'_>) -> Result<String, NotationError> {
    let start = c.pos;
    let out = string_bytes(c)?;
    String::from_utf8(out)
        .map_err(|_| c.error_at(start, ErrorKind::BadString("the value is not valid UTF-8")))
}

fn string_bytes(c: &mut Cursor<'_>) -> Result<Vec<u8>, NotationError> {
    let start = c.pos;
    let quote = c.bump().unwrap_or('"');
    let bad = |c: &Cursor<'_>, at: usize, why| Err(c.error_at(at, ErrorKind::BadString(why)));
    if quote == '`' {
        let body_start = c.pos;
        loop {
            match c.bump() {
                None => return bad(c, start, "unterminated raw string"),
                Some('`') => return Ok(c.src.as_bytes()[body_start..c.pos - 1].to_vec()),
                Some(_) => {}
            }
        }
    }
    // `\x` and octal escapes produce single bytes, which need not be UTF-8 on
    // their own; collect bytes and validate the whole value at the end.
    let mut out: Vec<u8> = Vec::new();
    loop {
        let at = c.pos;
        match c.bump() {
            None | Some('\n') => return bad(c, start, "unterminated quoted string"),
            Some(ch) if ch == quote => break,
            Some('\\') => {
                let esc = c.bump();
                let simple = match esc {
                    Some('a') => Some(b'\x07'),
                    Some('b') => Some(b'\x08'),
                    Some('f') => Some(b'\x0c'),
                    Some('n') => Some(b'\n'),
                    Some('r') => Some(b'\r'),
                    Some('t') => Some(b'\t'),
                    Some('v') => Some(b'\x0b'),
                    Some('\\') => Some(b'\\'),
                    Some(q) if q == quote => Some(q as u8),
                    _ => None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    continue;
                }
                let (digits, radix, is_byte) = match esc {
                    Some('x') => (2, 16, true),
                    Some('u') => (4, 16, false),
                    Some('U') => (8, 16, false),
                    Some('0'..='7') => (2, 8, true),
                    None => return bad(c, at, "escape sequence not terminated"),
                    Some(_) => return bad(c, at, "unknown escape sequence"),
                };
                let mut v: u32 = match esc {
                    Some(d @ '0'..='7') => d as u32 - '0' as u32,
                    _ => 0,
                };
                for _ in 0..digits {
                    match c.bump().and_then(|d| d.to_digit(radix)) {
                        Some(d) => v = v * radix + d,
                        None => return bad(c, at, "illegal character in escape sequence"),
                    }
                }
                if is_byte {
                    match u8::try_from(v) {
                        Ok(b) => out.push(b),
                        Err(_) => return bad(c, at, "octal escape value > 255"),
                    }
                } else {
                    match char::from_u32(v) {
                        Some(ch) => out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
                        None => {
                            return bad(c, at, "escape sequence is an invalid Unicode code point");
                        }
                    }
                }
            }
            Some(ch) => out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Ok(out)
}

fn values(c: &mut Cursor<'_>) -> Result<Vec<SequenceValue>, NotationError> {
    let mut out = Vec::new();
    let mut buckets = 0;
    loop {
        c.skip_space();
        if c.at_end() {
            return Ok(out);
        }
        item(c, &mut out, &mut buckets)?;
        // Items are separated by whitespace: `1 2`, never `1_` or `1{{}}`.
        if let Some(ch) = c.peek()
            && !is_space(ch)
        {
            return Err(c.unexpected("series values", "a space"));
        }
    }
}

/// Appends the values of one item. `buckets` counts the buckets of the
/// histograms computed so far, which [`MAX_VALUES`] bounds too.
fn item(
    c: &mut Cursor<'_>,
    out: &mut Vec<SequenceValue>,
    buckets: &mut u64,
) -> Result<(), NotationError> {
    if c.rest().starts_with("{{") {
        return histogram_item(c, out, buckets);
    }
    if c.eat('_') {
        let n = if c.eat('x') { repetition(c)? } else { 1 };
        return push_n(c, out, SequenceValue::Omitted, n);
    }
    let first = series_value(c)?;
    match c.peek() {
        Some('x') => {
            c.bump();
            let n = repetition(c)?;
            push_n(c, out, SequenceValue::Float(first), n.saturating_add(1))
        }
        Some(sign @ ('+' | '-')) => {
            c.bump();
            let mut step = number(c)?;
            if sign == '-' {
                step = -step;
            }
            if !c.eat('x') {
                return Err(c.unexpected("series values", "\"x\" and a repetition count"));
            }
            let n = repetition(c)?;
            check_room(c, out, n.saturating_add(1))?;
            // Repeated addition, not first + i*step: the rounding then matches
            // what Prometheus loads, bit for bit.
            let mut v = first;
            for _ in 0..=n {
                out.push(SequenceValue::Float(v));
                v += step;
            }
            Ok(())
        }
        _ => {
            out.push(SequenceValue::Float(first));
            check_room(c, out, 0)
        }
    }
}

fn histogram_item(
    c: &mut Cursor<'_>,
    out: &mut Vec<SequenceValue>,
    buckets: &mut u64,
) -> Result<(), NotationError> {
    let start = c.pos;
    let base = histogram(c)?;
    match c.peek() {
        Some('x') => {
            c.bump();
            let n = repetition(c)?;
            push_n(c, out, SequenceValue::Histogram(Arc::new(base)), n.saturating_add(1))
        }
        Some(sign @ ('+' | '-')) => {
            c.bump();
            if !c.rest().starts_with("{{") {
                return Err(c.unexpected("series values", "a native histogram \"{{\""));
            }
            let step = histogram(c)?;
            if !c.eat('x') {
                return Err(c.unexpected("series values", "\"x\" and a repetition count"));
            }
            let n = repetition(c)?;
            check_room(c, out, n.saturating_add(1))?;
            let mut current = Arc::new(base);
            out.push(SequenceValue::Histogram(Arc::clone(&current)));
            let fail = |kind: HistogramError| c.error_at(start, ErrorKind::Histogram(kind));
            for _ in 0..n {
                // Prometheus's histogramsIncreaseSeries refuses this before
                // adding, although the addition itself could lower the schema.
                if current.schema > step.schema {
                    return Err(fail(HistogramError::CannotMergeSchema {
                        from: step.schema,
                        to: current.schema,
                    }));
                }
                let next = if sign == '+' { current.add(&step) } else { current.sub(&step) };
                let next = next.map_err(fail)?;
                *buckets = buckets.saturating_add(histogram_size(&next));
                if *buckets > MAX_VALUES as u64 {
                    return Err(c.error_at(start, ErrorKind::TooManyBuckets));
                }
                current = Arc::new(next);
                out.push(SequenceValue::Histogram(Arc::clone(&current)));
            }
            Ok(())
        }
        _ => {
            out.push(SequenceValue::Histogram(Arc::new(base)));
            check_room(c, out, 0)
        }
    }
}

/// The floats a computed histogram holds, for the expansion limit.
fn histogram_size(h: &FloatHistogram) -> u64 {
    (h.positive_buckets.len() + h.negative_buckets.len() + h.custom_values.len()) as u64
}

/// One `{{…}}` at the cursor.
fn histogram(c: &mut Cursor<'_>) -> Result<FloatHistogram, NotationError> {
    let start = c.pos;
    match parse_descriptor(c.rest()) {
        Ok((h, used)) => {
            c.pos += used;
            Ok(h)
        }
        Err((at, kind)) => Err(c.error_at(start + at, ErrorKind::Histogram(kind))),
    }
}

fn push_n(
    c: &Cursor<'_>,
    out: &mut Vec<SequenceValue>,
    v: SequenceValue,
    n: u64,
) -> Result<(), NotationError> {
    check_room(c, out, n)?;
    // check_room bounds n by MAX_VALUES, so it fits in usize.
    out.extend(std::iter::repeat_n(v, n as usize));
    Ok(())
}

fn check_room(c: &Cursor<'_>, out: &[SequenceValue], more: u64) -> Result<(), NotationError> {
    if (out.len() as u64).saturating_add(more) > MAX_VALUES as u64 {
        return Err(c.error_at(c.pos, ErrorKind::TooManyValues));
    }
    Ok(())
}

/// `stale`, or a number with an optional sign.
fn series_value(c: &mut Cursor<'_>) -> Result<f64, NotationError> {
    match c.peek() {
        Some('+') => {
            c.bump();
            number(c)
        }
        Some('-') => {
            c.bump();
            Ok(-number(c)?)
        }
        Some(ch) if ch.is_ascii_alphabetic() => {
            let start = c.pos;
            let word = word(c);
            if word == "stale" {
                return Ok(STALE_NAN);
            }
            c.pos = start;
            number(c)
        }
        _ => number(c),
    }
}

/// An unsigned number: digits as the PromQL lexer scans them, or `Inf`/`NaN`.
fn number(c: &mut Cursor<'_>) -> Result<f64, NotationError> {
    let start = c.pos;
    match c.peek() {
        Some(ch) if ch.is_ascii_alphabetic() => {
            let word = word(c);
            if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
                go_number(word).map_err(|kind| c.error_at(start, kind))
            } else {
                Err(c.error_at(
                    start,
                    ErrorKind::Unexpected {
                        found: format!("identifier {word:?}"),
                        context: "series values",
                        expected: "a number or \"stale\"",
                    },
                ))
            }
        }
        Some(ch) if ch.is_ascii_digit() || ch == '.' => {
            let text = scan_number(c)?;
            go_number(text).map_err(|kind| c.error_at(start, kind))
        }
        _ => Err(c.unexpected("series values", "a number or \"stale\"")),
    }
}

/// A word as the lexer reads it in a value sequence: letters, digits, `_`, `:`.
fn word<'a>(c: &mut Cursor<'a>) -> &'a str {
    c.take_while(|ch| is_alnum(ch) || ch == ':')
}

/// The count after `x`: the lexer scans a number, the parser then demands an
/// unsigned decimal integer (`strconv.ParseUint(s, 10, 64)`).
fn repetition(c: &mut Cursor<'_>) -> Result<u64, NotationError> {
    let start = c.pos;
    match c.peek() {
        Some(ch) if ch.is_ascii_digit() || ch == '.' => {}
        _ => return Err(c.unexpected("series values", "a repetition count")),
    }
    let text = scan_number(c)?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(c.error_at(start, ErrorKind::BadRepetition(text.to_owned())));
    }
    text.parse::<u64>().map_err(|_| c.error_at(start, ErrorKind::BadRepetition(text.to_owned())))
}

/// The PromQL lexer's number scanner in series-description mode (no hex):
/// `[.][d][d._eE]*` with its rules on repeated dots, exponents and underscores,
/// and the requirement that no letter follows unless it is the `x` of a
/// repetition. Returns the scanned text; whether it is a valid number is
/// decided by [`go_number`], as in Prometheus.
fn scan_number<'a>(c: &mut Cursor<'a>) -> Result<&'a str, NotationError> {
    let start = c.pos;
    let bad = |c: &Cursor<'a>| {
        Err(c.error_at(start, ErrorKind::BadNumber(c.src[start..c.pos].to_owned())))
    };
    let is = |c: &Cursor<'a>, set: &str| c.peek().is_some_and(|ch| set.contains(ch));
    c.eat('.');
    if is(c, DIGITS) {
        c.bump();
    }
    let (mut dot, mut exp) = (false, false);
    while is(c, "0123456789._eE") {
        if is(c, ".") && dot || is(c, "eE") && exp {
            c.bump();
            return bad(c);
        }
        if c.eat('.') {
            dot = true;
            if is(c, "_.") {
                c.bump();
                return bad(c);
            }
        } else if is(c, "eE") {
            c.bump();
            exp = true;
            if is(c, "+-") {
                c.bump();
            }
            if is(c, "._eE") || c.at_end() {
                c.bump();
                return bad(c);
            }
        } else if c.eat('_') {
            if is(c, "._eE") || c.at_end() {
                c.bump();
                return bad(c);
            }
        } else {
            c.take_while(|ch| ch.is_ascii_digit());
        }
    }
    if c.pos == start || c.peek().is_some_and(|ch| ch != 'x' && is_alnum(ch)) {
        c.bump();
        return bad(c);
    }
    Ok(&c.src[start..c.pos])
}

const DIGITS: &str = "0123456789";

/// The series lexer's number scanner, for native histogram descriptions:
/// the length of the number token at the start of `s` or, if there is none,
/// the length scanned through the offending character.
pub(crate) fn scan_series_number(s: &str) -> Result<usize, usize> {
    let mut c = Cursor::new(s);
    match scan_number(&mut c) {
        Ok(text) => Ok(text.len()),
        Err(_) => Err(c.pos),
    }
}

/// The value of a number token scanned by [`scan_series_number`].
pub(crate) fn series_number_value(text: &str) -> Result<f64, ErrorKind> {
    go_number(text)
}

/// The PromQL lexer's whitespace.
fn is_space(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\r')
}

/// The PromQL lexer's "alphanumeric": ASCII letters, digits and `_`.
fn is_alnum(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

/// A position in the input. Byte offsets inside, character columns outside.
struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.pos += want.len_utf8();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(ch) = self.peek() {
            if !f(ch) {
                break;
            }
            self.pos += ch.len_utf8();
        }
        &self.src[start..self.pos]
    }

    fn skip_space(&mut self) {
        self.take_while(is_space);
    }

    /// 1-based character column of byte offset `at`.
    fn column(&self, at: usize) -> usize {
        self.src.get(..at).map_or(at, |s| s.chars().count()) + 1
    }

    fn error_at(&self, at: usize, kind: ErrorKind) -> NotationError {
        NotationError { column: self.column(at), kind }
    }

    /// "unexpected <what is here> in <context>, expected <expected>".
    fn unexpected(&self, context: &'static str, expected: &'static str) -> NotationError {
        let found = match self.peek() {
            None => "end of input".to_owned(),
            Some(ch) => format!("character {ch:?}"),
        };
        self.error_at(self.pos, ErrorKind::Unexpected { found, context, expected })
    }
}

mod go_number;
#[cfg(test)]
mod tests;
