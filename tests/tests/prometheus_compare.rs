//! tocsin's query API against a real Prometheus (Debian `prometheus`) on the
//! same data: both are started here on 127.0.0.1, both receive the same
//! remote-write requests, and every query must give the same answer from
//! both (same result type, same series, values equal to 1e-9 relative).
//!
//! Prometheus 2.42's range selectors are left-closed where 3.x's (and
//! tocsin's) are left-open, so query times here never fall on a sample's
//! timestamp and the two semantics agree.

use std::collections::BTreeMap;

use serde_json::Value;

use tocsin_engine::Labels;
use tocsin_engine::remote_write::{TimeSeries, encode};
use tocsin_engine::sample::Sample;
use tocsin_tests::{PROMETHEUS, TempDir, free_port, start_prometheus, start_tocsin, wait_ready};

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 120; // 30 minutes

fn dataset(end_ms: i64) -> Vec<TimeSeries> {
    let start = end_ms - (SAMPLES - 1) * STEP_MS;
    let mut out = Vec::new();
    let mut series = |labels: Vec<(&str, String)>, f: &dyn Fn(i64) -> f64| {
        let labels = Labels::from_pairs(&labels);
        let samples = (0..SAMPLES).map(|k| Sample { t: start + k * STEP_MS, v: f(k) }).collect();
        out.push(TimeSeries { labels, samples });
    };
    for i in 0..12i64 {
        let job = format!("job-{}", i % 3);
        let instance = format!("i-{i}");
        series(
            vec![
                ("__name__", "temperature".into()),
                ("job", job.clone()),
                ("instance", instance.clone()),
            ],
            &|k| ((i * 37 + k * 11) % 97) as f64 + i as f64 / 10.0,
        );
        // Counters with a reset in the middle for some instances.
        series(
            vec![
                ("__name__", "requests_total".into()),
                ("job", job.clone()),
                ("instance", instance.clone()),
            ],
            &|k| {
                let k = if i % 4 == 0 && k > 60 { k - 60 } else { k };
                (k * (i + 1) * 3) as f64
            },
        );
        for (le, share) in [("0.1", 1), ("0.5", 3), ("1", 6), ("+Inf", 8)] {
            series(
                vec![
                    ("__name__", "latency_seconds_bucket".into()),
                    ("job", job.clone()),
                    ("instance", instance.clone()),
                    ("le", le.into()),
                ],
                &|k| (k * share * (i % 5 + 1)) as f64,
            );
        }
    }
    out
}

const QUERIES: &[&str] = &[
    "temperature",
    "temperature > 50",
    "temperature * 2 - 1",
    "rate(requests_total[5m])",
    "irate(requests_total[5m])",
    "increase(requests_total[10m])",
    "sum by (job) (rate(requests_total[5m]))",
    "sum without (instance) (temperature)",
    "avg by (job) (temperature)",
    "max(temperature)",
    "min by (job) (temperature)",
    "count by (job) (temperature > 40)",
    "stddev by (job) (temperature)",
    "stdvar(temperature)",
    "topk(3, temperature)",
    "bottomk(2, temperature)",
    "quantile(0.9, temperature)",
    "histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (job, le) (rate(latency_seconds_bucket[5m])))",
    "avg_over_time(temperature[10m])",
    "max_over_time(temperature[10m])",
    "min_over_time(temperature[10m])",
    "sum_over_time(temperature[5m])",
    "count_over_time(temperature[5m])",
    "quantile_over_time(0.75, temperature[10m])",
    "stddev_over_time(temperature[10m])",
    "last_over_time(temperature[10m])",
    "changes(temperature[10m])",
    "resets(requests_total[20m])",
    "deriv(temperature[10m])",
    "predict_linear(temperature[10m], 600)",
    "delta(temperature[10m])",
    "idelta(temperature[5m])",
    "abs(temperature - 50)",
    "clamp(temperature, 10, 60)",
    "round(temperature / 7)",
    "ln(temperature + 1)",
    "label_replace(temperature, \"n\", \"$1\", \"instance\", \"i-(.*)\")",
    "label_join(temperature, \"both\", \"/\", \"job\", \"instance\")",
    "temperature / on (instance) group_left rate(requests_total[5m])",
    "sum by (job) (temperature) / ignoring (job) group_left sum(temperature)",
    "temperature and on (job) (temperature > 80)",
    "temperature unless temperature > 50",
    "sum(temperature) or vector(0)",
    "absent(nonexistent_metric)",
    "absent(temperature)",
    "vector(1) + scalar(sum(temperature))",
    "max_over_time(rate(requests_total[2m])[10m:1m])",
    "temperature offset 5m",
    "sort_desc(sum by (instance) (temperature))",
    "count_values(\"t\", round(temperature / 20))",
    "group by (job) (temperature)",
];

fn key(metric: &Value) -> String {
    serde_json::to_string(&metric.as_object().map(|m| m.iter().collect::<BTreeMap<_, _>>()))
        .unwrap_or_default()
}

fn close(a: &str, b: &str) -> bool {
    let (Ok(x), Ok(y)) = (parse(a), parse(b)) else { return a == b };
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}

fn parse(s: &str) -> Result<f64, ()> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        s => s.parse().map_err(|_| ()),
    }
}

/// Every difference between two API results, as readable lines.
fn diff(q: &str, a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if a["status"] != b["status"] || a["data"]["resultType"] != b["data"]["resultType"] {
        out.push(format!("{q}: tocsin {} vs prometheus {}", a, b));
        return out;
    }
    let rt = a["data"]["resultType"].as_str().unwrap_or("");
    let points = |r: &Value| -> BTreeMap<String, Vec<(String, String)>> {
        let mut m = BTreeMap::new();
        if rt == "scalar" {
            m.insert("scalar".into(), vec![(r[0].to_string(), r[1].as_str().unwrap_or("").into())]);
            return m;
        }
        for s in r.as_array().into_iter().flatten() {
            let pts: Vec<(String, String)> = if rt == "vector" {
                vec![(s["value"][0].to_string(), s["value"][1].as_str().unwrap_or("").into())]
            } else {
                s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| (p[0].to_string(), p[1].as_str().unwrap_or("").into()))
                    .collect()
            };
            m.insert(key(&s["metric"]), pts);
        }
        m
    };
    let (pa, pb) = (points(&a["data"]["result"]), points(&b["data"]["result"]));
    let ka: Vec<_> = pa.keys().collect();
    let kb: Vec<_> = pb.keys().collect();
    if ka != kb {
        out.push(format!("{q}: series differ:\n  tocsin     {ka:?}\n  prometheus {kb:?}"));
        return out;
    }
    for (k, va) in &pa {
        let vb = &pb[k];
        let same = va.len() == vb.len()
            && va.iter().zip(vb).all(|((ta, xa), (tb, xb))| ta == tb && close(xa, xb));
        if !same {
            out.push(format!("{q}: {k}:\n  tocsin     {va:?}\n  prometheus {vb:?}"));
        }
    }
    out
}

async fn get(client: &reqwest::Client, url: &str, params: &[(&str, String)]) -> Value {
    let r = client.get(url).query(params).send().await.expect("request");
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_api_agrees_with_prometheus() {
    if !std::path::Path::new(PROMETHEUS).exists() {
        eprintln!("skipping: {PROMETHEUS} is not installed (tests/run.sh installs it)");
        return;
    }
    let dir = TempDir::new("vs-prom");
    let config = dir.path().join("empty.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let (tport, pport) = (free_port(), free_port());
    let mut tocsin = start_tocsin(dir.path(), Some(&config), tport, "1");
    let mut prom = start_prometheus(dir.path(), &config, pport);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let tbase = format!("http://127.0.0.1:{tport}");
    let pbase = format!("http://127.0.0.1:{pport}");
    wait_ready(&client, &tbase, &mut tocsin).await;
    wait_ready(&client, &pbase, &mut prom).await;

    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    // Whole seconds, so every sample sits on a 15 s grid the query times avoid.
    let end = now / 15_000 * 15_000 - 60_000;
    let body = encode(&dataset(end));
    for base in [&tbase, &pbase] {
        let r = client
            .post(format!("{base}/api/v1/write"))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .await
            .expect("remote write");
        assert!(r.status().is_success(), "{base}: {}", r.text().await.unwrap_or_default());
    }

    let mut problems = Vec::new();
    let mut compared = 0;
    // Answers with data in them: agreeing on empty results proves little.
    let mut nonempty = 0;
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    for q in QUERIES {
        for t in [end - 7_500, end - 10 * 60_000 - 3_700, end + 61_000] {
            let params = [("query", q.to_string()), ("time", secs(t))];
            let a = get(&client, &format!("{tbase}/api/v1/query"), &params).await;
            let b = get(&client, &format!("{pbase}/api/v1/query"), &params).await;
            problems.extend(diff(q, &a, &b));
            compared += 1;
            nonempty += usize::from(has_data(&b));
        }
        let params = [
            ("query", q.to_string()),
            ("start", secs(end - 20 * 60_000 - 7_300)),
            ("end", secs(end + 2 * 60_000)),
            ("step", "37".to_string()),
        ];
        let a = get(&client, &format!("{tbase}/api/v1/query_range"), &params).await;
        let b = get(&client, &format!("{pbase}/api/v1/query_range"), &params).await;
        if b["status"] == "success" {
            problems.extend(diff(q, &a, &b));
            compared += 1;
            nonempty += usize::from(has_data(&b));
        }
    }
    for (path, params) in [
        ("series", vec![("match[]", "temperature{job=\"job-1\"}".to_string())]),
        ("labels", vec![]),
        ("label/job/values", vec![]),
        ("label/le/values", vec![("match[]", "latency_seconds_bucket".to_string())]),
    ] {
        let a = get(&client, &format!("{tbase}/api/v1/{path}"), &params).await;
        let b = get(&client, &format!("{pbase}/api/v1/{path}"), &params).await;
        let norm = |v: &Value| {
            let mut items: Vec<String> =
                v["data"].as_array().into_iter().flatten().map(key_or_string).collect();
            items.sort();
            items
        };
        if norm(&a) != norm(&b) {
            problems.push(format!("{path}: tocsin {} vs prometheus {}", a["data"], b["data"]));
        }
        compared += 1;
    }
    assert!(
        problems.is_empty(),
        "{} of {compared} answers differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(nonempty * 10 >= compared * 8, "only {nonempty} of {compared} answers have data");
    println!("{compared} answers identical in tocsin and Prometheus ({nonempty} with data)");
}

fn has_data(v: &Value) -> bool {
    match &v["data"]["result"] {
        Value::Array(a) => !a.is_empty(),
        Value::Null => false,
        _ => true,
    }
}

fn key_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => key(other),
    }
}
