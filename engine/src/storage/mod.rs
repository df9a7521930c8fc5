//! Series storage: the [`Queryable`] seam PromQL reads through, and the
//! in-memory [`Head`] that implements it.
//!
//! - [`chunk`]: compressed chunks (delta-of-delta timestamps, Gorilla XOR
//!   values); public so durability in the host can persist and reload them.
//! - `series`: one series' chunks, packed into a single buffer.
//! - `postings`: the inverted index that resolves label matchers.
//! - [`head`]: series creation, appends, retention and queries, and the
//!   [`AppendLog`] hook through which the host makes appends durable.
//!
//! Measured by `cargo bench -p tocsin-engine --bench storage` (throughput and
//! latency) and `--bench storage_memory` (bytes per series and per sample).

pub mod chunk;
pub mod head;
#[cfg(test)]
mod model_test;
mod postings;
mod series;

pub use head::{
    AppendError, AppendLog, AppendSummary, Head, HeadMemory, HeadOptions, HeadStats,
    HistogramAppendError, SeriesHandle,
};

use crate::labels::{Labels, Str};
use crate::matcher::Matcher;
use crate::sample::{HistogramSample, Sample};

/// Opaque id of a series, valid for the [`Queryable`] that returned it.
pub type SeriesId = u64;

/// A series found by [`Queryable::select`].
#[derive(Clone, Debug)]
pub struct SelectedSeries {
    pub id: SeriesId,
    pub labels: Labels,
    /// The head's own reference, which spares [`Queryable::samples_of`]
    /// finding the series again by id.
    pub(crate) series: Option<SeriesHandle>,
}

/// Errors a data source can report to a query.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("series {0} not found")]
    SeriesNotFound(SeriesId),
    #[error("{0}")]
    Source(String),
}

/// Read access to series data. PromQL evaluates over anything implementing this:
/// the local [`Head`], or later a remote Prometheus-compatible store.
///
/// Timestamps are inclusive milliseconds. Implementations must be cheap to call
/// many times per query: the evaluator selects once per selector and then reads
/// each series' samples once.
pub trait Queryable {
    /// Series matching every matcher that may hold samples in `[mint, maxt]`,
    /// sorted by labels.
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries>, StorageError>;

    /// Appends the samples of series `id` in `[mint, maxt]` to `out`, in time order.
    fn samples(
        &self,
        id: SeriesId,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError>;

    /// [`Queryable::samples`] of a series this source selected, which it
    /// may find faster than by id.
    fn samples_of(
        &self,
        s: &SelectedSeries,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        self.samples(s.id, mint, maxt, out)
    }

    /// The native histogram samples of a series this source selected, in
    /// `[mint, maxt]` and in time order. A series may hold floats at some
    /// times and histograms at others; a source without native histograms
    /// keeps this default.
    fn histograms_of(
        &self,
        _s: &SelectedSeries,
        _mint: i64,
        _maxt: i64,
        _out: &mut Vec<HistogramSample>,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    /// Sorted, distinct label names of the series matching `matchers`
    /// (all series when empty) with samples in `[mint, maxt]`.
    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Str>, StorageError>;

    /// Sorted, distinct values of label `name` among the matching series.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Str>, StorageError>;
}
