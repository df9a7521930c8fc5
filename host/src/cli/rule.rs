//! `tocsin rule new` and `tocsin rule build`: scaffold a rule crate and build
//! it to a `.wasm` module checked against the ABI, ready to upload.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// Where the SDK is: next to the host's sources (tocsin is built from its
/// repository; the SDK is not on crates.io yet).
fn sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules-sdk")
}

fn crate_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn new(name: &str, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    if !crate_name_ok(name) {
        bail!("invalid rule name {name:?}: start with a letter, then letters, digits, '_' or '-'");
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = sdk_path()
        .canonicalize()
        .with_context(|| format!("the rules SDK was not found at {}", sdk_path().display()))?;
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let fn_name = name.replace('-', "_");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

# A tocsin rule module: build with `tocsin rule build` (or `cargo build
# --release --target wasm32-unknown-unknown`), upload the .wasm.
[lib]
crate-type = ["cdylib"]

[dependencies]
tocsin-rules-sdk = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}

# Small modules: the host stores, compiles and caches them.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A crate of its own, not part of any workspace around it.
[workspace]
"#
        ),
    )?;
    std::fs::write(
        dir.join("src/lib.rs"),
        format!(
            r##"//! A tocsin rule. In a rule file:
//!
//! ```yaml
//! - alert: {fn_name}
//!   wasm: {name}
//!   config: {{metric: "up", threshold: 1}}
//!   for: 5m
//! ```

use serde::Deserialize;
use tocsin_rules_sdk::{{Context, Error, Output}};

#[derive(Deserialize)]
struct Config {{
    /// Any PromQL instant-vector expression.
    metric: String,
    threshold: f64,
}}

/// Every series of `metric` below `threshold` becomes an alert (or, in a
/// recording rule, a sample).
fn {fn_name}(ctx: &mut Context) -> Result<Output, Error> {{
    let cfg: Config = ctx.config()?;
    let mut out = Output::new();
    for series in ctx.query(&cfg.metric)? {{
        if let Some((_, value)) = series.last()
            && value < cfg.threshold
        {{
            out = out.sample(series.labels, value);
        }}
    }}
    Ok(out)
}}

tocsin_rules_sdk::rule!({fn_name});

#[cfg(test)]
mod tests {{
    use super::*;
    use tocsin_rules_sdk::Series;

    #[test]
    fn fires_below_the_threshold() {{
        let mut ctx = Context::for_test(60_000)
            .with_config(r#"{{"metric": "up", "threshold": 1}}"#)
            .on_query("up", vec![
                Series::new([("instance", "a")], [(60_000, 1.0)]),
                Series::new([("instance", "b")], [(60_000, 0.0)]),
            ]);
        let out = {fn_name}(&mut ctx).unwrap();
        assert_eq!(out.samples().len(), 1);
        assert_eq!(out.samples()[0].labels, vec![("instance".to_owned(), "b".to_owned())]);
    }}
}}
"##
        ),
    )?;
    std::fs::write(dir.join(".gitignore"), "/target\n")?;
    println!("Created the rule crate {}.", dir.display());
    println!("  cargo test              # run its tests natively");
    println!("  tocsin rule build {}   # build and check {name}.wasm", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Builds the crate in `dir` for wasm32 and checks the module like an upload would.
pub fn build(dir: &Path) -> anyhow::Result<ExitCode> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("{} is not a rule crate", dir.display()))?;
    let name = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("name = "))
        .map(|v| v.trim().trim_matches('"').replace('-', "_"))
        .context("no package name in Cargo.toml")?;
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!(
            "cargo build failed (is the target installed? `rustup target add wasm32-unknown-unknown`)"
        );
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| dir.join("target"), PathBuf::from);
    let wasm = target.join(format!("wasm32-unknown-unknown/release/{name}.wasm"));
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let host = super::offline_wasm_host().map_err(anyhow::Error::msg)?;
    let (module, _) = host.sandbox().compile(&bytes).map_err(anyhow::Error::msg)?;
    if let Err(problems) = host.prepare(&module) {
        bail!(
            "{} is not a valid tocsin rule module: it {}",
            wasm.display(),
            problems.join("; it ")
        );
    }
    println!("{} ({} KiB): a valid tocsin rule module", wasm.display(), bytes.len().div_ceil(1024));
    Ok(ExitCode::SUCCESS)
}
