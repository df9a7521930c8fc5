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
        self.session
            .load_data(name, text.as_bytes())
            .map(|s| s.to_json().to_string())
            .map_err(js_err)
    }

    /// Adds series from a Prometheus API matrix (`data.result` of
    /// `/api/v1/query_range`), as JSON text. Returns the new summary.
    pub fn add_matrix(&mut self, json: &str) -> Result<String, JsError> {
        self.session.add_matrix(json).map(|s| s.to_json().to_string()).map_err(js_err)
    }

    /// Problems of a rule file as a JSON array of
    /// `{line, col, message}` (line/col 0 when unknown). Empty when valid.
    pub fn check_rules(&self, name: &str, text: &str) -> String {
        session::check_rules(name, text).to_string()
    }

    /// Runs the rules over the data. `options` is JSON
    /// `{from, to, step, external_labels}` (times in ms, all optional);
    /// `runner` runs `.wasm` rules and hears progress (`static/guest.js`). Returns the backtest
    /// JSON, the same document `tocsin backtest --json` prints, plus chart
    /// series and the run's metadata.
    pub fn backtest(
        &mut self,
        name: &str,
        rules: &str,
        options: &str,
        runner: &runtime::GuestRunner,
    ) -> Result<String, JsError> {
        let opts = RunOptions::from_json(options).map_err(js_err)?;
        let rt = runtime::JsRuntime::new(runner);
        self.session
            .backtest(name, rules, &opts, Some(&rt), &mut |done, total| {
                runner.progress(done as f64, total as f64)
            })
            .map(|v| v.to_string())
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
        self.session
            .query_range(expr, from as i64, to as i64, step as i64)
            .map(|v| v.to_string())
            .map_err(js_err)
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
