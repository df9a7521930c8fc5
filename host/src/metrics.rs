//! Self-monitoring: the counters and gauges `/metrics` exposes, through
//! prometheus-client. Each subsystem gets its handles from here at start-up;
//! the registry is then read-only and only encoded.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use tocsin_engine::storage::Head;

type Labeled<M> = Family<Vec<(String, String)>, M>;

/// Metrics of the host's own subsystems.
pub struct Metrics {
    queries: Counter,
    /// Samples appended, by source (scrape, remote_write, import, rules).
    pub ingested: Labeled<Counter>,
    /// Samples refused, by source and reason.
    pub rejected: Labeled<Counter>,
    /// Requests refused as a whole (bad encoding, bad exposition text, too large).
    pub bad_requests: Labeled<Counter>,
    pub rule_group_duration: Labeled<Histogram>,
    pub rule_group_last_duration: Labeled<Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub rule_group_iterations: Labeled<Counter>,
    pub rule_group_missed: Labeled<Counter>,
    pub rule_failures: Labeled<Counter>,
    pub scrapes: Labeled<Counter>,
    pub scrape_failures: Labeled<Counter>,
    head_series: Gauge,
    head_chunks: Gauge,
    head_appended: Gauge,
    head_min_time: Gauge,
    head_max_time: Gauge,
    pub wal_syncs: Counter,
    pub wal_failures: Counter,
    pub checkpoints: Counter,
    pub config_reloads: Labeled<Counter>,
    pub config_last_reload_success: Gauge,
    /// WASM rule evaluations by module and result (ok, error, quarantined).
    pub wasm_evaluations: Labeled<Counter>,
    pub wasm_duration: Labeled<Histogram>,
    pub wasm_host_calls: Labeled<Counter>,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            queries: Counter::default(),
            ingested: Labeled::default(),
            rejected: Labeled::default(),
            bad_requests: Labeled::default(),
            rule_group_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 4.0, 10))
            }),
            rule_group_last_duration: Labeled::default(),
            rule_group_iterations: Labeled::default(),
            rule_group_missed: Labeled::default(),
            rule_failures: Labeled::default(),
            scrapes: Labeled::default(),
            scrape_failures: Labeled::default(),
            head_series: Gauge::default(),
            head_chunks: Gauge::default(),
            head_appended: Gauge::default(),
            head_min_time: Gauge::default(),
            head_max_time: Gauge::default(),
            wal_syncs: Counter::default(),
            wal_failures: Counter::default(),
            checkpoints: Counter::default(),
            config_reloads: Labeled::default(),
            config_last_reload_success: Gauge::default(),
            wasm_evaluations: Labeled::default(),
            wasm_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.00005, 4.0, 10))
            }),
            wasm_host_calls: Labeled::default(),
        };
        let r = registry;
        r.register("tocsin_queries", "PromQL queries answered by the HTTP API", m.queries.clone());
        r.register("tocsin_ingested_samples", "Samples appended, by source", m.ingested.clone());
        r.register(
            "tocsin_rejected_samples",
            "Samples refused by storage, by source and reason (out_of_order, duplicate, out_of_bounds)",
            m.rejected.clone(),
        );
        r.register(
            "tocsin_ingest_bad_requests",
            "Ingestion requests refused whole, by endpoint",
            m.bad_requests.clone(),
        );
        r.register(
            "tocsin_rule_group_duration_seconds",
            "How long rule group evaluations took",
            m.rule_group_duration.clone(),
        );
        r.register(
            "tocsin_rule_group_last_duration_seconds",
            "Duration of the last evaluation of each rule group",
            m.rule_group_last_duration.clone(),
        );
        r.register(
            "tocsin_rule_group_iterations",
            "Rule group evaluations run",
            m.rule_group_iterations.clone(),
        );
        r.register(
            "tocsin_rule_group_iterations_missed",
            "Rule group evaluations skipped because the previous one ran too long",
            m.rule_group_missed.clone(),
        );
        r.register(
            "tocsin_rule_evaluation_failures",
            "Rule evaluations that ended in an error",
            m.rule_failures.clone(),
        );
        r.register("tocsin_scrapes", "Scrapes attempted, by job", m.scrapes.clone());
        r.register(
            "tocsin_scrape_failures",
            "Scrapes that failed, by job",
            m.scrape_failures.clone(),
        );
        r.register("tocsin_head_series", "Series in the in-memory head", m.head_series.clone());
        r.register("tocsin_head_chunks", "Compressed chunks in the head", m.head_chunks.clone());
        r.register(
            "tocsin_head_samples_appended",
            "Samples appended to the head since start (a counter, exposed as a gauge)",
            m.head_appended.clone(),
        );
        r.register(
            "tocsin_head_min_time_seconds",
            "Oldest sample time in the head",
            m.head_min_time.clone(),
        );
        r.register(
            "tocsin_head_max_time_seconds",
            "Newest sample time in the head",
            m.head_max_time.clone(),
        );
        r.register("tocsin_wal_syncs", "Write-ahead log fsyncs", m.wal_syncs.clone());
        r.register(
            "tocsin_wal_failures",
            "Write-ahead log writes that failed",
            m.wal_failures.clone(),
        );
        r.register("tocsin_checkpoints", "Checkpoints written", m.checkpoints.clone());
        r.register(
            "tocsin_config_reloads",
            "Configuration reloads, by result",
            m.config_reloads.clone(),
        );
        r.register(
            "tocsin_config_last_reload_successful",
            "Whether the last configuration reload succeeded",
            m.config_last_reload_success.clone(),
        );
        r.register(
            "tocsin_wasm_evaluations",
            "WASM rule evaluations, by module and result (ok, error, quarantined)",
            m.wasm_evaluations.clone(),
        );
        r.register(
            "tocsin_wasm_evaluation_duration_seconds",
            "Time in a WASM rule module per evaluation, host calls included",
            m.wasm_duration.clone(),
        );
        r.register(
            "tocsin_wasm_host_calls",
            "Queries WASM rule modules made through the host",
            m.wasm_host_calls.clone(),
        );
        m
    }

    pub fn queries(&self, n: u64) {
        self.queries.inc_by(n);
    }

    pub fn ingested(&self, source: &str, n: u64) {
        if n > 0 {
            self.ingested.get_or_create(&labels(&[("source", source)])).inc_by(n);
        }
    }

    pub fn rejected(&self, source: &str, reason: &str, n: u64) {
        if n > 0 {
            self.rejected
                .get_or_create(&labels(&[("source", source), ("reason", reason)]))
                .inc_by(n);
        }
    }

    pub fn bad_request(&self, endpoint: &str) {
        self.bad_requests.get_or_create(&labels(&[("endpoint", endpoint)])).inc();
    }

    pub fn group(name: &str) -> Vec<(String, String)> {
        labels(&[("rule_group", name)])
    }

    pub fn job(name: &str) -> Vec<(String, String)> {
        labels(&[("job", name)])
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads.get_or_create(&labels(&[("result", result)])).inc();
        self.config_last_reload_success.set(i64::from(ok));
    }

    /// Encodes the registry after refreshing the gauges read off the head.
    pub fn encode(&self, registry: &Registry, head: &Head) -> String {
        let st = head.stats();
        self.head_series.set(st.series as i64);
        self.head_chunks.set(st.chunks as i64);
        self.head_appended.set(st.samples_appended as i64);
        self.head_min_time.set(st.min_time.unwrap_or(0) / 1000);
        self.head_max_time.set(st.max_time.unwrap_or(0) / 1000);
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, registry);
        out
    }
}
