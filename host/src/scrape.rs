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
    pub honor_timestamps: bool,
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
            "{}|{}|{:?}|{}|{}|{}|{}|{}|{}|{:?}|{}",
            self.job,
            self.url,
            self.labels,
            self.interval_ms,
            self.timeout_ms,
            self.honor_labels,
            self.honor_timestamps,
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
    /// `# TYPE`, `# HELP` and `# UNIT` of the last successful scrape.
    pub metadata: Arc<Vec<Metadata>>,
}

/// One metric family's metadata, as the metadata API reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub metric: String,
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

/// The metadata comment lines of an exposition body. Only lines starting
/// with `#` are parsed (each on its own), so this costs a scan for line
/// starts, not a second parse of the samples.
pub fn metadata(body: &[u8], format: Format) -> Vec<Metadata> {
    use std::collections::BTreeMap;
    use tocsin_engine::exposition::{Entry, Parser};
    let mut families: BTreeMap<String, Metadata> = BTreeMap::new();
    for line in body.split(|&b| b == b'\n').filter(|l| l.first() == Some(&b'#')) {
        let mut p = Parser::new(line, format);
        let Ok(Some(entry)) = p.next_entry() else { continue };
        let metric = match &entry {
            Entry::Help { metric, .. }
            | Entry::Type { metric, .. }
            | Entry::Unit { metric, .. } => metric.to_string(),
            _ => continue,
        };
        let m = families.entry(metric.clone()).or_insert_with(|| Metadata {
            metric,
            metric_type: "unknown".into(),
            ..Metadata::default()
        });
        match entry {
            Entry::Help { text, .. } => m.help = text.into_owned(),
            Entry::Type { metric_type, .. } => m.metric_type = metric_type.as_str().to_owned(),
            Entry::Unit { unit, .. } => m.unit = unit.to_owned(),
            _ => {}
        }
    }
    families.into_values().collect()
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
            metadata: Arc::default(),
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
    Ingester::new().with_honor_timestamps(def.honor_timestamps).with_relabel(
        move |scraped: Labels| {
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
        },
    )
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
        let mut meta = None;
        let mut samples = 0usize;
        let mut post_relabel = 0usize;
        let mut added = 0usize;
        let result = match fetched {
            Ok((body, format)) => {
                let head = self.head.clone();
                match self.ingester.ingest(&head, &body, format, t) {
                    Ok(report) => {
                        meta = Some(metadata(&body, format));
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
        if let Some(m) = meta {
            st.metadata = Arc::new(m);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Router;
    use axum::http::header;
    use axum::routing::get;
    use prometheus_client::registry::Registry;
    use tocsin_engine::relabel::{Action, RelabelConfig, RelabelRegex};

    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    /// A target whose body the test swaps; `gzip` serves it compressed.
    async fn target(body: Arc<Mutex<String>>, gzip: bool) -> String {
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let text = body.lock().unwrap().clone();
                async move {
                    if gzip {
                        use std::io::Write;
                        let mut enc =
                            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        enc.write_all(text.as_bytes()).unwrap();
                        let bytes = enc.finish().unwrap();
                        ([(header::CONTENT_ENCODING, "gzip")], bytes).into_response()
                    } else {
                        text.into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/metrics")
    }

    use axum::response::IntoResponse;

    fn def(url: &str) -> TargetDef {
        TargetDef {
            job: "j".into(),
            url: url.into(),
            labels: l(&[("instance", "t:1"), ("job", "j")]),
            discovered: Labels::empty(),
            interval_ms: 1000,
            timeout_ms: 1000,
            honor_labels: false,
            honor_timestamps: true,
            body_size_limit: 0,
            sample_limit: 0,
            metric_relabel: None,
            authorization: None,
        }
    }

    fn scraper(def: TargetDef, head: &Arc<Head>) -> Scraper {
        let metrics = Arc::new(Metrics::new(&mut Registry::default()));
        Scraper {
            ingester: ingester_for(&def),
            def,
            head: head.clone(),
            metrics,
            client: reqwest::Client::new(),
            status: Arc::new(RwLock::new(TargetStatus {
                job: String::new(),
                url: String::new(),
                labels: Labels::empty(),
                discovered: Labels::empty(),
                interval_ms: 0,
                timeout_ms: 0,
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape_ms: None,
                last_duration: Duration::ZERO,
                last_samples: 0,
                metadata: Arc::default(),
            })),
            report_written: false,
        }
    }

    fn last(head: &Head, labels: &Labels) -> Option<f64> {
        let s = head.lookup(labels)?;
        let mut out = Vec::new();
        tocsin_engine::storage::Queryable::samples(head, s.id(), i64::MIN, i64::MAX, &mut out)
            .ok()?;
        out.last().map(|x| x.v)
    }

    #[tokio::test]
    async fn target_labels_exported_and_report_series() {
        let body = Arc::new(Mutex::new("m{job=\"inner\"} 1\nother 2\n".to_owned()));
        let url = target(body.clone(), true).await;
        let head = Arc::new(Head::default());
        let mut s = scraper(def(&url), &head);
        s.scrape_once().await;
        let st = s.status.read().unwrap().clone();
        assert_eq!(st.health, Health::Up, "{}", st.last_error);
        // The target's job wins; the scraped one is kept as exported_job.
        let m =
            l(&[("__name__", "m"), ("exported_job", "inner"), ("instance", "t:1"), ("job", "j")]);
        assert_eq!(last(&head, &m), Some(1.0));
        let up = l(&[("__name__", "up"), ("instance", "t:1"), ("job", "j")]);
        assert_eq!(last(&head, &up), Some(1.0));
        let n = l(&[("__name__", "scrape_samples_scraped"), ("instance", "t:1"), ("job", "j")]);
        assert_eq!(last(&head, &n), Some(2.0));

        // A series that disappears gets a staleness marker at once.
        *body.lock().unwrap() = "m{job=\"inner\"} 3\n".to_owned();
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.scrape_once().await;
        let other = l(&[("__name__", "other"), ("instance", "t:1"), ("job", "j")]);
        assert!(last(&head, &other).is_some_and(tocsin_engine::is_stale_nan));
    }

    #[tokio::test]
    async fn honor_labels_and_metric_relabelling() {
        let body = Arc::new(Mutex::new("m{job=\"inner\"} 1\ndrop_me 2\n".to_owned()));
        let url = target(body, false).await;
        let head = Arc::new(Head::default());
        let mut d = def(&url);
        d.honor_labels = true;
        let rule = RelabelConfig {
            source_labels: vec!["__name__".into()],
            regex: RelabelRegex::new("drop_.*").unwrap(),
            action: Action::Drop,
            ..RelabelConfig::default()
        };
        d.metric_relabel = Some(Arc::new(move |l: Labels| {
            tocsin_engine::relabel::process(&l, std::slice::from_ref(&rule))
        }));
        let mut s = scraper(d, &head);
        s.scrape_once().await;
        assert_eq!(
            last(&head, &l(&[("__name__", "m"), ("instance", "t:1"), ("job", "inner")])),
            Some(1.0)
        );
        assert!(
            head.lookup(&l(&[("__name__", "drop_me"), ("instance", "t:1"), ("job", "j")]))
                .is_none()
        );
        let post = l(&[
            ("__name__", "scrape_samples_post_metric_relabeling"),
            ("instance", "t:1"),
            ("job", "j"),
        ]);
        assert_eq!(last(&head, &post), Some(1.0));
    }

    #[tokio::test]
    async fn failures_mark_down_and_stale() {
        let body = Arc::new(Mutex::new("m 1\n".to_owned()));
        let url = target(body.clone(), false).await;
        let head = Arc::new(Head::default());
        let mut s = scraper(def(&url), &head);
        s.scrape_once().await;
        *body.lock().unwrap() = "m{ 1\n".to_owned();
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.scrape_once().await;
        let st = s.status.read().unwrap().clone();
        assert_eq!(st.health, Health::Down);
        assert!(st.last_error.starts_with("parse error: "), "{}", st.last_error);
        let up = l(&[("__name__", "up"), ("instance", "t:1"), ("job", "j")]);
        assert_eq!(last(&head, &up), Some(0.0));
        let m = l(&[("__name__", "m"), ("instance", "t:1"), ("job", "j")]);
        assert!(last(&head, &m).is_some_and(tocsin_engine::is_stale_nan));
        // Unreachable targets are down with the cause.
        let mut d = def("http://127.0.0.1:1/metrics");
        d.timeout_ms = 500;
        let mut s = scraper(d, &head);
        s.scrape_once().await;
        assert_eq!(s.status.read().unwrap().health, Health::Down);
    }

    #[test]
    fn metadata_from_comment_lines() {
        let body = b"# HELP a_total Requests \\\\ served.\n# TYPE a_total counter\na_total 1\n# TYPE g gauge\ng 2\n";
        let m = metadata(body, Format::PrometheusText);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].metric, "a_total");
        assert_eq!(m[0].metric_type, "counter");
        assert_eq!(m[0].help, "Requests \\ served.");
        assert_eq!(m[1].metric_type, "gauge");
    }
}
