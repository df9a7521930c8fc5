//! The browser face of tocsin-engine. The wasm-bindgen API and the playground
//! page arrive with the playground; this crate already builds the engine for
//! `wasm32-unknown-unknown` in CI, so nothing non-portable can creep into it.

pub use tocsin_engine as engine;
