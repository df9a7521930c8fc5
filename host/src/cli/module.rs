//! `tocsin module upload|list|delete`: the module registry of a running
//! `tocsin serve`, over its HTTP API.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

pub struct Remote {
    /// Base URL of the service, e.g. http://127.0.0.1:9099.
    pub url: String,
    /// Bearer token for the write endpoints (also read from TOCSIN_TOKEN).
    pub token: Option<String>,
}

impl Remote {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let client = reqwest::Client::builder().no_proxy().build().unwrap_or_default();
        let mut req = client.request(method, format!("{}{path}", self.url.trim_end_matches('/')));
        if let Some(t) = self.token.clone().or_else(|| std::env::var("TOCSIN_TOKEN").ok()) {
            req = req.bearer_auth(t);
        }
        req
    }
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
}

/// Sends `req`; the `data` of a success, or the API's error as an error.
async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await.context("connecting to tocsin")?;
    let status = resp.status();
    let body = resp.bytes().await.context("reading the response")?;
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).trim().to_owned()));
    if !status.is_success() {
        let msg = v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
        bail!("{status}: {msg}");
    }
    Ok(v["data"].clone())
}

fn show(m: &Value) -> String {
    format!(
        "{:<24} {:>8} B  sha256:{}  {}  {}",
        m["name"].as_str().unwrap_or(""),
        m["size"],
        &m["sha256"].as_str().unwrap_or("")[..12.min(m["sha256"].as_str().unwrap_or("").len())],
        m["uploadedAt"].as_str().unwrap_or(""),
        m["description"].as_str().unwrap_or("")
    )
}

pub fn upload(
    remote: &Remote,
    file: &str,
    name: &str,
    description: &str,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let data = block_on(call(
        remote
            .request(reqwest::Method::POST, "/api/v1/modules")
            .query(&[("name", name), ("description", description)])
            .header("Content-Type", "application/wasm")
            .body(bytes),
    ))?;
    println!("uploaded {}", show(&data));
    Ok(ExitCode::SUCCESS)
}

pub fn list(remote: &Remote) -> anyhow::Result<ExitCode> {
    let data = block_on(call(remote.request(reqwest::Method::GET, "/api/v1/modules")))?;
    for m in data.as_array().into_iter().flatten() {
        println!("{}", show(m));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn delete(remote: &Remote, name: &str) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/modules/{name}");
    let data = block_on(call(remote.request(reqwest::Method::DELETE, &path)))?;
    println!("deleted {}", show(&data));
    Ok(ExitCode::SUCCESS)
}
