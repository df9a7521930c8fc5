//! Rule unit tests in `promtool test rules` format, with promtool's semantics
//! and failure text, so existing test files give the same verdicts.
//!
//! File access goes through [`TestFiles`]: the CLI reads the filesystem, the
//! playground an in-memory set of files.

use std::collections::HashMap;

use regex::Regex;

use crate::duration::{format_duration, format_go_duration, parse_duration, parse_rfc3339};
use crate::gofmt;
use crate::labels::{Label, Labels};
use crate::notation;
use crate::promql::{Engine, EngineOptions};
use crate::sample::{HistogramSample, Sample};
use crate::storage::Head;
use crate::yaml::{self, Fields, Node, YamlError};

use super::alerting::{ALERT_NAME_LABEL, AlertState};
use super::file::{ParseOptions, parse_rule_file};
use super::group::{DEFAULT_RESEND_DELAY_MS, EvalEnv, Group};

/// Where test and rule files come from.
pub trait TestFiles {
    fn read(&self, path: &str) -> Result<String, String>;
    /// Expands a `rule_files` pattern (which may be a glob) to paths, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
    /// Runs the `wasm:` rules of the tested files (none by default: such
    /// rules then fail with an error saying so).
    fn wasm(&self) -> Option<&dyn super::wasm::ModuleRuntime> {
        None
    }
}

#[derive(Clone, Debug, Default)]
pub struct UnitTestOptions {
    /// Only test groups whose name matches run (promtool's `--run`, joined by `|`).
    pub run: Option<Regex>,
    /// Ignore unknown fields in rule files (`--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
}

/// The outcome of one test file.
#[derive(Clone, Debug, Default)]
pub struct TestFileReport {
    pub file: String,
    pub warnings: Vec<String>,
    /// Errors that stopped the whole file (unreadable, invalid YAML).
    pub errors: Vec<String>,
    pub groups: Vec<GroupReport>,
}

#[derive(Clone, Debug)]
pub struct GroupReport {
    pub name: String,
    /// promtool-format failure messages; empty when the group passed.
    pub failures: Vec<String>,
}

impl TestFileReport {
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.groups.iter().all(|g| g.failures.is_empty())
    }

    /// Every failure message, file errors first, in promtool's order.
    pub fn all_failures(&self) -> Vec<String> {
        let mut out = self.errors.clone();
        for g in &self.groups {
            out.extend(g.failures.iter().cloned());
        }
        out
    }
}

// ---- the test file format -------------------------------------------------

struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval_ms: i64,
    group_eval_order: Vec<String>,
    tests: Vec<TestGroup>,
    fuzzy_compare: bool,
}

struct TestGroup {
    interval_ms: i64,
    input_series: Vec<(String, String, yaml::Pos)>,
    alert_rule_test: Vec<AlertTestCase>,
    promql_expr_test: Vec<PromqlTestCase>,
    external_labels: Labels,
    external_url: String,
    name: String,
    start_ms: i64,
    /// tocsin extension: every alert instance with its state.
    alert_state_test: Vec<StateTestCase>,
    /// tocsin extension: what would be sent to Alertmanager.
    notification_test: Vec<NotificationTestCase>,
}

/// `alert_state_test` item: all instances of an alert at `eval_time`,
/// pending and resolved ones included (promtool only sees firing ones).
struct StateTestCase {
    eval_time_ms: i64,
    alertname: String,
    /// (state, labels incl. alertname, annotations or None when not checked)
    exp: Vec<(String, Labels, Option<Labels>)>,
}

/// `notification_test` item: the alerts sent by the evaluation at
/// `eval_time`, as (status, labels incl. external labels).
struct NotificationTestCase {
    eval_time_ms: i64,
    exp: Vec<(String, Labels)>,
}

struct AlertTestCase {
    eval_time_ms: i64,
    alertname: String,
    exp_alerts: Vec<(Labels, Labels)>,
}

struct PromqlTestCase {
    expr: String,
    eval_time_ms: i64,
    exp_samples: Vec<ExpSample>,
}

struct ExpSample {
    labels: String,
    value: f64,
    histogram: String,
}

fn duration_node(n: &Node) -> Result<i64, YamlError> {
    let s = n.as_string()?;
    parse_duration(&s).map_err(|e| YamlError::new(n.pos, e))
}

/// A test file's `evaluation_interval`: 1m when absent, null or zero.
fn evaluation_interval(top: &Fields) -> Result<i64, YamlError> {
    let ms = match top.get("evaluation_interval") {
        Some(n) if !n.is_null() => duration_node(n)?,
        _ => 0,
    };
    Ok(if ms == 0 { 60_000 } else { ms })
}

fn string_map_labels(n: &Node) -> Result<Labels, YamlError> {
    let pairs: Vec<Label> =
        n.as_string_map()?.into_iter().map(|(k, v, _)| Label::new(k, v)).collect();
    Ok(Labels::new(pairs))
}

fn parse_test_file(text: &str) -> Result<TestFile, YamlError> {
    let doc = yaml::parse(text)?;
    let root = doc.root.unwrap_or(Node {
        kind: yaml::NodeKind::Map(Vec::new()),
        pos: yaml::Pos { line: 1, col: 1 },
    });
    const TOP: &[&str] =
        &["rule_files", "evaluation_interval", "group_eval_order", "tests", "fuzzy_compare"];
    let f = Fields::new(&root, "unit test file", TOP, false)?;
    let rule_files = f.get("rule_files").map(Node::as_string_seq).transpose()?.unwrap_or_default();
    let evaluation_interval_ms = evaluation_interval(&f)?;
    let group_eval_order =
        f.get("group_eval_order").map(Node::as_string_seq).transpose()?.unwrap_or_default();
    let fuzzy_compare = f.get("fuzzy_compare").map(Node::as_bool).transpose()?.unwrap_or(false);
    let mut tests = Vec::new();
    for t in f.get("tests").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
        tests.push(parse_test_group(t)?);
    }
    Ok(TestFile { rule_files, evaluation_interval_ms, group_eval_order, tests, fuzzy_compare })
}

fn parse_test_group(n: &Node) -> Result<TestGroup, YamlError> {
    const FIELDS: &[&str] = &[
        "interval",
        "input_series",
        "alert_rule_test",
        "promql_expr_test",
        "external_labels",
        "external_url",
        "name",
        "start_timestamp",
        "alert_state_test",
        "notification_test",
    ];
    let f = Fields::new(n, "test group", FIELDS, false)?;
    let interval_ms = match f.get("interval") {
        Some(n) if !n.is_null() => duration_node(n)?,
        _ => 0,
    };
    let mut input_series = Vec::new();
    for s in f.get("input_series").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
        let sf = Fields::new(s, "input series", &["series", "values"], false)?;
        input_series.push((sf.string("series")?, sf.string("values")?, s.pos));
    }
    let mut alert_rule_test = Vec::new();
    for a in f.get("alert_rule_test").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
        let af =
            Fields::new(a, "alert test case", &["eval_time", "alertname", "exp_alerts"], false)?;
        let eval_time_ms = af.get("eval_time").map(duration_node).transpose()?.unwrap_or(0);
        let mut exp_alerts = Vec::new();
        for e in af.get("exp_alerts").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
            let ef = Fields::new(e, "expected alert", &["exp_labels", "exp_annotations"], false)?;
            let labels =
                ef.get("exp_labels").map(string_map_labels).transpose()?.unwrap_or_default();
            let ann =
                ef.get("exp_annotations").map(string_map_labels).transpose()?.unwrap_or_default();
            exp_alerts.push((labels, ann));
        }
        alert_rule_test.push(AlertTestCase {
            eval_time_ms,
            alertname: af.string("alertname")?,
            exp_alerts,
        });
    }
    let mut promql_expr_test = Vec::new();
    for p in f.get("promql_expr_test").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
        let pf = Fields::new(p, "PromQL test case", &["expr", "eval_time", "exp_samples"], false)?;
        let eval_time_ms = pf.get("eval_time").map(duration_node).transpose()?.unwrap_or(0);
        let mut exp_samples = Vec::new();
        for s in pf.get("exp_samples").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
            let sf = Fields::new(s, "expected sample", &["labels", "value", "histogram"], false)?;
            exp_samples.push(ExpSample {
                labels: sf.string("labels")?,
                value: sf.get("value").map(Node::as_f64).transpose()?.unwrap_or(0.0),
                histogram: sf.string("histogram")?,
            });
        }
        promql_expr_test.push(PromqlTestCase {
            expr: pf.string("expr")?,
            eval_time_ms,
            exp_samples,
        });
    }
    let external_labels =
        f.get("external_labels").map(string_map_labels).transpose()?.unwrap_or_default();
    let start_ms = match f.get("start_timestamp") {
        Some(n) if !n.is_null() => {
            let s = n.as_string()?;
            parse_time(&s).map_err(|e| YamlError::new(n.pos, e))?
        }
        _ => 0,
    };
    let mut alert_state_test = Vec::new();
    for a in f.get("alert_state_test").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
        let af = Fields::new(
            a,
            "alert state test case",
            &["eval_time", "alertname", "exp_alerts"],
            false,
        )?;
        let alertname = af.string("alertname")?;
        if alertname.is_empty() {
            return Err(YamlError::new(a.pos, "alert_state_test item misses alertname"));
        }
        let mut exp = Vec::new();
        for e in af.get("exp_alerts").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
            let ef = Fields::new(
                e,
                "expected alert",
                &["state", "exp_labels", "exp_annotations"],
                false,
            )?;
            let state = ef.string("state")?;
            if !matches!(state.as_str(), "pending" | "firing" | "resolved") {
                return Err(YamlError::new(
                    ef.get("state").map_or(e.pos, |n| n.pos),
                    format!(
                        "state must be pending, firing or resolved, not {}",
                        gofmt::quote(&state)
                    ),
                ));
            }
            let mut b = ef
                .get("exp_labels")
                .map(string_map_labels)
                .transpose()?
                .unwrap_or_default()
                .builder();
            b.set(ALERT_NAME_LABEL, alertname.as_str());
            let ann = ef.get("exp_annotations").map(string_map_labels).transpose()?;
            exp.push((state, b.labels(), ann));
        }
        alert_state_test.push(StateTestCase {
            eval_time_ms: af.get("eval_time").map(duration_node).transpose()?.unwrap_or(0),
            alertname,
            exp,
        });
    }
    let mut notification_test = Vec::new();
    for a in f.get("notification_test").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
        let af =
            Fields::new(a, "notification test case", &["eval_time", "exp_notifications"], false)?;
        let mut exp = Vec::new();
        for e in af.get("exp_notifications").map(Node::as_seq).transpose()?.unwrap_or(&[]) {
            let ef = Fields::new(e, "expected notification", &["status", "exp_labels"], false)?;
            let status = ef.string("status")?;
            if !matches!(status.as_str(), "firing" | "resolved") {
                return Err(YamlError::new(
                    ef.get("status").map_or(e.pos, |n| n.pos),
                    format!("status must be firing or resolved, not {}", gofmt::quote(&status)),
                ));
            }
            exp.push((
                status,
                ef.get("exp_labels").map(string_map_labels).transpose()?.unwrap_or_default(),
            ));
        }
        notification_test.push(NotificationTestCase {
            eval_time_ms: af.get("eval_time").map(duration_node).transpose()?.unwrap_or(0),
            exp,
        });
    }
    Ok(TestGroup {
        alert_state_test,
        notification_test,
        interval_ms,
        input_series,
        alert_rule_test,
        promql_expr_test,
        external_labels,
        external_url: f.string("external_url")?,
        name: f.string("name")?,
        start_ms,
    })
}

/// promtool's `parseTime`: Unix seconds (fractions allowed) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {} to a valid timestamp", gofmt::quote(s)))
}

// ---- running --------------------------------------------------------------

fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => ".",
    }
}

fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir == "." { rel.to_owned() } else { format!("{dir}/{rel}") }
}

/// Runs one test file.
pub fn run_test_file(path: &str, files: &dyn TestFiles, opts: &UnitTestOptions) -> TestFileReport {
    let mut report = TestFileReport { file: path.to_owned(), ..Default::default() };
    let text = match files.read(path) {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let tf = match parse_test_file(&text) {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(format!("{path}:{e}"));
            return report;
        }
    };
    let mut rule_paths = Vec::new();
    for rf in &tf.rule_files {
        if rf.is_empty() {
            continue;
        }
        let pattern = join(dir_of(path), rf);
        match files.glob(&pattern) {
            Ok(m) if m.is_empty() => {
                report.warnings.push(format!("no file match pattern {pattern}"))
            }
            Ok(m) => rule_paths.extend(m),
            Err(e) => {
                report.errors.push(e);
                return report;
            }
        }
    }
    let mut order: HashMap<&str, usize> = HashMap::new();
    for (i, g) in tf.group_eval_order.iter().enumerate() {
        if order.insert(g.as_str(), i).is_some() {
            report.errors.push(format!("group name repeated in evaluation order: {g}"));
            return report;
        }
    }
    for (i, tg) in tf.tests.iter().enumerate() {
        if let Some(run) = &opts.run
            && !run.is_match(&tg.name)
        {
            continue;
        }
        let name = if tg.name.is_empty() { format!("unnamed#{i}") } else { tg.name.clone() };
        let failures = run_group(tg, &tf, &rule_paths, &order, files, opts);
        report.groups.push(GroupReport { name, failures });
    }
    report
}

/// One `input_series` entry: a series and its samples of either kind.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

impl InputSeries {
    /// How many samples of both kinds.
    pub fn len(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the samples at or before `until` that are not yet in `head`,
    /// oldest first across both kinds; `next` holds how many of each were
    /// appended before. Rejections are left to the head's counters, as
    /// promtool ignores them too.
    pub fn append_until(&self, head: &Head, until: i64, next: &mut (usize, usize)) {
        let floats = &self.samples[next.0.min(self.samples.len())..];
        let due = floats.partition_point(|s| s.t <= until);
        let hists = &self.histograms[next.1.min(self.histograms.len())..];
        let hists_due = hists.partition_point(|s| s.t <= until);
        if due == 0 && hists_due == 0 {
            return;
        }
        let series = head.get_or_create(&self.labels);
        if hists_due == 0 {
            // Floats only, the usual case: one lock for them all.
            head.append_many(&series, &floats[..due]);
            next.0 += due;
            return;
        }
        loop {
            let f = self.samples.get(next.0).filter(|s| s.t <= until);
            let h = self.histograms.get(next.1).filter(|s| s.t <= until);
            match (f, h) {
                (Some(f), h) if h.is_none_or(|h| f.t <= h.t) => {
                    let _ = head.append(&series, f.t, f.v);
                    next.0 += 1;
                }
                (_, Some(h)) => {
                    let _ = head.append_histogram(&series, h.t, h.h.clone());
                    next.1 += 1;
                }
                _ => return,
            }
        }
    }
}

/// One `input_series` entry expanded to samples from `start_ms` every
/// `interval_ms`.
pub fn input_series(
    series: &str,
    values: &str,
    start_ms: i64,
    interval_ms: i64,
) -> Result<InputSeries, String> {
    let line = format!("{series} {values}");
    let desc = notation::parse_series(&line)
        .map_err(|e| format!("error in input_series {}: {e}", gofmt::quote(&line)))?;
    let (samples, histograms) = desc.samples(start_ms, interval_ms);
    let histograms =
        histograms.into_iter().map(|(t, h)| HistogramSample { t, h }).collect::<Vec<_>>();
    Ok(InputSeries { labels: desc.labels, samples, histograms })
}

/// The `interval` and `input_series` of a data file for backtests: either a
/// promtool test file (its first test group) or a mapping with those keys.
pub fn parse_data_yaml(text: &str, max_samples: usize) -> Result<Vec<InputSeries>, String> {
    let doc = yaml::parse(text).map_err(|e| e.to_string())?;
    let Some(root) = doc.root else { return Ok(Vec::new()) };
    let top = Fields::new(&root, "data file", &[], true).map_err(|e| e.to_string())?;
    // Only the first group's series and the intervals matter here, so the
    // rest of a test file is not parsed (which also keeps the test-file
    // parser out of the playground's bundle).
    let (group, eval_interval) = match top.get("tests") {
        Some(tests) => {
            let first = tests.as_seq().map_err(|e| e.to_string())?.first().cloned();
            (first, evaluation_interval(&top).map_err(|e| e.to_string())?)
        }
        None => (Some(root.clone()), 60_000),
    };
    let Some(group) = group else { return Ok(Vec::new()) };
    let f = Fields::new(&group, "data", &[], true).map_err(|e| e.to_string())?;
    let interval = match f.get("interval") {
        Some(n) if !n.is_null() => duration_node(n).map_err(|e| e.to_string())?,
        _ => eval_interval,
    };
    let start = match f.get("start_timestamp") {
        Some(n) if !n.is_null() => parse_time(&n.as_string().map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", n.pos))?,
        _ => 0,
    };
    let mut out = Vec::new();
    let mut total = 0usize;
    for s in f
        .get("input_series")
        .map(Node::as_seq)
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or(&[])
    {
        let sf = Fields::new(s, "input series", &["series", "values"], false)
            .map_err(|e| e.to_string())?;
        let series = sf.string("series").map_err(|e| e.to_string())?;
        let values = sf.string("values").map_err(|e| e.to_string())?;
        let expanded = input_series(&series, &values, start, interval)
            .map_err(|e| format!("{}: {e}", s.pos))?;
        total = total.saturating_add(expanded.len());
        if total > max_samples {
            return Err(format!("{}: the data expands to more than {max_samples} samples", s.pos));
        }
        out.push(expanded);
    }
    Ok(out)
}

fn run_group(
    tg: &TestGroup,
    tf: &TestFile,
    rule_paths: &[String],
    order: &HashMap<&str, usize>,
    files: &dyn TestFiles,
    opts: &UnitTestOptions,
) -> Vec<String> {
    let eval_interval = tf.evaluation_interval_ms;
    let interval = if tg.interval_ms == 0 { eval_interval } else { tg.interval_ms };

    // Input series, loaded lazily as promtool does: before each evaluation at
    // `ts`, every sample at or before `ts`.
    let mut inputs = Vec::new();
    for (series, values, _pos) in &tg.input_series {
        match input_series(series, values, tg.start_ms, interval) {
            Ok(input) => inputs.push((input, (0, 0))),
            Err(e) => return vec![e],
        }
    }

    let mut groups = Vec::new();
    for p in rule_paths {
        let text = match files.read(p) {
            Ok(t) => t,
            Err(e) => return vec![e],
        };
        let parsed = parse_rule_file(
            p,
            &text,
            ParseOptions { ignore_unknown_fields: opts.ignore_unknown_fields },
        );
        match parsed {
            Ok(rf) => groups.extend(rf.groups.iter().map(|g| Group::new(p, g, interval, 0))),
            Err(errs) => return errs.iter().map(ToString::to_string).collect(),
        }
    }
    crate::sort::by_key(&mut groups, |g| order.get(g.name.as_str()).copied().unwrap_or(0));

    let mut alert_times: Vec<i64> = Vec::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                format_duration(a.eval_time_ms)
            )];
        }
        alert_times.push(a.eval_time_ms);
    }
    crate::sort::unstable(&mut alert_times);
    alert_times.dedup();

    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: eval_interval,
        ..EngineOptions::default()
    });
    let head = Head::default();
    let mint = tg.start_ms;
    let max_eval = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time_ms)
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time_ms))
        .chain(tg.alert_state_test.iter().map(|p| p.eval_time_ms))
        .chain(tg.notification_test.iter().map(|p| p.eval_time_ms))
        .max()
        .unwrap_or(0);
    let maxt = mint + max_eval;
    let fuzzy = tf.fuzzy_compare;

    let mut errs = Vec::new();
    let mut curr = 0;
    let mut ts = mint;
    while ts <= maxt {
        for (input, next) in inputs.iter_mut() {
            input.append_until(&head, ts, next);
        }
        let mut eval_errs = Vec::new();
        let mut sent: Vec<(String, Labels)> = Vec::new();
        for g in groups.iter_mut() {
            let mut env = EvalEnv {
                engine: &engine,
                head: &head,
                external_labels: &tg.external_labels,
                external_url: &tg.external_url,
                resend_delay_ms: DEFAULT_RESEND_DELAY_MS,
                wasm: files.wasm(),
                clock_ns: None,
            };
            for n in g.eval(ts, &mut env) {
                for a in &n.alerts {
                    let out = super::backtest::outgoing(a, &tg.external_labels);
                    let status = if out.resolved { "resolved" } else { "firing" };
                    sent.push((status.to_owned(), out.labels));
                }
            }
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.spec.name,
                        format_go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }

        while curr < alert_times.len()
            && ts - mint <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval - mint
        {
            let t = alert_times[curr];
            for case in tg.alert_rule_test.iter().filter(|c| c.eval_time_ms == t) {
                let mut got: Vec<(Labels, Labels)> = Vec::new();
                for g in &groups {
                    for r in g
                        .rules
                        .iter()
                        .filter(|r| r.spec.is_alert() && r.spec.name == case.alertname)
                    {
                        for a in r.alerts.active_alerts().filter(|a| a.state == AlertState::Firing)
                        {
                            got.push((a.labels.clone(), Labels::from_pairs(&a.annotations)));
                        }
                    }
                }
                let mut exp: Vec<(Labels, Labels)> = case
                    .exp_alerts
                    .iter()
                    .map(|(l, a)| {
                        let mut b = l.builder();
                        b.set(ALERT_NAME_LABEL, case.alertname.as_str());
                        (b.labels(), a.clone())
                    })
                    .collect();
                crate::sort::sort(&mut got);
                crate::sort::sort(&mut exp);
                if got != exp {
                    let test_name = if tg.name.is_empty() {
                        String::new()
                    } else {
                        format!("    name: {},\n", tg.name)
                    };
                    errs.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        format_duration(t),
                        indent_lines(&alerts_string(&exp), "            "),
                        indent_lines(&alerts_string(&got), "            "),
                    ));
                }
            }
            curr += 1;
        }
        let in_step = |t: i64| ts - mint <= t && t < ts + eval_interval - mint;
        let test_name =
            if tg.name.is_empty() { String::new() } else { format!("    name: {},\n", tg.name) };
        for case in tg.alert_state_test.iter().filter(|c| in_step(c.eval_time_ms)) {
            let mut got: Vec<(String, Labels, Labels)> = Vec::new();
            for g in &groups {
                for r in
                    g.rules.iter().filter(|r| r.spec.is_alert() && r.spec.name == case.alertname)
                {
                    for a in r.alerts.active.values() {
                        let state =
                            if a.resolved_at.is_some() { "resolved" } else { a.state.as_str() };
                        got.push((
                            state.to_owned(),
                            a.labels.clone(),
                            Labels::from_pairs(&a.annotations),
                        ));
                    }
                }
            }
            crate::sort::sort(&mut got);
            let mut exp: Vec<(String, Labels, Labels)> = Vec::new();
            // Annotations left out of an expectation are not compared.
            for (state, labels, ann) in &case.exp {
                let actual =
                    got.iter().find(|g| &g.0 == state && &g.1 == labels).map(|g| g.2.clone());
                let ann = ann.clone().or(actual).unwrap_or_default();
                exp.push((state.clone(), labels.clone(), ann));
            }
            crate::sort::sort(&mut exp);
            if got != exp {
                let show = |v: &[(String, Labels, Labels)]| {
                    if v.is_empty() {
                        return "[]".to_owned();
                    }
                    v.iter()
                        .map(|(s, l, a)| format!("\n            {s} {l} {a}"))
                        .collect::<String>()
                };
                errs.push(format!(
                    "{test_name}    alert_state_test: alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    case.alertname,
                    format_duration(case.eval_time_ms),
                    show(&exp),
                    show(&got)
                ));
            }
        }
        for case in tg.notification_test.iter().filter(|c| in_step(c.eval_time_ms)) {
            let mut exp = case.exp.clone();
            crate::sort::sort(&mut exp);
            let mut got = sent.clone();
            crate::sort::sort(&mut got);
            if got != exp {
                let show = |v: &[(String, Labels)]| {
                    if v.is_empty() {
                        return "[]".to_owned();
                    }
                    v.iter().map(|(s, l)| format!("\n            {s} {l}")).collect::<String>()
                };
                errs.push(format!(
                    "{test_name}    notification_test: time: {}, \n        exp:{}, \n        got:{}",
                    format_duration(case.eval_time_ms),
                    show(&exp),
                    show(&got)
                ));
            }
        }
        ts += eval_interval;
    }

    'cases: for case in &tg.promql_expr_test {
        let at = mint + case.eval_time_ms;
        let time = format_duration(case.eval_time_ms);
        let got = crate::promql::parse(&case.expr)
            .map_err(|e| e.to_string())
            .and_then(|e| super::group::query_vector(&engine, &head, &e, at));
        let mut got: Vec<(Labels, f64, String)> = match got {
            Ok(v) => v
                .into_iter()
                .map(|s| {
                    let h = s.h.map(|h| h.test_expression()).unwrap_or_default();
                    (s.labels, s.v, h)
                })
                .collect(),
            Err(e) => {
                errs.push(format!(
                    "    expr: {}, time: {time}, err: {e}",
                    gofmt::quote(&case.expr)
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &case.exp_samples {
            // An empty `labels:` is the empty label set (a scalar's result).
            let metric = if s.labels.trim().is_empty() {
                Ok(Labels::empty())
            } else {
                notation::parse_metric(&s.labels).map_err(|e| e.to_string())
            };
            let parsed = metric.and_then(|l| {
                if s.histogram.is_empty() {
                    Ok((l, String::new()))
                } else {
                    expected_histogram(&s.histogram).map(|h| (l, h))
                }
            });
            match parsed {
                Ok((l, h)) => exp.push((l, s.value, h)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {}, time: {time}, err: labels {}: {e}",
                        gofmt::quote(&case.expr),
                        gofmt::quote(&s.labels)
                    ));
                    continue 'cases;
                }
            }
        }
        crate::sort::by(&mut exp, |a, b| a.0.cmp(&b.0));
        crate::sort::by(&mut got, |a, b| a.0.cmp(&b.0));
        let equal = exp.len() == got.len()
            && exp
                .iter()
                .zip(&got)
                .all(|(e, g)| e.0 == g.0 && floats_equal(e.1, g.1, fuzzy) && e.2 == g.2);
        if !equal {
            errs.push(format!(
                "    expr: {}, time: {time},\n        exp: {}\n        got: {}",
                gofmt::quote(&case.expr),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

/// promtool compares with `==` (so NaN never equals NaN), or within one ULP
/// when `fuzzy_compare` is on.
fn floats_equal(x: f64, y: f64, fuzzy: bool) -> bool {
    if x == y {
        return true;
    }
    fuzzy && (next_after(x, f64::NEG_INFINITY) == y || next_after(x, f64::INFINITY) == y)
}

fn next_after(x: f64, toward: f64) -> f64 {
    if x.is_nan() || toward.is_nan() {
        return f64::NAN;
    }
    if x == toward {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1).copysign(toward);
    }
    let bits = x.to_bits();
    let up = (toward > x) == (x > 0.0);
    f64::from_bits(if up { bits + 1 } else { bits - 1 })
}

/// An `exp_samples` entry's `histogram:`, which promtool reads as a series
/// description of exactly one value, in the form results are compared in.
fn expected_histogram(text: &str) -> Result<String, String> {
    let desc = notation::parse_series(&format!("{{}} {text}")).map_err(|e| e.to_string())?;
    match desc.values.as_slice() {
        [notation::SequenceValue::Histogram(h)] => Ok(h.test_expression()),
        [other] => Err(format!("expected histogram, got {other:?}")),
        values => Err(format!("expected 1 value, got {}", values.len())),
    }
}

/// Samples as promtool prints them: a histogram in its test notation, a
/// float in Go's `%E`.
fn samples_string(s: &[(Labels, f64, String)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v, h)| {
            if h.is_empty() {
                format!("{l} {}", gofmt::format_float_e_upper(*v))
            } else {
                format!("{l} {h}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn alerts_string(la: &[(Labels, Labels)]) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[\n");
    for (i, (l, a)) in la.iter().enumerate() {
        if i > 0 {
            s.push_str(",\n");
        }
        s.push_str(&format!("{i}:"));
        s.push_str(&indent_lines(&format!("\nLabels:{l}\nAnnotations:{a}"), "  "));
    }
    s.push_str("\n]");
    s
}

/// Prefixes every line but the first with `indent`, as promtool's indentLines.
fn indent_lines(lines: &str, indent: &str) -> String {
    lines.split('\n').collect::<Vec<_>>().join(&format!("\n{indent}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_unix_times() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Ok(60_000));
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Ok(1_704_067_200_000));
        assert_eq!(parse_time("2024-01-01T01:00:00.25+01:00"), Ok(1_704_067_200_250));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn fuzzy_compare_allows_one_ulp() {
        let three = 3.0f64;
        assert!(floats_equal(next_after(three, 0.0), three, true));
        assert!(!floats_equal(next_after(three, 0.0), three, false));
        assert!(!floats_equal(next_after(next_after(three, 0.0), 0.0), three, true));
        assert!(!floats_equal(f64::NAN, f64::NAN, true));
    }

    #[test]
    fn failure_text_layout() {
        assert_eq!(indent_lines("a\nb\nc", "  "), "a\n  b\n  c");
        let l = Labels::from_pairs(&[("alertname", "A")]);
        assert_eq!(
            alerts_string(&[(l, Labels::empty())]),
            "[\n0:\n  Labels:{alertname=\"A\"}\n  Annotations:{}\n]"
        );
        assert_eq!(samples_string(&[]), "nil");
    }

    struct Mem(Vec<(&'static str, &'static str)>);

    impl TestFiles for Mem {
        fn read(&self, path: &str) -> Result<String, String> {
            self.0.iter().find(|f| f.0 == path).map(|f| f.1.to_owned()).ok_or(path.to_owned())
        }
        fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
            Ok(vec![pattern.to_owned()])
        }
    }

    #[test]
    fn native_histograms_load_record_and_compare_like_promtool() {
        let rules = "groups:\n- name: g\n  rules:\n  - record: copy\n    expr: h\n";
        let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - series: h
        values: "{{sum:3 count:2 buckets:[2]}}+{{sum:1 count:1 buckets:[1]}}x2 5"
    promql_expr_test:
      - expr: copy
        eval_time: 2m
        exp_samples:
          - labels: copy
            histogram: "{{count:4 sum:5 counter_reset_hint:not_reset buckets:[4]}}"
      - expr: histogram_count(h)
        eval_time: 1m
        exp_samples:
          - value: 3
      - expr: h
        eval_time: 3m
        exp_samples:
          - labels: h
            value: 5
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: h
            histogram: "{{count:9 buckets:[9]}}"
      - expr: rate(h[5m])
        eval_time: 1m
        exp_samples: []
      - expr: h
        eval_time: 1m
        exp_samples:
          - labels: h
            histogram: "{{count:1}} {{count:2}}"
"#;
        let files = Mem(vec![("rules.yml", rules), ("t.yml", test)]);
        let report = run_test_file("t.yml", &files, &UnitTestOptions::default());
        let failures = report.all_failures();
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert_eq!(
            failures[0],
            "    expr: \"h\", time: 1m,\n        exp: {__name__=\"h\"} {{count:9 buckets:[9]}}\n        got: {__name__=\"h\"} {{count:3 sum:4 counter_reset_hint:not_reset buckets:[3]}}"
        );
        assert!(
            failures[1].starts_with("    expr: \"rate(h[5m])\", time: 1m, err: function rate() does not support native histograms"),
            "{}",
            failures[1]
        );
        assert_eq!(
            failures[2],
            "    expr: \"h\", time: 1m, err: labels \"h\": expected 1 value, got 2"
        );
    }
}
