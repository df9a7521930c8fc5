//! Query results.

use crate::labels::Labels;
use crate::sample::Sample;

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A series of a range vector or of a range query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Sample>,
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
