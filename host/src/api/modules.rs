//! The module registry API: upload (`POST /api/v1/modules?name=N`, the
//! `.wasm` bytes as the body), list, show and delete rule modules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiError;
use super::json::{push_str, success};
use crate::server::AppState;
use crate::wasm::registry::{ModuleInfo, Registry, RegistryError};

fn registry(s: &AppState) -> Result<&Arc<Registry>, ApiError> {
    s.modules.get().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "unavailable",
        message: "the module registry is not open".into(),
    })
}

fn info_json(out: &mut String, m: &ModuleInfo) {
    out.push_str(r#"{"name":"#);
    push_str(out, &m.name);
    out.push_str(r#","sha256":"#);
    push_str(out, &m.sha256);
    out.push_str(&format!(r#","size":{},"uploadedAt":"#, m.size));
    push_str(out, &tocsin_engine::duration::format_rfc3339(m.uploaded_at_ms));
    out.push_str(r#","description":"#);
    push_str(out, &m.description);
    out.push('}');
}

fn ok(m: &ModuleInfo) -> Response {
    let mut out = String::new();
    info_json(&mut out, m);
    ([(axum::http::header::CONTENT_TYPE, "application/json")], success(&out)).into_response()
}

fn error(e: RegistryError) -> Response {
    let status = match e {
        RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
        RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
        RegistryError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let kind = match status {
        StatusCode::BAD_REQUEST => "bad_data",
        StatusCode::NOT_FOUND => "not_found",
        _ => "internal",
    };
    ApiError { status, kind, message: e.to_string() }.into_response()
}

#[derive(Deserialize)]
pub struct UploadParams {
    name: Option<String>,
    #[serde(default)]
    description: String,
}

pub async fn upload(
    State(s): State<Arc<AppState>>,
    Query(p): Query<UploadParams>,
    body: Bytes,
) -> Response {
    let reg = match registry(&s) {
        Ok(r) => r.clone(),
        Err(e) => return e.into_response(),
    };
    let Some(name) = p.name.filter(|n| !n.is_empty()) else {
        return ApiError::bad_data("missing the module name: POST /api/v1/modules?name=NAME")
            .into_response();
    };
    let now = s.now_ms();
    // Compiling takes tens of milliseconds to seconds: off the async workers.
    let r =
        tokio::task::spawn_blocking(move || reg.upload(&name, &body, &p.description, now)).await;
    match r {
        Ok(Ok(info)) => ok(&info),
        Ok(Err(e)) => error(e),
        Err(e) => ApiError::internal(format!("upload task failed: {e}")).into_response(),
    }
}

pub async fn list(State(s): State<Arc<AppState>>) -> Response {
    let reg = match registry(&s) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut out = String::from("[");
    for (i, m) in reg.list().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        info_json(&mut out, m);
    }
    out.push(']');
    ([(axum::http::header::CONTENT_TYPE, "application/json")], success(&out)).into_response()
}

pub async fn get(State(s): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match registry(&s) {
        Err(e) => e.into_response(),
        Ok(reg) => match reg.get(&name) {
            Some(m) => ok(&m),
            None => error(RegistryError::NotFound(name)),
        },
    }
}

pub async fn delete(State(s): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match registry(&s) {
        Err(e) => e.into_response(),
        Ok(reg) => match reg.delete(&name) {
            Ok(m) => ok(&m),
            Err(e) => error(e),
        },
    }
}
