//! The alert state machine of one alerting rule, exactly as Prometheus runs it:
//! inactive → pending → firing, `for`, `keep_firing_for`, resolved alerts kept
//! for 15 minutes, `limit`, and the `ALERTS` / `ALERTS_FOR_STATE` series.

use std::collections::BTreeMap;

use crate::labels::{Labels, LabelsBuilder, METRIC_NAME};
use crate::promql::InstantSample;

/// How long a resolved alert is kept (and re-sent to Alertmanager).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

pub const ALERT_NAME_LABEL: &str = "alertname";
pub const ALERT_STATE_LABEL: &str = "alertstate";
pub const ALERTS_METRIC: &str = "ALERTS";
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of a rule. Times are ms since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    /// Sample labels without `__name__`, plus the rule's labels (expanded)
    /// and `alertname`.
    pub labels: Labels,
    /// Expanded annotations, sorted by name.
    pub annotations: Vec<(String, String)>,
    /// The expression's value at the last evaluation.
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    /// `endsAt` sent to Alertmanager for a still-firing alert.
    pub valid_until: Option<i64>,
    pub keep_firing_since: Option<i64>,
    /// The labels of its `ALERTS` series (for the state they name) and of
    /// its `ALERTS_FOR_STATE` series, built once rather than every step.
    series: Option<(AlertState, Labels, Labels)>,
}

impl Alert {
    /// Whether Prometheus's notifier would send this alert at `ts`.
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        // Resolved since the last send: send the resolution.
        if let Some(r) = self.resolved_at
            && self.last_sent_at.is_none_or(|s| r > s)
        {
            return true;
        }
        self.last_sent_at.is_none_or(|s| s + resend_delay_ms < ts)
    }
}

/// A candidate from the rule's expression: one output sample with its
/// expanded labels and annotations.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub value: f64,
}

/// The state of one alerting rule across evaluations.
#[derive(Clone, Debug, Default)]
pub struct AlertingState {
    /// Active alerts by label set (sorted, so iteration is deterministic).
    pub active: BTreeMap<Labels, Alert>,
    /// `for` state read back from storage after a restart, consumed by the
    /// next [`AlertingState::step`]; see [`ForStateRestore`].
    pub restore: Option<ForStateRestore>,
}

/// What `ALERTS_FOR_STATE` said about an alert before a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoredFor {
    /// The alert's `active_at` (ms; the series holds whole seconds).
    pub active_at: i64,
    /// The time of the series' last sample: when the old process last saw
    /// the alert active.
    pub last_seen: i64,
}

/// Restoring `for` state after a restart, as Prometheus's `RestoreForState`
/// does, with one deliberate difference: an alert whose `for` had already
/// elapsed (it was firing) comes back firing in the very first evaluation,
/// whatever its `for`, instead of showing pending for one cycle and, for
/// `for` shorter than the grace period, starting its wait over.
#[derive(Clone, Debug, Default)]
pub struct ForStateRestore {
    /// By alert label set (the series' labels without `__name__`).
    pub alerts: std::collections::HashMap<Labels, RestoredFor>,
    /// Prometheus's `rules.alert.for-outage-tolerance` (1h): older state is ignored.
    pub outage_tolerance_ms: i64,
    /// Prometheus's `rules.alert.for-grace-period` (10m): a pending alert
    /// gets at least this long after a restart before it fires.
    pub grace_ms: i64,
}

impl ForStateRestore {
    /// The `active_at` a new alert seen at `ts` starts with, or `None` to
    /// start afresh.
    fn active_at(&self, labels: &Labels, ts: i64, hold_ms: i64) -> Option<i64> {
        let r = self.alerts.get(labels)?;
        if ts - r.last_seen > self.outage_tolerance_ms || r.active_at > r.last_seen {
            return None;
        }
        let remaining = hold_ms - (r.last_seen - r.active_at);
        if remaining <= 0 {
            // Already firing before the restart: stays firing.
            return Some(r.active_at);
        }
        if hold_ms < self.grace_ms {
            return None;
        }
        if remaining < self.grace_ms {
            return Some(ts + self.grace_ms - hold_ms);
        }
        // The downtime does not count towards `for`.
        Some(r.active_at + (ts - r.last_seen))
    }
}

/// What one evaluation of an alerting rule produced.
#[derive(Debug, Default)]
pub struct AlertEval {
    /// `ALERTS` and `ALERTS_FOR_STATE` samples to write.
    pub series: Vec<InstantSample>,
}

/// Errors of an alerting rule's evaluation, worded as Prometheus words them.
pub const DUPLICATE_LABELSET: &str =
    "vector contains metrics with the same labelset after applying alert labels";

impl AlertingState {
    /// Runs one step of the state machine at `ts` with the expression's
    /// candidates. `query_offset_ms` shifts the written series' timestamps, as
    /// Prometheus's `query_offset` does.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        alert_name: &str,
        rule_labels: &Labels,
        candidates: Vec<Candidate>,
        ts: i64,
        query_offset_ms: i64,
        hold_ms: i64,
        keep_firing_for_ms: i64,
        limit: usize,
    ) -> Result<AlertEval, String> {
        let mut current: BTreeMap<Labels, Alert> = BTreeMap::new();
        for c in candidates {
            if current.contains_key(&c.labels) {
                return Err(DUPLICATE_LABELSET.into());
            }
            current.insert(
                c.labels.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels: c.labels,
                    annotations: c.annotations,
                    value: c.value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                    series: None,
                },
            );
        }
        let seen: Vec<Labels> = current.keys().cloned().collect();
        let restore = self.restore.take();
        for (labels, mut a) in current {
            match self.active.get_mut(&labels) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations;
                }
                _ => {
                    if let Some(at) =
                        restore.as_ref().and_then(|r| r.active_at(&labels, ts, hold_ms))
                    {
                        a.active_at = at;
                    }
                    self.active.insert(labels, a);
                }
            }
        }

        let mut out = AlertEval::default();
        let mut num_active = 0usize;
        let mut remove = Vec::new();
        let write_ts = ts - query_offset_ms;
        for (labels, a) in self.active.iter_mut() {
            if seen.binary_search(labels).is_err() {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    remove.push(labels.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            // A `for` that grew on reload sends a firing alert back to pending.
            if a.state == AlertState::Firing && ts - a.active_at < hold_ms {
                a.state = AlertState::Pending;
                a.fired_at = None;
                a.last_sent_at = None;
                a.keep_firing_since = None;
            }
            let (alerts, for_state) = match &a.series {
                Some((state, alerts, for_state)) if *state == a.state => {
                    (alerts.clone(), for_state.clone())
                }
                _ => {
                    let series = |metric, state| {
                        series_labels(rule_labels, &a.labels, alert_name, metric, state)
                    };
                    let alerts = series(ALERTS_METRIC, Some(a.state));
                    let for_state = match a.series.take() {
                        Some((_, _, for_state)) => for_state,
                        None => series(ALERTS_FOR_STATE_METRIC, None),
                    };
                    a.series = Some((a.state, alerts.clone(), for_state.clone()));
                    (alerts, for_state)
                }
            };
            out.series.push(InstantSample::float(alerts, write_ts, 1.0));
            // Whole seconds, as Go's time.Unix() gives them.
            let active_at = a.active_at.div_euclid(1000) as f64;
            out.series.push(InstantSample::float(for_state, write_ts, active_at));
        }
        for l in remove {
            self.active.remove(&l);
        }
        if limit > 0 && num_active > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {num_active} alerts"));
        }
        Ok(out)
    }

    /// Alerts that are pending or firing (not resolved).
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.resolved_at.is_none())
    }

    /// Marks the alerts Prometheus would send at `ts` as sent and returns
    /// copies of them, with `valid_until` = ts + 4 × max(interval, resend).
    pub fn take_to_send(&mut self, ts: i64, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                a.valid_until = Some(ts + 4 * interval_ms.max(resend_delay_ms));
                out.push(a.clone());
            }
        }
        out
    }

    /// The highest state of any alert: what the rules API shows per rule.
    pub fn max_state(&self) -> AlertState {
        self.active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }
}

/// `ALERTS{…}` / `ALERTS_FOR_STATE{…}` labels: the rule's labels, overridden
/// by the alert's, then the metric name, `alertname` and (for `ALERTS`) state.
fn series_labels(
    rule_labels: &Labels,
    alert_labels: &Labels,
    alert_name: &str,
    metric: &str,
    state: Option<AlertState>,
) -> Labels {
    let mut b = LabelsBuilder::new();
    for l in rule_labels.iter() {
        b.set(l.name.clone(), l.value.clone());
    }
    for l in alert_labels.iter() {
        b.set(l.name.clone(), l.value.clone());
    }
    b.set(METRIC_NAME, metric);
    b.set(ALERT_NAME_LABEL, alert_name);
    if let Some(s) = state {
        b.set(ALERT_STATE_LABEL, s.as_str());
    }
    b.labels()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(job: &str) -> Candidate {
        Candidate {
            labels: Labels::from_pairs(&[("alertname", "A"), ("job", job)]),
            annotations: vec![],
            value: 1.0,
        }
    }

    fn step(s: &mut AlertingState, c: Vec<Candidate>, ts: i64, hold: i64, keep: i64) -> AlertEval {
        s.step("A", &Labels::empty(), c, ts, 0, hold, keep, 0).unwrap()
    }

    #[test]
    fn pending_then_firing_then_resolved_and_forgotten() {
        let mut s = AlertingState::default();
        let out = step(&mut s, vec![cand("a")], 0, 120_000, 0);
        assert_eq!(s.max_state(), AlertState::Pending);
        assert_eq!(out.series.len(), 2);
        assert_eq!(out.series[0].labels.get("alertstate"), Some("pending"));
        step(&mut s, vec![cand("a")], 60_000, 120_000, 0);
        assert_eq!(s.max_state(), AlertState::Pending);
        step(&mut s, vec![cand("a")], 120_000, 120_000, 0);
        assert_eq!(s.max_state(), AlertState::Firing);
        let a = s.active_alerts().next().unwrap();
        assert_eq!((a.active_at, a.fired_at), (0, Some(120_000)));
        // Condition clears: resolved, kept 15m, then dropped.
        let out = step(&mut s, vec![], 180_000, 120_000, 0);
        assert!(out.series.is_empty());
        assert_eq!(s.active_alerts().count(), 0);
        assert_eq!(s.active.len(), 1);
        step(&mut s, vec![], 180_000 + RESOLVED_RETENTION_MS, 120_000, 0);
        assert_eq!(s.active.len(), 1, "kept for exactly the retention");
        step(&mut s, vec![], 181_000 + RESOLVED_RETENTION_MS, 120_000, 0);
        assert!(s.active.is_empty());
    }

    #[test]
    fn pending_alerts_vanish_at_once() {
        let mut s = AlertingState::default();
        step(&mut s, vec![cand("a")], 0, 120_000, 0);
        step(&mut s, vec![], 60_000, 120_000, 0);
        assert!(s.active.is_empty());
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut s = AlertingState::default();
        step(&mut s, vec![cand("a")], 0, 0, 120_000);
        assert_eq!(s.max_state(), AlertState::Firing);
        let out = step(&mut s, vec![], 60_000, 0, 120_000);
        assert_eq!(s.max_state(), AlertState::Firing);
        assert_eq!(out.series.len(), 2);
        step(&mut s, vec![], 120_000, 0, 120_000);
        assert_eq!(s.max_state(), AlertState::Firing);
        step(&mut s, vec![], 180_000, 0, 120_000);
        assert_eq!(s.max_state(), AlertState::Inactive);
        assert_eq!(s.active.values().next().unwrap().resolved_at, Some(180_000));
    }

    #[test]
    fn limit_and_duplicates_are_errors() {
        let mut s = AlertingState::default();
        let e = s.step("A", &Labels::empty(), vec![cand("a"), cand("b")], 0, 0, 0, 0, 1);
        assert_eq!(e.unwrap_err(), "exceeded limit of 1 with 2 alerts");
        assert!(s.active.is_empty());
        let e = s.step("A", &Labels::empty(), vec![cand("a"), cand("a")], 0, 0, 0, 0, 0);
        assert_eq!(e.unwrap_err(), DUPLICATE_LABELSET);
    }

    #[test]
    fn sending_follows_resend_delay_and_resolution() {
        let mut s = AlertingState::default();
        step(&mut s, vec![cand("a")], 0, 0, 0);
        assert_eq!(s.take_to_send(0, 60_000, 15_000).len(), 1);
        assert_eq!(s.active.values().next().unwrap().valid_until, Some(240_000));
        assert!(s.take_to_send(30_000, 60_000, 15_000).is_empty());
        assert_eq!(s.take_to_send(61_000, 60_000, 15_000).len(), 1);
        step(&mut s, vec![], 75_000, 0, 0);
        let sent = s.take_to_send(75_000, 60_000, 15_000);
        assert_eq!(sent[0].resolved_at, Some(75_000));
    }
}
