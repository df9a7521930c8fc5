//! Backtesting: rule groups evaluated over stored data for a time range with
//! the real state machine, reporting every alert state transition and every
//! notification Alertmanager would have received. The CLI's `tocsin backtest`
//! and the browser playground both call [`backtest`].

use std::collections::{BTreeMap, BTreeSet};

use std::fmt::Write as _;
use std::ops::ControlFlow;

use crate::duration::format_rfc3339;
use crate::exposition::{Format, Ingester};
use crate::gofmt::format_float_g;
use crate::json::{push_labels, push_list, push_number, push_str};
use crate::labels::{Label, Labels};
use crate::promql::Engine;
use crate::storage::{Head, HeadOptions};

use super::alerting::{ALERTS_FOR_STATE_METRIC, ALERTS_METRIC, Alert, AlertState};
use super::group::{EvalEnv, Group};
use super::wasm::ModuleRuntime;

#[derive(Clone, Debug)]
pub struct BacktestOptions {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Evaluate every group at this step; `None` runs each group at its own
    /// interval, as the scheduler would.
    pub step_ms: Option<i64>,
    pub external_labels: Labels,
    pub external_url: String,
    pub resend_delay_ms: i64,
    /// Keep every active alert's value at every evaluation
    /// ([`BacktestResult::alert_values`]), for charts.
    pub capture_alert_values: bool,
}

/// The state an alert instance moved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionTo {
    Pending,
    Firing,
    /// Was firing, now resolved.
    Resolved,
    /// Was pending, condition cleared before `for` elapsed.
    Cancelled,
}

impl TransitionTo {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionTo::Pending => "pending",
            TransitionTo::Firing => "firing",
            TransitionTo::Resolved => "resolved",
            TransitionTo::Cancelled => "inactive",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Transition {
    pub t: i64,
    pub group: String,
    pub rule: String,
    pub labels: Labels,
    pub from: Option<AlertState>,
    pub to: TransitionTo,
    /// The expression's value at the transition (the last value for
    /// resolutions).
    pub value: f64,
    pub annotations: Vec<(String, String)>,
}

/// One alert as it would be posted to Alertmanager's `/api/v2/alerts`.
#[derive(Clone, Debug)]
pub struct OutgoingAlert {
    /// Alert labels plus external labels (the alert's own win).
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub resolved: bool,
}

#[derive(Clone, Debug)]
pub struct SentNotification {
    pub t: i64,
    pub group: String,
    pub rule: String,
    pub alerts: Vec<OutgoingAlert>,
}

#[derive(Clone, Debug)]
pub struct RuleErrorEvent {
    pub t: i64,
    pub group: String,
    pub rule: String,
    pub error: String,
}

#[derive(Clone, Debug, Default)]
pub struct BacktestResult {
    pub transitions: Vec<Transition>,
    pub notifications: Vec<SentNotification>,
    /// Rule errors, reported once per run of consecutive failing evaluations.
    pub errors: Vec<RuleErrorEvent>,
    pub evaluations: usize,
    /// With [`BacktestOptions::capture_alert_values`]: per alert instance, its
    /// value and state at each evaluation while pending or firing.
    pub alert_values: Vec<AlertValues>,
    /// With [`BacktestOptions::capture_alert_values`]: after every evaluation
    /// in which an alerting rule's alerts changed state, its firing alerts
    /// (what a promtool `alert_rule_test` at that time would list).
    pub firing_snapshots: Vec<FiringSnapshot>,
    /// The run was stopped by its `progress` callback before `to`.
    pub stopped: bool,
}

#[derive(Clone, Debug)]
pub struct FiringSnapshot {
    pub t: i64,
    pub group: String,
    pub rule: String,
    /// Labels and annotations of each firing alert, by labels.
    pub alerts: Vec<(Labels, Vec<(String, String)>)>,
}

/// The values one alert instance had while active: what a chart of a rule
/// shows when the rule is a module and has no expression to graph.
#[derive(Clone, Debug)]
pub struct AlertValues {
    pub group: String,
    pub rule: String,
    pub labels: Labels,
    pub points: Vec<(i64, f64, AlertState)>,
}

/// Prometheus's notifier turns an alert into what Alertmanager receives:
/// external labels added, `startsAt` the firing time, `endsAt` the resolution
/// or the validity horizon.
pub fn outgoing(alert: &Alert, external_labels: &Labels) -> OutgoingAlert {
    let mut b = alert.labels.builder();
    for l in external_labels.iter() {
        if !alert.labels.has(&l.name) {
            b.set(l.name.clone(), l.value.clone());
        }
    }
    OutgoingAlert {
        labels: b.labels(),
        annotations: alert.annotations.clone(),
        starts_at: alert.fired_at.unwrap_or(alert.active_at),
        ends_at: alert.resolved_at.or(alert.valid_until).unwrap_or(alert.active_at),
        resolved: alert.resolved_at.is_some(),
    }
}

/// Options for the head a backtest reads. Its rules read windows that slide
/// one step at a time over the same chunks, so the chunks each series' reads
/// start in are kept decoded (for up to 65,536 series, at most 3.75 KiB
/// each).
pub fn head_options() -> HeadOptions {
    HeadOptions { decoded_series: 1 << 16, ..HeadOptions::default() }
}

/// Evaluation times from `from` to `to` inclusive, per group index.
fn schedule(groups: &[Group], opts: &BacktestOptions) -> Vec<(i64, Vec<usize>)> {
    let mut at: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        let step = opts.step_ms.unwrap_or(g.interval_ms).max(1);
        let mut t = opts.from_ms;
        while t <= opts.to_ms {
            at.entry(t).or_default().push(i);
            t += step;
        }
    }
    at.into_iter().collect()
}

/// Lets rules whose results cannot depend on the backtest's own output
/// evaluate many steps at once. The backtest writes only recorded series,
/// `ALERTS` and `ALERTS_FOR_STATE`.
fn plan_batches(groups: &mut [Group], opts: &BacktestOptions) {
    let mut written: BTreeSet<String> =
        [ALERTS_METRIC, ALERTS_FOR_STATE_METRIC].map(str::to_owned).into();
    for g in groups.iter() {
        written.extend(g.rules.iter().filter(|r| !r.spec.is_alert()).map(|r| r.spec.name.clone()));
    }
    for g in groups.iter_mut() {
        let step = opts.step_ms.unwrap_or(g.interval_ms).max(1);
        g.plan_batches(opts.from_ms, step, opts.to_ms, &written);
    }
}

/// How many evaluations a backtest will run (for progress reporting and
/// refusing absurd ranges up front).
pub fn evaluation_count(groups: &[Group], opts: &BacktestOptions) -> u64 {
    groups
        .iter()
        .map(|g| {
            let step = opts.step_ms.unwrap_or(g.interval_ms).max(1);
            if opts.to_ms < opts.from_ms {
                0
            } else {
                ((opts.to_ms - opts.from_ms) / step) as u64 + 1
            }
        })
        .sum()
}

/// Runs the groups over `head` from `opts.from_ms` to `opts.to_ms`. Rule
/// results are written into `head`, as the service would. `progress` is
/// called after each evaluation time with (evaluations done, total); when it
/// breaks, the run stops there (the engine keeps no clock: deadlines are the
/// caller's) and the result says so.
pub fn backtest(
    groups: &mut [Group],
    head: &Head,
    engine: &Engine,
    opts: &BacktestOptions,
    wasm: Option<&dyn ModuleRuntime>,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> BacktestResult {
    backtest_with(groups, head, engine, opts, wasm, progress, true)
}

/// [`backtest`], with batched rule evaluation or without (to test that
/// it changes nothing).
fn backtest_with(
    groups: &mut [Group],
    head: &Head,
    engine: &Engine,
    opts: &BacktestOptions,
    wasm: Option<&dyn ModuleRuntime>,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    batch: bool,
) -> BacktestResult {
    let total = evaluation_count(groups, opts);
    if batch {
        plan_batches(groups, opts);
    }
    let mut done = 0u64;
    let mut result = BacktestResult::default();
    let mut failing: Vec<Vec<bool>> = groups.iter().map(|g| vec![false; g.rules.len()]).collect();
    // Per group and rule: each alert's index in `alert_values`.
    let mut capture: Vec<Vec<BTreeMap<Labels, usize>>> =
        groups.iter().map(|g| vec![BTreeMap::new(); g.rules.len()]).collect();
    for (ts, due) in schedule(groups, opts) {
        for gi in due {
            let group = &mut groups[gi];
            // Sorted by labels, as the active map iterates.
            let before: Vec<Vec<(Labels, AlertState)>> = group
                .rules
                .iter()
                .map(|r| r.alerts.active.iter().map(|(l, a)| (l.clone(), a.state)).collect())
                .collect();
            let mut env = EvalEnv {
                engine,
                head,
                external_labels: &opts.external_labels,
                external_url: &opts.external_url,
                resend_delay_ms: opts.resend_delay_ms,
                wasm,
                clock_ns: None,
            };
            let sent = group.eval(ts, &mut env);
            result.evaluations += 1;
            done += 1;
            for n in sent {
                let rule = &group.rules[n.rule_index];
                result.notifications.push(SentNotification {
                    t: ts,
                    group: group.name.clone(),
                    rule: rule.spec.name.clone(),
                    alerts: n.alerts.iter().map(|a| outgoing(a, &opts.external_labels)).collect(),
                });
            }
            for (ri, rule) in group.rules.iter().enumerate() {
                match &rule.last_error {
                    Some(e) if !failing[gi][ri] => {
                        failing[gi][ri] = true;
                        result.errors.push(RuleErrorEvent {
                            t: ts,
                            group: group.name.clone(),
                            rule: rule.spec.name.clone(),
                            error: e.clone(),
                        });
                    }
                    Some(_) => {}
                    None => failing[gi][ri] = false,
                }
                if !rule.spec.is_alert() {
                    continue;
                }
                if opts.capture_alert_values {
                    for (labels, a) in &rule.alerts.active {
                        if a.state == AlertState::Inactive {
                            continue;
                        }
                        let slots = &mut capture[gi][ri];
                        let slot = match slots.get(labels) {
                            Some(&slot) => slot,
                            None => {
                                result.alert_values.push(AlertValues {
                                    group: group.name.clone(),
                                    rule: rule.spec.name.clone(),
                                    labels: labels.clone(),
                                    points: Vec::new(),
                                });
                                slots.insert(labels.clone(), result.alert_values.len() - 1);
                                result.alert_values.len() - 1
                            }
                        };
                        result.alert_values[slot].points.push((ts, a.value, a.state));
                    }
                }
                let changed_before = result.transitions.len();
                let prev = &before[ri];
                let mut push =
                    |labels: &Labels, from: Option<AlertState>, to, a: Option<&Alert>| {
                        result.transitions.push(Transition {
                            t: ts,
                            group: group.name.clone(),
                            rule: rule.spec.name.clone(),
                            labels: labels.clone(),
                            from,
                            to,
                            value: a.map_or(f64::NAN, |a| a.value),
                            annotations: a.map(|a| a.annotations.clone()).unwrap_or_default(),
                        })
                    };
                for (labels, a) in &rule.alerts.active {
                    let was = prev.binary_search_by(|(l, _)| l.cmp(labels)).ok().map(|i| prev[i].1);
                    let to = match (was, a.state) {
                        (Some(w), s) if w == s => continue,
                        (_, AlertState::Pending) => TransitionTo::Pending,
                        (_, AlertState::Firing) => TransitionTo::Firing,
                        (Some(AlertState::Firing), AlertState::Inactive) => TransitionTo::Resolved,
                        (_, AlertState::Inactive) => continue,
                    };
                    push(labels, was, to, Some(a));
                }
                // Pending alerts whose condition cleared are dropped at once.
                for (labels, was) in prev {
                    if *was == AlertState::Pending && !rule.alerts.active.contains_key(labels) {
                        push(labels, Some(*was), TransitionTo::Cancelled, None);
                    }
                }
                if opts.capture_alert_values && result.transitions.len() > changed_before {
                    let mut alerts: Vec<_> = rule
                        .alerts
                        .active
                        .iter()
                        .filter(|(_, a)| a.state == AlertState::Firing)
                        .map(|(l, a)| (l.clone(), a.annotations.clone()))
                        .collect();
                    crate::sort::by(&mut alerts, |a, b| a.0.cmp(&b.0));
                    result.firing_snapshots.push(FiringSnapshot {
                        t: ts,
                        group: group.name.clone(),
                        rule: rule.spec.name.clone(),
                        alerts,
                    });
                }
            }
        }
        if progress(done, total).is_break() {
            result.stopped = true;
            break;
        }
    }
    result
}

/// The most samples [`load_data`] expands a data file to: a few bytes of
/// expanding notation (`0+1x10000000`) stand for many samples, and the
/// whole expansion is held while it loads.
pub const MAX_DATA_SAMPLES: usize = 100_000_000;

/// Loads backtest input into `head`: promtool-style `input_series` YAML (a
/// test file or just its `input_series` part), or exposition text whose
/// samples carry timestamps. `name` is the file name (its extension decides
/// when present) and prefixes errors, which read `name:line:col: message`.
/// YAML that expands to more than [`MAX_DATA_SAMPLES`] samples is refused.
pub fn load_data(head: &Head, name: &str, bytes: &[u8]) -> Result<(), String> {
    load_data_bounded(head, name, bytes, MAX_DATA_SAMPLES)
}

/// [`load_data`] with another bound on the samples YAML expands to.
pub fn load_data_bounded(
    head: &Head,
    name: &str,
    bytes: &[u8],
    max_samples: usize,
) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let looks_yaml = name.ends_with(".yml")
        || name.ends_with(".yaml")
        || text.lines().any(|l| l.starts_with("input_series:") || l.starts_with("tests:"));
    if looks_yaml {
        let series = super::unittest::parse_data_yaml(&text, max_samples)
            .map_err(|e| format!("{name}:{e}"))?;
        for input in series {
            input.append_until(head, i64::MAX, &mut (0, 0));
        }
        return Ok(());
    }
    let format = if text.trim_end().ends_with("# EOF") {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    };
    Ingester::new().ingest(head, bytes, format, 0).map_err(|e| format!("{name}:{e}"))?;
    Ok(())
}

/// A value as the timeline prints it: Go's `%g`, `-` for none.
pub fn value_text(v: f64) -> String {
    if v.is_nan() { "-".into() } else { format_float_g(v) }
}

fn push_pairs(out: &mut String, p: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
}

/// `"name":` after a comma unless first.
fn key(out: &mut String, first: &mut bool, name: &str) {
    if !std::mem::take(first) {
        out.push(',');
    }
    push_str(out, name);
    out.push(':');
}

/// The result as JSON: `tocsin backtest --json` prints it and the playground
/// renders it, so "the same timeline" can be checked value for value. Times
/// are RFC 3339, values strings (JSON has no NaN or Inf; Prometheus's API
/// writes numbers as strings too). With captured alert values the document
/// also has `alertValues`, in milliseconds and raw numbers (null for NaN and
/// ±Inf), for charts.
pub fn to_json(r: &BacktestResult) -> String {
    let mut out = String::with_capacity(256 + 256 * (r.transitions.len() + r.notifications.len()));
    let _ = write!(out, r#"{{"evaluations":{},"transitions":"#, r.evaluations);
    push_list(&mut out, &r.transitions, |out, t| {
        let mut first = true;
        out.push('{');
        key(out, &mut first, "time");
        push_str(out, &format_rfc3339(t.t));
        key(out, &mut first, "group");
        push_str(out, &t.group);
        key(out, &mut first, "rule");
        push_str(out, &t.rule);
        key(out, &mut first, "labels");
        push_labels(out, &t.labels);
        key(out, &mut first, "from");
        match t.from {
            Some(s) => push_str(out, s.as_str()),
            None => out.push_str("null"),
        }
        key(out, &mut first, "to");
        push_str(out, t.to.as_str());
        key(out, &mut first, "value");
        push_str(out, &value_text(t.value));
        key(out, &mut first, "annotations");
        push_pairs(out, &t.annotations);
        out.push('}');
    });
    out.push_str(r#","notifications":"#);
    push_list(&mut out, &r.notifications, |out, n| {
        let mut first = true;
        out.push('{');
        key(out, &mut first, "time");
        push_str(out, &format_rfc3339(n.t));
        key(out, &mut first, "group");
        push_str(out, &n.group);
        key(out, &mut first, "rule");
        push_str(out, &n.rule);
        key(out, &mut first, "alerts");
        push_list(out, &n.alerts, |out, a| {
            let mut first = true;
            out.push('{');
            key(out, &mut first, "labels");
            push_labels(out, &a.labels);
            key(out, &mut first, "annotations");
            push_pairs(out, &a.annotations);
            key(out, &mut first, "startsAt");
            push_str(out, &format_rfc3339(a.starts_at));
            key(out, &mut first, "endsAt");
            push_str(out, &format_rfc3339(a.ends_at));
            key(out, &mut first, "status");
            push_str(out, if a.resolved { "resolved" } else { "firing" });
            out.push('}');
        });
        out.push('}');
    });
    out.push_str(r#","errors":"#);
    push_list(&mut out, &r.errors, |out, e| {
        let mut first = true;
        out.push('{');
        key(out, &mut first, "time");
        push_str(out, &format_rfc3339(e.t));
        key(out, &mut first, "group");
        push_str(out, &e.group);
        key(out, &mut first, "rule");
        push_str(out, &e.rule);
        key(out, &mut first, "error");
        push_str(out, &e.error);
        out.push('}');
    });
    if !r.alert_values.is_empty() {
        out.push_str(r#","alertValues":"#);
        push_list(&mut out, &r.alert_values, |out, a| {
            let mut first = true;
            out.push('{');
            key(out, &mut first, "group");
            push_str(out, &a.group);
            key(out, &mut first, "rule");
            push_str(out, &a.rule);
            key(out, &mut first, "labels");
            push_labels(out, &a.labels);
            key(out, &mut first, "points");
            push_list(out, &a.points, |out, (t, v, s)| {
                let _ = write!(out, "[{t},");
                push_number(out, *v);
                out.push(',');
                push_str(out, s.as_str());
                out.push(']');
            });
            out.push('}');
        });
    }
    out.push('}');
    out
}

/// Label pairs for display and JSON.
pub fn label_pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter().map(|Label { name, value }| (name.to_string(), value.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::file::{ParseOptions, parse_rule_file};

    fn groups_of(text: &str) -> Vec<Group> {
        let rf = parse_rule_file("r.yml", text, ParseOptions::default()).unwrap();
        rf.groups.iter().map(|g| Group::new("r.yml", g, 60_000, 0)).collect()
    }

    #[test]
    fn timeline_has_pending_firing_resolved_and_notifications() {
        let text = "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: High\n    expr: x > 5\n    for: 2m\n";
        let mut groups = groups_of(text);
        let head = Head::default();
        let x = Labels::from_pairs(&[("__name__", "x"), ("job", "a")]);
        // 10 for minutes 3..=8, 1 otherwise.
        for m in 0..=15 {
            let v = if (3..=8).contains(&m) { 10.0 } else { 1.0 };
            head.append_labels(&x, m * 60_000, v).unwrap();
        }
        let opts = BacktestOptions {
            from_ms: 0,
            to_ms: 15 * 60_000,
            step_ms: None,
            external_labels: Labels::from_pairs(&[("cluster", "eu")]),
            external_url: String::new(),
            resend_delay_ms: 60_000,
            capture_alert_values: true,
        };
        let mut calls = 0;
        let r = backtest(&mut groups, &head, &Engine::default(), &opts, None, &mut |d, t| {
            calls += 1;
            assert!(d <= t);
            ControlFlow::Continue(())
        });
        assert_eq!(r.evaluations, 16);
        assert_eq!(calls, 16);
        let steps: Vec<(i64, &str)> =
            r.transitions.iter().map(|t| (t.t / 60_000, t.to.as_str())).collect();
        assert_eq!(steps, vec![(3, "pending"), (5, "firing"), (9, "resolved")]);
        assert_eq!(r.transitions[1].value, 10.0);
        // Firing at 5 and re-sent after the resend delay; resolved at 9 and
        // re-sent while kept.
        let sent: Vec<i64> = r.notifications.iter().map(|n| n.t / 60_000).collect();
        assert_eq!(&sent[..4], &[5, 7, 9, 11]);
        let first = &r.notifications[0].alerts[0];
        assert_eq!(first.labels.get("cluster"), Some("eu"));
        assert_eq!((first.starts_at, first.resolved), (5 * 60_000, false));
        assert_eq!(first.ends_at, 9 * 60_000, "valid for 4 x max(interval, resend delay)");
        let resolved = &r.notifications[2].alerts[0];
        assert!(resolved.resolved);
        assert_eq!(resolved.ends_at, 9 * 60_000);
    }

    #[test]
    fn cancelled_pending_and_errors_are_reported_once() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: Blip\n    expr: x > 5\n    for: 5m\n  - record: bad\n    expr: x + on(job) group_left y\n";
        let mut groups = groups_of(text);
        let head = Head::default();
        let x = Labels::from_pairs(&[("__name__", "x"), ("job", "a")]);
        for (m, v) in [(0, 1.0), (1, 10.0), (2, 1.0), (3, 1.0)] {
            head.append_labels(&x, m * 60_000, v).unwrap();
        }
        for i in ["1", "2"] {
            let y = Labels::from_pairs(&[("__name__", "y"), ("job", "a"), ("i", i)]);
            head.append_labels(&y, 0, 1.0).unwrap();
        }
        let opts = BacktestOptions {
            from_ms: 0,
            to_ms: 3 * 60_000,
            step_ms: Some(60_000),
            external_labels: Labels::empty(),
            external_url: String::new(),
            resend_delay_ms: 60_000,
            capture_alert_values: true,
        };
        let r = backtest(&mut groups, &head, &Engine::default(), &opts, None, &mut |_, _| {
            ControlFlow::Continue(())
        });
        let steps: Vec<(i64, &str)> =
            r.transitions.iter().map(|t| (t.t / 60_000, t.to.as_str())).collect();
        assert_eq!(steps, vec![(1, "pending"), (2, "inactive")]);
        assert!(r.notifications.is_empty());
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert_eq!(r.errors[0].rule, "bad");
    }

    #[test]
    fn progress_can_stop_a_run() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 5\n";
        let mut groups = groups_of(text);
        let head = Head::default();
        let opts = BacktestOptions {
            from_ms: 0,
            to_ms: 60 * 60_000,
            step_ms: None,
            external_labels: Labels::empty(),
            external_url: String::new(),
            resend_delay_ms: 60_000,
            capture_alert_values: false,
        };
        let r = backtest(&mut groups, &head, &Engine::default(), &opts, None, &mut |done, _| {
            if done < 3 { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
        });
        assert!(r.stopped);
        assert_eq!(r.evaluations, 3);
        let r = backtest(&mut groups, &head, &Engine::default(), &opts, None, &mut |_, _| {
            ControlFlow::Continue(())
        });
        assert!(!r.stopped);
        assert_eq!(r.evaluations, 61);
    }

    /// Batched evaluation must be invisible: every rule form, data shape
    /// and error gives the same timeline, notifications, errors, values
    /// and recorded series as per-step queries.
    #[test]
    fn batched_evaluation_changes_nothing() {
        let rules = r#"
groups:
- name: direct
  interval: 1m
  rules:
  - alert: Fast
    expr: rate(c[5m]) > 0.5
    for: 3m
    keep_firing_for: 2m
    labels: {severity: '{{ if gt $value 1.0 }}page{{ else }}ticket{{ end }}'}
    annotations: {summary: '{{ $labels.job }} at {{ $value | humanize }}'}
  - record: job:c:rate1m
    expr: sum by (job) (rate(c[1m]))
  - alert: FromRecorded
    expr: job:c:rate1m > 1
  - alert: Absent
    expr: absent(g{job="gone"})
  - alert: Ratio
    expr: g / on(job) group_left h > 0.5
  - alert: OnlyDuplicatesSometimes
    expr: g + on(job) group_left dup
  - record: scalar_rule
    expr: scalar(sum(g)) * 2
  - alert: Offsets
    expr: max_over_time(g[10m:1m] offset 2m) > bool 3 == 1
  - alert: Pinned
    expr: g @ 600 > 1 and g @ start() > 0
  - alert: Alerts
    expr: count(ALERTS{alertstate="firing"}) > 0
  - alert: Sorted
    expr: topk(1, sort_desc(g)) and changes(g[10m]) > 0
- name: offset
  interval: 45s
  query_offset: 20s
  rules:
  - alert: Late
    expr: delta(g[3m]) < 0 or label_replace(h, "x", "$1", "job", "(.*)") > 2
    for: 1m
"#;
        let data = r#"
interval: 15s
input_series:
- series: 'c{job="a"}'
  values: '0+1x100 100+60x120 0+1x200'
- series: 'c{job="b"}'
  values: '_x50 0+2x150 stale 10+1x100'
- series: 'g{job="a"}'
  values: '1 2 3 4 5 4 3 2 1 0 1 2 3 4 5 6 7 _ _ _ 3+0.5x300'
- series: 'g{job="b"}'
  values: '5+0x40 stale _x20 7-0.25x200'
- series: 'h{job="a"}'
  values: '2+0x400'
- series: 'h{job="b"}'
  values: '1+0.1x100 _x100 4+0x200'
- series: 'dup{job="a", i="1"}'
  values: '1+0x400'
- series: 'dup{job="a", i="2"}'
  values: '_x120 1+0x20 _x300'
"#;
        let run = |step: Option<i64>, batch: bool| {
            let mut groups = groups_of(rules);
            let head = Head::default();
            load_data(&head, "data.yml", data.as_bytes()).unwrap();
            let opts = BacktestOptions {
                from_ms: 30_000,
                to_ms: 7_200_000,
                step_ms: step,
                external_labels: Labels::from_pairs(&[("cluster", "eu")]),
                external_url: String::new(),
                resend_delay_ms: 60_000,
                capture_alert_values: true,
            };
            let engine = Engine::default();
            let r = backtest_with(
                &mut groups,
                &head,
                &engine,
                &opts,
                None,
                &mut |_, _| ControlFlow::Continue(()),
                batch,
            );
            let stored = engine.range(&head, "{__name__=~'.+'}", 0, 7_300_000, 15_000).unwrap();
            (to_json(&r), format!("{:?}", stored.value), r)
        };
        for step in [None, Some(30_000), Some(7_000)] {
            let (json, stored, r) = run(step, true);
            let (want_json, want_stored, _) = run(step, false);
            assert!(json == want_json, "step {step:?}: timelines differ");
            assert!(stored == want_stored, "step {step:?}: stored series differ");
            // The data drives the rules through their states and errors.
            let rules: BTreeSet<&str> = r.transitions.iter().map(|t| t.rule.as_str()).collect();
            for name in ["Fast", "FromRecorded", "Absent", "Ratio", "Late", "Offsets"] {
                assert!(rules.contains(name), "step {step:?}: {name} never changed: {rules:?}");
            }
            assert!(
                r.errors.iter().any(|e| e.rule == "OnlyDuplicatesSometimes"),
                "step {step:?}: {:?}",
                r.errors
            );
        }
    }
}
