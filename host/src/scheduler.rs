//! The rule scheduler: one task per rule group, evaluating it at its slot
//! every interval (Prometheus's `EvalTimestamp`), writing results to the head
//! and handing alerts to the notifier. Reloads carry alert state over; the
//! first evaluation after a restart restores `for` state from storage.
//!
//! Evaluations run on the blocking pool: PromQL is CPU work and must never
//! stall the HTTP API or the scrapers on the async workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use tocsin_engine::Labels;
use tocsin_engine::promql::Engine;
use tocsin_engine::rules::backtest::{OutgoingAlert, outgoing};
use tocsin_engine::rules::{Alert, EvalEnv, Group, RuleExpr, RuleHealth};
use tocsin_engine::storage::Head;

use crate::metrics::Metrics;
use crate::wal::Wal;

/// Prometheus's `--rules.alert.for-outage-tolerance` and `--rules.alert.for-grace-period`.
const FOR_OUTAGE_TOLERANCE_MS: i64 = 60 * 60 * 1000;
const FOR_GRACE_PERIOD_MS: i64 = 10 * 60 * 1000;

/// Where alerts go after an evaluation (the notifier, in the service).
pub type AlertSink = Arc<dyn Fn(&Group, usize, Vec<OutgoingAlert>) + Send + Sync>;

/// What every group's evaluation shares; replaced as a whole on reload.
#[derive(Clone)]
pub struct EvalSettings {
    pub engine: Arc<Engine>,
    pub external_labels: Labels,
    pub external_url: String,
    pub resend_delay_ms: i64,
    /// Runs `wasm:` rules.
    pub wasm: Option<Arc<crate::wasm::runner::WasmHost>>,
}

/// One rule as the rules and alerts APIs show it, captured after each evaluation.
#[derive(Clone, Debug)]
pub struct RuleSnapshot {
    pub name: String,
    pub alerting: bool,
    pub query: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub health: RuleHealth,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration_ns: u64,
    pub alerts: Vec<Alert>,
}

#[derive(Clone, Debug)]
pub struct GroupSnapshot {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub limit: usize,
    pub rules: Vec<RuleSnapshot>,
    pub last_eval_wall_ms: Option<i64>,
    pub eval_duration: Duration,
}

impl GroupSnapshot {
    fn of(g: &Group, last_eval_wall_ms: Option<i64>, eval_duration: Duration) -> Self {
        use tocsin_engine::rules::RuleKind;
        GroupSnapshot {
            name: g.name.clone(),
            file: g.file.clone(),
            interval_ms: g.interval_ms,
            limit: g.limit,
            last_eval_wall_ms,
            eval_duration,
            rules: g
                .rules
                .iter()
                .map(|r| {
                    let (for_ms, keep_firing_for_ms, annotations) = match &r.spec.kind {
                        RuleKind::Alert { for_ms, keep_firing_for_ms, annotations } => {
                            (*for_ms, *keep_firing_for_ms, annotations.clone())
                        }
                        RuleKind::Record => (0, 0, Vec::new()),
                    };
                    RuleSnapshot {
                        name: r.spec.name.clone(),
                        alerting: r.spec.is_alert(),
                        query: r.spec.expr.display(),
                        for_ms,
                        keep_firing_for_ms,
                        labels: r.spec.labels.clone(),
                        annotations,
                        health: r.health,
                        last_error: r.last_error.clone(),
                        last_eval_ms: r.last_eval_ms,
                        eval_duration_ns: r.eval_duration_ns,
                        alerts: r.alerts.active.values().cloned().collect(),
                    }
                })
                .collect(),
        }
    }
}

struct GroupTask {
    group: Arc<Mutex<Group>>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

pub struct Scheduler {
    head: Arc<Head>,
    metrics: Arc<Metrics>,
    sink: AlertSink,
    settings: Arc<RwLock<EvalSettings>>,
    tasks: tokio::sync::Mutex<Vec<GroupTask>>,
    snapshots: RwLock<Vec<Arc<RwLock<GroupSnapshot>>>>,
    /// Set until the first load: only then is `for` state restored.
    restore_pending: AtomicBool,
    states: Option<Arc<Wal>>,
}

fn now_ms() -> i64 {
    crate::server::wall_clock_ms()
}

impl Scheduler {
    pub fn new(
        head: Arc<Head>,
        metrics: Arc<Metrics>,
        sink: AlertSink,
        settings: EvalSettings,
        states: Option<Arc<Wal>>,
    ) -> Arc<Self> {
        Arc::new(Scheduler {
            head,
            metrics,
            sink,
            settings: Arc::new(RwLock::new(settings)),
            tasks: tokio::sync::Mutex::new(Vec::new()),
            snapshots: RwLock::new(Vec::new()),
            restore_pending: AtomicBool::new(true),
            states,
        })
    }

    /// Replaces the running groups with `groups`: each old group is stopped
    /// (its running evaluation finishes first) and the new group of the same
    /// file and name takes over its alert state.
    pub async fn apply(&self, groups: Vec<Group>, settings: EvalSettings) {
        *self.settings.write().unwrap_or_else(PoisonError::into_inner) = settings;
        let mut tasks = self.tasks.lock().await;
        let mut old: HashMap<(String, String), Arc<Mutex<Group>>> = HashMap::new();
        for t in tasks.drain(..) {
            let _ = t.stop.send(true);
            let _ = t.handle.await;
            let key = {
                let g = t.group.lock().unwrap_or_else(PoisonError::into_inner);
                (g.file.clone(), g.name.clone())
            };
            old.insert(key, t.group);
        }
        let restore = self.restore_pending.swap(false, Ordering::SeqCst);
        let mut snapshots = Vec::new();
        for mut g in groups {
            if let Some(o) = old.get(&(g.file.clone(), g.name.clone())) {
                g.copy_state_from(&o.lock().unwrap_or_else(PoisonError::into_inner));
            }
            let snapshot = Arc::new(RwLock::new(GroupSnapshot::of(&g, None, Duration::ZERO)));
            let group = Arc::new(Mutex::new(g));
            let (stop, stop_rx) = watch::channel(false);
            let ctx = TaskCtx {
                group: group.clone(),
                snapshot: snapshot.clone(),
                head: self.head.clone(),
                metrics: self.metrics.clone(),
                sink: self.sink.clone(),
                settings: self.settings.clone(),
                states: self.states.clone(),
                persisted: Mutex::new(HashMap::new()),
            };
            let handle = tokio::spawn(ctx.run(stop_rx, restore));
            snapshots.push(snapshot);
            tasks.push(GroupTask { group, stop, handle });
        }
        *self.snapshots.write().unwrap_or_else(PoisonError::into_inner) = snapshots;
    }

    /// Stops every group after its running evaluation.
    pub async fn stop(&self) {
        let mut tasks = self.tasks.lock().await;
        for t in tasks.drain(..) {
            let _ = t.stop.send(true);
            let _ = t.handle.await;
        }
    }

    pub fn snapshots(&self) -> Vec<GroupSnapshot> {
        self.snapshots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }
}

struct TaskCtx {
    group: Arc<Mutex<Group>>,
    snapshot: Arc<RwLock<GroupSnapshot>>,
    head: Arc<Head>,
    metrics: Arc<Metrics>,
    sink: AlertSink,
    settings: Arc<RwLock<EvalSettings>>,
    /// Where `wasm:` rules' state survives restarts.
    states: Option<Arc<Wal>>,
    /// Hash of each rule's last persisted state, to write only changes.
    persisted: Mutex<HashMap<usize, u64>>,
}

/// The name a `wasm:` rule's state is stored under: stable across restarts
/// and reloads for the same file, group and rule.
fn state_key(g: &Group, index: usize) -> String {
    let name = g.rules.get(index).map_or("", |r| r.spec.name.as_str());
    let id = Labels::from_pairs(&[
        ("file", g.file.as_str()),
        ("group", g.name.as_str()),
        ("index", &index.to_string()),
        ("rule", name),
    ]);
    format!("wasm-rule-{:016x}", id.stable_hash())
}

fn bytes_hash(b: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

impl TaskCtx {
    fn restore_module_states(&self, g: &mut Group) {
        let Some(store) = &self.states else { return };
        let mut persisted = self.persisted.lock().unwrap_or_else(PoisonError::into_inner);
        for i in 0..g.rules.len() {
            if !matches!(g.rules[i].spec.expr, RuleExpr::Wasm { .. }) {
                continue;
            }
            match store.read_state(&state_key(g, i)) {
                Ok(Some(bytes)) => {
                    persisted.insert(i, bytes_hash(&bytes));
                    g.rules[i].wasm_state = bytes;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("reading the state of rule {:?}: {e}", g.rules[i].spec.name)
                }
            }
        }
    }

    /// Writes the state of `wasm:` rules whose state changed.
    fn persist_module_states(&self, g: &Group) {
        let Some(store) = &self.states else { return };
        let mut persisted = self.persisted.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, r) in g.rules.iter().enumerate() {
            if !matches!(r.spec.expr, RuleExpr::Wasm { .. }) {
                continue;
            }
            let h = bytes_hash(&r.wasm_state);
            if persisted.get(&i) == Some(&h)
                || (r.wasm_state.is_empty() && !persisted.contains_key(&i))
            {
                continue;
            }
            match store.write_state(&state_key(g, i), &r.wasm_state) {
                Ok(()) => {
                    persisted.insert(i, h);
                }
                Err(e) => tracing::error!("saving the state of rule {:?}: {e}", r.spec.name),
            }
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>, restore: bool) {
        let (name, interval) = {
            let g = self.group.lock().unwrap_or_else(PoisonError::into_inner);
            (g.name.clone(), g.interval_ms.max(1))
        };
        let labels = Metrics::group(&name);
        let ctx = Arc::new(self);
        // The first slot after now, as Prometheus starts a group.
        let mut next = {
            let g = ctx.group.lock().unwrap_or_else(PoisonError::into_inner);
            g.eval_timestamp(now_ms()) + interval
        };
        let mut restore = restore;
        loop {
            let wait = (next - now_ms()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            // Slots that passed while the previous evaluation ran (or the
            // process was starved) are skipped, and counted.
            let late = now_ms() - next;
            if late >= interval {
                let missed = late / interval;
                ctx.metrics.rule_group_missed.get_or_create(&labels).inc_by(missed as u64);
                next += missed * interval;
            }
            let ts = next;
            let c = ctx.clone();
            let do_restore = std::mem::take(&mut restore);
            let took = tokio::task::spawn_blocking(move || c.eval(ts, do_restore)).await;
            if let Ok(took) = took {
                ctx.metrics.rule_group_iterations.get_or_create(&labels).inc();
                ctx.metrics.rule_group_duration.get_or_create(&labels).observe(took.as_secs_f64());
                ctx.metrics.rule_group_last_duration.get_or_create(&labels).set(took.as_secs_f64());
            }
            next += interval;
        }
    }

    fn eval(&self, ts: i64, restore: bool) -> Duration {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut g = self.group.lock().unwrap_or_else(PoisonError::into_inner);
        if restore {
            g.restore_for_state(&self.head, ts, FOR_OUTAGE_TOLERANCE_MS, FOR_GRACE_PERIOD_MS);
            self.restore_module_states(&mut g);
        }
        let started = Instant::now();
        let clock = move || started.elapsed().as_nanos() as u64;
        let mut env = EvalEnv {
            engine: &settings.engine,
            head: &self.head,
            external_labels: &settings.external_labels,
            external_url: &settings.external_url,
            resend_delay_ms: settings.resend_delay_ms,
            wasm: settings
                .wasm
                .as_deref()
                .map(|h| h as &dyn tocsin_engine::rules::wasm::ModuleRuntime),
            clock_ns: Some(&clock),
        };
        let notifications = g.eval(ts, &mut env);
        let took = started.elapsed();
        let failures = g.rules.iter().filter(|r| r.health == RuleHealth::Err).count();
        if failures > 0 {
            self.metrics
                .rule_failures
                .get_or_create(&Metrics::group(&g.name))
                .inc_by(failures as u64);
        }
        for n in notifications {
            let alerts = n.alerts.iter().map(|a| outgoing(a, &settings.external_labels)).collect();
            (self.sink)(&g, n.rule_index, alerts);
        }
        self.persist_module_states(&g);
        let snap = GroupSnapshot::of(&g, Some(now_ms()), took);
        drop(g);
        *self.snapshot.write().unwrap_or_else(PoisonError::into_inner) = snap;
        took
    }
}
