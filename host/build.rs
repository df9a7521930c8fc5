//! Builds the browser playground into the `tocsin` binary, so that a plain
//! `cargo build`/`cargo run --release` on a fresh machine serves a working
//! page with nothing else installed.
//!
//! Steps: compile `tocsin-web` for `wasm32-unknown-unknown` with a nested
//! cargo (its own target directory, so it never waits on the outer build's
//! lock; it shares the outer jobserver), generate the JavaScript glue with the
//! `wasm-bindgen-cli-support` library, copy `web/static/`, gzip everything,
//! and write `assets.rs`, the table `host/src/playground.rs` serves from.
//!
//! Why the library and not the `wasm-bindgen` CLI: the glue must come from
//! exactly the wasm-bindgen version the crate links (both are pinned to the
//! same `=x.y.z`), and as a build-dependency cargo fetches and builds it from
//! the registry like any crate. No `cargo install`, no wasm-pack (which
//! downloads binaries), no npm or bundler: the page is plain ES modules.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(e) = run() {
        // A build script's panic shows its message; make it read like one.
        panic!("\n\nbuilding the playground failed: {e}\n");
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let root = manifest.parent().ok_or("host/ has no parent")?.to_path_buf();
    let out = PathBuf::from(env("OUT_DIR")?);
    for p in [
        "web/src",
        "web/static",
        "web/Cargo.toml",
        "engine/src",
        "engine/Cargo.toml",
        "rules-sdk/abi/src",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=TOCSIN_WEB_PROFILE");

    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>/out.
    let target_dir = out.ancestors().nth(4).ok_or("unexpected OUT_DIR layout")?.join("playground");
    let profile = std::env::var("TOCSIN_WEB_PROFILE").unwrap_or_else(|_| "web".into());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "-p", "tocsin-web", "--lib", "--target", "wasm32-unknown-unknown"])
        .args(["--profile", &profile])
        .env("CARGO_TARGET_DIR", &target_dir);
    // What cargo hands a build script is meant for this script, not for a
    // nested build: flags for the host target, clippy's wrapper.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo build -p tocsin-web --target wasm32-unknown-unknown` failed ({status}). \
             Is the target installed? `rustup target add wasm32-unknown-unknown`"
        ));
    }
    let dir = if profile == "dev" { "debug" } else { profile.as_str() };
    let wasm = target_dir.join("wasm32-unknown-unknown").join(dir).join("tocsin_web.wasm");

    let assets = out.join("playground");
    let _ = std::fs::remove_dir_all(&assets);
    std::fs::create_dir_all(&assets).map_err(|e| format!("{}: {e}", assets.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .map_err(|e| format!("wasm-bindgen: {e}"))?
        .typescript(false)
        .debug(false)
        .keep_debug(false)
        .remove_name_section(true)
        .remove_producers_section(true)
        .generate(&assets)
        .map_err(|e| format!("wasm-bindgen on {}: {e:#}", wasm.display()))?;

    let statics = root.join("web/static");
    for entry in std::fs::read_dir(&statics).map_err(|e| format!("{}: {e}", statics.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_type().map_err(|e| e.to_string())?.is_file() {
            std::fs::copy(entry.path(), assets.join(entry.file_name()))
                .map_err(|e| e.to_string())?;
        }
    }

    let mut names: Vec<String> = std::fs::read_dir(&assets)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut table = String::from("&[\n");
    for name in &names {
        let path = assets.join(name);
        let gz = gzip(&path)?;
        let _ = writeln!(
            table,
            "    Asset {{ name: {name:?}, content_type: {:?}, body: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            content_type(name),
            path.display().to_string(),
            gz.display().to_string(),
        );
    }
    table.push_str("]\n");
    std::fs::write(out.join("playground_assets.rs"), table).map_err(|e| e.to_string())?;
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn gzip(path: &Path) -> Result<PathBuf, String> {
    let body = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = path.with_file_name(format!(
        "{}.gz",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    enc.write_all(&body).and_then(|_| enc.finish().map(|_| ())).map_err(|e| e.to_string())?;
    Ok(out)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
