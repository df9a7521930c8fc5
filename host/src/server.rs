//! `tocsin serve`: wires storage, durability, scraping, the rule scheduler,
//! the notifier and the HTTP API together, and reloads the config on
//! `POST /-/reload` or SIGHUP without losing alert state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use tocsin_engine::Labels;
use tocsin_engine::promql::{Engine, EngineOptions};
use tocsin_engine::relabel::{self, RelabelConfig};
use tocsin_engine::rules::backtest::OutgoingAlert;
use tocsin_engine::rules::{Group, ParseOptions, RuleExpr, parse_rule_file};
use tocsin_engine::storage::Head;

use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::notifier::{AmAlert, Destination, DestinationKind, Notifier, NotifierOptions};
use crate::scheduler::{AlertSink, EvalSettings, Scheduler};
use crate::scrape::{MetricRelabel, ScrapeManager, TargetDef};
use crate::wal::{Wal, WalOptions};
use crate::wasm::runner::{RunLimits, WasmHost};
use crate::wasm::sandbox::{Deadline, Sandbox, SandboxOptions};

/// The documented default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9099";

/// The config `tocsin serve` runs without `--config`: scrape itself and
/// evaluate the example rules. `$LISTEN` becomes the listen address.
const DEFAULT_CONFIG: &str = include_str!("default-config.yml");
/// Example rules the default config evaluates (tocsin's own health).
const DEFAULT_RULES: &str = include_str!("default-rules.yml");
const DEFAULT_RULES_NAME: &str = "<embedded>/default-rules.yml";

pub fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub external_url: Option<String>,
}

/// Settings that a reload replaces.
struct Live {
    bearer_token: Option<String>,
    engine: Arc<Engine>,
    retention_ms: i64,
    checkpoint_interval_ms: i64,
    query_timeout: Duration,
    /// What `POST /api/v1/backtest` runs with, as the scheduler does.
    backtest: BacktestDefaults,
}

/// The configuration a backtest over the API inherits.
#[derive(Clone)]
pub struct BacktestDefaults {
    pub external_labels: Labels,
    pub external_url: String,
    pub evaluation_interval_ms: i64,
    pub resend_delay_ms: i64,
}

/// What alerts need on their way out, replaced on reload.
#[derive(Default)]
struct SinkSettings {
    alert_relabel: Vec<RelabelConfig>,
    external_url: String,
}

pub struct AppState {
    pub head: Arc<Head>,
    pub metrics: Arc<Metrics>,
    registry: Registry,
    pub scheduler: Arc<Scheduler>,
    pub scrapes: Arc<ScrapeManager>,
    notifier: Arc<Notifier>,
    wal: Option<Arc<Wal>>,
    pub wasm: Arc<WasmHost>,
    /// Uploaded modules; opened with the data directory.
    pub modules: std::sync::OnceLock<Arc<crate::wasm::registry::Registry>>,
    live: RwLock<Live>,
    sink: Arc<RwLock<SinkSettings>>,
    opts: ServeOptions,
    external_url: String,
    max_body_bytes: usize,
    ready: AtomicBool,
    reload_lock: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn now_ms(&self) -> i64 {
        wall_clock_ms()
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.live.read().unwrap_or_else(PoisonError::into_inner).engine.clone()
    }

    pub fn bearer_token(&self) -> Option<String> {
        self.live.read().unwrap_or_else(PoisonError::into_inner).bearer_token.clone()
    }

    #[cfg(test)]
    pub fn set_bearer_token_for_test(&self, token: Option<String>) {
        self.live.write().unwrap_or_else(PoisonError::into_inner).bearer_token = token;
    }

    pub fn backtest_defaults(&self) -> BacktestDefaults {
        self.live.read().unwrap_or_else(PoisonError::into_inner).backtest.clone()
    }

    #[cfg(test)]
    pub fn set_query_timeout_for_test(&self, limit: Duration) {
        self.live.write().unwrap_or_else(PoisonError::into_inner).query_timeout = limit;
    }

    pub fn query_timeout(&self) -> Duration {
        self.live.read().unwrap_or_else(PoisonError::into_inner).query_timeout
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn encode_metrics(&self) -> String {
        self.metrics.encode(&self.registry, &self.head)
    }

    /// Makes everything appended so far durable (a no-op without a data dir).
    pub async fn sync_wal(&self) -> Result<(), String> {
        let Some(wal) = self.wal.clone() else { return Ok(()) };
        let metrics = self.metrics.clone();
        let r = tokio::task::spawn_blocking(move || wal.sync())
            .await
            .map_err(|e| format!("sync task failed: {e}"))?;
        match r {
            Ok(()) => {
                metrics.wal_syncs.inc();
                Ok(())
            }
            Err(e) => {
                metrics.wal_failures.inc();
                Err(e.to_string())
            }
        }
    }

    /// Re-reads the config and rule files and applies them; on any error
    /// the running config stays in force and the error is returned.
    pub async fn reload(&self) -> Result<(), String> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let result = match load(&self.opts) {
            Ok(loaded) => {
                self.apply(loaded).await;
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => info!("configuration reloaded"),
            Err(e) => error!("reload failed, keeping the running configuration: {e}"),
        }
        result
    }

    async fn apply(&self, loaded: Loaded) {
        let cfg = &loaded.config;
        let engine = Arc::new(Engine::new(EngineOptions {
            lookback_delta_ms: cfg.limits.lookback_delta_ms,
            max_samples: cfg.limits.query_max_samples,
            default_subquery_step_ms: cfg.global.evaluation_interval_ms,
            ..EngineOptions::default()
        }));
        {
            let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
            live.bearer_token = cfg.auth.bearer_token.clone();
            live.engine = engine.clone();
            live.retention_ms = cfg.storage.retention_ms;
            live.checkpoint_interval_ms = cfg.storage.checkpoint_interval_ms;
            live.query_timeout = Duration::from_millis(cfg.limits.query_timeout_ms.max(1) as u64);
            live.backtest = BacktestDefaults {
                external_labels: cfg.global.external_labels.clone(),
                external_url: self.external_url.clone(),
                evaluation_interval_ms: cfg.global.evaluation_interval_ms,
                resend_delay_ms: cfg.alerting.resend_delay_ms,
            };
        }
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = SinkSettings {
            alert_relabel: cfg.alerting.alert_relabel_configs.clone(),
            external_url: self.external_url.clone(),
        };
        self.notifier.apply(destinations(cfg));
        self.scrapes.apply(loaded.targets).await;
        let settings = EvalSettings {
            engine,
            external_labels: cfg.global.external_labels.clone(),
            external_url: self.external_url.clone(),
            resend_delay_ms: cfg.alerting.resend_delay_ms,
            wasm: Some(self.wasm.clone()),
        };
        self.scheduler.apply(loaded.groups, settings).await;
    }
}

/// A config with everything it names read and checked.
struct Loaded {
    config: Config,
    groups: Vec<Group>,
    targets: Vec<TargetDef>,
}

fn load(opts: &ServeOptions) -> Result<Loaded, String> {
    let join = |errs: Vec<config::ConfigError>| {
        errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    };
    let (config, warnings, rule_texts) = match &opts.config {
        Some(path) => {
            let (config, warnings) = config::load(path).map_err(join)?;
            let dir = path.parent().unwrap_or(Path::new("."));
            let files = config.resolve_rule_files(dir).map_err(|e| e.to_string())?;
            let mut texts = Vec::new();
            for f in files {
                let text =
                    std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                texts.push((f.display().to_string(), text));
            }
            (config, warnings, texts)
        }
        None => {
            let text = DEFAULT_CONFIG.replace("$LISTEN", &opts.listen.to_string());
            let (config, warnings) =
                config::parse_config("<embedded>/tocsin.yml", &text).map_err(join)?;
            (config, warnings, vec![(DEFAULT_RULES_NAME.to_owned(), DEFAULT_RULES.to_owned())])
        }
    };
    for w in &warnings {
        warn!("config: {w}");
    }
    if !config.remote_write.is_empty() {
        warn!(
            "config: remote_write is parsed but tocsin does not forward samples yet; \
             {} remote_write target(s) will receive nothing",
            config.remote_write.len()
        );
    }
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in &rule_texts {
        match parse_rule_file(name, text, ParseOptions::default()) {
            Ok(rf) => {
                for g in &rf.groups {
                    groups.push(Group::new(
                        name,
                        g,
                        config.global.evaluation_interval_ms,
                        config.global.rule_query_offset_ms,
                    ));
                }
            }
            Err(errs) => errors.extend(errs.iter().map(ToString::to_string)),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let targets = target_defs(&config)?;
    Ok(Loaded { config, groups, targets })
}

fn target_defs(cfg: &Config) -> Result<Vec<TargetDef>, String> {
    let mut out = Vec::new();
    for sc in &cfg.scrape_configs {
        let relabel: Option<MetricRelabel> = if sc.metric_relabel_configs.is_empty() {
            None
        } else {
            let rules = sc.metric_relabel_configs.clone();
            Some(Arc::new(move |l: Labels| relabel::process(&l, &rules)))
        };
        let authorization = match (&sc.bearer_token, &sc.basic_auth) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(b)) => Some(basic_auth_header(&b.username, &b.password)),
            (None, None) => None,
        };
        for t in sc.targets() {
            let t = t?;
            out.push(TargetDef {
                job: sc.job_name.clone(),
                url: t.url,
                labels: t.labels,
                discovered: t.discovered,
                interval_ms: t.interval_ms,
                timeout_ms: t.timeout_ms,
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps,
                body_size_limit: sc.body_size_limit,
                sample_limit: sc.sample_limit,
                metric_relabel: relabel.clone(),
                authorization: authorization.clone(),
            });
        }
    }
    Ok(out)
}

fn basic_auth_header(user: &str, password: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in raw.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn destinations(cfg: &Config) -> Vec<Destination> {
    let mut out = Vec::new();
    for am in &cfg.alerting.alertmanagers {
        for url in am.urls() {
            out.push(Destination {
                url,
                kind: DestinationKind::AlertmanagerV2,
                timeout: Duration::from_millis(am.timeout_ms.max(1) as u64),
                bearer_token: am.bearer_token.clone(),
                basic_auth: am
                    .basic_auth
                    .as_ref()
                    .map(|b| (b.username.clone(), b.password.clone())),
            });
        }
    }
    for w in &cfg.alerting.webhooks {
        out.push(Destination {
            url: w.url.clone(),
            kind: DestinationKind::Webhook,
            timeout: Duration::from_millis(w.timeout_ms.max(1) as u64),
            bearer_token: None,
            basic_auth: None,
        });
    }
    out
}

/// Prometheus's generator URL: the expression on the graph page.
fn generator_url(external_url: &str, expr: &str) -> String {
    let enc: String = serde_urlencoded::to_string([("g0.expr", expr)]).unwrap_or_default();
    format!("{}/graph?{enc}&g0.tab=1", external_url.trim_end_matches('/'))
}

fn alert_sink(notifier: Arc<Notifier>, settings: Arc<RwLock<SinkSettings>>) -> AlertSink {
    Arc::new(move |group: &Group, rule: usize, alerts: Vec<OutgoingAlert>| {
        let s = settings.read().unwrap_or_else(PoisonError::into_inner);
        let expr = match group.rules.get(rule).map(|r| &r.spec.expr) {
            Some(RuleExpr::PromQL { text, .. }) => text.clone(),
            Some(other) => other.display(),
            None => String::new(),
        };
        let url = generator_url(&s.external_url, &expr);
        let out: Vec<AmAlert> = alerts
            .into_iter()
            .filter_map(|a| {
                let labels = relabel::process(&a.labels, &s.alert_relabel)?;
                if labels.is_empty() {
                    return None;
                }
                Some(AmAlert {
                    labels,
                    annotations: a.annotations,
                    starts_at_ms: a.starts_at,
                    ends_at_ms: a.ends_at,
                    generator_url: url.clone(),
                })
            })
            .collect();
        if !out.is_empty() {
            notifier.send(out);
        }
    })
}

/// Builds the state without starting anything (tests use it directly).
/// `max_body_bytes` is fixed for the process: the HTTP layer's limit is set
/// when the router is built.
pub fn build(
    opts: ServeOptions,
    wal: Option<Arc<Wal>>,
    head: Arc<Head>,
    max_body_bytes: usize,
    wasm: Arc<WasmHost>,
) -> Arc<AppState> {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let external_url =
        opts.external_url.clone().unwrap_or_else(|| format!("http://{}", opts.listen));
    let notifier = Notifier::new(
        NotifierOptions { external_url: external_url.clone(), ..NotifierOptions::default() },
        &mut registry,
    );
    let sink = Arc::new(RwLock::new(SinkSettings::default()));
    let scheduler = Scheduler::new(
        head.clone(),
        metrics.clone(),
        alert_sink(notifier.clone(), sink.clone()),
        EvalSettings {
            engine: Arc::new(Engine::default()),
            external_labels: Labels::empty(),
            external_url: external_url.clone(),
            resend_delay_ms: tocsin_engine::rules::group::DEFAULT_RESEND_DELAY_MS,
            wasm: None,
        },
        wal.clone(),
    );
    let scrapes = ScrapeManager::new(head.clone(), metrics.clone());
    Arc::new(AppState {
        head,
        metrics,
        registry,
        scheduler,
        scrapes,
        notifier,
        wal,
        wasm,
        modules: std::sync::OnceLock::new(),
        live: RwLock::new(Live {
            bearer_token: None,
            engine: Arc::new(Engine::default()),
            retention_ms: 15 * 24 * 3_600_000,
            checkpoint_interval_ms: 5 * 60_000,
            query_timeout: Duration::from_secs(120),
            backtest: BacktestDefaults {
                external_labels: Labels::empty(),
                external_url: String::new(),
                evaluation_interval_ms: 60_000,
                resend_delay_ms: tocsin_engine::rules::group::DEFAULT_RESEND_DELAY_MS,
            },
        }),
        sink,
        opts,
        external_url,
        max_body_bytes,
        ready: AtomicBool::new(false),
        reload_lock: tokio::sync::Mutex::new(()),
    })
}

/// The service's WebAssembly runtime: wall-clock deadlines, one guest
/// thread per core, limits from the config's `modules` section (fixed for
/// the process: the pooling allocator is sized at start).
pub fn service_wasm_host(cfg: &Config) -> Result<Arc<WasmHost>, String> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let sandbox = Sandbox::new(SandboxOptions {
        deadline: Deadline::Epochs,
        memory_bytes: cfg.modules.memory_limit,
        max_instances: (threads * 4) as u32,
        ..SandboxOptions::default()
    })?;
    let limits = RunLimits {
        timeout: Duration::from_millis(cfg.modules.timeout_ms.max(1) as u64),
        engine: cfg.modules.limits.clone(),
        ..RunLimits::default()
    };
    WasmHost::new(sandbox, limits, threads)
}

/// Runs the service until SIGINT or SIGTERM.
pub async fn run(opts: ServeOptions) -> anyhow::Result<()> {
    // Check the config before touching the data directory.
    let first = load(&opts).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
    let head = Arc::new(Head::default());
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating data directory {}", opts.data_dir.display()))?;
    let started = std::time::Instant::now();
    let (wal, replay) = Wal::open(&opts.data_dir, &head, WalOptions::default())
        .with_context(|| format!("opening data directory {}", opts.data_dir.display()))?;
    info!(
        "data directory {}: restored {} series and {} samples in {:.1?} ({replay:?})",
        opts.data_dir.display(),
        head.stats().series,
        head.stats().samples_appended,
        started.elapsed(),
    );
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let wasm = service_wasm_host(&first.config).map_err(|e| anyhow::anyhow!(e))?;
    let state = build(
        opts.clone(),
        Some(wal.clone()),
        head.clone(),
        first.config.limits.max_body_bytes,
        wasm,
    );
    state.wasm.set_metrics(state.metrics.clone());
    let (registry, problems) = crate::wasm::registry::Registry::open(
        &opts.data_dir.join("modules"),
        state.wasm.clone(),
        first.config.modules.max_module_bytes,
    )
    .map_err(|e| anyhow::anyhow!("opening the module registry: {e}"))?;
    for p in problems {
        error!("{p}");
    }
    info!("{} rule module(s) loaded", registry.list().len());
    let _ = state.modules.set(Arc::new(registry));
    state.apply(first).await;
    state.metrics.reload(true);
    state.ready.store(true, Ordering::SeqCst);
    info!("tocsin listening on http://{}", opts.listen);

    let background = tokio::spawn(maintenance(state.clone()));
    let hup = tokio::spawn(reload_on_sighup(state.clone()));
    let app = crate::api::router(state.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;

    info!("shutting down");
    state.ready.store(false, Ordering::SeqCst);
    hup.abort();
    background.abort();
    state.scrapes.stop().await;
    state.scheduler.stop().await;
    state.notifier.shutdown(Duration::from_secs(5)).await;
    state.sync_wal().await.map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

/// WAL syncs every second (for scraped and recorded samples; writes over
/// HTTP sync before they answer), and retention plus a checkpoint every
/// checkpoint interval.
async fn maintenance(state: Arc<AppState>) {
    let mut last_checkpoint = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(e) = state.sync_wal().await {
            error!("write-ahead log sync failed: {e}");
        }
        let (retention, every) = {
            let live = state.live.read().unwrap_or_else(PoisonError::into_inner);
            (live.retention_ms, live.checkpoint_interval_ms)
        };
        if last_checkpoint.elapsed() < Duration::from_millis(every.max(1000) as u64) {
            continue;
        }
        last_checkpoint = std::time::Instant::now();
        let Some(wal) = state.wal.clone() else { continue };
        let head = state.head.clone();
        let min_time = wall_clock_ms() - retention;
        let r = tokio::task::spawn_blocking(move || {
            head.truncate_before(min_time);
            wal.checkpoint(&head, min_time)
        })
        .await;
        match r {
            Ok(Ok(report)) => {
                state.metrics.checkpoints.inc();
                info!("checkpoint written: {report:?}");
            }
            Ok(Err(e)) => error!("checkpoint failed: {e}"),
            Err(e) => error!("checkpoint task failed: {e}"),
        }
    }
}

#[cfg(unix)]
async fn reload_on_sighup(state: Arc<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        info!("SIGHUP: reloading the configuration");
        let _ = state.reload().await;
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_state: Arc<AppState>) {}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(
            basic_auth_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth_header("a", ""), "Basic YTo=");
    }

    #[test]
    fn generator_url_escapes_the_expression() {
        assert_eq!(
            generator_url("http://h:9099/", "up == 0"),
            "http://h:9099/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }

    #[test]
    fn the_embedded_default_config_loads() {
        let opts = ServeOptions {
            config: None,
            listen: "127.0.0.1:9099".parse().unwrap(),
            data_dir: PathBuf::from("unused"),
            external_url: None,
        };
        let loaded = load(&opts).expect("default config");
        assert!(!loaded.groups.is_empty());
        assert_eq!(loaded.targets.len(), 1);
        assert_eq!(loaded.targets[0].url, "http://127.0.0.1:9099/metrics");
    }
}
