//! A WASM rule in `tocsin serve`, end to end: the SDK's `hysteresis` example
//! built for wasm32, uploaded through the module API, evaluated by wasmtime
//! over data scraped from a real HTTP target, alerts delivered directly in
//! Alertmanager's webhook format, and the module's own state (which series
//! are firing) surviving `kill -9` and a restart.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use tocsin_tests::{TempDir, build_example_rules, free_port, start_tocsin, tocsin_bin, wait_ready};

const LIMIT: Duration = Duration::from_secs(30);

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

async fn json(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.expect("request");
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

/// The state of the `QueueBacklog` alert, and the rule's health and error.
async fn rule(client: &reqwest::Client, base: &str) -> (String, String, String) {
    let v = json(client, &format!("{base}/api/v1/rules")).await;
    let r = &v["data"]["groups"][0]["rules"][0];
    let s = |x: &Value| x.as_str().unwrap_or("").to_owned();
    (s(&r["state"]), s(&r["health"]), s(&r["lastError"]))
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let begin = Instant::now();
    while !f().await {
        assert!(begin.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_module_alerts_and_keeps_its_state_across_a_crash() {
    let wasm = std::fs::read(build_example_rules().join("hysteresis.wasm")).expect("built module");
    let dir = TempDir::new("wasm-e2e");
    let depth = Arc::new(AtomicU64::new(50f64.to_bits()));
    let d = depth.clone();
    let target = serve(Router::new().route(
        "/metrics",
        get(move || {
            let v = f64::from_bits(d.load(Ordering::SeqCst));
            async move { format!("queue_depth{{queue=\"orders\"}} {v}\n") }
        }),
    ))
    .await;
    let inbox: Arc<Mutex<Vec<Value>>> = Arc::default();
    let i = inbox.clone();
    let hook = serve(Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let i = i.clone();
            async move {
                i.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                ""
            }
        }),
    ))
    .await;
    std::fs::write(
        dir.path().join("rules.yml"),
        r#"groups:
  - name: queues
    rules:
      - alert: QueueBacklog
        wasm: hysteresis
        config: {metric: queue_depth, high: 100, low: 20}
        for: 2s
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.queue }} has {{ $value }} queued"
"#,
    )
    .unwrap();
    let config = dir.path().join("tocsin.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  resend_delay: 2s
  webhooks:
    - url: http://{hook}/hook
scrape_configs:
  - job_name: queues
    static_configs:
      - targets: ["{target}"]
"#
        ),
    )
    .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut tocsin = start_tocsin(dir.path(), Some(&config), port, "1");
    wait_ready(&client, &base, &mut tocsin).await;

    // Before the upload the rule fails, and says why.
    until("the missing-module error", || async {
        let (_, health, err) = rule(&client, &base).await;
        health == "err" && err.contains("no module named \"hysteresis\"")
    })
    .await;
    // Uploaded with the CLI, as a user would; a broken file is refused with why.
    let wasm_path = dir.path().join("hysteresis.wasm");
    std::fs::write(&wasm_path, &wasm).unwrap();
    let cli = |args: &[&str]| {
        Command::new(tocsin_bin()).args(args).args(["--url", &base]).output().expect("tocsin runs")
    };
    let up = cli(&["module", "upload", wasm_path.to_str().unwrap(), "--name", "hysteresis"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let bad = cli(&["module", "upload", junk.to_str().unwrap(), "--name", "x"]);
    assert!(!bad.status.success());
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("400") && why.contains("not a valid WebAssembly module"), "{why}");
    let list = cli(&["module", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).starts_with("hysteresis "));

    until("the rule healthy and inactive at 50", || async {
        rule(&client, &base).await == ("inactive".into(), "ok".into(), String::new())
    })
    .await;
    depth.store(150f64.to_bits(), Ordering::SeqCst);
    until("firing above high", || async { rule(&client, &base).await.0 == "firing" }).await;
    until("the webhook notification", || async {
        inbox.lock().unwrap().iter().any(|v| {
            v["status"] == "firing"
                && v["alerts"][0]["labels"]["queue"] == "orders"
                && v["alerts"][0]["annotations"]["summary"] == "orders has 150 queued"
        })
    })
    .await;
    // Between low and high: a PromQL threshold would resolve, the module's
    // hysteresis keeps it firing.
    depth.store(50f64.to_bits(), Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rule(&client, &base).await.0, "firing");

    // kill -9: the module comes back from the registry, and its state
    // (this series is firing) from the data directory, so 50 still fires.
    tocsin.kill9();
    let mut tocsin = start_tocsin(dir.path(), Some(&config), port, "2");
    wait_ready(&client, &base, &mut tocsin).await;
    let modules = json(&client, &format!("{base}/api/v1/modules")).await;
    assert_eq!(modules["data"][0]["name"], "hysteresis", "{modules}");
    until("firing again after the restart", || async { rule(&client, &base).await.0 == "firing" })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (state, health, err) = rule(&client, &base).await;
    assert_eq!((state.as_str(), health.as_str()), ("firing", "ok"), "{err}");

    depth.store(10f64.to_bits(), Ordering::SeqCst);
    until("resolved below low", || async { rule(&client, &base).await.0 == "inactive" }).await;
    until("the resolved notification", || async {
        inbox.lock().unwrap().iter().any(|v| v["status"] == "resolved")
    })
    .await;
    assert!(tocsin.terminate(Duration::from_secs(20)), "clean shutdown:\n{}", tocsin.log());
}
