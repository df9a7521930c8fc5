//! The wasmtime side of the sandbox: one engine configured for untrusted
//! guests (pooling allocator, bounded memory and stack, epoch deadlines or
//! fuel), compilation with an on-disk cache of precompiled artifacts, and the
//! check that a module's imports and exports are exactly what the host expects.
//!
//! Numbers behind the choices are in ../shared/WASM-NOTES.md: compiling costs
//! 25–160 ms and deserializing a precompiled artifact ~50 µs, instantiation
//! with the pooling allocator ~4 µs, a new store starts with epoch deadline 0
//! and fuel 0 (both must be set before the first call), and a memory cap
//! needs `trap_on_grow_failure` to trap with a clear reason.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, ExternType, FuncType, InstanceAllocationStrategy, Module,
    PoolingAllocationConfig, ValType,
};

/// How evaluations are bounded in CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Wall clock, checked by epoch interruption: what the service uses.
    Epochs,
    /// A fixed instruction budget: deterministic, for tests and backtests,
    /// where the same module over the same data must stop at the same point.
    Fuel,
}

#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub deadline: Deadline,
    /// Linear memory one guest may grow to.
    pub memory_bytes: usize,
    /// Instances that may exist at once (the pool's size).
    pub max_instances: u32,
    /// The wasm stack: deep recursion traps instead of crashing the host.
    pub stack_bytes: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            deadline: Deadline::Epochs,
            memory_bytes: 64 << 20,
            max_instances: 64,
            stack_bytes: 512 << 10,
        }
    }
}

/// How often the epoch advances: the granularity of wall-clock deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Fuel per millisecond of allowed time in [`Deadline::Fuel`] mode: a rough
/// instructions-per-ms figure so one timeout setting means about the same
/// in both modes.
pub const FUEL_PER_MS: u64 = 1_000_000;

pub struct Sandbox {
    engine: Engine,
    opts: SandboxOptions,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Sandbox {
    pub fn new(opts: SandboxOptions) -> Result<Arc<Sandbox>, String> {
        let mut cfg = Config::new();
        match opts.deadline {
            Deadline::Epochs => cfg.epoch_interruption(true),
            Deadline::Fuel => cfg.consume_fuel(true),
        };
        cfg.max_wasm_stack(opts.stack_bytes);
        // Rules are compiled once at upload: spend the time for fast code.
        cfg.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(opts.max_instances)
            .total_memories(opts.max_instances)
            .total_tables(opts.max_instances)
            .max_memories_per_module(1)
            .max_memory_size(opts.memory_bytes)
            // A used table is zeroed with memset, not returned with madvise
            // (a Rust guest's table is a page or less).
            .table_keep_resident(64 << 10);
        // Every evaluation is a fresh instance in a reused slot. By default
        // the slot's memory goes back with madvise, so the next instance
        // page-faults on every page it touches and each reset shoots down
        // TLBs. With PAGEMAP_SCAN (Linux 6.7+) only the pages the guest
        // dirtied are copied back from the image, up to 1 MiB of them, and
        // stay mapped: a minimal module's instantiate + evaluate went from
        // 13.2 to 6.3 µs (benches/wasm.rs). Without the ioctl, keeping memory
        // resident would memset the whole first MiB on every reset instead.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.linear_memory_keep_resident(1 << 20).pagemap_scan(Enabled::Yes);
        }
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Reserve only what a guest may use (plus guards), not 4 GiB per slot.
        cfg.memory_reservation((opts.memory_bytes as u64).next_power_of_two());
        cfg.memory_guard_size(64 << 10);
        let engine = Engine::new(&cfg).map_err(|e| format!("configuring wasmtime: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        if opts.deadline == Deadline::Epochs {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tocsin-wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| format!("starting the epoch thread: {e}"))?;
        }
        Ok(Arc::new(Sandbox { engine, opts, stop_ticker: stop }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn options(&self) -> &SandboxOptions {
        &self.opts
    }

    /// Identifies the compiler and its settings: precompiled artifacts are
    /// only loaded by an engine with the same key.
    pub fn compatibility_key(&self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }

    /// Validates and compiles `wasm` (any error is the user's: bad bytes,
    /// unsupported features).
    pub fn compile(&self, wasm: &[u8]) -> Result<(Module, Vec<u8>), String> {
        let artifact = self
            .engine
            .precompile_module(wasm)
            .map_err(|e| format!("not a valid WebAssembly module: {}", root_cause(&e)))?;
        // SAFETY: the bytes were produced by this engine a moment ago.
        let module = unsafe { Module::deserialize(&self.engine, &artifact) }
            .map_err(|e| format!("loading the compiled module: {e}"))?;
        Ok((module, artifact))
    }

    /// Loads an artifact [`Sandbox::compile`] wrote to the host's own data
    /// directory. Never call this on bytes from anywhere else: wasmtime
    /// trusts precompiled code completely.
    pub fn load_own_artifact(&self, path: &Path) -> Result<Module, String> {
        // SAFETY: only files the host itself wrote, under a name that
        // carries this engine's compatibility key, reach here.
        unsafe { Module::deserialize_file(&self.engine, path) }
            .map_err(|e| format!("loading {}: {e}", path.display()))
    }
}

/// The outermost message of a wasmtime error and its causes, one line.
pub fn root_cause(e: &wasmtime::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        out.push_str(": ");
        out.push_str(&cause.to_string());
    }
    out
}

/// A function signature in the ABI: parameter and result types.
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    pub params: &'static [ValType],
    pub results: &'static [ValType],
}

/// What a rule module must export and may import.
#[derive(Clone, Copy, Debug)]
pub struct Interface {
    /// Exported functions the host calls, all required.
    pub exports: &'static [(&'static str, Signature)],
    /// Exported memories, all required.
    pub memories: &'static [&'static str],
    /// The only imports allowed: (module, name, signature).
    pub imports: &'static [(&'static str, &'static str, Signature)],
}

fn same(ty: &FuncType, sig: &Signature) -> bool {
    let eq = |a: &ValType, b: &ValType| ValType::eq(a, b);
    ty.params().len() == sig.params.len()
        && ty.results().len() == sig.results.len()
        && ty.params().zip(sig.params).all(|(a, b)| eq(&a, b))
        && ty.results().zip(sig.results).all(|(a, b)| eq(&a, b))
}

fn show(ty: &FuncType) -> String {
    let list = |it: &mut dyn Iterator<Item = ValType>| {
        it.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!("({}) -> ({})", list(&mut ty.params()), list(&mut ty.results()))
}

fn show_sig(sig: &Signature) -> String {
    let list = |ts: &[ValType]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(sig.params), list(sig.results))
}

/// Every way `module` departs from `iface`, as messages for the uploader.
pub fn check_interface(module: &Module, iface: &Interface) -> Vec<String> {
    let mut problems = Vec::new();
    for imp in module.imports() {
        let allowed = iface.imports.iter().find(|(m, n, _)| *m == imp.module() && *n == imp.name());
        match (allowed, imp.ty()) {
            (None, _) => problems.push(format!(
                "imports `{}::{}`, which tocsin does not provide{}",
                imp.module(),
                imp.name(),
                if imp.module().starts_with("wasi") {
                    " (build for wasm32-unknown-unknown, not WASI)"
                } else if imp.module() == "__wbindgen_placeholder__" || imp.module() == "wbg" {
                    " (rule modules must not use wasm-bindgen)"
                } else {
                    ""
                }
            )),
            (Some((m, n, sig)), ExternType::Func(ty)) if !same(&ty, sig) => problems.push(format!(
                "imports `{m}::{n}` as {}, but tocsin provides {}",
                show(&ty),
                show_sig(sig)
            )),
            (Some((m, n, _)), ExternType::Func(_)) => {
                let _ = (m, n);
            }
            (Some((m, n, _)), _) => problems.push(format!("imports `{m}::{n}` as a non-function")),
        }
    }
    for (name, sig) in iface.exports {
        match module.get_export(name) {
            None => problems.push(format!("does not export the function `{name}`")),
            Some(ExternType::Func(ty)) if !same(&ty, sig) => problems.push(format!(
                "exports `{name}` as {}, expected {}",
                show(&ty),
                show_sig(sig)
            )),
            Some(ExternType::Func(_)) => {}
            Some(_) => problems.push(format!("exports `{name}`, but not as a function")),
        }
    }
    for name in iface.memories {
        if !matches!(module.get_export(name), Some(ExternType::Memory(_))) {
            problems.push(format!("does not export its memory as `{name}`"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const I32: ValType = ValType::I32;
    const IFACE: Interface = Interface {
        exports: &[("run", Signature { params: &[I32], results: &[I32] })],
        memories: &["memory"],
        imports: &[("host", "log", Signature { params: &[I32, I32], results: &[] })],
    };

    fn sandbox() -> Arc<Sandbox> {
        Sandbox::new(SandboxOptions { max_instances: 4, ..Default::default() }).unwrap()
    }

    #[test]
    fn a_conforming_module_passes() {
        let s = sandbox();
        let (m, artifact) = s
            .compile(
                br#"(module (import "host" "log" (func (param i32 i32)))
                    (memory (export "memory") 1)
                    (func (export "run") (param i32) (result i32) local.get 0))"#,
            )
            .unwrap();
        assert!(check_interface(&m, &IFACE).is_empty());
        assert!(!artifact.is_empty());
    }

    #[test]
    fn every_departure_is_named() {
        let s = sandbox();
        let (m, _) = s
            .compile(
                br#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                    (import "host" "log" (func (param i64)))
                    (func (export "run") (param i64) (result i32) i32.const 0))"#,
            )
            .unwrap();
        let p = check_interface(&m, &IFACE);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].contains("wasi_snapshot_preview1::fd_write") && p[0].contains("not WASI"));
        assert!(p[1].contains("`host::log` as (i64) -> ()"), "{}", p[1]);
        assert!(p[2].contains("exports `run` as (i64) -> (i32), expected (i32) -> (i32)"));
        assert!(p[3].contains("memory"));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let e = sandbox().compile(b"\0asm\x01\0\0\0\xff").unwrap_err();
        assert!(e.starts_with("not a valid WebAssembly module"), "{e}");
    }

    #[test]
    fn precompiled_artifacts_reload() {
        let s = sandbox();
        let (_, artifact) = s.compile(br#"(module (func (export "f")))"#).unwrap();
        let path =
            std::env::temp_dir().join(format!("tocsin-artifact-{}.cwasm", std::process::id()));
        std::fs::write(&path, &artifact).unwrap();
        let m = s.load_own_artifact(&path).unwrap();
        assert!(m.get_export("f").is_some());
        let _ = std::fs::remove_file(&path);
        assert_eq!(s.compatibility_key(), sandbox().compatibility_key());
    }
}
