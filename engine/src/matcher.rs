//! Label matchers: `=`, `!=`, `=~`, `!~`.
//!
//! Regular expressions follow Prometheus 3: fully anchored, RE2 syntax, and `.`
//! matches a newline. Rust's `regex` crate implements the same RE2 family, with
//! one difference that matters: Go's `\d`, `\w`, `\s` and `\b` are ASCII-only while
//! Rust's are Unicode-aware. [`translate_go_regex`] rewrites those classes so a
//! pattern selects exactly the series Prometheus would select.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::gofmt;
use crate::labels::{Labels, Str};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("error parsing regexp: {0}")]
pub struct RegexError(String);

/// A compiled matcher. Cheap to clone.
#[derive(Clone)]
pub struct Matcher {
    pub name: Str,
    pub op: MatchOp,
    pub value: Str,
    regex: Option<Arc<Regex>>,
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<Str>,
        value: impl Into<Str>,
    ) -> Result<Self, RegexError> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Arc::new(compile_anchored(&value)?)),
            _ => None,
        };
        Ok(Matcher { name: name.into(), op, value, regex })
    }

    /// `name="value"`; never fails.
    pub fn equal(name: impl Into<Str>, value: impl Into<Str>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    /// Whether a label value (`""` for an absent label) is selected.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => *self.value == *v,
            MatchOp::NotEqual => *self.value != *v,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher selects series lacking the label altogether.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a whole label set is selected by this matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get_or_empty(&self.name))
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op, gofmt::quote(&self.value))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether every matcher selects `labels`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

/// Compiles `pattern` the way Prometheus 3 does: `^(?s:pattern)$` with Go's
/// ASCII-only Perl classes.
pub fn compile_anchored(pattern: &str) -> Result<Regex, RegexError> {
    let translated = translate_go_regex(pattern);
    Regex::new(&format!("^(?s:{translated})$")).map_err(|e| RegexError(describe(&e, pattern)))
}

fn describe(e: &regex::Error, pattern: &str) -> String {
    match e {
        regex::Error::Syntax(s) => {
            // The crate's message is multi-line with a caret diagram; keep the
            // last line, which names the problem, and quote the pattern like Go.
            let reason = s.lines().rev().find(|l| l.starts_with("error:")).unwrap_or(s);
            format!("{}: `{pattern}`", reason.trim_start_matches("error: "))
        }
        other => other.to_string(),
    }
}

/// Rewrites Go's ASCII Perl classes into explicit classes Rust reads the same way.
pub fn translate_go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // Rust allows nested classes, so these work inside `[...]` too.
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Matcher {
        Matcher::new(MatchOp::Regex, "a", p).unwrap()
    }

    #[test]
    fn regex_is_fully_anchored() {
        assert!(re("foo").matches("foo"));
        assert!(!re("foo").matches("foobar"));
        assert!(!re("foo").matches("xfoo"));
        assert!(re("foo|bar").matches("bar"));
    }

    #[test]
    fn dot_matches_newline() {
        assert!(re("a.b").matches("a\nb"));
        assert!(re(".*").matches("x\ny"));
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert!(re(r"\d+").matches("123"));
        assert!(!re(r"\d").matches("٣")); // Arabic-Indic digit: Unicode \d, not Go's
        assert!(!re(r"\w").matches("é"));
        assert!(re(r"[\d_]+").matches("1_2"));
        assert!(re(r"\\d").matches("\\d"));
    }

    #[test]
    fn empty_value_semantics() {
        assert!(Matcher::equal("a", "").matches_empty());
        assert!(Matcher::new(MatchOp::NotEqual, "a", "x").unwrap().matches_empty());
        assert!(!re(".+").matches_empty());
        assert!(re(".*").matches_empty());
    }

    #[test]
    fn bad_regex_is_an_error() {
        let e = Matcher::new(MatchOp::Regex, "a", "(").unwrap_err().to_string();
        assert!(e.starts_with("error parsing regexp: "), "{e}");
        assert!(e.contains("`(`"), "{e}");
    }
}
