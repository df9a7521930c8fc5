//! The playground's state and operations, as plain Rust.

use serde_json::{Value, json};
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
    pub fn from_json(text: &str) -> Result<RunOptions, String> {
        if text.trim().is_empty() {
            return Ok(RunOptions::default());
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("run options: {e}"))?;
        let ms = |k: &str| -> Result<Option<i64>, String> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| Some(f as i64))
                    .ok_or_else(|| format!("run options: {k} is not a finite number")),
                Some(_) => Err(format!("run options: {k} must be a number of milliseconds")),
            }
        };
        let mut external_labels = Vec::new();
        if let Some(Value::Object(m)) = v.get("external_labels") {
            for (k, val) in m {
                let val =
                    val.as_str().ok_or_else(|| format!("external label {k}: not a string"))?;
                external_labels.push((k.clone(), val.to_owned()));
            }
        }
        Ok(RunOptions {
            from_ms: ms("from")?,
            to_ms: ms("to")?,
            step_ms: ms("step")?,
            external_labels,
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

impl DataSummary {
    pub fn to_json(&self) -> Value {
        json!({
            "series": self.series,
            "samples": self.samples,
            "from": self.min_time,
            "to": self.max_time,
            "interval": self.interval_ms,
        })
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
    pub fn load_data(&mut self, name: &str, bytes: &[u8]) -> Result<DataSummary, String> {
        let head = Head::default();
        load_data(&head, name, bytes)?;
        let mut data = Vec::new();
        let _ =
            head.for_each_series::<tocsin_engine::storage::StorageError>(i64::MIN, |_, l, s| {
                data.push((l.clone(), s.to_vec()));
                Ok(())
            });
        data.sort_by(|a, b| a.0.cmp(&b.0));
        self.set_data(data, head);
        Ok(self.summary.clone())
    }

    /// Adds a Prometheus API matrix (`[{metric: {...}, values: [[sec, "v"]]}]`).
    pub fn add_matrix(&mut self, text: &str) -> Result<DataSummary, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("host data: {e}"))?;
        let items = v.as_array().ok_or("host data: expected a matrix (a JSON array of series)")?;
        let mut data = std::mem::take(&mut self.data);
        for (i, item) in items.iter().enumerate() {
            let metric = item
                .get("metric")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("host data: series {i} has no metric labels"))?;
            let pairs: Vec<(&str, &str)> =
                metric.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))).collect();
            let labels = Labels::from_pairs(&pairs);
            let mut samples = Vec::new();
            for p in item.get("values").and_then(Value::as_array).into_iter().flatten() {
                let (Some(t), Some(val)) =
                    (p.get(0).and_then(Value::as_f64), p.get(1).and_then(Value::as_str))
                else {
                    return Err(format!("host data: series {labels}: malformed point {p}"));
                };
                let val = tocsin_engine::gofmt::parse_float(val)
                    .map_err(|_| format!("host data: series {labels}: bad value {val:?}"))?;
                samples.push(Sample { t: (t * 1000.0).round() as i64, v: val });
            }
            match data.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, s)) => {
                    s.extend(samples);
                    s.sort_by_key(|x| x.t);
                    s.dedup_by_key(|x| x.t);
                }
                None => data.push((labels, samples)),
            }
        }
        data.sort_by(|a, b| a.0.cmp(&b.0));
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
    ) -> Result<Value, String> {
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
        let result = backtest(&mut groups, &head, &Engine::default(), &opts, wasm, progress);
        let mut out = to_json(&result);
        let rules_meta: Vec<Value> = groups
            .iter()
            .flat_map(|g| {
                g.rules.iter().map(move |r| {
                    let (kind, for_ms) = match &r.spec.kind {
                        RuleKind::Record => ("record", 0),
                        RuleKind::Alert { for_ms, .. } => ("alert", *for_ms),
                    };
                    let (expr, module) = match &r.spec.expr {
                        RuleExpr::PromQL { text, .. } => (Some(text.clone()), None),
                        RuleExpr::Wasm { module, .. } => (None, Some(module.clone())),
                    };
                    json!({
                        "group": g.name, "name": r.spec.name, "kind": kind, "for": for_ms,
                        "expr": expr, "wasm": module, "line": r.spec.pos.line,
                    })
                })
            })
            .collect();
        let eval_step_ms = run.step_ms.unwrap_or_else(|| {
            let mut iv: Vec<i64> = groups.iter().map(|g| g.interval_ms).collect();
            iv.dedup();
            iv.first().copied().unwrap_or(60_000)
        });
        if let Some(o) = out.as_object_mut() {
            o.insert("rules".into(), Value::Array(rules_meta));
            o.insert("from".into(), json!(from));
            o.insert("to".into(), json!(to));
            o.insert("step".into(), json!(eval_step_ms));
        }
        self.last = Some(LastRun { head, result, opts, rules_name: name.to_owned(), eval_step_ms });
        Ok(out)
    }

    /// A range query over the last run's head, at most
    /// [`MAX_CHART_POINTS`] points per series.
    pub fn query_range(&self, expr: &str, from: i64, to: i64, step: i64) -> Result<Value, String> {
        let last = self.last.as_ref().ok_or("run the rules first")?;
        let step = step.max(1).max((to - from) / MAX_CHART_POINTS + 1);
        let r =
            Engine::default().range(&last.head, expr, from, to, step).map_err(|e| e.to_string())?;
        let series = match r.value {
            QValue::Matrix(m) => m,
            QValue::Scalar { .. } | QValue::String { .. } | QValue::Vector(_) => Vec::new(),
        };
        Ok(Value::Array(
            series
                .iter()
                .map(|s| {
                    json!({
                        "labels": s.labels.iter().map(|l| (l.name.to_string(), Value::String(l.value.to_string()))).collect::<serde_json::Map<_, _>>(),
                        "points": s.points.iter().map(|p| json!([p.t, if p.v.is_finite() { json!(p.v) } else { Value::Null }])).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        ))
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

/// Parse problems as `[{line, col, message}]`.
pub fn check_rules(name: &str, text: &str) -> Value {
    match parse_rule_file(name, text, ParseOptions::default()) {
        Ok(_) => Value::Array(Vec::new()),
        Err(errs) => Value::Array(
            errs.iter()
                .map(|e| {
                    let (line, col) = e.pos.map_or((0, 0), |p| (p.line, p.col));
                    let msg = match &e.context {
                        Some(c) => format!("{c}: {}", e.message),
                        None => e.message.clone(),
                    };
                    json!({"line": line, "col": col, "message": msg, "text": e.to_string()})
                })
                .collect(),
        ),
    }
}
