//! Uploaded rule modules: validated, stored content-addressed in the data
//! directory (`modules/<sha256>.wasm`), compiled once, with the compiled
//! artifact cached next to it under this engine's compatibility key, and
//! a name index (`modules/index.json`) that rules refer to with `wasm: NAME`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::runner::WasmHost;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModuleInfo {
    pub name: String,
    pub sha256: String,
    pub size: usize,
    pub uploaded_at_ms: i64,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The upload is wrong; the message says what (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    #[error("no module named {0:?}")]
    NotFound(String),
    /// The host could not store it (HTTP 500).
    #[error("{0}")]
    Storage(String),
}

pub struct Registry {
    dir: PathBuf,
    host: Arc<WasmHost>,
    max_bytes: usize,
    index: Mutex<BTreeMap<String, ModuleInfo>>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with('-')
}

fn io(path: &Path, e: std::io::Error) -> RegistryError {
    RegistryError::Storage(format!("{}: {e}", path.display()))
}

impl Registry {
    /// Opens the registry in `dir` and installs every stored module into
    /// `host`. A module that no longer loads is reported and skipped.
    pub fn open(
        dir: &Path,
        host: Arc<WasmHost>,
        max_bytes: usize,
    ) -> Result<(Registry, Vec<String>), RegistryError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let index_path = dir.join("index.json");
        let index: BTreeMap<String, ModuleInfo> = match std::fs::read(&index_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Storage(format!("{}: {e}", index_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(&index_path, e)),
        };
        let reg = Registry { dir: dir.to_owned(), host, max_bytes, index: Mutex::new(index) };
        let mut problems = Vec::new();
        let all: Vec<ModuleInfo> =
            reg.index.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for info in all {
            if let Err(e) = reg.load(&info) {
                problems.push(format!("module {:?} not loaded: {e}", info.name));
            }
        }
        Ok((reg, problems))
    }

    fn wasm_path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}.wasm"))
    }

    fn artifact_path(&self, sha: &str) -> PathBuf {
        let key = self.host.sandbox().compatibility_key();
        self.dir.join(format!("{sha}.{key}.cwasm"))
    }

    /// Installs a stored module, from its cached artifact when this engine
    /// wrote one, compiling (and caching) otherwise.
    fn load(&self, info: &ModuleInfo) -> Result<(), String> {
        let sandbox = self.host.sandbox();
        let artifact = self.artifact_path(&info.sha256);
        let module = match sandbox.load_own_artifact(&artifact) {
            Ok(m) => m,
            Err(_) => {
                let bytes = std::fs::read(self.wasm_path(&info.sha256))
                    .map_err(|e| format!("reading the stored module: {e}"))?;
                let (m, compiled) = sandbox.compile(&bytes)?;
                write_atomic(&artifact, &compiled).map_err(|e| e.to_string())?;
                m
            }
        };
        let loaded = self.host.prepare(&module).map_err(|p| p.join("; "))?;
        self.host.install(&info.name, loaded);
        Ok(())
    }

    /// Validates, stores and installs a module under `name`, replacing any
    /// module of that name. Every reason for refusal is in the error.
    pub fn upload(
        &self,
        name: &str,
        wasm: &[u8],
        description: &str,
        now_ms: i64,
    ) -> Result<ModuleInfo, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::Invalid(format!(
                "invalid module name {name:?}: use 1 to 64 of [A-Za-z0-9_-], not starting with '-'"
            )));
        }
        if wasm.len() > self.max_bytes {
            return Err(RegistryError::Invalid(format!(
                "module is {} bytes, more than the limit of {} (modules.max_module_bytes)",
                wasm.len(),
                self.max_bytes
            )));
        }
        let sandbox = self.host.sandbox();
        let (module, compiled) = sandbox.compile(wasm).map_err(RegistryError::Invalid)?;
        let loaded = self.host.prepare(&module).map_err(|p| {
            RegistryError::Invalid(format!("not a tocsin rule module: it {}", p.join("; it ")))
        })?;
        let sha = hex(&Sha256::digest(wasm));
        let info = ModuleInfo {
            name: name.to_owned(),
            sha256: sha.clone(),
            size: wasm.len(),
            uploaded_at_ms: now_ms,
            description: description.to_owned(),
        };
        let wasm_path = self.wasm_path(&sha);
        write_atomic(&wasm_path, wasm).map_err(|e| io(&wasm_path, e))?;
        let artifact = self.artifact_path(&sha);
        write_atomic(&artifact, &compiled).map_err(|e| io(&artifact, e))?;
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = index.insert(name.to_owned(), info.clone());
        if let Err(e) = self.save(&index) {
            match previous {
                Some(p) => index.insert(name.to_owned(), p),
                None => index.remove(name),
            };
            return Err(e);
        }
        self.host.install(name, loaded);
        Ok(info)
    }

    pub fn list(&self) -> Vec<ModuleInfo> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<ModuleInfo> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// Removes the name; the stored bytes go too when no other name uses them.
    pub fn delete(&self, name: &str) -> Result<ModuleInfo, RegistryError> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let info = index.remove(name).ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        if let Err(e) = self.save(&index) {
            index.insert(name.to_owned(), info);
            return Err(e);
        }
        self.host.remove(name);
        if !index.values().any(|i| i.sha256 == info.sha256) {
            let _ = std::fs::remove_file(self.wasm_path(&info.sha256));
            let _ = std::fs::remove_file(self.artifact_path(&info.sha256));
        }
        Ok(info)
    }

    fn save(&self, index: &BTreeMap<String, ModuleInfo>) -> Result<(), RegistryError> {
        let path = self.dir.join("index.json");
        let bytes =
            serde_json::to_vec_pretty(index).map_err(|e| RegistryError::Storage(e.to_string()))?;
        write_atomic(&path, &bytes).map_err(|e| io(&path, e))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write to a temporary name, fsync, rename: readers see the old file or
/// the whole new one, also after a crash.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::runner::RunLimits;
    use crate::wasm::sandbox::{Sandbox, SandboxOptions};

    const OK: &str = r#"(module
        (import "tocsin_v1" "query" (func (param i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "tocsin_abi_version") (result i32) i32.const 1)
        (func (export "tocsin_alloc") (param i32) (result i32) i32.const 1024)
        (func (export "tocsin_evaluate") (param i32 i32) (result i64) i64.const -1))"#;

    fn host() -> Arc<WasmHost> {
        let s = Sandbox::new(SandboxOptions { max_instances: 4, ..Default::default() }).unwrap();
        WasmHost::new(s, RunLimits::default(), 1).unwrap()
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tocsin-registry-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn upload_list_reopen_delete() {
        let d = dir("cycle");
        let (reg, problems) = Registry::open(&d, host(), 1 << 20).unwrap();
        assert!(problems.is_empty());
        let info = reg.upload("drift", OK.as_bytes(), "z-score drift", 7).unwrap();
        assert_eq!(info.sha256.len(), 64);
        assert_eq!(reg.list(), vec![info.clone()]);
        // A fresh process finds it, from the cached artifact.
        let (again, problems) = Registry::open(&d, host(), 1 << 20).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(again.get("drift"), Some(info.clone()));
        assert!(again.artifact_path(&info.sha256).exists());
        again.delete("drift").unwrap();
        assert!(again.list().is_empty());
        assert!(!again.wasm_path(&info.sha256).exists());
        assert!(matches!(again.delete("drift"), Err(RegistryError::NotFound(_))));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_uploads_say_what_is_wrong() {
        let d = dir("bad");
        let (reg, _) = Registry::open(&d, host(), 4096).unwrap();
        let msg = |r: Result<ModuleInfo, RegistryError>| r.unwrap_err().to_string();
        assert!(msg(reg.upload("a b", OK.as_bytes(), "", 0)).contains("invalid module name"));
        assert!(msg(reg.upload("x", &[0u8; 5000], "", 0)).contains("more than the limit of 4096"));
        assert!(msg(reg.upload("x", b"hello", "", 0)).contains("not a valid WebAssembly module"));
        let e = msg(reg.upload("x", b"(module (func (export \"f\")))", "", 0));
        assert!(e.contains("does not export the function `tocsin_evaluate`"), "{e}");
        assert!(reg.list().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}
