//! Rules, alerts, targets and build information in Prometheus's JSON shapes;
//! `/metrics`, health, readiness and reload.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use tocsin_engine::Labels;
use tocsin_engine::duration::{format_duration, format_rfc3339};
use tocsin_engine::gofmt::format_float;
use tocsin_engine::rules::{Alert, AlertState};

use super::json::{push_labels, push_str};
use super::{ApiResult, Params, json, text};
use crate::server::AppState;

fn push_pairs(out: &mut String, pairs: &[(String, String)]) {
    let labels = Labels::from_pairs(pairs);
    push_labels(out, &labels);
}

fn push_time(out: &mut String, ms: Option<i64>) {
    // Go's zero time, as Prometheus prints a rule never evaluated.
    let s = ms.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), format_rfc3339);
    push_str(out, &s);
}

fn push_alert(out: &mut String, a: &Alert) {
    out.push_str(r#"{"labels":"#);
    push_labels(out, &a.labels);
    out.push_str(r#","annotations":"#);
    push_pairs(out, &a.annotations);
    out.push_str(r#","state":"#);
    push_str(out, a.state.as_str());
    out.push_str(r#","activeAt":"#);
    push_time(out, Some(a.active_at));
    if let Some(k) = a.keep_firing_since {
        out.push_str(r#","keepFiringSince":"#);
        push_time(out, Some(k));
    }
    out.push_str(r#","value":"#);
    push_str(out, &format_float(a.value, b'e', -1));
    out.push('}');
}

fn active(a: &Alert) -> bool {
    a.state != AlertState::Inactive
}

pub async fn alerts(state: Arc<AppState>, _p: Params) -> ApiResult {
    let mut out = String::from(r#"{"alerts":["#);
    let mut first = true;
    for g in state.scheduler.snapshots() {
        for r in g.rules.iter().filter(|r| r.alerting) {
            for a in r.alerts.iter().filter(|a| active(a)) {
                if !first {
                    out.push(',');
                }
                first = false;
                push_alert(&mut out, a);
            }
        }
    }
    out.push_str("]}");
    Ok(json::success(&out))
}

pub async fn rules(state: Arc<AppState>, p: Params) -> ApiResult {
    let want_type = p.get("type");
    let names = p.all("rule_name[]");
    let groups = p.all("rule_group[]");
    let files = p.all("file[]");
    let mut out = String::from(r#"{"groups":["#);
    let mut first_group = true;
    for g in state.scheduler.snapshots() {
        if (!groups.is_empty() && !groups.contains(&g.name.as_str()))
            || (!files.is_empty() && !files.contains(&g.file.as_str()))
        {
            continue;
        }
        if !first_group {
            out.push(',');
        }
        first_group = false;
        out.push_str(r#"{"name":"#);
        push_str(&mut out, &g.name);
        out.push_str(r#","file":"#);
        push_str(&mut out, &g.file);
        out.push_str(r#","rules":["#);
        let mut first_rule = true;
        for r in &g.rules {
            let kind_ok = match want_type {
                Some("alert") => r.alerting,
                Some("record") => !r.alerting,
                _ => true,
            };
            if !kind_ok || (!names.is_empty() && !names.contains(&r.name.as_str())) {
                continue;
            }
            if !first_rule {
                out.push(',');
            }
            first_rule = false;
            out.push('{');
            if r.alerting {
                let st = r.alerts.iter().map(|a| a.state).max().unwrap_or(AlertState::Inactive);
                out.push_str(r#""state":"#);
                push_str(&mut out, st.as_str());
                out.push(',');
            }
            out.push_str(r#""name":"#);
            push_str(&mut out, &r.name);
            out.push_str(r#","query":"#);
            push_str(&mut out, &r.query);
            if r.alerting {
                let _ = write!(
                    out,
                    r#","duration":{},"keepFiringFor":{}"#,
                    r.for_ms as f64 / 1000.0,
                    r.keep_firing_for_ms as f64 / 1000.0
                );
            }
            out.push_str(r#","labels":"#);
            push_pairs(&mut out, &r.labels);
            if r.alerting {
                out.push_str(r#","annotations":"#);
                push_pairs(&mut out, &r.annotations);
                out.push_str(r#","alerts":["#);
                for (i, a) in r.alerts.iter().filter(|a| active(a)).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_alert(&mut out, a);
                }
                out.push(']');
            }
            out.push_str(r#","health":"#);
            push_str(&mut out, r.health.as_str());
            if let Some(e) = &r.last_error {
                out.push_str(r#","lastError":"#);
                push_str(&mut out, e);
            }
            let _ = write!(out, r#","evaluationTime":{}"#, r.eval_duration_ns as f64 / 1e9);
            out.push_str(r#","lastEvaluation":"#);
            push_time(&mut out, r.last_eval_ms);
            out.push_str(r#","type":"#);
            push_str(&mut out, if r.alerting { "alerting" } else { "recording" });
            out.push('}');
        }
        let _ = write!(
            out,
            r#"],"interval":{},"limit":{},"evaluationTime":{},"lastEvaluation":"#,
            g.interval_ms as f64 / 1000.0,
            g.limit,
            g.eval_duration.as_secs_f64()
        );
        push_time(&mut out, g.last_eval_wall_ms);
        out.push('}');
    }
    out.push_str("]}");
    Ok(json::success(&out))
}

pub async fn targets(state: Arc<AppState>, p: Params) -> ApiResult {
    let want = p.get("state").unwrap_or("any");
    let mut out = String::from(r#"{"activeTargets":["#);
    if want == "any" || want == "active" {
        for (i, t) in state.scrapes.statuses().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(r#"{"discoveredLabels":"#);
            push_labels(&mut out, &t.discovered);
            out.push_str(r#","labels":"#);
            push_labels(&mut out, &t.labels);
            out.push_str(r#","scrapePool":"#);
            push_str(&mut out, &t.job);
            out.push_str(r#","scrapeUrl":"#);
            push_str(&mut out, &t.url);
            out.push_str(r#","globalUrl":"#);
            push_str(&mut out, &t.url);
            out.push_str(r#","lastError":"#);
            push_str(&mut out, &t.last_error);
            out.push_str(r#","lastScrape":"#);
            push_time(&mut out, t.last_scrape_ms);
            let _ = write!(out, r#","lastScrapeDuration":{}"#, t.last_duration.as_secs_f64());
            out.push_str(r#","health":"#);
            push_str(&mut out, t.health.as_str());
            out.push_str(r#","scrapeInterval":"#);
            push_str(&mut out, &format_duration(t.interval_ms));
            out.push_str(r#","scrapeTimeout":"#);
            push_str(&mut out, &format_duration(t.timeout_ms));
            out.push('}');
        }
    }
    out.push_str(r#"],"droppedTargets":[]}"#);
    Ok(json::success(&out))
}

/// Metric metadata from the targets' `# TYPE`, `# HELP` and `# UNIT` lines,
/// distinct entries per metric, as Prometheus's `/api/v1/metadata`.
pub async fn metadata(state: Arc<AppState>, p: Params) -> ApiResult {
    use std::collections::BTreeMap;
    let only = p.get("metric");
    let limit = p.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|&l| l > 0);
    let mut by_metric: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for t in state.scrapes.statuses() {
        for m in t.metadata.iter() {
            if only.is_some_and(|o| o != m.metric) {
                continue;
            }
            let entry = (m.metric_type.clone(), m.help.clone(), m.unit.clone());
            let list = by_metric.entry(m.metric.clone()).or_default();
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
    }
    let mut out = String::from("{");
    for (i, (metric, list)) in by_metric.iter().enumerate() {
        if limit.is_some_and(|l| i as i64 >= l) {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, metric);
        out.push_str(":[");
        for (j, (ty, help, unit)) in list.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"type":"#);
            push_str(&mut out, ty);
            out.push_str(r#","help":"#);
            push_str(&mut out, help);
            out.push_str(r#","unit":"#);
            push_str(&mut out, unit);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    Ok(json::success(&out))
}

pub async fn buildinfo() -> Response {
    let mut out = String::from(r#"{"version":"#);
    push_str(&mut out, env!("CARGO_PKG_VERSION"));
    out.push_str(r#","revision":"","branch":"","buildUser":"","buildDate":"","goVersion":"none (tocsin is written in Rust)"}"#);
    ([(header::CONTENT_TYPE, "application/json")], json::success(&out)).into_response()
}

pub async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let body = s.encode_metrics();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
        .into_response()
}

pub async fn healthy() -> Response {
    text(StatusCode::OK, "tocsin is Healthy.\n")
}

pub async fn ready(State(s): State<Arc<AppState>>) -> Response {
    if s.is_ready() {
        text(StatusCode::OK, "tocsin is Ready.\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
    }
}

pub async fn reload(State(s): State<Arc<AppState>>) -> Response {
    match s.reload().await {
        Ok(()) => text(StatusCode::OK, ""),
        Err(e) => {
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n"))
        }
    }
}

/// The start page: until the playground lands, a status overview that links
/// every API and lists targets, rule groups and active alerts.
pub async fn index(State(s): State<Arc<AppState>>) -> Html<String> {
    let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut h = String::from(
        "<!doctype html><meta charset=utf-8><title>tocsin</title>\
         <style>body{font:14px system-ui;margin:2em}td,th{padding:2px 8px;text-align:left}</style>\
         <h1>tocsin</h1><p>Prometheus-compatible API: \
         <a href=api/v1/targets>targets</a> · <a href=api/v1/rules>rules</a> · \
         <a href=api/v1/alerts>alerts</a> · <a href=metrics>metrics</a></p><h2>Targets</h2><table>\
         <tr><th>job<th>url<th>health<th>last error</tr>",
    );
    for t in s.scrapes.statuses() {
        let _ = write!(
            h,
            "<tr><td>{}<td>{}<td>{}<td>{}</tr>",
            esc(&t.job),
            esc(&t.url),
            t.health.as_str(),
            esc(&t.last_error)
        );
    }
    h.push_str("</table><h2>Rule groups</h2><table><tr><th>group<th>file<th>rules<th>alerts</tr>");
    for g in s.scheduler.snapshots() {
        let alerts: usize =
            g.rules.iter().map(|r| r.alerts.iter().filter(|a| active(a)).count()).sum();
        let _ = write!(
            h,
            "<tr><td>{}<td>{}<td>{}<td>{}</tr>",
            esc(&g.name),
            esc(&g.file),
            g.rules.len(),
            alerts
        );
    }
    h.push_str("</table>");
    Html(h)
}
