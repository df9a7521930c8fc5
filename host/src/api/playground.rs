//! The browser playground, built into the binary by `build.rs`: the page at
//! `/`, its scripts and the engine bundle next to it. Assets are served
//! gzip-compressed when the browser accepts it (the engine bundle is most of
//! the download) and are the same bytes `tocsin playground export` writes.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/playground_assets.rs"));

pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn serve(a: &Asset, headers: &HeaderMap) -> Response {
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let cache = [
        (header::CONTENT_TYPE, a.content_type),
        // The bundle changes with the binary; revalidate rather than risk a
        // page and an engine from different builds.
        (header::CACHE_CONTROL, "no-cache"),
        (header::VARY, "Accept-Encoding"),
    ];
    if gzip {
        (cache, [(header::CONTENT_ENCODING, "gzip")], a.gzip).into_response()
    } else {
        (cache, a.body).into_response()
    }
}

pub async fn index(headers: HeaderMap) -> Response {
    match asset("index.html") {
        Some(a) => serve(a, &headers),
        None => {
            (StatusCode::NOT_FOUND, "the playground is not built into this binary").into_response()
        }
    }
}

pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match asset(&name) {
        Some(a) => serve(a, &headers),
        // Browsers ask for it whatever the page says; no icon is no error.
        None if name == "favicon.ico" => StatusCode::NO_CONTENT.into_response(),
        None => super::text(StatusCode::NOT_FOUND, format!("404 page not found: /{name}\n")),
    }
}

/// Writes the playground as static files into `dir`.
pub fn export(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for a in ASSETS {
        let path = dir.join(a.name);
        std::fs::write(&path, a.body)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
