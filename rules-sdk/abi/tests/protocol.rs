//! One evaluation end to end, host side simulated over byte buffers: the host
//! encodes a request, the guest (the SDK's native path, i.e. `tocsin_evaluate`
//! without the pointers) evaluates and queries back through the import
//! protocol, and the host decodes the response.

use tocsin_abi::{
    ErrorCode, EvalRequest, EvalResponse, Message, QueryReply, QueryRequest, STALE_NAN_BITS, Series,
};
use tocsin_rules_sdk::{Call, Context, Error, Host, Output, evaluate_encoded};

/// A host with one series and a budget of host calls, as the real host has.
struct FakeHost {
    calls_left: u32,
}

impl Host for FakeHost {
    fn call(&mut self, call: Call, request: &[u8]) -> Result<Vec<u8>, ErrorCode> {
        self.calls_left = self.calls_left.checked_sub(1).ok_or(ErrorCode::CallLimit)?;
        assert_eq!(call, Call::Query);
        let req = QueryRequest::decode(request).map_err(|_| ErrorCode::BadMessage)?;
        let reply = match req.expr.as_str() {
            "up" => QueryReply::Series(vec![Series::new(
                [("job", "api")],
                [(req.ts_ms, f64::from_bits(STALE_NAN_BITS))],
            )]),
            other => QueryReply::Error(format!("unknown metric {other}")),
        };
        Ok(reply.encode())
    }
}

#[derive(tocsin_rules_sdk::serde::Serialize, tocsin_rules_sdk::serde::Deserialize)]
#[serde(crate = "tocsin_rules_sdk::serde")]
struct Seen {
    evaluations: u32,
}

fn passthrough(ctx: &mut Context) -> Result<Output, Error> {
    let seen = ctx.state::<Seen>()?.map_or(0, |s| s.evaluations);
    ctx.set_state(&Seen { evaluations: seen + 1 })?;
    ctx.log(format!("evaluation {}", seen + 1));
    let limit: Option<u32> = ctx.config()?;
    let mut out = Output::new();
    for _ in 0..limit.unwrap_or(1) {
        for s in ctx.query("up")? {
            let (_, v) = s.last().ok_or_else(|| Error::msg("empty series"))?;
            out = out.sample(s.labels, v);
        }
    }
    Ok(out)
}

fn panics(_: &mut Context) -> Result<Output, Error> {
    panic!("index out of range")
}

fn evaluate(rule: tocsin_rules_sdk::RuleFn, request: &EvalRequest, calls: u32) -> EvalResponse {
    // What the host does with guest memory: the request goes into a buffer the
    // guest allocated, the response comes back as bytes it copies out.
    let mut guest_buffer = vec![0u8; request.encode().len()];
    guest_buffer.copy_from_slice(&request.encode());
    let response = evaluate_encoded(rule, &guest_buffer, Box::new(FakeHost { calls_left: calls }))
        .expect("well-formed request");
    EvalResponse::decode(&response).expect("guest response decodes")
}

#[test]
fn evaluation_round_trip_keeps_state_logs_and_stale_nan() {
    let request = EvalRequest { ts_ms: 1_000, interval_ms: 15_000, config: vec![], state: vec![] };
    let first = evaluate(passthrough, &request, 10);
    assert_eq!(first.error, None);
    assert_eq!(first.logs, ["evaluation 1"]);
    assert_eq!(first.samples.len(), 1);
    assert_eq!(first.samples[0].labels, [("job".to_string(), "api".to_string())]);
    assert_eq!(first.samples[0].value.to_bits(), STALE_NAN_BITS);

    // The host persists the state bytes and hands them back next time.
    let state = first.state.expect("state saved");
    let second = evaluate(passthrough, &EvalRequest { ts_ms: 16_000, state, ..request }, 10);
    assert_eq!(second.logs, ["evaluation 2"]);
}

#[test]
fn host_call_limit_reaches_the_rule_as_an_error() {
    let request = EvalRequest { ts_ms: 0, interval_ms: 1, config: b"5".to_vec(), state: vec![] };
    let response = evaluate(passthrough, &request, 3);
    assert_eq!(response.error.as_deref(), Some("query `up`: host call limit reached"));
    assert!(response.samples.is_empty() && response.state.is_none());
    assert_eq!(response.logs, ["evaluation 1"]);
}

#[test]
fn panics_and_bad_requests() {
    let response = evaluate(panics, &EvalRequest::default(), 1);
    assert_eq!(response.error.as_deref(), Some("rule panicked: index out of range"));

    let garbage =
        evaluate_encoded(passthrough, b"not a message", Box::new(FakeHost { calls_left: 1 }));
    assert_eq!(garbage, Err(ErrorCode::BadMessage));
}
