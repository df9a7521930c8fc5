//! Warnings and infos attached to a query result, worded as Prometheus words them.

use crate::gofmt;

/// The annotations of one query, deduplicated, in the order first raised.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    pub fn merge(&mut self, other: Annotations) {
        for w in other.warnings {
            self.warn(w);
        }
        for i in other.infos {
            self.info(i);
        }
    }
}

/// Whether an annotation is a warning (the result may be wrong) or an info
/// (the query may not do what was meant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Level {
    Warning,
    Info,
}

/// One annotation before its position is attached.
pub(crate) struct Note {
    pub level: Level,
    pub text: String,
}

fn warning(text: String) -> Note {
    Note { level: Level::Warning, text: format!("PromQL warning: {text}") }
}

fn info(text: String) -> Note {
    Note { level: Level::Info, text: format!("PromQL info: {text}") }
}

fn with_metric_name(mut text: String, metric_name: &str) -> String {
    if !metric_name.is_empty() {
        text.push_str(" for metric name ");
        text.push_str(&gofmt::quote(metric_name));
    }
    text
}

pub(crate) fn invalid_quantile(q: f64) -> Note {
    warning(format!("quantile value should be between 0 and 1, got {}", gofmt::format_float_g(q)))
}

pub(crate) fn invalid_ratio(r: f64, capped: f64) -> Note {
    warning(format!(
        "ratio value should be between -1 and 1, got {}, capping to {}",
        gofmt::format_float_g(r),
        gofmt::format_float_g(capped)
    ))
}

pub(crate) fn bad_bucket_label(metric_name: &str, le: &str) -> Note {
    warning(with_metric_name(
        format!("bucket label \"le\" is missing or has a malformed value of {}", gofmt::quote(le)),
        metric_name,
    ))
}

pub(crate) fn possible_non_counter(metric_name: &str) -> Note {
    info(format!(
        "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
        gofmt::quote(metric_name)
    ))
}

pub(crate) fn forced_monotonicity(metric_name: &str) -> Note {
    info(with_metric_name(
        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_owned(),
        metric_name,
    ))
}

pub(crate) fn sort_in_range_query() -> Note {
    warning(
        "sort is ineffective for range queries since results are always ordered by labels"
            .to_owned(),
    )
}
