//! Benchmark data shared by the engine's benches (storage, PromQL, exposition):
//! a deterministic scrape workload shaped like a fleet of exporters.
//!
//! Series come from per-job templates (node exporter, an HTTP API, a database,
//! a cache), about 500 per instance, so `__name__`, `job`, `instance` and the
//! other labels have the cardinalities a real fleet has: a few hundred metric
//! names, one `instance` per 500 series, a handful of `env`, `region` and
//! `cluster` values, and 0 to 2 family-specific labels (`cpu`, `mode`,
//! `device`, `code`, `handler`, `le`, ...): 6 to 8 labels per series.
//!
//! Values follow the metric's type: counters grow by random integer steps
//! (some idle, some busy, some byte counters in the billions), gauges hold a
//! few significant digits (some integral, some with one or two decimals,
//! some static and some moving every scrape), and info-like series are
//! constant. Each instance is scraped every 15 s at its own phase; one scrape
//! in ten starts up to 25 ms late or early.
//!
//! Each bench uses a part of this module, hence the `allow(dead_code)`.
#![allow(dead_code)]

use tocsin_engine::labels::{Label, Labels};
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::{Head, SeriesHandle};

pub const INTERVAL_MS: i64 = 15_000;
/// Two hours of 15 s scrapes.
pub const SAMPLES_2H: usize = 480;
pub const START_MS: i64 = 1_700_000_000_000;

/// How a series' value moves from scrape to scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Errors, restarts: +1 on one scrape in fifty.
    IdleCounter,
    /// Requests, operations: +0..=5 per scrape.
    BusyCounter,
    /// Bytes, packets: large values, large random steps.
    ByteCounter,
    /// Integral gauge that moves every scrape (memory, connections, queues).
    IntGauge,
    /// Gauge with one or two decimals that moves every scrape (load, temperature, ratios).
    DecimalGauge,
    /// Gauge that changes on about one scrape in fifty (filesystem sizes, limits).
    StaticGauge,
    /// Always the same value (`up`, `*_info`, build info).
    Constant,
}

pub struct SeriesSpec {
    pub labels: Labels,
    pub kind: Kind,
    instance: usize,
}

/// A fixed set of series; [`Dataset::scrapes`] generates their samples.
pub struct Dataset {
    pub series: Vec<SeriesSpec>,
    instances: usize,
}

struct Family {
    name: &'static str,
    kind: Kind,
    dims: &'static [(&'static str, &'static [&'static str])],
    /// Distinct metric names of this shape (`name`, `name_1`, ...).
    copies: usize,
}

const fn fam(
    name: &'static str,
    kind: Kind,
    dims: &'static [(&'static str, &'static [&'static str])],
    copies: usize,
) -> Family {
    Family { name, kind, dims, copies }
}

const CPU: (&str, &[&str]) = ("cpu", &["0", "1", "2", "3", "4", "5", "6", "7"]);
const MODE: (&str, &[&str]) =
    ("mode", &["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"]);
const DEVICE: (&str, &[&str]) = ("device", &["sda", "sdb", "nvme0n1", "eth0", "eth1", "lo"]);
const CODE: (&str, &[&str]) = ("code", &["200", "201", "304", "400", "404", "500"]);
const HANDLER: (&str, &[&str]) = (
    "handler",
    &[
        "/api/v1/users",
        "/api/v1/orders",
        "/api/v1/items",
        "/api/v1/search",
        "/api/v1/login",
        "/api/v1/cart",
        "/healthz",
        "/metrics",
    ],
);
const LE: (&str, &[&str]) = (
    "le",
    &["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"],
);
const QUANTILE: (&str, &[&str]) = ("quantile", &["0", "0.25", "0.5", "0.75", "1"]);
const STATE: (&str, &[&str]) = ("state", &["active", "idle", "waiting", "disabled"]);
const DB: (&str, &[&str]) = ("datname", &["users", "orders", "billing", "analytics", "postgres"]);
const CMD: (&str, &[&str]) =
    ("cmd", &["get", "set", "del", "incr", "expire", "hget", "hset", "mget", "lpush", "rpop"]);
const UNIT: (&str, &[&str]) = (
    "name",
    &["sshd", "cron", "docker", "kubelet", "containerd", "nginx", "chronyd", "systemd-journald"],
);

use Kind::*;

const NODE: &[Family] = &[
    fam("node_cpu_seconds_total", BusyCounter, &[CPU, MODE], 1),
    fam("node_disk_io", ByteCounter, &[DEVICE], 6),
    fam("node_network_io", ByteCounter, &[DEVICE], 8),
    fam("node_network_errs_total", IdleCounter, &[DEVICE], 4),
    fam("node_filesystem_bytes", StaticGauge, &[DEVICE], 5),
    fam("node_memory_bytes", IntGauge, &[], 40),
    fam("node_load", DecimalGauge, &[], 3),
    fam("node_hwmon_temp_celsius", DecimalGauge, &[CPU], 1),
    fam("node_softnet_processed_total", BusyCounter, &[CPU], 2),
    fam("node_interrupts_total", BusyCounter, &[CPU, DEVICE], 1),
    fam("node_vmstat", BusyCounter, &[], 50),
    fam("node_netstat", IdleCounter, &[], 60),
    fam("node_systemd_unit_state", StaticGauge, &[UNIT, STATE], 1),
    fam("node_uname_info", Constant, &[], 1),
    fam("up", Constant, &[], 1),
];

const API: &[Family] = &[
    fam("http_requests_total", BusyCounter, &[CODE, HANDLER], 1),
    fam("http_request_duration_seconds_bucket", BusyCounter, &[HANDLER, LE], 1),
    fam("http_request_duration_seconds_count", BusyCounter, &[HANDLER], 1),
    fam("http_response_size_bytes_total", ByteCounter, &[HANDLER], 1),
    fam("go_gc_duration_seconds", DecimalGauge, &[QUANTILE], 1),
    fam("go_memstats", IntGauge, &[], 28),
    fam("go_goroutines", IntGauge, &[], 1),
    fam("process_resident_memory_bytes", IntGauge, &[], 1),
    fam("process_open_fds", IntGauge, &[], 1),
    fam("app_queue_depth", IntGauge, &[STATE], 10),
    fam("app_errors_total", IdleCounter, &[CODE], 20),
    fam("app_config_limit", StaticGauge, &[], 30),
    fam("app_cache_ratio", DecimalGauge, &[], 20),
    fam("app_build_info", Constant, &[], 1),
    fam("up", Constant, &[], 1),
];

const DATABASE: &[Family] = &[
    fam("pg_stat_database_tup", BusyCounter, &[DB], 10),
    fam("pg_stat_database_blks", ByteCounter, &[DB], 6),
    fam("pg_stat_database_conflicts_total", IdleCounter, &[DB], 5),
    fam("pg_stat_activity_count", IntGauge, &[DB, STATE], 1),
    fam("pg_locks_count", IntGauge, &[DB, MODE], 1),
    fam("pg_settings", StaticGauge, &[], 150),
    fam("pg_stat_bgwriter", BusyCounter, &[], 10),
    fam("pg_replication_lag_seconds", DecimalGauge, &[DB], 2),
    fam("go_memstats", IntGauge, &[], 28),
    fam("process_cpu_seconds_total", BusyCounter, &[], 1),
    fam("pg_up", Constant, &[], 1),
    fam("up", Constant, &[], 1),
];

const CACHE: &[Family] = &[
    fam("redis_commands_total", BusyCounter, &[CMD], 4),
    fam("redis_commands_duration_seconds_bucket", BusyCounter, &[CMD, LE], 1),
    fam("redis_keyspace_keys", IntGauge, &[DB], 4),
    fam("redis_net_bytes_total", ByteCounter, &[], 2),
    fam("redis_memory_bytes", IntGauge, &[], 12),
    fam("redis_config", StaticGauge, &[], 60),
    fam("redis_errors_total", IdleCounter, &[CMD], 6),
    fam("redis_mem_fragmentation_ratio", DecimalGauge, &[], 1),
    fam("redis_cpu_seconds_total", BusyCounter, &[STATE], 3),
    fam("go_memstats", IntGauge, &[], 28),
    fam("redis_instance_info", Constant, &[], 1),
    fam("up", Constant, &[], 1),
];

const JOBS: [(&str, u16, &[Family]); 4] = [
    ("node", 9100, NODE),
    ("api", 8080, API),
    ("postgres", 9187, DATABASE),
    ("redis", 9121, CACHE),
];
const ENVS: [&str; 3] = ["prod", "prod", "staging"];
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"];

/// Deterministic, fast, good enough for test data.
#[derive(Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

impl Dataset {
    /// `n` series spread over as many instances as it takes (about 500 each).
    pub fn new(n: usize) -> Self {
        let mut series = Vec::with_capacity(n);
        let mut instance = 0;
        while series.len() < n {
            let (job, port, families) = JOBS[instance % JOBS.len()];
            let host = format!(
                "10.{}.{}.{}:{port}",
                instance / 65536,
                instance / 256 % 256,
                instance % 256
            );
            let common = [
                ("job", job.to_string()),
                ("instance", host),
                ("env", ENVS[instance % ENVS.len()].to_string()),
                ("region", REGIONS[instance / 7 % REGIONS.len()].to_string()),
                ("cluster", format!("k8s-{}", instance / 40)),
            ];
            'families: for f in families {
                for copy in 0..f.copies {
                    let name =
                        if copy == 0 { f.name.to_string() } else { format!("{}_{copy}", f.name) };
                    for combo in combinations(f.dims) {
                        if series.len() == n {
                            break 'families;
                        }
                        let mut pairs: Vec<Label> =
                            common.iter().map(|(k, v)| Label::new(*k, v.as_str())).collect();
                        pairs.push(Label::new("__name__", name.as_str()));
                        pairs.extend(combo.into_iter().map(|(k, v)| Label::new(k, v)));
                        series.push(SeriesSpec {
                            labels: Labels::new(pairs),
                            kind: f.kind,
                            instance,
                        });
                    }
                }
            }
            instance += 1;
        }
        Dataset { series, instances: instance }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn instances(&self) -> usize {
        self.instances
    }

    /// Generates `rounds` scrapes of every series.
    pub fn scrapes(&self, rounds: usize) -> Scrapes<'_> {
        let mut rng = SplitMix::new(0x5eed);
        let phases = (0..self.instances).map(|_| rng.below(INTERVAL_MS as u64) as i64).collect();
        let values =
            self.series.iter().enumerate().map(|(i, s)| ValueGen::new(s.kind, i as u64)).collect();
        Scrapes { dataset: self, round: 0, rounds, phases, values, jitter: rng }
    }

    /// Creates every series in `head` and appends `rounds` scrapes, in scrape
    /// order (all series at each timestamp), as a scrape loop would.
    pub fn load(&self, head: &Head, rounds: usize) -> Vec<SeriesHandle> {
        let handles: Vec<SeriesHandle> =
            self.series.iter().map(|s| head.get_or_create(&s.labels)).collect();
        let mut scrapes = self.scrapes(rounds);
        let mut round = Vec::new();
        while scrapes.next_round(&mut round) {
            for (h, s) in handles.iter().zip(&round) {
                head.append(h, s.t, s.v).expect("generated samples are in order");
            }
        }
        handles
    }
}

fn combinations(
    dims: &[(&'static str, &'static [&'static str])],
) -> Vec<Vec<(&'static str, &'static str)>> {
    let mut out = vec![Vec::new()];
    for &(name, values) in dims {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((name, *v));
                    p
                })
            })
            .collect();
    }
    out
}

/// One series' value state.
struct ValueGen {
    kind: Kind,
    rng: SplitMix,
    /// Integer state: counter value, or gauge mantissa.
    n: u64,
    /// Per-series step scale.
    step: u64,
    /// Gauges: value = n / 10^decimals.
    decimals: i32,
}

impl ValueGen {
    fn new(kind: Kind, seed: u64) -> Self {
        let mut rng = SplitMix::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ kind as u64);
        let (n, step, decimals) = match kind {
            IdleCounter => (rng.below(20), 1, 0),
            BusyCounter => (rng.below(1_000_000), 6, 0),
            ByteCounter => {
                let scale = 10u64.pow(2 + rng.below(5) as u32); // 100 B .. 1 MB per scrape
                (rng.below(1 << 40), scale, 0)
            }
            IntGauge => {
                let digits = 1 + rng.below(9) as u32; // 1 .. 1e9
                let base = 10u64.pow(digits);
                (base + rng.below(base), (base / 100).max(2), 0)
            }
            DecimalGauge => (100 + rng.below(900), 3, 1 + rng.below(2) as i32),
            StaticGauge => (1 + rng.below(1 << 30), 1 + rng.below(1 << 20), 0),
            Constant => (1, 0, 0),
        };
        ValueGen { kind, rng, n, step, decimals }
    }

    fn next(&mut self) -> f64 {
        let rng = &mut self.rng;
        match self.kind {
            IdleCounter => {
                if rng.one_in(50) {
                    self.n += 1;
                }
            }
            BusyCounter | ByteCounter => self.n += rng.below(self.step),
            IntGauge | DecimalGauge => {
                let delta = rng.below(2 * self.step + 1);
                self.n = (self.n + delta).saturating_sub(self.step).max(1);
            }
            StaticGauge => {
                if rng.one_in(50) {
                    self.n += self.step;
                }
            }
            Constant => {}
        }
        if self.decimals == 0 {
            self.n as f64
        } else {
            // Dividing by an exact power of ten gives the same double as
            // parsing the decimal text an exporter would print.
            self.n as f64 / 10f64.powi(self.decimals)
        }
    }
}

/// Iterates scrape rounds of a [`Dataset`].
pub struct Scrapes<'a> {
    dataset: &'a Dataset,
    round: usize,
    rounds: usize,
    phases: Vec<i64>,
    values: Vec<ValueGen>,
    jitter: SplitMix,
}

impl Scrapes<'_> {
    /// Fills `out` with one sample per series (in dataset order) for the next
    /// round; false when all rounds are done.
    pub fn next_round(&mut self, out: &mut Vec<Sample>) -> bool {
        if self.round == self.rounds {
            return false;
        }
        let base = START_MS + self.round as i64 * INTERVAL_MS;
        let times: Vec<i64> = self
            .phases
            .iter()
            .map(|p| {
                let jitter =
                    if self.jitter.one_in(10) { self.jitter.below(51) as i64 - 25 } else { 0 };
                base + p + jitter
            })
            .collect();
        out.clear();
        out.extend(
            self.dataset
                .series
                .iter()
                .zip(&mut self.values)
                .map(|(s, g)| Sample::new(times[s.instance], g.next())),
        );
        self.round += 1;
        true
    }
}

/// Typical rule and dashboard queries over this dataset, shared by the PromQL
/// benches and the side-by-side comparison with Prometheus.
pub const RULE_QUERIES: &[(&str, &str)] = &[
    ("sum_rate", "sum by (job) (rate(http_requests_total[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    ("topk", "topk(10, rate(node_cpu_seconds_total[5m]))"),
    ("join_group_left", "rate(http_requests_total[5m]) * on(job, instance) group_left() up"),
    ("subquery", "max_over_time(sum by (instance) (rate(http_requests_total[5m]))[30m:1m])"),
    ("selector_wide", "node_memory_bytes_1 > 0"),
];

/// The time of the last scrape of a dataset loaded with `rounds` rounds.
pub fn last_scrape_ms(rounds: usize) -> i64 {
    START_MS + (rounds as i64 - 1) * INTERVAL_MS
}
