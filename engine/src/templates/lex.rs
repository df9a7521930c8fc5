//! The scanner of Go's `text/template/parse`, token for token.
//!
//! Error texts, the trim markers (`{{- ` and ` -}}`), where a token's line is
//! counted, and the odd corners (a lexer that stops backing up once it has
//! seen the end of input) all follow Go's, because parse errors quote them.

use crate::gofmt;

/// Kinds of tokens. Keywords come after `Keyword` in Go; here they are the
/// variants for which [`ItemType::is_keyword`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }

    fn keyword(word: &str) -> Option<ItemType> {
        Some(match word {
            "." => ItemType::Dot,
            "block" => ItemType::Block,
            "break" => ItemType::Break,
            "continue" => ItemType::Continue,
            "define" => ItemType::Define,
            "else" => ItemType::Else,
            "end" => ItemType::End,
            "if" => ItemType::If,
            "range" => ItemType::Range,
            "nil" => ItemType::Nil,
            "template" => ItemType::Template,
            "with" => ItemType::With,
            _ => return None,
        })
    }
}

/// A token: its kind, byte offset, text and the line it starts on.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub typ: ItemType,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Item {
    /// Go's `item.String()`, which parse errors print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str(&self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.len() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", gofmt::quote(&head))
            }
            _ => f.write_str(&gofmt::quote(&self.val)),
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
/// A trim marker is the `-` plus the space next to it.
const TRIM_MARKER_LEN: usize = 2;

/// The states of Go's lexer; each `step` runs one state function.
#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
}

pub(super) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: i64,
    line: usize,
    start_line: usize,
    item: Option<Item>,
    inside_action: bool,
    /// Whether `break` and `continue` are keywords (they are unless a
    /// function of that name exists, which Prometheus never defines).
    pub break_ok: bool,
    pub continue_ok: bool,
}

/// `-1` in Go: the rune `next` returns at the end of input.
const EOF: Option<char> = None;

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\r' | '\n'))
}

/// Go's `unicode.IsLetter || unicode.IsDigit || '_'`. Rust's std has no
/// general-category tables; `is_alphabetic`/`is_numeric` are close supersets
/// outside ASCII.
pub(super) fn is_alphanumeric(c: Option<char>) -> bool {
    match c {
        Some(c) if c.is_ascii() => c == '_' || c.is_ascii_alphanumeric(),
        Some(c) => c.is_alphabetic() || c.is_numeric(),
        None => false,
    }
}

fn has_left_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && matches!(s[1], b' ' | b'\t' | b'\r' | b'\n')
}

fn has_right_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && matches!(s[0], b' ' | b'\t' | b'\r' | b'\n') && s[1] == b'-'
}

fn right_trim_length(s: &str) -> usize {
    s.len() - s.trim_end_matches([' ', '\t', '\r', '\n']).len()
}

fn left_trim_length(s: &str) -> usize {
    s.len() - s.trim_start_matches([' ', '\t', '\r', '\n']).len()
}

/// Go's `%#U`: `U+0041 'A'`, without the quoted form when not printable.
pub(super) fn sharp_u(c: Option<char>) -> String {
    match c {
        None => "U+FFFFFFFFFFFFFFFF".to_owned(),
        Some(c) if gofmt::is_print(c) => format!("U+{:04X} '{c}'", c as u32),
        Some(c) => format!("U+{:04X}", c as u32),
    }
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            input,
            pos: 0,
            start: 0,
            at_eof: false,
            paren_depth: 0,
            line: 1,
            start_line: 1,
            item: None,
            inside_action: false,
            break_ok: true,
            continue_ok: true,
        }
    }

    fn rest(&self) -> &'a str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn next(&mut self) -> Option<char> {
        let Some(c) = self.rest().chars().next() else {
            self.at_eof = true;
            return EOF;
        };
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    /// Steps back one character; like Go's, a no-op once the end was seen.
    fn backup(&mut self) {
        if self.at_eof {
            return;
        }
        if let Some(c) = self.input.get(..self.pos).and_then(|s| s.chars().next_back()) {
            self.pos -= c.len_utf8();
            if c == '\n' {
                self.line -= 1;
            }
        }
    }

    fn this_item(&mut self, typ: ItemType) -> Item {
        let val = self.input.get(self.start..self.pos).unwrap_or("").to_owned();
        let item = Item { typ, pos: self.start, val, line: self.start_line };
        self.start = self.pos;
        self.start_line = self.line;
        item
    }

    fn emit(&mut self, typ: ItemType) -> Option<State> {
        let item = self.this_item(typ);
        self.emit_item(item)
    }

    fn emit_item(&mut self, item: Item) -> Option<State> {
        self.item = Some(item);
        None
    }

    fn ignore(&mut self) {
        self.line += self.input.get(self.start..self.pos).map_or(0, |s| s.matches('\n').count());
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while matches!(self.next(), Some(c) if valid.contains(c)) {}
        self.backup();
    }

    /// Emits an error token and empties the input, so the next token is EOF.
    fn errorf(&mut self, msg: String) -> Option<State> {
        self.item =
            Some(Item { typ: ItemType::Error, pos: self.start, val: msg, line: self.start_line });
        self.start = 0;
        self.pos = 0;
        self.input = "";
        None
    }

    pub fn next_item(&mut self) -> Item {
        self.item = None;
        let mut state = if self.inside_action { State::InsideAction } else { State::Text };
        loop {
            match self.step(state) {
                Some(next) => state = next,
                None => {
                    return self.item.take().unwrap_or(Item {
                        typ: ItemType::Eof,
                        pos: self.pos,
                        val: "EOF".to_owned(),
                        line: self.start_line,
                    });
                }
            }
        }
    }

    fn step(&mut self, state: State) -> Option<State> {
        match state {
            State::Text => self.lex_text(),
            State::LeftDelim => self.lex_left_delim(),
            State::Comment => self.lex_comment(),
            State::RightDelim => self.lex_right_delim(),
            State::InsideAction => self.lex_inside_action(),
            State::Space => self.lex_space(),
            State::Identifier => self.lex_identifier(),
            State::Field => self.lex_field_or_variable(ItemType::Field),
            State::Variable => {
                if self.at_terminator() {
                    return self.emit(ItemType::Variable);
                }
                self.lex_field_or_variable(ItemType::Variable)
            }
            State::Char => {
                self.lex_quoted('\'', ItemType::CharConstant, "unterminated character constant")
            }
            State::Number => self.lex_number(),
            State::Quote => self.lex_quoted('"', ItemType::String, "unterminated quoted string"),
            State::RawQuote => self.lex_raw_quote(),
        }
    }

    fn lex_text(&mut self) -> Option<State> {
        if let Some(x) = self.rest().find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let trim = if has_left_trim_marker(
                    self.input.as_bytes().get(delim_end..).unwrap_or(&[]),
                ) {
                    right_trim_length(self.input.get(self.start..self.pos).unwrap_or(""))
                } else {
                    0
                };
                self.pos -= trim;
                self.line +=
                    self.input.get(self.start..self.pos).map_or(0, |s| s.matches('\n').count());
                let item = self.this_item(ItemType::Text);
                self.pos += trim;
                self.ignore();
                if !item.val.is_empty() {
                    return self.emit_item(item);
                }
            }
            return Some(State::LeftDelim);
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line +=
                self.input.get(self.start..self.pos).map_or(0, |s| s.matches('\n').count());
            return self.emit(ItemType::Text);
        }
        self.emit(ItemType::Eof)
    }

    /// Whether the input is at `}}`, possibly preceded by a trim marker.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest.as_bytes())
            && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM)
        {
            return (true, true);
        }
        (rest.starts_with(RIGHT_DELIM), false)
    }

    fn lex_left_delim(&mut self) -> Option<State> {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(self.rest().as_bytes());
        let after_marker = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.rest().get(after_marker..).is_some_and(|s| s.starts_with(LEFT_COMMENT)) {
            self.pos += after_marker;
            self.ignore();
            return Some(State::Comment);
        }
        let item = self.this_item(ItemType::LeftDelim);
        self.inside_action = true;
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        self.emit_item(item)
    }

    fn lex_comment(&mut self) -> Option<State> {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.rest().find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".to_owned());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".to_owned());
        }
        self.line += self.input.get(self.start..self.pos).map_or(0, |s| s.matches('\n').count());
        self.this_item(ItemType::Text);
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += left_trim_length(self.rest());
        }
        self.ignore();
        Some(State::Text)
    }

    fn lex_right_delim(&mut self) -> Option<State> {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        let item = self.this_item(ItemType::RightDelim);
        if trim {
            self.pos += left_trim_length(self.rest());
            self.ignore();
        }
        self.inside_action = false;
        self.emit_item(item)
    }

    fn lex_inside_action(&mut self) -> Option<State> {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return Some(State::RightDelim);
            }
            return self.errorf("unclosed left paren".to_owned());
        }
        let r = self.next();
        match r {
            None => self.errorf("unclosed action".to_owned()),
            c if is_space(c) => {
                self.backup();
                Some(State::Space)
            }
            Some('=') => self.emit(ItemType::Assign),
            Some(':') => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".to_owned());
                }
                self.emit(ItemType::Declare)
            }
            Some('|') => self.emit(ItemType::Pipe),
            Some('"') => Some(State::Quote),
            Some('`') => Some(State::RawQuote),
            Some('$') => Some(State::Variable),
            Some('\'') => Some(State::Char),
            Some('.') => {
                // A '.' not followed by a digit starts a field.
                match self.input.as_bytes().get(self.pos) {
                    Some(b) if !b.is_ascii_digit() => Some(State::Field),
                    _ => {
                        self.backup();
                        Some(State::Number)
                    }
                }
            }
            Some('+' | '-' | '0'..='9') => {
                self.backup();
                Some(State::Number)
            }
            c if is_alphanumeric(c) => {
                self.backup();
                Some(State::Identifier)
            }
            Some('(') => {
                self.paren_depth += 1;
                self.emit(ItemType::LeftParen)
            }
            Some(')') => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf("unexpected right paren".to_owned());
                }
                self.emit(ItemType::RightParen)
            }
            Some(c) if c.is_ascii() && gofmt::is_print(c) => self.emit(ItemType::Char),
            c => self.errorf(format!("unrecognized character in action: {}", sharp_u(c))),
        }
    }

    fn lex_space(&mut self) -> Option<State> {
        let mut spaces = 0;
        while is_space(self.peek()) {
            self.next();
            spaces += 1;
        }
        // A trim-marked closing delimiter starts with a space: leave it.
        let before = self.pos.saturating_sub(1);
        let tail = self.input.as_bytes().get(before..).unwrap_or(&[]);
        if has_right_trim_marker(tail)
            && tail[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM.as_bytes())
        {
            self.backup();
            if spaces == 1 {
                return Some(State::RightDelim);
            }
        }
        self.emit(ItemType::Space)
    }

    fn lex_identifier(&mut self) -> Option<State> {
        loop {
            let r = self.next();
            if is_alphanumeric(r) {
                continue;
            }
            self.backup();
            if !self.at_terminator() {
                return self.errorf(format!("bad character {}", sharp_u(r)));
            }
            let word = self.input.get(self.start..self.pos).unwrap_or("");
            return match ItemType::keyword(word) {
                Some(ItemType::Break) if !self.break_ok => self.emit(ItemType::Identifier),
                Some(ItemType::Continue) if !self.continue_ok => self.emit(ItemType::Identifier),
                Some(k) => self.emit(k),
                None if word.starts_with('.') => self.emit(ItemType::Field),
                None if word == "true" || word == "false" => self.emit(ItemType::Bool),
                None => self.emit(ItemType::Identifier),
            };
        }
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> Option<State> {
        if self.at_terminator() {
            return self.emit(if typ == ItemType::Variable {
                ItemType::Variable
            } else {
                ItemType::Dot
            });
        }
        let mut r;
        loop {
            r = self.next();
            if !is_alphanumeric(r) {
                self.backup();
                break;
            }
        }
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", sharp_u(r)));
        }
        self.emit(typ)
    }

    /// Whether the next character may end an identifier.
    fn at_terminator(&mut self) -> bool {
        let r = self.peek();
        if is_space(r) {
            return true;
        }
        match r {
            None | Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    /// A quoted string or character constant; the opening quote is consumed.
    fn lex_quoted(&mut self, quote: char, typ: ItemType, unterminated: &str) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf(unterminated.to_owned());
                }
                None | Some('\n') => return self.errorf(unterminated.to_owned()),
                Some(c) if c == quote => break,
                _ => {}
            }
        }
        self.emit(typ)
    }

    fn lex_raw_quote(&mut self) -> Option<State> {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".to_owned()),
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(ItemType::RawString)
    }

    fn lex_number(&mut self) -> Option<State> {
        if !self.scan_number() {
            let text = self.input.get(self.start..self.pos).unwrap_or("").to_owned();
            return self.errorf(format!("bad number syntax: {}", gofmt::quote(&text)));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // A complex constant: 1+2i, no spaces, ending in 'i'.
            if !self.scan_number()
                || self.input.as_bytes().get(self.pos.wrapping_sub(1)) != Some(&b'i')
            {
                let text = self.input.get(self.start..self.pos).unwrap_or("").to_owned();
                return self.errorf(format!("bad number syntax: {}", gofmt::quote(&text)));
            }
            return self.emit(ItemType::Complex);
        }
        self.emit(ItemType::Number)
    }

    /// Accepts anything number-like; the parser rejects what is not a number.
    fn scan_number(&mut self) -> bool {
        const DECIMAL: &str = "0123456789_";
        const HEX: &str = "0123456789abcdefABCDEF_";
        self.accept("+-");
        let mut digits = DECIMAL;
        if self.accept("0") {
            if self.accept("xX") {
                digits = HEX;
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits == DECIMAL && self.accept("eE") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        if digits == HEX && self.accept("pP") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        self.accept("i");
        if is_alphanumeric(self.peek()) {
            self.next();
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_all(input: &str) -> Vec<(ItemType, String)> {
        let mut l = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let item = l.next_item();
            let typ = item.typ;
            out.push((typ, item.val));
            if matches!(typ, ItemType::Eof | ItemType::Error) || out.len() > 100 {
                return out;
            }
        }
    }

    #[test]
    fn trim_markers_eat_surrounding_space() {
        let items = lex_all("a  {{- 3 -}}\n b");
        let texts: Vec<&str> =
            items.iter().filter(|(t, _)| *t == ItemType::Text).map(|(_, v)| v.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
        // "{{-3}}" is a negative number, not a trim marker.
        assert!(lex_all("{{-3}}").iter().any(|(t, v)| *t == ItemType::Number && v == "-3"));
    }

    #[test]
    fn fields_split_at_dots() {
        let items = lex_all("{{.Labels.job}}");
        let fields: Vec<&str> =
            items.iter().filter(|(t, _)| *t == ItemType::Field).map(|(_, v)| v.as_str()).collect();
        assert_eq!(fields, [".Labels", ".job"]);
    }

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            lex_all("{{").last().map(|(_, v)| v.clone()).as_deref(),
            Some("unclosed action")
        );
        assert_eq!(
            lex_all("{{ 3x }}").last().map(|(_, v)| v.clone()).as_deref(),
            Some("bad number syntax: \"3x\"")
        );
        assert_eq!(
            lex_all("{{ \u{a0} }}").last().map(|(_, v)| v.clone()).as_deref(),
            Some("unrecognized character in action: U+00A0")
        );
        assert_eq!(
            lex_all("{{ a}b }}").last().map(|(_, v)| v.clone()).as_deref(),
            Some("bad character U+007D '}'")
        );
        assert_eq!(
            lex_all("{{/* x */ }}").last().map(|(_, v)| v.clone()).as_deref(),
            Some("comment ends before closing delimiter")
        );
    }

    #[test]
    fn item_display_truncates_long_values() {
        let item =
            Item { typ: ItemType::String, pos: 0, val: "\"abcdefghijkl\"".to_owned(), line: 1 };
        assert_eq!(item.to_string(), r#""\"abcdefghi"..."#);
        let kw = Item { typ: ItemType::End, pos: 0, val: "end".to_owned(), line: 1 };
        assert_eq!(kw.to_string(), "<end>");
    }
}
