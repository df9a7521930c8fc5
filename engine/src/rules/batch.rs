//! Evaluating a rule's expression for many steps at once, for backtests.
//!
//! A backtest evaluates every rule at each step of a long range. PromQL is
//! columnar (a range evaluation reads each series once and slides its
//! window along), so when a rule's result at a step cannot depend on what
//! the backtest itself writes, its expression is evaluated over a window of
//! upcoming steps at once and each evaluation takes its step's vector. The
//! results are those of the per-step instant queries: only expressions for
//! which that holds are batched, and an error in a window sends that rule
//! back to per-step queries, which then report it at the step it happens.

use std::collections::BTreeSet;

use crate::promql::{Engine, Expr, InstantSample, StepVectors, metric_names, steps_independent};
use crate::storage::Queryable;

/// Steps evaluated in the first window, before the result size is known.
const FIRST_WINDOW: i64 = 64;
/// The most steps one window covers.
const MAX_WINDOW: i64 = 2048;
/// Points a window aims to hold at most, to bound memory on wide results.
const WINDOW_POINTS: usize = 1 << 20;

/// One rule's batched evaluation over the query times `first + k * step`
/// up to `last`.
#[derive(Clone, Debug)]
pub struct Batch {
    first: i64,
    step: i64,
    last: i64,
    /// The steps computed, `from..=to`, and the next step expected.
    window: Option<Window>,
    next_len: i64,
    failed: bool,
}

#[derive(Clone, Debug)]
struct Window {
    to: i64,
    next: i64,
    vectors: StepVectors,
}

impl Batch {
    /// A batch for `expr`, if it may be batched: its steps are independent
    /// of the query range and it reads no metric named in `written`.
    pub fn plan(
        expr: &Expr,
        first: i64,
        step: i64,
        last: i64,
        written: &BTreeSet<String>,
    ) -> Option<Batch> {
        if step <= 0 || last < first || !steps_independent(expr) {
            return None;
        }
        let names = metric_names(expr)?;
        if names.iter().any(|n| written.contains(n)) {
            return None;
        }
        Some(Batch { first, step, last, window: None, next_len: FIRST_WINDOW, failed: false })
    }

    /// The instant vector of `expr` at `t`, if `t` is a planned step and
    /// its window evaluates without error; `None` means "query this step on
    /// its own".
    pub fn take(
        &mut self,
        engine: &Engine,
        storage: &dyn Queryable,
        expr: &Expr,
        t: i64,
    ) -> Option<Vec<InstantSample>> {
        if self.failed || t < self.first || t > self.last || (t - self.first) % self.step != 0 {
            return None;
        }
        if let Some(w) = &mut self.window
            && t >= w.next
            && t <= w.to
        {
            w.next = t + self.step;
            return Some(w.vectors.at(t));
        }
        let to = self.last.min(t + (self.next_len - 1) * self.step);
        match engine.range_vectors(storage, expr, t, to, self.step) {
            Ok(mut vectors) => {
                let steps = (to - t) / self.step + 1;
                let per_step = vectors.points().div_ceil(steps as usize).max(1);
                self.next_len = ((WINDOW_POINTS / per_step) as i64).clamp(1, MAX_WINDOW);
                let out = vectors.at(t);
                self.window = Some(Window { to, next: t + self.step, vectors });
                Some(out)
            }
            Err(_) => {
                self.failed = true;
                self.window = None;
                None
            }
        }
    }
}
