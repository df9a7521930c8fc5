//! In-process tests of every endpoint through the router (no socket).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use tocsin_engine::Labels;
use tocsin_engine::remote_write::{self, TimeSeries};
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::Head;

use crate::server::{AppState, ServeOptions, build};

fn state() -> Arc<AppState> {
    let head = Arc::new(Head::default());
    let opts = ServeOptions {
        config: None,
        listen: "127.0.0.1:9099".parse().unwrap(),
        data_dir: "unused".into(),
        external_url: None,
    };
    let wasm = crate::cli::offline_wasm_host().unwrap();
    let s = build(opts, None, head, 1 << 20, wasm);
    let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs);
    for (i, v) in [1.0, 2.0, 3.0].into_iter().enumerate() {
        let t = 1_000_000 + i as i64 * 15_000;
        s.head
            .append_labels(&l(&[("__name__", "up"), ("job", "a"), ("instance", "x")]), t, v)
            .unwrap();
        s.head
            .append_labels(&l(&[("__name__", "up"), ("job", "b"), ("instance", "y")]), t, 0.0)
            .unwrap();
    }
    s
}

async fn call(s: &Arc<AppState>, req: Request<Body>) -> (StatusCode, String) {
    let resp = crate::api::router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(s: &Arc<AppState>, uri: &str) -> (StatusCode, Value) {
    let (status, body) = call(s, Request::get(uri).body(Body::empty()).unwrap()).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

#[tokio::test]
async fn instant_query_has_prometheus_shape() {
    let s = state();
    let (st, v) = get(&s, "/api/v1/query?query=up%7Bjob%3D%22a%22%7D&time=1030").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let r = &v["data"]["result"][0];
    assert_eq!(r["metric"]["job"], "a");
    assert_eq!(r["value"][0], 1030);
    assert_eq!(r["value"][1], "3");
}

#[tokio::test]
async fn range_query_over_post_form() {
    let s = state();
    let req = Request::post("/api/v1/query_range")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("query=sum(up)&start=1000&end=1030&step=15"))
        .unwrap();
    let (st, body) = call(&s, req).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[2], serde_json::json!([1030, "3"]));
}

#[tokio::test]
async fn bad_queries_are_bad_data_and_execution_errors() {
    let s = state();
    let (st, v) = get(&s, "/api/v1/query?query=sum(").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert!(v["error"].as_str().unwrap().contains("parse error"), "{v}");
    let (st, v) = get(&s, "/api/v1/query_range?query=up&start=10&end=1&step=1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = get(&s, "/api/v1/query_range?query=up&start=0&end=100000&step=1").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errorType"], "execution");
    let (st, _) = get(&s, "/api/v1/query").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn series_labels_and_values() {
    let s = state();
    let (st, v) = get(&s, "/api/v1/series?match[]=up%7Bjob%3D%22b%22%7D").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"], serde_json::json!([{"__name__":"up","instance":"y","job":"b"}]));
    let (_, v) = get(&s, "/api/v1/labels").await;
    assert_eq!(v["data"], serde_json::json!(["__name__", "instance", "job"]));
    let (_, v) = get(&s, "/api/v1/label/job/values").await;
    assert_eq!(v["data"], serde_json::json!(["a", "b"]));
    let (_, v) = get(&s, "/api/v1/label/job/values?limit=1").await;
    assert_eq!(v["data"], serde_json::json!(["a"]));
    assert_eq!(v["warnings"][0], "results truncated due to limit");
    let (st, _) = get(&s, "/api/v1/series").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = get(&s, "/api/v1/series?match[]=sum(up)").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn import_appends_and_counts_rejections() {
    let s = state();
    let post = |body: &'static str| {
        Request::post("/api/v1/import/prometheus").body(Body::from(body)).unwrap()
    };
    let (st, body) = call(&s, post("m{a=\"1\"} 5 2000000\nm{a=\"2\"} 6 2000000\n")).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    // One out of order, one fine: the fine one is kept, the 400 counts the other.
    let (st, body) = call(&s, post("m{a=\"1\"} 7 1000000\nm{a=\"2\"} 8 2015000\n")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("1 samples rejected (1 out of order"), "{body}");
    let (_, v) = get(&s, "/api/v1/query?query=m&time=2015").await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2, "{v}");
    // Malformed text: line and column, nothing appended.
    let (st, body) = call(&s, post("ok 1 3000000\nbad{ 1\n")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("2:"), "{body}");
    let (_, v) = get(&s, "/api/v1/query?query=ok&time=3000").await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn remote_write_roundtrip_and_bad_bodies() {
    let s = state();
    let series = vec![TimeSeries {
        labels: Labels::from_pairs(&[("__name__", "rw"), ("k", "v")]),
        samples: vec![Sample { t: 5_000_000, v: 1.5 }, Sample { t: 5_015_000, v: 2.5 }],
    }];
    let req = Request::post("/api/v1/write")
        .header(header::CONTENT_ENCODING, "snappy")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(Body::from(remote_write::encode(&series)))
        .unwrap();
    let (st, body) = call(&s, req).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    let (_, v) = get(&s, "/api/v1/query?query=rw&time=5015").await;
    assert_eq!(v["data"]["result"][0]["value"][1], "2.5");
    let req = Request::post("/api/v1/write").body(Body::from("not snappy")).unwrap();
    let (st, body) = call(&s, req).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("bad remote-write request"), "{body}");
}

#[tokio::test]
async fn write_endpoints_need_the_token_when_configured() {
    let s = state();
    s.set_bearer_token_for_test(Some("s3cret".into()));
    let req = Request::post("/api/v1/import/prometheus").body(Body::from("x 1\n")).unwrap();
    let (st, _) = call(&s, req).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let req = Request::post("/api/v1/import/prometheus")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from("x 1\n"))
        .unwrap();
    let (st, _) = call(&s, req).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Reads stay open.
    let (st, _) = get(&s, "/api/v1/query?query=x").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let s = state();
    let big = vec![b'x'; s.max_body_bytes() + 1];
    let req = Request::post("/api/v1/import/prometheus").body(Body::from(big)).unwrap();
    let (st, _) = call(&s, req).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn status_endpoints() {
    let s = state();
    let (st, v) = get(&s, "/api/v1/status/buildinfo").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    let (st, v) = get(&s, "/api/v1/rules").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["groups"], serde_json::json!([]));
    let (_, v) = get(&s, "/api/v1/alerts").await;
    assert_eq!(v["data"]["alerts"], serde_json::json!([]));
    let (_, v) = get(&s, "/api/v1/targets").await;
    assert_eq!(v["data"]["activeTargets"], serde_json::json!([]));
    let (st, _) = get(&s, "/-/healthy").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = get(&s, "/-/ready").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "not ready before the first config");
    let (st, body) = call(&s, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("tocsin_head_series 2"), "{body}");
    assert!(body.ends_with("# EOF\n"));
    let (st, _) = get(&s, "/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn module_registry_endpoints() {
    let s = state();
    let dir = std::env::temp_dir().join(format!("tocsin-api-modules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (reg, _) = crate::wasm::registry::Registry::open(&dir, s.wasm.clone(), 1 << 20).unwrap();
    let _ = s.modules.set(Arc::new(reg));
    let module = r#"(module
        (memory (export "memory") 1)
        (func (export "tocsin_abi_version") (result i32) i32.const 1)
        (func (export "tocsin_alloc") (param i32) (result i32) i32.const 1024)
        (func (export "tocsin_evaluate") (param i32 i32) (result i64) i64.const -1))"#;
    let post = |name: &str, body: &'static str| {
        Request::post(format!("/api/v1/modules?name={name}&description=test"))
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(Body::from(body))
            .unwrap()
    };
    let (st, body) = call(&s, post("drift", module)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["name"], "drift");
    assert_eq!(v["data"]["sha256"].as_str().unwrap().len(), 64);
    let (st, body) = call(&s, post("bad", "(module)")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("does not export the function `tocsin_evaluate`"), "{body}");
    let (_, v) = get(&s, "/api/v1/modules").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (st, _) = get(&s, "/api/v1/modules/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.set_bearer_token_for_test(Some("t".into()));
    let (st, _) =
        call(&s, Request::delete("/api/v1/modules/drift").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let req = Request::delete("/api/v1/modules/drift")
        .header(header::AUTHORIZATION, "Bearer t")
        .body(Body::empty())
        .unwrap();
    let (st, _) = call(&s, req).await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = get(&s, "/api/v1/modules").await;
    assert_eq!(v["data"], serde_json::json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_playground_is_served_at_the_root_gzip_when_accepted() {
    let s = state();
    let resp = crate::api::router(s.clone())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));

    let req = Request::get("/tocsin_web_bg.wasm")
        .header(header::ACCEPT_ENCODING, "br, gzip")
        .body(Body::empty())
        .unwrap();
    let resp = crate::api::router(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut wasm).unwrap();
    assert!(wasm.starts_with(b"\0asm"), "the engine bundle is WebAssembly");

    let (status, _) = call(&s, Request::get("/no-such-file.js").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The status page moved to /status; the API is untouched by the asset route.
    let (status, body) = call(&s, Request::get("/status").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Rule groups"));
}

fn form(pairs: &[(&str, &str)]) -> Request<Body> {
    Request::post("/api/v1/backtest")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded::to_string(pairs).unwrap()))
        .unwrap()
}

async fn backtest(s: &Arc<AppState>, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let (st, body) = call(s, form(pairs)).await;
    (st, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

const HIGH: &str = "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: High\n    expr: x > 5\n    for: 2m\n    annotations: {summary: '{{ $labels.job }} is {{ $value }}'}\n";

fn transitions(v: &Value) -> Vec<(String, String)> {
    v["data"]["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["time"].as_str().unwrap().to_owned(), t["to"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn backtest_over_sent_data() {
    let s = state();
    let data =
        "interval: 1m\ninput_series:\n- series: 'x{job=\"a\"}'\n  values: '1 1 9 9 9 9 1 1'\n";
    let (st, v) = backtest(&s, &[("rules", HIGH), ("data", data)]).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["evaluations"], 8, "{v}");
    assert_eq!(
        transitions(&v),
        [
            ("1970-01-01T00:02:00Z", "pending"),
            ("1970-01-01T00:04:00Z", "firing"),
            ("1970-01-01T00:06:00Z", "resolved")
        ]
        .map(|(t, st)| (t.to_owned(), st.to_owned()))
    );
    let sent = &v["data"]["notifications"][0]["alerts"][0];
    assert_eq!(sent["annotations"]["summary"], "a is 9", "{v}");
}

#[tokio::test]
async fn backtest_over_the_services_own_data_leaves_it_untouched() {
    let s = state();
    let x = Labels::from_pairs(&[("__name__", "x"), ("job", "live")]);
    for m in 0..10i64 {
        s.head.append_labels(&x, m * 60_000, if (3..7).contains(&m) { 9.0 } else { 1.0 }).unwrap();
    }
    let before = s.head.stats().series;
    let (st, v) =
        backtest(&s, &[("rules", HIGH), ("start", "0"), ("end", "540"), ("step", "1m")]).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let states: Vec<String> = transitions(&v).into_iter().map(|(_, st)| st).collect();
    assert_eq!(states, ["pending", "firing", "resolved"], "{v}");
    assert_eq!(s.head.stats().series, before, "the backtest wrote into the live head");
}

#[tokio::test]
async fn backtest_errors_say_what_is_wrong() {
    let s = state();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("data", "x 1 0\n")], "\"rules\""),
        (&[("rules", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x >\n")], "rules:5:"),
        (&[("rules", HIGH)], "both are needed"),
        (
            &[
                (
                    "rules",
                    "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '{job=\"a\"} > 1'\n",
                ),
                ("start", "0"),
                ("end", "60"),
            ],
            "without a metric name",
        ),
        (
            &[("rules", HIGH), ("data", "x 1 0\n"), ("start", "0"), ("end", "100000000")],
            "limit 100000",
        ),
        (&[("rules", HIGH), ("data", "x{ 1 0\n")], "data:1:"),
        (&[("rules", HIGH), ("data", "x 1 0\n"), ("external_label", "nope")], "NAME=VALUE"),
        (
            &[
                ("rules", HIGH),
                (
                    "data",
                    "input_series:\n- series: a\n  values: 0+1x6000000\n- series: b\n  values: 0+1x6000000\n",
                ),
            ],
            "more than 10000000 samples",
        ),
    ];
    for (pairs, want) in cases {
        let (st, v) = backtest(&s, pairs).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{pairs:?}: {v}");
        assert_eq!(v["errorType"], "bad_data");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{pairs:?}: {msg:?} does not say {want:?}");
    }
}

#[tokio::test]
async fn a_backtest_past_the_query_timeout_stops_with_503() {
    let s = state();
    s.set_query_timeout_for_test(std::time::Duration::from_millis(1));
    let data = "interval: 1m\ninput_series:\n- series: 'x{job=\"a\"}'\n  values: '1+1x50000'\n";
    let (st, v) = backtest(&s, &[("rules", HIGH), ("data", data), ("step", "1m")]).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["errorType"], "timeout");
    assert!(v["error"].as_str().unwrap_or_default().contains("timed out after"), "{v}");
}
