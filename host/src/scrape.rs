//! Scraping: one task per target, pulling its `/metrics` every interval at a
//! fixed offset within the interval (so targets spread out), appending through
//! a per-target [`Ingester`] (which caches series and writes staleness markers
//! for series that vanish), and writing the `up`, `scrape_duration_seconds`
//! and `scrape_samples_*` series as Prometheus does.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use reqwest::header;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use tocsin_engine::exposition::{Format, Ingester};
use tocsin_engine::labels::{Labels, METRIC_NAME};
use tocsin_engine::sample::STALE_NAN;
use tocsin_engine::storage::Head;

use crate::metrics::Metrics;

/// Maps a scraped series' labels (target labels already attached) to the
/// stored ones, or `None` to drop it: `metric_relabel_configs`.
pub type MetricRelabel = Arc<dyn Fn(Labels) -> Option<Labels> + Send + Sync>;

/// Everything needed to scrape one target, resolved from the config.
#[derive(Clone)]
pub struct TargetDef {
    pub job: String,
    pub url: String,
    /// Final target labels (job, instance, static labels after relabelling).
    pub labels: Labels,
    /// Labels before relabelling, for the targets API.
    pub discovered: Labels,
    pub interval_ms: i64,
    pub timeout_ms: i64,
    pub honor_labels: bool,
    /// Refuse bodies larger than this (0: no limit).
    pub body_size_limit: usize,
    /// Fail scrapes with more samples than this (0: no limit).
    pub sample_limit: usize,
    pub metric_relabel: Option<MetricRelabel>,
    /// A full `Authorization` header value.
    pub authorization: Option<String>,
}

impl TargetDef {
    /// Identity across reloads: a target whose definition is unchanged keeps
    /// running (and keeps its series cache and staleness tracking).
    fn key(&self) -> String {
        format!(
            "{}|{}|{:?}|{}|{}|{}|{}|{}|{:?}|{}",
            self.job,
            self.url,
            self.labels,
            self.interval_ms,
            self.timeout_ms,
            self.honor_labels,
            self.body_size_limit,
            self.sample_limit,
            self.authorization,
            // Relabel rules are closures; a changed config restarts the target.
            self.metric_relabel.as_ref().map_or(0, |f| Arc::as_ptr(f) as *const () as usize),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// A target as the targets API shows it.
#[derive(Clone, Debug)]
pub struct TargetStatus {
    pub job: String,
    pub url: String,
    pub labels: Labels,
    pub discovered: Labels,
    pub interval_ms: i64,
    pub timeout_ms: i64,
    pub health: Health,
    pub last_error: String,
    pub last_scrape_ms: Option<i64>,
    pub last_duration: Duration,
    pub last_samples: usize,
}

struct TargetTask {
    status: Arc<RwLock<TargetStatus>>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

pub struct ScrapeManager {
    head: Arc<Head>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    targets: tokio::sync::Mutex<HashMap<String, TargetTask>>,
    statuses: RwLock<Vec<Arc<RwLock<TargetStatus>>>>,
}

/// Prometheus's Accept header: OpenMetrics preferred, text format accepted.
const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

impl ScrapeManager {
    pub fn new(head: Arc<Head>, metrics: Arc<Metrics>) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Arc::new(ScrapeManager {
            head,
            metrics,
            client,
            targets: tokio::sync::Mutex::new(HashMap::new()),
            statuses: RwLock::new(Vec::new()),
        })
    }

    /// Makes `defs` the scraped targets. Unchanged targets keep running;
    /// removed ones stop and their series get staleness markers.
    pub async fn apply(&self, defs: Vec<TargetDef>) {
        let mut running = self.targets.lock().await;
        let mut next: HashMap<String, TargetTask> = HashMap::new();
        for def in defs {
            let key = def.key();
            if next.contains_key(&key) {
                continue; // the same target listed twice is scraped once
            }
            let task = match running.remove(&key) {
                Some(t) => t,
                None => self.start(def),
            };
            next.insert(key, task);
        }
        for (_, t) in running.drain() {
            let _ = t.stop.send(true);
            let _ = t.handle.await;
        }
        let mut statuses: Vec<_> = next.values().map(|t| t.status.clone()).collect();
        statuses.sort_by_cached_key(|s| {
            let s = s.read().unwrap_or_else(PoisonError::into_inner);
            (s.job.clone(), s.url.clone())
        });
        *running = next;
        *self.statuses.write().unwrap_or_else(PoisonError::into_inner) = statuses;
    }

    pub async fn stop(&self) {
        self.apply(Vec::new()).await;
    }

    pub fn statuses(&self) -> Vec<TargetStatus> {
        self.statuses
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }

    fn start(&self, def: TargetDef) -> TargetTask {
        let status = Arc::new(RwLock::new(TargetStatus {
            job: def.job.clone(),
            url: def.url.clone(),
            labels: def.labels.clone(),
            discovered: def.discovered.clone(),
            interval_ms: def.interval_ms,
            timeout_ms: def.timeout_ms,
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape_ms: None,
            last_duration: Duration::ZERO,
            last_samples: 0,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let scraper = Scraper {
            ingester: ingester_for(&def),
            def,
            head: self.head.clone(),
            metrics: self.metrics.clone(),
            client: self.client.clone(),
            status: status.clone(),
            report_written: false,
        };
        let handle = tokio::spawn(scraper.run(stop_rx));
        TargetTask { status, stop, handle }
    }
}

/// Attaches target labels to every scraped series, as Prometheus does:
/// with `honor_labels` the scraped value wins; otherwise the target's does
/// and a clashing scraped label is kept as `exported_<name>`.
fn ingester_for(def: &TargetDef) -> Ingester {
    let target = def.labels.clone();
    let honor = def.honor_labels;
    let relabel = def.metric_relabel.clone();
    Ingester::new().with_relabel(move |scraped: Labels| {
        let mut b = scraped.builder();
        for l in target.iter() {
            match scraped.get(&l.name) {
                Some(_) if honor => {}
                Some(v) => {
                    let mut name = format!("exported_{}", l.name);
                    while scraped.has(&name) {
                        name = format!("exported_{name}");
                    }
                    b.set(name, v.to_owned());
                    b.set(l.name.clone(), l.value.clone());
                }
                None => {
                    b.set(l.name.clone(), l.value.clone());
                }
            }
        }
        // An empty value means "no label", as everywhere in Prometheus.
        let labels = drop_empty(b.labels());
        match &relabel {
            Some(f) => f(labels),
            None => Some(labels),
        }
    })
}

fn drop_empty(l: Labels) -> Labels {
    if l.iter().any(|x| x.value.is_empty()) {
        Labels::new(l.iter().filter(|x| !x.value.is_empty()).cloned().collect())
    } else {
        l
    }
}

struct Scraper {
    def: TargetDef,
    ingester: Ingester,
    head: Arc<Head>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    status: Arc<RwLock<TargetStatus>>,
    report_written: bool,
}

/// The body and its format, or why the scrape failed (the targets API's
/// `lastError`).
type ScrapeResult = Result<(Vec<u8>, Format), String>;

impl Scraper {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let interval = self.def.interval_ms.max(1);
        // A stable offset within the interval, from the target's identity.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.def.url.as_str(), self.def.labels.stable_hash()).hash(&mut h);
        let offset = (h.finish() % interval as u64) as i64;
        let now = crate::server::wall_clock_ms();
        let mut next = now - now.rem_euclid(interval) + offset;
        if next < now {
            next += interval;
        }
        loop {
            let wait = (next - crate::server::wall_clock_ms()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            self.scrape_once().await;
            let now = crate::server::wall_clock_ms();
            next += interval;
            if next <= now {
                // Fell behind (a slow target or a stalled process): skip to
                // the next slot rather than scraping in a burst.
                next += (now - next) / interval * interval + interval;
            }
        }
        // A target that goes away: its series end now, not after the lookback.
        let t = crate::server::wall_clock_ms();
        self.ingester.mark_stale(&self.head, t);
        if self.report_written {
            for name in REPORT_SERIES {
                let _ = self.head.append_labels(&self.report_labels(name), t, STALE_NAN);
            }
        }
    }

    async fn scrape_once(&mut self) {
        let job = Metrics::job(&self.def.job);
        self.metrics.scrapes.get_or_create(&job).inc();
        let t = crate::server::wall_clock_ms();
        let started = Instant::now();
        let fetched = fetch(&self.client, &self.def).await;
        let mut samples = 0usize;
        let mut post_relabel = 0usize;
        let mut added = 0usize;
        let result = match fetched {
            Ok((body, format)) => {
                let head = self.head.clone();
                match self.ingester.ingest(&head, &body, format, t) {
                    Ok(report) => {
                        samples = report.samples;
                        post_relabel = report.samples - report.dropped;
                        added = report.series_added;
                        self.metrics.ingested("scrape", report.appended as u64);
                        self.metrics.rejected("scrape", "out_of_order", report.out_of_order as u64);
                        self.metrics.rejected("scrape", "duplicate", report.duplicate as u64);
                        self.metrics.rejected(
                            "scrape",
                            "out_of_bounds",
                            report.out_of_bounds as u64,
                        );
                        if self.def.sample_limit > 0 && post_relabel > self.def.sample_limit {
                            // Prometheus refuses the whole scrape; the samples
                            // are in already, so end them at once instead.
                            self.ingester.mark_stale(&self.head, t + 1);
                            Err(format!(
                                "sample limit exceeded: {post_relabel} > {}",
                                self.def.sample_limit
                            ))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => Err(format!("parse error: {e}")),
                }
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.metrics.scrape_failures.get_or_create(&job).inc();
            self.ingester.mark_stale(&self.head, t);
        }
        let took = started.elapsed();
        let up = if result.is_ok() { 1.0 } else { 0.0 };
        let report = [
            ("up", up),
            ("scrape_duration_seconds", took.as_secs_f64()),
            ("scrape_samples_scraped", samples as f64),
            ("scrape_samples_post_metric_relabeling", post_relabel as f64),
            ("scrape_series_added", added as f64),
        ];
        for (name, v) in report {
            let _ = self.head.append_labels(&self.report_labels(name), t, v);
        }
        self.report_written = true;
        let mut st = self.status.write().unwrap_or_else(PoisonError::into_inner);
        st.health = if result.is_ok() { Health::Up } else { Health::Down };
        st.last_error = result.err().unwrap_or_default();
        st.last_scrape_ms = Some(t);
        st.last_duration = took;
        st.last_samples = samples;
    }

    fn report_labels(&self, name: &str) -> Labels {
        let mut b = self.def.labels.builder();
        b.set(METRIC_NAME, name);
        b.labels()
    }
}

/// One HTTP scrape of `def`, its body size limit and timeout enforced.
async fn fetch(client: &reqwest::Client, def: &TargetDef) -> ScrapeResult {
    let timeout = Duration::from_millis(def.timeout_ms.max(1) as u64);
    let mut req = client
        .get(&def.url)
        .header(header::ACCEPT, ACCEPT)
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", timeout.as_secs_f64()))
        .timeout(timeout);
    if let Some(auth) = &def.authorization {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let mut resp = req.send().await.map_err(describe)?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let format = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_content_type)
        .unwrap_or(Format::PrometheusText);
    let limit = def.body_size_limit;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        body.extend_from_slice(&chunk);
        if limit > 0 && body.len() > limit {
            return Err(format!("body size limit exceeded: more than {limit} bytes"));
        }
    }
    Ok((body, format))
}

const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// reqwest's errors name the URL and the cause; keep both, one line.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded (scrape timeout)".to_owned();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
