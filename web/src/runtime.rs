//! `.wasm` rules on the browser's own WebAssembly. The engine drives the
//! evaluation (request, host calls, budgets, response checks: all shared with
//! the wasmtime host in `tocsin_engine::rules::wasm`); JavaScript only moves
//! bytes in and out of a fresh instance. See `static/guest.js`.

use std::cell::RefCell;

use tocsin_engine::rules::wasm::{HostCalls, ModuleRuntime};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The JavaScript object that instantiates registered modules
    /// (`GuestRunner` in `static/guest.js`).
    pub type GuestRunner;

    /// Runs one evaluation of `module` on `request`. `call(op, bytes)`
    /// answers the guest's imports (op 0 query, 1 query_range, 2 series,
    /// 3 panic) and `take(len)` hands out the pending reply (empty when there
    /// is none of that length). Throws a message on traps and limits.
    #[wasm_bindgen(method, catch)]
    fn run(
        this: &GuestRunner,
        module: &str,
        request: &[u8],
        call: &dyn Fn(u32, Vec<u8>) -> i32,
        take: &dyn Fn(u32) -> Vec<u8>,
    ) -> Result<Vec<u8>, JsValue>;

    /// Called after each evaluation time of a run: the worker's heartbeat,
    /// which the page's watchdog listens for.
    #[wasm_bindgen(method)]
    pub fn progress(this: &GuestRunner, done: f64, total: f64);
}

pub struct JsRuntime<'a> {
    runner: &'a GuestRunner,
}

impl<'a> JsRuntime<'a> {
    pub fn new(runner: &'a GuestRunner) -> Self {
        JsRuntime { runner }
    }
}

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `String(v)`: an `Error`'s message without pulling in
    /// js-sys for one property.
    #[wasm_bindgen(js_name = String)]
    fn js_string(v: &JsValue) -> String;
}

fn message(e: &JsValue) -> String {
    e.as_string().unwrap_or_else(|| js_string(e).trim_start_matches("Error: ").to_owned())
}

impl ModuleRuntime for JsRuntime<'_> {
    fn run(
        &self,
        module: &str,
        request: &[u8],
        host: &mut HostCalls<'_>,
    ) -> Result<Vec<u8>, String> {
        let cell = RefCell::new(host);
        let call = |op: u32, bytes: Vec<u8>| -> i32 {
            let mut h = cell.borrow_mut();
            match op {
                0 => h.query(&bytes),
                1 => h.query_range(&bytes),
                2 => h.series(&bytes),
                _ => {
                    h.panic(&bytes);
                    0
                }
            }
        };
        let take = |len: u32| -> Vec<u8> {
            cell.borrow_mut().take_reply(len as usize).unwrap_or_default()
        };
        let out = self.runner.run(module, request, &call, &take);
        match out {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                // Worded as the wasmtime host words them.
                let trap = message(&e);
                Err(match cell.borrow().panic_message() {
                    Some(p) => format!("module {module:?} panicked: {p}"),
                    None => format!("module {module:?}: {trap}"),
                })
            }
        }
    }
}
