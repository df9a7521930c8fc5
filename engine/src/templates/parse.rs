//! The parser of Go's `text/template/parse`: the same grammar, the same
//! token look-ahead (so errors name the same line), the same node texts
//! (execution errors quote them as `at <...>`).

use std::collections::BTreeMap;
use std::fmt::{self, Display, Write};

use super::lex::{Item, ItemType, Lexer};
use crate::gofmt;

/// Deepest nesting of parentheses and control structures we parse. Go allows
/// 10000 parentheses (1000 on WebAssembly) and any depth of `if`/`range`;
/// this parser must fit a 1 MiB stack even unoptimized (about 7 KiB a
/// level), so both share this bound and report Go's "max expression depth
/// exceeded". Real templates nest a few levels.
const MAX_NESTING: usize = 100;

/// Go's `maxPipelineCmds`.
const MAX_PIPELINE_CMDS: usize = 100_000;

#[derive(Clone, Debug)]
pub(super) struct ListNode {
    pub pos: usize,
    pub nodes: Vec<Node>,
}

#[derive(Clone, Debug)]
pub(super) enum Node {
    Text(TextNode),
    Action(Box<ActionNode>),
    If(Box<BranchNode>),
    Range(Box<BranchNode>),
    With(Box<BranchNode>),
    Template(Box<TemplateNode>),
    Break(usize),
    Continue(usize),
}

#[derive(Clone, Debug)]
pub(super) struct TextNode {
    pub pos: usize,
    pub text: String,
}

#[derive(Clone, Debug)]
pub(super) struct ActionNode {
    pub pos: usize,
    pub pipe: PipeNode,
}

#[derive(Clone, Debug)]
pub(super) struct BranchNode {
    pub pos: usize,
    pub pipe: PipeNode,
    pub list: ListNode,
    pub else_list: Option<ListNode>,
}

#[derive(Clone, Debug)]
pub(super) struct TemplateNode {
    pub pos: usize,
    pub name: String,
    pub pipe: Option<PipeNode>,
}

#[derive(Clone, Debug)]
pub(super) struct PipeNode {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<VariableNode>,
    pub cmds: Vec<CommandNode>,
}

#[derive(Clone, Debug)]
pub(super) struct VariableNode {
    pub pos: usize,
    /// `$x.a.b` is `["$x", "a", "b"]`.
    pub ident: Vec<String>,
}

#[derive(Clone, Debug)]
pub(super) struct CommandNode {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// An operand of a command.
#[derive(Clone, Debug)]
pub(super) enum Arg {
    Bool {
        pos: usize,
        value: bool,
    },
    Dot(usize),
    Nil(usize),
    Number(NumberNode),
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    /// `.a.b` is `["a", "b"]`.
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Variable(VariableNode),
    Identifier {
        pos: usize,
        name: String,
    },
    Pipe(Box<PipeNode>),
    /// A term followed by field accesses: `(pipeline).a.b`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
}

/// A numeric constant, stored under every type that can hold it exactly,
/// as Go's ideal constants are.
#[derive(Clone, Debug, Default)]
pub(super) struct NumberNode {
    pub pos: usize,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub is_complex: bool,
    pub int64: i64,
    pub uint64: u64,
    pub float64: f64,
    pub complex: (f64, f64),
    pub text: String,
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Bool { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::String { pos, .. }
            | Arg::Field { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Number(n) => n.pos,
            Arg::Variable(v) => v.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// Node texts, as Go's `String()` methods write them.

impl Display for ListNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.nodes.iter().try_for_each(|n| n.fmt(f))
    }
}

impl Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text(t) => f.write_str(&t.text),
            Node::Action(a) => write!(f, "{{{{{}}}}}", a.pipe),
            Node::If(b) => b.write("if", f),
            Node::Range(b) => b.write("range", f),
            Node::With(b) => b.write("with", f),
            Node::Template(t) => t.fmt(f),
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}

impl BranchNode {
    pub fn write(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{{name} {}}}}}{}", self.pipe, self.list)?;
        if let Some(e) = &self.else_list {
            write!(f, "{{{{else}}}}{e}")?;
        }
        f.write_str("{{end}}")
    }
}

impl Display for TemplateNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{template {}", gofmt::quote(&self.name))?;
        if let Some(p) = &self.pipe {
            write!(f, " {p}")?;
        }
        f.write_str("}}")
    }
}

impl Display for PipeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                v.fmt(f)?;
            }
            f.write_str(" := ")?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            c.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for VariableNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ident.join("."))
    }
}

impl Display for CommandNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            match arg {
                Arg::Pipe(p) => write!(f, "({p})")?,
                a => a.fmt(f)?,
            }
        }
        Ok(())
    }
}

impl Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Bool { value, .. } => f.write_str(if *value { "true" } else { "false" }),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Field { ident, .. } => ident.iter().try_for_each(|id| write!(f, ".{id}")),
            Arg::Variable(v) => v.fmt(f),
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Pipe(p) => p.fmt(f),
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    n => n.fmt(f)?,
                }
                fields.iter().try_for_each(|id| write!(f, ".{id}"))
            }
        }
    }
}

/// The parsed templates: the top-level one and every `define`/`block`.
#[derive(Clone, Debug, Default)]
pub(super) struct TreeSet {
    pub trees: BTreeMap<String, ListNode>,
}

/// What `itemList` stops at besides a node.
enum Item2 {
    Node(Node),
    End,
    Else,
}

impl Item2 {
    fn describe(&self) -> String {
        match self {
            Item2::End => "{{end}}".to_owned(),
            Item2::Else => "{{else}}".to_owned(),
            Item2::Node(n) => n.to_string(),
        }
    }
}

/// The per-template parse state of Go's `Tree`: each `define` and `block`
/// gets a fresh one while sharing the lexer.
struct TreeState {
    name: String,
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    action_line: usize,
    range_depth: usize,
}

impl TreeState {
    fn new(name: String) -> TreeState {
        let empty = Item { typ: ItemType::Eof, pos: 0, val: String::new(), line: 0 };
        TreeState {
            name,
            token: [empty.clone(), empty.clone(), empty],
            peek_count: 0,
            vars: vec!["$".to_owned()],
            action_line: 0,
            range_depth: 0,
        }
    }
}

/// A parse error's complete text, `template: NAME:LINE: message`.
pub(super) type ParseError = String;
type Result<T> = std::result::Result<T, ParseError>;

pub(super) struct Parser<'a, 'f> {
    lex: Lexer<'a>,
    parse_name: String,
    has_function: &'f dyn Fn(&str) -> bool,
    t: TreeState,
    set: TreeSet,
    nesting: usize,
}

/// Parses `text` as the template `name` plus its definitions, with the
/// function names `has_function` accepts.
pub(super) fn parse(
    name: &str,
    text: &str,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<TreeSet> {
    let mut lex = Lexer::new(text);
    lex.break_ok = !has_function("break");
    lex.continue_ok = !has_function("continue");
    let mut p = Parser {
        lex,
        parse_name: name.to_owned(),
        has_function,
        t: TreeState::new(name.to_owned()),
        set: TreeSet::default(),
        nesting: 0,
    };
    let root = p.parse_top()?;
    p.add(root)?;
    Ok(p.set)
}

/// Go's `IsEmptyTree`: nothing but space (and comments).
fn is_empty_list(list: &ListNode) -> bool {
    list.nodes.iter().all(|n| match n {
        Node::Text(t) => t.text.trim().is_empty(),
        _ => false,
    })
}

impl Parser<'_, '_> {
    fn errorf(&self, msg: impl Display) -> ParseError {
        format!("template: {}:{}: {msg}", self.parse_name, self.t.token[0].line)
    }

    fn next(&mut self) -> Item {
        if self.t.peek_count > 0 {
            self.t.peek_count -= 1;
        } else {
            self.t.token[0] = self.lex.next_item();
        }
        self.t.token[self.t.peek_count].clone()
    }

    fn backup(&mut self) {
        self.t.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.t.token[1] = t1;
        self.t.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.t.token[1] = t1;
        self.t.token[2] = t2;
        self.t.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.t.peek_count > 0 {
            return self.t.token[self.t.peek_count - 1].clone();
        }
        self.t.peek_count = 1;
        self.t.token[0] = self.lex.next_item();
        self.t.token[0].clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let token = self.next();
            if token.typ != ItemType::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let token = self.next_non_space();
        self.backup();
        token
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> Result<Item> {
        let token = self.next_non_space();
        if token.typ != expected {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn unexpected(&self, token: &Item, context: &str) -> ParseError {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.t.action_line != 0 && self.t.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.parse_name, self.t.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_owned();
                }
            }
            return self.errorf(format_args!("{token}{extra}"));
        }
        self.errorf(format_args!("unexpected {token} in {context}"))
    }

    /// Go's `Tree.add`: registers the current tree, refusing a second
    /// non-empty definition of one name.
    fn add(&mut self, root: ListNode) -> Result<()> {
        match self.set.trees.get(&self.t.name) {
            Some(existing) if !is_empty_list(existing) => {
                if !is_empty_list(&root) {
                    return Err(self.errorf(format_args!(
                        "template: multiple definition of template {}",
                        gofmt::quote(&self.t.name)
                    )));
                }
            }
            _ => {
                self.set.trees.insert(self.t.name.clone(), root);
            }
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        if self.nesting >= MAX_NESTING {
            return Err(self.errorf("max expression depth exceeded"));
        }
        self.nesting += 1;
        Ok(())
    }

    /// The top level: text and actions up to EOF, plus `{{define}}`s.
    fn parse_top(&mut self) -> Result<ListNode> {
        let mut root = ListNode { pos: self.peek().pos, nodes: Vec::new() };
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    let outer =
                        std::mem::replace(&mut self.t, TreeState::new("definition".to_owned()));
                    let result = self.parse_definition();
                    self.t = outer;
                    result?;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action()? {
                n @ (Item2::End | Item2::Else) => {
                    return Err(self.errorf(format_args!("unexpected {}", n.describe())));
                }
                Item2::Node(n) => root.nodes.push(n),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> Result<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if token.typ != ItemType::String && token.typ != ItemType::RawString {
            return Err(self.unexpected(&token, CONTEXT));
        }
        self.t.name = gofmt::unquote(&token.val).ok_or_else(|| self.errorf("invalid syntax"))?;
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let (root, end) = self.item_list()?;
        if !matches!(end, Item2::End) {
            return Err(self.errorf(format_args!("unexpected {} in {CONTEXT}", end.describe())));
        }
        self.add(root)
    }

    /// Nodes up to `{{end}}` or `{{else}}`, which is returned separately.
    fn item_list(&mut self) -> Result<(ListNode, Item2)> {
        let mut list = ListNode { pos: self.peek_non_space().pos, nodes: Vec::new() };
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Item2::Node(n) => list.nodes.push(n),
                end => return Ok((list, end)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> Result<Item2> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => {
                Ok(Item2::Node(Node::Text(TextNode { pos: token.pos, text: token.val })))
            }
            ItemType::LeftDelim => {
                self.t.action_line = token.line;
                let result = self.action();
                self.t.action_line = 0;
                result
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> Result<Item2> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Item2::Node),
            ItemType::Break | ItemType::Continue => {
                let word = if token.typ == ItemType::Break { "break" } else { "continue" };
                let next = self.next_non_space();
                if next.typ != ItemType::RightDelim {
                    return Err(self.unexpected(&next, &format!("{{{{{word}}}}}")));
                }
                if self.t.range_depth == 0 {
                    return Err(self.errorf(format_args!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                return Ok(Item2::Node(if word == "break" {
                    Node::Break(token.pos)
                } else {
                    Node::Continue(token.pos)
                }));
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Item2::End);
            }
            ItemType::If => return self.branch("if").map(|b| Item2::Node(Node::If(Box::new(b)))),
            ItemType::Range => {
                return self.branch("range").map(|b| Item2::Node(Node::Range(Box::new(b))));
            }
            ItemType::Template => return self.template_control().map(Item2::Node),
            ItemType::With => {
                return self.branch("with").map(|b| Item2::Node(Node::With(Box::new(b))));
            }
            _ => {}
        }
        self.backup();
        let token = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Item2::Node(Node::Action(Box::new(ActionNode { pos: token.pos, pipe }))))
    }

    fn else_control(&mut self) -> Result<Item2> {
        let peek = self.peek_non_space();
        // "{{else if ...": the "if" is left for the caller.
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Item2::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Item2::Else)
    }

    /// `if`, `range` and `with`: pipeline, body, optional else.
    fn branch(&mut self, context: &str) -> Result<BranchNode> {
        self.enter()?;
        let vars = self.t.vars.len();
        let result = self.parse_control(context);
        self.t.vars.truncate(vars);
        self.nesting -= 1;
        result
    }

    fn parse_control(&mut self, context: &str) -> Result<BranchNode> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.t.range_depth += 1;
        }
        let body = self.item_list();
        if context == "range" {
            self.t.range_depth -= 1;
        }
        let (list, next) = body?;
        let mut else_list = None;
        if let Item2::Else = next {
            let peek = self.peek().typ;
            if context == "if" && peek == ItemType::If {
                let pos = self.next().pos;
                let nested = self.branch("if")?;
                else_list = Some(ListNode { pos, nodes: vec![Node::If(Box::new(nested))] });
            } else if context == "with" && peek == ItemType::With {
                let pos = self.next().pos;
                let nested = self.branch("with")?;
                else_list = Some(ListNode { pos, nodes: vec![Node::With(Box::new(nested))] });
            } else {
                let (list, next) = self.item_list()?;
                if !matches!(next, Item2::End) {
                    return Err(
                        self.errorf(format_args!("expected end; found {}", next.describe()))
                    );
                }
                else_list = Some(list);
            }
        }
        Ok(BranchNode { pos: pipe.pos, pipe, list, else_list })
    }

    fn block_control(&mut self) -> Result<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        self.enter()?;
        let outer = std::mem::replace(&mut self.t, TreeState::new(name.clone()));
        let body = self.item_list();
        let block = std::mem::replace(&mut self.t, outer);
        self.nesting -= 1;
        let (root, end) = body?;
        if !matches!(end, Item2::End) {
            return Err(self.errorf(format_args!("unexpected {} in {CONTEXT}", end.describe())));
        }
        let outer = std::mem::replace(&mut self.t, block);
        let added = self.add(root);
        self.t = outer;
        added?;
        Ok(Node::Template(Box::new(TemplateNode { pos: token.pos, name, pipe: Some(pipe) })))
    }

    fn template_control(&mut self) -> Result<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template(Box::new(TemplateNode { pos: token.pos, name, pipe })))
    }

    fn parse_template_name(&self, token: &Item, context: &str) -> Result<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => {
                gofmt::unquote(&token.val).ok_or_else(|| self.errorf("invalid syntax"))
            }
            _ => Err(self.unexpected(token, context)),
        }
    }

    /// `declarations? command ('|' command)*`, up to `end`.
    fn pipeline(&mut self, context: &str, end: ItemType) -> Result<PipeNode> {
        let token = self.peek_non_space();
        let mut pipe =
            PipeNode { pos: token.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            self.next();
            // "$x foo" versus "$x := foo" needs three tokens of look-ahead,
            // as spaces are tokens.
            let after_variable = self.peek();
            let next = self.peek_non_space();
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space();
                pipe.decl.push(new_variable(v.pos, &v.val));
                self.t.vars.push(v.val);
                break;
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(new_variable(v.pos, &v.val));
                self.t.vars.push(v.val);
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().typ {
                        ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                            continue;
                        }
                        _ => return Err(self.errorf("range can only initialize variables")),
                    }
                }
                return Err(self.errorf(format_args!("too many declarations in {context}")));
            } else if after_variable.typ == ItemType::Space {
                self.backup3(v, after_variable);
            } else {
                self.backup2(v);
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                    if pipe.cmds.len() > MAX_PIPELINE_CMDS {
                        return Err(self.errorf("pipeline too long"));
                    }
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &PipeNode, context: &str) -> Result<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format_args!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(
                    Arg::Bool { .. }
                        | Arg::Dot(_)
                        | Arg::Nil(_)
                        | Arg::Number(_)
                        | Arg::String { .. }
                )
            ) {
                return Err(
                    self.errorf(format_args!("non executable command in pipeline stage {}", i + 1))
                );
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<CommandNode> {
        let mut cmd = CommandNode { pos: self.peek_non_space().pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let field = self.next().val;
            fields.push(field.get(1..).unwrap_or("").to_owned());
        }
        Ok(Some(match node {
            Arg::Field { ident, .. } => {
                Arg::Field { pos, ident: ident.into_iter().chain(fields).collect() }
            }
            Arg::Variable(v) => Arg::Variable(VariableNode {
                pos,
                ident: v.ident.into_iter().chain(fields).collect(),
            }),
            Arg::Bool { .. } | Arg::String { .. } | Arg::Number(_) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err(self.errorf(format_args!(
                    "unexpected . after term {}",
                    gofmt::quote(&node.to_string())
                )));
            }
            node => Arg::Chain { pos, node: Box::new(node), fields },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let token = self.next_non_space();
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !(self.has_function)(&token.val) {
                    return Err(self.errorf(format_args!(
                        "function {} not defined",
                        gofmt::quote(&token.val)
                    )));
                }
                Arg::Identifier { pos: token.pos, name: token.val }
            }
            ItemType::Dot => Arg::Dot(token.pos),
            ItemType::Nil => Arg::Nil(token.pos),
            ItemType::Variable => {
                let v = new_variable(token.pos, &token.val);
                if !self.t.vars.iter().any(|name| *name == v.ident[0]) {
                    return Err(self
                        .errorf(format_args!("undefined variable {}", gofmt::quote(&v.ident[0]))));
                }
                Arg::Variable(v)
            }
            ItemType::Field => Arg::Field { pos: token.pos, ident: split_field(&token.val) },
            ItemType::Bool => Arg::Bool { pos: token.pos, value: token.val == "true" },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => Arg::Number(
                new_number(token.pos, &token.val, token.typ).map_err(|e| self.errorf(e))?,
            ),
            ItemType::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.nesting -= 1;
                Arg::Pipe(Box::new(pipe?))
            }
            ItemType::String | ItemType::RawString => {
                let text =
                    gofmt::unquote(&token.val).ok_or_else(|| self.errorf("invalid syntax"))?;
                Arg::String { pos: token.pos, quoted: token.val, text }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

fn new_variable(pos: usize, ident: &str) -> VariableNode {
    VariableNode { pos, ident: ident.split('.').map(str::to_owned).collect() }
}

fn split_field(text: &str) -> Vec<String> {
    text.get(1..).unwrap_or("").split('.').map(str::to_owned).collect()
}

/// Go's `newNumber`: the value of a number, character or complex constant
/// under every type that represents it, or Go's error text.
fn new_number(pos: usize, text: &str, typ: ItemType) -> std::result::Result<NumberNode, String> {
    let mut n = NumberNode { pos, text: text.to_owned(), ..NumberNode::default() };
    match typ {
        ItemType::CharConstant => {
            let body = text.get(1..).unwrap_or("");
            let (r, tail) = gofmt::unquote_char(body, '\'').ok_or("invalid syntax")?;
            if tail != "'" {
                return Err(format!("malformed character constant: {text}"));
            }
            n.int64 = i64::from(r);
            n.is_int = true;
            n.uint64 = u64::from(r);
            n.is_uint = true;
            n.float64 = f64::from(r);
            n.is_float = true;
            return Ok(n);
        }
        ItemType::Complex => {
            let (re, im) =
                parse_complex(text).ok_or_else(|| format!("expected complex; found {text}"))?;
            n.is_complex = true;
            n.complex = (re, im);
            n.simplify_complex();
            return Ok(n);
        }
        _ => {}
    }
    if let Some(f) = text.strip_suffix('i').and_then(|imag| gofmt::parse_float(imag).ok()) {
        n.is_complex = true;
        n.complex = (0.0, f);
        n.simplify_complex();
        return Ok(n);
    }
    let unsigned = gofmt::parse_uint_base0(text);
    if let Some(u) = unsigned {
        n.is_uint = true;
        n.uint64 = u;
    }
    if let Some(i) = gofmt::parse_int_base0(text) {
        n.is_int = true;
        n.int64 = i;
        if i == 0 {
            // "-0" fails the unsigned parse but is an unsigned zero.
            n.is_uint = true;
            n.uint64 = unsigned.unwrap_or(0);
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float64 = n.int64 as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float64 = n.uint64 as f64;
    } else if let Ok(f) = gofmt::parse_float(text) {
        // Parsed as a float but looks like an integer: an integer too big.
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", gofmt::quote(text)));
        }
        n.is_float = true;
        n.float64 = f;
        if !n.is_int && f.trunc() == f && (-9.223372036854776e18..9.223372036854776e18).contains(&f)
        {
            n.is_int = true;
            n.int64 = f as i64;
        }
        if !n.is_uint && f.trunc() == f && (0.0..1.8446744073709552e19).contains(&f) {
            n.is_uint = true;
            n.uint64 = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", gofmt::quote(text)));
    }
    Ok(n)
}

impl NumberNode {
    fn simplify_complex(&mut self) {
        let (re, im) = self.complex;
        self.is_float = im == 0.0;
        if self.is_float {
            self.float64 = re;
            self.is_int =
                re.trunc() == re && (-9.223372036854776e18..9.223372036854776e18).contains(&re);
            if self.is_int {
                self.int64 = re as i64;
            }
            self.is_uint = re.trunc() == re && (0.0..1.8446744073709552e19).contains(&re);
            if self.is_uint {
                self.uint64 = re as u64;
            }
        }
    }
}

/// `a+bi` or `a-bi`, as `fmt.Sscan` reads a complex128.
fn parse_complex(text: &str) -> Option<(f64, f64)> {
    let body = text.strip_suffix('i')?;
    // The sign between the parts is the last '+' or '-' not right after an 'e'.
    let bytes = body.as_bytes();
    let split = (1..bytes.len()).rev().find(|&i| {
        matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E' | b'p' | b'P')
    })?;
    let re = gofmt::parse_float(&body[..split]).ok()?;
    let im = gofmt::parse_float(&body[split..]).ok()?;
    Some((re, im))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match parse("t", text, &|name| name == "printf" || name == "len") {
            Ok(_) => "ok".to_owned(),
            Err(e) => e,
        }
    }

    #[test]
    fn parse_errors_read_like_go() {
        assert_eq!(parse_err("{{nope}}"), r#"template: t:1: function "nope" not defined"#);
        assert_eq!(parse_err("{{if}}"), "template: t:1: missing value for if");
        assert_eq!(parse_err("{{end}}"), "template: t:1: unexpected {{end}}");
        assert_eq!(parse_err("{{if 1}}"), "template: t:1: unexpected EOF");
        assert_eq!(parse_err("{{$x}}"), r#"template: t:1: undefined variable "$x""#);
        assert_eq!(parse_err("{{break}}"), "template: t:1: {{break}} outside {{range}}");
        assert_eq!(
            parse_err("a\n{{ 1 | 2 }}"),
            "template: t:2: non executable command in pipeline stage 2"
        );
        assert_eq!(parse_err("{{ \"a\".b }}"), r#"template: t:1: unexpected . after term "\"a\"""#);
        assert_eq!(parse_err("{{ 089 }}"), r#"template: t:1: integer overflow: "089""#);
        assert_eq!(parse_err("{{ 'ab' }}"), "template: t:1: malformed character constant: 'ab'");
        assert_eq!(
            parse_err("{{\n(1\n}}"),
            "template: t:3: unclosed left paren in action started at t:1"
        );
        assert_eq!(parse_err("x\n{{ 1\n"), "template: t:3: unclosed action started at t:2");
        assert_eq!(
            parse_err("{{define \"t\"}}a{{end}}b"),
            r#"template: t:1: template: multiple definition of template "t""#
        );
        assert_eq!(
            parse_err("{{range $i, 1}}{{end}}"),
            "template: t:1: range can only initialize variables"
        );
        assert_eq!(
            parse_err("{{with $x, $y := 1}}{{end}}"),
            "template: t:1: too many declarations in with"
        );
    }

    #[test]
    fn node_texts_match_go() {
        let set = parse(
            "t",
            "{{if $x := len .A.b | printf \"%d\"}}a{{else}}b{{end}}{{(len 1).x}}",
            &|_| true,
        )
        .expect("parses");
        let root = &set.trees["t"];
        assert_eq!(
            root.to_string(),
            "{{if $x := len .A.b | printf \"%d\"}}a{{else}}b{{end}}{{(len 1).x}}"
        );
    }

    #[test]
    fn numbers_take_every_type_that_fits() {
        let n = new_number(0, "0x10", ItemType::Number).expect("number");
        assert!(n.is_int && n.is_uint && n.is_float && n.int64 == 16);
        let f = new_number(0, "1.5", ItemType::Number).expect("number");
        assert!(!f.is_int && f.is_float);
        let c = new_number(0, "'a'", ItemType::CharConstant).expect("char");
        assert_eq!(c.int64, 97);
        let big = new_number(0, "18446744073709551615", ItemType::Number).expect("number");
        assert!(big.is_uint && !big.is_int);
        assert_eq!(
            new_number(0, "1e", ItemType::Number).err().as_deref(),
            Some("illegal number syntax: \"1e\"")
        );
        let z = new_number(0, "2i", ItemType::Number).expect("imaginary");
        assert!(z.is_complex && !z.is_float);
    }
}
