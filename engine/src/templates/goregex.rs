//! Go's `regexp` for `reReplaceAll` and `match`: Go's RE2 syntax, parsed as
//! Go's `regexp/syntax` parses it (so invalid patterns fail with Go's error
//! texts) and rewritten for the `regex` crate, whose syntax differs: nested
//! classes and `&&` inside brackets, Unicode-aware `\d`, `\s`, `\w` and `\b`,
//! no `\Q...\E`, no `(?)`.
//!
//! Known gaps: a flag group between an atom and its repetition operator
//! (`a(?U)*`) does not change that operator's greediness as in Go, and
//! nesting deeper than the `regex` crate's limit (250) is refused.

use std::fmt::Write;

use regex::Regex;

/// A compiled Go regular expression.
pub(super) struct GoRegex {
    re: Regex,
    /// Capture group names by index (index 0, the whole match, has none).
    names: Vec<Option<String>>,
}

/// Go's `regexp/syntax` error codes.
const MISSING_PAREN: &str = "missing closing )";
const UNEXPECTED_PAREN: &str = "unexpected )";
const MISSING_BRACKET: &str = "missing closing ]";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_RANGE: &str = "invalid character class range";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_REPEAT_ARG: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const NESTING_DEPTH: &str = "expression nests too deeply";
const TOO_LARGE: &str = "expression too large";

/// Go's `syntax.Error` text: "error parsing regexp: CODE: `EXPR`".
fn syntax_error(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

/// One element of a concatenation being built.
struct Piece {
    text: String,
    /// Whether a repetition operator may follow (flag groups are not atoms).
    atom: bool,
    /// The largest count of a counted repetition at the top of this piece,
    /// and the product of those nested inside, for Go's repeat-size check.
    repeat_weight: u64,
}

/// An open group: what it looked like, the alternatives parsed so far and
/// the concatenation in progress.
struct Group {
    open: String,
    alternatives: Vec<String>,
    pieces: Vec<Piece>,
    weight: u64,
}

impl Group {
    fn new(open: String) -> Group {
        Group { open, alternatives: Vec::new(), pieces: Vec::new(), weight: 1 }
    }

    fn concat(&mut self) -> String {
        let text: String = self.pieces.iter().map(|p| p.text.as_str()).collect();
        for p in &self.pieces {
            self.weight = self.weight.max(p.repeat_weight);
        }
        self.pieces.clear();
        text
    }

    fn close(mut self) -> (String, u64) {
        let last = self.concat();
        self.alternatives.push(last);
        (format!("{}{})", self.open, self.alternatives.join("|")), self.weight)
    }
}

fn hex_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

/// The ASCII ranges of Go's Perl and POSIX classes.
fn named_ranges(name: &str) -> Option<&'static [(char, char)]> {
    Some(match name {
        "d" | "digit" => &[('0', '9')],
        "s" => &[('\t', '\n'), ('\u{c}', '\r'), (' ', ' ')],
        "w" | "word" => &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "ascii" => &[('\0', '\u{7f}')],
        "blank" => &[('\t', '\t'), (' ', ' ')],
        "cntrl" => &[('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')],
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => &[('\t', '\r'), (' ', ' ')],
        "upper" => &[('A', 'Z')],
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    })
}

/// A bracketed class (possibly negated) of the given ranges.
fn class_text(ranges: &[(char, char)], negated: bool) -> String {
    let mut out = String::from(if negated { "[^" } else { "[" });
    for &(lo, hi) in ranges {
        hex_char(&mut out, lo);
        if hi != lo {
            out.push('-');
            hex_char(&mut out, hi);
        }
    }
    out.push(']');
    out
}

/// Go's Unicode general categories (`unicode.Categories`).
const CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs",
];

/// Go's `parseUnicodeClass`: `\pL`, `\p{Greek}`, `\P{^Lu}` at the start of
/// `s`, as a `regex` class and the rest, or `None` when `s` is not one.
fn parse_unicode_class(s: &str) -> Result<Option<(String, &str)>, String> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'\\' || (b[1] != b'p' && b[1] != b'P') {
        return Ok(None);
    }
    let mut negated = b[1] == b'P';
    let t = &s[2..];
    let Some(c) = t.chars().next() else {
        return Err(syntax_error(INVALID_RANGE, s));
    };
    let (seq, mut name, rest) = if c != '{' {
        let seq = &s[..2 + c.len_utf8()];
        (seq, &seq[2..], &s[seq.len()..])
    } else {
        let Some(end) = s.find('}') else {
            return Err(syntax_error(INVALID_RANGE, s));
        };
        (&s[..=end], &s[3..end], &s[end + 1..])
    };
    if let Some(n) = name.strip_prefix('^') {
        negated = !negated;
        name = n;
    }
    let known = name == "Any" || CATEGORIES.contains(&name) || is_script_name(name);
    if !known {
        return Err(syntax_error(INVALID_RANGE, seq));
    }
    let p = if negated { 'P' } else { 'p' };
    Ok(Some((format!("\\{p}{{{name}}}"), rest)))
}

/// Whether `regex` knows `name` as a script (Go accepts `unicode.Scripts`,
/// the same Unicode script names).
fn is_script_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && Regex::new(&format!("\\p{{{name}}}")).is_ok()
}

/// Go's `parsePerlClassEscape`: `\d`, `\D`, `\s`, `\S`, `\w`, `\W`.
fn perl_class(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'\\' {
        return None;
    }
    let name = match b[1].to_ascii_lowercase() {
        b'd' => "d",
        b's' => "s",
        b'w' => "w",
        _ => return None,
    };
    let ranges = named_ranges(name)?;
    Some((class_text(ranges, b[1].is_ascii_uppercase()), &s[2..]))
}

/// Go's `parseEscape`: one escaped character at the start of `s`.
fn parse_escape(s: &str) -> Result<(char, &str), String> {
    let t = &s[1..];
    let mut chars = t.chars();
    let Some(c) = chars.next() else {
        return Err(syntax_error(TRAILING_BACKSLASH, ""));
    };
    let mut t = chars.as_str();
    let invalid = |t: &str| syntax_error(INVALID_ESCAPE, &s[..s.len() - t.len()]);
    match c {
        '1'..='7' if !t.as_bytes().first().is_some_and(|b| (b'0'..=b'7').contains(b)) => {}
        '0'..='7' => {
            let mut r = c as u32 - '0' as u32;
            for _ in 1..3 {
                match t.as_bytes().first() {
                    Some(&d @ b'0'..=b'7') => {
                        r = r * 8 + u32::from(d - b'0');
                        t = &t[1..];
                    }
                    _ => break,
                }
            }
            return Ok((char::from_u32(r).unwrap_or('\u{fffd}'), t));
        }
        'x' => {
            let mut chars = t.chars();
            let Some(c) = chars.next() else {
                return Err(invalid(t));
            };
            t = chars.as_str();
            if c == '{' {
                let mut r: u32 = 0;
                let mut digits = 0;
                loop {
                    let mut chars = t.chars();
                    let Some(c) = chars.next() else {
                        return Err(invalid(t));
                    };
                    t = chars.as_str();
                    if c == '}' {
                        break;
                    }
                    let Some(v) = c.to_digit(16) else {
                        return Err(invalid(t));
                    };
                    r = r * 16 + v;
                    if r > 0x10ffff {
                        return Err(invalid(t));
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return Err(invalid(t));
                }
                return Ok((char::from_u32(r).unwrap_or('\u{fffd}'), t));
            }
            let x = c.to_digit(16);
            let mut chars = t.chars();
            let y = chars.next().and_then(|c| c.to_digit(16));
            t = chars.as_str();
            if let (Some(x), Some(y)) = (x, y) {
                return Ok((char::from_u32(x * 16 + y).unwrap_or('\u{fffd}'), t));
            }
        }
        'a' => return Ok(('\u{7}', t)),
        'f' => return Ok(('\u{c}', t)),
        'n' => return Ok(('\n', t)),
        'r' => return Ok(('\r', t)),
        't' => return Ok(('\t', t)),
        'v' => return Ok(('\u{b}', t)),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => return Ok((c, t)),
        _ => {}
    }
    Err(invalid(t))
}

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` at the start of `s`, with
/// the rest; `max` is -1 for "no limit"; `None` when it is not a repeat.
fn parse_repeat(s: &str) -> Option<(i64, i64, &str)> {
    let s = s.strip_prefix('{')?;
    let (min, s) = parse_repeat_int(s)?;
    let (max, s) = if let Some(s) = s.strip_prefix(',') {
        if s.starts_with('}') { (-1, s) } else { parse_repeat_int(s)? }
    } else {
        (min, s)
    };
    let rest = s.strip_prefix('}')?;
    // A number too big reads as -1 (max) or invalid (min).
    let min = if max == -2 { -1 } else { min };
    Some((min, if max == -2 { -1 } else { max }, rest))
}

/// A decimal without leading zeros; -2 when it is at least 10^8.
fn parse_repeat_int(s: &str) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let mut n: i64 = 0;
    for b in s[..digits].bytes() {
        if n >= 100_000_000 {
            n = -2;
            break;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some((n, &s[digits..]))
}

/// Go's `parseClass`: a bracketed class at the start of `s`.
fn parse_class(s: &str) -> Result<(String, &str), String> {
    let mut t = &s[1..];
    let mut out = String::from("[");
    if let Some(rest) = t.strip_prefix('^') {
        out.push('^');
        t = rest;
    }
    let mut first = true;
    while t.is_empty() || !t.starts_with(']') || first {
        first = false;
        if let Some(i) = t.strip_prefix("[:").filter(|r| !r.is_empty()).and_then(|r| r.find(":]")) {
            let name = &t[..i + 4];
            let inner = &name[2..name.len() - 2];
            let (negated, inner) = match inner.strip_prefix('^') {
                Some(n) => (true, n),
                None => (false, inner),
            };
            match named_ranges(inner).filter(|_| inner != "d" && inner != "s" && inner != "w") {
                Some(ranges) => out.push_str(&class_text(ranges, negated)),
                None => return Err(syntax_error(INVALID_RANGE, name)),
            }
            t = &t[i + 4..];
            continue;
        }
        if let Some((class, rest)) = parse_unicode_class(t)? {
            out.push_str(&class);
            t = rest;
            continue;
        }
        if let Some((class, rest)) = perl_class(t) {
            out.push_str(&class);
            t = rest;
            continue;
        }
        let range_start = t;
        let (lo, rest) = parse_class_char(t, s)?;
        t = rest;
        let mut hi = lo;
        if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
            let (h, rest) = parse_class_char(&t[1..], s)?;
            t = rest;
            hi = h;
            if hi < lo {
                return Err(syntax_error(
                    INVALID_RANGE,
                    &range_start[..range_start.len() - t.len()],
                ));
            }
        }
        hex_char(&mut out, lo);
        if hi != lo {
            out.push('-');
            hex_char(&mut out, hi);
        }
    }
    out.push(']');
    Ok((out, &t[1..]))
}

fn parse_class_char<'a>(s: &'a str, whole_class: &str) -> Result<(char, &'a str), String> {
    let Some(c) = s.chars().next() else {
        return Err(syntax_error(MISSING_BRACKET, whole_class));
    };
    if c == '\\' {
        return parse_escape(s);
    }
    Ok((c, &s[c.len_utf8()..]))
}

/// Go's `isValidCaptureName`.
fn valid_capture_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c == '_' || c.is_alphanumeric())
}

/// Deepest group nesting Go accepts (`maxHeight`).
const MAX_NESTING: usize = 1000;

/// Translates a Go pattern to a `regex` pattern and its capture names.
fn translate(pattern: &str) -> Result<(String, Vec<Option<String>>), String> {
    let mut stack: Vec<Group> = vec![Group::new(String::new())];
    let mut names: Vec<Option<String>> = vec![None];
    let mut t = pattern;
    let mut last_repeat: Option<&str> = None;
    while let Some(c) = t.chars().next() {
        let mut repeat = None;
        let top = stack.len() - 1;
        match c {
            '(' => {
                if t.starts_with("(?") {
                    t = parse_group_flags(t, &mut stack, &mut names)?;
                } else {
                    names.push(None);
                    stack.push(Group::new("(".to_owned()));
                    t = &t[1..];
                }
                if stack.len() > MAX_NESTING {
                    return Err(syntax_error(NESTING_DEPTH, pattern));
                }
            }
            '|' => {
                let g = &mut stack[top];
                let alt = g.concat();
                g.alternatives.push(alt);
                t = &t[1..];
            }
            ')' => {
                if stack.len() == 1 {
                    return Err(syntax_error(UNEXPECTED_PAREN, pattern));
                }
                let group = stack.pop().unwrap_or_else(|| Group::new(String::new()));
                let (text, weight) = group.close();
                let top = stack.len() - 1;
                stack[top].pieces.push(Piece { text, atom: true, repeat_weight: weight });
                t = &t[1..];
            }
            '^' | '$' | '.' => {
                stack[top].pieces.push(Piece { text: c.to_string(), atom: true, repeat_weight: 1 });
                t = &t[1..];
            }
            '[' => {
                let (class, rest) = parse_class(t)?;
                stack[top].pieces.push(Piece { text: class, atom: true, repeat_weight: 1 });
                t = rest;
            }
            '*' | '+' | '?' | '{' => {
                let before = t;
                let (op, min, max, mut after) = if c == '{' {
                    match parse_repeat(t) {
                        Some((min, max, after)) => {
                            if !(0..=1000).contains(&min) || max > 1000 || (max >= 0 && min > max) {
                                return Err(syntax_error(
                                    INVALID_REPEAT_SIZE,
                                    &before[..before.len() - after.len()],
                                ));
                            }
                            let op = match max {
                                -1 => format!("{{{min},}}"),
                                m if m == min => format!("{{{min}}}"),
                                m => format!("{{{min},{m}}}"),
                            };
                            (op, min, max, after)
                        }
                        None => {
                            stack[top].pieces.push(Piece {
                                text: "\\{".to_owned(),
                                atom: true,
                                repeat_weight: 1,
                            });
                            t = &t[1..];
                            last_repeat = None;
                            continue;
                        }
                    }
                } else {
                    (c.to_string(), 0, 0, &t[1..])
                };
                let mut lazy = "";
                if let Some(rest) = after.strip_prefix('?') {
                    after = rest;
                    lazy = "?";
                }
                if let Some(last) = last_repeat {
                    return Err(syntax_error(INVALID_REPEAT_OP, &last[..last.len() - after.len()]));
                }
                let operator = &before[..before.len() - after.len()];
                let Some(index) = stack[top].pieces.iter().rposition(|p| p.atom) else {
                    return Err(syntax_error(MISSING_REPEAT_ARG, operator));
                };
                let piece = &mut stack[top].pieces[index];
                let weight = if c == '{' && (min >= 2 || max >= 2) {
                    let m = if max < 0 { min } else { max } as u64;
                    let w = piece.repeat_weight.saturating_mul(m.max(1));
                    if w > 1000 {
                        return Err(syntax_error(INVALID_REPEAT_SIZE, operator));
                    }
                    w
                } else {
                    piece.repeat_weight
                };
                piece.text = format!("(?:{}){op}{lazy}", piece.text);
                piece.repeat_weight = weight;
                repeat = Some(before);
                t = after;
            }
            '\\' => t = parse_backslash(t, &mut stack[top])?,
            c => {
                let mut text = String::new();
                hex_char(&mut text, c);
                stack[top].pieces.push(Piece { text, atom: true, repeat_weight: 1 });
                t = &t[c.len_utf8()..];
            }
        }
        last_repeat = repeat;
    }
    if stack.len() != 1 {
        return Err(syntax_error(MISSING_PAREN, pattern));
    }
    let (text, _) = stack.pop().map(Group::close).unwrap_or_default();
    // `close` wrapped the top level in "...)"; drop that parenthesis.
    Ok((text[..text.len() - 1].to_owned(), names))
}

/// `\A`, `\b`, `\Q...\E`, classes and escaped characters outside brackets.
fn parse_backslash<'a>(t: &'a str, group: &mut Group) -> Result<&'a str, String> {
    let mut push =
        |text: String, atom: bool| group.pieces.push(Piece { text, atom, repeat_weight: 1 });
    match t.as_bytes().get(1) {
        Some(b'A') => {
            push("\\A".to_owned(), true);
            return Ok(&t[2..]);
        }
        Some(b'z') => {
            push("\\z".to_owned(), true);
            return Ok(&t[2..]);
        }
        Some(b'b') => {
            push("(?-u:\\b)".to_owned(), true);
            return Ok(&t[2..]);
        }
        Some(b'B') => {
            push("(?-u:\\B)".to_owned(), true);
            return Ok(&t[2..]);
        }
        Some(b'C') => return Err(syntax_error(INVALID_ESCAPE, &t[..2])),
        Some(b'Q') => {
            let body = &t[2..];
            let (literal, rest) = match body.find("\\E") {
                Some(i) => (&body[..i], &body[i + 2..]),
                None => (body, ""),
            };
            for c in literal.chars() {
                let mut text = String::new();
                hex_char(&mut text, c);
                push(text, true);
            }
            return Ok(rest);
        }
        _ => {}
    }
    if let Some((class, rest)) = parse_unicode_class(t)? {
        push(class, true);
        return Ok(rest);
    }
    if let Some((class, rest)) = perl_class(t) {
        push(class, true);
        return Ok(rest);
    }
    let (c, rest) = parse_escape(t)?;
    let mut text = String::new();
    hex_char(&mut text, c);
    push(text, true);
    Ok(rest)
}

/// Go's `parsePerlFlags`: named groups, non-capturing groups and flag
/// changes, starting at "(?".
fn parse_group_flags<'a>(
    s: &'a str,
    stack: &mut Vec<Group>,
    names: &mut Vec<Option<String>>,
) -> Result<&'a str, String> {
    let b = s.as_bytes();
    let named_begin = if b.len() > 4 && b[2] == b'P' && b[3] == b'<' {
        Some(4)
    } else if b.len() > 3 && b[2] == b'<' {
        Some(3)
    } else {
        None
    };
    if let Some(begin) = named_begin {
        let Some(end) = s.find('>') else {
            return Err(syntax_error(INVALID_NAMED_CAPTURE, s));
        };
        let capture = &s[..=end];
        let name = &s[begin..end];
        if !valid_capture_name(name) {
            return Err(syntax_error(INVALID_NAMED_CAPTURE, capture));
        }
        names.push(Some(name.to_owned()));
        stack.push(Group::new("(".to_owned()));
        return Ok(&s[end + 1..]);
    }
    let mut t = &s[2..];
    let mut on = String::new();
    let mut off = String::new();
    let mut negated = false;
    let mut saw_flag = false;
    while let Some(c) = t.chars().next() {
        t = &t[c.len_utf8()..];
        match c {
            'i' | 'm' | 's' | 'U' => {
                if negated {
                    off.push(c)
                } else {
                    on.push(c)
                };
                saw_flag = true;
            }
            '-' => {
                if negated {
                    break;
                }
                negated = true;
                saw_flag = false;
            }
            ':' | ')' => {
                if negated && !saw_flag {
                    break;
                }
                let flags = match (on.is_empty(), off.is_empty()) {
                    (true, true) => String::new(),
                    (false, true) => on,
                    _ => format!("{on}-{off}"),
                };
                let top = stack.len() - 1;
                if c == ':' {
                    let open =
                        if flags.is_empty() { "(?:".to_owned() } else { format!("(?{flags}:") };
                    stack.push(Group::new(open));
                } else if !flags.is_empty() {
                    stack[top].pieces.push(Piece {
                        text: format!("(?{flags})"),
                        atom: false,
                        repeat_weight: 1,
                    });
                }
                return Ok(t);
            }
            _ => break,
        }
    }
    Err(syntax_error(INVALID_PERL_OP, &s[..s.len() - t.len()]))
}

impl GoRegex {
    /// Go's `regexp.Compile`, with its error texts.
    pub fn compile(pattern: &str) -> Result<GoRegex, String> {
        let (translated, names) = translate(pattern)?;
        let re = Regex::new(&translated).map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => syntax_error(TOO_LARGE, pattern),
            _ => syntax_error(NESTING_DEPTH, pattern),
        })?;
        Ok(GoRegex { re, names })
    }

    /// `MatchString`: whether the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// `ReplaceAllString`: every non-overlapping match replaced by `repl`
    /// with `$1`, `${1}`, `$name`, `${name}` expanded; an empty match right
    /// after a previous match is not replaced, as in Go.
    pub fn replace_all(&self, src: &str, repl: &str) -> String {
        let mut out = String::new();
        let mut last_match_end = 0;
        let mut search_pos = 0;
        let mut locs = self.re.capture_locations();
        while search_pos <= src.len() {
            let Some((start, end)) =
                self.re.captures_read_at(&mut locs, src, search_pos).map(|m| (m.start(), m.end()))
            else {
                break;
            };
            out.push_str(&src[last_match_end..start]);
            if end > last_match_end || start == 0 {
                self.expand(&mut out, repl, src, &locs);
            }
            last_match_end = end;
            let width = src[search_pos..].chars().next().map_or(0, char::len_utf8);
            if search_pos + width > end {
                search_pos += width;
            } else if search_pos + 1 > end {
                search_pos += 1;
            } else {
                search_pos = end;
            }
        }
        out.push_str(src.get(last_match_end..).unwrap_or(""));
        out
    }

    /// Go's `Regexp.expand`.
    fn expand(&self, out: &mut String, template: &str, src: &str, locs: &regex::CaptureLocations) {
        let mut template = template;
        while let Some(i) = template.find('$') {
            out.push_str(&template[..i]);
            template = &template[i + 1..];
            if let Some(rest) = template.strip_prefix('$') {
                out.push('$');
                template = rest;
                continue;
            }
            let Some((name, num, rest)) = extract_name(template) else {
                out.push('$');
                continue;
            };
            template = rest;
            let group = match num {
                Some(n) => Some(n),
                None => (0..self.names.len())
                    .find(|&i| self.names[i].as_deref() == Some(name) && locs.get(i).is_some()),
            };
            if let Some((s, e)) = group.and_then(|g| locs.get(g)) {
                out.push_str(&src[s..e]);
            }
        }
        out.push_str(template);
    }
}

/// Go's `extract`: a group reference after `$` — its name, its number when
/// the name is a number without leading zeros, and the rest.
fn extract_name(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let rest = if brace { body[end..].strip_prefix('}')? } else { &body[end..] };
    let mut num: Option<usize> = Some(0);
    for b in name.bytes() {
        num = match num {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => {
                Some(n * 10 + usize::from(b - b'0'))
            }
            _ => None,
        };
    }
    if name.starts_with('0') && name.len() > 1 {
        num = None;
    }
    Some((name, num, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &str) -> String {
        GoRegex::compile(p).err().unwrap_or_else(|| "ok".to_owned())
    }

    #[test]
    fn syntax_errors_match_go() {
        assert_eq!(err("("), "error parsing regexp: missing closing ): `(`");
        assert_eq!(err("a)"), "error parsing regexp: unexpected ): `a)`");
        assert_eq!(err("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(err("*a"), "error parsing regexp: missing argument to repetition operator: `*`");
        assert_eq!(err("a**"), "error parsing regexp: invalid nested repetition operator: `**`");
        assert_eq!(err("a{1001}"), "error parsing regexp: invalid repeat count: `{1001}`");
        assert_eq!(err("(a{100}){100}"), "error parsing regexp: invalid repeat count: `{100}`");
        assert_eq!(err("[z-a]"), "error parsing regexp: invalid character class range: `z-a`");
        assert_eq!(err("\\8"), "error parsing regexp: invalid escape sequence: `\\8`");
        assert_eq!(err("a\\"), "error parsing regexp: trailing backslash at end of expression: ``");
        assert_eq!(err("(?x)"), "error parsing regexp: invalid or unsupported Perl syntax: `(?x`");
        assert_eq!(err("(?P<>a)"), "error parsing regexp: invalid named capture: `(?P<>`");
        assert_eq!(
            err("[[:foo:]]"),
            "error parsing regexp: invalid character class range: `[:foo:]`"
        );
        assert_eq!(
            err("\\p{Foo}"),
            "error parsing regexp: invalid character class range: `\\p{Foo}`"
        );
        assert_eq!(err("a{,5}"), "ok");
        assert_eq!(err("(?)a"), "ok");
    }

    #[test]
    fn matching_follows_go() {
        let re = |p: &str| GoRegex::compile(p).expect("compiles");
        assert_eq!(re("(a)b").replace_all("ab", "x$1"), "xa");
        assert_eq!(re("a*").replace_all("baaac", "X"), "XbXcX");
        assert_eq!(re("(?P<w>\\w+)").replace_all("hi there", "<${w}>"), "<hi> <there>");
        assert_eq!(re("(a)").replace_all("a", "$1x|${1}x|$$|$"), "|ax|$|$");
        assert_eq!(re("[a-]+").replace_all("a-b", "_"), "_b");
        assert_eq!(re("\\d").replace_all("1٣", "#"), "#٣");
        assert_eq!(re("\\bé").replace_all("é xé", "E"), "é xE");
        assert_eq!(re("a{,5}").replace_all("a{,5}", "!"), "!");
        assert_eq!(re("\\Q.*\\E+").replace_all(".**", "!"), "!");
        assert!(re("(?i)ABC").is_match("xabcx"));
        assert!(!re("^b").is_match("ab"));
        assert!(re("[^a]").is_match("\n"));
    }
}
