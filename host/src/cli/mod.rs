//! The command-line commands other than `serve`.

pub mod backtest;
pub mod check;
pub mod module;
pub mod rule;
pub mod test_rules;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tocsin_engine::rules::TestFiles;
use tocsin_engine::rules::wasm::ModuleRuntime;

use crate::wasm::runner::{RunLimits, WasmHost};
use crate::wasm::sandbox::{Deadline, Sandbox, SandboxOptions};

/// Test and rule files from the filesystem; `rule_files` entries may be
/// globs. `wasm:` rules name `.wasm` files (relative to the working
/// directory), run in wasmtime.
#[derive(Default)]
pub struct FsFiles {
    pub wasm: OfflineRuntime,
}

/// [`offline_wasm_host`], started on the first `wasm:` rule: runs of
/// PromQL-only files never pay for the guest pool.
#[derive(Default)]
pub struct OfflineRuntime(OnceLock<Result<Arc<WasmHost>, String>>);

impl ModuleRuntime for OfflineRuntime {
    fn run(
        &self,
        module: &str,
        request: &[u8],
        host: &mut tocsin_engine::rules::wasm::HostCalls<'_>,
    ) -> Result<Vec<u8>, String> {
        match self.0.get_or_init(offline_wasm_host) {
            Ok(h) => h.run_module(module, request, host),
            Err(e) => Err(format!("starting the WebAssembly runtime: {e}")),
        }
    }
}

/// The WebAssembly runtime of the offline commands (`test rules`,
/// `backtest`): instruction budgets instead of wall-clock deadlines, so the
/// same module over the same data stops at the same point on any machine.
pub fn offline_wasm_host() -> Result<Arc<WasmHost>, String> {
    let sandbox = Sandbox::new(SandboxOptions {
        deadline: Deadline::Fuel,
        max_instances: 8,
        ..SandboxOptions::default()
    })?;
    WasmHost::new(sandbox, RunLimits::default(), 1)
}

impl TestFiles for FsFiles {
    fn wasm(&self) -> Option<&dyn ModuleRuntime> {
        Some(&self.wasm)
    }

    fn read(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        if !pattern.contains(['*', '?', '[']) {
            return Ok(if Path::new(pattern).exists() { vec![pattern.to_owned()] } else { vec![] });
        }
        let paths = glob::glob(pattern).map_err(|e| format!("{pattern}: {e}"))?;
        let mut out: Vec<String> =
            paths.filter_map(Result::ok).map(|p| p.to_string_lossy().into_owned()).collect();
        out.sort();
        Ok(out)
    }
}
