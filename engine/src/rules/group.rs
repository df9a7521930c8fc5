//! Evaluating a rule group, exactly as Prometheus's `Group.Eval` does: rules in
//! order, each seeing the earlier results of the same cycle; results written
//! to storage; vanished outputs marked stale; per-rule health.

use std::collections::{BTreeSet, HashSet};

use crate::labels::{Labels, METRIC_NAME};
use crate::promql::{Engine, InstantSample, Value};
use crate::sample::STALE_NAN;
use crate::storage::{AppendError, Head, HistogramAppendError, Queryable};
use crate::templates::{self, QuerySample, Template, TemplateData, TemplateQuerier};

use super::alerting::{ALERT_NAME_LABEL, Alert, AlertingState, Candidate};
use super::batch::Batch;
use super::file::{GroupSpec, RuleExpr, RuleKind, RuleSpec};
use super::wasm::ModuleRuntime;

/// Prometheus's default `--rules.alert.resend-delay`.
pub const DEFAULT_RESEND_DELAY_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleHealth {
    Unknown,
    Ok,
    Err,
}

impl RuleHealth {
    /// As Prometheus's rules API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleHealth::Unknown => "unknown",
            RuleHealth::Ok => "ok",
            RuleHealth::Err => "err",
        }
    }
}

/// Everything a group evaluation needs from outside. Time comes in as `ts`;
/// the optional clock only measures how long rules take (the host passes a
/// monotonic one; tests and the playground need none).
pub struct EvalEnv<'a, 'w> {
    pub engine: &'a Engine,
    pub head: &'a Head,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub resend_delay_ms: i64,
    /// Runs `wasm:` rules (wasmtime in the host, the browser's WebAssembly
    /// in the playground); without one, they report an error.
    pub wasm: Option<&'a (dyn ModuleRuntime + 'w)>,
    pub clock_ns: Option<&'a dyn Fn() -> u64>,
}

/// One rule's state across evaluations.
#[derive(Clone, Debug)]
pub struct RuleState {
    pub spec: RuleSpec,
    /// `spec.labels` as a label set.
    pub labels: Labels,
    pub health: RuleHealth,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration_ns: u64,
    /// Alert instances, for alerting rules.
    pub alerts: AlertingState,
    /// Result samples storage refused in the last evaluation.
    pub discarded: Discarded,
    /// Series written by the last successful evaluation (to mark stale).
    written: HashSet<Labels>,
    /// A `wasm:` rule's state bytes, handed back to it next evaluation.
    pub wasm_state: Vec<u8>,
    /// A `wasm:` rule's log lines from its last evaluation.
    pub wasm_logs: Vec<String>,
    /// An alerting rule's label and annotation templates, parsed once.
    templates: AlertTemplates,
    /// The expression evaluated ahead for upcoming steps (backtests).
    batch: Option<Batch>,
}

/// The templates of an alerting rule's label and annotation values.
#[derive(Clone, Debug, Default)]
struct AlertTemplates {
    labels: Vec<(String, Template)>,
    annotations: Vec<(String, Template)>,
}

impl AlertTemplates {
    fn of(spec: &RuleSpec) -> AlertTemplates {
        let RuleKind::Alert { annotations, .. } = &spec.kind else {
            return AlertTemplates::default();
        };
        let name = templates::alert_template_name(&spec.name);
        let parse = |pairs: &[(String, String)]| {
            pairs.iter().map(|(k, v)| (k.clone(), Template::new(&name, v))).collect()
        };
        AlertTemplates { labels: parse(&spec.labels), annotations: parse(annotations) }
    }
}

/// Alerts of one rule that would go to Alertmanager after an evaluation.
#[derive(Clone, Debug)]
pub struct Notification {
    pub rule_index: usize,
    pub alerts: Vec<Alert>,
}

/// A group and the state of its rules.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: usize,
    pub rules: Vec<RuleState>,
}

/// Counts of result samples storage refused in one evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discarded {
    pub out_of_order: usize,
    pub duplicates: usize,
    pub too_old: usize,
}

impl Group {
    /// `default_interval_ms` applies when the group sets no `interval`.
    pub fn new(
        file: &str,
        spec: &GroupSpec,
        default_interval_ms: i64,
        default_query_offset_ms: i64,
    ) -> Self {
        Group {
            name: spec.name.clone(),
            file: file.to_owned(),
            interval_ms: spec.interval_ms.unwrap_or(default_interval_ms),
            query_offset_ms: spec.query_offset_ms.unwrap_or(default_query_offset_ms),
            limit: spec.limit,
            rules: spec
                .rules
                .iter()
                .map(|r| RuleState {
                    labels: Labels::from_pairs(&r.labels),
                    spec: r.clone(),
                    health: RuleHealth::Unknown,
                    last_error: None,
                    last_eval_ms: None,
                    eval_duration_ns: 0,
                    alerts: AlertingState::default(),
                    discarded: Discarded::default(),
                    written: HashSet::new(),
                    wasm_state: Vec::new(),
                    wasm_logs: Vec::new(),
                    templates: AlertTemplates::of(r),
                    batch: None,
                })
                .collect(),
        }
    }

    /// Prometheus's group hash (of `name` and `file`), which places the
    /// group's evaluations within its interval so groups don't all start at once.
    pub fn hash(&self) -> u64 {
        Labels::from_pairs(&[("file", self.file.as_str()), ("name", self.name.as_str())])
            .stable_hash()
    }

    /// The evaluation slot at or before `now_ms`: Prometheus's
    /// `EvalTimestamp`, offset within the interval by the group's hash.
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let interval_ns = (self.interval_ms.max(1) as i128) * 1_000_000;
        let offset = (self.hash() as i128) % interval_ns;
        let adj = now_ms as i128 * 1_000_000 - offset;
        let base = adj - adj.rem_euclid(interval_ns);
        ((base + offset) / 1_000_000) as i64
    }

    /// Takes over the state of the same rules in `old`, the group this one
    /// replaces on a config reload: active alerts, health and the series to
    /// mark stale. Rules match by kind and name, the n-th rule of a name to
    /// the n-th, as Prometheus's `CopyState` matches them.
    pub fn copy_state_from(&mut self, old: &Group) {
        let key = |r: &RuleState| (r.spec.is_alert(), r.spec.name.clone());
        let mut seen: std::collections::HashMap<(bool, String), usize> = Default::default();
        for rule in &mut self.rules {
            let k = key(rule);
            let nth = seen.entry(k.clone()).or_insert(0);
            let found = old.rules.iter().filter(|o| key(o) == k).nth(*nth);
            *nth += 1;
            if let Some(o) = found {
                rule.alerts.active = o.alerts.active.clone();
                rule.health = o.health;
                rule.last_error = o.last_error.clone();
                rule.last_eval_ms = o.last_eval_ms;
                rule.eval_duration_ns = o.eval_duration_ns;
                rule.written = o.written.clone();
                rule.wasm_state = o.wasm_state.clone();
            }
        }
    }

    /// Prepares the next evaluation to restore `for` state from the
    /// `ALERTS_FOR_STATE` series in `head` (after a restart); see
    /// [`ForStateRestore`](super::alerting::ForStateRestore).
    pub fn restore_for_state(
        &mut self,
        head: &Head,
        ts: i64,
        outage_tolerance_ms: i64,
        grace_ms: i64,
    ) {
        use super::alerting::{ALERTS_FOR_STATE_METRIC, ForStateRestore, RestoredFor};
        use crate::matcher::Matcher;
        let mint = ts - outage_tolerance_ms;
        for rule in &mut self.rules {
            if !rule.spec.is_alert() {
                continue;
            }
            let matchers = [
                Matcher::equal(METRIC_NAME, ALERTS_FOR_STATE_METRIC),
                Matcher::equal(ALERT_NAME_LABEL, rule.spec.name.as_str()),
            ];
            let mut restore =
                ForStateRestore { outage_tolerance_ms, grace_ms, ..Default::default() };
            let Ok(series) = head.select(&matchers, mint, ts) else { continue };
            let mut buf = Vec::new();
            for s in series {
                buf.clear();
                if head.samples(s.id, mint, ts, &mut buf).is_err() {
                    continue;
                }
                // The last sample, unless the series went stale: then the
                // alert had resolved before the restart.
                if let Some(last) = buf.last().filter(|x| !crate::sample::is_stale_nan(x.v)) {
                    restore.alerts.insert(
                        s.labels.without_metric_name(),
                        RestoredFor { active_at: (last.v * 1000.0) as i64, last_seen: last.t },
                    );
                }
            }
            if !restore.alerts.is_empty() {
                rule.alerts.restore = Some(restore);
            }
        }
    }

    /// Evaluates every rule at `ts` (ms), writing results into `env.head`.
    /// Returns the alerts that would be sent to Alertmanager.
    /// Lets the group's PromQL rules evaluate their expressions for many
    /// steps at once (see [`Batch`]) when it will be evaluated at `first +
    /// k * step` up to `last` over storage that only changes by the
    /// metrics in `written` in the meantime: what a backtest guarantees.
    pub fn plan_batches(&mut self, first: i64, step: i64, last: i64, written: &BTreeSet<String>) {
        let offset = self.query_offset_ms;
        for rule in &mut self.rules {
            rule.batch = match &rule.spec.expr {
                RuleExpr::PromQL { expr, .. } => {
                    Batch::plan(expr, first - offset, step, last - offset, written)
                }
                RuleExpr::Wasm { .. } => None,
            };
        }
    }

    pub fn eval(&mut self, ts: i64, env: &mut EvalEnv<'_, '_>) -> Vec<Notification> {
        let mut notifications = Vec::new();
        for i in 0..self.rules.len() {
            let started = env.clock_ns.map(|c| c());
            let outcome = self.eval_rule(i, ts, env);
            let rule = &mut self.rules[i];
            rule.last_eval_ms = Some(ts);
            if let (Some(c), Some(s)) = (env.clock_ns, started) {
                rule.eval_duration_ns = c().saturating_sub(s);
            }
            match outcome {
                Err(e) => {
                    rule.health = RuleHealth::Err;
                    rule.last_error = Some(e);
                }
                Ok(vector) => {
                    rule.health = RuleHealth::Ok;
                    rule.last_error = None;
                    if rule.spec.is_alert() {
                        let sent =
                            rule.alerts.take_to_send(ts, env.resend_delay_ms, self.interval_ms);
                        if !sent.is_empty() {
                            notifications.push(Notification { rule_index: i, alerts: sent });
                        }
                    }
                    self.write(i, ts, vector, env.head);
                }
            }
        }
        notifications
    }

    fn write(&mut self, i: usize, ts: i64, vector: Vec<InstantSample>, head: &Head) {
        let rule = &mut self.rules[i];
        let mut written = HashSet::with_capacity(vector.len());
        let mut discarded = Discarded::default();
        let mut first_error = None;
        for s in vector {
            let appended = match s.h {
                None => head.append_labels(&s.labels, s.t, s.v),
                Some(h) => {
                    match head.append_histogram(&head.get_or_create(&s.labels), s.t, h) {
                        Ok(()) => Ok(()),
                        Err(HistogramAppendError::Append(e)) => Err(e),
                        // The engine's own results are valid histograms;
                        // should one not be, the rule says so.
                        Err(e @ HistogramAppendError::Invalid(_)) => {
                            rule.health = RuleHealth::Err;
                            rule.last_error = Some(e.to_string());
                            continue;
                        }
                    }
                }
            };
            match appended {
                Ok(()) => {
                    written.insert(s.labels);
                }
                Err(e) => {
                    match e {
                        AppendError::OutOfOrder { .. } => discarded.out_of_order += 1,
                        AppendError::Duplicate { .. } => discarded.duplicates += 1,
                        AppendError::OutOfBounds { .. } | AppendError::SeriesRemoved => {
                            discarded.too_old += 1
                        }
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            rule.health = RuleHealth::Err;
            rule.last_error = Some(e.to_string());
        }
        // Series the rule no longer produces get a staleness marker, at the
        // (offset) time the rule's results are written.
        let stale_t = ts - self.query_offset_ms;
        for gone in rule.written.difference(&written) {
            // Refusals are expected when another rule writes the same series.
            let _ = head.append_labels(gone, stale_t, STALE_NAN);
        }
        rule.written = written;
        rule.discarded = discarded;
    }

    fn eval_rule(
        &mut self,
        i: usize,
        ts: i64,
        env: &mut EvalEnv<'_, '_>,
    ) -> Result<Vec<InstantSample>, String> {
        let query_ts = ts - self.query_offset_ms;
        let limit = self.limit;
        let interval_ms = self.interval_ms;
        let rule = &mut self.rules[i];
        // Per-sample annotations from a module, by output position.
        let mut extra_annotations: Vec<Vec<(String, String)>> = Vec::new();
        let samples = match &rule.spec.expr {
            RuleExpr::PromQL { expr, .. } => {
                match rule.batch.as_mut().and_then(|b| b.take(env.engine, env.head, expr, query_ts))
                {
                    Some(vector) => vector,
                    None => query_vector(env.engine, env.head, expr, query_ts)?,
                }
            }
            RuleExpr::Wasm { module, config } => {
                let Some(runtime) = env.wasm else {
                    return Err(format!(
                        "wasm rule {module:?}: no WebAssembly runtime is attached to this evaluation"
                    ));
                };
                let out = super::wasm::evaluate(
                    runtime,
                    module,
                    config.as_ref(),
                    query_ts,
                    interval_ms,
                    &mut rule.wasm_state,
                    env.engine,
                    env.head,
                    &runtime.limits(),
                )?;
                rule.wasm_logs = out.logs;
                out.samples
                    .into_iter()
                    .map(|s| {
                        extra_annotations.push(s.annotations);
                        s.sample
                    })
                    .collect()
            }
        };
        match &rule.spec.kind {
            RuleKind::Record => record(&rule.spec.name, &rule.labels, samples, limit),
            RuleKind::Alert { for_ms, keep_firing_for_ms, .. } => {
                let mut querier = EngineQuerier { engine: env.engine, storage: env.head };
                let mut candidates = alert_candidates(
                    &rule.spec.name,
                    &rule.templates,
                    samples,
                    env.external_labels,
                    env.external_url,
                    ts,
                    &mut querier,
                );
                // A module's own annotations for a sample win over the rule's.
                for (c, extra) in candidates.iter_mut().zip(extra_annotations) {
                    for (k, v) in extra {
                        match c.annotations.iter_mut().find(|(name, _)| *name == k) {
                            Some(slot) => slot.1 = v,
                            None => c.annotations.push((k, v)),
                        }
                    }
                }
                let out = rule.alerts.step(
                    &rule.spec.name,
                    &rule.labels,
                    candidates,
                    ts,
                    self.query_offset_ms,
                    *for_ms,
                    *keep_firing_for_ms,
                    limit,
                )?;
                Ok(out.series)
            }
        }
    }
}

/// Runs a rule's expression as Prometheus's rule query function does: a
/// scalar becomes one sample with no labels, strings and matrices are errors.
pub fn query_vector(
    engine: &Engine,
    storage: &dyn Queryable,
    expr: &crate::promql::Expr,
    t: i64,
) -> Result<Vec<InstantSample>, String> {
    let res = engine.instant_expr(storage, expr, t).map_err(|e| e.to_string())?;
    match res.value {
        Value::Vector(v) => Ok(v),
        Value::Scalar { t, v } => Ok(vec![InstantSample::float(Labels::empty(), t, v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

/// A recording rule's output: the record name and rule labels set on each sample.
fn record(
    name: &str,
    rule_labels: &Labels,
    samples: Vec<InstantSample>,
    limit: usize,
) -> Result<Vec<InstantSample>, String> {
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashSet::with_capacity(samples.len());
    for s in samples {
        let mut b = s.labels.builder();
        b.set(METRIC_NAME, name);
        for l in rule_labels.iter() {
            b.set(l.name.clone(), l.value.clone());
        }
        let labels = b.labels();
        if !seen.insert(labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push(InstantSample { labels, t: s.t, v: s.v, h: s.h });
    }
    if limit > 0 && out.len() > limit {
        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
    }
    Ok(out)
}

/// Expands labels and annotations for each output sample of an alerting rule.
fn alert_candidates(
    alert_name: &str,
    templates: &AlertTemplates,
    samples: Vec<InstantSample>,
    external_labels: &Labels,
    external_url: &str,
    ts: i64,
    querier: &mut dyn TemplateQuerier,
) -> Vec<Candidate> {
    let base = TemplateData {
        labels: Vec::new(),
        external_labels: external_labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
        external_url: external_url.to_owned(),
        value: 0.0,
    }
    .dot();
    samples
        .into_iter()
        .map(|s| {
            let data = base.with_alert(
                s.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())),
                s.v,
            );
            let mut b = s.labels.builder();
            b.del(METRIC_NAME);
            for (k, t) in &templates.labels {
                b.set(k.as_str(), t.expand_or_error_text(&data, ts, querier));
            }
            b.set(ALERT_NAME_LABEL, alert_name);
            let annotations = templates
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), t.expand_or_error_text(&data, ts, querier)))
                .collect();
            Candidate { labels: b.labels(), annotations, value: s.v }
        })
        .collect()
}

/// The `query` template function, answered by the engine over storage.
struct EngineQuerier<'a> {
    engine: &'a Engine,
    storage: &'a dyn Queryable,
}

impl TemplateQuerier for EngineQuerier<'_> {
    fn query(&mut self, expr: &str, ts_ms: i64) -> Result<Vec<QuerySample>, String> {
        let parsed = crate::promql::parse(expr).map_err(|e| e.to_string())?;
        let v = query_vector(self.engine, self.storage, &parsed, ts_ms)?;
        Ok(v.into_iter()
            .map(|s| QuerySample {
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: s.v,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{AlertState, ParseOptions, parse_rule_file};

    const RULES: &str = r#"
groups:
  - name: g
    interval: 1m
    rules:
      - alert: High
        expr: x > 1
        for: 5m
      - alert: Slow
        expr: x > 1
        for: 20m
"#;

    fn group() -> Group {
        let f = parse_rule_file("r.yml", RULES, ParseOptions::default()).unwrap();
        Group::new("r.yml", &f.groups[0], 60_000, 0)
    }

    fn run(g: &mut Group, head: &Head, from_min: i64, to_min: i64) {
        let engine = Engine::default();
        let ext = Labels::empty();
        for m in from_min..=to_min {
            let ts = m * 60_000;
            head.append_labels(&Labels::from_pairs(&[("__name__", "x")]), ts, 5.0).unwrap();
            let mut env = EvalEnv {
                engine: &engine,
                head,
                external_labels: &ext,
                external_url: "",
                resend_delay_ms: DEFAULT_RESEND_DELAY_MS,
                wasm: None,
                clock_ns: None,
            };
            g.eval(ts, &mut env);
        }
    }

    fn state(g: &Group, rule: usize) -> (AlertState, i64) {
        let a = g.rules[rule].alerts.active.values().next().expect("an alert");
        (a.state, a.active_at)
    }

    #[test]
    fn restart_restores_for_state_and_firing_stays_firing() {
        let head = Head::default();
        let mut before = group();
        run(&mut before, &head, 0, 10);
        assert_eq!(state(&before, 0), (AlertState::Firing, 0));
        assert_eq!(state(&before, 1), (AlertState::Pending, 0));

        // A restart after 3 minutes of downtime: a fresh group over the same storage.
        let mut after = group();
        after.restore_for_state(&head, 13 * 60_000, 3_600_000, 600_000);
        run(&mut after, &head, 13, 13);
        // Firing before: firing in the very first evaluation, same active_at.
        assert_eq!(state(&after, 0), (AlertState::Firing, 0));
        // Pending with 10m to go: the downtime does not count.
        assert_eq!(state(&after, 1), (AlertState::Pending, 3 * 60_000));
        // Restoring is a one-off.
        assert!(after.rules.iter().all(|r| r.alerts.restore.is_none()));
    }

    #[test]
    fn state_older_than_the_outage_tolerance_is_not_restored() {
        let head = Head::default();
        let mut before = group();
        run(&mut before, &head, 0, 10);
        let mut after = group();
        let ts = 80 * 60_000;
        after.restore_for_state(&head, ts, 3_600_000, 600_000);
        run(&mut after, &head, 80, 80);
        assert_eq!(state(&after, 0), (AlertState::Pending, ts));
    }

    #[test]
    fn reload_carries_alert_state_over() {
        let head = Head::default();
        let mut old = group();
        run(&mut old, &head, 0, 10);
        let mut new = group();
        new.copy_state_from(&old);
        assert_eq!(state(&new, 0), (AlertState::Firing, 0));
        assert_eq!(state(&new, 1), (AlertState::Pending, 0));
    }
}
