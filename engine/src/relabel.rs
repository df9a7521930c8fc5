//! Prometheus relabelling: `relabel_configs`, `metric_relabel_configs`,
//! `alert_relabel_configs` and `write_relabel_configs` all share these rules.
//!
//! Semantics follow Prometheus 3: regexes are RE2, fully anchored and `.`
//! matches newline (compiled by [`crate::matcher::compile_anchored`]); label
//! names are validated as UTF-8 unless a config asks for legacy names;
//! replacements expand like Go's `regexp.Expand`, including its surprises
//! (`$1x` names a group called `1x` and so expands to nothing).

use std::fmt;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::labels::{Label, Labels, Str, is_legacy_label_name};
use crate::matcher::{RegexError, compile_anchored};
use crate::yaml::{Fields, Node, YamlError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Case-insensitive, as Prometheus reads it.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which label names are valid: Prometheus 3 defaults to any non-empty
/// UTF-8 string; `metric_name_validation_scheme: legacy` restores
/// `[a-zA-Z_][a-zA-Z0-9_]*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameValidation {
    #[default]
    Utf8,
    Legacy,
}

impl NameValidation {
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_label_name(name),
        }
    }

    /// A target label that may still contain `$1`/`${name}` references.
    fn is_valid_template_name(self, name: &str) -> bool {
        // Legacy names plus `$var` and `${var}`, as Prometheus's relabelTargetLegacy.
        static LEGACY: LazyLock<Regex> = LazyLock::new(|| {
            let w = "[0-9A-Za-z_]";
            Regex::new(&format!(r"^(?:(?:[a-zA-Z_]|\$(?:\{{{w}+\}}|{w}+))+{w}*)+$"))
                .expect("constant regex")
        });
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => LEGACY.is_match(name),
        }
    }
}

/// A fully anchored RE2 regex that remembers how it was written.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    re: Regex,
}

impl RelabelRegex {
    pub const DEFAULT: &'static str = "(.*)";

    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        Ok(RelabelRegex { source: pattern.to_owned(), re: compile_anchored(pattern)? })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    fn is_default(&self) -> bool {
        self.source == Self::DEFAULT
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex::new(Self::DEFAULT).expect("constant regex")
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// One relabelling step.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub target_label: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub replacement: String,
    pub action: Action,
    /// How names produced by `replace` are checked (invalid ones are skipped).
    pub name_validation: NameValidation,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".into(),
            target_label: String::new(),
            regex: RelabelRegex::default(),
            modulus: 0,
            replacement: "$1".into(),
            action: Action::Replace,
            name_validation: NameValidation::Utf8,
        }
    }
}

impl RelabelConfig {
    /// Prometheus's checks on a relabel config, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let a = self.action;
        let d = RelabelConfig::default();
        let scheme = self.name_validation;
        let tl = &self.target_label;
        if a == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(a, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual)
            && tl.is_empty()
        {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let invalid_target = || Err(format!("{tl:?} is invalid 'target_label' for {a} action"));
        if a == Replace && !scheme.is_valid_template_name(tl) {
            return invalid_target();
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
            && !scheme.is_valid_label_name(tl)
        {
            return invalid_target();
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != d.replacement
        {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !scheme.is_valid_template_name(&self.replacement) {
            return Err(format!("{:?} is invalid 'replacement' for {a} action", self.replacement));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (!self.regex.is_default()
                || self.modulus != 0
                || self.separator != d.separator
                || self.replacement != d.replacement)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !tl.is_empty()
                || self.modulus != 0
                || self.separator != d.separator
                || self.replacement != d.replacement)
        {
            return Err(format!("{a} action requires only 'regex', and no other fields"));
        }
        Ok(())
    }
}

const FIELDS: &[&str] =
    &["source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"];

/// Parses a list of relabel configs with Prometheus 3's default UTF-8 names.
pub fn parse_relabel_configs(node: &Node) -> Result<Vec<RelabelConfig>, YamlError> {
    parse_relabel_configs_with(node, NameValidation::Utf8)
}

/// Parses and validates a list of relabel configs; errors point at the
/// offending config or field.
pub fn parse_relabel_configs_with(
    node: &Node,
    names: NameValidation,
) -> Result<Vec<RelabelConfig>, YamlError> {
    node.as_seq()?.iter().map(|n| parse_one(n, names)).collect()
}

fn parse_one(node: &Node, names: NameValidation) -> Result<RelabelConfig, YamlError> {
    if node.is_null() {
        return Err(YamlError::new(node.pos, "empty or null relabeling rule"));
    }
    let f = Fields::new(node, "relabel config", FIELDS, false)?;
    let mut c = RelabelConfig { name_validation: names, ..RelabelConfig::default() };
    if let Some(n) = f.get("source_labels") {
        for item in n.as_seq()? {
            let name = item.as_string()?;
            if name.is_empty() {
                return Err(YamlError::new(item.pos, "\"\" is not a valid label name"));
            }
            c.source_labels.push(name);
        }
    }
    if let Some(n) = f.get("separator") {
        c.separator = n.as_string()?;
    }
    if let Some(n) = f.get("regex") {
        c.regex =
            RelabelRegex::new(&n.as_string()?).map_err(|e| YamlError::new(n.pos, e.to_string()))?;
    }
    if let Some(n) = f.get("modulus") {
        c.modulus = u64::try_from(n.as_i64()?).map_err(|_| {
            YamlError::new(n.pos, format!("cannot unmarshal {} into uint64", n.kind_name()))
        })?;
    }
    if let Some(n) = f.get("target_label") {
        c.target_label = n.as_string()?;
    }
    if let Some(n) = f.get("replacement") {
        c.replacement = n.as_string()?;
    }
    if let Some(n) = f.get("action") {
        let s = n.as_string()?;
        c.action = match Action::parse(&s) {
            Some(a) => a,
            None if s.is_empty() => {
                return Err(YamlError::new(n.pos, "relabel action cannot be empty"));
            }
            None => {
                return Err(YamlError::new(n.pos, format!("unknown relabel action {s:?}")));
            }
        };
    }
    c.validate().map_err(|m| YamlError::new(node.pos, m))?;
    Ok(c)
}

/// Applies `cfgs` in order. `None` when a step drops the set; an empty result
/// is returned as is (callers drop it too).
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    if cfgs.is_empty() {
        return Some(labels.clone());
    }
    let mut lb = Work(labels.iter().cloned().collect());
    for cfg in cfgs {
        if !step(cfg, &mut lb) {
            return None;
        }
    }
    Some(Labels::new(lb.0))
}

/// The label set being rewritten: unsorted, small, no empty values.
struct Work(Vec<Label>);

impl Work {
    fn get(&self, name: &str) -> &str {
        self.0.iter().find(|l| &*l.name == name).map_or("", |l| &l.value)
    }

    /// An empty value deletes, as in Prometheus's label builder.
    fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.0.retain(|l| &*l.name != name);
            return;
        }
        match self.0.iter_mut().find(|l| &*l.name == name) {
            Some(l) => l.value = Str::from(value),
            None => self.0.push(Label::new(name, value)),
        }
    }
}

fn step(cfg: &RelabelConfig, lb: &mut Work) -> bool {
    let val = cfg.source_labels.iter().map(|n| lb.get(n)).collect::<Vec<_>>().join(&cfg.separator);
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(&val),
        Action::Keep => return cfg.regex.is_match(&val),
        Action::DropEqual => return lb.get(&cfg.target_label) != val,
        Action::KeepEqual => return lb.get(&cfg.target_label) == val,
        Action::Replace => {
            // Prometheus's fast path: no regex work to set or delete a constant.
            if val.is_empty()
                && cfg.regex.is_default()
                && !cfg.target_label.contains('$')
                && !cfg.replacement.contains('$')
            {
                lb.set(&cfg.target_label, &cfg.replacement);
                return true;
            }
            let Some(caps) = cfg.regex.re.captures(&val) else { return true };
            let target = expand(&cfg.target_label, &cfg.regex.re, &caps);
            if !cfg.name_validation.is_valid_label_name(&target) {
                return true;
            }
            let res = expand(&cfg.replacement, &cfg.regex.re, &caps);
            lb.set(&target, &res);
        }
        Action::Lowercase => lb.set(&cfg.target_label, &val.to_lowercase()),
        Action::Uppercase => lb.set(&cfg.target_label, &val.to_uppercase()),
        Action::HashMod => {
            let digest = md5(val.as_bytes());
            // The last 8 bytes, as every Prometheus version has used.
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..]);
            let m = u64::from_be_bytes(tail) % cfg.modulus.max(1);
            lb.set(&cfg.target_label, &m.to_string());
        }
        Action::LabelMap => {
            for l in lb.0.clone() {
                if let Some(caps) = cfg.regex.re.captures(&l.name) {
                    let name = expand(&cfg.replacement, &cfg.regex.re, &caps);
                    if !name.is_empty() {
                        lb.set(&name, &l.value);
                    }
                }
            }
        }
        Action::LabelDrop => lb.0.retain(|l| !cfg.regex.is_match(&l.name)),
        Action::LabelKeep => lb.0.retain(|l| cfg.regex.is_match(&l.name)),
    }
    true
}

/// Go's `Regexp.Expand`: `$$` is a dollar; `$name` takes the longest run of
/// letters, digits and `_`; `${name}` is braced; a name of digits without a
/// leading zero is a group number, anything else a group name; unknown or
/// unmatched groups expand to nothing; a malformed reference stays literal.
fn expand(template: &str, re: &Regex, caps: &Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.get(n),
            // Rust's regex forbids duplicate names, so the first is the only one.
            None => re.capture_names().position(|n| n == Some(name)).and_then(|i| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
    out
}

/// The reference name after a `$` and the text following it.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize =
        body.chars().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    if !braced {
        return Some((name, &body[len..]));
    }
    body[len..].strip_prefix('}').map(|after| (name, after))
}

fn group_number(name: &str) -> Option<usize> {
    let digits = name.bytes().all(|b| b.is_ascii_digit());
    if !digits || (name.len() > 1 && name.starts_with('0')) || name.len() > 8 {
        return None;
    }
    name.parse().ok()
}

/// MD5 (RFC 1321), only for `hashmod`, whose results must equal Prometheus's
/// so that sharding by `hashmod` splits targets the same way.
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    static K: LazyLock<[u32; 64]> = LazyLock::new(|| {
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
    });
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]])
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(K[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 16];
    for (i, s) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn parse(text: &str) -> Result<Vec<RelabelConfig>, YamlError> {
        parse_relabel_configs(&yaml::parse(text).unwrap().root.unwrap())
    }

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    fn run(cfg: &str, input: &[(&str, &str)]) -> Option<String> {
        let cfgs = parse(cfg).unwrap_or_else(|e| panic!("{e}"));
        process(&ls(input), &cfgs).map(|l| l.to_string())
    }

    fn err(cfg: &str) -> String {
        parse(cfg).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let c = &parse("- target_label: x\n").unwrap()[0];
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex.as_str(), "(.*)");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.modulus, 0);
        // Null fields are Go's zero values.
        let c = &parse("- {target_label: x, regex: ~, separator: ~, replacement: ~}\n").unwrap()[0];
        assert_eq!((c.regex.as_str(), c.separator.as_str(), c.replacement.as_str()), ("", "", ""));
    }

    #[test]
    fn replace_joins_sources_and_expands() {
        let cfg = "- source_labels: [a, b]\n  regex: '(.*);(.*)'\n  target_label: c\n  replacement: '${2}-$1'\n";
        assert_eq!(run(cfg, &[("a", "x"), ("b", "y")]).unwrap(), r#"{a="x", b="y", c="y-x"}"#);
        // No match: nothing changes.
        let cfg = "- {source_labels: [a], regex: 'z+', target_label: c}\n";
        assert_eq!(run(cfg, &[("a", "x")]).unwrap(), r#"{a="x"}"#);
        // Empty result deletes the target.
        let cfg = "- {source_labels: [missing], target_label: a}\n";
        assert_eq!(run(cfg, &[("a", "x"), ("b", "y")]).unwrap(), r#"{b="y"}"#);
        // Fast path: constant replacement on an empty value.
        let cfg = "- {target_label: env, replacement: prod}\n";
        assert_eq!(run(cfg, &[("a", "x")]).unwrap(), r#"{a="x", env="prod"}"#);
        // The target label itself may be a template.
        let cfg =
            "- {source_labels: [k], regex: '(.+)', target_label: 'tag_$1', replacement: yes}\n";
        assert_eq!(run(cfg, &[("k", "blue")]).unwrap(), r#"{k="blue", tag_blue="yes"}"#);
        // Regexes are anchored: a partial match does nothing.
        let cfg = "- {source_labels: [a], regex: 'x', target_label: c, replacement: hit}\n";
        assert_eq!(run(cfg, &[("a", "xx")]).unwrap(), r#"{a="xx"}"#);
    }

    #[test]
    fn replace_skips_targets_that_are_not_valid_names() {
        let cfg = "- {source_labels: [k], regex: '(.*)', target_label: '$1', replacement: v}\n";
        assert_eq!(run(cfg, &[("k", "")]).unwrap(), "{}");
        let mut cfgs =
            parse("- {source_labels: [k], target_label: '$1', replacement: v}\n").unwrap();
        cfgs[0].name_validation = NameValidation::Legacy;
        let out = process(&ls(&[("k", "a.b")]), &cfgs).unwrap();
        assert_eq!(out.to_string(), r#"{k="a.b"}"#);
        cfgs[0].name_validation = NameValidation::Utf8;
        let out = process(&ls(&[("k", "a.b")]), &cfgs).unwrap();
        assert_eq!(out.to_string(), r#"{"a.b"="v", k="a.b"}"#);
    }

    #[test]
    fn expand_follows_go() {
        let re = compile_anchored("(?P<first>a)(b)?(c)").unwrap();
        let caps = re.captures("ac").unwrap();
        let x = |t: &str| expand(t, &re, &caps);
        assert_eq!(x("$1|${1}|$first|${first}|$3"), "a|a|a|a|c");
        assert_eq!(x("$$1 $$"), "$1 $");
        // Longest name: `$1x` is the (absent) group named `1x`.
        assert_eq!(x("$1x|${1}x"), "|ax");
        assert_eq!(x("[$2][$9][$nope]"), "[][][]");
        assert_eq!(x("$01|$0"), "|ac");
        // Malformed references stay literal.
        assert_eq!(x("$ ${ ${1 ${} $-"), "$ ${ ${1 ${} $-");
        assert_eq!(x("end$"), "end$");
    }

    #[test]
    fn keep_and_drop() {
        let keep = "- {source_labels: [a], regex: 'x|y', action: keep}\n";
        assert!(run(keep, &[("a", "y")]).is_some());
        assert!(run(keep, &[("a", "z")]).is_none());
        let drop = "- {source_labels: [a, b], regex: 'x;', action: Drop}\n";
        assert!(run(drop, &[("a", "x")]).is_none());
        assert!(run(drop, &[("a", "x"), ("b", "1")]).is_some());
        // Steps after a drop never run.
        let two =
            "- {source_labels: [a], regex: x, action: drop}\n- {target_label: b, replacement: c}\n";
        assert!(run(two, &[("a", "x")]).is_none());
    }

    #[test]
    fn keepequal_and_dropequal() {
        let ke = "- {source_labels: [a], target_label: b, action: keepequal}\n";
        assert!(run(ke, &[("a", "1"), ("b", "1")]).is_some());
        assert!(run(ke, &[("a", "1"), ("b", "2")]).is_none());
        let de = "- {source_labels: [a], target_label: b, action: dropequal}\n";
        assert!(run(de, &[("a", "1"), ("b", "1")]).is_none());
        assert!(run(de, &[("a", "1")]).is_some());
        let e = err("- {source_labels: [a], target_label: b, action: keepequal, regex: x}\n");
        assert!(
            e.contains("keepequal action requires only 'source_labels' and `target_label`"),
            "{e}"
        );
    }

    #[test]
    fn hashmod_matches_prometheus() {
        assert_eq!(
            md5(b"The quick brown fox jumps over the lazy dog"),
            *b"\x9e\x10\x7d\x9d\x37\x2b\xb6\x82\x6b\xd8\x1d\x35\x42\xa4\x19\xd6"
        );
        assert_eq!(md5(b"")[..4], [0xd4, 0x1d, 0x8c, 0xd9]);
        // Prometheus's relabel_test.go: "baz" mod 1000 is 976.
        let cfg = "- {source_labels: [a], target_label: h, modulus: 1000, action: hashmod}\n";
        assert_eq!(run(cfg, &[("a", "baz")]).unwrap(), r#"{a="baz", h="976"}"#);
        assert_eq!(run(cfg, &[("a", "foo\nbar")]).unwrap(), r#"{a="foo\nbar", h="734"}"#);
        assert!(err("- {target_label: h, action: hashmod}\n").contains("non-zero modulus"));
        assert!(err("- {target_label: h, action: hashmod, modulus: -1}\n").contains("uint64"));
    }

    #[test]
    fn labelmap_copies_matching_names() {
        let cfg = "- {regex: '__meta_(.+)', action: labelmap}\n";
        let out = run(cfg, &[("__meta_zone", "eu"), ("a", "1")]).unwrap();
        assert_eq!(out, r#"{__meta_zone="eu", a="1", zone="eu"}"#);
        let cfg = "- {regex: 'old_(.+)', replacement: 'new_${1}', action: labelmap}\n";
        let out = run(cfg, &[("old_x", "1")]).unwrap();
        assert_eq!(out, r#"{new_x="1", old_x="1"}"#);
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let input = [("__tmp", "1"), ("a", "2"), ("ab", "3")];
        let drop = "- {regex: 'a.*', action: labeldrop}\n";
        assert_eq!(run(drop, &input).unwrap(), r#"{__tmp="1"}"#);
        let keep = "- {regex: 'a.*', action: labelkeep}\n";
        assert_eq!(run(keep, &input).unwrap(), r#"{a="2", ab="3"}"#);
        let e = err("- {regex: a, action: labeldrop, source_labels: [x]}\n");
        assert!(e.contains("labeldrop action requires only 'regex'"), "{e}");
    }

    #[test]
    fn lowercase_and_uppercase() {
        let cfg = "- {source_labels: [a], target_label: lo, action: lowercase}\n- {source_labels: [a], target_label: up, action: uppercase}\n";
        assert_eq!(run(cfg, &[("a", "MiX")]).unwrap(), r#"{a="MiX", lo="mix", up="MIX"}"#);
        let e = err("- {source_labels: [a], target_label: b, action: lowercase, replacement: x}\n");
        assert!(e.contains("'replacement' can not be set for lowercase action"), "{e}");
    }

    #[test]
    fn validation_errors_point_at_the_config() {
        let e = err("- action: replace\n  regex: x\n");
        assert_eq!(
            e,
            "1:3: relabel configuration for replace action requires 'target_label' value"
        );
        let e = err("- {target_label: x, action: explode}\n");
        assert_eq!(e, "1:29: unknown relabel action \"explode\"");
        let e = err("- {target_label: x, regex: '(['}\n");
        assert!(e.starts_with("1:28: error parsing regexp"), "{e}");
        let e = err("- {target_label: x, sourcelabels: [a]}\n");
        assert!(e.contains("field sourcelabels not found in relabel config"), "{e}");
        assert!(err("- ~\n").contains("empty or null relabeling rule"));
        assert!(err("- {action: labelmap, replacement: ''}\n").contains("invalid 'replacement'"));
        assert!(err("- {target_label: x, action: ''}\n").contains("cannot be empty"));
        let legacy = |t: &str| {
            let n = yaml::parse(t).unwrap().root.unwrap();
            parse_relabel_configs_with(&n, NameValidation::Legacy).map_err(|e| e.to_string())
        };
        assert!(
            legacy("- {target_label: 'a.b'}\n").unwrap_err().contains("invalid 'target_label'")
        );
        assert!(legacy("- {target_label: 'x_${1}_$name'}\n").is_ok());
        assert!(legacy("- {target_label: '1x'}\n").is_err());
        assert!(parse("- {target_label: 'a.b'}\n").is_ok());
    }

    #[test]
    fn empty_config_list_keeps_everything() {
        let l = ls(&[("a", "1")]);
        assert!(process(&l, &[]).unwrap().ptr_eq(&l));
        assert!(parse("[]\n").unwrap().is_empty());
    }
}
