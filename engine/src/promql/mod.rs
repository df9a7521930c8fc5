//! PromQL evaluation with Prometheus 3.x float semantics.
//!
//! Queries are parsed with the `promql-parser` crate and evaluated over any
//! [`Queryable`]. Evaluation is columnar: an expression is evaluated for all steps
//! of a query at once, series are read from storage once per selector, and work
//! that depends only on labels (grouping, matching, output label sets) is done
//! once per series rather than once per step.

mod value;

pub use value::{InstantSample, QueryResult, Series, Value};

use crate::storage::{Queryable, StorageError};

/// Errors of parsing or evaluating a query. Messages follow Prometheus's.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Eval(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Query settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample.
    pub lookback_delta_ms: i64,
    /// Upper bound on samples held in memory at once by one query.
    pub max_samples: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { lookback_delta_ms: 5 * 60 * 1000, max_samples: 50_000_000 }
    }
}

/// The PromQL engine. Stateless apart from its options.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `query` at one instant `t` (ms).
    pub fn instant(
        &self,
        _storage: &dyn Queryable,
        _query: &str,
        _t: i64,
    ) -> Result<QueryResult, QueryError> {
        Err(QueryError::Eval("PromQL evaluation is not implemented yet".into()))
    }

    /// Evaluates `query` at every step from `start` to `end` inclusive (ms).
    pub fn range(
        &self,
        _storage: &dyn Queryable,
        _query: &str,
        _start: i64,
        _end: i64,
        _step: i64,
    ) -> Result<QueryResult, QueryError> {
        Err(QueryError::Eval("PromQL evaluation is not implemented yet".into()))
    }
}
