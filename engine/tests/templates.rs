//! Alert templates against Prometheus's own output.
//!
//! `templates/cases.tsv` holds one template per row with the text Prometheus
//! produced for it (see the file's header; `templates/regen-with-promtool.sh`
//! re-checks the rows against an installed promtool). Every row must match
//! byte for byte. A property test then feeds arbitrary text to the parser and
//! executor: any input must give a result or an error, never a panic.

use std::path::Path;

use proptest::prelude::*;
use tocsin_engine::gofmt;
use tocsin_engine::templates::{
    NoQuerier, QuerySample, TemplateData, TemplateQuerier, alert_template_name, check,
    expand_or_error_text,
};

// Fixed inputs of every row; keep in step with regen-with-promtool.sh.
const DEFAULT_LABELS: &str = r#"{instance="host.example.com:9090",job="node"}"#;
const EXTERNAL_LABELS: [(&str, &str); 2] = [("cluster", "c1"), ("region", "eu")];
const EXTERNAL_URL: &str = "http://prom.example.com:9090/prefix";
const EVAL_TIME_MS: i64 = 0;

/// `{a="x",b='y'}` (Go-quoted values) as pairs.
fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("bad labels {text}"))?;
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(|| format!("bad labels {text}"))?;
        let after = after.trim_start();
        let quote = after.chars().next().ok_or_else(|| format!("bad labels {text}"))?;
        // The quoted value ends at the first unescaped closing quote.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                c if c == quote && !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end.ok_or_else(|| format!("unterminated value in {text}"))?;
        let quoted = format!("\"{}\"", &after[1..end].replace("\\'", "'"));
        let value = gofmt::unquote(&quoted).ok_or_else(|| format!("bad value in {text}"))?;
        out.push((name.trim().to_owned(), value));
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Ok(out)
}

/// The series of `@series` rows, answering the selectors the rows use:
/// `name` and `name{label="value",...}` with equality matchers.
struct FixtureQuerier {
    series: Vec<QuerySample>,
}

impl TemplateQuerier for FixtureQuerier {
    fn query(&mut self, expr: &str, _ts_ms: i64) -> Result<Vec<QuerySample>, String> {
        let (name, matchers) = match expr.find('{') {
            Some(i) => (&expr[..i], parse_labels(&expr[i..])?),
            None => (expr, Vec::new()),
        };
        let has =
            |s: &QuerySample, k: &str, v: &str| s.labels.iter().any(|(lk, lv)| lk == k && lv == v);
        Ok(self
            .series
            .iter()
            .filter(|s| has(s, "__name__", name) && matchers.iter().all(|(k, v)| has(s, k, v)))
            .cloned()
            .collect())
    }
}

struct Case {
    line: usize,
    kind: String,
    version: String,
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    template: String,
    expected: String,
}

fn load_cases() -> (Vec<Case>, FixtureQuerier) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/templates/cases.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut cases = Vec::new();
    let mut series = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let fail = |what: &str| -> ! { panic!("cases.tsv:{line_no}: {what}") };
        if cols[0] == "@series" {
            let (selector, value) = match cols.as_slice() {
                [_, s, v] => (*s, *v),
                _ => fail("an @series row has a selector and a value"),
            };
            let brace = selector.find('{').unwrap_or(selector.len());
            let mut labels = vec![("__name__".to_owned(), selector[..brace].to_owned())];
            if brace < selector.len() {
                labels.extend(parse_labels(&selector[brace..]).unwrap_or_else(|e| fail(&e)));
            }
            labels.sort();
            let value = gofmt::parse_float(value).unwrap_or_else(|_| fail("bad series value"));
            series.push(QuerySample { labels, value });
            continue;
        }
        let [kind, version, name, labels, value, template, expected] = cols.as_slice() else {
            fail("a case row has 7 columns");
        };
        let labels = if *labels == "-" { DEFAULT_LABELS } else { labels };
        cases.push(Case {
            line: line_no,
            kind: (*kind).to_owned(),
            version: (*version).to_owned(),
            name: (*name).to_owned(),
            labels: parse_labels(labels).unwrap_or_else(|e| fail(&e)),
            value: if *kind == "check" {
                0.0
            } else {
                gofmt::parse_float(value).unwrap_or_else(|_| fail("bad value"))
            },
            template: gofmt::unquote(template).unwrap_or_else(|| fail("template is not Go-quoted")),
            expected: gofmt::unquote(expected).unwrap_or_else(|| fail("expected is not Go-quoted")),
        });
    }
    (cases, FixtureQuerier { series })
}

fn data(case: &Case) -> TemplateData {
    TemplateData {
        labels: case.labels.clone(),
        external_labels: EXTERNAL_LABELS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        external_url: EXTERNAL_URL.to_owned(),
        value: case.value,
    }
}

/// What the row's kind asks for, as Prometheus would print it.
fn actual(case: &Case, querier: &mut FixtureQuerier) -> String {
    let name = alert_template_name(&case.name);
    match case.kind.as_str() {
        "expand" => {
            let out =
                expand_or_error_text(&name, &case.template, &data(case), EVAL_TIME_MS, querier);
            // Rows that expand must also pass `check rules`.
            if let Err(e) = check(&name, &case.template) {
                return format!("check failed: {e}");
            }
            out
        }
        "check" => match check(&name, &case.template) {
            Ok(()) => String::new(),
            Err(e) => {
                // Expansion reports the same error, wrapped as Expand() wraps it.
                let expanded =
                    expand_or_error_text(&name, &case.template, &data(case), EVAL_TIME_MS, querier);
                let want =
                    format!("<error expanding template: error parsing template {name}: {e}>");
                if expanded != want {
                    return format!("expand gave {expanded:?}, want {want:?}");
                }
                e.to_string()
            }
        },
        other => panic!("cases.tsv:{}: unknown kind {other}", case.line),
    }
}

#[test]
fn templates_match_prometheus() {
    let (cases, mut querier) = load_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let got = actual(case, &mut querier);
        if got != case.expected {
            failures.push(format!(
                "cases.tsv:{} {} ({})\n  template: {}\n  expected: {}\n  got:      {}",
                case.line,
                case.name,
                case.version,
                gofmt::quote(&case.template),
                gofmt::quote(&case.expected),
                gofmt::quote(&got)
            ));
        }
    }
    let verified = cases.iter().filter(|c| c.version == "2.42").count();
    println!(
        "{} template cases ({verified} verified against promtool 2.42, {} 3.x only)",
        cases.len(),
        cases.len() - verified
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn case_names_are_unique() {
    let (cases, _) = load_cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate case names in cases.tsv");
}

/// Template-like text: mostly the characters that matter to the lexer.
fn template_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{{- ".to_owned()),
        Just(" -}}".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just("$".to_owned()),
        Just(".".to_owned()),
        Just("|".to_owned()),
        Just(":=".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("\"".to_owned()),
        Just("`".to_owned()),
        Just("'".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("if ".to_owned()),
        Just("else ".to_owned()),
        Just("end".to_owned()),
        Just("range ".to_owned()),
        Just("with ".to_owned()),
        Just("define \"x\"".to_owned()),
        Just("template \"x\" .".to_owned()),
        Just("break".to_owned()),
        Just("$labels".to_owned()),
        Just("$value".to_owned()),
        Just(".Labels".to_owned()),
        Just("humanize".to_owned()),
        Just("printf \"%5.2f %v %q %d %x\"".to_owned()),
        Just("reReplaceAll \"(a*)+[\" \"$1\"".to_owned()),
        Just("index".to_owned()),
        Just("slice".to_owned()),
        Just("query \"up\"".to_owned()),
        Just("toTime".to_owned()),
        Just("args 1 2".to_owned()),
        Just("1e308".to_owned()),
        Just("-0x1p-1074".to_owned()),
        Just("'\\u00e9'".to_owned()),
        Just("(toTime 1e18)".to_owned()),
        Just("(toTime $value)".to_owned()),
        Just("(toDuration -9e18)".to_owned()),
        Just(".AddDate 9223372036854775807 -9223372036854775808 1".to_owned()),
        Just(".Round 3".to_owned()),
        Just(".Truncate -1".to_owned()),
        Just(".Add -9223372036854775808".to_owned()),
        Just(".Format \"Jan _2 .000 __2 Z07:00 pm\"".to_owned()),
        Just(".Sub (toTime -1e18)".to_owned()),
        Just("humanizeDuration 1e300".to_owned()),
        Just("humanizeTimestamp -9.2e9".to_owned()),
        Just("parseDuration \"300y1w\"".to_owned()),
        "[a-z0-9]{1,3}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in template_text(), value in any::<f64>()) {
        let data = TemplateData { labels: vec![("a".to_owned(), "b".to_owned())], value, ..TemplateData::default() };
        let _ = check("__alert_P", &text);
        let _ = expand_or_error_text("__alert_P", &text, &data, 0, &mut NoQuerier);
    }

    #[test]
    fn arbitrary_printf_never_panics(format in "[%0-9.*+# -\\[\\]vdsqxXeEfgGtcTUbo!é]{0,20}", n in any::<i64>(), f in any::<f64>()) {
        let text = format!("{{{{ printf {} {n} {f:?} \"s\" nil .Labels }}}}", gofmt::quote(&format));
        let data = TemplateData::default();
        let _ = expand_or_error_text("__alert_P", &text, &data, 0, &mut NoQuerier);
    }

    #[test]
    fn arbitrary_regex_never_panics(pattern in "[a-c()\\[\\]{}*+?|^$.\\\\:PQEpdwsb0-9<>,=!-]{0,16}") {
        let text = format!("{{{{ reReplaceAll {} \"<$1>\" \"abcabc\" }}}}|{{{{ match {} \"a\" }}}}", gofmt::quote(&pattern), gofmt::quote(&pattern));
        let _ = expand_or_error_text("__alert_P", &text, &TemplateData::default(), 0, &mut NoQuerier);
    }
}
