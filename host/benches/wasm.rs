//! What the WASM rule runtime itself costs, measured with a trivial rule: the
//! SDK's `constant` example (one sample, no host calls, no state), and
//! `floor`, the same response from a hand-written module with a bump
//! allocator and no Rust runtime, i.e. the host's share alone. The runtime is
//! the service's (`server::service_wasm_host` with the default config: epoch
//! deadlines, 64 MiB memory cap, one guest thread per core).
//!
//! Criterion, per evaluation:
//! - `evaluation/group`: a one-rule group's evaluation, what the scheduler
//!   runs every interval: engine → `ModuleRuntime::run` → pool thread →
//!   fresh instance → `tocsin_evaluate` → decode → output stored;
//! - `evaluation/engine`: the engine's `rules::wasm::evaluate` alone
//!   (request encoding, runtime, response decoding and checks);
//! - `evaluation/run_module`: the runtime alone, bytes in and out;
//! - `stages/instantiate`: a store and instance from the `InstancePre`, and
//!   their release, on this thread;
//! - `stages/instantiate_call`: that plus the guest's calls. The guest's
//!   call is the difference; `run_module` minus this is the hand-off to a
//!   pool thread and back;
//! - `cache/*`: a module from its precompiled artifact on disk
//!   (`load_own_artifact` + `prepare`) against compiling it (`compile` +
//!   `prepare`).
//!
//! Then printed as median [min – max] of several runs: evaluations/s with 1
//! and 2 evaluating threads (and per CPU-second: per core), and upload →
//! first evaluation, through `Registry::upload` and over HTTP against a real
//! `tocsin serve`.
//!
//! `cargo bench -p tocsin-host --bench wasm` (`-- REGEX` runs only the
//! parts whose names match, e.g. `-- 'stages|throughput'`; under
//! `cargo test --benches` only the criterion parts run, once each).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tocsin_abi::{EvalRequest, EvalResponse, Message, OutSample};
use tocsin_engine::Labels;
use tocsin_engine::promql::Engine;
use tocsin_engine::rules::wasm::{HostCalls, WasmLimits, evaluate};
use tocsin_engine::rules::{EvalEnv, Group, ParseOptions, parse_rule_file};
use tocsin_engine::storage::Head;
use tocsin_host::config::Config;
use tocsin_host::metrics::Metrics;
use tocsin_host::server::service_wasm_host;
use tocsin_host::wasm::registry::Registry;
use tocsin_host::wasm::runner::WasmHost;
use tocsin_tests::{TempDir, build_example_rules, free_port, start_tocsin, wait_ready_blocking};

/// The guests: (name, module bytes).
struct Guests {
    constant: Vec<u8>,
    floor: Vec<u8>,
}

impl Guests {
    fn build() -> Guests {
        let path = build_example_rules().join("constant.wasm");
        let constant = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Guests { constant, floor: floor_module().into_bytes() }
    }

    fn each(&self) -> [(&'static str, &[u8]); 2] {
        [("constant", &self.constant), ("floor", &self.floor)]
    }
}

/// The same response the `constant` rule gives, from a module with a bump
/// allocator and nothing else: what any guest costs at least.
fn floor_module() -> String {
    let response = EvalResponse {
        samples: vec![OutSample {
            labels: vec![("rule".into(), "constant".into())],
            value: 1.0,
            annotations: vec![],
        }],
        ..Default::default()
    }
    .encode();
    let bytes: String = response.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
          (memory (export "memory") 2)
          (global $next (mut i32) (i32.const 65536))
          (data (i32.const 1024) "{bytes}")
          (func (export "tocsin_abi_version") (result i32) i32.const 1)
          (func (export "tocsin_alloc") (param $n i32) (result i32)
            global.get $next
            global.get $next local.get $n i32.add global.set $next)
          (func (export "tocsin_evaluate") (param i32 i32) (result i64)
            i64.const 1024 i64.const 32 i64.shl i64.const {len} i64.or))"#,
        len = response.len()
    )
}

/// The service's runtime, reporting to `/metrics` as in `tocsin serve`.
fn service_runtime() -> Arc<WasmHost> {
    let host = service_wasm_host(&Config::default()).expect("the service's wasm runtime");
    host.set_metrics(Arc::new(Metrics::new(&mut prometheus_client::registry::Registry::default())));
    host
}

/// The service's runtime with both guests installed.
fn service_host(guests: &Guests) -> Arc<WasmHost> {
    let host = service_runtime();
    for (name, wasm) in guests.each() {
        let (module, _) = host.sandbox().compile(wasm).expect("compiles");
        host.install(name, host.prepare(&module).expect("a rule module"));
    }
    host
}

/// What the engine sends a module with no config and no state.
fn request() -> Vec<u8> {
    EvalRequest { ts_ms: 0, interval_ms: 60_000, config: b"null".to_vec(), state: vec![] }.encode()
}

fn one_rule_group(module: &str) -> Group {
    let text = format!(
        "groups:\n  - name: bench\n    rules:\n      - record: tocsin:{module}\n        wasm: {module}\n"
    );
    let file = parse_rule_file("bench.yml", &text, ParseOptions::default()).expect("rule file");
    Group::new("bench.yml", &file.groups[0], 60_000, 0)
}

fn per_evaluation(c: &mut Criterion, host: &Arc<WasmHost>) {
    let engine = Engine::default();
    let limits = WasmLimits::default();
    let request = request();
    let mut g = c.benchmark_group("evaluation");
    g.throughput(Throughput::Elements(1));
    for name in ["constant", "floor"] {
        let head = Head::default();
        let ext = Labels::empty();
        let mut group = one_rule_group(name);
        let mut ts = 0;
        g.bench_function(format!("group/{name}"), |b| {
            b.iter(|| {
                ts += 60_000;
                let mut env = EvalEnv {
                    engine: &engine,
                    head: &head,
                    external_labels: &ext,
                    external_url: "",
                    resend_delay_ms: 60_000,
                    wasm: Some(&**host),
                    clock_ns: None,
                };
                group.eval(ts, &mut env)
            })
        });
        assert_eq!(group.rules[0].last_error, None, "{name}");

        let head = Head::default();
        let mut state = Vec::new();
        g.bench_function(format!("engine/{name}"), |b| {
            b.iter(|| {
                evaluate(&**host, name, None, 0, 60_000, &mut state, &engine, &head, &limits)
                    .expect("evaluates")
            })
        });

        g.bench_function(format!("run_module/{name}"), |b| {
            b.iter(|| {
                let mut calls = HostCalls::new(&engine, &head, &limits);
                host.run_module(name, &request, &mut calls).expect("evaluates")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(1));
    for name in ["constant", "floor"] {
        g.bench_function(format!("instantiate/{name}"), |b| {
            b.iter(|| host.instantiate_here(name).expect("instantiates"))
        });
        g.bench_function(format!("instantiate_call/{name}"), |b| {
            b.iter(|| {
                host.instantiate_here(name).and_then(|i| i.evaluate(&request)).expect("evaluates")
            })
        });
    }
    g.finish();
}

fn cache(c: &mut Criterion, host: &Arc<WasmHost>, guests: &Guests) {
    let dir = TempDir::new("bench-wasm-cache");
    let sandbox = host.sandbox();
    let mut g = c.benchmark_group("cache");
    for (name, wasm) in guests.each() {
        let (_, artifact) = sandbox.compile(wasm).expect("compiles");
        let path = dir.path().join(format!("{name}.cwasm"));
        std::fs::write(&path, &artifact).expect("write artifact");
        g.bench_function(format!("load_artifact_prepare/{name}"), |b| {
            b.iter(|| {
                let module = sandbox.load_own_artifact(&path).expect("loads");
                host.prepare(&module).map_err(|p| p.join("; ")).expect("a rule module")
            })
        });
    }
    g.sample_size(10);
    for (name, wasm) in guests.each() {
        g.bench_function(format!("compile_prepare/{name}"), |b| {
            b.iter(|| {
                let (module, _) = sandbox.compile(wasm).expect("compiles");
                host.prepare(&module).map_err(|p| p.join("; ")).expect("a rule module")
            })
        });
    }
    g.finish();
}

/// Median, minimum and maximum.
fn summary(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn show(what: &str, xs: Vec<f64>, unit: &str) {
    let (med, min, max) = summary(xs);
    let fmt = |x: f64| {
        if x >= 100.0 { format!("{x:.0}") } else { format!("{x:.2}") }
    };
    println!("{what:<58} {:>10} {unit}  [{} – {}]", fmt(med), fmt(min), fmt(max));
}

/// CPU time of this process so far (all threads), from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // /proc reports in USER_HZ, 100 on every Linux architecture tocsin targets.
    Some(Duration::from_millis(ticks * 10))
}

/// Evaluations per second through the engine, with `threads` evaluating
/// threads at once, and per CPU-second of the whole process (evaluating
/// threads, guest pool, everything).
fn throughput(host: &Arc<WasmHost>) {
    const RUNS: usize = 5;
    const PER_THREAD: usize = 40_000;
    println!("\nthroughput: the `constant` rule through the engine, {RUNS} runs");
    for threads in [1, 2] {
        let (mut wall, mut per_cpu) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let cpu0 = cpu_time();
            let begin = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        let engine = Engine::default();
                        let head = Head::default();
                        let limits = WasmLimits::default();
                        let mut state = Vec::new();
                        for _ in 0..PER_THREAD {
                            evaluate(
                                &**host, "constant", None, 0, 60_000, &mut state, &engine, &head,
                                &limits,
                            )
                            .expect("evaluates");
                        }
                    });
                }
            });
            let took = begin.elapsed();
            let n = (threads * PER_THREAD) as f64;
            wall.push(n / took.as_secs_f64());
            if let (Some(a), Some(b)) = (cpu0, cpu_time()) {
                per_cpu.push(n / (b - a).as_secs_f64().max(1e-3));
            }
        }
        show(&format!("{threads} evaluating thread(s): evaluations/s"), wall, "/s");
        if !per_cpu.is_empty() {
            show(
                &format!("{threads} evaluating thread(s): evaluations per CPU-second"),
                per_cpu,
                "/s",
            );
        }
    }
}

/// `Registry::upload` (validation, compilation, content-addressed store with
/// fsync) and then the module's first evaluation, and its second.
fn upload_to_first_evaluation(guests: &Guests) {
    const RUNS: usize = 15;
    println!("\nupload → first evaluation through the registry, {RUNS} runs (ms)");
    let engine = Engine::default();
    let head = Head::default();
    let limits = WasmLimits::default();
    for (name, wasm) in guests.each() {
        let (mut upload, mut first, mut second) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            // A new host each time, as after a restart: nothing compiled or
            // instantiated yet in this engine.
            let host = service_runtime();
            let dir = TempDir::new("bench-wasm-registry");
            let (registry, _) = Registry::open(dir.path(), host.clone(), 16 << 20).expect("open");
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let t = Instant::now();
            registry.upload(name, wasm, "", 0).expect("uploads");
            upload.push(ms(t.elapsed()));
            let mut state = Vec::new();
            let mut eval = || {
                let t = Instant::now();
                evaluate(&*host, name, None, 0, 60_000, &mut state, &engine, &head, &limits)
                    .expect("evaluates");
                ms(t.elapsed())
            };
            first.push(eval());
            second.push(eval());
        }
        show(&format!("{name}: Registry::upload ({} KiB)", wasm.len() / 1024), upload, "ms");
        show(&format!("{name}: its first evaluation"), first, "ms");
        show(&format!("{name}: its second evaluation"), second, "ms");
    }
}

/// The rule's health and `evaluationTime` (seconds) in `/api/v1/rules`.
async fn rule_health(client: &reqwest::Client, base: &str) -> (String, f64) {
    let r = client.get(format!("{base}/api/v1/rules")).send().await.expect("rules");
    let v: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
    let r = &v["data"]["groups"][0]["rules"][0];
    (r["health"].as_str().unwrap_or("").to_owned(), r["evaluationTime"].as_f64().unwrap_or(0.0))
}

/// Polls every 2 ms until the rule's health is `want`; its `evaluationTime`.
async fn until_health(client: &reqwest::Client, base: &str, want: &str) -> f64 {
    let begin = Instant::now();
    loop {
        let (health, took) = rule_health(client, base).await;
        if health == want {
            return took;
        }
        assert!(begin.elapsed() < Duration::from_secs(30), "the rule never became {want}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The same against a real `tocsin serve`: `POST /api/v1/modules`, then
/// polling `/api/v1/rules` until the rule that names the module has
/// evaluated it. A rule picks a module up at its next scheduled evaluation,
/// so the wait is the rest of the group's interval (1 s here; the upload
/// follows an evaluation closely, so nearly all of it, where a user waits
/// half an interval on average); the evaluation itself is the rule's
/// `evaluationTime`.
fn over_http(guests: &Guests) {
    const RUNS: usize = 8;
    let dir = TempDir::new("bench-wasm-http");
    let rules = "groups:\n  - name: bench\n    interval: 1s\n    rules:\n      \
                 - record: tocsin:constant\n        wasm: constant\n";
    std::fs::write(dir.path().join("rules.yml"), rules).expect("write rules");
    let config = dir.path().join("tocsin.yml");
    std::fs::write(&config, "rule_files: [rules.yml]\n").expect("write config");
    let port = free_port();
    let mut tocsin = start_tocsin(dir.path(), Some(&config), port, "bench");
    wait_ready_blocking(&mut tocsin, port);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let (mut upload, mut eval, mut wait) = (Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        for _ in 0..RUNS {
            // Without the module the rule fails (404 the first time round).
            let _ = client.delete(format!("{base}/api/v1/modules/constant")).send().await;
            until_health(&client, &base, "err").await;
            let t = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/modules?name=constant"))
                .body(guests.constant.clone())
                .send()
                .await
                .expect("upload");
            assert!(r.status().is_success(), "upload: {}", r.status());
            let uploaded = t.elapsed();
            let took = until_health(&client, &base, "ok").await;
            let healthy = t.elapsed();
            upload.push(uploaded.as_secs_f64() * 1e3);
            eval.push(took * 1e3);
            wait.push((healthy - uploaded).as_secs_f64() * 1e3 - took * 1e3);
        }
    });
    println!("\nupload → first evaluation over HTTP (tocsin serve, interval 1 s), {RUNS} runs");
    show("POST /api/v1/modules (validate, compile, store)", upload, "ms");
    show("the rule's first evaluation of it (evaluationTime)", eval, "ms");
    show("waiting for the rule's next scheduled evaluation", wait, "ms");
    assert!(tocsin.terminate(Duration::from_secs(20)), "clean shutdown:\n{}", tocsin.log());
}

/// Runs a custom section when no filter was given or the filter (a regular
/// expression, as criterion takes) matches its name; never in test mode.
fn wanted(section: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    !args.iter().any(|a| a == "--test")
        && (filters.is_empty()
            || filters.iter().any(|f| regex::Regex::new(f).is_ok_and(|r| r.is_match(section))))
}

fn main() {
    // SAFETY: no other thread runs yet. With RUST_BACKTRACE set (as in these
    // environments) every trap captures a backtrace, ~8 µs each
    // (WASM-NOTES.md); the service does not run with it.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    let guests = Guests::build();
    let host = service_host(&guests);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    per_evaluation(&mut c, &host);
    cache(&mut c, &host, &guests);
    c.final_summary();
    if wanted("throughput") {
        throughput(&host);
    }
    if wanted("upload") {
        upload_to_first_evaluation(&guests);
    }
    if wanted("http") {
        over_http(&guests);
    }
}
