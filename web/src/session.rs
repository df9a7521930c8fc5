//! The playground's state and operations, as plain Rust.

use std::fmt::Write as _;

use tocsin_engine::json::{push_labels, push_list, push_number, push_str};
use tocsin_engine::labels::Labels;
use tocsin_engine::promql::{Engine, Value as QValue};
use tocsin_engine::rules::backtest::{
    BacktestOptions, BacktestResult, backtest, evaluation_count, head_options, load_data, to_json,
};
use tocsin_engine::rules::group::DEFAULT_RESEND_DELAY_MS;
use tocsin_engine::rules::wasm::ModuleRuntime;
use tocsin_engine::rules::{Group, ParseOptions, RuleExpr, RuleKind, parse_rule_file};
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::Head;

/// Same ceiling as `tocsin backtest`: refuse rather than look hung.
const MAX_EVALUATIONS: u64 = 10_000_000;
/// Points per series a chart query may return; beyond this the step grows.
const MAX_CHART_POINTS: i64 = 11_000;

/// The run's time range and step; unset fields default to the data's range
/// and each group's own interval, as `tocsin backtest` does.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub step_ms: Option<i64>,
    pub external_labels: Vec<(String, String)>,
}

impl RunOptions {
    /// From the page: NaN means "not set"; external labels are `name=value`
    /// lines.
    pub fn from_page(
        from: f64,
        to: f64,
        step: f64,
        external_labels: &str,
    ) -> Result<RunOptions, String> {
        let ms = |v: f64| v.is_finite().then_some(v as i64);
        let mut labels = Vec::new();
        for line in external_labels.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("external label {line:?}: expected name=value"))?;
            labels.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(RunOptions {
            from_ms: ms(from),
            to_ms: ms(to),
            step_ms: ms(step),
            external_labels: labels,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataSummary {
    pub series: usize,
    pub samples: usize,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// The most common spacing between samples: the natural chart step and
    /// the export's `interval`.
    pub interval_ms: Option<i64>,
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

impl DataSummary {
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"series":{},"samples":{},"from":{},"to":{},"interval":{}}}"#,
            self.series,
            self.samples,
            opt(self.min_time),
            opt(self.max_time),
            opt(self.interval_ms)
        )
    }
}

/// What the last run used and produced.
struct LastRun {
    head: Head,
    result: BacktestResult,
    opts: BacktestOptions,
    rules_name: String,
    /// Evaluation step of the export: the run's step, or the groups'
    /// common interval.
    eval_step_ms: i64,
}

#[derive(Default)]
pub struct Session {
    data: Vec<(Labels, Vec<Sample>)>,
    /// `data` in a head, which each run copies rather than encoding every
    /// sample again.
    base: Head,
    summary: DataSummary,
    last: Option<LastRun>,
}

impl Session {
    /// Replaces the data with `bytes` (see `rules::backtest::load_data`).
    pub fn load_data(&mut self, name: &str, bytes: &[u8]) -> Result<DataSummary, String> {
        let (data, head) = read(name, bytes)?;
        self.set_data(data, head);
        Ok(self.summary.clone())
    }

    /// Adds series to the data: samples of a series already present are
    /// merged in time order (the later source wins at equal times).
    pub fn add_data(&mut self, name: &str, bytes: &[u8]) -> Result<DataSummary, String> {
        let (added, _) = read(name, bytes)?;
        let mut data = std::mem::take(&mut self.data);
        for (labels, samples) in added {
            match data.binary_search_by(|(l, _)| l.cmp(&labels)) {
                Ok(i) => {
                    let mut merged = samples;
                    merged.extend(data[i].1.iter().copied());
                    // Stable: for equal times the added sample stays first.
                    tocsin_engine::sort::by_key(&mut merged, |x| x.t);
                    merged.dedup_by_key(|x| x.t);
                    data[i].1 = merged;
                }
                Err(i) => data.insert(i, (labels, samples)),
            }
        }
        let head = Head::default();
        for (labels, samples) in &data {
            head.append_many(&head.get_or_create(labels), samples);
        }
        self.set_data(data, head);
        Ok(self.summary.clone())
    }

    /// `base` holds exactly `data`.
    fn set_data(&mut self, data: Vec<(Labels, Vec<Sample>)>, base: Head) {
        let mut s = DataSummary { series: data.len(), ..Default::default() };
        let mut gaps: std::collections::HashMap<i64, usize> = Default::default();
        for (_, samples) in &data {
            s.samples += samples.len();
            if let (Some(a), Some(b)) = (samples.first(), samples.last()) {
                s.min_time = Some(s.min_time.map_or(a.t, |m| m.min(a.t)));
                s.max_time = Some(s.max_time.map_or(b.t, |m| m.max(b.t)));
            }
            for w in samples.windows(2).take(1000) {
                *gaps.entry(w[1].t - w[0].t).or_default() += 1;
            }
        }
        s.interval_ms =
            gaps.into_iter().filter(|(g, _)| *g > 0).max_by_key(|(g, n)| (*n, -*g)).map(|(g, _)| g);
        self.summary = s;
        self.data = data;
        self.base = base;
        self.last = None;
    }

    pub fn data(&self) -> &[(Labels, Vec<Sample>)] {
        &self.data
    }

    pub fn summary(&self) -> &DataSummary {
        &self.summary
    }

    /// Runs `rules` over a fresh copy of the data.
    pub fn backtest(
        &mut self,
        name: &str,
        rules: &str,
        run: &RunOptions,
        wasm: Option<&dyn ModuleRuntime>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<String, String> {
        let rf = parse_rule_file(name, rules, ParseOptions::default())
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
        let (Some(from), Some(to)) =
            (run.from_ms.or(self.summary.min_time), run.to_ms.or(self.summary.max_time))
        else {
            return Err("no data loaded: add input series or a /metrics snapshot first".into());
        };
        if to < from {
            return Err("the range ends before it starts".into());
        }
        if let Some(s) = run.step_ms
            && s <= 0
        {
            return Err("the step must be greater than zero".into());
        }
        let mut groups: Vec<Group> =
            rf.groups.iter().map(|g| Group::new(name, g, 60_000, 0)).collect();
        let opts = BacktestOptions {
            from_ms: from,
            to_ms: to,
            step_ms: run.step_ms,
            external_labels: Labels::from_pairs(&run.external_labels),
            external_url: String::new(),
            resend_delay_ms: DEFAULT_RESEND_DELAY_MS,
            capture_alert_values: true,
        };
        let total = evaluation_count(&groups, &opts);
        if total > MAX_EVALUATIONS {
            return Err(format!(
                "{total} group evaluations requested; narrow the range or use a larger step (limit {MAX_EVALUATIONS})"
            ));
        }
        let head = self.base.copy(head_options());
        // The browser stops a run by terminating its worker.
        let result =
            backtest(&mut groups, &head, &Engine::default(), &opts, wasm, &mut |done, total| {
                progress(done, total);
                std::ops::ControlFlow::Continue(())
            });
        let eval_step_ms = run.step_ms.unwrap_or_else(|| {
            let mut iv: Vec<i64> = groups.iter().map(|g| g.interval_ms).collect();
            iv.dedup();
            iv.first().copied().unwrap_or(60_000)
        });
        // The engine's document plus what the page needs to chart it.
        let mut out = to_json(&result);
        out.pop();
        out.push_str(r#","rules":["#);
        let rules = groups.iter().flat_map(|g| g.rules.iter().map(move |r| (g, r)));
        for (i, (g, r)) in rules.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let (kind, for_ms) = match &r.spec.kind {
                RuleKind::Record => ("record", 0),
                RuleKind::Alert { for_ms, .. } => ("alert", *for_ms),
            };
            out.push_str(r#"{"group":"#);
            push_str(&mut out, &g.name);
            out.push_str(r#","name":"#);
            push_str(&mut out, &r.spec.name);
            let _ = write!(out, r#","kind":"{kind}","for":{for_ms},"line":{}"#, r.spec.pos.line);
            match &r.spec.expr {
                RuleExpr::PromQL { text, .. } => {
                    out.push_str(r#","expr":"#);
                    push_str(&mut out, text);
                    out.push_str(r#","wasm":null"#);
                }
                RuleExpr::Wasm { module, .. } => {
                    out.push_str(r#","expr":null,"wasm":"#);
                    push_str(&mut out, module);
                }
            }
            out.push('}');
        }
        let _ = write!(out, r#"],"from":{from},"to":{to},"step":{eval_step_ms}}}"#);
        self.last = Some(LastRun { head, result, opts, rules_name: name.to_owned(), eval_step_ms });
        Ok(out)
    }

    /// A range query over the last run's head, at most
    /// [`MAX_CHART_POINTS`] points per series.
    pub fn query_range(&self, expr: &str, from: i64, to: i64, step: i64) -> Result<String, String> {
        let last = self.last.as_ref().ok_or("run the rules first")?;
        let step = step.max(1).max((to - from) / MAX_CHART_POINTS + 1);
        let r =
            Engine::default().range(&last.head, expr, from, to, step).map_err(|e| e.to_string())?;
        let series = match r.value {
            QValue::Matrix(m) => m,
            QValue::Scalar { .. } | QValue::String { .. } | QValue::Vector(_) => Vec::new(),
        };
        let mut out = String::new();
        push_list(&mut out, &series, |out, s| {
            out.push_str(r#"{"labels":"#);
            push_labels(out, &s.labels);
            out.push_str(r#","points":"#);
            push_list(out, &s.points, |out, p| {
                let _ = write!(out, "[{},", p.t);
                push_number(out, p.v);
                out.push(']');
            });
            out.push('}');
        });
        Ok(out)
    }

    pub fn export_test(&self, rule_file: &str) -> Result<String, String> {
        let last = self.last.as_ref().ok_or("run the rules first: the export describes a run")?;
        let _ = &last.rules_name;
        Ok(crate::export::promtool_test(
            rule_file,
            &self.data,
            self.summary.interval_ms.unwrap_or(last.eval_step_ms),
            last.eval_step_ms,
            &last.opts,
            &last.result,
        ))
    }
}

/// Series and their samples, sorted by labels.
type SeriesData = Vec<(Labels, Vec<Sample>)>;

/// The series of a data file, sorted by labels, and the head they were
/// loaded into.
fn read(name: &str, bytes: &[u8]) -> Result<(SeriesData, Head), String> {
    let head = Head::default();
    load_data(&head, name, bytes)?;
    let mut data = Vec::new();
    head.for_each_series::<tocsin_engine::storage::StorageError>(i64::MIN, |_, l, s| {
        data.push((l.clone(), s.to_vec()));
        Ok(())
    })
    .map_err(|e| format!("{name}: {e}"))?;
    tocsin_engine::sort::by(&mut data, |a, b| a.0.cmp(&b.0));
    Ok((data, head))
}

/// Parse problems as `[{line, col, message, text}]` (line and col 0 when
/// unknown); `[]` when the file is valid.
pub fn check_rules(name: &str, text: &str) -> String {
    let Err(errs) = parse_rule_file(name, text, ParseOptions::default()) else {
        return "[]".into();
    };
    let mut out = String::new();
    push_list(&mut out, &errs, |out, e| {
        let (line, col) = e.pos.map_or((0, 0), |p| (p.line, p.col));
        let msg = match &e.context {
            Some(c) => format!("{c}: {}", e.message),
            None => e.message.clone(),
        };
        let _ = write!(out, r#"{{"line":{line},"col":{col},"message":"#);
        push_str(out, &msg);
        out.push_str(r#","text":"#);
        push_str(out, &e.to_string());
        out.push('}');
    });
    out
}
