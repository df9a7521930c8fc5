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

    pub fn invalid_quantile(&mut self, q: f64) {
        self.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            gofmt::format_float_g(q)
        ));
    }

    pub fn invalid_ratio(&mut self, r: f64, capped: f64) {
        self.warn(format!(
            "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
            gofmt::format_float_g(r),
            gofmt::format_float_g(capped)
        ));
    }

    pub fn bad_bucket_label(&mut self, metric_name: &str, le: &str) {
        let mut msg = format!(
            "PromQL warning: bucket label \"le\" is missing or has a malformed value of {}",
            gofmt::quote(le)
        );
        push_metric_name(&mut msg, metric_name);
        self.warn(msg);
    }

    pub fn possible_non_counter(&mut self, metric_name: &str) {
        self.info(format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
            gofmt::quote(metric_name)
        ));
    }

    pub fn forced_monotonicity(&mut self, metric_name: &str) {
        let mut msg = "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_owned();
        push_metric_name(&mut msg, metric_name);
        self.info(msg);
    }

    pub fn sort_in_range_query(&mut self) {
        self.warn(
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
                .to_owned(),
        );
    }
}

fn push_metric_name(msg: &mut String, metric_name: &str) {
    if !metric_name.is_empty() {
        msg.push_str(" for metric name ");
        msg.push_str(&gofmt::quote(metric_name));
    }
}
