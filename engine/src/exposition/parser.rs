//! The pull parser for both text formats.
//!
//! The lexer works on bytes and records where names and values are (spans
//! into the input) without copying or validating them; turning the spans of a
//! sample into strings, checking UTF-8 and rejecting duplicate label names is
//! a separate step. [`Parser::next_entry`] always runs both. The ingester runs
//! the second step only for series text it has not seen before: text equal to
//! a cached key was checked when the key was cached. It can also pass the
//! series text it expects next (targets expose their series in the same order
//! every time); when the line starts with it, the lexer skips the series part
//! of the line, since lexing the same bytes again must end in the same place.
//!
//! Grammar, as Prometheus's lexers (`promlex.l`, `openmetricslex.l`) define it:
//!
//! Prometheus text: blanks (space, tab) may surround every token and blank
//! lines are allowed. `# HELP name text` and `# TYPE name type` (any blanks
//! after `#`) are metadata, any other `#` line is a comment. A sample is
//! `name [{labels}] value [timestamp]`, where commas between labels are
//! optional, the value runs to the next blank, newline or `{`, and the
//! timestamp is unsigned integer milliseconds. Quoted strings may span lines.
//!
//! OpenMetrics: single spaces exactly where the grammar puts them, no blank
//! lines, no comments; `# HELP`, `# TYPE`, `# UNIT` and the mandatory final
//! `# EOF`. Labels are comma-separated (a trailing comma is allowed), the
//! timestamp is float seconds, and a sample may end in an exemplar
//! `# {labels} value [timestamp]`, which is checked and skipped.
//!
//! Differences from Prometheus, all on input it accepts only by accident:
//! - a NUL byte outside quoted strings and comments is an error here;
//!   Prometheus's lexer takes it for the end of the input;
//! - the metric name in `# HELP`/`# TYPE` must be followed by a blank or the
//!   end of the line (Prometheus silently drops whatever character follows);
//! - NUL is allowed in exemplar label values (Prometheus's lexer trips over it
//!   there, though it accepts it in every other quoted string);
//! - `le`/`quantile` values written as Go hex floats are not normalised.

use std::borrow::Cow;

use crate::labels::{Label, Labels, METRIC_NAME};

use super::error::{ErrorKind, LineCursor, ParseError, RawError, RawKind};
use super::float::{self, NumberError};
use super::{Format, MetricType};

const METRIC_START: u8 = 1;
const METRIC_CONT: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CONT: u8 = 8;
/// Bytes that end the plain run of a quoted string: '"', '\\' and '\n'.
const QUOTE_STOP: u8 = 16;

/// Character classes, so each byte of a name costs one table lookup.
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let letter = c.is_ascii_alphabetic() || c == b'_';
        let mut class = 0;
        if letter || c == b':' {
            class |= METRIC_START | METRIC_CONT;
        }
        if letter {
            class |= LABEL_START | LABEL_CONT;
        }
        if c.is_ascii_digit() {
            class |= METRIC_CONT | LABEL_CONT;
        }
        if c == b'"' || c == b'\\' || c == b'\n' {
            class |= QUOTE_STOP;
        }
        table[i] = class;
        i += 1;
    }
    table
};

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

/// The first index from `i` of a byte that ends the plain run of a quoted
/// string ('"', '\\' or '\n'), or `input.len()`. Eight bytes at a time: the
/// classic "has zero byte" bit trick on the input XOR each wanted byte. The
/// trick can flag bytes after a real match, never before one, so the lowest
/// flag is exact.
#[inline]
fn skip_plain_quoted(input: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    while let Some(chunk) = input.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let hits = zero_bytes(v ^ (ONES * u64::from(b'"')))
            | zero_bytes(v ^ (ONES * u64::from(b'\\')))
            | zero_bytes(v ^ (ONES * u64::from(b'\n')));
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = input.get(i)
        && !is(b, QUOTE_STOP)
    {
        i += 1;
    }
    i
}

/// Byte range of a name or value in the input; `escaped` when it contains a
/// backslash, so only those strings are ever copied.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Span {
    fn plain(start: usize, end: usize) -> Span {
        Span { start, end, escaped: false }
    }
}

#[derive(Clone, Copy, Debug)]
struct LabelSpan {
    name: Span,
    value: Span,
}

/// A string from the input, still escaped as written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Escaped<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> Escaped<'a> {
    const EMPTY: Escaped<'static> = Escaped { raw: "", escaped: false };

    /// The string with label-value escapes (`\\`, `\"`, `\n`) resolved.
    fn text(self) -> Cow<'a, str> {
        if self.escaped { Cow::Owned(unescape(self.raw, true)) } else { Cow::Borrowed(self.raw) }
    }
}

/// Resolves escapes the way Prometheus's `strings.Replacer`s do: left to
/// right, `\\` and `\n` always, `\"` when `quotes`; any other backslash is
/// kept as it is.
fn unescape(raw: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let resolved = match chars.clone().next() {
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('"') if quotes => '"',
            _ => {
                out.push('\\');
                continue;
            }
        };
        out.push(resolved);
        chars.next();
    }
    out
}

/// The text of `span`, checked for UTF-8. `whole` is the entire input when it
/// is known to be valid UTF-8, which saves checking each string again; spans
/// start and end at ASCII delimiters, so slicing it cannot fail. Inlined so
/// that its result is never copied through memory.
#[inline(always)]
fn str_of<'a>(
    input: &'a [u8],
    whole: Option<&'a str>,
    span: Span,
    what: &'static str,
) -> Result<Escaped<'a>, RawError> {
    let checked = match whole {
        Some(text) => text.get(span.start..span.end).ok_or(span.start),
        None => std::str::from_utf8(&input[span.start..span.end])
            .map_err(|e| span.start + e.valid_up_to()),
    };
    match checked {
        Ok(raw) => Ok(Escaped { raw, escaped: span.escaped }),
        Err(offset) => Err(RawError::new(offset, ErrorKind::InvalidUtf8(what))),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A validated label of the current sample.
#[derive(Clone, Copy, Debug)]
struct Field<'a> {
    name: Escaped<'a>,
    value: Escaped<'a>,
    /// Where the name starts, for error positions.
    offset: usize,
}

/// What the lexer found on a line. Its contents are left in the parser
/// ([`Parser::sample`] and the metadata fields) rather than returned: the
/// small tag travels in registers, where a large enum would be copied through
/// memory at every level on the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Help,
    Type,
    Unit,
    Comment,
    Sample,
}

/// A sample line as lexed: where its series text is, and its numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawSample {
    pub series_start: usize,
    pub series_end: usize,
    pub value: f64,
    pub timestamp: Option<i64>,
    /// The series text was the hint given to `next_line`; its labels were
    /// not lexed.
    pub hinted: bool,
}

#[derive(Clone, Copy)]
enum Meta {
    Help,
    Type,
    Unit,
}

impl Meta {
    fn keyword(self) -> &'static str {
        match self {
            Meta::Help => "HELP",
            Meta::Type => "TYPE",
            Meta::Unit => "UNIT",
        }
    }
}

/// One line of an exposition, as returned by [`Parser::next_entry`].
#[derive(Debug)]
pub enum Entry<'p, 'a> {
    /// `# HELP metric text`, with escapes in the text resolved.
    Help {
        metric: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// `# TYPE metric type`.
    Type {
        metric: Cow<'a, str>,
        metric_type: MetricType,
    },
    /// `# UNIT metric unit` (OpenMetrics only).
    Unit {
        metric: Cow<'a, str>,
        unit: &'a str,
    },
    /// Any other `#` line (Prometheus text format only), without the `#`.
    /// Not checked for UTF-8, as Prometheus does not check it either.
    Comment(&'a [u8]),
    Sample(SampleLine<'p, 'a>),
}

/// A sample line, borrowed from the input (`'a`) and the parser (`'p`).
#[derive(Debug)]
pub struct SampleLine<'p, 'a> {
    series: &'a [u8],
    metric: Escaped<'a>,
    fields: &'p [Field<'a>],
    metric_type: MetricType,
    value: f64,
    timestamp: Option<i64>,
}

impl<'p, 'a> SampleLine<'p, 'a> {
    /// The series exactly as written: metric name and label block. Equal
    /// text always means equal labels, which is what a scrape cache relies on.
    pub fn series_text(&self) -> &'a [u8] {
        self.series
    }

    pub fn metric_name(&self) -> Cow<'a, str> {
        self.metric.text()
    }

    /// The labels other than the metric name, in the order written, with
    /// escapes resolved and `le`/`quantile` values normalised as Prometheus
    /// does for histograms and summaries (`le="1"` becomes `le="1.0"`).
    /// Labels with empty values are included here; [`Self::to_labels`]
    /// drops them, since an empty value means "absent".
    pub fn labels(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + use<'p, 'a> {
        let metric_type = self.metric_type;
        self.fields.iter().map(move |f| {
            let name = f.name.text();
            let value = normalize(metric_type, &name, f.value.text());
            (name, value)
        })
    }

    /// The complete label set, `__name__` included.
    pub fn to_labels(&self) -> Labels {
        build_labels(self.metric, self.fields, self.metric_type)
    }

    pub fn value(&self) -> f64 {
        self.value
    }

    /// The sample's own timestamp in milliseconds, if the line has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

fn build_labels(metric: Escaped<'_>, fields: &[Field<'_>], metric_type: MetricType) -> Labels {
    let mut pairs = Vec::with_capacity(fields.len() + 1);
    pairs.push(Label::new(METRIC_NAME, &*metric.text()));
    for f in fields {
        let name = f.name.text();
        let value = normalize(metric_type, &name, f.value.text());
        pairs.push(Label::new(&*name, &*value));
    }
    Labels::new(pairs)
}

/// Prometheus 3 rewrites the bucket bounds of classic histograms and the
/// quantiles of summaries into one canonical float spelling, so that series
/// identity does not depend on how an exporter prints `1` (`1`, `1.0`, `1e0`).
/// Like Prometheus, it goes by the type of the most recent `# TYPE` line.
fn normalize<'a>(metric_type: MetricType, name: &str, value: Cow<'a, str>) -> Cow<'a, str> {
    let applies = match metric_type {
        MetricType::Histogram => name == "le",
        MetricType::Summary => name == "quantile",
        _ => false,
    };
    if applies && let Ok(v) = float::parse_float(value.as_bytes()) {
        let canonical = crate::gofmt::format_openmetrics_float(v);
        if canonical != *value {
            return Cow::Owned(canonical);
        }
    }
    value
}

/// Finds a label name used twice (the metric name counts as `__name__`),
/// returning the index of the later use.
fn find_duplicate(fields: &[Field<'_>]) -> Option<(usize, String)> {
    // An escaped name cannot be `__name__`: resolving escapes leaves a
    // backslash, quote or newline in it.
    if let Some(i) = fields.iter().position(|f| !f.name.escaped && f.name.raw == METRIC_NAME) {
        return Some((i, METRIC_NAME.to_owned()));
    }
    let same = |a: &Field<'_>, b: &Field<'_>| {
        if a.name.escaped || b.name.escaped {
            a.name.text() == b.name.text()
        } else {
            a.name.raw == b.name.raw
        }
    };
    // Typical lines have a handful of labels, where comparing all pairs
    // beats sorting; sort only when a line has many.
    if fields.len() <= 16 {
        for i in 1..fields.len() {
            if fields[..i].iter().any(|prev| same(prev, &fields[i])) {
                return Some((i, fields[i].name.text().into_owned()));
            }
        }
        return None;
    }
    let mut names: Vec<(Cow<'_, str>, usize)> =
        fields.iter().enumerate().map(|(i, f)| (f.name.text(), i)).collect();
    crate::sort::sort(&mut names);
    names.windows(2).find(|w| w[0].0 == w[1].0).map(|w| (w[1].1, w[1].0.clone().into_owned()))
}

/// A zero-copy pull parser over one exposition body.
///
/// Call [`Parser::next_entry`] until it returns `Ok(None)`. After an error
/// the parser resumes at the next line, so a caller that wants to skip
/// malformed lines can simply keep calling; one that wants Prometheus's
/// behaviour stops at the first error.
pub struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    format: Format,
    /// The type from the latest `# TYPE` line; Prometheus applies it to every
    /// following sample, whichever family it belongs to.
    metric_type: MetricType,
    /// Set after `# EOF` or a final error, when nothing more can follow.
    finished: bool,
    // The current sample line. The span vector is reused from line to line,
    // so the lexer does not allocate in the steady state.
    name: Option<Span>,
    labels: Vec<LabelSpan>,
    metric: Escaped<'a>,
    fields: Vec<Field<'a>>,
    /// The whole input as `str` if it is valid UTF-8 (checked on the first
    /// label check): then no label needs its own check.
    utf8: Option<Option<&'a str>>,
    /// The last sample line.
    sample: RawSample,
    /// The last metadata line: its metric, and its help text or unit.
    meta_metric: Escaped<'a>,
    meta_text: &'a str,
    /// The last comment line.
    comment: &'a [u8],
    cursor: LineCursor,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Self {
        Parser {
            input,
            pos: 0,
            format,
            metric_type: MetricType::Unknown,
            finished: false,
            name: None,
            labels: Vec::new(),
            metric: Escaped::EMPTY,
            fields: Vec::new(),
            utf8: None,
            sample: RawSample {
                series_start: 0,
                series_end: 0,
                value: 0.0,
                timestamp: None,
                hinted: false,
            },
            meta_metric: Escaped::EMPTY,
            meta_text: "",
            comment: &[],
            cursor: LineCursor::default(),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The next line, fully checked: syntax, numbers, UTF-8, and label names
    /// (non-empty, no name twice). `Ok(None)` at the end of the input (for
    /// OpenMetrics, after `# EOF`).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, 'a>>, ParseError> {
        let Some(line) = self.next_line(&[]).map_err(|e| *e)? else {
            return Ok(None);
        };
        let entry = match line {
            Line::Help => {
                let text = self.meta_text;
                let text = if memchr::memchr(b'\\', text.as_bytes()).is_some() {
                    // OpenMetrics escapes help like label values; the
                    // Prometheus format does not escape '"' there.
                    Cow::Owned(unescape(text, self.format == Format::OpenMetrics))
                } else {
                    Cow::Borrowed(text)
                };
                Entry::Help { metric: self.meta_metric.text(), text }
            }
            Line::Type => {
                Entry::Type { metric: self.meta_metric.text(), metric_type: self.metric_type }
            }
            Line::Unit => Entry::Unit { metric: self.meta_metric.text(), unit: self.meta_text },
            Line::Comment => Entry::Comment(self.comment),
            Line::Sample => {
                if let Err(e) = self.check_labels() {
                    return Err(*self.cursor.error(self.input, e));
                }
                let raw = self.sample;
                Entry::Sample(SampleLine {
                    series: &self.input[raw.series_start..raw.series_end],
                    metric: self.metric,
                    fields: &self.fields,
                    metric_type: self.metric_type,
                    value: raw.value,
                    timestamp: raw.timestamp,
                })
            }
        };
        Ok(Some(entry))
    }

    /// The next line, lexed but with the labels of a sample unchecked; see
    /// [`Parser::current_labels`]. `hint` is the series text the caller
    /// expects on the next sample line (or empty); it must be text this
    /// parser's format lexed as a series before.
    pub(crate) fn next_line(&mut self, hint: &[u8]) -> Result<Option<Line>, Box<ParseError>> {
        if self.finished {
            return Ok(None);
        }
        let record = match self.format {
            Format::PrometheusText => self.prom_line(hint),
            Format::OpenMetrics => self.om_line(hint),
        };
        record.map_err(|e| self.fail(e))
    }

    /// The sample line last returned by `next_line`.
    pub(crate) fn sample(&self) -> RawSample {
        self.sample
    }

    /// The type in force for the next sample line; its labels depend on it.
    pub(crate) fn metric_type(&self) -> MetricType {
        self.metric_type
    }

    /// Checks the labels of the sample last returned by `next_line` (which
    /// must not have been hinted) and builds its label set.
    pub(crate) fn current_labels(&mut self) -> Result<Labels, Box<ParseError>> {
        match self.check_labels() {
            Ok(()) => Ok(build_labels(self.metric, &self.fields, self.metric_type)),
            Err(e) => Err(self.cursor.error(self.input, e)),
        }
    }

    /// Reports a lexical error and moves to the next line.
    #[cold]
    fn fail(&mut self, e: RawError) -> Box<ParseError> {
        let from = e.offset().min(self.input.len());
        self.pos = match memchr::memchr(b'\n', &self.input[from..]) {
            Some(i) => from + i + 1,
            None => self.input.len(),
        };
        if matches!(e.kind(), RawKind::Other(ErrorKind::MissingEof | ErrorKind::DataAfterEof)) {
            self.finished = true;
        }
        self.cursor.error(self.input, e)
    }

    fn check_labels(&mut self) -> Result<(), RawError> {
        let input = self.input;
        let whole = *self.utf8.get_or_insert_with(|| std::str::from_utf8(input).ok());
        let Some(name) = self.name else {
            // Lexed samples always have a name; hinted ones are never checked.
            return Err(RawError::new(self.pos, ErrorKind::MissingMetricName));
        };
        let metric = str_of(input, whole, name, "metric name")?;
        if metric.raw.is_empty() {
            return Err(RawError::new(name.start, ErrorKind::EmptyMetricName));
        }
        self.metric = metric;
        self.fields.clear();
        for l in &self.labels {
            let name = str_of(input, whole, l.name, "label name")?;
            if name.raw.is_empty() {
                return Err(RawError::new(l.name.start, ErrorKind::EmptyLabelName));
            }
            let value = str_of(input, whole, l.value, "label value")?;
            self.fields.push(Field { name, value, offset: l.name.start });
        }
        match find_duplicate(&self.fields) {
            Some((i, name)) => {
                Err(RawError::new(self.fields[i].offset, ErrorKind::DuplicateLabelName(name)))
            }
            None => Ok(()),
        }
    }

    // ---- lexing helpers ----

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Skips spaces and tabs; returns how many.
    #[inline]
    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while let Some(b' ' | b'\t') = self.input.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    #[inline]
    fn scan(&mut self, class: u8) {
        while let Some(&b) = self.input.get(self.pos)
            && is(b, class)
        {
            self.pos += 1;
        }
    }

    /// The rest of the line from `from` (newline excluded), moving past the
    /// newline. `None` when the input ends without one.
    fn take_line(&mut self, from: usize) -> (usize, Option<usize>) {
        match memchr::memchr(b'\n', &self.input[from..]) {
            Some(i) => {
                self.pos = from + i + 1;
                (from, Some(from + i))
            }
            None => {
                self.pos = self.input.len();
                (from, None)
            }
        }
    }

    /// A double-quoted string at `pos`; returns the span between the quotes.
    /// A backslash escapes any character but a newline (as in Prometheus's
    /// lexer); raw newlines are allowed inside quotes in the Prometheus format
    /// only. Always inlined: returned through memory, the span's padding
    /// bytes defeat store forwarding.
    #[inline(always)]
    fn quoted(&mut self) -> Result<Span, RawError> {
        let open = self.pos;
        let input = self.input;
        let mut i = open + 1;
        let mut escaped = false;
        loop {
            i = skip_plain_quoted(input, i);
            match input.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Span { start: open + 1, end: i, escaped });
                }
                Some(b'\\') => match input.get(i + 1) {
                    None => break,
                    Some(b'\n') => {
                        return Err(RawError::expected(i + 1, "an escaped character after '\\'"));
                    }
                    Some(_) => {
                        escaped = true;
                        i += 2;
                    }
                },
                Some(_) if self.format == Format::PrometheusText => i += 1,
                Some(_) => return Err(RawError::expected(i, "'\"' closing the quoted string")),
                None => break,
            }
        }
        Err(RawError::new(open, ErrorKind::UnterminatedString))
    }

    fn expected_equals(&self, name: Span) -> RawError {
        let name = lossy(&self.input[name.start..name.end]);
        RawError::expected(self.pos, format!("'=' after label name {name:?}"))
    }

    fn set_quoted_name(&mut self, item: usize, name: Span) -> Result<(), RawError> {
        if self.name.is_some() {
            return Err(RawError::new(item, ErrorKind::MetricNameTwice));
        }
        self.name = Some(name);
        Ok(())
    }

    /// A metric name (plain or quoted) after `# HELP`, `# TYPE`, `# UNIT`.
    fn metadata_name(&mut self, meta: Meta) -> Result<Escaped<'a>, RawError> {
        let start = self.pos;
        let span = match self.peek() {
            Some(b'"') => self.quoted()?,
            Some(b) if is(b, METRIC_START) => {
                self.scan(METRIC_CONT);
                Span::plain(start, self.pos)
            }
            _ => {
                let what = format!("a metric name after {}", meta.keyword());
                return Err(RawError::expected(start, what));
            }
        };
        str_of(self.input, None, span, "metric name")
    }

    fn metadata(
        &mut self,
        meta: Meta,
        metric: Escaped<'a>,
        start: usize,
        end: usize,
    ) -> Result<Line, RawError> {
        let text = &self.input[start..end];
        self.meta_metric = metric;
        match meta {
            Meta::Help => {
                self.meta_text =
                    str_of(self.input, None, Span::plain(start, end), "help text")?.raw;
                Ok(Line::Help)
            }
            Meta::Type => {
                let metric_type = match (self.format, text) {
                    (_, b"counter") => MetricType::Counter,
                    (_, b"gauge") => MetricType::Gauge,
                    (_, b"histogram") => MetricType::Histogram,
                    (_, b"summary") => MetricType::Summary,
                    (Format::PrometheusText, b"untyped") => MetricType::Unknown,
                    (Format::OpenMetrics, b"unknown") => MetricType::Unknown,
                    (Format::OpenMetrics, b"gaugehistogram") => MetricType::GaugeHistogram,
                    (Format::OpenMetrics, b"info") => MetricType::Info,
                    (Format::OpenMetrics, b"stateset") => MetricType::StateSet,
                    _ => {
                        return Err(RawError::new(
                            start,
                            ErrorKind::InvalidMetricType(lossy(text)),
                        ));
                    }
                };
                self.metric_type = metric_type;
                Ok(Line::Type)
            }
            Meta::Unit => {
                let unit = str_of(self.input, None, Span::plain(start, end), "unit")?.raw;
                // OpenMetrics: a unit must be the metric name's last
                // `_`-separated component.
                let name = metric.raw;
                let suffix_ok = unit.is_empty()
                    || (name.len() > unit.len()
                        && name.ends_with(unit)
                        && name.as_bytes()[name.len() - unit.len() - 1] == b'_');
                if !suffix_ok {
                    let kind =
                        ErrorKind::UnitNotSuffix { unit: unit.to_owned(), metric: name.to_owned() };
                    return Err(RawError::new(start, kind));
                }
                self.meta_text = unit;
                Ok(Line::Unit)
            }
        }
    }

    /// Whether the line at `pos` starts with the series text `hint` such that
    /// lexing would end exactly where `hint` ends: always when it ends with
    /// the `}` of a label block; for a bare metric name, when the name does
    /// not go on and no label block follows.
    #[inline]
    fn matches_hint(&self, hint: &[u8]) -> bool {
        let end = self.pos + hint.len();
        if hint.is_empty() || !self.input[self.pos..].starts_with(hint) {
            return false;
        }
        if hint.last() == Some(&b'}') {
            return true;
        }
        if self.input.get(end).is_some_and(|&b| is(b, METRIC_CONT)) {
            return false;
        }
        let mut next = end;
        if self.format == Format::PrometheusText {
            while let Some(b' ' | b'\t') = self.input.get(next) {
                next += 1;
            }
        }
        self.input.get(next) != Some(&b'{')
    }

    /// Skips the series part of a line that starts with `hint`.
    fn take_hint(&mut self, hint: &[u8]) -> (usize, usize) {
        // The label spans are not filled in; clearing the name makes a
        // mistaken label check fail rather than report another line's labels.
        self.name = None;
        let start = self.pos;
        self.pos += hint.len();
        (start, self.pos)
    }

    /// The sample value at `pos`. The token runs to the next blank, newline
    /// or `{` in the Prometheus format, to the next space or newline in
    /// OpenMetrics. Plain decimals are parsed in one pass; anything else is
    /// delimited first and given to the general parser.
    #[inline]
    fn value(&mut self) -> Result<f64, RawError> {
        let start = self.pos;
        let om = self.format == Format::OpenMetrics;
        if let Some((v, len)) = float::fast_prefix(&self.input[start..]) {
            let ends = match self.input.get(start + len) {
                None | Some(b' ' | b'\n') => true,
                Some(b'\t' | b'{') => !om,
                Some(_) => false,
            };
            if ends {
                self.pos = start + len;
                return Ok(v);
            }
        }
        if om {
            let (start, end) = self.om_token("a sample value")?;
            return self.number(start, end);
        }
        while let Some(&b) = self.input.get(self.pos)
            && !matches!(b, b' ' | b'\t' | b'\n' | b'{')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(RawError::expected(start, "a sample value"));
        }
        self.number(start, self.pos)
    }

    fn number(&self, start: usize, end: usize) -> Result<f64, RawError> {
        let token = &self.input[start..end];
        float::parse_float(token).map_err(|e| {
            let kind = match e {
                NumberError::Syntax => ErrorKind::InvalidValue(lossy(token)),
                NumberError::Range => ErrorKind::ValueOutOfRange(lossy(token)),
            };
            RawError::new(start, kind)
        })
    }

    // ---- Prometheus text format ----

    fn prom_line(&mut self, hint: &[u8]) -> Result<Option<Line>, RawError> {
        loop {
            self.skip_blanks();
            let Some(b) = self.peek() else {
                return Ok(None);
            };
            return match b {
                b'\n' => {
                    self.pos += 1;
                    continue;
                }
                b'#' => self.prom_hash().map(Some),
                _ if self.matches_hint(hint) => {
                    let (start, end) = self.take_hint(hint);
                    self.prom_sample_tail(start, end, true).map(Some)
                }
                b'{' => self.prom_sample().map(Some),
                _ if is(b, METRIC_START) => self.prom_sample().map(Some),
                _ => Err(RawError::expected(self.pos, "a metric name, '{' or '#'")),
            };
        }
    }

    fn prom_hash(&mut self) -> Result<Line, RawError> {
        let hash = self.pos;
        self.pos += 1;
        if self.skip_blanks() > 0 {
            let rest = &self.input[self.pos..];
            let keyword =
                |k: &[u8]| rest.starts_with(k) && matches!(rest.get(4), Some(b' ' | b'\t'));
            let meta = if keyword(b"HELP") {
                Some(Meta::Help)
            } else if keyword(b"TYPE") {
                Some(Meta::Type)
            } else {
                None
            };
            if let Some(meta) = meta {
                self.pos += 4;
                self.skip_blanks();
                let metric = self.metadata_name(meta)?;
                // One blank separates name and text; further blanks belong
                // to the text, as in Prometheus.
                let from = match self.peek() {
                    None | Some(b'\n') => self.pos,
                    Some(b' ' | b'\t') => self.pos + 1,
                    Some(_) => {
                        let what = format!("a blank after the metric name in {}", meta.keyword());
                        return Err(RawError::expected(self.pos, what));
                    }
                };
                let (start, end) = self.take_line(from);
                return self.metadata(meta, metric, start, end.unwrap_or(self.input.len()));
            }
        }
        let (start, end) = self.take_line(hash + 1);
        self.comment = &self.input[start..end.unwrap_or(self.input.len())];
        Ok(Line::Comment)
    }

    fn prom_sample(&mut self) -> Result<Line, RawError> {
        let start = self.pos;
        self.name = None;
        self.labels.clear();
        let mut series_end = start;
        if self.input[start] != b'{' {
            self.pos += 1;
            self.scan(METRIC_CONT);
            self.name = Some(Span::plain(start, self.pos));
            series_end = self.pos;
            self.skip_blanks();
        }
        if self.peek() == Some(b'{') {
            self.prom_labels()?;
            series_end = self.pos;
        }
        if self.name.is_none() {
            return Err(RawError::new(start, ErrorKind::MissingMetricName));
        }
        self.prom_sample_tail(start, series_end, false)
    }

    /// Value and timestamp of a sample line whose series ends at `pos`.
    fn prom_sample_tail(
        &mut self,
        start: usize,
        series_end: usize,
        hinted: bool,
    ) -> Result<Line, RawError> {
        self.skip_blanks();
        let value = self.value()?;
        self.skip_blanks();
        let timestamp = match self.peek() {
            None => None,
            Some(b'\n') => {
                self.pos += 1;
                None
            }
            Some(b) if b.is_ascii_digit() => {
                let ts_start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                let digits = &self.input[ts_start..self.pos];
                let ts = float::parse_millis(digits).map_err(|_| {
                    RawError::new(ts_start, ErrorKind::TimestampOutOfRange(lossy(digits)))
                })?;
                self.skip_blanks();
                match self.peek() {
                    None => {}
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {
                        return Err(RawError::expected(
                            self.pos,
                            "end of line after the timestamp",
                        ));
                    }
                }
                Some(ts)
            }
            Some(_) => {
                return Err(RawError::expected(self.pos, "a timestamp or end of line"));
            }
        };
        self.sample = RawSample { series_start: start, series_end, value, timestamp, hinted };
        Ok(Line::Sample)
    }

    /// At a label position inside `{...}` (both formats): a label name, plain
    /// or quoted, and whether it was quoted; `None` after consuming the
    /// closing `}`.
    #[inline(always)]
    fn label_name_or_close(&mut self, item: usize) -> Result<Option<(Span, bool)>, RawError> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                Ok(None)
            }
            Some(b'"') => Ok(Some((self.quoted()?, true))),
            Some(b) if is(b, LABEL_START) => {
                self.scan(LABEL_CONT);
                Ok(Some((Span::plain(item, self.pos), false)))
            }
            _ => Err(RawError::expected(item, "a label name or '}'")),
        }
    }

    fn prom_labels(&mut self) -> Result<(), RawError> {
        self.pos += 1;
        loop {
            self.skip_blanks();
            let item = self.pos;
            let Some((name, quoted)) = self.label_name_or_close(item)? else {
                return Ok(());
            };
            self.skip_blanks();
            match self.peek() {
                Some(b'=') => self.pos += 1,
                // A quoted string on its own is the metric name: {"a.b", x="y"}.
                Some(b',' | b'}') if quoted => {
                    self.set_quoted_name(item, name)?;
                    if self.peek() == Some(b',') {
                        self.pos += 1;
                    }
                    continue;
                }
                _ => return Err(self.expected_equals(name)),
            }
            self.skip_blanks();
            if self.peek() != Some(b'"') {
                return Err(RawError::expected(self.pos, "a quoted label value"));
            }
            let value = self.quoted()?;
            self.labels.push(LabelSpan { name, value });
            self.skip_blanks();
            // Commas between labels are optional in Prometheus's lexer.
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
    }

    // ---- OpenMetrics ----

    fn om_line(&mut self, hint: &[u8]) -> Result<Option<Line>, RawError> {
        let Some(b) = self.peek() else {
            return Err(RawError::new(self.pos, ErrorKind::MissingEof));
        };
        match b {
            b'#' => self.om_hash(),
            _ if self.matches_hint(hint) => {
                let (start, end) = self.take_hint(hint);
                self.om_sample_tail(start, end, true).map(Some)
            }
            b'{' => self.om_sample().map(Some),
            _ if is(b, METRIC_START) => self.om_sample().map(Some),
            _ => Err(RawError::expected(self.pos, "a metric name, '{' or '#'")),
        }
    }

    fn om_hash(&mut self) -> Result<Option<Line>, RawError> {
        let rest = &self.input[self.pos..];
        if rest.get(1) != Some(&b' ') {
            return Err(RawError::expected(self.pos + 1, "' ' after '#'"));
        }
        if rest.starts_with(b"# EOF") {
            let mut end = self.pos + 5;
            if self.input.get(end) == Some(&b'\n') {
                end += 1;
            }
            if end != self.input.len() {
                return Err(RawError::new(end, ErrorKind::DataAfterEof));
            }
            self.pos = end;
            self.finished = true;
            return Ok(None);
        }
        let meta = if rest.starts_with(b"# HELP ") {
            Meta::Help
        } else if rest.starts_with(b"# TYPE ") {
            Meta::Type
        } else if rest.starts_with(b"# UNIT ") {
            Meta::Unit
        } else {
            return Err(RawError::expected(self.pos + 2, "HELP, TYPE, UNIT or EOF after \"# \""));
        };
        self.pos += 7;
        let metric = self.metadata_name(meta)?;
        if self.peek() != Some(b' ') {
            let what = format!("' ' and text after the metric name in {}", meta.keyword());
            return Err(RawError::expected(self.pos, what));
        }
        match self.take_line(self.pos + 1) {
            (start, Some(end)) => self.metadata(meta, metric, start, end).map(Some),
            (_, None) => Err(RawError::new(self.input.len(), ErrorKind::MissingEof)),
        }
    }

    fn om_sample(&mut self) -> Result<Line, RawError> {
        let start = self.pos;
        self.name = None;
        self.labels.clear();
        if self.input[start] != b'{' {
            self.pos += 1;
            self.scan(METRIC_CONT);
            self.name = Some(Span::plain(start, self.pos));
        }
        if self.peek() == Some(b'{') {
            self.om_labels(false)?;
        }
        let series_end = self.pos;
        if self.name.is_none() {
            return Err(RawError::new(start, ErrorKind::MissingMetricName));
        }
        self.om_sample_tail(start, series_end, false)
    }

    /// Value, timestamp and exemplar of a sample line whose series ends at
    /// `pos`.
    fn om_sample_tail(
        &mut self,
        start: usize,
        series_end: usize,
        hinted: bool,
    ) -> Result<Line, RawError> {
        if self.peek() != Some(b' ') {
            return Err(RawError::expected(self.pos, "' ' before the sample value"));
        }
        self.pos += 1;
        let value = self.value()?;
        let mut timestamp = None;
        if self.peek() == Some(b' ') && !self.at_exemplar() {
            self.pos += 1;
            let (ts_start, ts_end) = self.om_token("a timestamp")?;
            timestamp = Some(self.om_timestamp(ts_start, ts_end)?);
        }
        let exemplar = self.at_exemplar();
        if exemplar {
            self.om_exemplar()?;
        }
        match self.peek() {
            Some(b'\n') => self.pos += 1,
            None => return Err(RawError::new(self.pos, ErrorKind::MissingEof)),
            Some(_) => {
                let what = if exemplar {
                    "end of line after the exemplar"
                } else if timestamp.is_some() {
                    "end of line or an exemplar after the timestamp"
                } else {
                    "a timestamp, an exemplar or end of line after the value"
                };
                return Err(RawError::expected(self.pos, what));
            }
        }
        self.sample = RawSample { series_start: start, series_end, value, timestamp, hinted };
        Ok(Line::Sample)
    }

    /// A token up to the next space or newline; it must not be empty.
    fn om_token(&mut self, what: &'static str) -> Result<(usize, usize), RawError> {
        let start = self.pos;
        let len =
            memchr::memchr2(b' ', b'\n', &self.input[start..]).unwrap_or(self.input.len() - start);
        if len == 0 {
            return Err(RawError::expected(start, what));
        }
        self.pos = start + len;
        Ok((start, self.pos))
    }

    fn om_timestamp(&self, start: usize, end: usize) -> Result<i64, RawError> {
        let token = &self.input[start..end];
        float::parse_seconds_as_millis(token).map_err(|e| {
            let kind = match e {
                NumberError::Syntax => ErrorKind::InvalidTimestamp(lossy(token)),
                NumberError::Range => ErrorKind::TimestampOutOfRange(lossy(token)),
            };
            RawError::new(start, kind)
        })
    }

    fn at_exemplar(&self) -> bool {
        self.input[self.pos..].starts_with(b" # {")
    }

    /// ` # {labels} value [timestamp]`: checked like Prometheus checks it,
    /// then dropped (tocsin does not store exemplars).
    fn om_exemplar(&mut self) -> Result<(), RawError> {
        self.pos += 3;
        self.om_labels(true)?;
        if self.peek() != Some(b' ') {
            return Err(RawError::expected(self.pos, "' ' before the exemplar value"));
        }
        self.pos += 1;
        let (start, end) = self.om_token("an exemplar value")?;
        self.number(start, end)?;
        if self.peek() == Some(b' ') {
            self.pos += 1;
            let (start, end) = self.om_token("an exemplar timestamp")?;
            self.om_timestamp(start, end)?;
        }
        Ok(())
    }

    fn om_labels(&mut self, exemplar: bool) -> Result<(), RawError> {
        self.pos += 1;
        loop {
            let item = self.pos;
            let Some((name, quoted)) = self.label_name_or_close(item)? else {
                return Ok(());
            };
            match self.peek() {
                Some(b'=') => self.pos += 1,
                Some(b',' | b'}') if quoted && !exemplar => {
                    self.set_quoted_name(item, name)?;
                    if self.peek() == Some(b',') {
                        self.pos += 1;
                    }
                    continue;
                }
                _ => return Err(self.expected_equals(name)),
            }
            if self.peek() != Some(b'"') {
                return Err(RawError::expected(self.pos, "a quoted label value"));
            }
            let value = self.quoted()?;
            if exemplar {
                // Exemplar labels are never turned into strings, so check
                // here what Prometheus checks.
                str_of(self.input, None, name, "exemplar label name")?;
                str_of(self.input, None, value, "exemplar label value")?;
            } else {
                self.labels.push(LabelSpan { name, value });
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(RawError::expected(self.pos, "',' or '}' after a label value")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Renders every entry of `input` compactly, or the first error.
    fn render(input: &[u8], format: Format) -> Result<Vec<String>, String> {
        let mut p = Parser::new(input, format);
        let mut out = Vec::new();
        loop {
            match p.next_entry() {
                Ok(None) => return Ok(out),
                Ok(Some(e)) => out.push(match e {
                    Entry::Help { metric, text } => format!("help {metric} {text:?}"),
                    Entry::Type { metric, metric_type } => {
                        format!("type {metric} {}", metric_type.as_str())
                    }
                    Entry::Unit { metric, unit } => format!("unit {metric} {unit}"),
                    Entry::Comment(c) => format!("comment {:?}", String::from_utf8_lossy(c)),
                    Entry::Sample(s) => {
                        let mut line = format!("{} {}", s.to_labels(), s.value());
                        if let Some(t) = s.timestamp() {
                            line.push_str(&format!(" @{t}"));
                        }
                        line
                    }
                }),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn prom(input: &str) -> Vec<String> {
        render(input.as_bytes(), Format::PrometheusText).unwrap_or_else(|e| panic!("{e}"))
    }

    fn prom_err(input: &str) -> String {
        render(input.as_bytes(), Format::PrometheusText).expect_err(input)
    }

    fn om(input: &str) -> Vec<String> {
        render(input.as_bytes(), Format::OpenMetrics).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn prometheus_text_exposition() {
        let input = "\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000

# A plain comment
metric_without_timestamp_and_labels 12.47
some:aggregate:rate5m{a_b=\"c\"}\t1
_underscore 1
";
        assert_eq!(
            prom(input),
            [
                "help http_requests_total \"The total number of HTTP requests.\"",
                "type http_requests_total counter",
                r#"{__name__="http_requests_total", code="200", method="post"} 1027 @1395066363000"#,
                r#"{__name__="http_requests_total", code="400", method="post"} 3 @1395066363000"#,
                "comment \" A plain comment\"",
                r#"{__name__="metric_without_timestamp_and_labels"} 12.47"#,
                r#"{__name__="some:aggregate:rate5m", a_b="c"} 1"#,
                r#"{__name__="_underscore"} 1"#,
            ]
        );
    }

    #[test]
    fn prometheus_blanks_are_allowed_between_all_tokens() {
        let want = [r#"{__name__="m", a="1", b="2"} 5 @7"#];
        for input in [
            "m{a=\"1\",b=\"2\"} 5 7",
            "  m { a = \"1\" , b = \"2\" } \t5\t 7 \t",
            "m{a=\"1\" b=\"2\"} 5 7",
            "m{a=\"1\",b=\"2\",} 5 7",
            "\n\n  \t\nm{ a=\"1\", b=\"2\" }5 7\n\n",
        ] {
            assert_eq!(prom(input), want, "{input:?}");
        }
        // The value token starts right after the name or '}'.
        assert_eq!(prom("m+1"), [r#"{__name__="m"} 1"#]);
        assert_eq!(prom("m{}-2"), [r#"{__name__="m"} -2"#]);
        assert_eq!(prom(""), Vec::<String>::new());
    }

    #[test]
    fn values_follow_go_parse_float() {
        let input =
            "a NaN\nb +Inf\nc -Inf\nd Inf\ne inf\nf -infinity\ng nan\nh 1e3\ni -0.5e-3\nj .5\n";
        assert_eq!(
            prom(input),
            [
                r#"{__name__="a"} NaN"#,
                r#"{__name__="b"} inf"#,
                r#"{__name__="c"} -inf"#,
                r#"{__name__="d"} inf"#,
                r#"{__name__="e"} inf"#,
                r#"{__name__="f"} -inf"#,
                r#"{__name__="g"} NaN"#,
                r#"{__name__="h"} 1000"#,
                r#"{__name__="i"} -0.0005"#,
                r#"{__name__="j"} 0.5"#,
            ]
        );
        // Parsed NaN is an ordinary NaN, never the staleness marker.
        let mut p = Parser::new(b"a NaN", Format::PrometheusText);
        let Ok(Some(Entry::Sample(s))) = p.next_entry() else { panic!() };
        assert!(s.value().is_nan() && !crate::sample::is_stale_nan(s.value()));
        assert_eq!(prom_err("a -NaN"), r#"1:3: invalid sample value "-NaN""#);
        assert_eq!(prom_err("a 1_000"), r#"1:3: invalid sample value "1_000""#);
        assert_eq!(prom_err("a 0x1p-3"), r#"1:3: invalid sample value "0x1p-3""#);
        assert_eq!(prom_err("a true"), r#"1:3: invalid sample value "true""#);
        assert_eq!(prom_err("a 1e400"), r#"1:3: sample value "1e400" is out of range"#);
        // Prometheus does not accept CRLF line ends either.
        assert_eq!(prom_err("a 1\r\n"), r#"1:3: invalid sample value "1\r""#);
    }

    #[test]
    fn timestamps_are_unsigned_integer_milliseconds() {
        assert_eq!(prom("a 1 0"), [r#"{__name__="a"} 1 @0"#]);
        assert_eq!(prom("a 1 9223372036854775807"), [r#"{__name__="a"} 1 @9223372036854775807"#]);
        assert_eq!(
            prom_err("a 1 9223372036854775808"),
            r#"1:5: timestamp "9223372036854775808" is out of range"#
        );
        assert_eq!(prom_err("a 1 -5"), "1:5: expected a timestamp or end of line, got '-'");
        assert_eq!(prom_err("a 1 1.5"), "1:6: expected end of line after the timestamp, got '.'");
        assert_eq!(prom_err("a 1 2 3"), "1:7: expected end of line after the timestamp, got '3'");
        assert_eq!(prom_err("a 1 1_2"), "1:6: expected end of line after the timestamp, got '_'");
    }

    #[test]
    fn label_value_escapes() {
        let input = r#"a{b="x\\y", c="q\"q", d="l\nl", e="\t\u"} 1"#;
        let mut p = Parser::new(input.as_bytes(), Format::PrometheusText);
        let Ok(Some(Entry::Sample(s))) = p.next_entry() else { panic!() };
        let labels: Vec<_> = s.labels().collect();
        assert_eq!(labels[0], (Cow::Borrowed("b"), Cow::Owned::<str>("x\\y".into())));
        assert_eq!(labels[1].1, "q\"q");
        assert_eq!(labels[2].1, "l\nl");
        // Unknown escapes stay as written, as with Prometheus.
        assert_eq!(labels[3].1, "\\t\\u");
        // An escaped backslash before the closing quote.
        assert_eq!(prom(r#"a{b="x\\"} 1"#), [r#"{__name__="a", b="x\\"} 1"#]);
        assert_eq!(
            prom_err("a{b=\"x\\\ny\"} 1"),
            "1:8: expected an escaped character after '\\', got end of line"
        );
    }

    #[test]
    fn label_values_without_escapes_borrow_from_the_input() {
        let input = r#"a{b="plain",c="esc\"aped"} 1"#;
        let mut p = Parser::new(input.as_bytes(), Format::PrometheusText);
        let Ok(Some(Entry::Sample(s))) = p.next_entry() else { panic!() };
        assert!(matches!(s.metric_name(), Cow::Borrowed("a")));
        let labels: Vec<_> = s.labels().collect();
        assert!(matches!(labels[0], (Cow::Borrowed("b"), Cow::Borrowed("plain"))));
        assert!(matches!(labels[1].1, Cow::Owned(_)));
        assert_eq!(s.series_text(), br#"a{b="plain",c="esc\"aped"}"#);
    }

    #[test]
    fn prometheus_quoted_strings_may_span_lines() {
        assert_eq!(
            prom("a{b=\"x\ny\"} 1\nc 2"),
            [r#"{__name__="a", b="x\ny"} 1"#, r#"{__name__="c"} 2"#]
        );
    }

    #[test]
    fn quoted_utf8_names() {
        assert_eq!(prom(r#"{"my.metric"} 1"#), [r#"{__name__="my.metric"} 1"#]);
        assert_eq!(
            prom(r#"{"my.metric", "label.name"="v", plain="p"} 1"#),
            [r#"{__name__="my.metric", "label.name"="v", plain="p"} 1"#]
        );
        // The name may come anywhere in the braces, and a legacy name may be quoted.
        assert_eq!(
            prom(r#"{b="c", "temperature.°C" } 1"#),
            [r#"{__name__="temperature.°C", b="c"} 1"#]
        );
        assert_eq!(prom(r#"a{"b"="c"} 1"#), [r#"{__name__="a", b="c"} 1"#]);
        assert_eq!(prom(r#"{"a\"b"} 1"#), [r#"{__name__="a\"b"} 1"#]);
        assert_eq!(
            om("{\"my.metric\",\"label.name\"=\"v\"} 1\n# EOF\n"),
            [r#"{__name__="my.metric", "label.name"="v"} 1"#]
        );
        assert_eq!(
            prom("# HELP \"my.metric\" Some help.\n# TYPE \"my.metric\" gauge\n"),
            ["help my.metric \"Some help.\"", "type my.metric gauge"]
        );
    }

    #[test]
    fn metadata_lines() {
        assert_eq!(
            prom(
                "# HELP a Help with \\\\ and \\n and \\\" in it.\n#\tTYPE a untyped\n# HELP b\n# HELP c \n# HELP d  two spaces\n"
            ),
            [
                "help a \"Help with \\\\ and \\n and \\\\\\\" in it.\"",
                "type a unknown",
                "help b \"\"",
                "help c \"\"",
                "help d \" two spaces\""
            ]
        );
        // Not metadata: no blank after '#', or no blank after the keyword.
        assert_eq!(
            prom("#HELP x y\n# HELPER x\n# HELP\n#\n# \u{e9}t\u{e9}\n"),
            [
                "comment \"HELP x y\"",
                "comment \" HELPER x\"",
                "comment \" HELP\"",
                "comment \"\"",
                "comment \" \u{e9}t\u{e9}\""
            ]
        );
        // Comments are not checked for UTF-8, help text is.
        assert_eq!(
            render(b"# \xff\n", Format::PrometheusText),
            Ok(vec!["comment \" \u{fffd}\"".into()])
        );
        let err = render(b"# HELP a b\xffc", Format::PrometheusText);
        assert_eq!(err, Err("1:11: invalid UTF-8 in help text".into()));
        for t in ["counter", "gauge", "histogram", "summary", "untyped"] {
            assert_eq!(prom(&format!("# TYPE m {t}")).len(), 1);
        }
        for t in ["info", "stateset", "gaugehistogram", "unknown", "Counter", "counter ", ""] {
            assert_eq!(
                prom_err(&format!("# TYPE m {t}")),
                format!("1:10: invalid metric type {t:?}")
            );
        }
        assert_eq!(prom_err("# HELP 1a x"), "1:8: expected a metric name after HELP, got '1'");
        assert_eq!(
            prom_err("# TYPE \n"),
            "1:8: expected a metric name after TYPE, got end of line"
        );
        assert_eq!(
            prom_err("# HELP a.b x"),
            "1:9: expected a blank after the metric name in HELP, got '.'"
        );
    }

    #[test]
    fn bucket_and_quantile_labels_are_normalised_by_type() {
        let input = "\
# TYPE h histogram
h_bucket{le=\"1\"} 1
h_bucket{le=\"2.50\"} 1
h_bucket{le=\"1e6\"} 1
h_bucket{le=\"+inf\"} 1
h_bucket{le=\"junk\"} 1
h_sum{x=\"1\"} 1
# TYPE s summary
s{quantile=\"0\"} 1
s{le=\"1\"} 1
# TYPE g gauge
g{le=\"1\",quantile=\"1\"} 1
";
        assert_eq!(
            prom(input),
            [
                "type h histogram",
                r#"{__name__="h_bucket", le="1.0"} 1"#,
                r#"{__name__="h_bucket", le="2.5"} 1"#,
                r#"{__name__="h_bucket", le="1e+06"} 1"#,
                r#"{__name__="h_bucket", le="+Inf"} 1"#,
                r#"{__name__="h_bucket", le="junk"} 1"#,
                r#"{__name__="h_sum", x="1"} 1"#,
                "type s summary",
                r#"{__name__="s", quantile="0.0"} 1"#,
                r#"{__name__="s", le="1"} 1"#,
                "type g gauge",
                r#"{__name__="g", le="1", quantile="1"} 1"#,
            ]
        );
    }

    #[test]
    fn empty_label_values_mean_absent() {
        assert_eq!(prom(r#"a{b="",c="d"} 1"#), [r#"{__name__="a", c="d"} 1"#]);
    }

    #[test]
    fn nul_is_allowed_only_in_text() {
        assert_eq!(prom("a{b=\"x\0y\"} 1").len(), 1);
        assert_eq!(prom("# HELP a x\0y\n# x\0y\n").len(), 2);
        assert_eq!(prom_err("a\0 1"), "1:2: invalid sample value \"\\0\"");
        assert_eq!(
            prom_err("a{b\0=\"c\"} 1"),
            "1:4: expected '=' after label name \"b\", got '\\0'"
        );
        assert_eq!(prom_err("\0"), "1:1: expected a metric name, '{' or '#', got '\\0'");
    }

    #[test]
    fn prometheus_syntax_errors() {
        let cases = [
            ("a", "1:2: expected a sample value, got end of input"),
            ("a\n", "1:2: expected a sample value, got end of line"),
            ("a{b='c'} 1", "1:5: expected a quoted label value, got '\\''"),
            ("a{b=\n", "1:5: expected a quoted label value, got end of line"),
            ("a{\u{e9}=\"x\"} 1", "1:3: expected a label name or '}', got '\u{e9}'"),
            (
                "a{b=\"c\"} 1\nx 1\nhttp{code\"200\"} 1",
                "3:10: expected '=' after label name \"code\", got '\"'",
            ),
            ("a{b:c=\"d\"} 1", "1:4: expected '=' after label name \"b\", got ':'"),
            ("a{=\"\"} 0", "1:3: expected a label name or '}', got '='"),
            ("a{,b=\"c\"} 0", "1:3: expected a label name or '}', got ','"),
            ("a{b=\"c\",,d=\"e\"} 0", "1:9: expected a label name or '}', got ','"),
            ("{A}0", "1:3: expected '=' after label name \"A\", got '}'"),
            ("a{b=\"c\"}{d=\"e\"} 1", "1:9: expected a sample value, got '{'"),
            ("a{b=\"unterminated} 1\n", "1:5: unterminated quoted string"),
            ("a{b=\"c\" 1", "1:9: expected a label name or '}', got '1'"),
            ("9 1", "1:1: expected a metric name, '{' or '#', got '9'"),
            ("a 1 2 # x", "1:7: expected end of line after the timestamp, got '#'"),
            ("a 1 #", "1:5: expected a timestamp or end of line, got '#'"),
            ("a 1{", "1:4: expected a timestamp or end of line, got '{'"),
        ];
        for (input, want) in cases {
            assert_eq!(
                render(input.as_bytes(), Format::PrometheusText),
                Err(want.into()),
                "{input:?}"
            );
        }
    }

    #[test]
    fn label_validation_errors() {
        let cases = [
            ("{a=\"1\"} 1", "1:1: metric name not set"),
            ("{__name__=\"a\"} 1", "1:1: metric name not set"),
            ("a{\"b\"} 1", "1:3: metric name set twice"),
            ("{\"a\", \"b\"} 1", "1:7: metric name set twice"),
            ("{\"\"} 1", "1:3: empty metric name"),
            ("a{\"\"=\"x\"} 1", "1:4: empty label name"),
            ("a{b=\"1\",c=\"2\",b=\"3\"} 1", "1:15: duplicate label name \"b\""),
            ("a{b=\"1\",\"b\"=\"3\"} 1", "1:10: duplicate label name \"b\""),
            ("a{__name__=\"b\"} 1", "1:3: duplicate label name \"__name__\""),
        ];
        for (input, want) in cases {
            assert_eq!(
                render(input.as_bytes(), Format::PrometheusText),
                Err(want.into()),
                "{input:?}"
            );
        }
        let bytes: [(&[u8], &str); 4] = [
            (b"a{\xff=\"x\"} 1", "1:3: expected a label name or '}', got byte 0xff"),
            (b"a{b=\"\xff\"} 1", "1:6: invalid UTF-8 in label value"),
            (b"{\"\xff\"} 1", "1:3: invalid UTF-8 in metric name"),
            (b"a{\"\xc3\"=\"x\"} 1", "1:4: invalid UTF-8 in label name"),
        ];
        for (input, want) in bytes {
            assert_eq!(render(input, Format::PrometheusText), Err(want.into()), "{input:?}");
        }
        // Escapes are resolved before comparing names.
        assert_eq!(
            prom_err(r#"a{"x\"y"="1","x\"y"="2"} 1"#),
            r#"1:15: duplicate label name "x\"y""#
        );
        // Many labels take the sorting path.
        let mut line = String::from("a{");
        for i in 0..40 {
            line.push_str(&format!("l{i}=\"v\","));
        }
        line.push_str("l7=\"again\"} 1");
        assert_eq!(prom_err(&line), format!("1:{}: duplicate label name \"l7\"", line.len() - 12));
        line.replace_range(line.len() - 13..line.len() - 11, "zz");
        assert_eq!(prom(&line).len(), 1);
    }

    #[test]
    fn openmetrics_exposition() {
        let input = "\
# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0
# TYPE go_goroutines gauge
go_goroutines 69 1520879607.789
# TYPE foo counter
foo_total{a=\"b\",} 17.0 1520879607.789 # {id=\"counter-test\"} 5
foo_total 17.0 # {id=\"x\",\"u.tf\"=\"8\"} 1 1520879607.789
foo_total -1.5e3 # {} NaN
# TYPE ss stateset
ss{ss=\"a\"} 1
# TYPE i info
i_info{v=\"1\"} 1
# TYPE gh gaugehistogram
gh_gcount 1
# TYPE u unknown
u 1
# HELP esc Quote \\\" and backslash \\\\.
# EOF
";
        assert_eq!(
            om(input),
            [
                "type acme_http_router_request_seconds summary",
                "unit acme_http_router_request_seconds seconds",
                "help acme_http_router_request_seconds \"Latency though all of ACME's HTTP request router.\"",
                r#"{__name__="acme_http_router_request_seconds_sum", method="GET", path="/api/v1"} 9036.32"#,
                r#"{__name__="acme_http_router_request_seconds_count", method="GET", path="/api/v1"} 807283"#,
                r#"{__name__="acme_http_router_request_seconds_created", method="GET", path="/api/v1"} 1605281325"#,
                "type go_goroutines gauge",
                r#"{__name__="go_goroutines"} 69 @1520879607789"#,
                "type foo counter",
                r#"{__name__="foo_total", a="b"} 17 @1520879607789"#,
                r#"{__name__="foo_total"} 17"#,
                r#"{__name__="foo_total"} -1500"#,
                "type ss stateset",
                r#"{__name__="ss", ss="a"} 1"#,
                "type i info",
                r#"{__name__="i_info", v="1"} 1"#,
                "type gh gaugehistogram",
                r#"{__name__="gh_gcount"} 1"#,
                "type u unknown",
                r#"{__name__="u"} 1"#,
                "help esc \"Quote \\\" and backslash \\\\.\"",
            ]
        );
        // "# EOF" may lack its newline; nothing at all is fine too.
        assert_eq!(om("a 1\n# EOF"), [r#"{__name__="a"} 1"#]);
        assert_eq!(om("# EOF\n"), Vec::<String>::new());
        // Float-second timestamps truncate to milliseconds, negative ones too.
        assert_eq!(om("a 1 -1.0015\n# EOF\n"), [r#"{__name__="a"} 1 @-1001"#]);
        assert_eq!(om("a 1 1e3\n# EOF\n"), [r#"{__name__="a"} 1 @1000000"#]);
        // Empty help and unit.
        assert_eq!(om("# HELP a \n# UNIT a \n# EOF\n"), ["help a \"\"", "unit a "]);
    }

    #[test]
    fn openmetrics_errors() {
        let cases = [
            ("", "1:1: OpenMetrics data does not end with \"# EOF\""),
            ("a 1\n", "2:1: OpenMetrics data does not end with \"# EOF\""),
            ("a 1", "1:4: OpenMetrics data does not end with \"# EOF\""),
            ("# HELP a x", "1:11: OpenMetrics data does not end with \"# EOF\""),
            ("a 1 # {b=\"c\"} 2", "1:16: OpenMetrics data does not end with \"# EOF\""),
            ("# EOF\na 1\n", "2:1: unexpected data after \"# EOF\""),
            ("# EOF\n\n", "2:1: unexpected data after \"# EOF\""),
            ("# EOF ", "1:6: unexpected data after \"# EOF\""),
            ("# EOFa 1", "1:6: unexpected data after \"# EOF\""),
            ("\n# EOF\n", "1:1: expected a metric name, '{' or '#', got end of line"),
            (" a 1\n# EOF\n", "1:1: expected a metric name, '{' or '#', got ' '"),
            ("#comment\n# EOF\n", "1:2: expected ' ' after '#', got 'c'"),
            ("# comment\n# EOF\n", "1:3: expected HELP, TYPE, UNIT or EOF after \"# \", got 'c'"),
            (
                "#  TYPE a gauge\n# EOF\n",
                "1:3: expected HELP, TYPE, UNIT or EOF after \"# \", got ' '",
            ),
            ("#\tTYPE a gauge\n# EOF\n", "1:2: expected ' ' after '#', got '\\t'"),
            ("# TYPE a untyped\n# EOF\n", "1:10: invalid metric type \"untyped\""),
            ("# TYPE a counter \n# EOF\n", "1:10: invalid metric type \"counter \""),
            ("# TYPE a  counter\n# EOF\n", "1:10: invalid metric type \" counter\""),
            (
                "# TYPE a\n# EOF\n",
                "1:9: expected ' ' and text after the metric name in TYPE, got end of line",
            ),
            (
                "# HELP a\n# EOF\n",
                "1:9: expected ' ' and text after the metric name in HELP, got end of line",
            ),
            ("# TYPE \n# EOF\n", "1:8: expected a metric name after TYPE, got end of line"),
            (
                "# UNIT a_seconds second\n# EOF\n",
                "1:18: unit \"second\" is not a suffix of metric \"a_seconds\"",
            ),
            (
                "# UNIT aseconds seconds\n# EOF\n",
                "1:17: unit \"seconds\" is not a suffix of metric \"aseconds\"",
            ),
            (
                "# UNIT seconds seconds\n# EOF\n",
                "1:16: unit \"seconds\" is not a suffix of metric \"seconds\"",
            ),
            ("a\t1\n# EOF\n", "1:2: expected ' ' before the sample value, got '\\t'"),
            ("a  1\n# EOF\n", "1:3: expected a sample value, got ' '"),
            ("a 1\t2\n# EOF\n", "1:3: invalid sample value \"1\\t2\""),
            (
                "a 1 2 \n# EOF\n",
                "1:6: expected end of line or an exemplar after the timestamp, got ' '",
            ),
            ("a 1 \n# EOF\n", "1:5: expected a timestamp, got end of line"),
            (
                "a 1 2 3\n# EOF\n",
                "1:6: expected end of line or an exemplar after the timestamp, got ' '",
            ),
            (
                "a 1 2 #\n# EOF\n",
                "1:6: expected end of line or an exemplar after the timestamp, got ' '",
            ),
            ("a 1 1z\n# EOF\n", "1:5: invalid timestamp \"1z\""),
            ("a 1 NaN\n# EOF\n", "1:5: invalid timestamp \"NaN\""),
            ("a 1 -Inf\n# EOF\n", "1:5: invalid timestamp \"-Inf\""),
            ("a 1 1e300\n# EOF\n", "1:5: timestamp \"1e300\" is out of range"),
            (
                "a{b=\"c\" ,d=\"e\"} 1\n# EOF\n",
                "1:8: expected ',' or '}' after a label value, got ' '",
            ),
            ("a{ b=\"c\"} 1\n# EOF\n", "1:3: expected a label name or '}', got ' '"),
            (
                "a{b=\"c\"d=\"e\"} 1\n# EOF\n",
                "1:8: expected ',' or '}' after a label value, got 'd'",
            ),
            ("a{b=\"c\",,d=\"e\"} 1\n# EOF\n", "1:9: expected a label name or '}', got ','"),
            ("a {b=\"c\"} 1\n# EOF\n", "1:3: invalid sample value \"{b=\\\"c\\\"}\""),
            (
                "a{b=\"x\ny\"} 1\n# EOF\n",
                "1:7: expected '\"' closing the quoted string, got end of line",
            ),
            ("{b=\"c\",} 1\n# EOF\n", "1:1: metric name not set"),
            ("a 1 # {b} 1\n# EOF\n", "1:9: expected '=' after label name \"b\", got '}'"),
            ("a 1 # {\"b\"} 1\n# EOF\n", "1:11: expected '=' after label name \"b\", got '}'"),
            ("a 1 # {b=c} 1\n# EOF\n", "1:10: expected a quoted label value, got 'c'"),
            (
                "a 1 # {b=\"c\"}\n# EOF\n",
                "1:14: expected ' ' before the exemplar value, got end of line",
            ),
            ("a 1 # {b=\"c\"} x\n# EOF\n", "1:15: invalid sample value \"x\""),
            ("a 1 # {b=\"c\"} 1 NaN\n# EOF\n", "1:17: invalid timestamp \"NaN\""),
            (
                "a 1 # {b=\"c\"} 1 2 3\n# EOF\n",
                "1:18: expected end of line after the exemplar, got ' '",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                render(input.as_bytes(), Format::OpenMetrics),
                Err(want.into()),
                "{input:?}"
            );
        }
        let bytes: [(&[u8], &str); 2] = [
            (b"a{b=\"\xff\"} 1\n# EOF\n", "1:6: invalid UTF-8 in label value"),
            (b"a 1 # {b=\"\xff\"} 1\n# EOF\n", "1:11: invalid UTF-8 in exemplar label value"),
        ];
        for (input, want) in bytes {
            assert_eq!(render(input, Format::OpenMetrics), Err(want.into()), "{input:?}");
        }
        // Exemplars may hold NUL like any quoted string.
        assert_eq!(om("a 1 # {b=\"\0\"} 1\n# EOF\n").len(), 1);
    }

    #[test]
    fn resumes_at_the_next_line_after_an_error() {
        let input = "a 1\nb{ 2\nc 3\nd x\ne 5 # EOF\n";
        let mut p = Parser::new(input.as_bytes(), Format::PrometheusText);
        let mut samples = Vec::new();
        let mut errors = Vec::new();
        loop {
            match p.next_entry() {
                Ok(Some(Entry::Sample(s))) => samples.push(s.metric_name().into_owned()),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => errors.push((e.line, e.column)),
            }
        }
        assert_eq!(samples, ["a", "c"]);
        assert_eq!(errors, [(2, 4), (4, 3), (5, 5)]);
        // A label check failure leaves the parser after its line too.
        let mut p = Parser::new(b"a{b=\"1\",b=\"2\"} 1\nc 1\n", Format::PrometheusText);
        assert!(p.next_entry().is_err());
        assert!(matches!(p.next_entry(), Ok(Some(Entry::Sample(_)))));
        // OpenMetrics reports a missing "# EOF" once, then stops.
        let mut p = Parser::new(b"a x\nb 1\n", Format::OpenMetrics);
        assert!(p.next_entry().is_err());
        assert!(matches!(p.next_entry(), Ok(Some(Entry::Sample(_)))));
        assert_eq!(p.next_entry().unwrap_err().kind, ErrorKind::MissingEof);
        assert!(matches!(p.next_entry(), Ok(None)));
    }

    #[test]
    fn finds_the_end_of_a_plain_quoted_run() {
        for (input, want) in [
            (&b"abc\"def"[..], 3),
            (b"0123456789abcdef\\", 16),
            (b"01234567\n", 8),
            (b"0123456\"89\"", 7),
            (b"\xff\xfe\x80\x00\x22", 4),
            (b"plain", 5),
            (b"", 0),
        ] {
            assert_eq!(skip_plain_quoted(input, 0), want, "{input:?}");
        }
        // From every start position, agree with a byte-by-byte scan.
        let text = b"ab\"cdefghijklm\\nopqrstuvwxyz0123456789\nABCDEFGHIJ\"";
        for start in 0..text.len() {
            let want = (start..text.len())
                .find(|&j| matches!(text[j], b'"' | b'\\' | b'\n'))
                .unwrap_or(text.len());
            assert_eq!(skip_plain_quoted(text, start), want, "from {start}");
        }
    }

    #[test]
    fn hints_skip_only_a_series_that_lexes_the_same() {
        let cases = [
            (Format::PrometheusText, "a 1", "a", true),
            (Format::PrometheusText, "a\t 1 5", "a", true),
            (Format::PrometheusText, "ab 1", "a", false),
            (Format::PrometheusText, "a:b 1", "a", false),
            (Format::PrometheusText, "a{x=\"1\"} 1", "a", false),
            (Format::PrometheusText, "a \t{x=\"1\"} 1", "a", false),
            (Format::PrometheusText, "a{x=\"1\"} 1", "a{x=\"1\"}", true),
            (Format::PrometheusText, "a{x=\"1\"}1", "a{x=\"1\"}", true),
            (Format::PrometheusText, "a{x=\"10\"} 1", "a{x=\"1\"}", false),
            (Format::PrometheusText, "  {\"a\"} 1", "{\"a\"}", true),
            (Format::OpenMetrics, "a 1\n# EOF\n", "a", true),
            (Format::OpenMetrics, "a{x=\"1\"} 1\n# EOF\n", "a", false),
            (Format::OpenMetrics, "a{x=\"1\"} 1\n# EOF\n", "a{x=\"1\"}", true),
        ];
        for (format, input, hint, hinted) in cases {
            let mut p = Parser::new(input.as_bytes(), format);
            assert_eq!(p.next_line(hint.as_bytes()).unwrap(), Some(Line::Sample), "{input:?}");
            let s = p.sample();
            assert_eq!(s.hinted, hinted, "{input:?} with hint {hint:?}");
            assert_eq!(s.value, 1.0);
            // Hinted or not, the series text is what lexing finds.
            let mut q = Parser::new(input.as_bytes(), format);
            q.next_line(&[]).unwrap();
            let r = q.sample();
            assert_eq!((s.series_start, s.series_end), (r.series_start, r.series_end));
            assert_eq!(s.timestamp, r.timestamp);
        }
    }

    /// Label values and names that need every kind of escaping.
    fn text_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just(' '),
                Just('{'),
                Just('}'),
                Just(','),
                Just('='),
                Just('#'),
                Just('\0'),
                prop::char::range('a', 'z'),
                any::<char>(),
            ],
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn escape(s: &str) -> String {
        s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    }

    /// A label name as a client would write it: bare when legacy, else quoted.
    fn write_name(out: &mut String, name: &str) {
        if crate::labels::is_legacy_label_name(name) {
            out.push_str(name);
        } else {
            out.push('"');
            out.push_str(&escape(name));
            out.push('"');
        }
    }

    prop_compose! {
        fn series()(
            name in prop_oneof!["[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", text_strategy()],
            labels in prop::collection::btree_map(
                prop_oneof!["[a-zA-Z_][a-zA-Z0-9_]{0,6}", text_strategy()],
                text_strategy(),
                0..5,
            ),
            value in prop_oneof![any::<f64>(), Just(f64::INFINITY), Just(f64::NAN), -1e6..1e6],
            timestamp in prop::option::of(0i64..4_000_000_000_000),
        ) -> (String, Vec<(String, String)>, f64, Option<i64>) {
            (name, labels.into_iter().collect(), value, timestamp)
        }
    }

    /// Writes a sample line the way client libraries do.
    fn write_line(
        out: &mut String,
        (name, labels, value, timestamp): &(String, Vec<(String, String)>, f64, Option<i64>),
        format: Format,
    ) {
        let legacy = crate::labels::is_legacy_metric_name(name);
        if legacy {
            out.push_str(name);
        }
        out.push('{');
        if !legacy {
            out.push('"');
            out.push_str(&escape(name));
            out.push_str("\",");
        }
        for (n, v) in labels {
            write_name(out, n);
            out.push_str("=\"");
            out.push_str(&escape(v));
            out.push_str("\",");
        }
        out.push_str("} ");
        out.push_str(&crate::gofmt::format_float_g(*value));
        if let Some(t) = timestamp {
            match format {
                Format::PrometheusText => out.push_str(&format!(" {t}")),
                Format::OpenMetrics => out.push_str(&format!(" {}.{:03}", t / 1000, t % 1000)),
            }
        }
        out.push('\n');
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn written_series_parse_back(
            lines in prop::collection::vec(series(), 1..8),
            om_format: bool,
        ) {
            let format = if om_format { Format::OpenMetrics } else { Format::PrometheusText };
            let mut text = String::new();
            for line in &lines {
                write_line(&mut text, line, format);
            }
            if om_format {
                text.push_str("# EOF\n");
            }
            let mut p = Parser::new(text.as_bytes(), format);
            for (name, labels, value, timestamp) in &lines {
                let entry = p.next_entry();
                let sample = match entry {
                    Ok(Some(Entry::Sample(s))) => s,
                    other => {
                        // Only invalid label sets may fail, and only as label checks.
                        let err = match other { Err(e) => e, Ok(_) => panic!("no sample for {text:?}") };
                        let dup = labels.iter().any(|(n, _)| n == METRIC_NAME);
                        prop_assert!(
                            name.is_empty() || labels.iter().any(|(n, _)| n.is_empty()) || dup,
                            "{} in {:?}", err, text
                        );
                        continue;
                    }
                };
                prop_assert_eq!(&*sample.metric_name(), name.as_str());
                let got: Vec<(String, String)> =
                    sample.labels().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
                prop_assert_eq!(&got, labels);
                prop_assert_eq!(sample.value().to_bits() == value.to_bits() || value.is_nan(), true);
                // OpenMetrics seconds convert back with Prometheus's
                // truncating int64(ts * 1000), which can lose a millisecond.
                let want = timestamp.map(|t| match format {
                    Format::PrometheusText => t,
                    Format::OpenMetrics => (format!("{}.{:03}", t / 1000, t % 1000).parse::<f64>().unwrap() * 1000.0) as i64,
                });
                prop_assert_eq!(sample.timestamp(), want);
            }
            prop_assert!(matches!(p.next_entry(), Ok(None)));
        }

        #[test]
        fn arbitrary_input_never_panics_and_always_progresses(
            input in prop::collection::vec(
                prop_oneof![
                    Just(b'{'), Just(b'}'), Just(b'"'), Just(b'\\'), Just(b'\n'), Just(b' '),
                    Just(b'#'), Just(b'='), Just(b','), Just(b'a'), Just(b'1'), any::<u8>(),
                ],
                0..64,
            ),
            om_format: bool,
        ) {
            let format = if om_format { Format::OpenMetrics } else { Format::PrometheusText };
            let mut p = Parser::new(&input, format);
            // Every call consumes input or ends: bounded by its length.
            for _ in 0..=input.len() + 2 {
                match p.next_entry() {
                    Ok(None) => break,
                    Ok(Some(Entry::Sample(s))) => {
                        let _ = s.to_labels();
                    }
                    _ => {}
                }
            }
            prop_assert!(matches!(p.next_entry(), Ok(None)));
        }
    }
}
