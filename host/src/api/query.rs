//! The query half of Prometheus's HTTP API: `query`, `query_range`, `series`,
//! `labels`, `label/<name>/values`. Handlers only translate: parameters in,
//! engine call, Prometheus-shaped JSON out. Queries run on the blocking pool
//! so a heavy one never stalls the scheduler or the ingestion endpoints.

use std::sync::Arc;

use tocsin_engine::labels::Str;
use tocsin_engine::labels::is_legacy_label_name;
use tocsin_engine::matcher::Matcher;
use tocsin_engine::promql::{QueryError, parse_series_selector};
use tocsin_engine::storage::{Queryable, SelectedSeries};

use super::params::{MAX_TIME, MIN_TIME, Params};
use super::{ApiError, ApiResult, json};
use crate::server::AppState;

/// A range query's default step is not defined by Prometheus (it is required);
/// an instant query's time defaults to now.
pub async fn query(state: Arc<AppState>, p: Params) -> ApiResult {
    let q = p.required("query")?.to_owned();
    let now = state.now_ms();
    let t = p.time("time", now)?;
    let engine = state.engine();
    let head = state.head.clone();
    let result = blocking(&state, move || engine.instant(&*head, &q, t)).await?;
    state.metrics.queries(1);
    Ok(json::query_result(&result))
}

pub async fn query_range(state: Arc<AppState>, p: Params) -> ApiResult {
    let q = p.required("query")?.to_owned();
    let start = p.time("start", i64::MIN).and_then(|t| required_time(t, "start"))?;
    let end = p.time("end", i64::MIN).and_then(|t| required_time(t, "end"))?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = p.duration("step")?.ok_or_else(|| {
        ApiError::bad_data("invalid parameter \"step\": cannot parse \"\" to a valid duration")
    })?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let engine = state.engine();
    let head = state.head.clone();
    let result = blocking(&state, move || engine.range(&*head, &q, start, end, step)).await?;
    state.metrics.queries(1);
    Ok(json::query_result(&result))
}

fn required_time(t: i64, name: &str) -> Result<i64, ApiError> {
    if t == i64::MIN {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"{name}\": cannot parse \"\" to a valid timestamp"
        )));
    }
    Ok(t)
}

/// Matcher sets of every `match[]`; empty when none was given.
fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut sets = Vec::new();
    for m in p.all("match[]") {
        sets.extend(parse_series_selector(m).map_err(|e| ApiError::bad_data(e.to_string()))?);
    }
    Ok(sets)
}

fn range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((p.time("start", MIN_TIME)?, p.time("end", MAX_TIME)?))
}

pub async fn series(state: Arc<AppState>, p: Params) -> ApiResult {
    let sets = selectors(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let head = state.head.clone();
    let found = blocking(&state, move || {
        let mut all: Vec<SelectedSeries> = Vec::new();
        for set in &sets {
            all.extend(head.select(set, start, end)?);
        }
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        all.dedup_by(|a, b| a.labels == b.labels);
        Ok::<_, QueryError>(all)
    })
    .await?;
    let mut out = String::from("[");
    for (i, s) in found.iter().take(limit).enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::push_labels(&mut out, &s.labels);
    }
    out.push(']');
    Ok(with_limit_warning(json::success(&out), found.len() > limit))
}

pub async fn label_names(state: Arc<AppState>, p: Params) -> ApiResult {
    let sets = selectors(&p)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let head = state.head.clone();
    let names = blocking(&state, move || union(&sets, |m| head.label_names(m, start, end))).await?;
    Ok(strings(&names, limit))
}

pub async fn label_values(state: Arc<AppState>, name: String, p: Params) -> ApiResult {
    // Prometheus accepts UTF-8 names encoded as `U__…`; legacy names are all
    // tocsin stores, so anything else is invalid here.
    if !is_legacy_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = selectors(&p)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let head = state.head.clone();
    let values =
        blocking(&state, move || union(&sets, |m| head.label_values(&name, m, start, end))).await?;
    Ok(strings(&values, limit))
}

/// Runs `f` for every matcher set (or once with none) and merges the sorted results.
fn union(
    sets: &[Vec<Matcher>],
    f: impl Fn(&[Matcher]) -> Result<Vec<Str>, tocsin_engine::storage::StorageError>,
) -> Result<Vec<Str>, QueryError> {
    if sets.is_empty() {
        return Ok(f(&[])?);
    }
    let mut all = Vec::new();
    for set in sets {
        all.extend(f(set)?);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(usize::MAX),
        Some(s) => match s.parse::<i64>() {
            Ok(0) => Ok(usize::MAX),
            Ok(n) if n > 0 => Ok(n as usize),
            _ => Err(ApiError::bad_data(format!("invalid parameter \"limit\": {s:?}"))),
        },
    }
}

fn strings(items: &[Str], limit: usize) -> String {
    let mut out = String::new();
    let shown: Vec<&str> = items.iter().take(limit).map(|s| &**s).collect();
    json::push_str_array(&mut out, &shown);
    with_limit_warning(json::success(&out), items.len() > limit)
}

fn with_limit_warning(mut body: String, truncated: bool) -> String {
    if truncated {
        body.pop();
        body.push_str(r#","warnings":["results truncated due to limit"]}"#);
    }
    body
}

/// Runs storage work on the blocking pool and maps its errors. A query past
/// the configured timeout answers 503 at once; its computation cannot be
/// interrupted and runs on to the end, bounded by `query_max_samples`.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let limit = state.query_timeout();
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(f)).await {
        Err(_) => Err(ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            kind: "timeout",
            message: format!("query timed out in expression evaluation (limit {limit:?})"),
        }),
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(ApiError::from_query(e)),
        Ok(Err(e)) => Err(ApiError::internal(format!("query task failed: {e}"))),
    }
}
