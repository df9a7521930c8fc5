//! `POST /api/v1/backtest`: rules previewed over data sent with the request,
//! or over the service's own, in a head of the run's own, so the service's
//! stored series and alerts are never touched.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;

use tocsin_engine::Labels;
use tocsin_engine::rules::backtest::{
    BacktestOptions, backtest, evaluation_count, head_options, load_data_bounded, to_json,
};
use tocsin_engine::storage::Head;

use super::{ApiError, ApiResult, Params, json};
use crate::server::AppState;

/// The most group evaluations one request may ask for: a group at a 1m
/// interval over about 70 days. The CLI allows more; a service shares its
/// cores with scraping and rule evaluation.
const MAX_EVALUATIONS: u64 = 100_000;

/// The most samples a run loads: sent data may expand to (expanding notation
/// makes a small request stand for many samples), or copies out of the
/// service's storage. About 160 MB while loading.
const MAX_DATA_SAMPLES: usize = 10_000_000;

pub async fn backtest_rules(state: Arc<AppState>, p: Params) -> ApiResult {
    let rules = p.required("rules")?.to_owned();
    let data = p.get("data").map(str::to_owned);
    let start = p.time("start", i64::MIN)?;
    let end = p.time("end", i64::MIN)?;
    let step = p.duration("step")?;
    let defaults = state.backtest_defaults();
    let external_labels = match p.all("external_label") {
        given if given.is_empty() => defaults.external_labels.clone(),
        given => {
            let mut pairs = Vec::new();
            for kv in given {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    ApiError::bad_data(format!(
                        "invalid parameter \"external_label\": {kv:?} is not NAME=VALUE"
                    ))
                })?;
                pairs.push((k.to_owned(), v.to_owned()));
            }
            Labels::from_pairs(&pairs)
        }
    };
    let mut groups = crate::backtest::parse_groups(
        &[("rules".to_owned(), rules)],
        defaults.evaluation_interval_ms,
    )
    .map_err(|problems| ApiError::bad_data(problems.join("\n")))?;
    if data.is_none() && (start == i64::MIN || end == i64::MIN) {
        return Err(ApiError::bad_data(
            "invalid parameter \"start\"/\"end\": both are needed to backtest over the service's own data",
        ));
    }
    let limit = state.query_timeout();
    let deadline = Instant::now() + limit;
    let live = state.head.clone();
    let engine = state.engine();
    let wasm = state.wasm.clone();
    // Loading or copying data and evaluating take CPU time: off the async workers.
    let run = move || -> Result<String, ApiError> {
        let head = Head::new(head_options());
        match &data {
            Some(d) => load_data_bounded(&head, "data", d.as_bytes(), MAX_DATA_SAMPLES)
                .map_err(ApiError::bad_data)?,
            None => {
                crate::backtest::copy_inputs(&groups, &live, &head, MAX_DATA_SAMPLES)
                    .map_err(ApiError::bad_data)?;
            }
        }
        let stats = head.stats();
        let (from_ms, to_ms) = match (start, end, stats.min_time, stats.max_time) {
            (i64::MIN, _, None, _) | (_, i64::MIN, _, None) => {
                return Err(ApiError::bad_data("the data holds no samples"));
            }
            (s, e, min, max) => (
                if s == i64::MIN { min.unwrap_or(s) } else { s },
                if e == i64::MIN { max.unwrap_or(e) } else { e },
            ),
        };
        let opts = BacktestOptions {
            from_ms,
            to_ms,
            step_ms: step,
            external_labels,
            external_url: defaults.external_url,
            resend_delay_ms: defaults.resend_delay_ms,
            capture_alert_values: false,
        };
        crate::backtest::check(&groups, &opts, MAX_EVALUATIONS).map_err(ApiError::bad_data)?;
        let result = backtest(&mut groups, &head, &engine, &opts, Some(&*wasm), &mut |_, _| {
            if Instant::now() < deadline {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        if result.stopped {
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "timeout",
                message: format!(
                    "backtest timed out after {} of {} evaluations (limit {limit:?}, the config's limits.query_timeout)",
                    result.evaluations,
                    evaluation_count(&groups, &opts)
                ),
            });
        }
        Ok(json::success(&to_json(&result)))
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(format!("backtest task failed: {e}"))),
    }
}
