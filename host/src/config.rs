//! tocsin's configuration file: a superset of `prometheus.yml`.
//!
//! A user must be able to start tocsin on the prometheus.yml they already
//! have. So keys fall in three groups: keys tocsin implements (decoded with
//! Prometheus's defaults and checks), keys that are valid for Prometheus but
//! that tocsin does not implement (service discovery other than
//! `static_configs`, TLS, proxies, OAuth2, remote_read, tracing, …: accepted
//! with a warning naming the key and its position, so the config still
//! loads) and everything else, which is a typo and an error listing the
//! known keys. tocsin's own sections are `limits`, `auth`, `modules`,
//! `alerting.webhooks`, `alerting.resend_delay` and `storage.retention`/
//! `storage.checkpoint_interval`.
//!
//! Every error and warning says `file:line:col: message`.

// The serve wiring lands next; until then some of this is only used by
// `check config` and the tests.
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use tocsin_engine::Labels;
use tocsin_engine::duration::{format_duration, parse_duration};
use tocsin_engine::labels::{Label, is_legacy_label_name};
use tocsin_engine::relabel::{self, NameValidation, RelabelConfig};
use tocsin_engine::yaml::{self, Fields, Node, Pos, YamlError};

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Glob patterns as written; relative ones are relative to the config
    /// file's directory (see [`Config::resolve_rule_files`]).
    pub rule_files: Vec<String>,
    pub alerting: AlertingConfig,
    /// Parsed and kept; sending lands later.
    pub remote_write: Vec<RemoteWriteConfig>,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub modules: ModulesConfig,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval_ms: i64,
    pub scrape_timeout_ms: i64,
    pub evaluation_interval_ms: i64,
    pub rule_query_offset_ms: i64,
    pub external_labels: Labels,
    /// Defaults for every scrape config; 0 means no limit.
    pub sample_limit: usize,
    pub body_size_limit: usize,
    pub name_validation: NameValidation,
}

#[derive(Clone, Debug)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval_ms: i64,
    pub scrape_timeout_ms: i64,
    pub metrics_path: String,
    pub scheme: String,
    /// URL query parameters, sorted by name.
    pub params: Vec<(String, Vec<String>)>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub static_configs: Vec<StaticConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// 0 means no limit.
    pub sample_limit: usize,
    /// Uncompressed bytes; 0 means no limit.
    pub body_size_limit: usize,
    pub basic_auth: Option<BasicAuth>,
    /// From `authorization.credentials(_file)` or the older
    /// `bearer_token(_file)`.
    pub bearer_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: Labels,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug)]
pub struct AlertingConfig {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
    /// tocsin: direct delivery in Alertmanager's webhook format.
    pub webhooks: Vec<WebhookConfig>,
    /// tocsin: how often firing alerts are sent again (Prometheus's
    /// `--rules.alert.resend-delay`).
    pub resend_delay_ms: i64,
}

#[derive(Clone, Debug)]
pub struct AlertmanagerConfig {
    pub scheme: String,
    pub path_prefix: String,
    pub timeout_ms: i64,
    /// Always "v2": v1 was removed from Alertmanager and Prometheus.
    pub api_version: String,
    /// Every target of `static_configs`, in order.
    pub targets: Vec<String>,
    /// The `static_configs` themselves, whose labels relabelling may use.
    pub static_configs: Vec<StaticConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    pub url: String,
    pub timeout_ms: i64,
}

#[derive(Clone, Debug)]
pub struct RemoteWriteConfig {
    pub url: String,
    pub name: String,
    pub remote_timeout_ms: i64,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    pub retention_ms: i64,
    /// How often the in-memory head is checkpointed to the data directory.
    pub checkpoint_interval_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Largest accepted request body (remote write, imports, uploads).
    pub max_body_bytes: usize,
    pub query_max_samples: usize,
    pub lookback_delta_ms: i64,
    pub query_timeout_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Required on write endpoints when set (`bearer_token_file` is read at
    /// load time).
    pub bearer_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModulesConfig {
    pub max_module_bytes: usize,
    pub timeout_ms: i64,
    pub memory_limit: usize,
    /// Budgets of one evaluation the engine enforces (outputs, host calls,
    /// query samples, state).
    pub limits: tocsin_engine::rules::wasm::WasmLimits,
}

/// A scrape target after Prometheus's label population and relabelling.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSpec {
    pub url: String,
    /// The target's labels as attached to scraped series: `job`, `instance`
    /// and every other label not starting with `__`.
    pub labels: Labels,
    /// The labels before relabelling, as `/api/v1/targets` shows them.
    pub discovered: Labels,
    /// `__scrape_interval__` and `__scrape_timeout__` after relabelling.
    pub interval_ms: i64,
    pub timeout_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", pos.map(|p| format!(":{p}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub pos: Option<Pos>,
    pub message: String,
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const MIB: usize = 1 << 20;

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval_ms: MINUTE,
            scrape_timeout_ms: 10 * SECOND,
            evaluation_interval_ms: MINUTE,
            rule_query_offset_ms: 0,
            external_labels: Labels::empty(),
            sample_limit: 0,
            body_size_limit: 0,
            name_validation: NameValidation::Utf8,
        }
    }
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            alert_relabel_configs: Vec::new(),
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            resend_delay_ms: MINUTE,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { retention_ms: 15 * 24 * 60 * MINUTE, checkpoint_interval_ms: 5 * MINUTE }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 32 * MIB,
            query_max_samples: 50_000_000,
            lookback_delta_ms: 5 * MINUTE,
            query_timeout_ms: 2 * MINUTE,
        }
    }
}

impl Default for ModulesConfig {
    fn default() -> Self {
        ModulesConfig {
            max_module_bytes: 16 * MIB,
            timeout_ms: SECOND,
            memory_limit: 64 * MIB,
            limits: tocsin_engine::rules::wasm::WasmLimits::default(),
        }
    }
}

// ---------------------------------------------------------------------------
// Keys by section: what tocsin implements, and what only Prometheus does.

const TOP: &[&str] = &[
    "global",
    "scrape_configs",
    "rule_files",
    "alerting",
    "remote_write",
    "storage",
    "limits",
    "auth",
    "modules",
];
const TOP_PROM: &[&str] = &["runtime", "scrape_config_files", "remote_read", "tracing", "otlp"];

const GLOBAL: &[&str] = &[
    "scrape_interval",
    "scrape_timeout",
    "evaluation_interval",
    "rule_query_offset",
    "external_labels",
    "sample_limit",
    "body_size_limit",
    "metric_name_validation_scheme",
];
const GLOBAL_PROM: &[&str] = &[
    "scrape_protocols",
    "query_log_file",
    "scrape_failure_log_file",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "target_limit",
    "keep_dropped_targets",
    "metric_name_escaping_scheme",
    "scrape_native_histograms",
    "convert_classic_histograms_to_nhcb",
    "always_scrape_classic_histograms",
    "extra_scrape_metrics",
];

/// The authentication part of Prometheus's `http_config` that tocsin implements.
const HTTP_AUTH: &[&str] = &["basic_auth", "authorization", "bearer_token", "bearer_token_file"];
/// The rest of `http_config`.
const HTTP_PROM: &[&str] = &[
    "oauth2",
    "tls_config",
    "follow_redirects",
    "enable_http2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
];

/// Service discovery mechanisms other than `static_configs`.
const SD_PROM: &[&str] = &[
    "aws_sd_configs",
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "file_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "http_sd_configs",
    "ionos_sd_configs",
    "kubernetes_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "oci_sd_configs",
    "openstack_sd_configs",
    "outscale_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "stackit_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

const SCRAPE: &[&str] = &[
    "job_name",
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "params",
    "honor_labels",
    "honor_timestamps",
    "static_configs",
    "relabel_configs",
    "metric_relabel_configs",
    "sample_limit",
    "body_size_limit",
    "metric_name_validation_scheme",
];
const SCRAPE_PROM: &[&str] = &[
    "track_timestamps_staleness",
    "scrape_protocols",
    "fallback_scrape_protocol",
    "scrape_native_histograms",
    "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb",
    "scrape_failure_log_file",
    "enable_compression",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "target_limit",
    "keep_dropped_targets",
    "native_histogram_bucket_limit",
    "native_histogram_min_bucket_factor",
    "metric_name_escaping_scheme",
    "extra_scrape_metrics",
];

const ALERTING: &[&str] = &["alert_relabel_configs", "alertmanagers", "webhooks", "resend_delay"];
const ALERTMANAGER: &[&str] =
    &["scheme", "path_prefix", "timeout", "api_version", "static_configs", "relabel_configs"];
const ALERTMANAGER_PROM: &[&str] = &["sigv4", "alert_relabel_configs"];
const WEBHOOK: &[&str] = &["url", "timeout"];

const REMOTE_WRITE: &[&str] = &["url", "name", "remote_timeout", "write_relabel_configs"];
const REMOTE_WRITE_PROM: &[&str] = &[
    "headers",
    "send_exemplars",
    "send_native_histograms",
    "round_robin_dns",
    "protobuf_message",
    "failed_request_logging",
    "queue_config",
    "metadata_config",
    "sigv4",
    "azuread",
    "google_iam",
];

const STORAGE: &[&str] = &["retention", "checkpoint_interval"];
const STORAGE_PROM: &[&str] = &["tsdb", "exemplars"];
const LIMITS: &[&str] = &["max_body_bytes", "query_max_samples", "lookback_delta", "query_timeout"];
const AUTH: &[&str] = &["bearer_token", "bearer_token_file"];
const MODULES: &[&str] = &[
    "max_module_bytes",
    "timeout",
    "memory_limit",
    "max_output_samples",
    "max_output_bytes",
    "max_host_calls",
    "max_query_samples",
    "max_state_bytes",
    "max_log_lines",
];

// ---------------------------------------------------------------------------

/// Parses and validates a config. `file` names it in messages and its
/// directory is where relative `*_file` paths are read from. Returns the
/// config and its warnings, or every error found.
pub fn parse_config(file: &str, text: &str) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let dir = Path::new(file).parent().map(Path::to_path_buf).unwrap_or_default();
    let mut p = Parser { file, dir, warnings: Vec::new(), errors: Vec::new() };
    let config = p.config(text);
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    // Sections are read out of order (global first); report in file order.
    p.warnings.sort_by_key(|(pos, _)| *pos);
    Ok((config, p.warnings.into_iter().map(|(_, w)| w).collect()))
}

/// Reads and parses the config file at `path`.
pub fn load(path: &Path) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![ConfigError { file: file.clone(), pos: None, message: e.to_string() }])?;
    parse_config(&file, &text)
}

impl Config {
    /// Expands `rule_files` (relative to `config_dir`) into the files that
    /// exist, in pattern order, each pattern's matches sorted. Patterns that
    /// match nothing are not an error, as in Prometheus.
    pub fn resolve_rule_files(&self, config_dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
        let mut out: Vec<PathBuf> = Vec::new();
        for pattern in &self.rule_files {
            for f in resolve_rule_pattern(pattern, config_dir)? {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        Ok(out)
    }
}

/// The existing files one `rule_files` pattern names, sorted.
pub fn resolve_rule_pattern(pattern: &str, config_dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_owned()
    } else {
        // The directory is taken literally, even if it contains `[` or `*`.
        let dir = glob::Pattern::escape(&config_dir.to_string_lossy());
        if dir.is_empty() { pattern.to_owned() } else { format!("{dir}/{pattern}") }
    };
    let paths = glob::glob(&full).map_err(|e| ConfigError {
        file: full.clone(),
        pos: None,
        message: format!("invalid rule file pattern: {e}"),
    })?;
    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    found.sort();
    Ok(found)
}

impl ScrapeConfig {
    /// The targets of `static_configs` as Prometheus's `PopulateLabels`
    /// builds them: target and group labels, then `job`, `__scrape_interval__`,
    /// `__scrape_timeout__`, `__metrics_path__`, `__scheme__` and `__param_*`
    /// where not set, then `relabel_configs`. Dropped targets are left out;
    /// targets that end up invalid are errors.
    pub fn targets(&self) -> Vec<Result<TargetSpec, String>> {
        let mut out = Vec::new();
        for (g, sc) in self.static_configs.iter().enumerate() {
            for (i, target) in sc.targets.iter().enumerate() {
                let discovered = self.discovered_labels(target, &sc.labels);
                let Some(lset) = relabel::process(&discovered, &self.relabel_configs) else {
                    continue;
                };
                if lset.is_empty() {
                    continue;
                }
                out.push(self.target_spec(lset, discovered).map_err(|e| {
                    format!("instance {i} in static_configs[{g}] of job {:?}: {e}", self.job_name)
                }));
            }
        }
        out
    }

    fn discovered_labels(&self, target: &str, group: &Labels) -> Labels {
        let mut pairs: Vec<Label> = vec![Label::new("__address__", target)];
        pairs.extend(group.iter().filter(|l| &*l.name != "__address__").cloned());
        let defaults = [
            ("job", self.job_name.clone()),
            ("__scrape_interval__", format_duration(self.scrape_interval_ms)),
            ("__scrape_timeout__", format_duration(self.scrape_timeout_ms)),
            ("__metrics_path__", self.metrics_path.clone()),
            ("__scheme__", self.scheme.clone()),
        ];
        let params = self
            .params
            .iter()
            .filter_map(|(k, v)| Some((format!("__param_{k}"), v.first()?.clone())));
        for (name, value) in defaults.into_iter().map(|(n, v)| (n.to_owned(), v)).chain(params) {
            if !pairs.iter().any(|l| *l.name == *name && !l.value.is_empty()) {
                pairs.push(Label::new(name, value));
            }
        }
        Labels::new(pairs)
    }

    fn target_spec(&self, lset: Labels, discovered: Labels) -> Result<TargetSpec, String> {
        let addr = lset.get_or_empty("__address__");
        if addr.is_empty() {
            return Err("no address".into());
        }
        check_target_address(addr)?;
        let duration = |label: &str, what: &str| {
            let text = lset.get_or_empty(label);
            match parse_duration(text) {
                Err(e) => Err(format!("error parsing scrape {what}: {e}")),
                Ok(0) => Err(format!("scrape {what} cannot be 0")),
                Ok(ms) => Ok(ms),
            }
        };
        let interval_ms = duration("__scrape_interval__", "interval")?;
        let timeout_ms = duration("__scrape_timeout__", "timeout")?;
        if timeout_ms > interval_ms {
            return Err(format!(
                "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
                lset.get_or_empty("__scrape_timeout__"),
                lset.get_or_empty("__scrape_interval__")
            ));
        }
        // Config params, each first value overridden by `__param_<name>`.
        let mut params = self.params.clone();
        for l in lset.iter() {
            let Some(k) = l.name.strip_prefix("__param_") else { continue };
            match params.iter_mut().find(|(name, _)| name == k) {
                Some((_, vals)) if !vals.is_empty() => vals[0] = l.value.to_string(),
                Some((_, vals)) => vals.push(l.value.to_string()),
                None => params.push((k.to_owned(), vec![l.value.to_string()])),
            }
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let url = build_url(
            lset.get_or_empty("__scheme__"),
            addr,
            lset.get_or_empty("__metrics_path__"),
            &params,
        );
        let mut labels: Vec<Label> =
            lset.iter().filter(|l| !l.name.starts_with("__")).cloned().collect();
        if lset.get_or_empty("instance").is_empty() {
            labels.push(Label::new("instance", addr));
        }
        Ok(TargetSpec { url, labels: Labels::new(labels), discovered, interval_ms, timeout_ms })
    }
}

impl AlertmanagerConfig {
    /// The push URL of every Alertmanager after `relabel_configs`, e.g.
    /// `http://127.0.0.1:9093/api/v2/alerts`.
    pub fn urls(&self) -> Vec<String> {
        let path = clean_path(&format!("/{}/api/{}/alerts", self.path_prefix, self.api_version));
        let mut out = Vec::new();
        for sc in &self.static_configs {
            for t in &sc.targets {
                let mut pairs = vec![
                    Label::new("__address__", t.as_str()),
                    Label::new("__scheme__", self.scheme.as_str()),
                    Label::new("__alerts_path__", path.as_str()),
                ];
                pairs.extend(sc.labels.iter().filter(|l| &*l.name != "__address__").cloned());
                let Some(l) = relabel::process(&Labels::new(pairs), &self.relabel_configs) else {
                    continue;
                };
                let addr = l.get_or_empty("__address__");
                if addr.is_empty() || check_target_address(addr).is_err() {
                    continue;
                }
                out.push(build_url(
                    l.get_or_empty("__scheme__"),
                    addr,
                    l.get_or_empty("__alerts_path__"),
                    &[],
                ));
            }
        }
        out
    }
}

/// Prometheus's `CheckTargetAddress`: a URL where `host:port` belongs is the
/// usual mistake.
fn check_target_address(addr: &str) -> Result<(), String> {
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    Ok(())
}

/// `scheme://host/path?query` as Go's `url.URL.String` writes it.
fn build_url(scheme: &str, host: &str, path: &str, params: &[(String, Vec<String>)]) -> String {
    let mut s = format!("{scheme}://{host}");
    if !path.is_empty() && !path.starts_with('/') {
        s.push('/');
    }
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b);
        push_byte(&mut s, b, keep);
    }
    let mut sep = '?';
    for (k, vals) in params {
        for v in vals {
            s.push(sep);
            sep = '&';
            query_escape(&mut s, k);
            s.push('=');
            query_escape(&mut s, v);
        }
    }
    s
}

fn query_escape(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b == b' ' {
            out.push('+');
        } else {
            push_byte(out, b, b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
        }
    }
}

fn push_byte(out: &mut String, b: u8, keep: bool) {
    if keep {
        out.push(b as char);
    } else {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Go's `path.Clean` for a rooted path.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

// ---------------------------------------------------------------------------

struct Parser<'f> {
    file: &'f str,
    dir: PathBuf,
    warnings: Vec<(Pos, String)>,
    errors: Vec<ConfigError>,
}

type R<T> = Result<T, YamlError>;

/// Decodes one of tocsin's own top-level sections into the config.
type Section<'f> = fn(&mut Parser<'f>, &Node, &mut Config) -> R<()>;

impl Parser<'_> {
    fn error(&mut self, e: YamlError) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            pos: Some(e.pos),
            message: e.message,
        });
    }

    fn warn(&mut self, pos: Pos, message: impl fmt::Display) {
        self.warnings.push((pos, format!("{}:{pos}: {message}", self.file)));
    }

    /// The fields of a mapping: `known` keys are decoded by the caller,
    /// `prometheus_only` ones are warned about, anything else is an error.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
        prometheus_only: &[&[&str]],
    ) -> R<Fields<'n>> {
        for (k, _) in node.as_map()? {
            let key = k.as_string()?;
            if known.contains(&key.as_str()) {
                continue;
            }
            if prometheus_only.iter().any(|list| list.contains(&key.as_str())) {
                self.warn(k.pos, format!("{key} is not supported by tocsin and is ignored"));
                continue;
            }
            let mut msg = format!("field {key} not found in {what}");
            if let Some(s) =
                closest(&key, known.iter().chain(prometheus_only.iter().flat_map(|l| l.iter())))
            {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            msg.push_str(&format!("; known fields: {}", known.join(", ")));
            return Err(YamlError::new(k.pos, msg));
        }
        Fields::new(node, what, &[], true)
    }

    fn config(&mut self, text: &str) -> Config {
        let mut c = Config::default();
        let doc = match yaml::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.error(e);
                return c;
            }
        };
        let Some(root) = doc.root else { return c };
        if doc.more_documents {
            self.warn(root.pos, "only the first YAML document of a config file is read");
        }
        let top = match self.fields(&root, "config", TOP, &[TOP_PROM]) {
            Ok(f) => f,
            Err(e) => {
                self.error(e);
                return c;
            }
        };
        // The global section first: scrape configs inherit from it.
        if let Some(n) = top.get("global") {
            match self.global(n) {
                Ok(g) => c.global = g,
                Err(e) => self.error(e),
            }
        }
        if let Some(n) = top.get("rule_files") {
            match rule_files(n) {
                Ok(r) => c.rule_files = r,
                Err(e) => self.error(e),
            }
        }
        if let Some(n) = top.get("scrape_configs") {
            c.scrape_configs = self.scrape_configs(n, &c.global);
        }
        if let Some(n) = top.get("alerting") {
            match self.alerting(n, c.global.name_validation) {
                Ok(a) => c.alerting = a,
                Err(e) => self.error(e),
            }
        }
        if let Some(n) = top.get("remote_write") {
            c.remote_write = self.remote_writes(n, c.global.name_validation);
        }
        let sections: [(&str, Section<'_>); 4] = [
            ("storage", Self::storage),
            ("limits", Self::limits),
            ("auth", Self::auth),
            ("modules", Self::modules),
        ];
        for (key, parse) in sections {
            if let Some(n) = top.get(key)
                && let Err(e) = parse(self, n, &mut c)
            {
                self.error(e);
            }
        }
        c
    }

    fn global(&mut self, node: &Node) -> R<GlobalConfig> {
        let f = self.fields(node, "global config", GLOBAL, &[GLOBAL_PROM])?;
        let mut g = GlobalConfig::default();
        if let Some(n) = f.get("metric_name_validation_scheme") {
            // Prometheus quietly treats unknown values as the default here.
            if n.as_string()? == "legacy" {
                g.name_validation = NameValidation::Legacy;
            }
        }
        g.scrape_interval_ms = duration(&f, "scrape_interval")?.unwrap_or(0);
        if g.scrape_interval_ms == 0 {
            g.scrape_interval_ms = MINUTE;
        }
        let timeout = duration(&f, "scrape_timeout")?.unwrap_or(0);
        if timeout > g.scrape_interval_ms {
            let pos = f.key_pos("scrape_timeout").unwrap_or(f.pos);
            return Err(YamlError::new(pos, "global scrape timeout greater than scrape interval"));
        }
        g.scrape_timeout_ms =
            if timeout == 0 { (10 * SECOND).min(g.scrape_interval_ms) } else { timeout };
        g.evaluation_interval_ms = duration(&f, "evaluation_interval")?.unwrap_or(0);
        if g.evaluation_interval_ms == 0 {
            g.evaluation_interval_ms = MINUTE;
        }
        g.rule_query_offset_ms = duration(&f, "rule_query_offset")?.unwrap_or(0);
        g.sample_limit = count(&f, "sample_limit")?.unwrap_or(0);
        g.body_size_limit = size(&f, "body_size_limit")?.unwrap_or(0);
        if let Some(n) = f.get("external_labels") {
            let mut pairs = Vec::new();
            for (name, value, pos) in n.as_string_map()? {
                if !valid_label_name(g.name_validation, &name) {
                    return Err(YamlError::new(pos, format!("{name:?} is not a valid label name")));
                }
                pairs.push(Label::new(name, expand_env(&value)));
            }
            g.external_labels = Labels::new(pairs);
        }
        Ok(g)
    }

    fn scrape_configs(&mut self, node: &Node, global: &GlobalConfig) -> Vec<ScrapeConfig> {
        let items = match node.as_seq() {
            Ok(items) => items,
            Err(e) => {
                self.error(e);
                return Vec::new();
            }
        };
        let mut out: Vec<ScrapeConfig> = Vec::new();
        for n in items {
            match self.scrape_config(n, global) {
                Ok(sc) => {
                    if out.iter().any(|p| p.job_name == sc.job_name) {
                        self.error(YamlError::new(
                            n.pos,
                            format!(
                                "found multiple scrape configs with job name {:?}",
                                sc.job_name
                            ),
                        ));
                    }
                    out.push(sc);
                }
                Err(e) => self.error(e),
            }
        }
        out
    }

    fn scrape_config(&mut self, node: &Node, global: &GlobalConfig) -> R<ScrapeConfig> {
        if node.is_null() {
            return Err(YamlError::new(node.pos, "empty or null scrape config section"));
        }
        let f = self.fields(
            node,
            "scrape config",
            &[SCRAPE, HTTP_AUTH].concat(),
            &[SCRAPE_PROM, HTTP_PROM, SD_PROM],
        )?;
        let job_name = f.string("job_name")?;
        if job_name.is_empty() {
            return Err(YamlError::new(f.pos, "job_name is empty"));
        }
        let names = match f.get("metric_name_validation_scheme") {
            None => global.name_validation,
            Some(n) => match n.as_string()?.as_str() {
                "" => global.name_validation,
                "utf8" => NameValidation::Utf8,
                "legacy" => NameValidation::Legacy,
                other => {
                    return Err(YamlError::new(
                        n.pos,
                        format!(
                            "unknown scrape config name validation method specified, must be either '', 'legacy' or 'utf8', got {other}"
                        ),
                    ));
                }
            },
        };
        let interval = match duration(&f, "scrape_interval")?.unwrap_or(0) {
            0 => global.scrape_interval_ms,
            v => v,
        };
        let timeout = duration(&f, "scrape_timeout")?.unwrap_or(0);
        if timeout > interval {
            return Err(YamlError::new(
                f.key_pos("scrape_timeout").unwrap_or(f.pos),
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {job_name:?}"
                ),
            ));
        }
        let scheme = match f.get("scheme") {
            Some(n) => self.scheme(n)?,
            None => "http".into(),
        };
        let mut params = Vec::new();
        if let Some(n) = f.get("params") {
            for (k, v) in n.as_map()? {
                params.push((k.as_string()?, v.as_string_seq()?));
            }
            params.sort_by(|a: &(String, Vec<String>), b| a.0.cmp(&b.0));
        }
        let relabel_configs = relabel_list(&f, "relabel_configs", names)?;
        let static_configs = static_configs(&f, relabel_configs.is_empty())?;
        let (basic_auth, bearer_token) = self.http_auth(&f)?;
        Ok(ScrapeConfig {
            job_name,
            scrape_interval_ms: interval,
            scrape_timeout_ms: if timeout == 0 {
                global.scrape_timeout_ms.min(interval)
            } else {
                timeout
            },
            metrics_path: match f.get("metrics_path") {
                Some(n) => n.as_string()?,
                None => "/metrics".into(),
            },
            scheme,
            params,
            honor_labels: f.get("honor_labels").map(Node::as_bool).transpose()?.unwrap_or(false),
            honor_timestamps: f
                .get("honor_timestamps")
                .map(Node::as_bool)
                .transpose()?
                .unwrap_or(true),
            static_configs,
            relabel_configs,
            metric_relabel_configs: relabel_list(&f, "metric_relabel_configs", names)?,
            sample_limit: count(&f, "sample_limit")?
                .filter(|&v| v > 0)
                .unwrap_or(global.sample_limit),
            body_size_limit: size(&f, "body_size_limit")?
                .filter(|&v| v > 0)
                .unwrap_or(global.body_size_limit),
            basic_auth,
            bearer_token,
        })
    }

    fn scheme(&mut self, n: &Node) -> R<String> {
        let s = n.as_string()?;
        match s.as_str() {
            "http" => {}
            "https" => self.warn(n.pos, "scheme https: TLS is not supported by tocsin yet"),
            _ => {
                return Err(YamlError::new(
                    n.pos,
                    format!("scheme must be http or https, got {s:?}"),
                ));
            }
        }
        Ok(s)
    }

    /// `basic_auth`, `authorization` and the older `bearer_token(_file)`
    /// with prometheus/common's exclusivity rules.
    fn http_auth(&mut self, f: &Fields<'_>) -> R<(Option<BasicAuth>, Option<String>)> {
        let conflict = |msg: &str| Err(YamlError::new(f.pos, msg.to_owned()));
        let legacy = (f.get("bearer_token"), f.get("bearer_token_file"));
        if legacy.0.is_some() && legacy.1.is_some() {
            return conflict("at most one of bearer_token & bearer_token_file must be configured");
        }
        let authz = f.get("authorization");
        if authz.is_some() && (legacy.0.is_some() || legacy.1.is_some()) {
            return conflict(
                "authorization is not compatible with bearer_token & bearer_token_file",
            );
        }
        let basic = f.get("basic_auth");
        if basic.is_some() && (authz.is_some() || legacy.0.is_some() || legacy.1.is_some()) {
            return conflict(
                "at most one of basic_auth, oauth2 & authorization must be configured",
            );
        }
        if let Some(n) = basic {
            let b = self.fields(
                n,
                "basic_auth",
                &["username", "username_file", "password", "password_file"],
                &[],
            )?;
            let username = self.secret(&b, "username", "username_file")?.unwrap_or_default();
            let password = self.secret(&b, "password", "password_file")?.unwrap_or_default();
            return Ok((Some(BasicAuth { username, password }), None));
        }
        if let Some(n) = authz {
            let a =
                self.fields(n, "authorization", &["type", "credentials", "credentials_file"], &[])?;
            let kind = a.string("type")?;
            if kind.eq_ignore_ascii_case("basic") {
                return Err(YamlError::new(
                    a.key_pos("type").unwrap_or(a.pos),
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            if !kind.is_empty() && !kind.eq_ignore_ascii_case("bearer") {
                return Err(YamlError::new(
                    a.key_pos("type").unwrap_or(a.pos),
                    format!("authorization type {kind:?} is not supported by tocsin (only Bearer)"),
                ));
            }
            return Ok((None, self.secret(&a, "credentials", "credentials_file")?));
        }
        Ok((None, self.secret(f, "bearer_token", "bearer_token_file")?))
    }

    /// A secret given inline or in a file (relative to the config file's
    /// directory, trimmed like prometheus/common does).
    fn secret(&mut self, f: &Fields<'_>, inline: &str, file_key: &str) -> R<Option<String>> {
        match (f.get(inline), f.get(file_key)) {
            (Some(_), Some(n)) => Err(YamlError::new(
                n.pos,
                format!("at most one of {inline} & {file_key} must be configured"),
            )),
            (Some(n), None) => Ok(Some(n.as_string()?)),
            (None, Some(n)) => {
                let path = self.dir.join(n.as_string()?);
                std::fs::read_to_string(&path).map(|s| Some(s.trim().to_owned())).map_err(|e| {
                    YamlError::new(n.pos, format!("unable to read {}: {e}", path.display()))
                })
            }
            (None, None) => Ok(None),
        }
    }

    fn alerting(&mut self, node: &Node, names: NameValidation) -> R<AlertingConfig> {
        let f = self.fields(node, "alerting config", ALERTING, &[])?;
        let mut a = AlertingConfig {
            alert_relabel_configs: relabel_list(&f, "alert_relabel_configs", names)?,
            ..AlertingConfig::default()
        };
        if let Some(d) = duration(&f, "resend_delay")? {
            a.resend_delay_ms = d;
        }
        if let Some(n) = f.get("alertmanagers") {
            for am in n.as_seq()? {
                a.alertmanagers.push(self.alertmanager(am, names)?);
            }
        }
        if let Some(n) = f.get("webhooks") {
            for w in n.as_seq()? {
                let wf = self.fields(w, "webhook config", WEBHOOK, &[])?;
                let url = self.http_url(&wf, "webhook")?;
                let timeout_ms = duration(&wf, "timeout")?.unwrap_or(10 * SECOND);
                a.webhooks.push(WebhookConfig { url, timeout_ms });
            }
        }
        Ok(a)
    }

    fn alertmanager(&mut self, node: &Node, names: NameValidation) -> R<AlertmanagerConfig> {
        let f = self.fields(
            node,
            "alertmanager config",
            &[ALERTMANAGER, HTTP_AUTH].concat(),
            &[ALERTMANAGER_PROM, HTTP_PROM, SD_PROM],
        )?;
        let api_version = match f.get("api_version") {
            None => "v2".to_owned(),
            Some(n) => match n.as_string()?.as_str() {
                "v2" => "v2".to_owned(),
                "v1" => {
                    return Err(YamlError::new(
                        n.pos,
                        "Alertmanager API v1 is no longer supported (by Alertmanager, Prometheus or tocsin); use v2",
                    ));
                }
                other => {
                    return Err(YamlError::new(
                        n.pos,
                        format!(
                            "expected Alertmanager api version to be one of [v2] but got {other}"
                        ),
                    ));
                }
            },
        };
        let relabel_configs = relabel_list(&f, "relabel_configs", names)?;
        let static_configs = static_configs(&f, relabel_configs.is_empty())?;
        let (basic_auth, bearer_token) = self.http_auth(&f)?;
        Ok(AlertmanagerConfig {
            scheme: match f.get("scheme") {
                Some(n) => self.scheme(n)?,
                None => "http".into(),
            },
            path_prefix: match f.get("path_prefix") {
                Some(n) => n.as_string()?,
                None => "/".into(),
            },
            timeout_ms: duration(&f, "timeout")?.unwrap_or(10 * SECOND),
            api_version,
            targets: static_configs.iter().flat_map(|s| s.targets.iter().cloned()).collect(),
            static_configs,
            relabel_configs,
            basic_auth,
            bearer_token,
        })
    }

    /// A required `url:` that must be http(s).
    fn http_url(&mut self, f: &Fields<'_>, what: &str) -> R<String> {
        let Some(n) = f.get("url").filter(|n| !n.is_null()) else {
            return Err(YamlError::new(f.pos, format!("url for {what} is empty")));
        };
        let s = n.as_string()?;
        let url = reqwest::Url::parse(&s)
            .map_err(|e| YamlError::new(n.pos, format!("invalid url {s:?}: {e}")))?;
        match url.scheme() {
            "http" => {}
            "https" => self.warn(n.pos, "https: TLS is not supported by tocsin yet"),
            other => {
                return Err(YamlError::new(
                    n.pos,
                    format!("unsupported url scheme {other:?} in {s:?}"),
                ));
            }
        }
        Ok(s)
    }

    fn remote_writes(&mut self, node: &Node, names: NameValidation) -> Vec<RemoteWriteConfig> {
        let items = match node.as_seq() {
            Ok(items) => items,
            Err(e) => {
                self.error(e);
                return Vec::new();
            }
        };
        let mut out: Vec<RemoteWriteConfig> = Vec::new();
        for n in items {
            match self.remote_write(n, names) {
                Ok(rw) => {
                    if !rw.name.is_empty() && out.iter().any(|p| p.name == rw.name) {
                        self.error(YamlError::new(
                            n.pos,
                            format!(
                                "found multiple remote write configs with job name {:?}",
                                rw.name
                            ),
                        ));
                    }
                    out.push(rw);
                }
                Err(e) => self.error(e),
            }
        }
        out
    }

    fn remote_write(&mut self, node: &Node, names: NameValidation) -> R<RemoteWriteConfig> {
        if node.is_null() {
            return Err(YamlError::new(node.pos, "empty or null remote write config section"));
        }
        let f = self.fields(
            node,
            "remote write config",
            &[REMOTE_WRITE, HTTP_AUTH].concat(),
            &[REMOTE_WRITE_PROM, HTTP_PROM],
        )?;
        let url = self.http_url(&f, "remote_write")?;
        let (basic_auth, bearer_token) = self.http_auth(&f)?;
        Ok(RemoteWriteConfig {
            url,
            name: f.string("name")?,
            remote_timeout_ms: duration(&f, "remote_timeout")?.unwrap_or(30 * SECOND),
            write_relabel_configs: relabel_list(&f, "write_relabel_configs", names)?,
            basic_auth,
            bearer_token,
        })
    }

    fn storage(&mut self, node: &Node, c: &mut Config) -> R<()> {
        let f = self.fields(node, "storage config", STORAGE, &[STORAGE_PROM])?;
        if let Some(d) = duration(&f, "retention")? {
            c.storage.retention_ms = d;
        }
        if let Some(d) = duration(&f, "checkpoint_interval")? {
            c.storage.checkpoint_interval_ms = d;
        }
        Ok(())
    }

    fn limits(&mut self, node: &Node, c: &mut Config) -> R<()> {
        let f = self.fields(node, "limits config", LIMITS, &[])?;
        let l = &mut c.limits;
        l.max_body_bytes = size(&f, "max_body_bytes")?.unwrap_or(l.max_body_bytes);
        l.query_max_samples = count(&f, "query_max_samples")?.unwrap_or(l.query_max_samples);
        l.lookback_delta_ms = duration(&f, "lookback_delta")?.unwrap_or(l.lookback_delta_ms);
        l.query_timeout_ms = duration(&f, "query_timeout")?.unwrap_or(l.query_timeout_ms);
        Ok(())
    }

    fn auth(&mut self, node: &Node, c: &mut Config) -> R<()> {
        let f = self.fields(node, "auth config", AUTH, &[])?;
        c.auth.bearer_token =
            self.secret(&f, "bearer_token", "bearer_token_file")?.filter(|t| !t.is_empty());
        Ok(())
    }

    fn modules(&mut self, node: &Node, c: &mut Config) -> R<()> {
        let f = self.fields(node, "modules config", MODULES, &[])?;
        let m = &mut c.modules;
        m.max_module_bytes = size(&f, "max_module_bytes")?.unwrap_or(m.max_module_bytes);
        m.timeout_ms = duration(&f, "timeout")?.unwrap_or(m.timeout_ms);
        m.memory_limit = size(&f, "memory_limit")?.unwrap_or(m.memory_limit);
        let l = &mut m.limits;
        l.max_output_samples = count(&f, "max_output_samples")?.unwrap_or(l.max_output_samples);
        l.max_output_bytes = size(&f, "max_output_bytes")?.unwrap_or(l.max_output_bytes);
        if let Some(n) = count(&f, "max_host_calls")? {
            l.max_host_calls = u32::try_from(n).map_err(|_| {
                YamlError::new(node.pos, format!("max_host_calls: {n} is more than {}", u32::MAX))
            })?;
        }
        l.max_query_samples = count(&f, "max_query_samples")?.unwrap_or(l.max_query_samples);
        l.max_state_bytes = size(&f, "max_state_bytes")?.unwrap_or(l.max_state_bytes);
        l.max_log_lines = count(&f, "max_log_lines")?.unwrap_or(l.max_log_lines);
        Ok(())
    }
}

fn rule_files(node: &Node) -> R<Vec<String>> {
    let mut out = Vec::new();
    for n in node.as_seq()? {
        let s = n.as_string()?;
        // Prometheus allows `*` only in the last path element.
        if s.find('*').is_some_and(|i| s[i..].contains('/')) {
            return Err(YamlError::new(n.pos, format!("invalid rule file path {s:?}")));
        }
        out.push(s);
    }
    Ok(out)
}

fn static_configs(f: &Fields<'_>, check_addresses: bool) -> R<Vec<StaticConfig>> {
    let mut out = Vec::new();
    let Some(list) = f.get("static_configs") else { return Ok(out) };
    for n in list.as_seq()? {
        if n.is_null() {
            continue;
        }
        let sf = Fields::new(n, "static config", &["targets", "labels"], false)?;
        let mut targets = Vec::new();
        if let Some(t) = sf.get("targets") {
            for tn in t.as_seq()? {
                let target = tn.as_string()?;
                // Only without relabelling: rules may rewrite `__address__`.
                if check_addresses && let Err(e) = check_target_address(&target) {
                    return Err(YamlError::new(
                        tn.pos,
                        format!("{e} (write host:port; use scheme and metrics_path for the rest)"),
                    ));
                }
                targets.push(target);
            }
        }
        let mut labels = Vec::new();
        if let Some(l) = sf.get("labels") {
            for (name, value, pos) in l.as_string_map()? {
                if name.is_empty() {
                    return Err(YamlError::new(pos, "\"\" is not a valid label name"));
                }
                labels.push(Label::new(name, value));
            }
        }
        out.push(StaticConfig { targets, labels: Labels::new(labels) });
    }
    Ok(out)
}

fn relabel_list(f: &Fields<'_>, key: &str, names: NameValidation) -> R<Vec<RelabelConfig>> {
    f.get(key).map_or(Ok(Vec::new()), |n| relabel::parse_relabel_configs_with(n, names))
}

fn valid_label_name(names: NameValidation, name: &str) -> bool {
    match names {
        NameValidation::Utf8 => !name.is_empty(),
        NameValidation::Legacy => is_legacy_label_name(name),
    }
}

fn duration(f: &Fields<'_>, key: &str) -> R<Option<i64>> {
    let Some(n) = f.get(key).filter(|n| !n.is_null()) else { return Ok(None) };
    parse_duration(&n.as_string()?).map(Some).map_err(|e| YamlError::new(n.pos, e))
}

fn count(f: &Fields<'_>, key: &str) -> R<Option<usize>> {
    let Some(n) = f.get(key).filter(|n| !n.is_null()) else { return Ok(None) };
    usize::try_from(n.as_i64()?)
        .map(Some)
        .map_err(|_| YamlError::new(n.pos, format!("{key} must not be negative")))
}

/// A byte size: a plain integer, or a number with a unit as Prometheus's
/// `body_size_limit` takes (`B`, `KB`/`KiB`, `MB`/`MiB`, … all powers of 1024).
fn size(f: &Fields<'_>, key: &str) -> R<Option<usize>> {
    let Some(n) = f.get(key).filter(|n| !n.is_null()) else { return Ok(None) };
    let s = n.as_string()?;
    parse_size(&s).map(Some).ok_or_else(|| {
        YamlError::new(n.pos, format!("invalid size {s:?} for {key} (e.g. 512MB, 1GiB, 1048576)"))
    })
}

fn parse_size(s: &str) -> Option<usize> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KB" | "KiB" => 10,
        "M" | "MB" | "MiB" => 20,
        "G" | "GB" | "GiB" => 30,
        "T" | "TB" | "TiB" => 40,
        "P" | "PB" | "PiB" => 50,
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    let bytes = v * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// `$VAR` and `${VAR}` from the environment in external label values, as
/// Prometheus 3 does (`$$` is a literal dollar).
fn expand_env(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{')
            && let Some(end) = r.find('}')
        {
            out.push_str(&std::env::var(&r[..end]).unwrap_or_default());
            rest = &r[end + 1..];
        } else {
            let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&std::env::var(&rest[..len]).unwrap_or_default());
            }
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    out
}

/// The candidate nearest to a misspelt key, if it is near enough to be a typo.
fn closest<'a>(key: &str, candidates: impl Iterator<Item = &'a &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(key, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Config, Vec<String>) {
        parse_config("t.yml", text).unwrap_or_else(|e| panic!("{}", e[0]))
    }

    fn errors(text: &str) -> Vec<String> {
        parse_config("t.yml", text).expect_err("an error").iter().map(|e| e.to_string()).collect()
    }

    fn error(text: &str) -> String {
        errors(text).remove(0)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tocsin-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn empty_file_is_all_defaults() {
        for text in ["", "# nothing\n", "global:\n"] {
            let (c, w) = parse(text);
            assert!(w.is_empty());
            assert_eq!(c.global, GlobalConfig::default());
            assert_eq!(c.global.scrape_interval_ms, 60_000);
            assert_eq!(c.global.scrape_timeout_ms, 10_000);
            assert_eq!(c.global.evaluation_interval_ms, 60_000);
            assert_eq!(c.storage.retention_ms, 15 * 24 * 3_600_000);
            assert_eq!(c.storage.checkpoint_interval_ms, 300_000);
            assert_eq!(c.limits.max_body_bytes, 32 << 20);
            assert_eq!(c.limits.query_max_samples, 50_000_000);
            assert_eq!(c.limits.lookback_delta_ms, 300_000);
            assert_eq!(c.limits.query_timeout_ms, 120_000);
            assert_eq!(c.modules.max_module_bytes, 16 << 20);
            assert_eq!(c.modules.timeout_ms, 1000);
            assert_eq!(c.modules.memory_limit, 64 << 20);
            assert_eq!(c.modules.limits.max_output_samples, 10_000);
            assert_eq!(c.alerting.resend_delay_ms, 60_000);
            assert_eq!(c.auth.bearer_token, None);
        }
    }

    #[test]
    fn scrape_configs_inherit_from_global() {
        let (c, _) = parse(
            "global:\n  scrape_interval: 5s\n  sample_limit: 100\n  body_size_limit: 1MB\n  external_labels: {dc: x}\n\
             scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 2s\n    sample_limit: 7\n  - job_name: c\n    scrape_interval: 1m\n",
        );
        assert_eq!(c.global.scrape_timeout_ms, 5000, "timeout defaults to min(10s, interval)");
        assert_eq!(c.global.external_labels.to_string(), r#"{dc="x"}"#);
        let [a, b, cc] = &c.scrape_configs[..] else { panic!() };
        assert_eq!((a.scrape_interval_ms, a.scrape_timeout_ms), (5000, 5000));
        assert_eq!((b.scrape_interval_ms, b.scrape_timeout_ms), (2000, 2000));
        assert_eq!((cc.scrape_interval_ms, cc.scrape_timeout_ms), (60_000, 5000));
        assert_eq!((a.sample_limit, b.sample_limit), (100, 7));
        assert_eq!(a.body_size_limit, 1 << 20);
        assert_eq!((a.metrics_path.as_str(), a.scheme.as_str()), ("/metrics", "http"));
        assert!(a.honor_timestamps && !a.honor_labels);
    }

    #[test]
    fn semantic_errors_have_positions() {
        assert_eq!(
            error("global:\n  scrape_interval: 10s\n  scrape_timeout: 20s\n"),
            "t.yml:3:3: global scrape timeout greater than scrape interval"
        );
        assert_eq!(
            error(
                "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n"
            ),
            "t.yml:4:5: scrape timeout greater than scrape interval for scrape config with job name \"a\""
        );
        assert_eq!(
            error("scrape_configs:\n  - scrape_interval: 5s\n"),
            "t.yml:2:5: job_name is empty"
        );
        assert_eq!(
            error("scrape_configs:\n  - job_name: a\n  - job_name: a\n"),
            "t.yml:3:5: found multiple scrape configs with job name \"a\""
        );
        assert_eq!(
            error("global:\n  evaluation_interval: 1x\n"),
            "t.yml:2:24: not a valid duration string: \"1x\""
        );
        assert_eq!(
            error("global:\n  external_labels:\n    \"\": x\n"),
            "t.yml:3:5: \"\" is not a valid label name"
        );
        let legacy =
            "global:\n  metric_name_validation_scheme: legacy\n  external_labels:\n    a.b: x\n";
        assert_eq!(error(legacy), "t.yml:4:5: \"a.b\" is not a valid label name");
        assert!(error("rule_files: ['a/*/b.yml']\n").contains("invalid rule file path"));
        assert!(error("global: [1]\n").starts_with("t.yml:1:9: cannot unmarshal !!seq"));
        // Every broken section is reported, not only the first.
        let all =
            errors("scrape_configs:\n  - job_name: ''\n  - job_name: b\n    scrape_timeout: 2m\n");
        assert_eq!(all.len(), 2, "{all:?}");
    }

    #[test]
    fn prometheus_only_keys_are_warnings() {
        let (c, w) = parse(
            "runtime:\n  gogc: 50\nscrape_configs:\n  - job_name: k8s\n    kubernetes_sd_configs:\n      - role: pod\n    tls_config: {insecure_skip_verify: true}\n\
             storage:\n  tsdb: {out_of_order_time_window: 1h}\n  retention: 30d\n",
        );
        assert_eq!(
            w,
            [
                "t.yml:1:1: runtime is not supported by tocsin and is ignored",
                "t.yml:5:5: kubernetes_sd_configs is not supported by tocsin and is ignored",
                "t.yml:7:5: tls_config is not supported by tocsin and is ignored",
                "t.yml:9:3: tsdb is not supported by tocsin and is ignored",
            ]
        );
        assert_eq!(c.scrape_configs[0].job_name, "k8s");
        assert!(c.scrape_configs[0].targets().is_empty());
        assert_eq!(c.storage.retention_ms, 30 * 24 * 3_600_000);
        let (_, w) = parse("scrape_configs:\n  - job_name: s\n    scheme: https\n");
        assert_eq!(w, ["t.yml:3:13: scheme https: TLS is not supported by tocsin yet"]);
    }

    #[test]
    fn unknown_keys_are_errors_listing_the_known_ones() {
        let e = error("global:\n  scrape_intervall: 15s\n");
        assert!(e.starts_with("t.yml:2:3: field scrape_intervall not found in global config (did you mean scrape_interval?); known fields: scrape_interval, scrape_timeout,"), "{e}");
        let e = error("scrape_configs:\n  - job_name: a\n    static_config: []\n");
        assert!(e.contains("did you mean static_configs?"), "{e}");
        let e = error("limits:\n  max_body: 1\n");
        assert!(e.contains("known fields: max_body_bytes, query_max_samples"), "{e}");
        assert!(
            error("alerting:\n  alertmanagers:\n    - static_configs: [{target: [a]}]\n")
                .contains("field target not found in static config")
        );
        assert!(
            error("bogus: 1\n")
                .starts_with("t.yml:1:1: field bogus not found in config; known fields: global,")
        );
    }

    #[test]
    fn targets_follow_populate_labels() {
        let (c, _) = parse(
            "scrape_configs:\n  - job_name: node\n    scrape_interval: 30s\n    params: {'collect[]': [cpu, mem]}\n\
             \x20   static_configs:\n      - targets: [n1:9100, scratch:9100]\n        labels: {env: prod}\n\
             \x20   relabel_configs:\n      - {source_labels: [__address__], regex: 'scratch:.*', action: drop}\n\
             \x20     - {source_labels: [__address__], regex: '([^:]+):.*', target_label: host}\n",
        );
        let targets = c.scrape_configs[0].targets();
        assert_eq!(targets.len(), 1, "scratch is dropped");
        let t = targets[0].as_ref().unwrap();
        assert_eq!(t.url, "http://n1:9100/metrics?collect%5B%5D=cpu&collect%5B%5D=mem");
        assert_eq!(
            t.labels.to_string(),
            r#"{env="prod", host="n1", instance="n1:9100", job="node"}"#
        );
        assert_eq!(
            t.discovered.to_string(),
            r#"{__address__="n1:9100", __metrics_path__="/metrics", "__param_collect[]"="cpu", __scheme__="http", __scrape_interval__="30s", __scrape_timeout__="10s", env="prod", job="node"}"#
        );
        assert_eq!((t.interval_ms, t.timeout_ms), (30_000, 10_000));
    }

    #[test]
    fn blackbox_style_relabelling_builds_the_probe_url() {
        let (c, _) = parse(
            "scrape_configs:\n  - job_name: bb\n    metrics_path: /probe\n    params: {module: [http_2xx]}\n\
             \x20   static_configs: [{targets: ['https://example.com/a b']}]\n    relabel_configs:\n\
             \x20     - {source_labels: [__address__], target_label: __param_target}\n\
             \x20     - {source_labels: [__param_target], target_label: instance}\n\
             \x20     - {target_label: __address__, replacement: '127.0.0.1:9115'}\n\
             \x20     - {target_label: __scrape_timeout__, replacement: 3s}\n",
        );
        let t = c.scrape_configs[0].targets().remove(0).unwrap();
        assert_eq!(
            t.url,
            "http://127.0.0.1:9115/probe?module=http_2xx&target=https%3A%2F%2Fexample.com%2Fa+b"
        );
        assert_eq!(t.labels.to_string(), r#"{instance="https://example.com/a b", job="bb"}"#);
        assert_eq!(t.timeout_ms, 3000);
    }

    #[test]
    fn bad_target_addresses_are_errors() {
        let e = error(
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets:\n          - http://x:80\n",
        );
        assert!(e.starts_with("t.yml:5:13: \"http://x:80\" is not a valid hostname"), "{e}");
        // With relabelling the check moves to target time.
        let (c, _) = parse(
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['x:1', 'y:1']}]\n    relabel_configs:\n\
             \x20     - {source_labels: [__address__], regex: 'x:1', target_label: __address__, replacement: 'http://x/'}\n\
             \x20     - {source_labels: [__address__], regex: 'y:1', target_label: __scrape_timeout__, replacement: 2m}\n",
        );
        let t = c.scrape_configs[0].targets();
        assert_eq!(
            t[0].as_ref().unwrap_err(),
            "instance 0 in static_configs[0] of job \"a\": \"http://x/\" is not a valid hostname"
        );
        assert!(
            t[1].as_ref().unwrap_err().contains(
                "scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")"
            )
        );
    }

    #[test]
    fn alertmanager_urls() {
        let (c, _) = parse(
            "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:9093']}]\n\
             \x20   - path_prefix: /am/\n      scheme: http\n      timeout: 3s\n      static_configs: [{targets: ['a:9093', 'b:9093'], labels: {dc: eu}}]\n\
             \x20     relabel_configs: [{source_labels: [__address__], regex: 'b:.*', action: drop}]\n",
        );
        let [first, second] = &c.alerting.alertmanagers[..] else { panic!() };
        assert_eq!(first.urls(), ["http://127.0.0.1:9093/api/v2/alerts"]);
        assert_eq!((first.timeout_ms, first.api_version.as_str()), (10_000, "v2"));
        assert_eq!(second.urls(), ["http://a:9093/am/api/v2/alerts"]);
        assert_eq!(second.targets, ["a:9093", "b:9093"]);
        assert_eq!(second.timeout_ms, 3000);
        let e = error("alerting:\n  alertmanagers:\n    - api_version: v1\n");
        assert!(e.starts_with("t.yml:3:20: Alertmanager API v1 is no longer supported"), "{e}");
    }

    #[test]
    fn tocsin_sections() {
        let (c, w) = parse(
            "limits:\n  max_body_bytes: 1GiB\n  query_max_samples: 1000\n  lookback_delta: 1m\n  query_timeout: 30s\n\
             modules:\n  max_module_bytes: 1048576\n  timeout: 250ms\n  memory_limit: 128MB\n  max_output_samples: 5\n  max_output_bytes: 1MiB\n  max_host_calls: 20\n  max_query_samples: 1000\n  max_state_bytes: 4KiB\n  max_log_lines: 3\n\
             storage:\n  checkpoint_interval: 1m\n\
             auth:\n  bearer_token: t0k\n\
             alerting:\n  resend_delay: 30s\n  webhooks:\n    - url: http://hook:8080/alerts\n      timeout: 2s\n\
             remote_write:\n  - url: http://mimir/api/v1/push\n    headers: {X-Scope-OrgID: a}\n    authorization: {credentials: abc}\n",
        );
        assert_eq!(
            c.limits,
            LimitsConfig {
                max_body_bytes: 1 << 30,
                query_max_samples: 1000,
                lookback_delta_ms: 60_000,
                query_timeout_ms: 30_000
            }
        );
        assert_eq!(
            c.modules,
            ModulesConfig {
                max_module_bytes: 1 << 20,
                timeout_ms: 250,
                memory_limit: 128 << 20,
                limits: tocsin_engine::rules::wasm::WasmLimits {
                    max_output_samples: 5,
                    max_output_bytes: 1 << 20,
                    max_host_calls: 20,
                    max_query_samples: 1000,
                    max_state_bytes: 4 << 10,
                    max_log_lines: 3,
                    ..Default::default()
                }
            }
        );
        assert_eq!(c.storage.checkpoint_interval_ms, 60_000);
        assert_eq!(c.auth.bearer_token.as_deref(), Some("t0k"));
        assert_eq!(c.alerting.resend_delay_ms, 30_000);
        assert_eq!(
            c.alerting.webhooks,
            [WebhookConfig { url: "http://hook:8080/alerts".into(), timeout_ms: 2000 }]
        );
        let rw = &c.remote_write[0];
        assert_eq!((rw.remote_timeout_ms, rw.bearer_token.as_deref()), (30_000, Some("abc")));
        assert_eq!(w, ["t.yml:27:5: headers is not supported by tocsin and is ignored"]);
        assert!(error("remote_write:\n  - name: x\n").contains("url for remote_write is empty"));
        assert!(error("limits:\n  max_body_bytes: lots\n").contains("invalid size \"lots\""));
        assert!(
            error("alerting:\n  webhooks: [{url: 'ftp://x'}]\n").contains("unsupported url scheme")
        );
    }

    #[test]
    fn auth_secrets_and_exclusivity() {
        let dir = temp_dir("secrets");
        std::fs::write(dir.join("token"), "from-file\n").unwrap();
        std::fs::write(dir.join("pass"), "pw\n").unwrap();
        let cfg = dir.join("tocsin.yml");
        std::fs::write(
            &cfg,
            "auth:\n  bearer_token_file: token\nscrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password_file: pass}\n\
             \x20 - job_name: b\n    bearer_token_file: token\n",
        )
        .unwrap();
        let (c, _) = load(&cfg).unwrap_or_else(|e| panic!("{}", e[0]));
        assert_eq!(c.auth.bearer_token.as_deref(), Some("from-file"));
        let a = &c.scrape_configs[0];
        assert_eq!(a.basic_auth, Some(BasicAuth { username: "u".into(), password: "pw".into() }));
        assert_eq!(c.scrape_configs[1].bearer_token.as_deref(), Some("from-file"));
        let e = error("auth:\n  bearer_token_file: /nonexistent/tocsin-token\n");
        assert!(e.starts_with("t.yml:2:22: unable to read /nonexistent/tocsin-token"), "{e}");
        let e = error(
            "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: x}\n",
        );
        assert!(e.contains("at most one of basic_auth, oauth2 & authorization"), "{e}");
        let e = error("scrape_configs:\n  - job_name: a\n    authorization: {type: Basic}\n");
        assert!(e.contains("use \"basic_auth\" instead"), "{e}");
        let missing = load(&dir.join("missing.yml")).unwrap_err();
        assert!(
            missing[0].to_string().starts_with(&format!("{}: ", dir.join("missing.yml").display()))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rule_files_resolve_relative_to_the_config() {
        let dir = temp_dir("rules");
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        for f in ["rules/b.yml", "rules/a.yml", "one.yml"] {
            std::fs::write(dir.join(f), "groups: []\n").unwrap();
        }
        let (c, _) = parse("rule_files: [one.yml, 'rules/*.yml', missing.yml, one.yml]\n");
        assert_eq!(c.rule_files, ["one.yml", "rules/*.yml", "missing.yml", "one.yml"]);
        let files = c.resolve_rule_files(&dir).unwrap();
        let want: Vec<PathBuf> =
            ["one.yml", "rules/a.yml", "rules/b.yml"].iter().map(|f| dir.join(f)).collect();
        assert_eq!(files, want);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_prometheus_fixture_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prometheus.yml");
        let (c, w) = load(&path).unwrap_or_else(|e| panic!("{}", e[0]));
        assert_eq!(c.scrape_configs.len(), 6);
        assert_eq!(w.len(), 5, "{w:#?}");
        assert_eq!(c.global.external_labels.to_string(), r#"{cluster="eu-west-1", replica="a"}"#);
        assert_eq!(
            c.alerting.alertmanagers[0].urls(),
            [
                "http://127.0.0.1:9093/am/api/v2/alerts",
                "http://alertmanager-2:9093/am/api/v2/alerts"
            ]
        );
        let node: Vec<_> = c.scrape_configs[1].targets().into_iter().map(Result::unwrap).collect();
        assert_eq!(node.len(), 2);
        assert_eq!(
            node[1].labels.to_string(),
            r#"{env="prod", host="node-2", instance="node-2:9100", job="node"}"#
        );
        assert_eq!(c.remote_write[0].name, "mimir");
    }

    #[test]
    fn urls_and_paths_are_encoded_like_go() {
        assert_eq!(build_url("http", "h:1", "a b/!c", &[]), "http://h:1/a%20b/%21c");
        assert_eq!(
            build_url("http", "h", "", &[("k".into(), vec!["v&w".into()])]),
            "http://h?k=v%26w"
        );
        assert_eq!(clean_path("//a/./b/../c/"), "/a/c");
        assert_eq!(parse_size("1.5KB"), Some(1536));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("12QB"), None);
    }
}
