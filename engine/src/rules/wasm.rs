//! The host side of the rule ABI (`tocsin-abi`), runtime-independent: the
//! evaluation request a module gets, its host calls (PromQL and raw series
//! reads over storage) with their budgets, and the checks on what it returns.
//! The service runs modules on wasmtime and the playground on the browser's
//! WebAssembly; both implement only [`ModuleRuntime`] (move bytes in and out
//! of a fresh instance) and share everything here, so a module behaves the
//! same in both.

use tocsin_abi::{
    ErrorCode, EvalRequest, EvalResponse, Message, QueryReply, QueryRequest, RangeQueryRequest,
    Series as AbiSeries, SeriesRequest,
};

use crate::labels::{Labels, is_legacy_label_name};
use crate::promql::{Engine, InstantSample, Value, parse_series_selector};
use crate::storage::Queryable;
use crate::yaml::{Node, NodeKind, parse_yaml_bool, parse_yaml_float, parse_yaml_int};

/// Per-evaluation budgets. A module past one gets an error code (host calls)
/// or its evaluation fails with a message naming the limit (output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmLimits {
    pub max_host_calls: u32,
    /// Samples all of one evaluation's queries may return together.
    pub max_query_samples: usize,
    /// Bytes of one encoded query reply.
    pub max_reply_bytes: usize,
    pub max_output_samples: usize,
    /// Bytes of the encoded response (samples, state, logs).
    pub max_output_bytes: usize,
    pub max_state_bytes: usize,
    pub max_log_lines: usize,
    pub max_log_line_bytes: usize,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            max_host_calls: 1_000,
            max_query_samples: 5_000_000,
            max_reply_bytes: 64 << 20,
            max_output_samples: 10_000,
            max_output_bytes: 16 << 20,
            max_state_bytes: 1 << 20,
            max_log_lines: 100,
            max_log_line_bytes: 1_024,
        }
    }
}

/// Runs one evaluation of a module in a fresh instance: allocate, copy the
/// request in, call `tocsin_evaluate`, answer the module's imports through
/// `host`, copy the response out. Implementations enforce CPU and memory
/// limits and turn traps into errors (using [`HostCalls::panic_message`] when
/// the guest sent one).
pub trait ModuleRuntime {
    fn run(
        &self,
        module: &str,
        request: &[u8],
        host: &mut HostCalls<'_>,
    ) -> Result<Vec<u8>, String>;

    /// The output and host-call budgets of this runtime's evaluations.
    fn limits(&self) -> WasmLimits {
        WasmLimits::default()
    }
}

/// The imports of one evaluation: queries over `storage` at most
/// [`WasmLimits::max_host_calls`] times, the pending reply `take_reply`
/// copies out, and a panic message.
pub struct HostCalls<'a> {
    engine: &'a Engine,
    storage: &'a dyn Queryable,
    limits: &'a WasmLimits,
    calls: u32,
    samples: usize,
    pending: Option<Vec<u8>>,
    panic: Option<String>,
}

impl<'a> HostCalls<'a> {
    pub fn new(engine: &'a Engine, storage: &'a dyn Queryable, limits: &'a WasmLimits) -> Self {
        HostCalls { engine, storage, limits, calls: 0, samples: 0, pending: None, panic: None }
    }

    /// `tocsin_v1::query`: returns the reply's length or a negative code.
    pub fn query(&mut self, request: &[u8]) -> i32 {
        self.call(request, |h, bytes| {
            let r = QueryRequest::decode(bytes).map_err(|_| ErrorCode::BadMessage)?;
            Ok(h.answer(h.engine.instant(h.storage, &r.expr, r.ts_ms).map(|q| q.value)))
        })
    }

    /// `tocsin_v1::query_range`.
    pub fn query_range(&mut self, request: &[u8]) -> i32 {
        self.call(request, |h, bytes| {
            let r = RangeQueryRequest::decode(bytes).map_err(|_| ErrorCode::BadMessage)?;
            let v = h.engine.range(h.storage, &r.expr, r.start_ms, r.end_ms, r.step_ms);
            Ok(h.answer(v.map(|q| q.value)))
        })
    }

    /// `tocsin_v1::series`: raw samples of every series matching any selector.
    pub fn series(&mut self, request: &[u8]) -> i32 {
        self.call(request, |h, bytes| {
            let r = SeriesRequest::decode(bytes).map_err(|_| ErrorCode::BadMessage)?;
            Ok(h.raw_series(&r))
        })
    }

    /// `tocsin_v1::take_reply`: the pending reply, when `len` is its length.
    pub fn take_reply(&mut self, len: usize) -> Result<Vec<u8>, i32> {
        match self.pending.take() {
            Some(r) if r.len() == len => Ok(r),
            other => {
                self.pending = other;
                Err(ErrorCode::NoReply as i32)
            }
        }
    }

    /// `tocsin_v1::panic`: kept (truncated) to explain the trap that follows.
    pub fn panic(&mut self, message: &[u8]) {
        let text = String::from_utf8_lossy(message);
        self.panic = Some(truncate(&text, self.limits.max_log_line_bytes));
    }

    pub fn panic_message(&self) -> Option<&str> {
        self.panic.as_deref()
    }

    pub fn calls(&self) -> u32 {
        self.calls
    }

    fn call(
        &mut self,
        request: &[u8],
        f: impl FnOnce(&mut Self, &[u8]) -> Result<QueryReply, ErrorCode>,
    ) -> i32 {
        if self.calls >= self.limits.max_host_calls {
            return ErrorCode::CallLimit as i32;
        }
        self.calls += 1;
        let reply = match f(self, request) {
            Ok(r) => r.encode(),
            Err(code) => return code as i32,
        };
        if reply.len() > self.limits.max_reply_bytes || reply.len() > i32::MAX as usize {
            return ErrorCode::ReplyTooLarge as i32;
        }
        let len = reply.len() as i32;
        self.pending = Some(reply);
        len
    }

    /// Counts samples against the evaluation's budget; `Err` once it is spent.
    fn budget(&mut self, n: usize) -> Result<(), QueryReply> {
        self.samples += n;
        if self.samples > self.limits.max_query_samples {
            return Err(QueryReply::Error(format!(
                "query budget exceeded: this evaluation's queries returned more than {} samples",
                self.limits.max_query_samples
            )));
        }
        Ok(())
    }

    fn answer(&mut self, v: Result<Value, crate::promql::QueryError>) -> QueryReply {
        // The ABI carries floats; a histogram must not pass as the 0 its
        // float field holds.
        let histograms = match &v {
            Ok(Value::Vector(samples)) => samples.iter().any(|s| s.h.is_some()),
            Ok(Value::Matrix(series)) => series.iter().any(|s| !s.histograms.is_empty()),
            _ => false,
        };
        if histograms {
            return QueryReply::Error(
                "the query returned native histogram samples, which rules cannot receive yet; \
                 use histogram_count(), histogram_sum() or histogram_avg() to get floats"
                    .into(),
            );
        }
        let series = match v {
            Err(e) => return QueryReply::Error(e.to_string()),
            Ok(Value::Scalar { t, v }) => vec![abi_series(&Labels::empty(), vec![t], vec![v])],
            Ok(Value::Vector(samples)) => {
                samples.into_iter().map(|s| abi_series(&s.labels, vec![s.t], vec![s.v])).collect()
            }
            Ok(Value::Matrix(series)) => series
                .into_iter()
                .map(|s| {
                    let (ts, vs) = s.points.iter().map(|p| (p.t, p.v)).unzip();
                    abi_series(&s.labels, ts, vs)
                })
                .collect(),
            Ok(Value::String { .. }) => {
                return QueryReply::Error("string results cannot be returned to a rule".into());
            }
        };
        let n = series.iter().map(|s| s.timestamps.len()).sum();
        match self.budget(n) {
            Ok(()) => QueryReply::Series(series),
            Err(e) => e,
        }
    }

    fn raw_series(&mut self, r: &SeriesRequest) -> QueryReply {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for selector in &r.matchers {
            let sets = match parse_series_selector(selector) {
                Ok(s) => s,
                Err(e) => return QueryReply::Error(e.to_string()),
            };
            for set in sets {
                let found = match self.storage.select(&set, r.start_ms, r.end_ms) {
                    Ok(f) => f,
                    Err(e) => return QueryReply::Error(e.to_string()),
                };
                for s in found {
                    buf.clear();
                    if let Err(e) = self.storage.samples(s.id, r.start_ms, r.end_ms, &mut buf) {
                        return QueryReply::Error(e.to_string());
                    }
                    if let Err(e) = self.budget(buf.len()) {
                        return e;
                    }
                    let (ts, vs) = buf.iter().map(|p| (p.t, p.v)).unzip();
                    out.push(abi_series(&s.labels, ts, vs));
                }
            }
        }
        QueryReply::Series(out)
    }
}

fn abi_series(labels: &Labels, ts: Vec<i64>, vs: Vec<f64>) -> AbiSeries {
    AbiSeries {
        labels: labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect(),
        timestamps: ts,
        values: vs,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A rule's `config:` as JSON text, the form modules read it in. YAML
/// scalars are typed as YAML 1.2's core schema types them; JSON has no
/// NaN or infinities, so those become strings.
pub fn config_json(config: Option<&Node>) -> String {
    fn write(n: &Node, out: &mut String) {
        match &n.kind {
            NodeKind::Scalar { value, quoted, .. } => {
                if *quoted {
                    push_json_str(out, value);
                } else if value.is_empty() || value == "~" || value == "null" {
                    out.push_str("null");
                } else if let Some(b) = parse_yaml_bool(value) {
                    out.push_str(if b { "true" } else { "false" });
                } else if let Some(i) = parse_yaml_int(value) {
                    out.push_str(&i.to_string());
                } else if let Some(f) = parse_yaml_float(value).filter(|f| f.is_finite()) {
                    out.push_str(&format!("{f:?}"));
                } else {
                    push_json_str(out, value);
                }
            }
            NodeKind::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            NodeKind::Map(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let key = match &k.kind {
                        NodeKind::Scalar { value, .. } => value.clone(),
                        _ => String::new(),
                    };
                    push_json_str(out, &key);
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    match config {
        Some(n) => write(n, &mut out),
        None => out.push_str("null"),
    }
    out
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One output sample of a module, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleSample {
    pub sample: InstantSample,
    pub annotations: Vec<(String, String)>,
}

/// What one evaluation produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModuleOutput {
    pub samples: Vec<ModuleSample>,
    pub logs: Vec<String>,
}

/// Evaluates `module` once: builds the request from the rule's config and
/// the state the last evaluation left, runs it, checks the response against
/// `limits`, and replaces `state` with the new one.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    runtime: &dyn ModuleRuntime,
    module: &str,
    config: Option<&Node>,
    ts: i64,
    interval_ms: i64,
    state: &mut Vec<u8>,
    engine: &Engine,
    storage: &dyn Queryable,
    limits: &WasmLimits,
) -> Result<ModuleOutput, String> {
    let request = EvalRequest {
        ts_ms: ts,
        interval_ms,
        config: config_json(config).into_bytes(),
        state: state.clone(),
    }
    .encode();
    let mut host = HostCalls::new(engine, storage, limits);
    let bytes = runtime.run(module, &request, &mut host)?;
    if bytes.len() > limits.max_output_bytes {
        return Err(format!(
            "module {module:?} returned {} bytes, more than the limit of {}",
            bytes.len(),
            limits.max_output_bytes
        ));
    }
    let resp = EvalResponse::decode(&bytes)
        .map_err(|e| format!("module {module:?} returned a malformed response: {e}"))?;
    let logs: Vec<String> = resp
        .logs
        .iter()
        .take(limits.max_log_lines)
        .map(|l| truncate(l, limits.max_log_line_bytes))
        .collect();
    if let Some(e) = resp.error {
        return Err(format!("module {module:?}: {}", truncate(&e, limits.max_log_line_bytes)));
    }
    if resp.samples.len() > limits.max_output_samples {
        return Err(format!(
            "module {module:?} returned {} samples, more than the limit of {}",
            resp.samples.len(),
            limits.max_output_samples
        ));
    }
    let mut samples = Vec::with_capacity(resp.samples.len());
    for s in resp.samples {
        for (name, _) in s.labels.iter().chain(&s.annotations) {
            if !is_legacy_label_name(name) && name != "__name__" {
                return Err(format!("module {module:?} returned an invalid label name {name:?}"));
            }
        }
        let labels = Labels::from_pairs(&s.labels);
        if labels.len() != s.labels.len() {
            return Err(format!("module {module:?} returned a duplicate label in {labels}"));
        }
        samples.push(ModuleSample {
            sample: InstantSample::float(labels, ts, s.value),
            annotations: s.annotations,
        });
    }
    if let Some(new_state) = resp.state {
        if new_state.len() > limits.max_state_bytes {
            return Err(format!(
                "module {module:?} kept {} bytes of state, more than the limit of {}",
                new_state.len(),
                limits.max_state_bytes
            ));
        }
        *state = new_state;
    }
    Ok(ModuleOutput { samples, logs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Head;
    use tocsin_abi::OutSample;

    /// A runtime that plays a module natively: it makes one query and
    /// answers with the result and a counter kept in its state.
    struct Scripted;

    impl ModuleRuntime for Scripted {
        fn run(
            &self,
            _: &str,
            request: &[u8],
            host: &mut HostCalls<'_>,
        ) -> Result<Vec<u8>, String> {
            let req = EvalRequest::decode(request).map_err(|e| e.to_string())?;
            let q = QueryRequest { ts_ms: req.ts_ms, expr: "sum(x)".into() }.encode();
            let n = host.query(&q);
            let reply =
                QueryReply::decode(&host.take_reply(n as usize).map_err(|c| c.to_string())?)
                    .map_err(|e| e.to_string())?;
            let QueryReply::Series(s) = reply else { return Err("query failed".into()) };
            let count = req.state.first().copied().unwrap_or(0) + 1;
            Ok(EvalResponse {
                samples: vec![OutSample {
                    labels: vec![("config".into(), String::from_utf8_lossy(&req.config).into())],
                    value: s[0].values[0],
                    annotations: vec![("summary".into(), format!("run {count}"))],
                }],
                state: Some(vec![count]),
                logs: vec!["hello".into()],
                error: None,
            }
            .encode())
        }
    }

    #[test]
    fn an_evaluation_round_trip() {
        let head = Head::default();
        head.append_labels(&Labels::from_pairs(&[("__name__", "x")]), 1000, 4.0).unwrap();
        let engine = Engine::default();
        let limits = WasmLimits::default();
        let cfg = crate::yaml::parse("{beta: 1, name: \"a\", on: true, f: 0.5}").unwrap().root;
        let mut state = Vec::new();
        for run in 1..=2u8 {
            let out = evaluate(
                &Scripted,
                "m",
                cfg.as_ref(),
                1000,
                60_000,
                &mut state,
                &engine,
                &head,
                &limits,
            )
            .unwrap();
            assert_eq!(state, vec![run]);
            assert_eq!(out.logs, vec!["hello"]);
            let s = &out.samples[0];
            assert_eq!(s.sample.v, 4.0);
            assert_eq!(
                s.sample.labels.get("config"),
                Some(r#"{"beta":1,"name":"a","on":true,"f":0.5}"#)
            );
            assert_eq!(s.annotations, vec![("summary".to_owned(), format!("run {run}"))]);
        }
    }

    #[test]
    fn host_call_budget_and_bad_messages() {
        let head = Head::default();
        let engine = Engine::default();
        let limits = WasmLimits { max_host_calls: 2, ..Default::default() };
        let mut h = HostCalls::new(&engine, &head, &limits);
        assert_eq!(h.query(b"garbage"), ErrorCode::BadMessage as i32);
        let q = QueryRequest { ts_ms: 0, expr: "sum(".into() }.encode();
        let n = h.query(&q);
        assert!(n > 0);
        assert_eq!(h.take_reply(n as usize + 1), Err(ErrorCode::NoReply as i32));
        let reply = QueryReply::decode(&h.take_reply(n as usize).unwrap()).unwrap();
        assert!(matches!(reply, QueryReply::Error(e) if e.contains("parse error")));
        assert_eq!(h.query(&q), ErrorCode::CallLimit as i32);
    }

    #[test]
    fn outputs_are_checked() {
        struct Returns(EvalResponse);
        impl ModuleRuntime for Returns {
            fn run(&self, _: &str, _: &[u8], _: &mut HostCalls<'_>) -> Result<Vec<u8>, String> {
                Ok(self.0.encode())
            }
        }
        let head = Head::default();
        let engine = Engine::default();
        let limits = WasmLimits { max_output_samples: 1, ..Default::default() };
        let run = |resp: EvalResponse| {
            let mut state = Vec::new();
            evaluate(&Returns(resp), "m", None, 0, 1, &mut state, &engine, &head, &limits)
        };
        let sample = |name: &str| OutSample {
            labels: vec![(name.into(), "v".into())],
            value: 1.0,
            annotations: vec![],
        };
        let e = run(EvalResponse { samples: vec![sample("a"), sample("b")], ..Default::default() });
        assert!(e.unwrap_err().contains("2 samples, more than the limit of 1"));
        let e = run(EvalResponse { samples: vec![sample("bad-name")], ..Default::default() });
        assert!(e.unwrap_err().contains("invalid label name \"bad-name\""));
        let e = run(EvalResponse { error: Some("no data".into()), ..Default::default() });
        assert_eq!(e.unwrap_err(), "module \"m\": no data");
        let mut state = Vec::new();
        struct Garbage;
        impl ModuleRuntime for Garbage {
            fn run(&self, _: &str, _: &[u8], _: &mut HostCalls<'_>) -> Result<Vec<u8>, String> {
                Ok(b"TCSN\xff".to_vec())
            }
        }
        let e = evaluate(&Garbage, "m", None, 0, 1, &mut state, &engine, &head, &limits);
        assert!(e.unwrap_err().contains("malformed response"));
    }
}
