//! Rule files in Prometheus's format, plus tocsin's `wasm:` rules.
//!
//! Parsing is strict and checks what `promtool check rules` checks: unknown
//! fields, duplicate keys and group names, record/alert exclusivity, metric
//! and label names, PromQL that parses, templates that parse, durations.
//! Every error says where: `file:line:col: group "g", rule 2, "Name": …`.

use std::fmt;

use crate::duration::parse_duration;
use crate::promql::{self, Expr};
use crate::yaml::{self, Fields, Node, Pos, YamlError};

/// A parsed rule file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    pub name: String,
    pub groups: Vec<GroupSpec>,
}

/// One `groups:` entry.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub name: String,
    /// `interval:`; `None` means the global evaluation interval.
    pub interval_ms: Option<i64>,
    /// `query_offset:`; `None` means the global default.
    pub query_offset_ms: Option<i64>,
    /// `limit:`; 0 means no limit.
    pub limit: usize,
    /// Group labels, added to every rule's labels (a rule's own win).
    pub labels: Vec<(String, String)>,
    pub rules: Vec<RuleSpec>,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// The `record:` or `alert:` name.
    pub name: String,
    pub kind: RuleKind,
    pub expr: RuleExpr,
    /// The rule's labels merged over the group's, sorted by name.
    pub labels: Vec<(String, String)>,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    Record,
    Alert {
        for_ms: i64,
        keep_firing_for_ms: i64,
        /// In file order, as Prometheus keeps them (sorted by name).
        annotations: Vec<(String, String)>,
    },
}

#[derive(Clone, Debug)]
pub enum RuleExpr {
    PromQL {
        text: String,
        expr: Box<Expr>,
    },
    /// A WASM module by name (or path) and the `config:` it is handed.
    Wasm {
        module: String,
        config: Option<Node>,
    },
}

impl RuleExpr {
    /// The rule's expression as shown to users (`wasm:NAME` for modules).
    pub fn display(&self) -> String {
        match self {
            RuleExpr::PromQL { text, .. } => text.clone(),
            RuleExpr::Wasm { module, .. } => format!("wasm:{module}"),
        }
    }
}

impl RuleSpec {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alert { .. })
    }
}

/// One problem found in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFileError {
    pub file: String,
    pub pos: Option<Pos>,
    /// `group "g", rule 2, "Name"` when the error is inside a rule.
    pub context: Option<String>,
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(p) = self.pos {
            write!(f, ":{p}")?;
        }
        write!(f, ": ")?;
        if let Some(c) = &self.context {
            write!(f, "{c}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleFileError {}

/// Parse options.
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseOptions {
    /// Accept (and ignore) fields this format does not know, like promtool's
    /// `--ignore-unknown-fields`.
    pub ignore_unknown_fields: bool,
}

const GROUP_FIELDS: &[&str] = &["name", "interval", "query_offset", "limit", "rules", "labels"];
const RULE_FIELDS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
    "wasm",
    "config",
];

/// Parses and validates a rule file. `file` names it in errors.
pub fn parse_rule_file(
    file: &str,
    text: &str,
    opts: ParseOptions,
) -> Result<RuleFile, Vec<RuleFileError>> {
    let plain = |e: YamlError| RuleFileError {
        file: file.to_owned(),
        pos: Some(e.pos),
        context: None,
        message: e.message,
    };
    let doc = yaml::parse(text).map_err(|e| vec![plain(e)])?;
    let Some(root) = doc.root else {
        return Ok(RuleFile { name: file.to_owned(), groups: Vec::new() });
    };
    let top = Fields::new(&root, "rule file", &["groups"], opts.ignore_unknown_fields)
        .map_err(|e| vec![plain(e)])?;
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let group_nodes = match top.get("groups").map(Node::as_seq).transpose() {
        Ok(g) => g.unwrap_or(&[]),
        Err(e) => return Err(vec![plain(e)]),
    };
    for gnode in group_nodes {
        match parse_group(file, gnode, opts, &mut errors) {
            Ok(Some(g)) => {
                if let Some(prev) = groups.iter().find(|p: &&GroupSpec| p.name == g.name) {
                    errors.push(RuleFileError {
                        file: file.to_owned(),
                        pos: Some(g.pos),
                        context: None,
                        message: format!(
                            "groupname: \"{}\" is repeated in the same file (first at line {})",
                            g.name, prev.pos.line
                        ),
                    });
                }
                groups.push(g);
            }
            Ok(None) => {}
            Err(e) => {
                errors.push(plain(e));
            }
        }
    }
    if errors.is_empty() { Ok(RuleFile { name: file.to_owned(), groups }) } else { Err(errors) }
}

fn duration_field(f: &Fields<'_>, key: &str) -> Result<Option<i64>, YamlError> {
    let Some(node) = f.get(key) else { return Ok(None) };
    if node.is_null() {
        return Ok(None);
    }
    let s = node.as_string()?;
    parse_duration(&s).map(Some).map_err(|e| YamlError::new(node.pos, e))
}

/// Structural errors (wrong types, unknown fields) end the group with `Err`;
/// semantic ones are collected in `errors` so the user sees them all.
fn parse_group(
    file: &str,
    node: &Node,
    opts: ParseOptions,
    errors: &mut Vec<RuleFileError>,
) -> Result<Option<GroupSpec>, YamlError> {
    let f = Fields::new(node, "rule group", GROUP_FIELDS, opts.ignore_unknown_fields)?;
    let name = f.string("name")?;
    let err_at = |pos: Pos, message: String| RuleFileError {
        file: file.to_owned(),
        pos: Some(pos),
        context: None,
        message,
    };
    let before = errors.len();
    if name.is_empty() {
        errors.push(err_at(node.pos, "Groupname must not be empty".into()));
    }
    let interval_ms = duration_field(&f, "interval")?;
    if interval_ms == Some(0) {
        errors.push(err_at(
            f.get("interval").map_or(node.pos, |n| n.pos),
            format!("group {}: interval must be greater than zero", crate::gofmt::quote(&name)),
        ));
    }
    let query_offset_ms = duration_field(&f, "query_offset")?;
    let limit = match f.get("limit") {
        None => 0,
        Some(n) => {
            let v = n.as_i64()?;
            if v < 0 {
                return Err(YamlError::new(n.pos, "limit must not be negative"));
            }
            v as usize
        }
    };
    let labels = match f.get("labels") {
        Some(n) => n.as_string_map()?,
        None => Vec::new(),
    };
    for (k, v, pos) in &labels {
        check_label(k, v, "label").map_err(|m| errors.push(err_at(*pos, m))).ok();
    }
    let mut rules = Vec::new();
    let rule_nodes = f.get("rules").map(Node::as_seq).transpose()?.unwrap_or(&[]);
    for (i, rnode) in rule_nodes.iter().enumerate() {
        if let Some(r) = parse_rule(file, &name, i + 1, rnode, &labels, opts, errors)? {
            rules.push(r);
        }
    }
    let group = GroupSpec {
        name,
        interval_ms,
        query_offset_ms,
        limit,
        labels: labels.into_iter().map(|(k, v, _)| (k, v)).collect(),
        rules,
        pos: node.pos,
    };
    Ok((errors.len() == before).then_some(group))
}

fn check_label(name: &str, value: &str, what: &str) -> Result<(), String> {
    // Prometheus 3 accepts any non-empty UTF-8 label name; our strings are
    // always valid UTF-8, so the value needs no check.
    let _ = value;
    if name.is_empty() || name == crate::labels::METRIC_NAME {
        return Err(format!("invalid {what} name: {name}"));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn parse_rule(
    file: &str,
    group: &str,
    index: usize,
    node: &Node,
    group_labels: &[(String, String, Pos)],
    opts: ParseOptions,
    errors: &mut Vec<RuleFileError>,
) -> Result<Option<RuleSpec>, YamlError> {
    let f = Fields::new(node, "rule", RULE_FIELDS, opts.ignore_unknown_fields)?;
    let record = f.string("record")?;
    let alert = f.string("alert")?;
    let name = if alert.is_empty() { record.clone() } else { alert.clone() };
    let context = format!(
        "group {}, rule {index}, {}",
        crate::gofmt::quote(group),
        crate::gofmt::quote(&name)
    );
    let before = errors.len();
    let mut fail = |pos: Pos, message: String| {
        errors.push(RuleFileError {
            file: file.to_owned(),
            pos: Some(pos),
            context: Some(context.clone()),
            message,
        })
    };
    let record_pos = f.get("record").map_or(node.pos, |n| n.pos);
    if !record.is_empty() && !alert.is_empty() {
        fail(record_pos, "only one of 'record' and 'alert' must be set".into());
    }
    if record.is_empty() && alert.is_empty() {
        fail(node.pos, "one of 'record' or 'alert' must be set".into());
    }

    let expr_text = f.string("expr")?;
    let wasm = f.string("wasm")?;
    let expr = if !wasm.is_empty() {
        if f.get("expr").is_some() {
            fail(
                f.key_pos("expr").unwrap_or(node.pos),
                "a rule has either 'expr' or 'wasm', not both".into(),
            );
        }
        Some(RuleExpr::Wasm { module: wasm, config: f.get("config").cloned() })
    } else if f.get("config").is_some() {
        fail(
            f.key_pos("config").unwrap_or(node.pos),
            "'config' belongs to 'wasm' rules; this rule has no 'wasm' module".into(),
        );
        None
    } else if expr_text.is_empty() {
        fail(f.get("expr").map_or(node.pos, |n| n.pos), "field 'expr' must be set in rule".into());
        None
    } else {
        match promql::parse(&expr_text) {
            Ok(e) => Some(RuleExpr::PromQL { text: expr_text, expr: Box::new(e) }),
            Err(e) => {
                fail(
                    f.get("expr").map_or(node.pos, |n| n.pos),
                    format!("could not parse expression: {e}"),
                );
                None
            }
        }
    };

    let for_ms = duration_field(&f, "for")?.unwrap_or(0);
    let keep_firing_for_ms = duration_field(&f, "keep_firing_for")?.unwrap_or(0);
    let labels = match f.get("labels") {
        Some(n) => n.as_string_map()?,
        None => Vec::new(),
    };
    let annotations = match f.get("annotations") {
        Some(n) => n.as_string_map()?,
        None => Vec::new(),
    };
    if !record.is_empty() {
        if !annotations.is_empty() {
            fail(record_pos, "invalid field 'annotations' in recording rule".into());
        }
        if for_ms != 0 {
            fail(record_pos, "invalid field 'for' in recording rule".into());
        }
        if keep_firing_for_ms != 0 {
            fail(record_pos, "invalid field 'keep_firing_for' in recording rule".into());
        }
        if record.contains('{') || record.contains('}') {
            fail(
                record_pos,
                format!(
                    "braces present in the recording rule name; should it be in expr?: {record}"
                ),
            );
        }
    }
    for (k, v, pos) in &labels {
        if let Err(m) = check_label(k, v, "label") {
            fail(*pos, m);
        }
    }
    for (k, _, pos) in &annotations {
        if k.is_empty() {
            fail(*pos, format!("invalid annotation name: {k}"));
        }
    }
    if !alert.is_empty() {
        let tname = format!("__alert_{alert}");
        for (what, list) in [("label", &labels), ("annotation", &annotations)] {
            for (k, v, pos) in list.iter() {
                if let Err(e) = crate::templates::check(&tname, v) {
                    fail(*pos, format!("{what} {}: {e}", crate::gofmt::quote(k)));
                }
            }
        }
    }
    if errors.len() != before {
        return Ok(None);
    }
    let Some(expr) = expr else { return Ok(None) };

    let mut merged: Vec<(String, String)> =
        group_labels.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
    for (k, v, _) in labels {
        match merged.iter_mut().find(|(mk, _)| *mk == k) {
            Some(slot) => slot.1 = v,
            None => merged.push((k, v)),
        }
    }
    crate::sort::sort(&mut merged);
    let mut annotations: Vec<(String, String)> =
        annotations.into_iter().map(|(k, v, _)| (k, v)).collect();
    crate::sort::sort(&mut annotations);
    let kind = if alert.is_empty() {
        RuleKind::Record
    } else {
        RuleKind::Alert { for_ms, keep_firing_for_ms, annotations }
    };
    Ok(Some(RuleSpec { name, kind, expr, labels: merged, pos: node.pos }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse_rule_file("r.yml", text, ParseOptions::default())
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn parses_groups_and_rules() {
        let text = "groups:\n- name: g\n  interval: 30s\n  limit: 3\n  labels: {team: a}\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    labels: {severity: page, team: b}\n    annotations: {summary: '{{ $labels.job }} down'}\n";
        let f = parse_rule_file("r.yml", text, ParseOptions::default()).unwrap();
        let g = &f.groups[0];
        assert_eq!((g.name.as_str(), g.interval_ms, g.limit), ("g", Some(30_000), 3));
        assert_eq!(g.rules.len(), 2);
        assert!(!g.rules[0].is_alert());
        assert_eq!(g.rules[0].labels, vec![("team".into(), "a".into())]);
        let RuleKind::Alert { for_ms, keep_firing_for_ms, annotations } = &g.rules[1].kind else {
            panic!("alert expected")
        };
        assert_eq!((*for_ms, *keep_firing_for_ms), (300_000, 60_000));
        assert_eq!(annotations[0].0, "summary");
        assert_eq!(
            g.rules[1].labels,
            vec![("severity".into(), "page".into()), ("team".into(), "b".into())]
        );
    }

    #[test]
    fn errors_carry_file_line_column_and_rule() {
        let e = errors("groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'test +'\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("r.yml:5:11: group \"g\", rule 1, \"x\": could not parse expression:"),
            "{e:?}"
        );
        let e = errors("groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    bogus: 1\n");
        assert!(e[0].starts_with("r.yml:6:5: field bogus not found in rule"), "{e:?}");
        let e = errors("groups:\n- name: g\n  rules:\n  - record: x\n    alert: y\n    expr: up\n");
        assert_eq!(
            e,
            vec![
                "r.yml:4:13: group \"g\", rule 1, \"y\": only one of 'record' and 'alert' must be set"
            ]
        );
        let e = errors("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n");
        assert!(e[0].contains("4:3: groupname: \"g\" is repeated"), "{e:?}");
        let e = errors(
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    for: 5m\n    labels: {__name__: y}\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        let e = errors("groups:\n- name: g\n  interval: 5 minutes\n  rules: []\n");
        assert!(e[0].contains("3:13: not a valid duration string"), "{e:?}");
        let e = errors("groups:\n- name: g\n  rules:\n  - record: 'x{a=\"b\"}'\n    expr: up\n");
        assert!(e[0].contains("braces present"), "{e:?}");
        let e = errors(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ .Foo '\n",
        );
        assert!(
            e[0].starts_with("r.yml:7:7: group \"g\", rule 1, \"A\": annotation \"s\": template:"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_fields_can_be_ignored() {
        let text = "groups:\n- name: g\n  owner: me\n  rules:\n  - record: x\n    expr: up\n    owner: me\n";
        assert!(parse_rule_file("r", text, ParseOptions::default()).is_err());
        let opts = ParseOptions { ignore_unknown_fields: true };
        assert_eq!(parse_rule_file("r", text, opts).unwrap().groups[0].rules.len(), 1);
    }

    #[test]
    fn wasm_rules_are_parsed_and_validated() {
        let text = "groups:\n- name: g\n  rules:\n  - record: model:f1\n    wasm: f1\n    config: {beta: 1}\n  - alert: Drift\n    wasm: drift\n    for: 5m\n";
        let f = parse_rule_file("r", text, ParseOptions::default()).unwrap();
        let RuleExpr::Wasm { module, config } = &f.groups[0].rules[0].expr else { panic!() };
        assert_eq!(module, "f1");
        assert!(config.is_some());
        assert_eq!(f.groups[0].rules[1].expr.display(), "wasm:drift");
        let e = errors("groups:\n- name: g\n  rules:\n  - record: x\n    wasm: m\n    expr: up\n");
        assert!(e[0].contains("either 'expr' or 'wasm'"), "{e:?}");
        let e = errors(
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    config: {a: 1}\n",
        );
        assert!(e[0].contains("'config' belongs to 'wasm' rules"), "{e:?}");
    }

    #[test]
    fn empty_files_have_no_groups() {
        assert!(parse_rule_file("r", "", ParseOptions::default()).unwrap().groups.is_empty());
        assert!(parse_rule_file("r", "# only a comment\n", ParseOptions::default()).is_ok());
    }
}
