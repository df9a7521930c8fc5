//! The command-line commands other than `serve`.

pub mod backtest;
pub mod check;
pub mod test_rules;

use std::path::Path;

use tocsin_engine::rules::TestFiles;

/// Test and rule files from the filesystem; `rule_files` entries may be globs.
pub struct FsFiles;

impl TestFiles for FsFiles {
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
