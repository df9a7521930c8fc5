//! YAML as a tree of positioned nodes, and the strict decoding helpers every
//! YAML format of tocsin (rule files, unit-test files, config) is read with.
//!
//! Why a tree of our own instead of serde: every error a user sees must point
//! at `file:line:column`, unknown fields must be refused (or ignored, when the
//! user asks), and a rule's `config:` must stay an arbitrary YAML value. The
//! event parser of `yaml-rust2` gives a position for every node; the formats
//! then decode field by field with [`Fields`].
//!
//! Scalars keep their text and whether they were quoted. Types are resolved by
//! the field that reads them, as Go's yaml decoders do: `labels: {code: 500}`
//! is the string `"500"` where a string is expected.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar; `quoted` is true for single-, double-quoted and block scalars,
    /// which are always strings.
    Scalar {
        value: String,
        quoted: bool,
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
}

/// An error with the position it refers to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl YamlError {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        YamlError { pos, message: message.into() }
    }
}

/// A parsed YAML stream: its first document and whether more followed.
#[derive(Clone, Debug)]
pub struct Document {
    /// `None` for an empty stream.
    pub root: Option<Node>,
    pub more_documents: bool,
}

/// Aliases may not expand a document beyond this many nodes: a "billion
/// laughs" document must get an error, not the host's memory.
pub const MAX_NODES: usize = 1_000_000;

/// Parses YAML text into positioned nodes.
pub fn parse(text: &str) -> Result<Document, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(YamlError::new(pos_of(m), e.info().to_owned()));
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    let mut docs = builder.documents.into_iter();
    Ok(Document { root: docs.next(), more_documents: docs.next().is_some() })
}

fn pos_of(m: &Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos { line: m.line() as u32, col: m.col() as u32 + 1 }
}

#[derive(Default)]
struct Builder {
    documents: Vec<Node>,
    /// Open sequences and mappings; a mapping's pending key waits in `key`.
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<YamlError>,
}

struct Open {
    node: Node,
    anchor: usize,
    key: Option<Node>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(open) => match &mut open.node.kind {
                NodeKind::Seq(items) => items.push(node),
                NodeKind::Map(entries) => match open.key.take() {
                    None => open.key = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                NodeKind::Scalar { .. } => {}
            },
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES && self.error.is_none() {
            self.error = Some(YamlError::new(
                pos,
                format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            ));
        }
        self.error.is_none()
    }
}

fn tag_text(tag: Option<Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

fn node_count(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        NodeKind::Map(e) => 1 + e.iter().map(|(k, v)| node_count(k) + node_count(v)).sum::<usize>(),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                if !self.count(1, pos) {
                    return;
                }
                let quoted = !matches!(style, TScalarStyle::Plain);
                let node =
                    Node { kind: NodeKind::Scalar { value, quoted, tag: tag_text(tag) }, pos };
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                if self.count(1, pos) {
                    self.stack.push(Open {
                        node: Node { kind: NodeKind::Seq(Vec::new()), pos },
                        anchor,
                        key: None,
                    });
                }
            }
            Event::MappingStart(anchor, _) => {
                if self.count(1, pos) {
                    self.stack.push(Open {
                        node: Node { kind: NodeKind::Map(Vec::new()), pos },
                        anchor,
                        key: None,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(mut open) = self.stack.pop() {
                    // A block mapping's start event is marked at its first
                    // key's colon; users (and Go's yaml) expect the key.
                    if let NodeKind::Map(entries) = &open.node.kind
                        && let Some((k, _)) = entries.first()
                        && k.pos < open.node.pos
                    {
                        open.node.pos = k.pos;
                    }
                    self.push_value(open.node, open.anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    if !self.count(node_count(&node), pos) {
                        return;
                    }
                    node.pos = pos;
                    self.push_value(node, 0);
                }
                None => self.error = Some(YamlError::new(pos, "unknown anchor")),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

impl Node {
    /// True for `null`, `~`, an empty value, or an explicit `!!null`.
    pub fn is_null(&self) -> bool {
        match &self.kind {
            NodeKind::Scalar { value, quoted: false, tag } => {
                tag.as_deref() == Some("tag:yaml.org,2002:null")
                    || (tag.is_none()
                        && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
            }
            _ => false,
        }
    }

    /// The YAML kind, as Go's decoders name it in their errors.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Seq(_) => "!!seq",
            NodeKind::Map(_) => "!!map",
            NodeKind::Scalar { .. } if self.is_null() => "!!null",
            NodeKind::Scalar { value, quoted, .. } => {
                if *quoted {
                    "!!str"
                } else if parse_yaml_int(value).is_some() {
                    "!!int"
                } else if parse_yaml_float(value).is_some() {
                    "!!float"
                } else if parse_yaml_bool(value).is_some() {
                    "!!bool"
                } else {
                    "!!str"
                }
            }
        }
    }

    fn type_error(&self, want: &str) -> YamlError {
        let shown = match &self.kind {
            NodeKind::Scalar { value, .. } => format!("{} `{}`", self.kind_name(), value),
            _ => self.kind_name().to_owned(),
        };
        YamlError::new(self.pos, format!("cannot unmarshal {shown} into {want}"))
    }

    /// A string field: any scalar's text; null is the empty string.
    pub fn as_string(&self) -> Result<String, YamlError> {
        if self.is_null() {
            return Ok(String::new());
        }
        match &self.kind {
            NodeKind::Scalar { value, .. } => Ok(value.clone()),
            _ => Err(self.type_error("a string")),
        }
    }

    pub fn as_i64(&self) -> Result<i64, YamlError> {
        if self.is_null() {
            return Ok(0);
        }
        match &self.kind {
            NodeKind::Scalar { value, quoted: false, .. } => {
                parse_yaml_int(value).ok_or_else(|| self.type_error("an integer"))
            }
            _ => Err(self.type_error("an integer")),
        }
    }

    pub fn as_f64(&self) -> Result<f64, YamlError> {
        if self.is_null() {
            return Ok(0.0);
        }
        match &self.kind {
            NodeKind::Scalar { value, quoted: false, .. } => parse_yaml_float(value)
                .or_else(|| parse_yaml_int(value).map(|i| i as f64))
                .ok_or_else(|| self.type_error("a number")),
            _ => Err(self.type_error("a number")),
        }
    }

    pub fn as_bool(&self) -> Result<bool, YamlError> {
        if self.is_null() {
            return Ok(false);
        }
        match &self.kind {
            NodeKind::Scalar { value, quoted: false, .. } => {
                parse_yaml_bool(value).ok_or_else(|| self.type_error("a boolean"))
            }
            _ => Err(self.type_error("a boolean")),
        }
    }

    /// A sequence field; null is empty.
    pub fn as_seq(&self) -> Result<&[Node], YamlError> {
        if self.is_null() {
            return Ok(&[]);
        }
        match &self.kind {
            NodeKind::Seq(items) => Ok(items),
            _ => Err(self.type_error("a list")),
        }
    }

    /// A mapping field; null is empty. Duplicate keys are an error, as in
    /// Go's yaml.v3.
    pub fn as_map(&self) -> Result<&[(Node, Node)], YamlError> {
        if self.is_null() {
            return Ok(&[]);
        }
        match &self.kind {
            NodeKind::Map(entries) => {
                for (i, (k, _)) in entries.iter().enumerate() {
                    if let Some((first, _)) = entries[..i].iter().find(|(p, _)| p.kind == k.kind) {
                        let name = match &k.kind {
                            NodeKind::Scalar { value, .. } => value.clone(),
                            _ => String::from("?"),
                        };
                        return Err(YamlError::new(
                            k.pos,
                            format!(
                                "mapping key {} already defined at line {}",
                                crate::gofmt::quote(&name),
                                first.pos.line
                            ),
                        ));
                    }
                }
                Ok(entries)
            }
            _ => Err(self.type_error("a mapping")),
        }
    }

    /// A `map[string]string` field, in file order.
    pub fn as_string_map(&self) -> Result<Vec<(String, String, Pos)>, YamlError> {
        self.as_map()?.iter().map(|(k, v)| Ok((k.as_string()?, v.as_string()?, k.pos))).collect()
    }

    /// A `[]string` field.
    pub fn as_string_seq(&self) -> Result<Vec<String>, YamlError> {
        self.as_seq()?.iter().map(Node::as_string).collect()
    }
}

/// A YAML integer as Go's yaml decoders accept it: decimal, `0x`, `0o`, `0b`,
/// with an optional sign and `_` separators.
pub fn parse_yaml_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let (radix, digits) = if let Some(h) = clean.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = clean.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = clean.strip_prefix("0b") {
        (2, b)
    } else {
        (10, clean.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if neg { -v } else { v }).ok()
}

/// A YAML float: decimal with a fraction or exponent, or `.inf`/`.nan` forms.
pub fn parse_yaml_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let b = s.as_bytes();
    let ok_chars = b.iter().all(|c| c.is_ascii_digit() || b"+-.eE_".contains(c));
    if !ok_chars || !b.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    clean.parse::<f64>().ok()
}

/// A YAML boolean, including the YAML 1.1 words Go's decoders still accept
/// for boolean fields.
pub fn parse_yaml_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// The fields of one YAML mapping decoded into a struct: unknown keys are
/// refused (unless ignored), duplicate keys always are.
pub struct Fields<'a> {
    pub pos: Pos,
    entries: &'a [(Node, Node)],
}

impl<'a> Fields<'a> {
    /// `what` names the struct in errors ("rule", "rule group"); `known` lists
    /// its fields.
    pub fn new(
        node: &'a Node,
        what: &str,
        known: &[&str],
        ignore_unknown: bool,
    ) -> Result<Self, YamlError> {
        let entries = match &node.kind {
            NodeKind::Map(_) => node.as_map()?,
            _ if node.is_null() => &[],
            _ => return Err(node.type_error(what)),
        };
        if !ignore_unknown {
            for (k, _) in entries {
                let name = k.as_string()?;
                if !known.contains(&name.as_str()) {
                    return Err(YamlError::new(
                        k.pos,
                        format!(
                            "field {name} not found in {what} (known fields: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(Fields { pos: node.pos, entries })
    }

    /// The value node of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.kind, NodeKind::Scalar { value, .. } if value == key))
            .map(|(_, v)| v)
    }

    /// The key node of `key`, if present (for pointing at a field's name).
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.kind, NodeKind::Scalar { value, .. } if value == key))
            .map(|(k, _)| k.pos)
    }

    pub fn string(&self, key: &str) -> Result<String, YamlError> {
        self.get(key).map_or(Ok(String::new()), Node::as_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let n = root("groups:\n  - name: x\n    rules: []\n");
        let f = Fields::new(&n, "file", &["groups"], false).unwrap();
        let groups = f.get("groups").unwrap().as_seq().unwrap();
        assert_eq!(groups[0].pos, Pos { line: 2, col: 5 });
        let g = Fields::new(&groups[0], "group", &["name", "rules"], false).unwrap();
        assert_eq!(g.get("name").unwrap().pos, Pos { line: 2, col: 11 });
        assert_eq!(g.key_pos("rules"), Some(Pos { line: 3, col: 5 }));
    }

    #[test]
    fn unknown_and_duplicate_fields_are_refused() {
        let n = root("a: 1\nb: 2\n");
        let e = Fields::new(&n, "thing", &["a"], false).err().unwrap();
        assert_eq!(e.pos, Pos { line: 2, col: 1 });
        assert!(e.message.contains("field b not found in thing"), "{e}");
        assert!(Fields::new(&n, "thing", &["a"], true).is_ok());
        let d = root("a: 1\na: 2\n");
        let e = Fields::new(&d, "thing", &["a"], true).err().unwrap();
        assert_eq!(e.to_string(), "2:1: mapping key \"a\" already defined at line 1");
    }

    #[test]
    fn scalars_resolve_by_the_field_that_reads_them() {
        let n = root("s: 500\nq: '12'\nf: 1.5e3\ni: 0x1f\nb: true\nn:\nl: [a, b]\n");
        let f = Fields::new(&n, "t", &["s", "q", "f", "i", "b", "n", "l"], false).unwrap();
        assert_eq!(f.string("s").unwrap(), "500");
        assert_eq!(f.get("f").unwrap().as_f64().unwrap(), 1500.0);
        assert_eq!(f.get("i").unwrap().as_i64().unwrap(), 31);
        assert!(f.get("b").unwrap().as_bool().unwrap());
        assert!(f.get("n").unwrap().is_null());
        assert_eq!(f.string("n").unwrap(), "");
        let e = f.get("q").unwrap().as_i64().unwrap_err();
        assert_eq!(e.message, "cannot unmarshal !!str `12` into an integer");
        let e = f.get("l").unwrap().as_string().unwrap_err();
        assert_eq!(e.message, "cannot unmarshal !!seq into a string");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1 && !e.message.is_empty(), "{e}");
        let e = parse("a:\n  - x\n b: y\n").unwrap_err();
        assert_eq!(e.pos.line, 3, "{e}");
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let n = root("a: &x {k: v}\nb: *x\n");
        let f = Fields::new(&n, "t", &["a", "b"], false).unwrap();
        assert_eq!(f.get("b").unwrap().as_string_map().unwrap()[0].1, "v");
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e}");
    }

    #[test]
    fn multiple_documents_are_noticed() {
        let d = parse("a: 1\n---\nb: 2\n").unwrap();
        assert!(d.more_documents);
        assert!(parse("").unwrap().root.is_none());
    }
}
