//! Ingestion endpoints: Prometheus remote write 1.0 and text-format import.
//!
//! Both acknowledge only after the write-ahead log is on disk, so a sample
//! the client saw accepted survives `kill -9`. Storage refusals (out of
//! order, duplicate, older than retention) never fail silently: the rest of
//! the request is kept, and the response is a 400 that counts each kind, so
//! a remote-write sender drops the batch instead of retrying it forever.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use tocsin_engine::exposition::{Format, Ingester};
use tocsin_engine::remote_write;

use super::text;
use crate::server::{AppState, wall_clock_ms};

/// What a request appended and what storage refused.
#[derive(Default)]
struct Outcome {
    appended: u64,
    out_of_order: u64,
    duplicate: u64,
    out_of_bounds: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn rejected(&self) -> u64 {
        self.out_of_order + self.duplicate + self.out_of_bounds
    }

    fn count(&self, state: &AppState, source: &str) {
        state.metrics.ingested(source, self.appended);
        state.metrics.rejected(source, "out_of_order", self.out_of_order);
        state.metrics.rejected(source, "duplicate", self.duplicate);
        state.metrics.rejected(source, "out_of_bounds", self.out_of_bounds);
    }

    async fn respond(self, state: &AppState, source: &str) -> Response {
        self.count(state, source);
        if self.appended > 0
            && let Err(e) = state.sync_wal().await
        {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("samples appended but not made durable: {e}\n"),
            );
        }
        if self.rejected() == 0 {
            return text(StatusCode::NO_CONTENT, "");
        }
        let mut msg = format!(
            "{} samples rejected ({} out of order, {} duplicate, {} older than retention); {} appended",
            self.rejected(),
            self.out_of_order,
            self.duplicate,
            self.out_of_bounds,
            self.appended
        );
        if let Some(e) = self.first_error {
            msg.push_str("; first: ");
            msg.push_str(&e);
        }
        msg.push('\n');
        text(StatusCode::BAD_REQUEST, msg)
    }
}

fn bad(state: &AppState, endpoint: &str, msg: String) -> Response {
    state.metrics.bad_request(endpoint);
    text(StatusCode::BAD_REQUEST, msg + "\n")
}

/// `POST /api/v1/write`: snappy-compressed protobuf WriteRequest. Valid
/// series are stored even when others are refused (the 400 then says what
/// and how many), since the head cannot roll a request back and a sender
/// would only re-send the same refused samples.
pub async fn remote_write(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let limit = s.max_body_bytes();
    let req = match remote_write::decode_request(&body, limit) {
        Ok(req) => req,
        Err(e) => {
            s.metrics.bad_request("remote_write");
            let status = StatusCode::from_u16(e.status_hint()).unwrap_or(StatusCode::BAD_REQUEST);
            return text(status, format!("bad remote-write request: {e}\n"));
        }
    };
    let head = s.head.clone();
    // Samples more than 10 minutes ahead of this clock are refused, as in Prometheus.
    let max_t = wall_clock_ms() + 600_000;
    let report =
        tokio::task::spawn_blocking(move || remote_write::append_request(&head, &req, max_t)).await;
    let Ok(report) = report else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "append task failed\n");
    };
    s.metrics.ingested("remote_write", report.appended as u64);
    s.metrics.rejected("remote_write", "out_of_order", report.out_of_order as u64);
    s.metrics.rejected("remote_write", "duplicate", report.duplicate as u64);
    s.metrics.rejected("remote_write", "out_of_bounds", report.out_of_bounds as u64);
    s.metrics.rejected(
        "remote_write",
        "invalid",
        (report.invalid_samples + report.histograms) as u64,
    );
    if report.appended > 0
        && let Err(e) = s.sync_wal().await
    {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("samples appended but not made durable: {e}\n"),
        );
    }
    match report.error_message() {
        None => text(StatusCode::NO_CONTENT, ""),
        Some(msg) => text(StatusCode::BAD_REQUEST, msg + "\n"),
    }
}

/// `POST /api/v1/import/prometheus`: exposition text, each line with an
/// optional millisecond timestamp (the request time otherwise). A malformed
/// line refuses the whole body, naming its line and column, and appends nothing.
pub async fn import(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let limit = s.max_body_bytes();
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzipped {
        let mut out = Vec::new();
        let read =
            flate2::read::GzDecoder::new(&body[..]).take(limit as u64 + 1).read_to_end(&mut out);
        match read {
            Ok(n) if n > limit => {
                return bad(
                    &s,
                    "import",
                    format!("body larger than {limit} bytes once decompressed"),
                );
            }
            Ok(_) => out,
            Err(e) => return bad(&s, "import", format!("bad gzip body: {e}")),
        }
    } else {
        body.to_vec()
    };
    let format = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_content_type)
        .unwrap_or(Format::PrometheusText);
    let head = s.head.clone();
    let now = wall_clock_ms();
    let result = tokio::task::spawn_blocking(move || {
        // A fresh ingester: imports are not scrapes, so series missing from
        // one request must not be marked stale by the next.
        Ingester::new().ingest(&head, &body, format, now)
    })
    .await;
    match result {
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "import task failed\n"),
        Ok(Err(e)) => bad(&s, "import", format!("bad exposition text: {e}")),
        Ok(Ok(r)) => {
            Outcome {
                appended: r.appended as u64,
                out_of_order: r.out_of_order as u64,
                duplicate: r.duplicate as u64,
                out_of_bounds: r.out_of_bounds as u64,
                first_error: None,
            }
            .respond(&s, "import")
            .await
        }
    }
}
