//! WASM rules in the host: the wasmtime sandbox (`sandbox`). The ABI
//! runner, module registry and its API build on it.
#![allow(dead_code)] // wired into the scheduler with the ABI runner, next

pub mod registry;
pub mod runner;
pub mod sandbox;
