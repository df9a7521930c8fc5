//! Appending whole exposition bodies to the head, with a per-target cache;
//! see [`Ingester`].

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::labels::Labels;
use crate::sample::STALE_NAN;
use crate::storage::{AppendError, Head, SeriesHandle};

use super::parser::{Line, Parser};
use super::{Format, MetricType, ParseError};

/// What [`Ingester::ingest`] does with malformed lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Reject the whole body at its first malformed line and append nothing.
    #[default]
    RejectBody,
    /// Skip malformed lines, append the rest and report the errors.
    SkipLines,
}

/// Maps a series' parsed labels to the labels it is stored under (target
/// labels, metric relabelling), or `None` to drop it. Runs once per new series
/// text; its result is cached, so it must be a pure function of its input.
pub type Relabel = Box<dyn FnMut(Labels) -> Option<Labels> + Send>;

/// How many errors [`IngestReport::errors`] keeps under
/// [`ErrorPolicy::SkipLines`]; the rest are only counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// What one [`Ingester::ingest`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Well-formed sample lines in the body.
    pub samples: usize,
    /// Samples appended to the head.
    pub appended: usize,
    /// Rejected by the head: older than the series' newest sample.
    pub out_of_order: usize,
    /// Rejected: another value at the series' newest timestamp, or the same
    /// series twice in one body without timestamps (Prometheus counts both
    /// as duplicates).
    pub duplicate: usize,
    /// Rejected by the head: before its retention boundary.
    pub out_of_bounds: usize,
    /// Not appended because retention removed the series again and again
    /// while the body was being appended.
    pub series_removed: usize,
    /// Samples of series that [`Relabel`] dropped.
    pub dropped: usize,
    /// Series seen for the first time whose first sample was appended.
    pub series_added: usize,
    /// Staleness markers written for series that disappeared.
    pub stale_markers: usize,
    /// Malformed lines skipped under [`ErrorPolicy::SkipLines`].
    pub invalid_lines: usize,
    /// The first [`MAX_REPORTED_ERRORS`] of those, with line and column.
    pub errors: Vec<ParseError>,
}

enum Target {
    /// A free slot.
    Vacant,
    /// Seen first in the body being ingested; the head series is created when
    /// the body is committed, so a rejected body creates none. Boxed to keep
    /// slots small: this state lasts for one call only.
    Pending(Box<Labels>),
    Series(SeriesHandle),
    Dropped,
}

impl Target {
    /// Appends through this entry, resolving it on first use and again when
    /// retention has removed the series since it was cached. `None` for a
    /// dropped series; `Ok(false)` for a resend of the newest sample. The
    /// caller counts what was appended into the head's total.
    fn append(&mut self, head: &Head, t: i64, v: f64) -> Option<Result<bool, AppendError>> {
        // Re-creating a removed series more than twice for one sample would
        // mean retention keeps racing this append; report instead of spinning.
        let mut retries = 0;
        loop {
            let handle = match self {
                Target::Series(handle) => handle,
                Target::Pending(labels) => {
                    *self = Target::Series(head.get_or_create(labels));
                    continue;
                }
                Target::Dropped | Target::Vacant => return None,
            };
            match head.append_uncounted(handle, t, v) {
                Err(AppendError::SeriesRemoved) if retries < 2 => {
                    retries += 1;
                    *self = Target::Series(head.get_or_create(handle.labels()));
                }
                result => return Some(result),
            }
        }
    }
}

/// No slot: the end of the order chain.
const NONE: usize = usize::MAX;

/// One cache entry, one cache line: the warm path touches a slot per line.
#[repr(align(64))]
struct Slot {
    /// The series text as exposed, the cache key: `keys[key_start..key_end]`.
    key_start: usize,
    key_end: usize,
    /// The format the text was lexed in. Only then may the parser skip
    /// lexing it: the Prometheus format accepts label blocks OpenMetrics
    /// rejects.
    format: Format,
    /// The `# TYPE` in force when the text was parsed. Part of the key,
    /// because `le` and `quantile` values are normalised for histograms and
    /// summaries only (Prometheus keys its cache by text alone, so there the
    /// labels of a text can depend on which scrape saw it first).
    metric_type: MetricType,
    target: Target,
    /// The entry that followed this one in the last body that had it.
    next: usize,
    /// The last ingest call that saw this text.
    seen: u64,
    /// The last successful ingest that appended to it without an explicit
    /// timestamp, which makes it subject to staleness.
    tracked: u64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl Slot {
    fn vacant() -> Slot {
        Slot {
            key_start: 0,
            key_end: 0,
            format: Format::PrometheusText,
            metric_type: MetricType::Unknown,
            target: Target::Vacant,
            next: NONE,
            seen: 0,
            tracked: 0,
        }
    }
}

/// A sample checked and waiting for the commit.
struct PendingAppend {
    slot: usize,
    t: i64,
    v: f64,
    /// No explicit timestamp: the series takes part in staleness handling.
    track: bool,
}

/// Appends exposition bodies of one scrape target to a [`Head`]. Keep one
/// per target: the cache and the staleness state describe what that target
/// exposed last.
///
/// Like Prometheus's scrape cache, it remembers, for every series text a
/// target exposes (`http_requests_total{code="200"}`), the head series it
/// resolved to, so no label strings are built, sorted or hashed and the
/// head's index is not touched for series seen before. Going further, it
/// remembers the order: targets expose their series in the same order every
/// time, so the entry that followed this one last time is the likely next
/// one. The parser checks that guess with one comparison of the line against
/// the cached text and, when it holds, skips lexing the labels; only a wrong
/// guess costs a hash-table lookup. The cached texts sit in one buffer in
/// exposition order, so those comparisons read memory sequentially.
///
/// Errors. By default ([`ErrorPolicy::RejectBody`]) a body is all or
/// nothing, as in Prometheus, which fails a scrape at its first malformed
/// line: the whole body is parsed and checked before the first sample is
/// appended, so a bad body appends nothing, creates no series, and comes
/// back as the [`ParseError`] of its first bad line. Label problems (invalid
/// UTF-8, an empty name, a name used twice) count as malformed lines.
/// [`ErrorPolicy::SkipLines`] is for bulk imports: bad lines are counted and
/// reported with their positions, the good ones are appended.
///
/// Staleness. As in Prometheus, a series present in the previous successful
/// scrape (without an explicit timestamp) but absent from this one gets a
/// staleness marker at this scrape's timestamp, and cache entries not seen in
/// a successful scrape are forgotten. When a scrape fails for any reason, the
/// caller should call [`Ingester::mark_stale`], which is what Prometheus does
/// for a failed scrape.
pub struct Ingester {
    policy: ErrorPolicy,
    /// Whether explicit sample timestamps are used (scrape configs'
    /// `honor_timestamps`); when not, every sample gets the scrape time.
    honor_timestamps: bool,
    relabel: Option<Relabel>,
    hasher: foldhash::fast::RandomState,
    /// Indices into `slots`, keyed by the slot's series text.
    table: HashTable<usize>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
    /// Every cached series text, back to back, mostly in exposition order.
    keys: Vec<u8>,
    /// Bytes of `keys` that belong to no slot any more.
    garbage: usize,
    /// The entry of the first sample line of the last body.
    first: usize,
    /// Numbers ingest calls; 0 means "never".
    iteration: u64,
    last_success: u64,
    /// Entries tracked for staleness by the last successful ingest.
    tracked_last: usize,
    // Per-call scratch, kept to reuse the allocations.
    pending: Vec<PendingAppend>,
    inserted: Vec<usize>,
}

impl Default for Ingester {
    fn default() -> Self {
        Ingester {
            policy: ErrorPolicy::default(),
            honor_timestamps: true,
            relabel: None,
            hasher: foldhash::fast::RandomState::default(),
            table: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            keys: Vec::new(),
            garbage: 0,
            first: NONE,
            iteration: 0,
            last_success: 0,
            tracked_last: 0,
            pending: Vec::new(),
            inserted: Vec::new(),
        }
    }
}

impl Ingester {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_policy(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// With `false`, explicit timestamps in the body are ignored and every
    /// sample is stored at the ingest time, as `honor_timestamps: false` does.
    pub fn with_honor_timestamps(mut self, honor: bool) -> Self {
        self.honor_timestamps = honor;
        self
    }

    /// Stores every series under the labels `relabel` maps it to; see [`Relabel`].
    pub fn with_relabel(
        mut self,
        relabel: impl FnMut(Labels) -> Option<Labels> + Send + 'static,
    ) -> Self {
        self.relabel = Some(Box::new(relabel));
        self
    }

    /// Number of series texts cached.
    pub fn cached_series(&self) -> usize {
        self.live
    }

    /// Parses `body` and appends its samples to `head`; lines without a
    /// timestamp get `default_t` (milliseconds). Under
    /// [`ErrorPolicy::RejectBody`] the first malformed line is returned as
    /// the error and nothing is appended.
    pub fn ingest(
        &mut self,
        head: &Head,
        body: &[u8],
        format: Format,
        default_t: i64,
    ) -> Result<IngestReport, ParseError> {
        self.iteration += 1;
        let iteration = self.iteration;
        self.pending.clear();
        self.inserted.clear();
        let keys_before = self.keys.len();
        let mut report = IngestReport::default();
        // Distinct entries seen by this call, to skip the eviction sweep
        // when the target exposed exactly what it exposed last time.
        let mut seen = 0;
        let mut parser = Parser::new(body, format);
        // The entry of the previous sample line; its `next` is the guess.
        let mut previous = NONE;
        loop {
            let guess = match previous {
                NONE => self.first,
                p => self.slots[p].next,
            };
            let metric_type = parser.metric_type();
            let hint = match self.slots.get(guess) {
                Some(slot) if slot.format == format && slot.metric_type == metric_type => {
                    &self.keys[slot.key_start..slot.key_end]
                }
                _ => &[],
            };
            let raw = match parser.next_line(hint) {
                Ok(Some(Line::Sample)) => parser.sample(),
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    self.on_error(*e, keys_before, &mut report)?;
                    continue;
                }
            };
            let key = &body[raw.series_start..raw.series_end];
            let i = if raw.hinted {
                guess
            } else {
                let hash = self.hasher.hash_one(key);
                match self.find(hash, key, metric_type) {
                    Some(i) => i,
                    None => {
                        // First sight of this text: only now are labels
                        // built and checked.
                        let labels = match parser.current_labels() {
                            Ok(labels) => labels,
                            Err(e) => {
                                self.on_error(*e, keys_before, &mut report)?;
                                continue;
                            }
                        };
                        let target = match &mut self.relabel {
                            None => Target::Pending(Box::new(labels)),
                            Some(relabel) => match relabel(labels) {
                                Some(labels) if !labels.is_empty() => {
                                    Target::Pending(Box::new(labels))
                                }
                                _ => Target::Dropped,
                            },
                        };
                        self.insert(key, hash, format, metric_type, target)
                    }
                }
            };
            report.samples += 1;
            let timestamp = raw.timestamp.filter(|_| self.honor_timestamps);
            let slot = &mut self.slots[i];
            if slot.seen != iteration {
                slot.seen = iteration;
                seen += 1;
            } else if timestamp.is_none() {
                report.duplicate += 1;
                continue;
            }
            self.link(previous, i);
            previous = i;
            self.queue(i, raw.value, timestamp, default_t, &mut report);
        }
        self.commit(head, default_t, seen, &mut report);
        Ok(report)
    }

    /// Appends a staleness marker at `t` to every series of the last
    /// successful scrape, as Prometheus does when a scrape fails or its target
    /// goes away, so queries stop returning them at once rather than after
    /// the lookback window. Returns how many were written. The next
    /// successful scrape starts afresh.
    pub fn mark_stale(&mut self, head: &Head, t: i64) -> usize {
        if self.last_success == 0 {
            return 0;
        }
        let mut written = 0;
        for slot in &mut self.slots {
            if slot.tracked == self.last_success
                && let Target::Series(handle) = &slot.target
                && head.append(handle, t, STALE_NAN).is_ok()
            {
                written += 1;
            }
        }
        self.last_success = 0;
        self.tracked_last = 0;
        written
    }

    fn find(&self, hash: u64, key: &[u8], metric_type: MetricType) -> Option<usize> {
        let same = |&i: &usize| {
            let slot = &self.slots[i];
            slot.metric_type == metric_type && self.keys[slot.key_start..slot.key_end] == *key
        };
        self.table.find(hash, same).copied()
    }

    /// Records that entry `i` followed entry `previous` in this body.
    #[inline]
    fn link(&mut self, previous: usize, i: usize) {
        match previous {
            NONE => self.first = i,
            p => self.slots[p].next = i,
        }
    }

    #[inline]
    fn queue(
        &mut self,
        slot: usize,
        v: f64,
        timestamp: Option<i64>,
        default_t: i64,
        report: &mut IngestReport,
    ) {
        if let Target::Dropped = self.slots[slot].target {
            report.dropped += 1;
            return;
        }
        let t = timestamp.unwrap_or(default_t);
        self.pending.push(PendingAppend { slot, t, v, track: timestamp.is_none() });
    }

    fn on_error(
        &mut self,
        e: ParseError,
        keys_before: usize,
        report: &mut IngestReport,
    ) -> Result<(), ParseError> {
        match self.policy {
            ErrorPolicy::RejectBody => {
                // Forget the entries this body added; nothing was appended.
                // Their texts are the tail of `keys`.
                for i in std::mem::take(&mut self.inserted) {
                    self.remove(i);
                }
                self.garbage -= self.keys.len() - keys_before;
                self.keys.truncate(keys_before);
                self.pending.clear();
                Err(e)
            }
            ErrorPolicy::SkipLines => {
                report.invalid_lines += 1;
                if report.errors.len() < MAX_REPORTED_ERRORS {
                    report.errors.push(e);
                }
                Ok(())
            }
        }
    }

    fn insert(
        &mut self,
        key: &[u8],
        hash: u64,
        format: Format,
        metric_type: MetricType,
        target: Target,
    ) -> usize {
        let key_start = self.keys.len();
        self.keys.extend_from_slice(key);
        let slot = Slot {
            key_start,
            key_end: self.keys.len(),
            format,
            metric_type,
            target,
            next: NONE,
            seen: 0,
            tracked: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        // Growing the table rehashes every entry; keys are at hand, so slots
        // need not carry their hash.
        let (slots, keys, hasher) = (&self.slots, &self.keys, &self.hasher);
        self.table.insert_unique(hash, i, |&j| {
            hasher.hash_one(&keys[slots[j].key_start..slots[j].key_end])
        });
        self.live += 1;
        self.inserted.push(i);
        i
    }

    fn remove(&mut self, i: usize) {
        let slot = &self.slots[i];
        let hash = self.hasher.hash_one(&self.keys[slot.key_start..slot.key_end]);
        if let Ok(entry) = self.table.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        let slot = &self.slots[i];
        self.garbage += slot.key_end - slot.key_start;
        // Other entries' `next` may still name this slot: harmless, as a
        // guess is always checked against the text.
        self.slots[i] = Slot::vacant();
        self.free.push(i);
        self.live -= 1;
    }

    /// Appends the checked samples, then handles staleness and eviction.
    fn commit(&mut self, head: &Head, default_t: i64, seen: usize, report: &mut IngestReport) {
        let iteration = self.iteration;
        let previous = self.last_success;
        let mut tracked = 0;
        // Entries tracked both last time and this time; when that is all of
        // last time's, no series went stale.
        let mut kept = 0;
        let mut new_samples = 0;
        // How many entries ahead to prefetch: enough to cover a miss to
        // memory at a few tens of nanoseconds per append. The cache slot
        // first (a large body has pushed it out of cache since it was
        // parsed), then its series, then the end of that series' chunk.
        const AHEAD: usize = 8;
        for (k, p) in self.pending.iter().enumerate() {
            if let Some(ahead) = self.pending.get(k + 3 * AHEAD) {
                crate::prefetch::prefetch(self.slots.as_ptr().wrapping_add(ahead.slot));
            }
            if let Some(ahead) = self.pending.get(k + 2 * AHEAD)
                && let Target::Series(handle) = &self.slots[ahead.slot].target
            {
                handle.prefetch();
            }
            if let Some(ahead) = self.pending.get(k + AHEAD)
                && let Target::Series(handle) = &self.slots[ahead.slot].target
            {
                handle.prefetch_tail();
            }
            let slot = &mut self.slots[p.slot];
            let first = matches!(slot.target, Target::Pending(_));
            let Some(result) = slot.target.append(head, p.t, p.v) else {
                continue;
            };
            match result {
                Ok(new) => {
                    new_samples += usize::from(new);
                    report.appended += 1;
                    report.series_added += usize::from(first);
                    if p.track && slot.tracked != iteration {
                        kept += usize::from(previous != 0 && slot.tracked == previous);
                        slot.tracked = iteration;
                        tracked += 1;
                    }
                }
                Err(AppendError::OutOfOrder { .. }) => report.out_of_order += 1,
                Err(AppendError::Duplicate { .. }) => report.duplicate += 1,
                Err(AppendError::OutOfBounds { .. }) => report.out_of_bounds += 1,
                Err(AppendError::SeriesRemoved) => report.series_removed += 1,
            }
        }
        head.count_appended(new_samples);
        self.pending.clear();
        if seen < self.live || kept < self.tracked_last {
            for i in 0..self.slots.len() {
                let slot = &self.slots[i];
                if let Target::Vacant = slot.target {
                    continue;
                }
                // Tracked last time but not this time (it would equal
                // `iteration` otherwise): the series went away.
                if previous != 0
                    && slot.tracked == previous
                    && let Target::Series(handle) = &slot.target
                    && head.append(handle, default_t, STALE_NAN).is_ok()
                {
                    report.stale_markers += 1;
                }
                if slot.seen != iteration {
                    self.remove(i);
                }
            }
        }
        if self.garbage > self.keys.len() / 2 {
            self.compact_keys();
        }
        self.last_success = iteration;
        self.tracked_last = tracked;
    }

    /// Rewrites `keys` without garbage, in the order of the last body (the
    /// `next` chain), so that the guesses of the next scrape read it front
    /// to back.
    fn compact_keys(&mut self) {
        let mut placed = vec![false; self.slots.len()];
        let mut live = Vec::with_capacity(self.live);
        let mut i = self.first;
        while i != NONE && !placed[i] && !matches!(self.slots[i].target, Target::Vacant) {
            placed[i] = true;
            live.push(i);
            i = self.slots[i].next;
        }
        // Entries the chain does not reach (a line's successor can be
        // overwritten when its series appears twice) go last.
        live.extend(
            (0..self.slots.len())
                .filter(|&i| !placed[i] && !matches!(self.slots[i].target, Target::Vacant)),
        );
        let mut keys = Vec::with_capacity(self.keys.len() - self.garbage);
        for i in live {
            let slot = &mut self.slots[i];
            let start = keys.len();
            keys.extend_from_slice(&self.keys[slot.key_start..slot.key_end]);
            slot.key_start = start;
            slot.key_end = keys.len();
        }
        self.keys = keys;
        self.garbage = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Matcher;
    use crate::sample::{Sample, is_stale_nan};
    use crate::storage::Queryable;

    /// Every series of the head as `labels => samples`, sorted.
    fn dump(head: &Head) -> Vec<(String, Vec<Sample>)> {
        let all = [Matcher::new(crate::MatchOp::Regex, "__name__", ".+").unwrap()];
        head.select(&all, i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| {
                let mut samples = Vec::new();
                head.samples(s.id, i64::MIN, i64::MAX, &mut samples).unwrap();
                (s.labels.to_string(), samples)
            })
            .collect()
    }

    fn values(head: &Head, name: &str) -> Vec<(i64, String)> {
        let m = [Matcher::equal("__name__", name)];
        let mut out = Vec::new();
        for s in head.select(&m, i64::MIN, i64::MAX).unwrap() {
            let mut samples = Vec::new();
            head.samples(s.id, i64::MIN, i64::MAX, &mut samples).unwrap();
            out.extend(samples.iter().map(|x| {
                (x.t, if is_stale_nan(x.v) { "stale".to_owned() } else { x.v.to_string() })
            }));
        }
        out
    }

    #[test]
    fn honor_timestamps_false_uses_the_scrape_time() {
        let head = Head::default();
        let mut ing = Ingester::new().with_honor_timestamps(false);
        ing.ingest(&head, b"a 1 5000\nb 2\n", Format::PrometheusText, 9000).unwrap();
        assert_eq!(values(&head, "a"), vec![(9000, "1".to_owned())]);
        // Series with timestamps are tracked for staleness like the rest.
        ing.ingest(&head, b"b 3\n", Format::PrometheusText, 10_000).unwrap();
        assert_eq!(values(&head, "a").last().map(|x| x.1.clone()), Some("stale".into()));
        let mut honoring = Ingester::new();
        let head = Head::default();
        honoring.ingest(&head, b"a 1 5000\n", Format::PrometheusText, 9000).unwrap();
        assert_eq!(values(&head, "a"), vec![(5000, "1".to_owned())]);
    }

    #[test]
    fn can_move_to_another_thread() {
        // The host keeps one per scrape target and runs scrapes on a pool.
        fn send<T: Send>() {}
        send::<Ingester>();
    }

    const BODY: &str = "\
# HELP up Whether the target is up.
# TYPE up gauge
up 1
requests_total{code=\"200\"} 10
requests_total{code=\"500\"} 2
";

    #[test]
    fn appends_a_body_and_reuses_the_cache() {
        let head = Head::default();
        let mut ing = Ingester::new();
        let r = ing.ingest(&head, BODY.as_bytes(), Format::PrometheusText, 1000).unwrap();
        assert_eq!(
            r,
            IngestReport { samples: 3, appended: 3, series_added: 3, ..IngestReport::default() }
        );
        assert_eq!(ing.cached_series(), 3);
        let body2 = BODY.replace("} 10", "} 11");
        let r = ing.ingest(&head, body2.as_bytes(), Format::PrometheusText, 2000).unwrap();
        assert_eq!(r, IngestReport { samples: 3, appended: 3, ..IngestReport::default() });
        assert_eq!(
            dump(&head),
            [
                (
                    r#"{__name__="requests_total", code="200"}"#.to_owned(),
                    vec![Sample::new(1000, 10.0), Sample::new(2000, 11.0)]
                ),
                (
                    r#"{__name__="requests_total", code="500"}"#.to_owned(),
                    vec![Sample::new(1000, 2.0), Sample::new(2000, 2.0)]
                ),
                (
                    r#"{__name__="up"}"#.to_owned(),
                    vec![Sample::new(1000, 1.0), Sample::new(2000, 1.0)]
                ),
            ]
        );
    }

    #[test]
    fn different_texts_of_one_series_share_it() {
        let head = Head::default();
        let mut ing = Ingester::new();
        let body = "a{x=\"1\",y=\"2\"} 1 10\na{y=\"2\", x=\"1\"} 2 20\n";
        let r = ing.ingest(&head, body.as_bytes(), Format::PrometheusText, 0).unwrap();
        assert_eq!(r.appended, 2);
        assert_eq!(ing.cached_series(), 2);
        assert_eq!(head.stats().series, 1);
    }

    /// Found by fuzzing: the cache returned the labels a text had under an
    /// earlier `# TYPE`, where parsing it afresh normalises `le` differently.
    #[test]
    fn same_text_under_another_type_is_another_series() {
        let head = Head::default();
        let mut ing = Ingester::new();
        let body = "h_bucket{le=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n";
        let r = ing.ingest(&head, body.as_bytes(), Format::PrometheusText, 100).unwrap();
        assert_eq!((r.appended, r.series_added), (2, 2));
        let r = ing.ingest(&head, body.as_bytes(), Format::PrometheusText, 200).unwrap();
        assert_eq!((r.appended, r.series_added), (2, 0));
        let series: Vec<String> = dump(&head).into_iter().map(|(l, _)| l).collect();
        assert_eq!(
            series,
            [r#"{__name__="h_bucket", le="1"}"#, r#"{__name__="h_bucket", le="1.0"}"#]
        );
    }

    #[test]
    fn a_bad_body_appends_nothing_and_creates_nothing() {
        let head = Head::default();
        let mut ing = Ingester::new();
        ing.ingest(&head, BODY.as_bytes(), Format::PrometheusText, 1000).unwrap();
        let bad = format!("{BODY}new_series 1\nbroken{{code=\"1\" 1\n");
        let err = ing.ingest(&head, bad.as_bytes(), Format::PrometheusText, 2000).unwrap_err();
        assert_eq!(err.to_string(), "7:17: expected a label name or '}', got '1'");
        assert_eq!(head.stats().series, 3);
        assert_eq!(head.stats().samples_appended, 3);
        assert_eq!(ing.cached_series(), 3);
        // A label check failure on a new series rejects the body just the same.
        let bad = format!("{BODY}dup{{a=\"1\",a=\"2\"}} 1\n");
        let err = ing.ingest(&head, bad.as_bytes(), Format::PrometheusText, 2000).unwrap_err();
        assert_eq!(err.to_string(), "6:11: duplicate label name \"a\"");
        // So does an OpenMetrics body without "# EOF", after all its lines.
        let err = ing.ingest(&head, b"up 1\n", Format::OpenMetrics, 2000).unwrap_err();
        assert_eq!(err.kind, super::super::ErrorKind::MissingEof);
        assert_eq!(head.stats().samples_appended, 3);
        // The cache still serves the next good scrape.
        let r = ing.ingest(&head, BODY.as_bytes(), Format::PrometheusText, 3000).unwrap();
        assert_eq!((r.appended, r.series_added), (3, 0));
    }

    #[test]
    fn skipping_bad_lines_reports_them_and_keeps_the_rest() {
        let head = Head::default();
        let mut ing = Ingester::new().with_policy(ErrorPolicy::SkipLines);
        let body = "a 1\nb{ 2\nc 3\nd{x=\"1\",x=\"2\"} 4\ne 5\n";
        let r = ing.ingest(&head, body.as_bytes(), Format::PrometheusText, 0).unwrap();
        assert_eq!((r.samples, r.appended, r.invalid_lines), (3, 3, 2));
        let positions: Vec<_> = r.errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(positions, [(2, 4), (4, 9)]);
        assert_eq!(head.stats().series, 3);
        // Reports keep the first errors only.
        let many = "x{\n".repeat(MAX_REPORTED_ERRORS + 5);
        let r = ing.ingest(&head, many.as_bytes(), Format::PrometheusText, 0).unwrap();
        assert_eq!(
            (r.invalid_lines, r.errors.len()),
            (MAX_REPORTED_ERRORS + 5, MAX_REPORTED_ERRORS)
        );
    }

    #[test]
    fn counts_rejections_by_reason() {
        let head = Head::default();
        let mut ing = Ingester::new();
        ing.ingest(&head, b"a 1 100\nb 1 100\nc 1 100\n", Format::PrometheusText, 0).unwrap();
        head.truncate_before(50);
        let body = "a 2 90\nb 2 100\nc 1 100\nd 1 10\n";
        let r = ing.ingest(&head, body.as_bytes(), Format::PrometheusText, 0).unwrap();
        assert_eq!(
            (r.out_of_order, r.duplicate, r.out_of_bounds, r.appended),
            (1, 1, 1, 1),
            "{r:?}"
        );
        // The same series twice without timestamps: the second is a duplicate,
        // as in Prometheus, even with the same value.
        let r = ing.ingest(&head, b"e 1\ne 1\n", Format::PrometheusText, 200).unwrap();
        assert_eq!((r.appended, r.duplicate), (1, 1));
        // With explicit timestamps both count.
        let r = ing.ingest(&head, b"e 1 300\ne 2 301\n", Format::PrometheusText, 0).unwrap();
        assert_eq!((r.appended, r.duplicate), (2, 0));
    }

    #[test]
    fn re_resolves_series_removed_by_retention() {
        let head = Head::default();
        let mut ing = Ingester::new();
        ing.ingest(&head, b"a 1\n", Format::PrometheusText, 100).unwrap();
        head.truncate_before(200);
        assert_eq!(head.stats().series, 0);
        let r = ing.ingest(&head, b"a 2\n", Format::PrometheusText, 300).unwrap();
        assert_eq!((r.appended, r.series_removed), (1, 0));
        assert_eq!(values(&head, "a"), [(300, "2".to_owned())]);
    }

    #[test]
    fn marks_vanished_series_stale_and_forgets_them() {
        let head = Head::default();
        let mut ing = Ingester::new();
        ing.ingest(&head, b"a 1\nb 1\nc 1 50\n", Format::PrometheusText, 100).unwrap();
        let r = ing.ingest(&head, b"a 2\n", Format::PrometheusText, 200).unwrap();
        // b went away; c had its own timestamp, so staleness does not apply.
        assert_eq!(r.stale_markers, 1);
        assert_eq!(values(&head, "b"), [(100, "1".to_owned()), (200, "stale".to_owned())]);
        assert_eq!(values(&head, "c"), [(50, "1".to_owned())]);
        assert_eq!(ing.cached_series(), 1);
        // A series that comes back is new again, and is not marked twice.
        let r = ing.ingest(&head, b"a 3\nb 3\n", Format::PrometheusText, 300).unwrap();
        assert_eq!((r.stale_markers, r.series_added), (0, 1));
        let r = ing.ingest(&head, b"a 4\nb 4\n", Format::PrometheusText, 400).unwrap();
        assert_eq!(r.stale_markers, 0);
        // A series that switches to explicit timestamps leaves staleness.
        let r = ing.ingest(&head, b"a 5\nb 5 450\n", Format::PrometheusText, 500).unwrap();
        assert_eq!(r.stale_markers, 1);
        assert_eq!(values(&head, "b").last(), Some(&(500, "stale".to_owned())));
    }

    #[test]
    fn compaction_keeps_live_texts_in_exposition_order() {
        let head = Head::default();
        let mut ing = Ingester::new();
        ing.ingest(&head, b"aaaa 1\nb 1\nc 1\n", Format::PrometheusText, 100).unwrap();
        assert_eq!(ing.keys, b"aaaabc");
        // "aaaa" goes away: more than half of the buffer is garbage.
        ing.ingest(&head, b"c 2\nb 2\n", Format::PrometheusText, 200).unwrap();
        assert_eq!((ing.keys.as_slice(), ing.garbage), (&b"cb"[..], 0));
        let r = ing.ingest(&head, b"c 3\nb 3\n", Format::PrometheusText, 300).unwrap();
        assert_eq!((r.appended, r.series_added, ing.cached_series()), (2, 0, 2));
    }

    #[test]
    fn a_failed_scrape_is_marked_stale_by_the_caller() {
        let head = Head::default();
        let mut ing = Ingester::new();
        assert_eq!(ing.mark_stale(&head, 50), 0);
        ing.ingest(&head, b"a 1\nb 1\n", Format::PrometheusText, 100).unwrap();
        assert!(ing.ingest(&head, b"a 2\nb{\n", Format::PrometheusText, 200).is_err());
        assert_eq!(ing.mark_stale(&head, 200), 2);
        assert_eq!(values(&head, "a"), [(100, "1".to_owned()), (200, "stale".to_owned())]);
        // Nothing is stale twice.
        assert_eq!(ing.mark_stale(&head, 250), 0);
        let r = ing.ingest(&head, b"a 3\n", Format::PrometheusText, 300).unwrap();
        assert_eq!((r.appended, r.stale_markers), (1, 0));
    }

    #[test]
    fn relabels_once_per_new_series() {
        let head = Head::default();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let mut ing = Ingester::new().with_relabel(move |labels: Labels| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if labels.metric_name() == Some("drop_me") {
                return None;
            }
            let mut b = labels.builder();
            b.set("job", "node");
            Some(b.labels())
        });
        let body = b"keep 1\ndrop_me 2\n";
        for t in [100, 200] {
            let r = ing.ingest(&head, body, Format::PrometheusText, t).unwrap();
            assert_eq!((r.samples, r.appended, r.dropped), (2, 1, 1));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(dump(&head)[0].0, r#"{__name__="keep", job="node"}"#);
    }

    #[test]
    fn openmetrics_bodies_use_their_own_timestamps() {
        let head = Head::default();
        let mut ing = Ingester::new();
        let body = "# TYPE a counter\na_total 1 1.5 # {trace=\"x\"} 1\na_created 0.5\n# EOF\n";
        let r = ing.ingest(&head, body.as_bytes(), Format::OpenMetrics, 9000).unwrap();
        assert_eq!(r.appended, 2);
        assert_eq!(values(&head, "a_total"), [(1500, "1".to_owned())]);
        assert_eq!(values(&head, "a_created"), [(9000, "0.5".to_owned())]);
    }
    /// Series texts that share prefixes, so that a guessed text is often a
    /// prefix of the actual line: (text, OpenMetrics-valid, canonical labels).
    const UNIVERSE: [(&str, bool, &str); 9] = [
        ("a", true, r#"{__name__="a"}"#),
        ("ab", true, r#"{__name__="ab"}"#),
        ("a_b", true, r#"{__name__="a_b"}"#),
        ("a{x=\"1\"}", true, r#"{__name__="a", x="1"}"#),
        ("a{x=\"10\"}", true, r#"{__name__="a", x="10"}"#),
        ("a{x=\"1\",y=\"2\"}", true, r#"{__name__="a", x="1", y="2"}"#),
        ("a {x=\"2\"}", false, r#"{__name__="a", x="2"}"#),
        ("{\"a\",x=\"3\"}", true, r#"{__name__="a", x="3"}"#),
        ("{\"a.b\"}", true, r#"{__name__="a.b"}"#),
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the order, subset and format of successive scrapes, the
        /// head ends up with exactly the samples and staleness markers a
        /// naive model predicts.
        #[test]
        fn scrapes_match_a_model(
            scrapes in proptest::collection::vec(
                (
                    proptest::strategy::Strategy::prop_shuffle(proptest::sample::subsequence(
                        (0..UNIVERSE.len()).collect::<Vec<_>>(),
                        0..=UNIVERSE.len(),
                    )),
                    proptest::prelude::any::<bool>(),
                    proptest::collection::vec(0u8..100, UNIVERSE.len()),
                ),
                1..8,
            ),
        ) {
            use proptest::prelude::*;
            let head = Head::default();
            let mut ing = Ingester::new();
            let mut model: std::collections::BTreeMap<&str, Vec<(i64, String)>> = Default::default();
            let mut previous: Vec<usize> = Vec::new();
            for (n, (order, om, values)) in scrapes.iter().enumerate() {
                let t = 1000 * (n as i64 + 1);
                let format = if *om { Format::OpenMetrics } else { Format::PrometheusText };
                let present: Vec<usize> =
                    order.iter().copied().filter(|&i| !om || UNIVERSE[i].1).collect();
                let mut body = String::from("# TYPE a gauge\n");
                for &i in &present {
                    body.push_str(&format!("{} {}\n", UNIVERSE[i].0, values[i]));
                    model.entry(UNIVERSE[i].2).or_default().push((t, values[i].to_string()));
                }
                if *om {
                    body.push_str("# EOF\n");
                }
                for &i in &previous {
                    if !present.contains(&i) {
                        model.entry(UNIVERSE[i].2).or_default().push((t, "stale".to_owned()));
                    }
                }
                let r = ing.ingest(&head, body.as_bytes(), format, t).unwrap();
                prop_assert_eq!(r.appended, present.len());
                previous = present;
            }
            let got: std::collections::BTreeMap<String, Vec<(i64, String)>> = dump(&head)
                .into_iter()
                .map(|(labels, samples)| {
                    let samples = samples
                        .iter()
                        .map(|s| (s.t, if is_stale_nan(s.v) { "stale".to_owned() } else { s.v.to_string() }))
                        .collect();
                    (labels, samples)
                })
                .collect();
            let want: std::collections::BTreeMap<String, Vec<(i64, String)>> =
                model.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
