//! The browser face of tocsin-engine: what the playground's Web Worker calls.
//!
//! Everything here is the engine's own code path: rule files parse with
//! `parse_rule_file`, data loads with the backtest's `load_data`, runs go
//! through `rules::backtest` and are rendered by its `to_json`, the very
//! function `tocsin backtest --json` prints with. The only browser-specific
//! piece is [`runtime::JsRuntime`], which runs `.wasm` rules on the browser's
//! own WebAssembly.
//!
//! [`Session`] is plain Rust (tested natively); [`Playground`] is its
//! wasm-bindgen wrapper.

pub mod export;
pub mod runtime;
mod session;

pub use session::{DataSummary, RunOptions, Session};

use wasm_bindgen::prelude::*;

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// One playground: the loaded data, the last run (for charts and export).
#[wasm_bindgen]
pub struct Playground {
    session: Session,
}

fn js_err(e: String) -> JsError {
    JsError::new(&e)
}

#[wasm_bindgen]
impl Playground {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Playground {
        Playground { session: Session::default() }
    }

    /// Replaces the data with `text` (promtool `input_series` YAML or
    /// exposition text with timestamps). Returns a JSON summary; throws
    /// `name:line:col: message` on bad input, keeping the previous data.
    pub fn load_data(&mut self, name: &str, text: &str) -> Result<String, JsError> {
        self.session.load_data(name, text.as_bytes()).map(|s| s.to_json()).map_err(js_err)
    }

    /// Adds series (same formats as `load_data`), merging samples into
    /// series already loaded. Returns the new summary.
    pub fn add_data(&mut self, name: &str, text: &str) -> Result<String, JsError> {
        self.session.add_data(name, text.as_bytes()).map(|s| s.to_json()).map_err(js_err)
    }

    /// Problems of a rule file as a JSON array of
    /// `{line, col, message}` (line/col 0 when unknown). Empty when valid.
    pub fn check_rules(&self, name: &str, text: &str) -> String {
        session::check_rules(name, text)
    }

    /// Runs the rules over the data from `from` to `to` every `step` (ms;
    /// NaN for the defaults: the data's range, each group's interval), with
    /// `external_labels` as `name=value` lines; `runner` runs `.wasm` rules
    /// and hears progress (`static/guest.js`). Returns the backtest JSON, the
    /// same document `tocsin backtest --json` prints, plus chart series and
    /// the run's metadata.
    // Flat arguments: an options object would need a JSON parser in the
    // bundle (kept out for size).
    #[allow(clippy::too_many_arguments)]
    pub fn backtest(
        &mut self,
        name: &str,
        rules: &str,
        from: f64,
        to: f64,
        step: f64,
        external_labels: &str,
        runner: &runtime::GuestRunner,
    ) -> Result<String, JsError> {
        let opts = RunOptions::from_page(from, to, step, external_labels).map_err(js_err)?;
        let rt = runtime::JsRuntime::new(runner);
        self.session
            .backtest(name, rules, &opts, Some(&rt), &mut |done, total| {
                runner.progress(done as f64, total as f64)
            })
            .map_err(js_err)
    }

    /// A PromQL range query over the last run's data (input plus what the
    /// rules wrote), as JSON `[{labels, points: [[ms, value|null]]}]`.
    pub fn query_range(
        &self,
        expr: &str,
        from: f64,
        to: f64,
        step: f64,
    ) -> Result<String, JsError> {
        self.session.query_range(expr, from as i64, to as i64, step as i64).map_err(js_err)
    }

    /// The last run as a promtool-format unit-test file for `rule_file`.
    pub fn export_test(&self, rule_file: &str) -> Result<String, JsError> {
        self.session.export_test(rule_file).map_err(js_err)
    }
}

impl Default for Playground {
    fn default() -> Self {
        Self::new()
    }
}
