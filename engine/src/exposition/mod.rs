//! Exposition formats: parsing scrape bodies and ingesting them into the head.
//!
//! Two text formats are understood, chosen by the caller (the host maps the
//! HTTP `Content-Type` with [`Format::from_content_type`]):
//! - the Prometheus text format 0.0.4, and
//! - OpenMetrics 1.0 text (`# UNIT`, float-second timestamps, exemplars,
//!   mandatory final `# EOF`).
//!
//! Both accept the quoted UTF-8 metric and label names of Prometheus 3
//! (`{"my.metric", "label.name"="v"} 1`). The grammar, the accepted number
//! spellings and the validation follow Prometheus's own parsers
//! (`model/textparse`) and scrape loop; where tocsin is deliberately stricter
//! or differs, the parser's docs say so.
//!
//! [`Parser`] is a zero-copy pull parser: strings borrow from the input unless
//! they contain escapes. [`Ingester`] appends whole bodies to a
//! [`Head`](crate::storage::Head) through a per-target cache of series text, so
//! that a steady-state scrape neither builds label sets nor hashes them.
//!
//! Errors carry 1-based line and column. A body with a malformed line is
//! rejected whole by default, as Prometheus fails such a scrape, and nothing
//! of it is appended; see [`ErrorPolicy`] for the alternative of skipping
//! bad lines (bulk imports).

mod error;
mod float;
mod ingest;
mod parser;

pub use error::{ErrorKind, Found, ParseError};
pub use ingest::{ErrorPolicy, IngestReport, Ingester, MAX_REPORTED_ERRORS, Relabel};
pub use parser::{Entry, Parser, SampleLine};

/// An exposition text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    PrometheusText,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// The format of a response with this `Content-Type`, as Prometheus
    /// chooses it; `None` for anything else (including the protobuf format),
    /// where a scraper applies its configured fallback.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else if media_type.eq_ignore_ascii_case("text/plain") {
            Some(Format::PrometheusText)
        } else {
            None
        }
    }
}

/// A metric family's type, from its `# TYPE` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// No `# TYPE` line, or OpenMetrics `unknown`, or Prometheus `untyped`.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name Prometheus uses in its metadata API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        assert_eq!(Format::from_content_type(om), Some(Format::OpenMetrics));
        let text = "text/plain; version=0.0.4; charset=utf-8";
        assert_eq!(Format::from_content_type(text), Some(Format::PrometheusText));
        assert_eq!(Format::from_content_type("Text/Plain"), Some(Format::PrometheusText));
        let proto = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily";
        assert_eq!(Format::from_content_type(proto), None);
        assert_eq!(Format::from_content_type(""), None);
    }

    #[test]
    fn metric_type_names() {
        assert_eq!(MetricType::GaugeHistogram.as_str(), "gaugehistogram");
        assert_eq!(MetricType::default().as_str(), "unknown");
    }
}
