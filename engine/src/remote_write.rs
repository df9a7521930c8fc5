//! Prometheus remote write 1.0: the wire codec (snappy block format around a
//! `prometheus.WriteRequest` protobuf) and appending the decoded series to a
//! [`Head`].
//!
//! The messages are written by hand with `prost` derives, with the field
//! numbers of Prometheus's `prompb/types.proto` and `prompb/remote.proto`.
//! Label strings are decoded as bytes and checked for UTF-8 here, so a bad
//! string is reported with the series it belongs to instead of failing the
//! whole protobuf.
//!
//! Series are validated as Prometheus's write handler does (3.x, UTF-8 label
//! names): a metric name is required, names must be non-empty, names unique,
//! and labels are sorted rather than rejected when they arrive unsorted.
//! Native histograms are not stored yet; see [`WriteRequest::histograms`].

use std::fmt::Write as _;

use prost::Message;
use prost::bytes::{Buf, Bytes};
use prost::encoding::{DecodeContext, decode_key, skip_field};

use crate::gofmt;
use crate::labels::{Interner, Label, Labels, METRIC_NAME, is_legacy_label_name};
use crate::sample::Sample;
use crate::storage::{AppendError, Head};

/// How many rejections a [`WriteRequest`] or [`AppendReport`] spells out;
/// the rest are only counted, so one bad sender cannot make the error
/// response as large as its request.
pub const MAX_ERRORS: usize = 8;

/// One decoded series: labels sorted and validated, samples in request order.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Why a request, a series or a sample was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    #[error("snappy: decoded length {len} exceeds limit {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid labels for series {series}: {reason}")]
    InvalidSeries { series: String, reason: InvalidLabels },
    /// Prometheus stores them; tocsin does not yet.
    #[error("{count} native histogram samples not supported for series {series}")]
    NativeHistograms { series: String, count: usize },
    #[error("{reason} for series {series}, timestamp {t}")]
    Rejected { series: String, t: i64, reason: AppendError },
    /// Prometheus refuses samples more than 10 minutes ahead of its clock, so
    /// one wrong clock cannot block a series' present samples as out of order.
    #[error("out of bounds: timestamp is too far in the future for series {series}, timestamp {t}")]
    TooFarInFuture { series: String, t: i64 },
}

impl RemoteWriteError {
    /// The HTTP status for a request refused with this error: 413 for a body
    /// over the limit, 400 (do not retry) for everything else.
    pub fn status_hint(&self) -> u16 {
        match self {
            RemoteWriteError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// What is wrong with a series' label set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLabels {
    #[error("empty label set")]
    Empty,
    #[error("missing metric name")]
    MissingMetricName,
    #[error("empty label name")]
    EmptyName,
    #[error("duplicated label {0}")]
    Duplicate(String),
    #[error("label {0} is not valid UTF-8")]
    InvalidUtf8(String),
}

/// A decoded request, keeping the valid part of a partly invalid one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteRequest {
    pub series: Vec<TimeSeries>,
    /// Series dropped for invalid labels, and the samples (float and
    /// histogram) they held.
    pub invalid_series: usize,
    pub invalid_samples: usize,
    /// Native histogram samples dropped. The float samples of their series
    /// are kept; Prometheus's own decoder would store both.
    pub histograms: usize,
    /// The first [`MAX_ERRORS`] of the above, each naming its series.
    pub errors: Vec<RemoteWriteError>,
}

/// Decodes a request body, refusing it whole at the first invalid series or
/// native histogram. For a receiver, [`decode_request`] keeps the rest.
///
/// `max_decoded_bytes` bounds the protobuf, checked against snappy's length
/// header before anything is allocated (Prometheus allows 32 MiB).
pub fn decode(body: &[u8], max_decoded_bytes: usize) -> Result<Vec<TimeSeries>, RemoteWriteError> {
    let mut out = Vec::new();
    each_series(body, max_decoded_bytes, |converted| {
        let ts = converted?;
        match ts.histograms {
            0 => {
                out.push(ts.series);
                Ok(())
            }
            count => Err(RemoteWriteError::NativeHistograms {
                series: ts.series.labels.to_string(),
                count,
            }),
        }
    })?;
    Ok(out)
}

/// Decodes a request body. Malformed snappy or protobuf, or a body over the
/// limit, fails the whole request; an invalid series or a native histogram
/// is dropped and recorded in the result, and the rest is kept.
pub fn decode_request(
    body: &[u8],
    max_decoded_bytes: usize,
) -> Result<WriteRequest, RemoteWriteError> {
    let mut req = WriteRequest::default();
    each_series(body, max_decoded_bytes, |converted| {
        match converted {
            Ok(ts) => {
                if ts.histograms > 0 {
                    req.histograms += ts.histograms;
                    push_error(&mut req.errors, || RemoteWriteError::NativeHistograms {
                        series: ts.series.labels.to_string(),
                        count: ts.histograms,
                    });
                }
                req.series.push(ts.series);
            }
            Err(Invalid { error, samples, histograms }) => {
                req.invalid_series += 1;
                req.invalid_samples += samples + histograms;
                push_error(&mut req.errors, || error);
            }
        }
        Ok(())
    })?;
    Ok(req)
}

fn push_error(errors: &mut Vec<RemoteWriteError>, e: impl FnOnce() -> RemoteWriteError) {
    if errors.len() < MAX_ERRORS {
        errors.push(e());
    }
}

/// Encodes series as a remote write 1.0 body (protobuf, then snappy).
///
/// Values are bit-exact (staleness markers included) except `-0.0`, which
/// arrives as `0.0`: proto3 leaves a zero field out, and Prometheus's encoder
/// tests `value != 0` the same way.
///
/// # Panics
/// When the protobuf exceeds snappy's block limit of 4 GiB.
pub fn encode(series: &[TimeSeries]) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: series.iter().map(proto::TimeSeries::from).collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("remote write body over snappy's 4 GiB block limit")
}

struct Converted {
    series: TimeSeries,
    histograms: usize,
}

struct Invalid {
    error: RemoteWriteError,
    samples: usize,
    histograms: usize,
}

impl From<Invalid> for RemoteWriteError {
    fn from(i: Invalid) -> Self {
        i.error
    }
}

/// Decompresses `body` and hands every `TimeSeries` of the request to `f`,
/// converted or with the reason it is invalid.
///
/// The request is walked field by field instead of decoding a whole
/// `WriteRequest`: each series becomes compact [`TimeSeries`] before the next
/// is read, so the prost structs (96 bytes for an empty series, two bytes on
/// the wire) never exist for the whole request at once.
fn each_series(
    body: &[u8],
    max_decoded_bytes: usize,
    mut f: impl FnMut(Result<Converted, Invalid>) -> Result<(), RemoteWriteError>,
) -> Result<(), RemoteWriteError> {
    let len = snap::raw::decompress_len(body)?;
    if len > max_decoded_bytes {
        return Err(RemoteWriteError::TooLarge { len, limit: max_decoded_bytes });
    }
    // Label strings are sliced out of this buffer without copying until
    // they are interned.
    let mut buf = Bytes::from(snap::raw::Decoder::new().decompress_vec(body)?);
    let mut strings = Interner::new();
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        if tag == 1 {
            let mut ts = proto::TimeSeries::default();
            prost::encoding::message::merge(
                wire_type,
                &mut ts,
                &mut buf,
                DecodeContext::default(),
            )?;
            f(convert(ts, &mut strings))?;
        } else {
            // `metadata` (3) and anything a newer sender adds.
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
        }
    }
    Ok(())
}

fn convert(ts: proto::TimeSeries, strings: &mut Interner) -> Result<Converted, Invalid> {
    let labels = validate_labels(ts.labels, strings).map_err(|(series, reason)| Invalid {
        error: RemoteWriteError::InvalidSeries { series, reason },
        samples: ts.samples.len(),
        histograms: ts.histograms.len(),
    })?;
    let samples = ts.samples.iter().map(|s| Sample::new(s.timestamp, s.value)).collect();
    Ok(Converted { series: TimeSeries { labels, samples }, histograms: ts.histograms.len() })
}

/// Sorts and checks a series' labels in Prometheus's order of checks; the
/// error carries the series as Prometheus prints it.
fn validate_labels(
    mut raw: Vec<proto::Label>,
    strings: &mut Interner,
) -> Result<Labels, (String, InvalidLabels)> {
    crate::sort::by(&mut raw, |a, b| a.name.cmp(&b.name));
    let invalid = |raw: &[proto::Label], reason| Err((display_raw(raw), reason));
    if raw.is_empty() {
        return invalid(&raw, InvalidLabels::Empty);
    }
    let mut labels = Vec::with_capacity(raw.len());
    for l in &raw {
        let (Ok(name), Ok(value)) = (std::str::from_utf8(&l.name), std::str::from_utf8(&l.value))
        else {
            let name = String::from_utf8_lossy(&l.name).into_owned();
            return invalid(&raw, InvalidLabels::InvalidUtf8(name));
        };
        if name.is_empty() {
            return invalid(&raw, InvalidLabels::EmptyName);
        }
        // An empty value means "no such label" in Prometheus's model.
        if !value.is_empty() {
            labels.push(Label { name: strings.intern(name), value: strings.intern(value) });
        }
    }
    if !labels.iter().any(|l| &*l.name == METRIC_NAME) {
        return invalid(&raw, InvalidLabels::MissingMetricName);
    }
    if let Some(w) = raw.windows(2).find(|w| w[0].name == w[1].name) {
        let name = String::from_utf8_lossy(&w[0].name).into_owned();
        return invalid(&raw, InvalidLabels::Duplicate(name));
    }
    Ok(Labels::from_sorted(labels))
}

/// `{a="1", a="2"}`: like `Labels`' display, for label sets that are not
/// valid `Labels`.
fn display_raw(raw: &[proto::Label]) -> String {
    let mut s = String::from("{");
    for (i, l) in raw.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let name = String::from_utf8_lossy(&l.name);
        if is_legacy_label_name(&name) {
            s.push_str(&name);
        } else {
            gofmt::quote_into(&mut s, &name);
        }
        s.push('=');
        gofmt::quote_into(&mut s, &String::from_utf8_lossy(&l.value));
    }
    s.push('}');
    s
}

/// What [`append`] did with a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppendReport {
    /// Samples stored. An exact resend of a series' newest sample is
    /// neither stored nor rejected, so a retried request succeeds.
    pub appended: usize,
    pub out_of_order: usize,
    pub duplicate: usize,
    /// Older than the head's retention bound, or too far in the future.
    pub out_of_bounds: usize,
    pub series_created: usize,
    /// Carried over from the [`WriteRequest`] by [`append_request`].
    pub invalid_series: usize,
    pub invalid_samples: usize,
    pub histograms: usize,
    /// The first [`MAX_ERRORS`] rejections, each naming series and timestamp.
    pub errors: Vec<RemoteWriteError>,
}

impl AppendReport {
    /// Samples (float or histogram) that were sent and not stored.
    pub fn rejected(&self) -> usize {
        self.out_of_order
            + self.duplicate
            + self.out_of_bounds
            + self.invalid_samples
            + self.histograms
    }

    /// The HTTP status for the response: 204, or 400 when anything was
    /// refused.
    ///
    /// Everything valid in the request is stored either way, as Prometheus's
    /// handler does for remote write 2.0 partial writes. Its 1.0 handler
    /// rolls the request back on the first out-of-order, duplicate or
    /// out-of-bounds sample and answers 400; the head cannot roll back, and
    /// keeping the rest loses less. 400 rather than 5xx because resending
    /// the same samples cannot succeed, and senders retry only 5xx and 429.
    /// Prometheus's 1.0 handler drops series with invalid labels with a 204;
    /// here they give a 400 too (the 1.0 spec asks for it), so a sender sees
    /// that data is lost instead of losing it silently.
    pub fn status_hint(&self) -> u16 {
        if self.rejected() > 0 || self.invalid_series > 0 { 400 } else { 204 }
    }

    /// The body of a 400 response: counts, then the first errors.
    pub fn error_message(&self) -> Option<String> {
        if self.status_hint() == 204 {
            return None;
        }
        let mut msg = String::new();
        for (n, what) in [
            (self.out_of_order, "out of order samples"),
            (self.duplicate, "duplicate samples"),
            (self.out_of_bounds, "out of bounds samples"),
            (self.invalid_series, "series with invalid labels"),
            (self.histograms, "native histogram samples"),
        ] {
            if n > 0 {
                let sep = if msg.is_empty() { "" } else { ", " };
                let _ = write!(msg, "{sep}{n} {what}");
            }
        }
        msg.push_str(" rejected");
        for e in &self.errors {
            let _ = write!(msg, "; {e}");
        }
        Some(msg)
    }
}

/// Appends every series' samples to `head`. Rejected samples are counted and
/// skipped; the rest of the request is stored (see
/// [`AppendReport::status_hint`]). Series without samples are not created.
pub fn append(head: &Head, series: &[TimeSeries]) -> AppendReport {
    let mut report = AppendReport::default();
    append_into(head, series, i64::MAX, &mut report);
    report
}

/// Appends a decoded request, refusing samples later than `max_t` (Prometheus
/// uses its clock plus 10 minutes); the request's invalid series and
/// histograms are reported with the append's rejections.
pub fn append_request(head: &Head, req: &WriteRequest, max_t: i64) -> AppendReport {
    let mut report = AppendReport {
        invalid_series: req.invalid_series,
        invalid_samples: req.invalid_samples,
        histograms: req.histograms,
        errors: req.errors.clone(),
        ..AppendReport::default()
    };
    append_into(head, &req.series, max_t, &mut report);
    report
}

fn append_into(head: &Head, series: &[TimeSeries], max_t: i64, report: &mut AppendReport) {
    for ts in series {
        if ts.samples.is_empty() {
            continue;
        }
        let mut handle = head.lookup(&ts.labels).unwrap_or_else(|| {
            report.series_created += 1;
            head.get_or_create(&ts.labels)
        });
        // One call per sample rather than `append_many` per series, because
        // its summary keeps only the first error and the report counts each
        // kind; Prometheus senders put one sample in each TimeSeries anyway.
        for s in &ts.samples {
            if s.t > max_t {
                report.out_of_bounds += 1;
                push_error(&mut report.errors, || RemoteWriteError::TooFarInFuture {
                    series: ts.labels.to_string(),
                    t: s.t,
                });
                continue;
            }
            let mut summary = head.append_many(&handle, std::slice::from_ref(s));
            if summary.first_error == Some(AppendError::SeriesRemoved) {
                // Retention dropped the series after the lookup: recreate it.
                handle = head.get_or_create(&ts.labels);
                summary = head.append_many(&handle, std::slice::from_ref(s));
            }
            report.appended += summary.appended;
            let Some(reason) = summary.first_error else { continue };
            match reason {
                AppendError::OutOfOrder { .. } => report.out_of_order += 1,
                AppendError::Duplicate { .. } => report.duplicate += 1,
                AppendError::OutOfBounds { .. } | AppendError::SeriesRemoved => {
                    report.out_of_bounds += 1
                }
            }
            push_error(&mut report.errors, || RemoteWriteError::Rejected {
                series: ts.labels.to_string(),
                t: s.t,
                reason,
            });
        }
    }
}

/// The protobuf messages, as in `prompb`. Strings are `bytes` on the wire
/// side (the encoding is the same) so that UTF-8 is checked per label.
mod proto {
    use prost::bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Decoded so that malformed ones fail as in Prometheus; not stored.
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(bytes = "bytes", tag = "1")]
        pub name: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        pub value: Bytes,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// Only what tells a histogram sample apart; the buckets are skipped.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    impl From<&super::TimeSeries> for TimeSeries {
        fn from(ts: &super::TimeSeries) -> Self {
            let bytes = |s: &str| Bytes::copy_from_slice(s.as_bytes());
            TimeSeries {
                labels: ts
                    .labels
                    .iter()
                    .map(|l| Label { name: bytes(&l.name), value: bytes(&l.value) })
                    .collect(),
                samples: ts.samples.iter().map(|s| Sample { value: s.v, timestamp: s.t }).collect(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::STALE_NAN;
    use crate::storage::{HeadOptions, Queryable};
    use prost::encoding::{WireType, encode_key, encode_varint};

    const LIMIT: usize = 32 << 20;

    // Hand-built protobuf, so tests can say exactly which bytes a sender put
    // on the wire, including what `encode` would never produce.

    fn field(tag: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(tag, WireType::LengthDelimited, &mut out);
        encode_varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    fn label(name: &[u8], value: &[u8]) -> Vec<u8> {
        field(1, &[field(1, name), field(2, value)].concat())
    }

    fn sample(v: f64, t: i64) -> Vec<u8> {
        let mut s = vec![0x09];
        s.extend_from_slice(&v.to_le_bytes());
        s.push(0x10);
        encode_varint(t as u64, &mut s);
        field(2, &s)
    }

    fn series(parts: &[Vec<u8>]) -> Vec<u8> {
        field(1, &parts.concat())
    }

    fn snappy(pb: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(pb).unwrap()
    }

    fn body(series: &[Vec<u8>]) -> Vec<u8> {
        snappy(&series.concat())
    }

    fn ts(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: Labels::from_pairs(pairs),
            samples: samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        }
    }

    fn bit_eq(a: &[TimeSeries], b: &[TimeSeries]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.labels == y.labels
                    && x.samples.len() == y.samples.len()
                    && x.samples.iter().zip(&y.samples).all(|(s, t)| s.bit_eq(t))
            })
    }

    fn invalid_reason(body: &[u8]) -> InvalidLabels {
        match decode(body, LIMIT) {
            Err(RemoteWriteError::InvalidSeries { reason, .. }) => reason,
            other => panic!("expected an invalid series, got {other:?}"),
        }
    }

    #[test]
    fn roundtrip_keeps_values_bit_exact() {
        let series = vec![
            ts(
                &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                &[(1, 1.0), (2, STALE_NAN), (3, f64::NAN), (4, 0.0), (5, f64::INFINITY)],
            ),
            ts(&[("__name__", "x"), ("utf8.näme", "välue\n\"")], &[(i64::MIN, f64::MIN_POSITIVE)]),
            ts(&[("__name__", "no_samples")], &[]),
        ];
        let decoded = decode(&encode(&series), LIMIT).unwrap();
        assert!(bit_eq(&decoded, &series), "{decoded:?}");
        assert!(decoded[0].samples[1].v.to_bits() == STALE_NAN.to_bits());

        let negative_zero = [ts(&[("__name__", "z")], &[(1, -0.0)])];
        let decoded = decode(&encode(&negative_zero), LIMIT).unwrap();
        assert_eq!(decoded[0].samples[0].v.to_bits(), 0.0f64.to_bits());
    }

    /// A request captured from Prometheus 2.42's remote-write sender (scraping
    /// a two-series target with `demo_.*` kept by write_relabel_configs; the
    /// second series vanished from the target, so this request carries its
    /// staleness marker). Body bytes verbatim, headers were
    /// `Content-Encoding: snappy`, `X-Prometheus-Remote-Write-Version: 0.1.0`.
    const PROMETHEUS_2_42_REQUEST: &[u8] = &[
        0xef, 0x01, 0xf0, 0x55, 0x0a, 0x78, 0x0a, 0x1f, 0x0a, 0x08, 0x5f, 0x5f, 0x6e, 0x61, 0x6d,
        0x65, 0x5f, 0x5f, 0x12, 0x13, 0x64, 0x65, 0x6d, 0x6f, 0x5f, 0x72, 0x65, 0x71, 0x75, 0x65,
        0x73, 0x74, 0x73, 0x5f, 0x74, 0x6f, 0x74, 0x61, 0x6c, 0x0a, 0x0b, 0x0a, 0x04, 0x63, 0x6f,
        0x64, 0x65, 0x12, 0x03, 0x32, 0x30, 0x30, 0x0a, 0x1b, 0x0a, 0x08, 0x69, 0x6e, 0x73, 0x74,
        0x61, 0x6e, 0x63, 0x65, 0x12, 0x0f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31,
        0x3a, 0x31, 0x39, 0x30, 0x39, 0x31, 0x0a, 0x0b, 0x0a, 0x03, 0x6a, 0x6f, 0x62, 0x12, 0x04,
        0x01, 0x46, 0x44, 0x0a, 0x0c, 0x0a, 0x04, 0x70, 0x61, 0x74, 0x68, 0x12, 0x04, 0x2f, 0x61,
        0x70, 0x69, 0x12, 0x10, 0x09, 0x00, 0x05, 0x01, 0x30, 0x2a, 0x40, 0x10, 0x88, 0x8e, 0xf4,
        0xf5, 0x9f, 0x34, 0x0a, 0x73, 0x0a, 0x24, 0x1d, 0x7a, 0x00, 0x18, 0x01, 0x34, 0x50, 0x5f,
        0x74, 0x65, 0x6d, 0x70, 0x65, 0x72, 0x61, 0x74, 0x75, 0x72, 0x65, 0x5f, 0x63, 0x65, 0x6c,
        0x73, 0x69, 0x75, 0x73, 0x0a, 0xa6, 0x72, 0x00, 0x84, 0x0f, 0x0a, 0x06, 0x73, 0x65, 0x6e,
        0x73, 0x6f, 0x72, 0x12, 0x05, 0x61, 0x20, 0x62, 0x22, 0x63, 0x12, 0x10, 0x09, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xf0, 0x7f, 0x10, 0x88, 0x8e, 0xf4, 0xf5, 0x9f, 0x34,
    ];

    #[test]
    fn decodes_a_request_from_prometheus() {
        let t = 1_795_275_163_400;
        let target = [("instance", "127.0.0.1:19091"), ("job", "demo")];
        let expected = vec![
            ts(
                &[
                    &target[..],
                    &[("__name__", "demo_requests_total"), ("code", "200"), ("path", "/api")],
                ]
                .concat(),
                &[(t, 13.0)],
            ),
            ts(
                &[&target[..], &[("__name__", "demo_temperature_celsius"), ("sensor", "a b\"c")]]
                    .concat(),
                &[(t, STALE_NAN)],
            ),
        ];
        let decoded = decode(PROMETHEUS_2_42_REQUEST, LIMIT).unwrap();
        assert!(bit_eq(&decoded, &expected), "{decoded:?}");
        // Our encoder writes the same protobuf (labels sorted, no defaults).
        let ours = snap::raw::Decoder::new().decompress_vec(&encode(&expected)).unwrap();
        let theirs = snap::raw::Decoder::new().decompress_vec(PROMETHEUS_2_42_REQUEST).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        let b = body(&[series(&[
            label(b"z", b"1"),
            label(b"__name__", b"m"),
            label(b"a", b""),
            sample(1.0, 1),
        ])]);
        let got = decode(&b, LIMIT).unwrap();
        assert_eq!(got[0].labels.to_string(), r#"{__name__="m", z="1"}"#);
    }

    #[test]
    fn invalid_label_sets_are_named_in_the_error() {
        let name = || label(b"__name__", b"m");
        assert_eq!(invalid_reason(&body(&[series(&[sample(1.0, 1)])])), InvalidLabels::Empty);
        assert_eq!(
            invalid_reason(&body(&[series(&[label(b"a", b"1")])])),
            InvalidLabels::MissingMetricName
        );
        assert_eq!(
            invalid_reason(&body(&[series(&[label(b"__name__", b""), label(b"a", b"1")])])),
            InvalidLabels::MissingMetricName
        );
        assert_eq!(
            invalid_reason(&body(&[series(&[name(), label(b"", b"1")])])),
            InvalidLabels::EmptyName
        );
        assert_eq!(
            invalid_reason(&body(&[series(&[name(), label(b"a", b"\xff")])])),
            InvalidLabels::InvalidUtf8("a".into())
        );
        // An empty value still counts as a duplicate name, as in Prometheus.
        let dup = body(&[series(&[label(b"b", b"2"), name(), label(b"b", b"")])]);
        let err = decode(&dup, LIMIT).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid labels for series {__name__="m", b="2", b=""}: duplicated label b"#
        );
        assert_eq!(err.status_hint(), 400);
    }

    #[test]
    fn utf8_label_names_are_accepted() {
        let b = body(&[series(&[label(b"__name__", b"http.requests"), label(b"k8s.pod", b"p")])]);
        assert_eq!(
            decode(&b, LIMIT).unwrap()[0].labels.to_string(),
            r#"{__name__="http.requests", "k8s.pod"="p"}"#
        );
    }

    #[test]
    fn decode_request_keeps_the_valid_part() {
        // A native histogram: only its timestamp (field 15) and a count.
        let histogram = field(4, &[vec![0x08, 0x05], vec![0x78, 0x07]].concat());
        let b = body(&[
            series(&[label(b"__name__", b"ok"), sample(1.0, 1)]),
            series(&[label(b"a", b"1"), sample(1.0, 1), sample(2.0, 2)]),
            series(&[label(b"__name__", b"h"), sample(3.0, 3), histogram.clone(), histogram]),
        ]);
        let req = decode_request(&b, LIMIT).unwrap();
        assert_eq!(req.series.len(), 2);
        assert_eq!(req.series[1].samples, vec![Sample::new(3, 3.0)]);
        assert_eq!((req.invalid_series, req.invalid_samples, req.histograms), (1, 2, 2));
        assert_eq!(
            req.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            [
                r#"invalid labels for series {a="1"}: missing metric name"#,
                r#"2 native histogram samples not supported for series {__name__="h"}"#,
            ]
        );
        assert!(matches!(
            decode(&b, LIMIT),
            Err(RemoteWriteError::InvalidSeries { reason: InvalidLabels::MissingMetricName, .. })
        ));
    }

    #[test]
    fn metadata_exemplars_and_unknown_fields_are_skipped() {
        let metadata = field(3, &[vec![0x08, 0x01], field(2, b"m"), field(4, b"help")].concat());
        let exemplar = field(3, &[label(b"trace_id", b"abc"), vec![0x18, 0x05]].concat());
        let unknown = vec![0x28, 0x01]; // field 5, varint
        let b = snappy(
            &[
                metadata,
                unknown.clone(),
                series(&[label(b"__name__", b"m"), exemplar, unknown, sample(1.0, 1)]),
            ]
            .concat(),
        );
        assert_eq!(decode(&b, LIMIT).unwrap(), vec![ts(&[("__name__", "m")], &[(1, 1.0)])]);
    }

    #[test]
    fn hostile_bodies_fail_cleanly() {
        let protobuf_error = |pb: &[u8]| match decode(&snappy(pb), LIMIT) {
            Err(RemoteWriteError::Protobuf(e)) => e,
            other => panic!("{pb:x?}: expected a protobuf error, got {other:?}"),
        };
        // Snappy header claiming 4 GiB - 1: refused before allocating.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0x0f], LIMIT),
            Err(RemoteWriteError::TooLarge { len: u32::MAX as usize, limit: LIMIT })
        );
        assert_eq!(
            decode(&encode(&[ts(&[("__name__", "m")], &[])]), 4).unwrap_err().status_hint(),
            413
        );
        assert!(matches!(decode(b"\x05abc", LIMIT), Err(RemoteWriteError::Snappy(_))));
        assert!(matches!(decode(&[0x80], LIMIT), Err(RemoteWriteError::Snappy(_))));
        // Truncated varints: in a key, a length, a timestamp.
        protobuf_error(&[0x80]);
        protobuf_error(&[0x0a, 0xff]);
        protobuf_error(&series(&[label(b"__name__", b"m"), field(2, &[0x10, 0x80])]));
        // A length past the end, and one past the 64-bit range.
        protobuf_error(&[0x0a, 0x05, 0x00]);
        protobuf_error(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        // Wrong wire types: series as a varint, a value as a varint, a label as fixed64.
        protobuf_error(&[0x08, 0x01]);
        protobuf_error(&series(&[field(2, &[0x08, 0x01])]));
        protobuf_error(&series(&[vec![0x09, 0, 0, 0, 0, 0, 0, 0, 0]]));
        // A stray end-group, and 100 000 nested groups of an unknown field:
        // prost's recursion limit stops them before the stack does.
        protobuf_error(&[0x2c]);
        let nested = [vec![0x2b; 100_000], vec![0x2c; 100_000]].concat();
        assert!(protobuf_error(&nested).to_string().contains("recursion limit reached"));
        assert!(protobuf_error(&series(&[nested])).to_string().contains("recursion limit reached"));
    }

    #[test]
    fn empty_body_is_refused_but_an_empty_protobuf_is_not() {
        // Prometheus's Go snappy refuses an empty body (400); so does snap.
        assert!(matches!(decode(&[], LIMIT), Err(RemoteWriteError::Snappy(_))));
        assert_eq!(decode(&snappy(&[]), LIMIT).unwrap(), vec![]);
    }

    #[test]
    fn append_counts_each_outcome() {
        let head = Head::new(HeadOptions::default());
        head.truncate_before(10);
        let a = [("__name__", "a")];
        let report = append(
            &head,
            &[
                ts(&a, &[(10, 1.0), (20, 2.0), (20, 2.0), (20, 3.0), (15, 1.0), (5, 1.0)]),
                ts(&[("__name__", "b")], &[(30, STALE_NAN)]),
                ts(&[("__name__", "empty")], &[]),
                ts(&a, &[(25, 1.0)]),
            ],
        );
        assert_eq!(
            (report.appended, report.duplicate, report.out_of_order, report.out_of_bounds),
            (4, 1, 1, 1)
        );
        assert_eq!(report.series_created, 2);
        assert_eq!(head.stats().series, 2, "a series without samples is not created");
        assert_eq!(report.status_hint(), 400);
        assert_eq!(
            report.error_message().unwrap(),
            "1 out of order samples, 1 duplicate samples, 1 out of bounds samples rejected; \
             duplicate sample for timestamp for series {__name__=\"a\"}, timestamp 20; \
             out of order sample for series {__name__=\"a\"}, timestamp 15; \
             out of bounds for series {__name__=\"a\"}, timestamp 5"
        );

        let mut out = Vec::new();
        let b = head.lookup(&Labels::from_pairs(&[("__name__", "b")])).unwrap();
        head.samples(b.id(), 0, 100, &mut out).unwrap();
        assert!(out[0].bit_eq(&Sample::new(30, STALE_NAN)));

        // A retried request is an exact resend: nothing appended, nothing refused.
        let again = append(&head, &[ts(&a, &[(25, 1.0)])]);
        assert_eq!(again, AppendReport::default());
        assert_eq!((again.status_hint(), again.error_message()), (204, None));
    }

    #[test]
    fn append_request_refuses_the_future_and_reports_invalid_series() {
        let head = Head::default();
        let b = body(&[
            series(&[label(b"__name__", b"m"), sample(1.0, 1_000), sample(2.0, 1_000_000)]),
            series(&[label(b"x", b"1"), sample(1.0, 1)]),
        ]);
        let req = decode_request(&b, LIMIT).unwrap();
        let report = append_request(&head, &req, 600_000);
        assert_eq!((report.appended, report.out_of_bounds, report.invalid_series), (1, 1, 1));
        assert_eq!(report.rejected(), 2);
        assert_eq!(
            report.error_message().unwrap(),
            "1 out of bounds samples, 1 series with invalid labels rejected; \
             invalid labels for series {x=\"1\"}: missing metric name; \
             out of bounds: timestamp is too far in the future for series {__name__=\"m\"}, timestamp 1000000"
        );
    }

    #[test]
    fn errors_are_capped() {
        let head = Head::default();
        let samples: Vec<(i64, f64)> = (0..100).map(|i| (100 - i, 1.0)).collect();
        let report = append(&head, &[ts(&[("__name__", "m")], &samples)]);
        assert_eq!((report.appended, report.out_of_order), (1, 99));
        assert_eq!(report.errors.len(), MAX_ERRORS);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_series() -> impl Strategy<Value = TimeSeries> {
            let labels = prop::collection::btree_map("\\PC{1,8}", "\\PC{1,8}", 0..6);
            let samples = prop::collection::vec(
                (any::<i64>(), prop_oneof![any::<f64>(), Just(STALE_NAN), Just(f64::NAN)]),
                0..8,
            );
            (labels, "\\PC{1,12}", samples).prop_map(|(labels, name, samples)| {
                let mut pairs: Vec<(String, String)> = labels.into_iter().collect();
                pairs.push((METRIC_NAME.into(), name));
                TimeSeries {
                    labels: Labels::from_pairs(&pairs),
                    samples: samples.into_iter().map(|(t, v)| Sample::new(t, v)).collect(),
                }
            })
        }

        proptest! {
            #[test]
            fn roundtrip(series in prop::collection::vec(arb_series(), 0..6)) {
                let decoded = decode(&encode(&series), LIMIT).unwrap();
                let mut expected = series;
                // Like Prometheus's encoder, proto3 drops a zero value's sign.
                expected.iter_mut().flat_map(|s| &mut s.samples).for_each(|s| {
                    if s.v == 0.0 {
                        s.v = 0.0;
                    }
                });
                prop_assert!(bit_eq(&decoded, &expected));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode(&bytes, LIMIT);
                // The same bytes as the protobuf, to get past snappy.
                if let Ok(req) = decode_request(&snappy(&bytes), LIMIT) {
                    append_request(&Head::default(), &req, i64::MAX);
                }
            }

            #[test]
            fn mutated_requests_never_panic(
                series in prop::collection::vec(arb_series(), 1..4),
                flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            ) {
                let mut pb = snap::raw::Decoder::new().decompress_vec(&encode(&series)).unwrap();
                for (i, b) in flips {
                    let i = i.index(pb.len());
                    pb[i] = b;
                }
                let _ = decode(&snappy(&pb), LIMIT);
            }
        }
    }

    /// Decode throughput; run with
    /// `cargo test --release -p tocsin-engine --lib remote_write::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        // Shaped like Prometheus's sender: one sample per TimeSeries, 2000 per
        // request, node-exporter-like label sets.
        let series: Vec<TimeSeries> = (0..2000)
            .map(|i| {
                ts(
                    &[
                        ("__name__", &format!("node_metric_{}", i % 50)),
                        ("instance", &format!("host-{}:9100", i % 40)),
                        ("job", "node"),
                        ("cpu", &(i % 8).to_string()),
                        ("mode", "user"),
                    ],
                    &[(1_700_000_000_000 + i, i as f64 * 1.5)],
                )
            })
            .collect();
        let body = encode(&series);
        let raw = snap::raw::decompress_len(&body).unwrap();
        let rounds = 300;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(decode(&body, LIMIT).unwrap());
        }
        let secs = start.elapsed().as_secs_f64();
        let head = Head::default();
        let start_append = std::time::Instant::now();
        for r in 0..rounds as i64 {
            let mut shifted = series.clone();
            shifted.iter_mut().for_each(|s| s.samples[0].t += r * 100_000);
            std::hint::black_box(append(&head, &shifted));
        }
        let append_secs = start_append.elapsed().as_secs_f64();
        println!(
            "decode: {:.0} MB/s decompressed ({:.0} MB/s on the wire), {:.2} M samples/s; \
             append: {:.2} M samples/s",
            (raw * rounds) as f64 / secs / 1e6,
            (body.len() * rounds) as f64 / secs / 1e6,
            (2000 * rounds) as f64 / secs / 1e6,
            (2000 * rounds) as f64 / append_secs / 1e6,
        );
    }
}
