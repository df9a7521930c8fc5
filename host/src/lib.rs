//! tocsin-host: the service (scraping, ingestion, rule scheduling, notifier,
//! HTTP API), the command-line commands and the WebAssembly rule runtime.
//!
//! The `tocsin` binary (`main.rs`) only wires flags to this library. It is a
//! library so that benchmarks (`benches/`) drive the runtime itself, the way
//! the scheduler does, instead of timing it through a process and HTTP.
//! Nothing depends on it but the binary and its benches and tests: it is
//! not a stable API.

pub mod api;
mod backtest;
pub mod cli;
pub mod config;
pub mod metrics;
mod notifier;
mod scheduler;
mod scrape;
pub mod server;
mod wal;
pub mod wasm;
