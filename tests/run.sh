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

step "system packages"
# End-to-end tests run the real Alertmanager and compare against a real
# Prometheus, both from Debian; the playground's tests drive Debian's chromium
# with node. apt-get only runs when something is missing.
need=()
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # No services are started by the packages' scripts in a container without
  # systemd; the tests start their own processes on 127.0.0.1.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
prometheus --version 2>&1 | head -1
prometheus-alertmanager --version 2>&1 | head -1
chromium --version 2>/dev/null | head -1
echo "node $(node --version)"

step "browser test driver"
# playwright-core only (it never downloads a browser), pinned by the lockfile.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

# The engine's wasm32-unknown-unknown build is checked by every build above:
# host/build.rs compiles tocsin-web (and so tocsin-engine) for it to embed the
# playground.

step "all checks passed"
