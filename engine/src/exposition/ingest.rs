//! Appending whole exposition bodies to the head, with a per-target cache.
//!
//! Like Prometheus's scrape cache, [`Ingester`] remembers, for every series
//! text a target exposes (`http_requests_total{code="200"}`), the head series
//! it resolved to. A steady-state scrape then costs, per line, the lexing, one
//! hash of the series text and one append: no label strings are built, sorted
//! or hashed, and the head's index is not touched.
//!
//! Error policy. By default ([`ErrorPolicy::RejectBody`]) a body is all or
//! nothing, as in Prometheus, which fails a scrape at its first malformed
//! line: the whole body is parsed and checked before the first sample is
//! appended, so a bad body appends nothing, creates no series, and comes
//! back as the [`ParseError`] of its first bad line. Label problems (invalid
//! UTF-8, an empty name, a name used twice) count as malformed lines.
//! [`ErrorPolicy::SkipLines`] is for bulk imports: bad lines are counted and
//! reported with their positions, the good ones are appended.
//!
//! Staleness. As in Prometheus, a series present in the previous successful
//! scrape (without an explicit timestamp) but absent from this one gets a
//! staleness marker at this scrape's timestamp, and cache entries not seen in
//! a successful scrape are forgotten. When a scrape fails for any reason, the
//! caller should call [`Ingester::mark_stale`], which is what Prometheus does
//! for a failed scrape.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::labels::Labels;
use crate::sample::STALE_NAN;
use crate::storage::{AppendError, Head, SeriesHandle};

use super::parser::{Parser, Record};
use super::{Format, ParseError};

/// What to do with malformed lines; see the [module docs](self).
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
    /// the body is committed, so a rejected body creates none.
    Pending(Labels),
    Series(SeriesHandle),
    Dropped,
}

impl Target {
    /// Appends through this entry, resolving it on first use and again when
    /// retention has removed the series since it was cached. `None` for a
    /// dropped series.
    fn append(&mut self, head: &Head, t: i64, v: f64) -> Option<Result<(), AppendError>> {
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
            match head.append(handle, t, v) {
                Err(AppendError::SeriesRemoved) if retries < 2 => {
                    retries += 1;
                    *self = Target::Series(head.get_or_create(handle.labels()));
                }
                result => return Some(result),
            }
        }
    }
}

struct Slot {
    /// The series text as exposed, the cache key.
    key: Box<[u8]>,
    hash: u64,
    target: Target,
    /// The last ingest call that saw this text.
    seen: u64,
    /// The last successful ingest that appended to it without an explicit
    /// timestamp, which makes it subject to staleness.
    tracked: u64,
}

impl Slot {
    fn vacant() -> Slot {
        Slot { key: Box::default(), hash: 0, target: Target::Vacant, seen: 0, tracked: 0 }
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

/// Appends exposition bodies of one scrape target to a [`Head`]; see the
/// [module docs](self). Keep one per target: the cache and the staleness
/// state describe what that target exposed last.
#[derive(Default)]
pub struct Ingester {
    policy: ErrorPolicy,
    relabel: Option<Relabel>,
    hasher: foldhash::fast::RandomState,
    /// Indices into `slots`, keyed by the slot's series text.
    table: HashTable<usize>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
    /// Numbers ingest calls; 0 means "never".
    iteration: u64,
    last_success: u64,
    /// Entries tracked for staleness by the last successful ingest.
    tracked_last: usize,
    // Per-call scratch, kept to reuse the allocations.
    pending: Vec<PendingAppend>,
    inserted: Vec<usize>,
}

impl Ingester {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_policy(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
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
        let mut report = IngestReport::default();
        // Distinct entries seen by this call, to skip the eviction sweep
        // when the target exposed exactly what it exposed last time.
        let mut seen = 0;
        let mut parser = Parser::new(body, format);
        loop {
            let raw = match parser.next_record() {
                Ok(Some(Record::Sample(raw))) => raw,
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    self.on_error(e, &mut report)?;
                    continue;
                }
            };
            report.samples += 1;
            let key = &body[raw.series_start..raw.series_end];
            let hash = self.hasher.hash_one(key);
            let slots = &self.slots;
            let slot = match self.table.find(hash, |&i| *slots[i].key == *key) {
                Some(&i) => {
                    let slot = &mut self.slots[i];
                    if slot.seen != iteration {
                        slot.seen = iteration;
                        seen += 1;
                    } else if raw.timestamp.is_none() {
                        report.duplicate += 1;
                        continue;
                    }
                    i
                }
                None => {
                    // First sight of this text: only now are labels built
                    // and checked.
                    let labels = match parser.current_labels() {
                        Ok(labels) => labels,
                        Err(e) => {
                            self.on_error(e, &mut report)?;
                            continue;
                        }
                    };
                    let target = match &mut self.relabel {
                        None => Target::Pending(labels),
                        Some(relabel) => match relabel(labels) {
                            Some(labels) if !labels.is_empty() => Target::Pending(labels),
                            _ => Target::Dropped,
                        },
                    };
                    seen += 1;
                    self.insert(key, hash, target, iteration)
                }
            };
            if let Target::Dropped = self.slots[slot].target {
                report.dropped += 1;
                continue;
            }
            self.pending.push(PendingAppend {
                slot,
                t: raw.timestamp.unwrap_or(default_t),
                v: raw.value,
                track: raw.timestamp.is_none(),
            });
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

    fn on_error(&mut self, e: ParseError, report: &mut IngestReport) -> Result<(), ParseError> {
        match self.policy {
            ErrorPolicy::RejectBody => {
                // Forget the entries this body added; nothing was appended.
                for i in std::mem::take(&mut self.inserted) {
                    self.remove(i);
                }
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

    fn insert(&mut self, key: &[u8], hash: u64, target: Target, iteration: u64) -> usize {
        let slot = Slot { key: key.into(), hash, target, seen: iteration, tracked: 0 };
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
        let slots = &self.slots;
        self.table.insert_unique(hash, i, |&j| slots[j].hash);
        self.live += 1;
        self.inserted.push(i);
        i
    }

    fn remove(&mut self, i: usize) {
        if let Ok(entry) = self.table.find_entry(self.slots[i].hash, |&j| j == i) {
            entry.remove();
        }
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
        for p in &self.pending {
            let slot = &mut self.slots[p.slot];
            let first = matches!(slot.target, Target::Pending(_));
            let Some(result) = slot.target.append(head, p.t, p.v) else {
                continue;
            };
            match result {
                Ok(()) => {
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
        self.last_success = iteration;
        self.tracked_last = tracked;
    }
}
