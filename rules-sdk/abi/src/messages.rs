//! The six messages of ABI v1. Field order here is the wire order; the README
//! has the same layouts as tables.

use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::{DecodeError, Message, Reader, Writer};

/// Label pairs in the order the producer chose. The ABI does not sort or
/// validate them: the host applies Prometheus's label rules to what a rule returns.
pub type Labels = Vec<(String, String)>;

/// Host to guest: evaluate once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EvalRequest {
    /// Evaluation timestamp, milliseconds since the Unix epoch: the only clock a
    /// rule sees, which keeps backtests and the live host identical.
    pub ts_ms: i64,
    /// The rule group's evaluation interval in milliseconds.
    pub interval_ms: i64,
    /// The rule's `config:` from the rule file, converted by the host from YAML to
    /// JSON text (empty when the rule has none). JSON is enough here although it
    /// has no NaN: config is written by people as plain numbers and strings, and
    /// the host rejects a non-finite float in it rather than passing `null`.
    pub config: Vec<u8>,
    /// The state bytes the module returned last time, empty on the first run.
    pub state: Vec<u8>,
}

/// A sample a rule returns: a recorded series for `record:` rules, an alert
/// candidate for `alert:` rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutSample {
    pub labels: Labels,
    pub value: f64,
    /// Per-sample annotations, merged over the rule file's annotations.
    pub annotations: Labels,
}

/// Guest to host: the result of one evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvalResponse {
    pub samples: Vec<OutSample>,
    /// New state; `None` keeps the previous state, `Some(empty)` clears it.
    pub state: Option<Vec<u8>>,
    pub logs: Vec<String>,
    /// The rule failed with this message. The host then discards `samples` and
    /// `state` but keeps `logs`, as a PromQL rule error keeps its previous state.
    pub error: Option<String>,
}

/// Guest to host: a PromQL instant query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryRequest {
    pub ts_ms: i64,
    pub expr: String,
}

/// Guest to host: a PromQL range query over `[start_ms, end_ms]` every `step_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeQueryRequest {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub expr: String,
}

/// Guest to host: the raw samples in `[start_ms, end_ms]` of every series that
/// matches any of the selectors (`up{job="api"}`), as `/api/v1/series` selects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesRequest {
    pub start_ms: i64,
    pub end_ms: i64,
    pub matchers: Vec<String>,
}

/// One series of a reply: labels and two equally long columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub labels: Labels,
    pub timestamps: Vec<i64>,
    /// Raw values, staleness markers included for raw series reads.
    pub values: Vec<f64>,
}

impl Series {
    /// A series from label pairs and `(timestamp_ms, value)` points.
    pub fn new<K, V>(
        labels: impl IntoIterator<Item = (K, V)>,
        points: impl IntoIterator<Item = (i64, f64)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let (timestamps, values) = points.into_iter().unzip();
        Self {
            labels: labels.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            timestamps,
            values,
        }
    }

    /// The value of a label, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The last point, which for an instant query is the only one.
    pub fn last(&self) -> Option<(i64, f64)> {
        Some((*self.timestamps.last()?, *self.values.last()?))
    }

    /// Iterates over `(timestamp_ms, value)` points.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.timestamps.iter().copied().zip(self.values.iter().copied())
    }
}

/// Host to guest: the answer to any of the three query requests. An instant
/// query's vector is one point per series at the query time; a scalar is one
/// series with no labels; a string result is an error.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryReply {
    Series(Vec<Series>),
    /// The query failed (parse error, timeout, limit); the message is for humans.
    Error(String),
}

fn write_labels(w: &mut Writer, labels: &[(String, String)]) {
    w.len(labels.len());
    for (name, value) in labels {
        w.str(name);
        w.str(value);
    }
}

fn read_labels(r: &mut Reader<'_>) -> Result<Labels, DecodeError> {
    // Two length prefixes per pair at the least.
    let n = r.count(8)?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        labels.push((r.string()?, r.string()?));
    }
    Ok(labels)
}

fn read_strings(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    let n = r.count(4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.string()?);
    }
    Ok(out)
}

fn write_strings(w: &mut Writer, strings: &[String]) {
    w.len(strings.len());
    for s in strings {
        w.str(s);
    }
}

impl Message for EvalRequest {
    const KIND: u8 = 1;

    fn write_body(&self, w: &mut Writer) {
        w.i64(self.ts_ms);
        w.i64(self.interval_ms);
        w.bytes(&self.config);
        w.bytes(&self.state);
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ts_ms: r.i64()?,
            interval_ms: r.i64()?,
            config: r.bytes()?.to_vec(),
            state: r.bytes()?.to_vec(),
        })
    }
}

impl Message for EvalResponse {
    const KIND: u8 = 2;

    fn write_body(&self, w: &mut Writer) {
        w.len(self.samples.len());
        for s in &self.samples {
            write_labels(w, &s.labels);
            w.f64(s.value);
            write_labels(w, &s.annotations);
        }
        w.opt_bytes(self.state.as_deref());
        write_strings(w, &self.logs);
        w.opt_bytes(self.error.as_deref().map(str::as_bytes));
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Label count, value, annotation count.
        let n = r.count(16)?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            samples.push(OutSample {
                labels: read_labels(r)?,
                value: r.f64()?,
                annotations: read_labels(r)?,
            });
        }
        let state = r.opt_bytes()?.map(<[u8]>::to_vec);
        let logs = read_strings(r)?;
        let error_at = r.pos();
        let error = match r.opt_bytes()? {
            None => None,
            Some(b) => Some(
                core::str::from_utf8(b)
                    .map_err(|_| DecodeError::InvalidUtf8 { offset: error_at + 1 })?
                    .into(),
            ),
        };
        Ok(Self { samples, state, logs, error })
    }
}

impl Message for QueryRequest {
    const KIND: u8 = 3;

    fn write_body(&self, w: &mut Writer) {
        w.i64(self.ts_ms);
        w.str(&self.expr);
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { ts_ms: r.i64()?, expr: r.string()? })
    }
}

impl Message for RangeQueryRequest {
    const KIND: u8 = 4;

    fn write_body(&self, w: &mut Writer) {
        w.i64(self.start_ms);
        w.i64(self.end_ms);
        w.i64(self.step_ms);
        w.str(&self.expr);
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { start_ms: r.i64()?, end_ms: r.i64()?, step_ms: r.i64()?, expr: r.string()? })
    }
}

impl Message for SeriesRequest {
    const KIND: u8 = 5;

    fn write_body(&self, w: &mut Writer) {
        w.i64(self.start_ms);
        w.i64(self.end_ms);
        write_strings(w, &self.matchers);
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { start_ms: r.i64()?, end_ms: r.i64()?, matchers: read_strings(r)? })
    }
}

impl Message for QueryReply {
    const KIND: u8 = 6;

    fn write_body(&self, w: &mut Writer) {
        match self {
            QueryReply::Series(series) => {
                w.u8(0);
                w.len(series.len());
                for s in series {
                    write_labels(w, &s.labels);
                    // Columns must be equally long; a mismatched Series is cut to
                    // its shorter column rather than producing an undecodable reply.
                    let n = s.timestamps.len().min(s.values.len());
                    w.len(n);
                    w.align8();
                    s.timestamps[..n].iter().for_each(|&t| w.i64(t));
                    s.values[..n].iter().for_each(|&v| w.f64(v));
                }
            }
            QueryReply::Error(msg) => {
                w.u8(1);
                w.str(msg);
            }
        }
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag_at = r.pos();
        match r.u8()? {
            0 => {
                // Label count and point count.
                let n = r.count(8)?;
                let mut series = Vec::with_capacity(n);
                for _ in 0..n {
                    let labels = read_labels(r)?;
                    let points = r.count(16)?;
                    r.align8()?;
                    let timestamps = r.column(points, i64::from_le_bytes)?;
                    let values = r.column(points, |w| f64::from_bits(u64::from_le_bytes(w)))?;
                    series.push(Series { labels, timestamps, values });
                }
                Ok(QueryReply::Series(series))
            }
            1 => Ok(QueryReply::Error(r.string()?)),
            tag => Err(DecodeError::BadTag { offset: tag_at, tag }),
        }
    }
}
