//! Parse errors: what went wrong, and where (1-based line and column).

use std::borrow::Cow;
use std::fmt;

/// A malformed exposition body, located at the offending character.
///
/// Displays as `line:column: message`, e.g.
/// `3:17: expected '=' after label name "code", got '"'`. Columns count
/// characters, not bytes, so they agree with what an editor shows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub kind: ErrorKind,
}

/// The reason a body was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("expected {expected}, got {found}")]
    Unexpected { expected: Cow<'static, str>, found: Found },
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("invalid sample value {0:?}")]
    InvalidValue(String),
    #[error("sample value {0:?} is out of range")]
    ValueOutOfRange(String),
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    #[error("timestamp {0:?} is out of range")]
    TimestampOutOfRange(String),
    #[error("invalid metric type {0:?}")]
    InvalidMetricType(String),
    #[error("unit {unit:?} is not a suffix of metric {metric:?}")]
    UnitNotSuffix { unit: String, metric: String },
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    #[error("metric name not set")]
    MissingMetricName,
    #[error("metric name set twice")]
    MetricNameTwice,
    #[error("empty metric name")]
    EmptyMetricName,
    #[error("empty label name")]
    EmptyLabelName,
    #[error("duplicate label name {0:?}")]
    DuplicateLabelName(String),
    #[error("OpenMetrics data does not end with \"# EOF\"")]
    MissingEof,
    #[error("unexpected data after \"# EOF\"")]
    DataAfterEof,
}

/// What the parser found where it expected something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Char(char),
    /// A byte that does not start a valid UTF-8 character.
    Byte(u8),
    EndOfLine,
    EndOfInput,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Char(c) => write!(f, "{c:?}"),
            Found::Byte(b) => write!(f, "byte 0x{b:02x}"),
            Found::EndOfLine => f.write_str("end of line"),
            Found::EndOfInput => f.write_str("end of input"),
        }
    }
}

/// An error located by byte offset only. The lexer produces these on its hot
/// path; turning the offset into line and column costs a scan of the input,
/// which is paid only when an error is actually reported. Boxed, so that the
/// lexer's `Result`s stay small on the path where nothing goes wrong.
#[derive(Debug)]
pub(crate) struct RawError(Box<(usize, RawKind)>);

#[derive(Debug)]
pub(crate) enum RawKind {
    /// "expected X, got <whatever is at the offset>".
    Expected(Cow<'static, str>),
    Other(ErrorKind),
}

impl RawError {
    pub fn expected(offset: usize, what: impl Into<Cow<'static, str>>) -> Self {
        RawError(Box::new((offset, RawKind::Expected(what.into()))))
    }

    pub fn new(offset: usize, kind: ErrorKind) -> Self {
        RawError(Box::new((offset, RawKind::Other(kind))))
    }

    pub fn offset(&self) -> usize {
        self.0.0
    }

    pub fn kind(&self) -> &RawKind {
        &self.0.1
    }
}

/// The character at `offset`, for "got ..." in messages.
pub(crate) fn found_at(input: &[u8], offset: usize) -> Found {
    let Some(rest) = input.get(offset..) else {
        return Found::EndOfInput;
    };
    match rest.first() {
        None => Found::EndOfInput,
        Some(b'\n') => Found::EndOfLine,
        Some(&b) => {
            // At most one character's worth of bytes, so this never scans far.
            let head = &rest[..rest.len().min(4)];
            match head.utf8_chunks().next().and_then(|c| c.valid().chars().next()) {
                Some(c) => Found::Char(c),
                None => Found::Byte(b),
            }
        }
    }
}

/// Turns byte offsets into 1-based line and column. Errors usually arrive in
/// increasing offset order (one per bad line when skipping them), so the
/// cursor resumes from the last answer instead of rescanning from the start.
#[derive(Default)]
pub(crate) struct LineCursor {
    offset: usize,
    line: usize,
    line_start: usize,
}

impl LineCursor {
    pub fn locate(&mut self, input: &[u8], offset: usize) -> (usize, usize) {
        let offset = offset.min(input.len());
        if offset < self.offset {
            *self = LineCursor::default();
        }
        for i in memchr::memchr_iter(b'\n', &input[self.offset..offset]) {
            self.line += 1;
            self.line_start = self.offset + i + 1;
        }
        self.offset = offset;
        // Count characters, not bytes: every byte that is not a UTF-8
        // continuation byte starts one.
        let column = input[self.line_start..offset].iter().filter(|&&b| (b as i8) >= -0x40).count();
        (self.line + 1, column + 1)
    }

    pub fn error(&mut self, input: &[u8], raw: RawError) -> Box<ParseError> {
        let (offset, kind) = *raw.0;
        let (line, column) = self.locate(input, offset);
        let kind = match kind {
            RawKind::Expected(expected) => {
                ErrorKind::Unexpected { expected, found: found_at(input, offset) }
            }
            RawKind::Other(kind) => kind,
        };
        Box::new(ParseError { line, column, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_character_columns() {
        let input = "ab\nc\u{e9}d\n\nx".as_bytes();
        let mut c = LineCursor::default();
        assert_eq!(c.locate(input, 0), (1, 1));
        assert_eq!(c.locate(input, 1), (1, 2));
        assert_eq!(c.locate(input, 3), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(c.locate(input, 6), (2, 3));
        assert_eq!(c.locate(input, 8), (3, 1));
        assert_eq!(c.locate(input, 9), (4, 1));
        // Going backwards rescans from the start.
        assert_eq!(c.locate(input, 4), (2, 2));
        // Past the end clamps to the end.
        assert_eq!(c.locate(input, 100), (4, 2));
    }

    #[test]
    fn describes_what_was_found() {
        assert_eq!(found_at(b"a\"", 1).to_string(), "'\"'");
        assert_eq!(found_at(b"a\n", 1).to_string(), "end of line");
        assert_eq!(found_at(b"a", 1).to_string(), "end of input");
        assert_eq!(found_at(b"a", 7).to_string(), "end of input");
        assert_eq!(found_at(b"\xff", 0).to_string(), "byte 0xff");
        assert_eq!(found_at("\u{e9}x".as_bytes(), 0).to_string(), "'\u{e9}'");
        assert_eq!(found_at(b"\t", 0).to_string(), "'\\t'");
    }

    #[test]
    fn formats_with_position() {
        let mut c = LineCursor::default();
        let input = b"a 1\nb 2\nhttp_totals{code\"200\"} 1\n";
        let e = c.error(input, RawError::expected(24, "'=' after label name \"code\""));
        assert_eq!(e.to_string(), "3:17: expected '=' after label name \"code\", got '\"'");
    }
}
