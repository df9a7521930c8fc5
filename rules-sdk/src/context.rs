//! What a rule sees of the world: its request, the host's queries, and where
//! its new state and logs go.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tocsin_abi::{
    EvalRequest, Message, QueryReply, QueryRequest, RangeQueryRequest, Series, SeriesRequest,
};

use crate::Error;
use crate::guest::{Call, Host};
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::Canned;

/// One evaluation of a rule. Time is only [`ts`](Self::ts): a rule that never
/// reads a clock of its own evaluates identically live and in a backtest.
pub struct Context {
    pub(crate) request: EvalRequest,
    pub(crate) backend: Backend,
    pub(crate) new_state: Option<Vec<u8>>,
    pub(crate) logs: Vec<String>,
}

pub(crate) enum Backend {
    Host(Box<dyn Host>),
    // Native only, so that no guest module carries the test harness.
    #[cfg(not(target_arch = "wasm32"))]
    Canned(Canned),
}

impl Context {
    pub(crate) fn new(request: EvalRequest, backend: Backend) -> Self {
        Self { request, backend, new_state: None, logs: Vec::new() }
    }

    /// The evaluation timestamp, milliseconds since the Unix epoch.
    pub fn ts(&self) -> i64 {
        self.request.ts_ms
    }

    /// The rule group's evaluation interval in milliseconds.
    pub fn interval(&self) -> i64 {
        self.request.interval_ms
    }

    /// The rule's `config:` from the rule file. A rule without one reads as JSON
    /// `null`, so `Option<T>` or a `#[serde(default)]` struct accept its absence.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let json: &[u8] =
            if self.request.config.is_empty() { b"null" } else { &self.request.config };
        serde_json::from_slice(json).map_err(|e| Error::msg(format!("config: {e}")))
    }

    /// The state this rule saved in its previous evaluation, `None` on its first.
    /// State is JSON, which has no NaN: keep a float that may be NaN as `Option<f64>`.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        if self.request.state.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&self.request.state)
            .map(Some)
            .map_err(|e| Error::msg(format!("state: {e}")))
    }

    /// Saves state for the next evaluation. Without a call, the previous state is kept.
    pub fn set_state<T: Serialize>(&mut self, state: &T) -> Result<(), Error> {
        self.new_state = Some(serde_json::to_vec(state)?);
        Ok(())
    }

    /// The previous state as raw bytes, for rules with a format of their own.
    pub fn state_bytes(&self) -> &[u8] {
        &self.request.state
    }

    /// Saves raw state bytes; empty clears the state.
    pub fn set_state_bytes(&mut self, state: Vec<u8>) {
        self.new_state = Some(state);
    }

    /// A log line, shown with the rule's evaluation (and in backtests).
    pub fn log(&mut self, line: impl Into<String>) {
        self.logs.push(line.into());
    }

    /// A PromQL instant query at the evaluation timestamp: one point per series
    /// (a scalar result is one series without labels).
    pub fn query(&mut self, expr: &str) -> Result<Vec<Series>, Error> {
        let req = QueryRequest { ts_ms: self.ts(), expr: expr.into() };
        self.call(Call::Query, expr, &req)
    }

    /// A PromQL range query over `[start_ms, end_ms]` every `step_ms`.
    pub fn query_range(
        &mut self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<Series>, Error> {
        let req = RangeQueryRequest { start_ms, end_ms, step_ms, expr: expr.into() };
        self.call(Call::QueryRange, expr, &req)
    }

    /// The raw samples in `[start_ms, end_ms]` of the series matching `selector`
    /// (e.g. `http_requests_total{job="api"}`), staleness markers included.
    pub fn series(
        &mut self,
        selector: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, Error> {
        let req = SeriesRequest { start_ms, end_ms, matchers: vec![selector.into()] };
        self.call(Call::Series, selector, &req)
    }

    fn call(
        &mut self,
        call: Call,
        what: &str,
        request: &impl Message,
    ) -> Result<Vec<Series>, Error> {
        let request = request.encode();
        let reply = match &mut self.backend {
            Backend::Host(host) => host.call(call, &request),
            #[cfg(not(target_arch = "wasm32"))]
            Backend::Canned(canned) => canned.call(call, &request),
        }
        .map_err(|code| {
            Error::msg(format!("{} `{what}`: {}", call.import_name(), code.message()))
        })?;
        match QueryReply::decode(&reply)? {
            QueryReply::Series(series) => Ok(series),
            QueryReply::Error(msg) => {
                Err(Error::msg(format!("{} `{what}`: {msg}", call.import_name())))
            }
        }
    }
}
