//! The notifier: delivers alerts to Alertmanagers (API v2) and, for users
//! without an Alertmanager, directly to webhooks in Alertmanager's webhook
//! payload format.
//!
//! As in Prometheus's `notifier/` package, every destination has its own
//! bounded queue and its own task. [`Notifier::send`] never blocks: it appends
//! every alert to every queue, dropping the oldest queued alerts when a queue is
//! full, because a newer notification about an alert supersedes an older one.
//! The task POSTs up to `max_batch` alerts per request with a per-request
//! timeout.
//!
//! A failed request is counted and its alerts are dropped, not retried. That is
//! Prometheus's design and it is safe because the rule engine re-sends: firing
//! alerts are re-sent every resend delay (1m) with a fresh `endsAt`, and resolved
//! alerts are re-sent for 15 minutes after they resolve. A retry queue here would
//! only deliver stale copies of what the next resend carries anyway.

// The notifier is built ahead of `tocsin serve`; the wiring lands next.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde::ser::Serializer;
use tocsin_engine::Labels;
use tocsin_engine::duration::format_rfc3339;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One alert as Alertmanager receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct AmAlert {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    /// Unix milliseconds; 0 means unset and is left out of the payload.
    pub starts_at_ms: i64,
    /// Unix milliseconds; in the past for a resolved alert. 0 means unset:
    /// Alertmanager then applies its `resolve_timeout`.
    pub ends_at_ms: i64,
    pub generator_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationKind {
    /// `POST /api/v2/alerts` of an Alertmanager: a JSON array of alerts.
    AlertmanagerV2,
    /// A webhook receiving Alertmanager's webhook message (version "4").
    Webhook,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    /// The full URL to POST to, e.g. `http://am:9093/api/v2/alerts`.
    pub url: String,
    pub kind: DestinationKind,
    pub timeout: Duration,
    pub bearer_token: Option<String>,
    pub basic_auth: Option<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// Alerts each destination's queue holds before dropping the oldest.
    pub queue_capacity: usize,
    /// Alerts per request.
    pub max_batch: usize,
    /// This tocsin's external URL: the webhook message's `externalURL`.
    pub external_url: String,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        // Prometheus's defaults (--alertmanager.notification-queue-capacity, DefaultMaxBatchSize).
        NotifierOptions { queue_capacity: 10_000, max_batch: 256, external_url: String::new() }
    }
}

/// The `receiver` of direct webhook messages: there is no Alertmanager route.
pub const WEBHOOK_RECEIVER: &str = "tocsin-direct";
/// The `groupKey` of direct webhook messages. Direct delivery does no grouping,
/// so every message belongs to the one group that Alertmanager's root route
/// without `group_by` would form, and that group's key is `{}:{}`.
pub const WEBHOOK_GROUP_KEY: &str = "{}:{}";

/// Delivers alerts to a set of destinations. Shared as an `Arc`.
pub struct Notifier {
    opts: NotifierOptions,
    client: reqwest::Client,
    metrics: Metrics,
    destinations: Mutex<HashMap<String, Running>>,
    closed: AtomicBool,
}

struct Running {
    queue: Arc<SendQueue>,
    task: JoinHandle<()>,
}

/// One destination's queue; shared by [`Notifier::send`] and the send task.
struct SendQueue {
    label: AmLabel,
    /// Replaced by [`Notifier::apply`] when timeout or credentials change.
    destination: Mutex<Destination>,
    alerts: Mutex<VecDeque<Arc<AmAlert>>>,
    wake: Notify,
    /// Set on shutdown: the task exits once the queue is empty.
    draining: AtomicBool,
}

impl Notifier {
    /// A notifier with no destinations; registers its metrics in `registry`
    /// under their full names (`tocsin_notifications_*`).
    pub fn new(opts: NotifierOptions, registry: &mut Registry) -> Arc<Notifier> {
        let opts = NotifierOptions { max_batch: opts.max_batch.max(1), ..opts };
        let metrics = Metrics::new(registry);
        metrics.queue_capacity.set(i64::try_from(opts.queue_capacity).unwrap_or(i64::MAX));
        // Like Prometheus, no proxy from the environment: an Alertmanager is
        // reached directly unless the configuration says otherwise.
        let client = reqwest::Client::builder()
            .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Arc::new(Notifier {
            opts,
            client,
            metrics,
            destinations: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// Sets the destinations (on start and on every reload). A destination whose
    /// URL is unchanged keeps its queue and task and takes the new settings for
    /// its next request; removed ones stop at once and their queued alerts are
    /// discarded; new ones start a task. Must run inside a tokio runtime.
    pub fn apply(&self, destinations: Vec<Destination>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut running = lock(&self.destinations);
        let mut next = HashMap::with_capacity(destinations.len());
        for dest in destinations {
            let url = dest.url.clone();
            if next.contains_key(&url) {
                continue;
            }
            let entry = match running.remove(&url) {
                Some(r) => {
                    *lock(&r.queue.destination) = dest;
                    r
                }
                None => self.start(dest),
            };
            next.insert(url, entry);
        }
        for (url, gone) in running.drain() {
            gone.task.abort();
            let discarded = lock(&gone.queue.alerts).len();
            if discarded > 0 {
                tracing::warn!(alertmanager = %url, count = discarded, "destination removed, queued alerts discarded");
            }
            self.metrics.forget(&gone.queue.label);
        }
        *running = next;
        self.metrics.alertmanagers.set(running.len() as i64);
    }

    fn start(&self, dest: Destination) -> Running {
        let label = AmLabel { alertmanager: dest.url.clone() };
        self.metrics.init(&label);
        let queue = Arc::new(SendQueue {
            label,
            destination: Mutex::new(dest),
            alerts: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            draining: AtomicBool::new(false),
        });
        let task = tokio::spawn(send_loop(
            queue.clone(),
            self.client.clone(),
            self.metrics.clone(),
            self.opts.max_batch,
            self.opts.external_url.clone(),
        ));
        Running { queue, task }
    }

    /// Queues `alerts` for every destination without waiting.
    pub fn send(&self, alerts: Vec<AmAlert>) {
        if alerts.is_empty() || self.closed.load(Ordering::Acquire) {
            return;
        }
        let alerts: Vec<Arc<AmAlert>> = alerts.into_iter().map(Arc::new).collect();
        for r in lock(&self.destinations).values() {
            r.queue.push(&alerts, self.opts.queue_capacity, &self.metrics);
        }
    }

    /// Stops accepting alerts and lets every destination send what it has
    /// queued, for at most `deadline` in total. What is left is counted as
    /// dropped.
    pub async fn shutdown(&self, deadline: Duration) {
        self.closed.store(true, Ordering::Release);
        let running: Vec<Running> = lock(&self.destinations).drain().map(|(_, r)| r).collect();
        for r in &running {
            r.queue.draining.store(true, Ordering::Release);
            r.queue.wake.notify_one();
        }
        let until = tokio::time::Instant::now() + deadline;
        for mut r in running {
            if tokio::time::timeout_at(until, &mut r.task).await.is_err() {
                r.task.abort();
                let left = lock(&r.queue.alerts).len();
                tracing::warn!(alertmanager = %r.queue.label.alertmanager, count = left, "notification queue not drained before the shutdown deadline");
                self.metrics.dropped.get_or_create(&r.queue.label).inc_by(left as u64);
            }
        }
        self.metrics.alertmanagers.set(0);
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Without this the tasks would outlive the notifier, parked forever.
        for r in lock(&self.destinations).values() {
            r.task.abort();
        }
    }
}

impl SendQueue {
    fn push(&self, alerts: &[Arc<AmAlert>], capacity: usize, metrics: &Metrics) {
        let mut queue = lock(&self.alerts);
        // A batch larger than the queue keeps its newest alerts.
        let skipped = alerts.len().saturating_sub(capacity);
        let overflow =
            (queue.len() + alerts.len() - skipped).saturating_sub(capacity).min(queue.len());
        queue.drain(..overflow);
        queue.extend(alerts[skipped..].iter().cloned());
        let dropped = skipped + overflow;
        metrics.queue_length.get_or_create(&self.label).set(queue.len() as i64);
        drop(queue);
        if dropped > 0 {
            tracing::warn!(alertmanager = %self.label.alertmanager, count = dropped, "notification queue full, dropping the oldest alerts");
            metrics.dropped.get_or_create(&self.label).inc_by(dropped as u64);
        }
        self.wake.notify_one();
    }

    fn next_batch(&self, max: usize, metrics: &Metrics) -> Vec<Arc<AmAlert>> {
        let mut queue = lock(&self.alerts);
        let n = queue.len().min(max);
        let batch = queue.drain(..n).collect();
        metrics.queue_length.get_or_create(&self.label).set(queue.len() as i64);
        batch
    }
}

async fn send_loop(
    queue: Arc<SendQueue>,
    client: reqwest::Client,
    metrics: Metrics,
    max_batch: usize,
    external_url: String,
) {
    loop {
        let batch = queue.next_batch(max_batch, &metrics);
        if batch.is_empty() {
            if queue.draining.load(Ordering::Acquire) {
                return;
            }
            // `notify_one` stores a permit, so a push between `next_batch` and
            // here is not missed.
            queue.wake.notified().await;
            continue;
        }
        let dest = lock(&queue.destination).clone();
        let count = batch.len() as u64;
        let body = match dest.kind {
            DestinationKind::AlertmanagerV2 => alertmanager_v2_body(&batch),
            DestinationKind::Webhook => webhook_body(&batch, &external_url, now_ms()),
        };
        let begin = Instant::now();
        match post(&client, &dest, body).await {
            Ok(()) => {
                metrics.latency.get_or_create(&queue.label).observe(begin.elapsed().as_secs_f64());
                metrics.sent.get_or_create(&queue.label).inc_by(count);
            }
            Err(e) => {
                tracing::warn!(alertmanager = %dest.url, count, error = %e, "error sending alerts");
                metrics.errors.get_or_create(&queue.label).inc_by(count);
                metrics.dropped.get_or_create(&queue.label).inc_by(count);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("bad response status {0}")]
    Status(reqwest::StatusCode),
}

async fn post(
    client: &reqwest::Client,
    dest: &Destination,
    body: Vec<u8>,
) -> Result<(), SendError> {
    let mut req = client
        .post(&dest.url)
        .timeout(dest.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = &dest.bearer_token {
        req = req.bearer_auth(token);
    }
    if let Some((user, password)) = &dest.basic_auth {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await?;
    let status = resp.status();
    // Read the body so the connection can be reused.
    resp.bytes().await?;
    if status.is_success() { Ok(()) } else { Err(SendError::Status(status)) }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every
    // critical section is a single queue or map operation.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- Payloads ----

/// Go's zero `time.Time`, which Alertmanager prints for an unset time.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

struct LabelMap<'a>(&'a Labels);

impl Serialize for LabelMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|l| (&*l.name, &*l.value)))
    }
}

struct PairMap<'a>(&'a [(String, String)]);

impl Serialize for PairMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Alertmanager's `PostableAlert`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: LabelMap<'a>,
    annotations: PairMap<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

fn optional_time(ms: i64) -> Option<String> {
    (ms != 0).then(|| format_rfc3339(ms))
}

fn alertmanager_v2_body(alerts: &[Arc<AmAlert>]) -> Vec<u8> {
    let alerts: Vec<PostableAlert<'_>> = alerts
        .iter()
        .map(|a| PostableAlert {
            labels: LabelMap(&a.labels),
            annotations: PairMap(&a.annotations),
            starts_at: optional_time(a.starts_at_ms),
            ends_at: optional_time(a.ends_at_ms),
            generator_url: &a.generator_url,
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap_or_default()
}

/// Alertmanager's webhook `Message`: its template `Data` plus version,
/// groupKey and truncatedAlerts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage<'a> {
    receiver: &'static str,
    status: &'static str,
    alerts: Vec<WebhookAlert<'a>>,
    group_labels: BTreeMap<&'a str, &'a str>,
    common_labels: BTreeMap<&'a str, &'a str>,
    common_annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'static str,
    truncated_alerts: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: LabelMap<'a>,
    annotations: PairMap<'a>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

fn webhook_body(alerts: &[Arc<AmAlert>], external_url: &str, now_ms: i64) -> Vec<u8> {
    // Alertmanager's rule: resolved once endsAt is set and not after now.
    let firing = |a: &AmAlert| a.ends_at_ms == 0 || a.ends_at_ms > now_ms;
    let status = |firing: bool| if firing { "firing" } else { "resolved" };
    let time = |ms: i64| if ms == 0 { GO_ZERO_TIME.to_owned() } else { format_rfc3339(ms) };
    let message = WebhookMessage {
        receiver: WEBHOOK_RECEIVER,
        status: status(alerts.iter().any(|a| firing(a))),
        alerts: alerts
            .iter()
            .map(|a| WebhookAlert {
                status: status(firing(a)),
                labels: LabelMap(&a.labels),
                annotations: PairMap(&a.annotations),
                starts_at: time(a.starts_at_ms),
                // Alertmanager does not reveal the end of a still-firing alert.
                ends_at: time(if firing(a) { 0 } else { a.ends_at_ms }),
                generator_url: &a.generator_url,
                fingerprint: format!("{:016x}", fingerprint(&a.labels)),
            })
            .collect(),
        group_labels: BTreeMap::new(),
        common_labels: common(
            alerts.iter().map(|a| a.labels.iter().map(|l| (&*l.name, &*l.value))),
        ),
        common_annotations: common(
            alerts.iter().map(|a| a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        ),
        external_url,
        version: "4",
        group_key: WEBHOOK_GROUP_KEY,
        truncated_alerts: 0,
    };
    serde_json::to_vec(&message).unwrap_or_default()
}

/// The pairs every set has, with equal values.
fn common<'a, I>(mut sets: impl Iterator<Item = I>) -> BTreeMap<&'a str, &'a str>
where
    I: Iterator<Item = (&'a str, &'a str)>,
{
    let mut common: BTreeMap<&str, &str> = sets.next().map(Iterator::collect).unwrap_or_default();
    for set in sets {
        let set: HashMap<&str, &str> = set.collect();
        common.retain(|k, v| set.get(k) == Some(v));
    }
    common
}

/// Alertmanager's alert fingerprint (Prometheus's `model.LabelSet.Fingerprint`):
/// FNV-1a 64 over the labels sorted by name, each name and value followed by
/// the byte 0xff, which cannot occur in UTF-8.
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    // `Labels` is sorted by name in byte order, as Go's sort.Strings.
    for l in labels.iter() {
        add(l.name.as_bytes());
        add(&[0xff]);
        add(l.value.as_bytes());
        add(&[0xff]);
    }
    h
}

// ---- Metrics ----

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AmLabel {
    alertmanager: String,
}

type LatencyFamily = Family<AmLabel, Histogram, fn() -> Histogram>;

#[derive(Clone)]
struct Metrics {
    sent: Family<AmLabel, Counter>,
    errors: Family<AmLabel, Counter>,
    dropped: Family<AmLabel, Counter>,
    queue_length: Family<AmLabel, Gauge>,
    queue_capacity: Gauge,
    latency: LatencyFamily,
    alertmanagers: Gauge,
}

impl Metrics {
    fn new(registry: &mut Registry) -> Metrics {
        fn latency_histogram() -> Histogram {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        }
        let m = Metrics {
            sent: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            queue_length: Family::default(),
            queue_capacity: Gauge::default(),
            latency: Family::new_with_constructor(latency_histogram),
            alertmanagers: Gauge::default(),
        };
        // Counter names get their `_total` suffix from the encoder.
        registry.register(
            "tocsin_notifications_sent",
            "Total number of alerts sent.",
            m.sent.clone(),
        );
        registry.register(
            "tocsin_notifications_errors",
            "Total number of sent alerts affected by errors.",
            m.errors.clone(),
        );
        registry.register(
            "tocsin_notifications_dropped",
            "Total number of alerts dropped: queue full, send errors, or not drained on shutdown.",
            m.dropped.clone(),
        );
        registry.register(
            "tocsin_notifications_queue_length",
            "The number of alert notifications in the queue.",
            m.queue_length.clone(),
        );
        registry.register(
            "tocsin_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            m.queue_capacity.clone(),
        );
        registry.register(
            "tocsin_notifications_latency_seconds",
            "Latency of successful alert notification requests.",
            m.latency.clone(),
        );
        registry.register(
            "tocsin_notifications_alertmanagers_discovered",
            "The number of alert destinations active.",
            m.alertmanagers.clone(),
        );
        m
    }

    /// Creates a destination's series at zero, so rates work from the start.
    fn init(&self, l: &AmLabel) {
        let _ = self.sent.get_or_create(l);
        let _ = self.errors.get_or_create(l);
        let _ = self.dropped.get_or_create(l);
        let _ = self.queue_length.get_or_create(l);
    }

    fn forget(&self, l: &AmLabel) {
        self.sent.remove(l);
        self.errors.remove(l);
        self.dropped.remove(l);
        self.queue_length.remove(l);
        self.latency.remove(l);
    }
}

/// Test helpers shared with end-to-end tests: a real Alertmanager process and
/// an in-process webhook that records what it receives.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use tokio::sync::{Semaphore, mpsc};
    use tokio::task::JoinHandle;

    /// Bound on every wait in these helpers.
    pub(crate) const WAIT: Duration = Duration::from_secs(20);

    pub(crate) use tocsin_tests::free_port;

    /// An Alertmanager process with one route to a webhook (the tests
    /// crate's [`tocsin_tests::start_alertmanager`]), killed on drop.
    pub(crate) struct RealAlertmanager {
        proc: tocsin_tests::Proc,
        port: u16,
        _dir: tocsin_tests::TempDir,
    }

    impl RealAlertmanager {
        pub(crate) const BINARY: &'static str = tocsin_tests::ALERTMANAGER;

        /// Whether the binary is installed; prints why a test is skipped if not.
        pub(crate) fn available() -> bool {
            let found = std::path::Path::new(Self::BINARY).exists();
            if !found {
                eprintln!("skipping: {} is not installed", Self::BINARY);
            }
            found
        }

        pub(crate) async fn start(webhook_url: &str) -> Self {
            Self::start_on(free_port(), webhook_url).await
        }

        /// Starts Alertmanager on `port`, routing every alert to `webhook_url`
        /// (grouped by alertname, no group wait, 1s group interval, resolved
        /// notifications on), and waits until it is ready.
        pub(crate) async fn start_on(port: u16, webhook_url: &str) -> Self {
            let dir = tocsin_tests::TempDir::new("am");
            let proc = tocsin_tests::start_alertmanager(dir.path(), port, webhook_url);
            let mut am = RealAlertmanager { proc, port, _dir: dir };
            let client = reqwest::Client::builder().no_proxy().build().expect("client");
            tocsin_tests::wait_ready(&client, &am.url(), &mut am.proc).await;
            am
        }

        pub(crate) fn log(&self) -> String {
            self.proc.log()
        }

        /// `http://127.0.0.1:PORT`
        pub(crate) fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// Where the notifier POSTs: `http://127.0.0.1:PORT/api/v2/alerts`.
        pub(crate) fn alerts_url(&self) -> String {
            format!("{}/api/v2/alerts", self.url())
        }
    }

    /// How a [`WebhookSink`] answers.
    #[derive(Clone, Copy)]
    pub(crate) enum Reply {
        Ok,
        Status(u16),
        /// Answer 200 after this long.
        Delay(Duration),
        /// Hold every request until [`WebhookSink::release`].
        Gated,
    }

    pub(crate) struct Captured {
        pub(crate) headers: HeaderMap,
        pub(crate) body: serde_json::Value,
    }

    struct SinkState {
        reply: Reply,
        gate: Semaphore,
        tx: mpsc::UnboundedSender<Captured>,
    }

    /// An HTTP server on 127.0.0.1:0 that records every request's headers and
    /// JSON body, whatever the path.
    pub(crate) struct WebhookSink {
        pub(crate) url: String,
        state: Arc<SinkState>,
        rx: mpsc::UnboundedReceiver<Captured>,
        server: JoinHandle<()>,
    }

    impl WebhookSink {
        pub(crate) async fn start(reply: Reply) -> Self {
            let (tx, rx) = mpsc::unbounded_channel();
            let state = Arc::new(SinkState { reply, gate: Semaphore::new(0), tx });
            let app = axum::Router::new().fallback(record).with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}/hook", listener.local_addr().expect("address"));
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            WebhookSink { url, state, rx, server }
        }

        /// The next request, if one arrives within `within`.
        pub(crate) async fn next(&mut self, within: Duration) -> Option<Captured> {
            tokio::time::timeout(within, self.rx.recv()).await.ok().flatten()
        }

        /// Lets held and future requests of a [`Reply::Gated`] sink through.
        pub(crate) fn release(&self) {
            self.state.gate.close();
        }
    }

    impl Drop for WebhookSink {
        fn drop(&mut self) {
            self.release();
            self.server.abort();
        }
    }

    async fn record(
        State(s): State<Arc<SinkState>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let _ = s.tx.send(Captured { headers, body });
        match s.reply {
            Reply::Ok => StatusCode::OK,
            Reply::Status(code) => {
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Reply::Delay(d) => {
                tokio::time::sleep(d).await;
                StatusCode::OK
            }
            Reply::Gated => {
                // Fails (and so passes) once the gate is closed.
                let _ = s.gate.acquire().await;
                StatusCode::OK
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::testing::{Captured, RealAlertmanager, Reply, WAIT, WebhookSink, free_port};
    use super::*;

    const SHORT: Duration = Duration::from_millis(300);

    fn opts(queue_capacity: usize, max_batch: usize) -> NotifierOptions {
        NotifierOptions { queue_capacity, max_batch, external_url: "http://tocsin:9090".into() }
    }

    fn notifier(queue_capacity: usize, max_batch: usize) -> Arc<Notifier> {
        Notifier::new(opts(queue_capacity, max_batch), &mut Registry::default())
    }

    fn dest(url: &str, kind: DestinationKind) -> Destination {
        Destination {
            url: url.into(),
            kind,
            timeout: Duration::from_secs(5),
            bearer_token: None,
            basic_auth: None,
        }
    }

    fn alert(name: &str) -> AmAlert {
        AmAlert {
            labels: Labels::from_pairs(&[("alertname", name)]),
            annotations: vec![],
            starts_at_ms: 1_700_000_000_000,
            ends_at_ms: 0,
            generator_url: String::new(),
        }
    }

    fn names(c: &Captured) -> Vec<String> {
        let alerts = c.body.as_array().expect("a JSON array");
        alerts.iter().map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_owned()).collect()
    }

    fn count(f: &Family<AmLabel, Counter>, url: &str) -> u64 {
        f.get_or_create(&AmLabel { alertmanager: url.into() }).get()
    }

    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let begin = Instant::now();
        while !cond() {
            assert!(begin.elapsed() < WAIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn alertmanager_v2_json_shape() {
        let mut sink = WebhookSink::start(Reply::Ok).await;
        let n = notifier(100, 10);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![
            AmAlert {
                labels: Labels::from_pairs(&[("alertname", "HighLatency"), ("job", "api")]),
                annotations: vec![("summary".into(), "p99 above 1s".into())],
                starts_at_ms: 1_700_000_000_123,
                ends_at_ms: 1_700_000_060_000,
                generator_url: "http://tocsin:9090/graph?g0.expr=up".into(),
            },
            AmAlert { ends_at_ms: 0, starts_at_ms: 0, ..alert("Bare") },
        ]);
        let got = sink.next(WAIT).await.expect("a POST");
        assert_eq!(got.headers["content-type"], "application/json");
        assert!(got.headers["user-agent"].to_str().unwrap_or("").starts_with("tocsin/"));
        assert_eq!(
            got.body,
            json!([
                {
                    "labels": {"alertname": "HighLatency", "job": "api"},
                    "annotations": {"summary": "p99 above 1s"},
                    "startsAt": "2023-11-14T22:13:20.123Z",
                    "endsAt": "2023-11-14T22:14:20Z",
                    "generatorURL": "http://tocsin:9090/graph?g0.expr=up"
                },
                // Unset times are left out: Alertmanager then uses its own.
                {"labels": {"alertname": "Bare"}, "annotations": {}, "generatorURL": ""}
            ])
        );
        eventually("sent counter", || count(&n.metrics.sent, &sink.url) == 2).await;
    }

    #[tokio::test]
    async fn batches_hold_at_most_max_batch_alerts() {
        let mut sink = WebhookSink::start(Reply::Ok).await;
        let n = notifier(10_000, 256);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send((0..600).map(|i| alert(&format!("a{i}"))).collect());
        let mut got = Vec::new();
        let mut posts = 0;
        while got.len() < 600 {
            let c = sink.next(WAIT).await.expect("all 600 alerts");
            let batch = names(&c);
            assert!(batch.len() <= 256, "batch of {}", batch.len());
            got.extend(batch);
            posts += 1;
        }
        assert!(posts >= 3);
        let want: Vec<String> = (0..600).map(|i| format!("a{i}")).collect();
        assert_eq!(got, want, "every alert once, in order");
        eventually("sent counter", || count(&n.metrics.sent, &sink.url) == 600).await;
        assert_eq!(count(&n.metrics.errors, &sink.url), 0);
    }

    #[tokio::test]
    async fn full_queue_drops_the_oldest_alerts() {
        let mut sink = WebhookSink::start(Reply::Gated).await;
        let n = notifier(10, 1);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![alert("a0")]);
        let first = sink.next(WAIT).await.expect("the first POST, now held");
        assert_eq!(names(&first), ["a0"]);
        for i in 1..=30 {
            n.send(vec![alert(&format!("a{i}"))]);
        }
        assert_eq!(count(&n.metrics.dropped, &sink.url), 20);
        let label = AmLabel { alertmanager: sink.url.clone() };
        assert_eq!(n.metrics.queue_length.get_or_create(&label).get(), 10);
        sink.release();
        let mut rest = Vec::new();
        for _ in 0..10 {
            rest.extend(names(&sink.next(WAIT).await.expect("a queued alert")));
        }
        let newest: Vec<String> = (21..=30).map(|i| format!("a{i}")).collect();
        assert_eq!(rest, newest);
        assert!(sink.next(SHORT).await.is_none());
        eventually("sent counter", || count(&n.metrics.sent, &sink.url) == 11).await;
        assert_eq!(n.metrics.queue_length.get_or_create(&label).get(), 0);
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_queue_keeps_its_newest_alerts() {
        let mut sink = WebhookSink::start(Reply::Gated).await;
        let n = notifier(3, 10);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![alert("first")]);
        sink.next(WAIT).await.expect("the first POST, now held");
        n.send((0..5).map(|i| alert(&format!("b{i}"))).collect());
        assert_eq!(count(&n.metrics.dropped, &sink.url), 2);
        sink.release();
        assert_eq!(names(&sink.next(WAIT).await.expect("the batch")), ["b2", "b3", "b4"]);
    }

    #[tokio::test]
    async fn timeout_is_counted_as_an_error_and_not_retried() {
        let mut sink = WebhookSink::start(Reply::Delay(Duration::from_secs(5))).await;
        let n = notifier(100, 10);
        n.apply(vec![Destination {
            timeout: Duration::from_millis(200),
            ..dest(&sink.url, DestinationKind::AlertmanagerV2)
        }]);
        n.send(vec![alert("a"), alert("b"), alert("c")]);
        sink.next(WAIT).await.expect("the POST");
        eventually("error counter", || count(&n.metrics.errors, &sink.url) == 3).await;
        assert_eq!(count(&n.metrics.sent, &sink.url), 0);
        assert_eq!(count(&n.metrics.dropped, &sink.url), 3);
        assert!(sink.next(SHORT).await.is_none(), "no retry");
    }

    #[tokio::test]
    async fn non_2xx_is_counted_as_an_error() {
        let mut sink = WebhookSink::start(Reply::Status(500)).await;
        let n = notifier(100, 10);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![alert("a"), alert("b")]);
        sink.next(WAIT).await.expect("the POST");
        eventually("error counter", || count(&n.metrics.errors, &sink.url) == 2).await;
        assert_eq!(count(&n.metrics.sent, &sink.url), 0);
    }

    #[tokio::test]
    async fn apply_keeps_the_queue_of_an_unchanged_url_and_stops_removed_ones() {
        let mut a = WebhookSink::start(Reply::Gated).await;
        let mut b = WebhookSink::start(Reply::Ok).await;
        let n = notifier(100, 1);
        n.apply(vec![dest(&a.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![alert("held")]);
        a.next(WAIT).await.expect("the first POST, now held");
        n.send(vec![alert("q1"), alert("q2")]);
        let queue_before = lock(&n.destinations)[&a.url].queue.clone();

        n.apply(vec![
            Destination {
                timeout: Duration::from_secs(7),
                ..dest(&a.url, DestinationKind::AlertmanagerV2)
            },
            dest(&b.url, DestinationKind::AlertmanagerV2),
        ]);
        let queue_after = lock(&n.destinations)[&a.url].queue.clone();
        assert!(Arc::ptr_eq(&queue_before, &queue_after));
        assert_eq!(lock(&queue_after.destination).timeout, Duration::from_secs(7));
        assert_eq!(n.metrics.alertmanagers.get(), 2);
        a.release();
        assert_eq!(names(&a.next(WAIT).await.expect("q1")), ["q1"]);
        assert_eq!(names(&a.next(WAIT).await.expect("q2")), ["q2"]);
        assert!(b.next(SHORT).await.is_none(), "a new destination starts empty");

        n.send(vec![alert("both")]);
        assert_eq!(names(&a.next(WAIT).await.expect("to a")), ["both"]);
        assert_eq!(names(&b.next(WAIT).await.expect("to b")), ["both"]);

        n.apply(vec![dest(&b.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![alert("only-b")]);
        assert_eq!(names(&b.next(WAIT).await.expect("to b")), ["only-b"]);
        assert!(a.next(SHORT).await.is_none(), "a removed destination gets nothing");
        assert_eq!(n.metrics.alertmanagers.get(), 1);
    }

    #[tokio::test]
    async fn removed_destination_series_are_forgotten() {
        let sink = WebhookSink::start(Reply::Ok).await;
        let mut registry = Registry::default();
        let n = Notifier::new(opts(10, 10), &mut registry);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for name in [
            "tocsin_notifications_sent_total{alertmanager=",
            "tocsin_notifications_errors_total{alertmanager=",
            "tocsin_notifications_dropped_total{alertmanager=",
            "tocsin_notifications_queue_length{alertmanager=",
            "tocsin_notifications_queue_capacity 10",
            "tocsin_notifications_alertmanagers_discovered 1",
            "# TYPE tocsin_notifications_latency_seconds histogram",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        n.apply(vec![]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(!text.contains(&sink.url), "series of a removed destination remain:\n{text}");
    }

    #[tokio::test]
    async fn bearer_token_and_basic_auth_are_sent() {
        let mut bearer = WebhookSink::start(Reply::Ok).await;
        let mut basic = WebhookSink::start(Reply::Ok).await;
        let n = notifier(10, 10);
        n.apply(vec![
            Destination {
                bearer_token: Some("s3cret".into()),
                ..dest(&bearer.url, DestinationKind::AlertmanagerV2)
            },
            Destination {
                basic_auth: Some(("user".into(), "pass".into())),
                ..dest(&basic.url, DestinationKind::Webhook)
            },
        ]);
        n.send(vec![alert("a")]);
        let got = bearer.next(WAIT).await.expect("a POST");
        assert_eq!(got.headers["authorization"], "Bearer s3cret");
        let got = basic.next(WAIT).await.expect("a POST");
        // base64("user:pass")
        assert_eq!(got.headers["authorization"], "Basic dXNlcjpwYXNz");
    }

    /// FNV-1a 64 written from its definition, independent of `fingerprint`.
    fn fnv1a64(data: &[u8]) -> u64 {
        data.iter().fold(14_695_981_039_346_656_037_u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(1_099_511_628_211)
        })
    }

    #[test]
    fn fingerprint_is_alertmanagers() {
        // Go's fingerprint of the empty label set is FNV-64a's offset basis.
        assert_eq!(format!("{:016x}", fingerprint(&Labels::empty())), "cbf29ce484222325");
        let labels = Labels::from_pairs(&[("job", "api"), ("alertname", "HighLatency")]);
        let bytes = b"alertname\xffHighLatency\xffjob\xffapi\xff";
        assert_eq!(fingerprint(&labels), fnv1a64(bytes));
        // Reported by Alertmanager 0.25 for these labels (see the real test).
        let real = Labels::from_pairs(&[("alertname", "TocsinRealTest"), ("severity", "page")]);
        assert_eq!(format!("{:016x}", fingerprint(&real)), REAL_FINGERPRINT);
    }

    const REAL_FINGERPRINT: &str = "31508343f1a861f4";

    #[tokio::test]
    async fn webhook_payload_shape() {
        let mut sink = WebhookSink::start(Reply::Ok).await;
        let n = notifier(10, 10);
        n.apply(vec![dest(&sink.url, DestinationKind::Webhook)]);
        let firing = AmAlert {
            labels: Labels::from_pairs(&[("alertname", "Disk"), ("job", "node"), ("dev", "sda")]),
            annotations: vec![
                ("summary".into(), "disk full".into()),
                ("runbook".into(), "r1".into()),
            ],
            starts_at_ms: 1_700_000_000_500,
            ends_at_ms: now_ms() + 3_600_000,
            generator_url: "http://tocsin:9090/g".into(),
        };
        let resolved = AmAlert {
            labels: Labels::from_pairs(&[("alertname", "Disk"), ("job", "node"), ("dev", "sdb")]),
            annotations: vec![("summary".into(), "disk full".into())],
            starts_at_ms: 1_700_000_000_000,
            ends_at_ms: 1_700_000_300_000,
            generator_url: "http://tocsin:9090/g".into(),
        };
        n.send(vec![firing.clone(), resolved.clone()]);
        let got = sink.next(WAIT).await.expect("a POST");
        let fp_sda =
            format!("{:016x}", fnv1a64(b"alertname\xffDisk\xffdev\xffsda\xffjob\xffnode\xff"));
        let fp_sdb =
            format!("{:016x}", fnv1a64(b"alertname\xffDisk\xffdev\xffsdb\xffjob\xffnode\xff"));
        assert_eq!(
            got.body,
            json!({
                "receiver": "tocsin-direct",
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "Disk", "dev": "sda", "job": "node"},
                        "annotations": {"summary": "disk full", "runbook": "r1"},
                        "startsAt": "2023-11-14T22:13:20.5Z",
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://tocsin:9090/g",
                        "fingerprint": fp_sda,
                    },
                    {
                        "status": "resolved",
                        "labels": {"alertname": "Disk", "dev": "sdb", "job": "node"},
                        "annotations": {"summary": "disk full"},
                        "startsAt": "2023-11-14T22:13:20Z",
                        "endsAt": "2023-11-14T22:18:20Z",
                        "generatorURL": "http://tocsin:9090/g",
                        "fingerprint": fp_sdb,
                    }
                ],
                "groupLabels": {},
                "commonLabels": {"alertname": "Disk", "job": "node"},
                "commonAnnotations": {"summary": "disk full"},
                "externalURL": "http://tocsin:9090",
                "version": "4",
                "groupKey": "{}:{}",
                "truncatedAlerts": 0
            })
        );
        n.send(vec![resolved]);
        let got = sink.next(WAIT).await.expect("a POST");
        assert_eq!(got.body["status"], "resolved");
        assert_eq!(got.body["commonLabels"]["dev"], "sdb");
    }

    #[tokio::test]
    async fn shutdown_drains_queues() {
        let mut sink = WebhookSink::start(Reply::Delay(Duration::from_millis(30))).await;
        let n = notifier(100, 1);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send((0..5).map(|i| alert(&format!("a{i}"))).collect());
        n.shutdown(WAIT).await;
        assert_eq!(count(&n.metrics.sent, &sink.url), 5);
        for _ in 0..5 {
            sink.next(WAIT).await.expect("drained");
        }
        n.send(vec![alert("late")]);
        assert!(sink.next(SHORT).await.is_none(), "nothing is sent after shutdown");
    }

    #[tokio::test]
    async fn shutdown_gives_up_at_the_deadline() {
        let mut sink = WebhookSink::start(Reply::Gated).await;
        let n = notifier(100, 1);
        n.apply(vec![dest(&sink.url, DestinationKind::AlertmanagerV2)]);
        n.send(vec![alert("held"), alert("q1"), alert("q2")]);
        sink.next(WAIT).await.expect("the first POST, now held");
        let begin = Instant::now();
        n.shutdown(Duration::from_millis(200)).await;
        assert!(begin.elapsed() < Duration::from_secs(2));
        assert_eq!(count(&n.metrics.dropped, &sink.url), 2);
    }

    /// Waits for a webhook message from Alertmanager whose status is `status`.
    async fn message_with_status(sink: &mut WebhookSink, status: &str) -> serde_json::Value {
        let begin = Instant::now();
        while begin.elapsed() < WAIT {
            if let Some(c) = sink.next(WAIT.saturating_sub(begin.elapsed())).await
                && c.body["status"] == status
            {
                return c.body;
            }
        }
        panic!("no {status} notification from Alertmanager within {WAIT:?}");
    }

    fn real_alert(ends_at_ms: i64) -> AmAlert {
        AmAlert {
            labels: Labels::from_pairs(&[("alertname", "TocsinRealTest"), ("severity", "page")]),
            annotations: vec![("summary".into(), "from tocsin".into())],
            starts_at_ms: now_ms() - 60_000,
            ends_at_ms,
            generator_url: "http://tocsin:9090/graph".into(),
        }
    }

    fn keys(v: &serde_json::Value) -> Vec<&str> {
        let mut k: Vec<&str> =
            v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        k.sort_unstable();
        k
    }

    #[tokio::test]
    async fn real_alertmanager_firing_then_resolved() {
        if !RealAlertmanager::available() {
            return;
        }
        let mut sink = WebhookSink::start(Reply::Ok).await;
        let am = RealAlertmanager::start(&sink.url).await;
        let n = notifier(100, 10);
        n.apply(vec![dest(&am.alerts_url(), DestinationKind::AlertmanagerV2)]);

        n.send(vec![real_alert(now_ms() + 3_600_000)]);
        let firing = message_with_status(&mut sink, "firing").await;
        let alert = &firing["alerts"][0];
        assert_eq!(alert["labels"], json!({"alertname": "TocsinRealTest", "severity": "page"}));
        assert_eq!(alert["annotations"], json!({"summary": "from tocsin"}));
        assert_eq!(alert["generatorURL"], "http://tocsin:9090/graph");
        assert_eq!(alert["fingerprint"], REAL_FINGERPRINT, "Alertmanager's own fingerprint");
        assert_eq!(count(&n.metrics.errors, &am.alerts_url()), 0);

        // Our direct webhook message has exactly the fields Alertmanager's has.
        let ours: serde_json::Value =
            serde_json::from_slice(&webhook_body(&[Arc::new(real_alert(0))], "", now_ms()))
                .expect("json");
        assert_eq!(keys(&ours), keys(&firing));
        assert_eq!(keys(&ours["alerts"][0]), keys(alert));

        n.send(vec![real_alert(now_ms() - 1_000)]);
        let resolved = message_with_status(&mut sink, "resolved").await;
        assert_eq!(resolved["alerts"][0]["status"], "resolved");
        assert_eq!(resolved["alerts"][0]["labels"]["alertname"], "TocsinRealTest");
        n.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn real_alertmanager_down_then_up() {
        if !RealAlertmanager::available() {
            return;
        }
        let mut sink = WebhookSink::start(Reply::Ok).await;
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
        let n = notifier(100, 10);
        n.apply(vec![Destination {
            timeout: Duration::from_secs(2),
            ..dest(&url, DestinationKind::AlertmanagerV2)
        }]);

        n.send(vec![real_alert(now_ms() + 3_600_000)]);
        eventually("a connection error", || count(&n.metrics.errors, &url) == 1).await;

        let _am = RealAlertmanager::start_on(port, &sink.url).await;
        // What the rule engine's resend of a firing alert does.
        n.send(vec![real_alert(now_ms() + 3_600_000)]);
        let firing = message_with_status(&mut sink, "firing").await;
        assert_eq!(firing["alerts"][0]["labels"]["alertname"], "TocsinRealTest");
        // Alertmanager may pass the alert on before our sender has read its
        // answer and counted the send.
        eventually("the send counted", || count(&n.metrics.sent, &url) == 1).await;
        assert_eq!(count(&n.metrics.sent, &url), 1);
    }
}
