//! tocsin-rules-sdk: the crate rule authors depend on to write alert and
//! recording rules in Rust, compiled to `wasm32-unknown-unknown`.
//!
//! The ABI and the SDK arrive with WASM rules; until then this crate only
//! reserves its place in the workspace.
