//! Query results.

use std::sync::Arc;

use crate::histogram::FloatHistogram;
use crate::labels::Labels;
use crate::sample::{HistogramSample, Sample};

/// One element of an instant vector: a float `v`, or a native histogram
/// `h` (and then `v` is 0, as in Prometheus).
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub h: Option<Arc<FloatHistogram>>,
}

impl InstantSample {
    /// A float sample.
    pub fn float(labels: Labels, t: i64, v: f64) -> Self {
        InstantSample { labels, t, v, h: None }
    }
}

/// A series of a range vector or of a range query's result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Sample>,
    /// Native histogram samples, at timestamps `points` does not have.
    pub histograms: Vec<HistogramSample>,
}

/// The value of a query, shaped like Prometheus's API result types.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
    Vector(Vec<InstantSample>),
    Matrix(Vec<Series>),
}

/// A value plus the annotations Prometheus would attach to it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    /// "PromQL warning: ..." annotations: the result may be wrong.
    pub warnings: Vec<String>,
    /// "PromQL info: ..." annotations: the query may not do what was meant.
    pub infos: Vec<String>,
}
