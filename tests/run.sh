#!/usr/bin/env bash
# Runs every tocsin check, on a fresh machine too: installs what it needs first.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
# rust-toolchain.toml pins the compiler; rustup installs its listed target only
# when it installs the toolchain itself, so add the wasm target explicitly.
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add rustfmt clippy >/dev/null
rustc --version

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

step "engine builds for wasm32-unknown-unknown"
cargo build -p tocsin-engine -p tocsin-web --target wasm32-unknown-unknown

step "all checks passed"
