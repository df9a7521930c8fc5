//! Native unit tests for rules: a [`Context`] with canned query answers. The
//! answers go through the same encode/decode as on wasm32, so a test exercises
//! the rule's whole guest-side path except the pointers.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tocsin_abi::{
    ErrorCode, EvalRequest, Message, QueryReply, QueryRequest, RangeQueryRequest, Series,
    SeriesRequest,
};

use crate::context::{Backend, Context};
use crate::guest::Call;
use crate::{Error, Output, RuleFn};

/// Answers keyed by call and expression (or selector); the times a rule asks
/// for are recorded, not matched, so tests stay short.
#[derive(Default, Clone)]
pub(crate) struct Canned {
    answers: HashMap<(Call, String), QueryReply>,
    calls: Vec<(Call, String)>,
}

impl Canned {
    pub(crate) fn call(&mut self, call: Call, request: &[u8]) -> Result<Vec<u8>, ErrorCode> {
        let bad = |_| ErrorCode::BadMessage;
        let key = match call {
            Call::Query => QueryRequest::decode(request).map_err(bad)?.expr,
            Call::QueryRange => RangeQueryRequest::decode(request).map_err(bad)?.expr,
            Call::Series => SeriesRequest::decode(request).map_err(bad)?.matchers.join(","),
        };
        let reply = self.answers.get(&(call, key.clone())).cloned().unwrap_or_else(|| {
            QueryReply::Error(format!("no canned answer for {} `{key}`", call.import_name()))
        });
        self.calls.push((call, key));
        Ok(reply.encode())
    }
}

/// The native test harness. Build a context, run the rule function on it, then
/// inspect its output, [`logs`](Context::logs) and
/// [`saved_state`](Context::saved_state).
impl Context {
    /// A context evaluating at `ts_ms` with a 60 s interval, no config, no state
    /// and no query answers.
    pub fn for_test(ts_ms: i64) -> Self {
        let request = EvalRequest { ts_ms, interval_ms: 60_000, ..Default::default() };
        Context::new(request, Backend::Canned(Canned::default()))
    }

    pub fn with_interval(mut self, interval_ms: i64) -> Self {
        self.request.interval_ms = interval_ms;
        self
    }

    /// The rule's config as JSON text, as the host hands it over.
    pub fn with_config(mut self, json: &str) -> Self {
        self.request.config = json.as_bytes().to_vec();
        self
    }

    /// The state a previous evaluation saved.
    pub fn with_state<T: Serialize>(mut self, state: &T) -> Self {
        self.request.state = serde_json::to_vec(state).expect("test state serializes to JSON");
        self
    }

    pub fn on_query(self, expr: &str, series: Vec<Series>) -> Self {
        self.answer(Call::Query, expr, QueryReply::Series(series))
    }

    pub fn on_query_range(self, expr: &str, series: Vec<Series>) -> Self {
        self.answer(Call::QueryRange, expr, QueryReply::Series(series))
    }

    pub fn on_series(self, selector: &str, series: Vec<Series>) -> Self {
        self.answer(Call::Series, selector, QueryReply::Series(series))
    }

    /// Makes the instant query `expr` fail with `message`.
    pub fn on_query_error(self, expr: &str, message: &str) -> Self {
        self.answer(Call::Query, expr, QueryReply::Error(message.into()))
    }

    fn answer(mut self, call: Call, key: &str, reply: QueryReply) -> Self {
        if let Backend::Canned(canned) = &mut self.backend {
            canned.answers.insert((call, key.into()), reply);
        }
        self
    }

    /// Runs `rule` as the host would: a rule error or panic becomes `Err`
    /// with the message the host would show. Logs and state stay readable.
    pub fn run(&mut self, rule: RuleFn) -> Result<Output, Error> {
        let response = crate::guest::respond(rule, self);
        self.logs = response.logs;
        self.new_state = response.state;
        match response.error {
            Some(e) => Err(Error::msg(e)),
            None => Ok(response.samples.into_iter().collect()),
        }
    }

    /// The next evaluation, `interval` later, carrying over the state this one
    /// saved (or kept), the config and the canned answers.
    pub fn next(self) -> Self {
        let ts_ms = self.request.ts_ms + self.request.interval_ms;
        let state = self.new_state.unwrap_or(self.request.state);
        let request = EvalRequest { ts_ms, state, ..self.request };
        Context::new(request, self.backend)
    }

    /// The log lines written so far.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// The state this evaluation saved, `None` if it saved none.
    pub fn saved_state<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        self.new_state.as_deref().map(serde_json::from_slice).transpose().map_err(Error::from)
    }

    /// The `(import, expression)` pairs the rule queried, in order.
    pub fn queries(&self) -> Vec<(&'static str, &str)> {
        match &self.backend {
            Backend::Canned(c) => {
                c.calls.iter().map(|(call, k)| (call.import_name(), k.as_str())).collect()
            }
            Backend::Host(_) => Vec::new(),
        }
    }
}
