//! Running rule modules on wasmtime: the host's [`ModuleRuntime`].
//!
//! Guests run on a pool of their own, one thread per core, so a slow or
//! runaway module never occupies the async runtime or the blocking pool the
//! API and the scheduler use, and epoch deadlines measure the guest's own
//! time rather than time spent waiting for a core (WASM-NOTES.md saw 1.5–8%
//! false timeouts with unbounded guest threads).
//!
//! The evaluating thread (a rule group's) keeps the storage borrow: a
//! guest's host calls travel to it over a channel and the answer comes
//! back, so the engine's [`HostCalls`] answer them exactly as in the
//! browser, with no shared-state tricks.
//!
//! Each side of a hand-off looks for the other's message for a moment
//! ([`SPIN`]) before it sleeps: waking a sleeping thread costs more than a
//! trivial evaluation on the VMs tocsin runs on. `benches/wasm.rs` measures
//! an evaluation and its stages.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use wasmtime::{
    Caller, Extern, Instance, InstancePre, Linker, Memory, ResourceLimiter, Store, Trap, ValType,
};

use tocsin_abi::{ABI_VERSION, ErrorCode, export, import};
use tocsin_engine::rules::wasm::{HostCalls, ModuleRuntime};

use super::sandbox::{
    Deadline, EPOCH_TICK, FUEL_PER_MS, Interface, Sandbox, SandboxOptions, Signature, root_cause,
};

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;
const PTR_LEN: Signature = Signature { params: &[I32, I32], results: &[I32] };

/// The interface every rule module must have (ABI version 1).
pub const RULE_INTERFACE: Interface = Interface {
    exports: &[
        (export::ABI_VERSION, Signature { params: &[], results: &[I32] }),
        (export::ALLOC, Signature { params: &[I32], results: &[I32] }),
        (export::EVALUATE, Signature { params: &[I32, I32], results: &[I64] }),
    ],
    memories: &[export::MEMORY],
    imports: &[
        (import::MODULE, import::QUERY, PTR_LEN),
        (import::MODULE, import::QUERY_RANGE, PTR_LEN),
        (import::MODULE, import::SERIES, PTR_LEN),
        (import::MODULE, import::TAKE_REPLY, PTR_LEN),
        (import::MODULE, import::PANIC, Signature { params: &[I32, I32], results: &[] }),
    ],
};

/// Limits of one evaluation enforced by the runtime (output and query
/// budgets are the engine's, in `WasmLimits`).
#[derive(Clone, Debug)]
pub struct RunLimits {
    pub timeout: Duration,
    /// The engine-side budgets (outputs, host calls, query samples).
    pub engine: tocsin_engine::rules::wasm::WasmLimits,
    /// Largest request or message a guest may hand over in one call.
    pub max_message_bytes: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            timeout: Duration::from_secs(1),
            engine: tocsin_engine::rules::wasm::WasmLimits::default(),
            max_message_bytes: 16 << 20,
        }
    }
}

enum Call {
    Query(Vec<u8>),
    QueryRange(Vec<u8>),
    Series(Vec<u8>),
    TakeReply(usize),
    Panic(Vec<u8>),
}

/// The evaluating thread's answer to a call: a number for the guest (a
/// length or a negative error code), or the reply bytes `take_reply` copies.
enum Answer {
    Int(i32),
    Bytes(Vec<u8>),
}

enum Event {
    Call(Call, SyncSender<Answer>),
    Done(Result<Vec<u8>, String>),
}

/// What a guest's store holds: its memory limiter and the way to its host.
struct Guest {
    limiter: Limiter,
    events: Sender<Event>,
}

/// Store limits that remember a refused growth, so the error can say why.
struct Limiter {
    memory_bytes: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused = Some(desired);
            // A trap rather than a failed `memory.grow`: Rust's allocator
            // would turn that into an opaque `unreachable`.
            return Err(wasmtime::Error::msg("memory limit"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A compiled module ready to instantiate.
pub struct Loaded {
    pre: InstancePre<Guest>,
}

struct Job {
    loaded: Arc<Loaded>,
    request: Vec<u8>,
    events: Sender<Event>,
    limits: RunLimits,
}

/// Runs rule modules: the compiled modules by name, and the guest pool.
pub struct WasmHost {
    sandbox: Arc<Sandbox>,
    linker: Linker<Guest>,
    modules: RwLock<HashMap<String, Arc<Loaded>>>,
    jobs: Arc<Queue>,
    pub limits: RunLimits,
    health: Mutex<HashMap<String, Health>>,
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

/// Consecutive failures of a module, for quarantine.
#[derive(Default)]
struct Health {
    failures: u32,
    until: Option<Instant>,
    last_error: String,
}

/// A module failing this many evaluations in a row (traps, timeouts, memory)
/// is skipped for a while, doubling from [`QUARANTINE_BASE`] up to
/// [`QUARANTINE_MAX`], so a crash-looping module cannot eat the guest pool.
const QUARANTINE_AFTER: u32 = 3;
const QUARANTINE_BASE: Duration = Duration::from_secs(30);
const QUARANTINE_MAX: Duration = Duration::from_secs(600);

impl WasmHost {
    pub fn new(
        sandbox: Arc<Sandbox>,
        limits: RunLimits,
        threads: usize,
    ) -> Result<Arc<Self>, String> {
        let linker = linker(sandbox.engine()).map_err(|e| root_cause(&e))?;
        let jobs = Arc::new(Queue::default());
        for i in 0..threads.max(1) {
            let jobs = jobs.clone();
            let sandbox = sandbox.clone();
            std::thread::Builder::new()
                .name(format!("tocsin-wasm-{i}"))
                .spawn(move || worker(&sandbox, &jobs))
                .map_err(|e| format!("starting a wasm worker: {e}"))?;
        }
        Ok(Arc::new(WasmHost {
            sandbox,
            linker,
            modules: RwLock::new(HashMap::new()),
            jobs,
            limits,
            health: Mutex::new(HashMap::new()),
            metrics: std::sync::OnceLock::new(),
        }))
    }

    /// Reports evaluations in `/metrics`.
    pub fn set_metrics(&self, m: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(m);
    }

    /// Quarantine applies on wall-clock deadlines only: offline runs (tests,
    /// backtests) must give the same result whatever happened before.
    fn quarantines(&self) -> bool {
        self.sandbox.options().deadline == Deadline::Epochs
    }

    fn record(&self, name: &str, result: &Result<Vec<u8>, String>, took: Duration, calls: u32) {
        if let Some(m) = self.metrics.get() {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            let l = vec![
                ("module".to_owned(), name.to_owned()),
                ("result".to_owned(), outcome.to_owned()),
            ];
            m.wasm_evaluations.get_or_create(&l).inc();
            let l = vec![("module".to_owned(), name.to_owned())];
            m.wasm_duration.get_or_create(&l).observe(took.as_secs_f64());
            m.wasm_host_calls.get_or_create(&l).inc_by(u64::from(calls));
        }
        if !self.quarantines() {
            return;
        }
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) => {
                health.remove(name);
            }
            Err(e) => {
                let h = health.entry(name.to_owned()).or_default();
                h.failures += 1;
                h.last_error = e.clone();
                if h.failures >= QUARANTINE_AFTER {
                    let doublings = (h.failures - QUARANTINE_AFTER).min(8);
                    let wait = (QUARANTINE_BASE * 2u32.pow(doublings)).min(QUARANTINE_MAX);
                    h.until = Some(Instant::now() + wait);
                }
            }
        }
    }

    fn quarantined(&self, name: &str) -> Option<String> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let h = health.get(name)?;
        let left = h.until?.checked_duration_since(Instant::now())?;
        Some(format!(
            "module {name:?} is quarantined for {}s after {} failed evaluations in a row; last error: {}",
            left.as_secs() + 1,
            h.failures,
            h.last_error
        ))
    }

    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Checks a compiled module against the ABI and prepares it for fast
    /// instantiation.
    pub fn prepare(&self, module: &wasmtime::Module) -> Result<Loaded, Vec<String>> {
        let problems = super::sandbox::check_interface(module, &RULE_INTERFACE);
        if !problems.is_empty() {
            return Err(problems);
        }
        let pre = self.linker.instantiate_pre(module).map_err(|e| vec![root_cause(&e)])?;
        Ok(Loaded { pre })
    }

    /// Makes `loaded` available to rules as `wasm: NAME`.
    pub fn install(&self, name: &str, loaded: Loaded) {
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::new(loaded));
        // A new upload gets a fresh start.
        self.health.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
    }

    pub fn remove(&self, name: &str) {
        self.modules.write().unwrap_or_else(PoisonError::into_inner).remove(name);
        self.health.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
    }

    /// The module a rule names: an installed name, or a path to a `.wasm`
    /// file, compiled and checked on first use.
    fn lookup(&self, name: &str) -> Result<Arc<Loaded>, String> {
        if let Some(m) = self.modules.read().unwrap_or_else(PoisonError::into_inner).get(name) {
            return Ok(m.clone());
        }
        if !name.ends_with(".wasm") {
            return Err(format!("no module named {name:?} has been uploaded"));
        }
        let bytes = std::fs::read(Path::new(name)).map_err(|e| format!("reading {name}: {e}"))?;
        let (module, _) = self.sandbox.compile(&bytes).map_err(|e| format!("{name}: {e}"))?;
        let loaded = self
            .prepare(&module)
            .map_err(|p| format!("{name} is not a tocsin rule module: {}", p.join("; ")))?;
        let loaded = Arc::new(loaded);
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// A fresh instance of module `name` made on the calling thread, as a
    /// pool thread makes one for every evaluation, for the benchmark that
    /// times instantiation, the guest's call and the hand-off apart
    /// (`benches/wasm.rs`). Nothing answers its host calls: they fail with
    /// the call-limit code.
    pub fn instantiate_here(&self, name: &str) -> Result<FreshInstance<'_>, String> {
        let loaded = self.lookup(name)?;
        let (events, _) = channel();
        FreshInstance::new(&self.sandbox, &loaded, events, &self.limits)
    }

    /// Runs one evaluation; see [`ModuleRuntime::run`].
    pub fn run_module(
        &self,
        name: &str,
        request: &[u8],
        host: &mut HostCalls<'_>,
    ) -> Result<Vec<u8>, String> {
        if let Some(msg) = self.quarantined(name) {
            if let Some(m) = self.metrics.get() {
                let l = vec![
                    ("module".to_owned(), name.to_owned()),
                    ("result".to_owned(), "quarantined".to_owned()),
                ];
                m.wasm_evaluations.get_or_create(&l).inc();
            }
            return Err(msg);
        }
        let loaded = self.lookup(name)?;
        let started = Instant::now();
        let (events, rx) = channel();
        let job = Job { loaded, request: request.to_vec(), events, limits: self.limits.clone() };
        self.jobs.push(job);
        let result = serve_calls(&rx, host).map_err(|e| match host.panic_message() {
            Some(msg) => format!("module {name:?} panicked: {msg}"),
            None => format!("module {name:?}: {e}"),
        });
        self.record(name, &result, started.elapsed(), host.calls());
        result
    }
}

/// Answers the guest's calls until it is done.
fn serve_calls(rx: &Receiver<Event>, host: &mut HostCalls<'_>) -> Result<Vec<u8>, String> {
    loop {
        match receive(rx) {
            Ok(Event::Call(call, reply)) => {
                let answer = match call {
                    Call::Query(b) => Answer::Int(host.query(&b)),
                    Call::QueryRange(b) => Answer::Int(host.query_range(&b)),
                    Call::Series(b) => Answer::Int(host.series(&b)),
                    Call::TakeReply(len) => match host.take_reply(len) {
                        Ok(bytes) => Answer::Bytes(bytes),
                        Err(code) => Answer::Int(code),
                    },
                    Call::Panic(b) => {
                        host.panic(&b);
                        Answer::Int(0)
                    }
                };
                // The guest may have been stopped meanwhile; nothing to do then.
                let _ = reply.send(answer);
            }
            Ok(Event::Done(result)) => return result,
            Err(_) => return Err("the wasm worker stopped unexpectedly".into()),
        }
    }
}

impl ModuleRuntime for WasmHost {
    fn run(
        &self,
        module: &str,
        request: &[u8],
        host: &mut HostCalls<'_>,
    ) -> Result<Vec<u8>, String> {
        self.run_module(module, request, host)
    }

    fn limits(&self) -> tocsin_engine::rules::wasm::WasmLimits {
        self.limits.engine.clone()
    }
}

/// The guest pool's jobs. A `Mutex<Receiver>` shared by the workers made an
/// idle worker wake up and fight for the lock on every job; here workers
/// look for [`SPIN`] before they sleep, and are only woken when asleep.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    /// Jobs waiting, readable without the lock.
    waiting: AtomicUsize,
    /// A worker is looking for jobs.
    looking: AtomicBool,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    sleeping: usize,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, job: Job) {
        let mut state = self.lock();
        state.jobs.push_back(job);
        self.waiting.fetch_add(1, Ordering::Release);
        if state.sleeping > 0 {
            self.ready.notify_one();
        }
    }

    fn take(&self, state: &mut QueueState) -> Option<Job> {
        let job = state.jobs.pop_front()?;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Some(job)
    }

    /// The next job; `None` once the host is gone.
    fn pop(&self) -> Option<Job> {
        // One worker looks at a time: more only take cores from the guests
        // and the evaluating threads (measured: the lowest latency and the
        // best throughput with 1 and 2 evaluating threads).
        if !self.looking.swap(true, Ordering::Acquire) {
            let spun = spin(|| {
                if self.waiting.load(Ordering::Acquire) == 0 {
                    return None;
                }
                self.take(&mut self.lock())
            });
            self.looking.store(false, Ordering::Release);
            if spun.is_some() {
                return spun;
            }
        }
        let mut state = self.lock();
        loop {
            if let Some(job) = self.take(&mut state) {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state.sleeping += 1;
            state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.sleeping -= 1;
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

impl Drop for WasmHost {
    fn drop(&mut self) {
        self.jobs.close();
    }
}

fn worker(sandbox: &Sandbox, jobs: &Queue) {
    while let Some(job) = jobs.pop() {
        let events = job.events.clone();
        let result = evaluate(sandbox, job);
        let _ = events.send(Event::Done(result));
    }
}

fn memory(caller: &mut Caller<'_, Guest>) -> Option<Memory> {
    match caller.get_export(export::MEMORY) {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Copies `len` bytes at `ptr` out of the guest, bounds-checked.
fn read(caller: &mut Caller<'_, Guest>, ptr: i32, len: i32, max: usize) -> Result<Vec<u8>, i32> {
    let (Ok(ptr), Ok(len)) = (usize::try_from(ptr), usize::try_from(len)) else {
        return Err(ErrorCode::BadMessage as i32);
    };
    if len > max {
        return Err(ErrorCode::BadMessage as i32);
    }
    let mem = memory(caller).ok_or(ErrorCode::BadMessage as i32)?;
    let data = mem.data(&caller);
    data.get(ptr..ptr.checked_add(len).ok_or(ErrorCode::BadMessage as i32)?)
        .map(<[u8]>::to_vec)
        .ok_or(ErrorCode::BadMessage as i32)
}

/// Sends a call to the evaluating thread and waits for its answer.
fn ask(caller: &Caller<'_, Guest>, call: Call) -> Answer {
    let (tx, rx) = sync_channel(1);
    if caller.data().events.send(Event::Call(call, tx)).is_err() {
        return Answer::Int(ErrorCode::CallLimit as i32);
    }
    receive(&rx).unwrap_or(Answer::Int(ErrorCode::CallLimit as i32))
}

/// How long a thread waiting for the other side of the hand-off (a job, a
/// guest's call or result, an answer) keeps looking before it sleeps.
/// Waking a sleeping thread costs 20–50 µs of latency on this class of
/// VM (a thread ping-pong over channels measured 50 µs a round trip: an
/// idle vCPU halts, and waking it is the hypervisor's business), several
/// times a trivial evaluation. A thread looking yields between looks, so
/// it gives its core to any runnable thread, the guest's included.
const SPIN: Duration = Duration::from_micros(50);

/// `poll` until it gives something or [`SPIN`] has passed.
fn spin<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let begin = Instant::now();
    loop {
        if let Some(v) = poll() {
            return Some(v);
        }
        if begin.elapsed() >= SPIN {
            return None;
        }
        std::thread::yield_now();
    }
}

/// `rx.recv()`, looking for [`SPIN`] before sleeping.
fn receive<T>(rx: &Receiver<T>) -> Result<T, std::sync::mpsc::RecvError> {
    match spin(|| match rx.try_recv() {
        Ok(v) => Some(Ok(v)),
        Err(TryRecvError::Disconnected) => Some(Err(std::sync::mpsc::RecvError)),
        Err(TryRecvError::Empty) => None,
    }) {
        Some(r) => r,
        None => rx.recv(),
    }
}

const MAX_CALL_BYTES: usize = 1 << 20;

fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<Guest>> {
    let mut l = Linker::new(engine);
    type Make = fn(Vec<u8>) -> Call;
    let queries: [(&str, Make); 3] = [
        (import::QUERY, Call::Query),
        (import::QUERY_RANGE, Call::QueryRange),
        (import::SERIES, Call::Series),
    ];
    for (name, make) in queries {
        l.func_wrap(
            import::MODULE,
            name,
            move |mut c: Caller<'_, Guest>, ptr: i32, len: i32| -> i32 {
                match read(&mut c, ptr, len, MAX_CALL_BYTES) {
                    Ok(bytes) => match ask(&c, make(bytes)) {
                        Answer::Int(n) => n,
                        Answer::Bytes(_) => ErrorCode::BadMessage as i32,
                    },
                    Err(code) => code,
                }
            },
        )?;
    }
    l.func_wrap(
        import::MODULE,
        import::TAKE_REPLY,
        |mut c: Caller<'_, Guest>, ptr: i32, len: i32| -> i32 {
            let (Ok(p), Ok(n)) = (usize::try_from(ptr), usize::try_from(len)) else {
                return ErrorCode::NoReply as i32;
            };
            let reply = match ask(&c, Call::TakeReply(n)) {
                Answer::Bytes(r) => r,
                Answer::Int(code) => return code,
            };
            let Some(mem) = memory(&mut c) else { return ErrorCode::BadMessage as i32 };
            match mem.write(&mut c, p, &reply) {
                Ok(()) => len,
                Err(_) => ErrorCode::BadMessage as i32,
            }
        },
    )?;
    l.func_wrap(import::MODULE, import::PANIC, |mut c: Caller<'_, Guest>, ptr: i32, len: i32| {
        if let Ok(bytes) = read(&mut c, ptr, len.min(4096), 4096) {
            let _ = ask(&c, Call::Panic(bytes));
        }
    })?;
    Ok(l)
}

/// One evaluation in a fresh instance, on a pool thread.
fn evaluate(sandbox: &Sandbox, job: Job) -> Result<Vec<u8>, String> {
    FreshInstance::new(sandbox, &job.loaded, job.events, &job.limits)?.evaluate(&job.request)
}

/// A new instance of a module with its own store, deadline and memory
/// limit: what a pool thread makes for every evaluation, so that nothing a
/// guest leaves behind reaches the next one.
pub struct FreshInstance<'a> {
    store: Store<Guest>,
    instance: Instance,
    opts: &'a SandboxOptions,
    limits: &'a RunLimits,
    started: Instant,
}

impl<'a> FreshInstance<'a> {
    fn new(
        sandbox: &'a Sandbox,
        loaded: &Loaded,
        events: Sender<Event>,
        limits: &'a RunLimits,
    ) -> Result<Self, String> {
        let opts = sandbox.options();
        let guest =
            Guest { limiter: Limiter { memory_bytes: opts.memory_bytes, refused: None }, events };
        let mut store = Store::new(sandbox.engine(), guest);
        store.limiter(|g| &mut g.limiter);
        match opts.deadline {
            Deadline::Epochs => {
                let ticks = (limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
                store.set_epoch_deadline(ticks);
                store.epoch_deadline_trap();
            }
            Deadline::Fuel => {
                let fuel = limits.timeout.as_millis() as u64 * FUEL_PER_MS;
                store.set_fuel(fuel).map_err(|e| root_cause(&e))?;
            }
        }
        let started = Instant::now();
        match loaded.pre.instantiate(&mut store) {
            Ok(instance) => Ok(FreshInstance { store, instance, opts, limits, started }),
            Err(e) => Err(explain(&store, opts, limits, started, e)),
        }
    }

    /// Checks the ABI version, copies `request` into the guest, calls
    /// `tocsin_evaluate` and copies the response out.
    pub fn evaluate(mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        let instance = self.instance;
        let store = &mut self.store;
        let (opts, limits, started) = (self.opts, self.limits, self.started);
        let fail = |store: &Store<Guest>, e| explain(store, opts, limits, started, e);
        let version = instance
            .get_typed_func::<(), i32>(&mut *store, export::ABI_VERSION)
            .and_then(|f| f.call(&mut *store, ()))
            .map_err(|e| fail(store, e))?;
        if version != ABI_VERSION as i32 {
            return Err(format!(
                "was built for ABI version {version}; this host speaks version {ABI_VERSION}"
            ));
        }
        let len = i32::try_from(request.len()).map_err(|_| "request too large".to_owned())?;
        let ptr = instance
            .get_typed_func::<i32, i32>(&mut *store, export::ALLOC)
            .and_then(|f| f.call(&mut *store, len))
            .map_err(|e| fail(store, e))?;
        if ptr <= 0 {
            return Err("could not allocate its request buffer".into());
        }
        let mem = instance
            .get_memory(&mut *store, export::MEMORY)
            .ok_or_else(|| "has no memory export".to_owned())?;
        mem.write(&mut *store, ptr as usize, request)
            .map_err(|_| "returned a request buffer outside its memory".to_owned())?;
        let packed = instance
            .get_typed_func::<(i32, i32), i64>(&mut *store, export::EVALUATE)
            .and_then(|f| f.call(&mut *store, (ptr, len)))
            .map_err(|e| fail(store, e))?;
        if packed < 0 {
            return Err(format!("refused the evaluation with error code {packed}"));
        }
        let (rptr, rlen) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
        if rlen > limits.max_message_bytes {
            return Err(format!(
                "returned {rlen} bytes, more than the limit of {}",
                limits.max_message_bytes
            ));
        }
        mem.data(&*store)
            .get(rptr..rptr + rlen)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "returned a response outside its memory".to_owned())
    }
}

/// Why a guest stopped, in words for the rule's error.
fn explain(
    store: &Store<Guest>,
    opts: &SandboxOptions,
    limits: &RunLimits,
    started: Instant,
    e: wasmtime::Error,
) -> String {
    if let Some(bytes) = store.data().limiter.refused {
        return format!(
            "exceeded its memory limit of {} MiB (tried to grow to {} MiB)",
            opts.memory_bytes >> 20,
            bytes >> 20
        );
    }
    let timeout = limits.timeout;
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "exceeded its time limit of {timeout:?} (stopped after {:?})",
            started.elapsed()
        ),
        Some(Trap::OutOfFuel) => {
            format!("exceeded its instruction budget (time limit {timeout:?})")
        }
        Some(Trap::StackOverflow) => "overflowed its stack".into(),
        Some(trap) => format!("trapped: {trap}"),
        None => root_cause(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_abi::{EvalResponse, Message, OutSample, QueryRequest};
    use tocsin_engine::Labels;
    use tocsin_engine::promql::Engine;
    use tocsin_engine::rules::wasm::{WasmLimits, evaluate as engine_evaluate};
    use tocsin_engine::storage::Head;

    fn wat_bytes(b: &[u8]) -> String {
        b.iter().map(|x| format!("\\{x:02x}")).collect()
    }

    /// A rule module in WAT: a bump allocator from 64 KiB, and `body` as
    /// `tocsin_evaluate` (locals: $p $n $r). The data at 1024 is `response`.
    fn module(version: i32, body: &str, response: &[u8], extra: &str) -> String {
        format!(
            r#"(module
              (import "tocsin_v1" "query" (func $query (param i32 i32) (result i32)))
              (import "tocsin_v1" "take_reply" (func $take_reply (param i32 i32) (result i32)))
              (import "tocsin_v1" "panic" (func $panic (param i32 i32)))
              (memory (export "memory") 2)
              (global $next (mut i32) (i32.const 65536))
              (data (i32.const 1024) "{resp}")
              {extra}
              (func (export "tocsin_abi_version") (result i32) i32.const {version})
              (func (export "tocsin_alloc") (param $n i32) (result i32)
                (local $p i32)
                global.get $next
                local.set $p
                global.get $next
                local.get $n
                i32.add
                global.set $next
                local.get $p)
              (func (export "tocsin_evaluate") (param $p i32) (param $n i32) (result i64)
                (local $r i32)
                {body}))"#,
            resp = wat_bytes(response),
        )
    }

    /// Returns the data at 1024 as the response.
    fn answer(len: usize) -> String {
        format!("i64.const 1024 i64.const 32 i64.shl i64.const {len} i64.or")
    }

    fn response() -> Vec<u8> {
        EvalResponse {
            samples: vec![OutSample {
                labels: vec![("__name__".into(), "out".into())],
                value: 42.0,
                annotations: vec![],
            }],
            state: Some(b"s1".to_vec()),
            ..Default::default()
        }
        .encode()
    }

    fn host(deadline: Deadline) -> Arc<WasmHost> {
        let sandbox = Sandbox::new(SandboxOptions {
            deadline,
            memory_bytes: 4 << 20,
            max_instances: 8,
            ..Default::default()
        })
        .unwrap();
        let limits = RunLimits { timeout: Duration::from_millis(200), ..Default::default() };
        WasmHost::new(sandbox, limits, 2).unwrap()
    }

    fn install(h: &WasmHost, name: &str, wat: &str) -> Result<(), String> {
        let (m, _) = h.sandbox().compile(wat.as_bytes())?;
        let loaded = h.prepare(&m).map_err(|p| p.join("; "))?;
        h.install(name, loaded);
        Ok(())
    }

    fn run(h: &WasmHost, name: &str) -> (Result<Vec<u8>, String>, u32) {
        let head = Head::default();
        head.append_labels(&Labels::from_pairs(&[("__name__", "x")]), 0, 1.0).unwrap();
        let engine = Engine::default();
        let limits = WasmLimits::default();
        let mut calls = HostCalls::new(&engine, &head, &limits);
        let r = h.run_module(name, b"request", &mut calls);
        (r, calls.calls())
    }

    #[test]
    fn a_module_evaluates_through_the_engine() {
        let h = host(Deadline::Epochs);
        let resp = response();
        install(&h, "ok", &module(1, &answer(resp.len()), &resp, "")).unwrap();
        let head = Head::default();
        let engine = Engine::default();
        let mut state = Vec::new();
        let out = engine_evaluate(
            &*h,
            "ok",
            None,
            1000,
            60_000,
            &mut state,
            &engine,
            &head,
            &WasmLimits::default(),
        )
        .unwrap();
        assert_eq!(out.samples[0].sample.v, 42.0);
        assert_eq!(state, b"s1");
    }

    #[test]
    fn host_calls_reach_the_evaluating_thread() {
        let h = host(Deadline::Epochs);
        let q = QueryRequest { ts_ms: 0, expr: "x".into() }.encode();
        let resp = response();
        // Query, take the reply into a fresh buffer, then answer.
        let body = format!(
            "i32.const 2048 i32.const {ql} call $query local.set $r
             local.get $r i32.const 0 i32.le_s if i64.const -7 return end
             i32.const 8192 local.get $r call $take_reply local.get $r i32.ne
             if i64.const -8 return end
             {ans}",
            ql = q.len(),
            ans = answer(resp.len())
        );
        let extra = format!("(data (i32.const 2048) \"{}\")", wat_bytes(&q));
        install(&h, "q", &module(1, &body, &resp, &extra)).unwrap();
        let (r, calls) = run(&h, "q");
        assert_eq!(r.unwrap(), resp);
        assert_eq!(calls, 1);
    }

    #[test]
    fn hostile_modules_become_clear_errors() {
        for deadline in [Deadline::Epochs, Deadline::Fuel] {
            let h = host(deadline);
            install(&h, "loop", &module(1, "(loop $l (br $l)) i64.const 0", &[], "")).unwrap();
            let (r, _) = run(&h, "loop");
            let e = r.unwrap_err();
            assert!(
                e.contains("time limit") || e.contains("instruction budget"),
                "{deadline:?}: {e}"
            );
        }
        let h = host(Deadline::Epochs);
        install(
            &h,
            "bomb",
            &module(1, "(loop $l i32.const 16 memory.grow drop br $l) i64.const 0", &[], ""),
        )
        .unwrap();
        let e = run(&h, "bomb").0.unwrap_err();
        assert!(e.contains("memory limit of 4 MiB"), "{e}");

        install(&h, "v2", &module(2, "i64.const 0", &[], "")).unwrap();
        assert!(run(&h, "v2").0.unwrap_err().contains("ABI version 2"));

        install(&h, "huge", &module(1, "i64.const 0xffffffff", &[], "")).unwrap();
        assert!(run(&h, "huge").0.unwrap_err().contains("more than the limit"));

        install(&h, "outside", &module(1, "i64.const 0x7fff000000000010", &[], "")).unwrap();
        assert!(run(&h, "outside").0.unwrap_err().contains("outside its memory"));

        let msg = b"boom at rule.rs:3";
        let body = format!("i32.const 1024 i32.const {} call $panic unreachable", msg.len());
        install(&h, "panics", &module(1, &body, msg, "")).unwrap();
        let e = run(&h, "panics").0.unwrap_err();
        assert_eq!(e, "module \"panics\" panicked: boom at rule.rs:3");

        // The host keeps working after all of that.
        let resp = response();
        install(&h, "ok", &module(1, &answer(resp.len()), &resp, "")).unwrap();
        assert_eq!(run(&h, "ok").0.unwrap(), resp);
    }

    #[test]
    fn a_crash_looping_module_is_quarantined() {
        let h = host(Deadline::Epochs);
        install(&h, "crash", &module(1, "unreachable", &[], "")).unwrap();
        for _ in 0..QUARANTINE_AFTER {
            assert!(run(&h, "crash").0.unwrap_err().contains("trapped"));
        }
        let e = run(&h, "crash").0.unwrap_err();
        assert!(e.contains("quarantined for 30s after 3 failed evaluations"), "{e}");
        // Re-uploading clears it.
        install(&h, "crash", &module(1, "unreachable", &[], "")).unwrap();
        assert!(run(&h, "crash").0.unwrap_err().contains("trapped"));
        // Offline runs are never quarantined.
        let f = host(Deadline::Fuel);
        install(&f, "crash", &module(1, "unreachable", &[], "")).unwrap();
        for _ in 0..5 {
            assert!(run(&f, "crash").0.unwrap_err().contains("trapped"));
        }
    }

    #[test]
    fn modules_outside_the_abi_are_refused() {
        let h = host(Deadline::Epochs);
        let e = install(
            &h,
            "wasi",
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#,
        )
        .unwrap_err();
        assert!(e.contains("not WASI"), "{e}");
        assert!(e.contains("tocsin_evaluate"), "{e}");
        assert!(run(&h, "missing").0.unwrap_err().contains("no module named \"missing\""));
    }

    /// The SDK's hysteresis example, compiled to wasm32 and run by wasmtime
    /// inside a rule group: state kept between evaluations in the module,
    /// alerts through the same state machine as PromQL rules.
    #[test]
    fn the_sdk_hysteresis_example_drives_an_alert() {
        use tocsin_engine::rules::{AlertState, EvalEnv, Group, ParseOptions, parse_rule_file};
        let wasm = tocsin_tests::build_example_rules().join("hysteresis.wasm");
        let h = host(Deadline::Fuel);
        let (m, _) = h.sandbox().compile(&std::fs::read(&wasm).unwrap()).unwrap();
        h.install("hysteresis", h.prepare(&m).unwrap());
        let rules = r#"
groups:
  - name: queues
    interval: 1m
    rules:
      - alert: QueueBacklog
        wasm: hysteresis
        config: {metric: "queue_depth", high: 100, low: 20}
        for: 2m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.queue }} backlog {{ $value }}"}
"#;
        let f = parse_rule_file("r.yml", rules, ParseOptions::default()).unwrap();
        let mut g = Group::new("r.yml", &f.groups[0], 60_000, 0);
        let head = Head::default();
        let engine = Engine::default();
        let ext = Labels::empty();
        let depth = [50.0, 150.0, 90.0, 60.0, 30.0, 10.0, 50.0];
        let mut states = Vec::new();
        for (i, v) in depth.iter().enumerate() {
            let ts = i as i64 * 60_000;
            let l = Labels::from_pairs(&[("__name__", "queue_depth"), ("queue", "a")]);
            head.append_labels(&l, ts, *v).unwrap();
            let mut env = EvalEnv {
                engine: &engine,
                head: &head,
                external_labels: &ext,
                external_url: "",
                resend_delay_ms: 60_000,
                wasm: Some(&*h),
                clock_ns: None,
            };
            g.eval(ts, &mut env);
            let rule = &g.rules[0];
            assert_eq!(rule.last_error, None, "at {i}");
            let a = rule.alerts.active.values().next().filter(|a| a.resolved_at.is_none());
            states.push(a.map(|a| a.state));
            if let Some(a) = a {
                assert_eq!(a.annotations, vec![("summary".into(), format!("a backlog {v}"))]);
            }
        }
        use AlertState::{Firing, Pending};
        // Above 100 at 1; stays active while above 20 (hysteresis), fires after
        // 2m, clears at 10.
        assert_eq!(
            states,
            vec![None, Some(Pending), Some(Pending), Some(Firing), Some(Firing), None, None]
        );
    }

    /// `cargo test -p tocsin-host --release --lib measure_evaluation -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_evaluation() {
        let wasm = tocsin_tests::build_example_rules().join("hysteresis.wasm");
        for deadline in [Deadline::Epochs, Deadline::Fuel] {
            let h = host(deadline);
            let (m, _) = h.sandbox().compile(&std::fs::read(&wasm).unwrap()).unwrap();
            h.install("hysteresis", h.prepare(&m).unwrap());
            let head = Head::default();
            for i in 0..100 {
                let l =
                    Labels::from_pairs(&[("__name__", "queue_depth"), ("queue", &i.to_string())]);
                head.append_labels(&l, 0, f64::from(i) * 3.0).unwrap();
            }
            let engine = Engine::default();
            let cfg = tocsin_engine::yaml::parse("{metric: queue_depth, high: 100, low: 20}")
                .unwrap()
                .root;
            let mut state = Vec::new();
            let n = 2000;
            let t = Instant::now();
            for _ in 0..n {
                engine_evaluate(
                    &*h,
                    "hysteresis",
                    cfg.as_ref(),
                    0,
                    60_000,
                    &mut state,
                    &engine,
                    &head,
                    &WasmLimits::default(),
                )
                .unwrap();
            }
            println!("{deadline:?}: {:?} per evaluation (100 series queried)", t.elapsed() / n);
        }
    }
}
