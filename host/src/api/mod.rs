//! The HTTP API: Prometheus's endpoints with its JSON shapes (so Grafana and
//! promtool-style clients work unchanged), ingestion, self-monitoring and
//! lifecycle endpoints. Built as `router(state)` so tests drive it in-process.

mod backtest;
mod ingest;
pub use tocsin_engine::json;
mod modules;
mod params;
pub mod playground;
mod query;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use tocsin_engine::promql::QueryError;

pub use params::Params;

use crate::server::AppState;

/// An API error in Prometheus's shape and with its status codes.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind: "bad_data", message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.into(),
        }
    }

    pub fn from_query(e: QueryError) -> Self {
        match e {
            QueryError::Parse(m) => ApiError::bad_data(m),
            QueryError::Eval(_) | QueryError::TooManySamples(_) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                kind: "execution",
                message: e.to_string(),
            },
            QueryError::Storage(e) => ApiError::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from(r#"{"status":"error","errorType":"#);
        json::push_str(&mut body, self.kind);
        body.push_str(r#","error":"#);
        json::push_str(&mut body, &self.message);
        body.push('}');
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// A handler's JSON body (already encoded) or its error.
pub type ApiResult = Result<String, ApiError>;

fn respond(r: ApiResult) -> Response {
    match r {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Declares an axum handler that reads Prometheus-style parameters (query
/// string and form body) and calls `$f(state, params)`.
macro_rules! with_params {
    ($name:ident, $f:path) => {
        async fn $name(
            State(s): State<Arc<AppState>>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            match Params::from_request(&method, &uri, &headers, &body) {
                Ok(p) => respond($f(s, p).await),
                Err(e) => e.into_response(),
            }
        }
    };
}

with_params!(h_query, query::query);
with_params!(h_query_range, query::query_range);
with_params!(h_series, query::series);
with_params!(h_labels, query::label_names);
with_params!(h_alerts, status::alerts);
with_params!(h_rules, status::rules);
with_params!(h_targets, status::targets);
with_params!(h_metadata, status::metadata);
with_params!(h_backtest, backtest::backtest_rules);

async fn h_label_values(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    match Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new()) {
        Ok(p) => respond(query::label_values(s, name, p).await),
        Err(e) => e.into_response(),
    }
}

/// Write endpoints need `Authorization: Bearer <token>` when a token is configured.
async fn require_token(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = s.bearer_token() {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized: this endpoint needs the bearer token from the config's auth section\n",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Comparing tokens in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.max_body_bytes();
    let writes = Router::new()
        .route("/api/v1/write", post(ingest::remote_write))
        .route("/api/v1/import/prometheus", post(ingest::import))
        .route("/-/reload", post(status::reload).put(status::reload))
        .route("/api/v1/modules", post(modules::upload))
        .route("/api/v1/modules/{name}", axum::routing::delete(modules::delete))
        // Not a write, but it runs arbitrary rules over sent data for as
        // long as they take: guarded like the endpoints that change things.
        .route("/api/v1/backtest", post(h_backtest))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/api/v1/query", get(h_query).post(h_query))
        .route("/api/v1/query_range", get(h_query_range).post(h_query_range))
        .route("/api/v1/series", get(h_series).post(h_series))
        .route("/api/v1/labels", get(h_labels).post(h_labels))
        .route("/api/v1/label/{name}/values", get(h_label_values))
        .route("/api/v1/rules", get(h_rules))
        .route("/api/v1/alerts", get(h_alerts))
        .route("/api/v1/targets", get(h_targets))
        .route("/api/v1/metadata", get(h_metadata))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/modules", get(modules::list))
        .route("/api/v1/modules/{name}", get(modules::get))
        .route("/metrics", get(status::metrics))
        .route("/-/healthy", get(status::healthy))
        .route("/-/ready", get(status::ready))
        .route("/", get(playground::index))
        .route("/status", get(status::index))
        .route("/{asset}", get(playground::file))
        .merge(writes)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn not_found(uri: Uri) -> Response {
    (StatusCode::NOT_FOUND, format!("404 page not found: {}\n", uri.path())).into_response()
}

/// A plain-text response (for the non-JSON endpoints).
pub fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body.into()).into_response()
}

#[cfg(test)]
mod tests;
