//! `tocsin serve` end to end, with real parts only: a scrape target served
//! over HTTP by this test (its value changes on the test's schedule), the
//! real Alertmanager (Debian `prometheus-alertmanager`) routing to a webhook
//! receiver this test runs, and the `tocsin` binary itself.
//!
//! One test, in phases, because each phase needs the state the previous one
//! left: an alert that goes pending → firing → resolved with the right
//! labels, annotations and timing; an Alertmanager that is down and comes
//! back; and `kill -9` + restart losing no acknowledged sample and flipping
//! no firing alert back to pending.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use tocsin_tests::{
    ALERTMANAGER, Proc, TempDir, free_port, import_prometheus, start_alertmanager, start_tocsin,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Webhook notifications received, with when they arrived.
type Inbox = Arc<Mutex<Vec<(Instant, Value)>>>;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// The scrape target: `temperature_celsius{room="r1"} <value>`.
async fn start_target(value: Arc<AtomicU64>) -> SocketAddr {
    serve(Router::new().route(
        "/metrics",
        get(move || {
            let v = f64::from_bits(value.load(Ordering::SeqCst));
            async move {
                format!(
                    "# HELP temperature_celsius Room temperature.\n\
                     # TYPE temperature_celsius gauge\ntemperature_celsius{{room=\"r1\"}} {v}\n"
                )
            }
        }),
    ))
    .await
}

async fn start_webhook(inbox: Inbox) -> SocketAddr {
    serve(Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let inbox = inbox.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                inbox.lock().unwrap().push((Instant::now(), v));
                ""
            }
        }),
    ))
    .await
}

struct Tocsin {
    proc: Proc,
    base: String,
}

fn start(dir: &TempDir, config: Option<&std::path::Path>, port: u16, tag: &str) -> Tocsin {
    let proc = start_tocsin(dir.path(), config, port, tag);
    Tocsin { proc, base: format!("http://127.0.0.1:{port}") }
}

async fn wait_ready(client: &reqwest::Client, t: &mut Tocsin) {
    tocsin_tests::wait_ready(client, &t.base, &mut t.proc).await;
}

async fn poll<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let begin = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(begin.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let r = client.get(url).timeout(Duration::from_secs(5)).send().await.ok()?;
    serde_json::from_slice(&r.bytes().await.ok()?).ok()
}

async fn query(client: &reqwest::Client, base: &str, q: &str) -> Option<Vec<Value>> {
    let url = format!("{base}/api/v1/query?{}", encode(&[("query", q)]));
    let v = get_json(client, &url).await?;
    v["data"]["result"].as_array().cloned()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// States of `TooHot` in the alerts API.
async fn alert_states(client: &reqwest::Client, base: &str) -> Vec<String> {
    let Some(v) = get_json(client, &format!("{base}/api/v1/alerts")).await else {
        return Vec::new();
    };
    v["data"]["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["labels"]["alertname"] == "TooHot")
                .filter_map(|x| x["state"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The first notification after index `from` whose `TooHot` alert has `status`.
fn find_notification(inbox: &Inbox, from: usize, status: &str) -> Option<(usize, Instant, Value)> {
    let inbox = inbox.lock().unwrap();
    inbox.iter().enumerate().skip(from).find_map(|(i, (at, v))| {
        let alert = v["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "TooHot" && a["status"] == status)?;
        Some((i, *at, alert.clone()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_lifecycle_outage_and_crash_recovery() {
    if !std::path::Path::new(ALERTMANAGER).exists() {
        // tests/run.sh installs it; a developer machine may lack it.
        eprintln!("skipping: {ALERTMANAGER} is not installed (tests/run.sh installs it)");
        return;
    }
    let dir = TempDir::new("e2e");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let value = Arc::new(AtomicU64::new(20f64.to_bits()));
    let target = start_target(value.clone()).await;
    let inbox: Inbox = Arc::default();
    let hook = start_webhook(inbox.clone()).await;
    let am_port = free_port();
    let am_dir = TempDir::new("am1");
    let mut am = start_alertmanager(am_dir.path(), am_port, &format!("http://{hook}/hook"));

    std::fs::write(
        dir.path().join("rules.yml"),
        r#"groups:
  - name: temperatures
    rules:
      - alert: TooHot
        expr: temperature_celsius > 30
        for: 3s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.room }} is at {{ $value }} degrees"
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
  external_labels:
    cluster: e2e
rule_files: [rules.yml]
alerting:
  resend_delay: 2s
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
scrape_configs:
  - job_name: room
    static_configs:
      - targets: ["{target}"]
        labels:
          site: lab
"#
        ),
    )
    .unwrap();
    let port = free_port();
    let mut tocsin = start(&dir, Some(&config), port, "1");
    let base = tocsin.base.clone();
    wait_ready(&client, &mut tocsin).await;
    poll("the target scraped and up", LIMIT, || async {
        let r = query(&client, &base, "up{job=\"room\"} == 1").await?;
        (!r.is_empty()).then_some(())
    })
    .await;

    let meta = get_json(&client, &format!("{base}/api/v1/metadata?metric=temperature_celsius"))
        .await
        .expect("metadata");
    assert_eq!(
        meta["data"]["temperature_celsius"],
        serde_json::json!([{"type": "gauge", "help": "Room temperature.", "unit": ""}]),
        "{meta}"
    );
    let targets = get_json(&client, &format!("{base}/api/v1/targets")).await.expect("targets");
    assert_eq!(targets["data"]["activeTargets"][0]["health"], "up", "{targets}");
    assert_eq!(targets["data"]["activeTargets"][0]["labels"]["site"], "lab", "{targets}");

    // Phase 1: the threshold is crossed; pending, then firing, then the
    // notification arrives through Alertmanager with every label.
    let crossed = Instant::now();
    value.store(35f64.to_bits(), Ordering::SeqCst);
    poll("TooHot pending", LIMIT, || async {
        alert_states(&client, &base).await.contains(&"pending".to_owned()).then_some(())
    })
    .await;
    poll("TooHot firing", LIMIT, || async {
        alert_states(&client, &base).await.contains(&"firing".to_owned()).then_some(())
    })
    .await;
    let (idx, arrived, alert) =
        poll("the firing notification", LIMIT, || async { find_notification(&inbox, 0, "firing") })
            .await;
    let latency = arrived - crossed;
    println!("alert latency, threshold crossed -> webhook: {latency:?}");
    assert!(latency >= Duration::from_secs(3), "fired before `for` elapsed: {latency:?}");
    let labels = &alert["labels"];
    for (k, v) in [
        ("alertname", "TooHot"),
        ("room", "r1"),
        ("severity", "page"),
        ("cluster", "e2e"),
        ("site", "lab"),
        ("job", "room"),
        ("instance", &target.to_string()),
    ] {
        assert_eq!(labels[k], v, "label {k} in {alert}");
    }
    assert_eq!(alert["annotations"]["summary"], "r1 is at 35 degrees", "{alert}");
    assert!(alert["generatorURL"].as_str().unwrap_or("").contains("/graph?g0.expr="), "{alert}");

    // Phase 2: back below the threshold; the resolution arrives.
    value.store(20f64.to_bits(), Ordering::SeqCst);
    let (idx, _, _) = poll("the resolved notification", LIMIT, || async {
        find_notification(&inbox, idx + 1, "resolved")
    })
    .await;

    // Phase 3: Alertmanager goes down while the alert fires again, then
    // comes back (fresh state) and still gets it, through the resends.
    am.kill9();
    value.store(36f64.to_bits(), Ordering::SeqCst);
    poll("TooHot firing again", LIMIT, || async {
        alert_states(&client, &base).await.contains(&"firing".to_owned()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let am_dir2 = TempDir::new("am2");
    let _am2 = start_alertmanager(am_dir2.path(), am_port, &format!("http://{hook}/hook"));
    poll("the firing notification after Alertmanager came back", LIMIT, || async {
        find_notification(&inbox, idx + 1, "firing")
    })
    .await;

    // Phase 4: reloads. A broken rule file is refused with its position and
    // the running rules stay; a good reload keeps the firing alert firing.
    let rules_path = dir.path().join("rules.yml");
    let good_rules = std::fs::read_to_string(&rules_path).unwrap();
    std::fs::write(&rules_path, good_rules.replace("expr: temperature_celsius > 30", "expr: sum("))
        .unwrap();
    let r = client.post(format!("{base}/-/reload")).send().await.expect("reload");
    assert_eq!(r.status().as_u16(), 500);
    let msg = r.text().await.unwrap_or_default();
    assert!(msg.contains("rules.yml:5:"), "reload error without position: {msg}");
    // SIGHUP with the same broken file: logged, refused, still serving.
    Command::new("kill").args(["-HUP", &tocsin.proc.pid().to_string()]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tocsin.proc.assert_running();
    assert_eq!(alert_states(&client, &base).await, vec!["firing".to_owned()]);
    std::fs::write(&rules_path, &good_rules).unwrap();
    let r = client.post(format!("{base}/-/reload")).send().await.expect("reload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(alert_states(&client, &base).await, vec!["firing".to_owned()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        alert_states(&client, &base).await,
        vec!["firing".to_owned()],
        "state lost on reload"
    );

    // Phase 5: samples acknowledged by the import endpoint survive kill -9.
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let mut acknowledged = 0;
    for batch in 0..50 {
        let body: String = (0..20)
            .map(|i| {
                format!("acked{{batch=\"{batch}\",i=\"{i}\"}} {i} {}\n", now_ms - 60_000 + batch)
            })
            .collect();
        import_prometheus(&client, &base, body).await;
        acknowledged += 20;
    }
    assert_eq!(alert_states(&client, &base).await, vec!["firing".to_owned()]);
    tocsin.proc.kill9();
    let restarted_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;

    let mut tocsin = start(&dir, Some(&config), port, "2");
    wait_ready(&client, &mut tocsin).await;
    let found = query(&client, &base, "count(last_over_time(acked[5m]))").await.unwrap_or_default();
    let count = found.first().and_then(|s| s["value"][1].as_str()).unwrap_or("0").to_owned();
    assert_eq!(count, acknowledged.to_string(), "acknowledged samples lost in the crash");

    // The alert comes back firing in the first evaluations and never shows
    // pending: no ALERTS{alertstate="pending"} sample after the restart.
    poll("TooHot firing after restart", LIMIT, || async {
        alert_states(&client, &base).await.contains(&"firing".to_owned()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let url = format!(
        "{base}/api/v1/query_range?{}",
        encode(&[
            ("query", "ALERTS{alertname=\"TooHot\",alertstate=\"pending\"}"),
            ("start", &format!("{}", restarted_ms as f64 / 1000.0)),
            ("end", &format!("{}", restarted_ms as f64 / 1000.0 + 10.0)),
            ("step", "0.5"),
        ])
    );
    let v = get_json(&client, &url).await.expect("query_range");
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["result"], serde_json::json!([]), "pending after restart: {v}");
    assert_eq!(alert_states(&client, &base).await, vec!["firing".to_owned()]);
    assert!(
        tocsin.proc.terminate(Duration::from_secs(20)),
        "clean shutdown:\n{}",
        tocsin.proc.log()
    );
}

/// `cargo run --release` runs exactly this: no config, the embedded default.
/// It must scrape itself and evaluate its example rules out of the box.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_scrapes_itself_and_evaluates_rules() {
    let dir = TempDir::new("default");
    let port = free_port();
    let mut tocsin = start(&dir, None, port, "default");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    wait_ready(&client, &mut tocsin).await;
    let base = tocsin.base.clone();
    // The default scrapes every 15 s and evaluates every 15 s: allow three rounds.
    poll("the recording rule over tocsin's own up series", Duration::from_secs(50), || async {
        let r = query(&client, &base, "job:up:ratio{job=\"tocsin\"} == 1").await?;
        (!r.is_empty()).then_some(())
    })
    .await;
    // `/` is the playground; the status page lists the rule groups.
    let page = client.get(format!("{base}/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("tocsin playground"), "the playground is served at /:\n{page}");
    let page = client.get(format!("{base}/status")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("tocsin-self"), "the status page lists the example rule group:\n{page}");
    let rules = get_json(&client, &format!("{base}/api/v1/rules")).await.unwrap();
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["health"], "ok", "{rules}");
    assert!(
        tocsin.proc.terminate(Duration::from_secs(20)),
        "clean shutdown:\n{}",
        tocsin.proc.log()
    );
}
