//! Source positions of expression nodes, for annotations.
//!
//! Prometheus ends an annotation with the `line:column` of the sub-expression
//! it is about ("... (1:19)"). The `promql-parser` AST carries no positions,
//! so they are recovered here: a small tokenizer, and a walk over the AST in
//! source order that consumes tokens as each node is met. If the two ever
//! disagree the walk stops and later nodes simply have no position; nothing
//! else depends on it.

use std::collections::HashMap;

use promql_parser::parser::Expr;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Ident,
    Number,
    Str,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Minus,
    Plus,
    At,
    Other,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tok<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub start: usize,
}

pub(crate) fn tokenize(q: &str) -> Vec<Tok<'_>> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                Kind::Str
            }
            b'(' | b')' | b'{' | b'}' | b'[' | b']' | b'-' | b'+' | b'@' => {
                i += 1;
                match c {
                    b'(' => Kind::LParen,
                    b')' => Kind::RParen,
                    b'{' => Kind::LBrace,
                    b'}' => Kind::RBrace,
                    b'[' => Kind::LBracket,
                    b']' => Kind::RBracket,
                    b'-' => Kind::Minus,
                    b'+' => Kind::Plus,
                    _ => Kind::At,
                }
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    // An exponent sign belongs to the number: 1e-3.
                    if (b[i] == b'e' || b[i] == b'E')
                        && matches!(b.get(i + 1), Some(b'-') | Some(b'+'))
                        && !q[start..i].starts_with("0x")
                    {
                        i += 1;
                    }
                    i += 1;
                }
                Kind::Number
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80 => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b':'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                Kind::Ident
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        out.push(Tok { kind, text: &q[start..i.min(q.len())], start });
    }
    out
}

/// Byte offsets of expression nodes, keyed by node address.
#[derive(Default)]
pub(crate) struct Positions<'q> {
    query: &'q str,
    starts: HashMap<*const Expr, usize>,
}

impl<'q> Positions<'q> {
    pub fn compute(query: &'q str, expr: &Expr) -> Self {
        let toks = tokenize(query);
        let mut w = Walker { toks, i: 0, starts: HashMap::new(), ok: true };
        w.walk(expr);
        Positions { query, starts: w.starts }
    }

    /// Prometheus's `line:column` of `expr`'s start, if known.
    pub fn of(&self, expr: &Expr) -> Option<String> {
        let pos = *self.starts.get(&(expr as *const Expr))?;
        let before = self.query.get(..pos)?;
        let line = 1 + before.matches('\n').count();
        let last_break = before.rfind('\n').map_or(-1, |i| i as i64);
        let col = pos as i64 - last_break;
        Some(format!("{line}:{col}"))
    }
}

struct Walker<'a> {
    toks: Vec<Tok<'a>>,
    i: usize,
    starts: HashMap<*const Expr, usize>,
    ok: bool,
}

impl<'a> Walker<'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.i).copied()
    }

    fn is_ident(&self, words: &[&str]) -> bool {
        self.peek().is_some_and(|t| {
            t.kind == Kind::Ident && words.iter().any(|w| t.text.eq_ignore_ascii_case(w))
        })
    }

    /// Skips a balanced group starting at the current opening token.
    fn skip_group(&mut self, open: Kind, close: Kind) {
        if self.peek().map(|t| t.kind) != Some(open) {
            return;
        }
        let mut depth = 0;
        while let Some(t) = self.peek() {
            self.i += 1;
            if t.kind == open {
                depth += 1;
            } else if t.kind == close {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
        }
    }

    /// Skips `offset`, `@` and their arguments after a selector or subquery.
    fn skip_modifiers(&mut self) {
        loop {
            if self.is_ident(&["offset"]) {
                self.i += 1;
                while matches!(self.peek().map(|t| t.kind), Some(Kind::Minus | Kind::Plus)) {
                    self.i += 1;
                }
                self.i += 1;
            } else if self.peek().map(|t| t.kind) == Some(Kind::At) {
                self.i += 1;
                if self.is_ident(&["start", "end"]) {
                    self.i += 1;
                    self.skip_group(Kind::LParen, Kind::RParen);
                } else {
                    while matches!(self.peek().map(|t| t.kind), Some(Kind::Minus | Kind::Plus)) {
                        self.i += 1;
                    }
                    self.i += 1;
                }
            } else {
                return;
            }
        }
    }

    /// Skips what may sit between two operands: operators, `bool`,
    /// `on(...)`, `ignoring(...)`, `group_left(...)`, `group_right(...)`.
    fn skip_binary_glue(&mut self) {
        while let Some(t) = self.peek() {
            match t.kind {
                Kind::Other | Kind::Minus | Kind::Plus => self.i += 1,
                Kind::Ident if self.is_ident(&["on", "ignoring", "group_left", "group_right"]) => {
                    self.i += 1;
                    self.skip_group(Kind::LParen, Kind::RParen);
                }
                Kind::Ident if self.is_ident(&["bool", "and", "or", "unless", "atan2"]) => {
                    self.i += 1
                }
                _ => return,
            }
        }
    }

    fn record(&mut self, e: &Expr, start: usize) {
        self.starts.insert(e as *const Expr, start);
    }

    fn expect(&mut self, kind: Kind) -> Option<usize> {
        self.expect_one_of(&[kind])
    }

    fn walk(&mut self, e: &Expr) {
        if !self.ok {
            return;
        }
        // A leading unary plus is dropped by the parser but not from the text.
        while self.peek().map(|t| t.kind) == Some(Kind::Plus) {
            self.i += 1;
        }
        match e {
            Expr::Aggregate(a) => {
                let Some(start) = self.expect(Kind::Ident) else { return };
                self.record(e, start);
                if self.is_ident(&["by", "without"]) {
                    self.i += 1;
                    self.skip_group(Kind::LParen, Kind::RParen);
                }
                if self.expect(Kind::LParen).is_none() {
                    return;
                }
                if let Some(p) = &a.param {
                    self.walk(p);
                    if self.peek().map(|t| t.text) == Some(",") {
                        self.i += 1;
                    }
                }
                self.walk(&a.expr);
                self.expect(Kind::RParen);
                if self.is_ident(&["by", "without"]) {
                    self.i += 1;
                    self.skip_group(Kind::LParen, Kind::RParen);
                }
            }
            Expr::Call(c) => {
                let Some(start) = self.expect(Kind::Ident) else { return };
                self.record(e, start);
                if self.expect(Kind::LParen).is_none() {
                    return;
                }
                for (k, a) in c.args.args.iter().enumerate() {
                    if k > 0 && self.peek().map(|t| t.text) == Some(",") {
                        self.i += 1;
                    }
                    self.walk(a);
                }
                self.expect(Kind::RParen);
            }
            Expr::Paren(p) => {
                let Some(start) = self.expect(Kind::LParen) else { return };
                self.record(e, start);
                self.walk(&p.expr);
                self.expect(Kind::RParen);
            }
            Expr::Unary(u) => {
                let Some(start) = self.expect(Kind::Minus) else { return };
                self.record(e, start);
                self.walk(&u.expr);
            }
            Expr::Binary(b) => {
                let first = self.i;
                self.walk(&b.lhs);
                if let Some(t) = self.toks.get(first) {
                    let start = t.start;
                    self.record(e, start);
                }
                self.skip_binary_glue();
                self.walk(&b.rhs);
            }
            Expr::NumberLiteral(_) => {
                // The parser folds a sign into the literal; so does Prometheus's position.
                let start = self.peek().map(|t| t.start);
                while matches!(self.peek().map(|t| t.kind), Some(Kind::Minus | Kind::Plus)) {
                    self.i += 1;
                }
                if self.expect_one_of(&[Kind::Number, Kind::Ident]).is_some()
                    && let Some(s) = start
                {
                    self.record(e, s);
                }
            }
            Expr::StringLiteral(_) => {
                if let Some(start) = self.expect(Kind::Str) {
                    self.record(e, start);
                }
            }
            Expr::VectorSelector(_) => {
                self.walk_selector_start(e);
                self.skip_modifiers();
            }
            Expr::MatrixSelector(_) => {
                self.walk_selector_start(e);
                self.skip_group(Kind::LBracket, Kind::RBracket);
                self.skip_modifiers();
            }
            Expr::Subquery(s) => {
                let first = self.i;
                self.walk(&s.expr);
                if let Some(t) = self.toks.get(first) {
                    let start = t.start;
                    self.record(e, start);
                }
                self.skip_group(Kind::LBracket, Kind::RBracket);
                self.skip_modifiers();
            }
            Expr::Extension(_) => self.ok = false,
        }
    }

    fn expect_one_of(&mut self, kinds: &[Kind]) -> Option<usize> {
        match self.peek() {
            Some(t) if kinds.contains(&t.kind) => {
                self.i += 1;
                Some(t.start)
            }
            _ => {
                self.ok = false;
                None
            }
        }
    }

    fn walk_selector_start(&mut self, e: &Expr) {
        match self.peek().map(|t| t.kind) {
            Some(Kind::Ident) => {
                let start = self.toks[self.i].start;
                self.i += 1;
                self.record(e, start);
                self.skip_group(Kind::LBrace, Kind::RBrace);
            }
            Some(Kind::LBrace) => {
                let start = self.toks[self.i].start;
                self.record(e, start);
                self.skip_group(Kind::LBrace, Kind::RBrace);
            }
            _ => self.ok = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos_of_arg(q: &str, arg: usize) -> Option<String> {
        let e = promql_parser::parser::parse(q).unwrap();
        let p = Positions::compute(q, &e);
        match &e {
            Expr::Call(c) => p.of(&c.args.args[arg]),
            Expr::Aggregate(a) => p.of(a.param.as_deref().unwrap()),
            _ => p.of(&e),
        }
    }

    #[test]
    fn finds_argument_positions() {
        assert_eq!(pos_of_arg("rate(http_requests_histogram[5m])", 0).as_deref(), Some("1:6"));
        assert_eq!(pos_of_arg("limit_ratio(1.1, http_requests)", 0).as_deref(), Some("1:13"));
        assert_eq!(pos_of_arg("sort(x)", 0).as_deref(), Some("1:6"));
        assert_eq!(
            pos_of_arg(
                "histogram_quantile(0.5, sum by (le) (rate(x_bucket{a=\"b\"}[5m] offset 1m)))",
                1
            )
            .as_deref(),
            Some("1:25")
        );
        assert_eq!(
            pos_of_arg("quantile_over_time(-1, x[5m:1m] @ 100)", 1).as_deref(),
            Some("1:24")
        );
    }

    #[test]
    fn binary_operands_skip_matching_clauses() {
        let q = "a * on(job) group_left(team) sum by (job) (b)";
        let e = promql_parser::parser::parse(q).unwrap();
        let p = Positions::compute(q, &e);
        let Expr::Binary(b) = &e else { panic!() };
        assert_eq!(p.of(&b.rhs).as_deref(), Some("1:30"));
        assert_eq!(p.of(&e).as_deref(), Some("1:1"));
    }

    #[test]
    fn lines_count_from_one() {
        let q = "sum(\n  rate(x[5m])\n)";
        let e = promql_parser::parser::parse(q).unwrap();
        let p = Positions::compute(q, &e);
        let Expr::Aggregate(a) = &e else { panic!() };
        assert_eq!(p.of(&a.expr).as_deref(), Some("2:3"));
    }
}
