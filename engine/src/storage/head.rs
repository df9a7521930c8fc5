//! The in-memory head: every active series and its recent samples.
//!
//! Layout, after Prometheus's head:
//! - each series owns its compressed chunks behind its own mutex, so a caller
//!   holding a [`SeriesHandle`] appends without touching any shared lock;
//! - one `RwLock` guards the index (series by label hash, series by id, the
//!   postings of `storage::postings`); it is written only to create or remove
//!   series and read by lookups and queries.
//!
//! Locks are always taken index first, then series, never the other way; the
//! decoded-chunk cache's lock comes last and is held for one read.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use hashbrown::HashTable;

use crate::histogram::{CounterResetHint, FloatHistogram};
use crate::labels::{Interner, Labels, Str};
use crate::matcher::Matcher;
use crate::prefetch::prefetch;
use crate::sample::{HistogramSample, Sample};

use super::chunk;
use super::postings::Postings;
use super::series::{DecodedChunks, SeriesChunks};
use super::{Queryable, SelectedSeries, SeriesId, StorageError};

/// Receives every change a [`Head`] accepts, so the host can make them
/// durable (a write-ahead log) while the engine stays free of I/O.
///
/// Calls are made with head locks held, which is what keeps the log's order
/// replayable: a series is announced under the index write lock, before any
/// handle to it exists, and a series' samples are reported under that series'
/// lock, so they reach the log in the order the head took them. Implementations
/// must therefore be quick (buffer, never block on I/O) and must not call back
/// into the head.
pub trait AppendLog: Send + Sync {
    /// A new series, reported once, before any of its samples.
    fn series_created(&self, id: SeriesId, labels: &Labels);
    /// Samples appended to series `id`, oldest first. Rejected samples and
    /// exact resends of the newest sample are not reported.
    fn samples_appended(&self, id: SeriesId, samples: &[Sample]);
}

/// Tuning of a [`Head`].
#[derive(Clone, Debug)]
pub struct HeadOptions {
    /// Samples per compressed chunk before a new one is cut (1 to 65535).
    pub chunk_samples: usize,
    /// Series whose recently read chunks are kept decoded, 0 for none: the
    /// first this many created, each costing up to `chunk_samples` × 32
    /// bytes. For heads read in windows that slide a step at a time, as
    /// backtests do: a read then decodes nothing it decoded before. A
    /// service's queries seldom repeat that way, so by default none are.
    pub decoded_series: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions { chunk_samples: 120, decoded_series: 0 }
    }
}

/// Why a sample was not appended. The messages are Prometheus's.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder { t: i64, last_t: i64 },
    #[error("duplicate sample for timestamp")]
    Duplicate { t: i64 },
    #[error("out of bounds")]
    OutOfBounds { t: i64, min_valid: i64 },
    /// The handle's series was removed by retention; resolve it again.
    #[error("series was removed from the head")]
    SeriesRemoved,
}

/// Why [`Head::append_histogram`] did not append a histogram sample.
#[derive(Debug, thiserror::Error)]
pub enum HistogramAppendError {
    #[error("invalid native histogram: {0}")]
    Invalid(#[from] crate::histogram::HistogramError),
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// What [`Head::append_many`] did. An exact resend of the newest sample is
/// neither appended nor rejected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppendSummary {
    pub appended: usize,
    pub rejected: usize,
    /// The first rejection, for the caller's error response.
    pub first_error: Option<AppendError>,
}

/// Counters describing the head.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadStats {
    pub series: u64,
    pub samples_appended: u64,
    pub out_of_order_rejected: u64,
    pub duplicate_rejected: u64,
    pub out_of_bounds_rejected: u64,
    /// The oldest readable time: the oldest sample, or the retention bound
    /// once truncation has kept older samples in a chunk straddling it.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// Compressed chunks in memory, open ones included.
    pub chunks: u64,
    pub series_created: u64,
    pub series_removed: u64,
}

/// Approximate heap bytes held by a [`Head`], by purpose. Allocator
/// overhead is not included.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadMemory {
    /// Compressed samples, unused buffer capacity included.
    pub chunks: usize,
    /// Per-series structures and their label arrays.
    pub series: usize,
    /// Lookup tables and postings lists.
    pub index: usize,
    /// Interned label names and values.
    pub strings: usize,
    /// Chunks kept decoded ([`HeadOptions::decoded_series`]).
    pub decoded: usize,
}

impl HeadMemory {
    pub fn total(&self) -> usize {
        self.chunks + self.series + self.index + self.strings + self.decoded
    }
}

struct MemSeries {
    id: SeriesId,
    labels: Labels,
    state: Mutex<SeriesState>,
    /// The address of the open chunk's last byte, which the next append
    /// writes to, kept outside the lock for [`SeriesHandle::prefetch_tail`]
    /// alone: it is never dereferenced, and a stale value costs nothing.
    append_at: AtomicUsize,
}

#[derive(Default)]
struct SeriesState {
    chunks: SeriesChunks,
    /// Native histogram samples, oldest first, kept uncompressed; absent for
    /// the float-only series nearly all are, which then pay one pointer
    /// (a bare `Vec` would cost them three words each).
    #[allow(clippy::box_collection)]
    histograms: Option<Box<Vec<HistogramSample>>>,
    /// Set under the index write lock when retention drops the series, so a
    /// handle that outlived it cannot write into a series nobody can read.
    removed: bool,
}

impl MemSeries {
    fn lock(&self) -> MutexGuard<'_, SeriesState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.lock().overlaps(mint, maxt)
    }
}

impl SeriesState {
    fn histograms(&self) -> &[HistogramSample] {
        self.histograms.as_deref().map_or(&[], Vec::as_slice)
    }

    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        let hists = self.histograms();
        self.chunks.overlaps(mint, maxt)
            || hists.get(hists.partition_point(|h| h.t < mint)).is_some_and(|h| h.t <= maxt)
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.histograms().is_empty()
    }

    fn time_range(&self) -> Option<(i64, i64)> {
        let floats = self.chunks.time_range();
        let hists = match self.histograms() {
            [] => None,
            [first, .., last] => Some((first.t, last.t)),
            [only] => Some((only.t, only.t)),
        };
        match (floats, hists) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, None) | (None, one) => one,
        }
    }

    /// Whether a sample at `t` would not be the series' newest, of either
    /// kind: a float and a histogram sample never share a timestamp.
    fn check_newest_histogram(&self, t: i64) -> Result<(), AppendError> {
        match self.histograms().last() {
            Some(last) if t < last.t => Err(AppendError::OutOfOrder { t, last_t: last.t }),
            Some(last) if t == last.t => Err(AppendError::Duplicate { t }),
            _ => Ok(()),
        }
    }
}

/// A cheap, cloneable reference to one series of a head, for callers (a scrape
/// loop) that append to the same series over and over without looking it up.
#[derive(Clone)]
pub struct SeriesHandle(Arc<MemSeries>);

impl std::fmt::Debug for SeriesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeriesHandle({} {})", self.0.id, self.0.labels)
    }
}

impl SeriesHandle {
    pub fn labels(&self) -> &Labels {
        &self.0.labels
    }

    pub fn id(&self) -> SeriesId {
        self.0.id
    }

    /// Asks the CPU to start loading the series' lock and state into cache,
    /// for a caller that will append to it shortly. Appends to many series
    /// in a row (a scrape) otherwise wait for one cache miss after another:
    /// the lock's atomic instruction keeps later loads from overlapping it,
    /// but prefetches are not held back. A hint only; it does nothing
    /// where there is no prefetch instruction.
    #[inline]
    pub fn prefetch(&self) {
        let p = Arc::as_ptr(&self.0).cast::<u8>();
        for line in 0..size_of::<MemSeries>().div_ceil(64) {
            prefetch(p.wrapping_add(line * 64));
        }
    }

    /// The second stage after [`SeriesHandle::prefetch`], once the series
    /// itself has arrived: starts loading the end of its open chunk, where
    /// the next append writes. Without it that write misses, and the next
    /// series' lock waits for the miss to resolve.
    #[inline]
    pub fn prefetch_tail(&self) {
        let at = self.0.append_at.load(Ordering::Relaxed);
        if at != 0 {
            prefetch(std::ptr::without_provenance::<u8>(at));
        }
    }
}

#[derive(Default)]
struct Index {
    interner: Interner,
    /// Keyed by [`Head::hash_labels`]; sets whose hashes collide coexist and
    /// are told apart by comparing labels. Hashes are recomputed when the
    /// table grows rather than stored, which saves 8 bytes per series.
    by_labels: HashTable<Arc<MemSeries>>,
    by_id: HashTable<Arc<MemSeries>>,
    postings: Postings,
    next_id: SeriesId,
    series_created: u64,
    series_removed: u64,
}

fn id_hash(id: SeriesId) -> u64 {
    foldhash::fast::FixedState::default().hash_one(id)
}

impl Index {
    fn by_labels(&self, labels: &Labels, hash: u64) -> Option<&Arc<MemSeries>> {
        self.by_labels.find(hash, |s| s.labels == *labels)
    }

    fn by_id(&self, id: SeriesId) -> Option<&Arc<MemSeries>> {
        self.by_id.find(id_hash(id), |s| s.id == id)
    }

    /// Whether any of `ids` has samples in `[mint, maxt]`.
    fn any_overlaps(&self, ids: &[SeriesId], mint: i64, maxt: i64) -> bool {
        ids.iter().any(|&id| self.by_id(id).is_some_and(|s| s.overlaps(mint, maxt)))
    }

    /// Matching series with samples in `[mint, maxt]`, in id order.
    fn matching(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> impl Iterator<Item = &Arc<MemSeries>> {
        self.postings
            .select(matchers)
            .into_iter()
            .filter_map(|id| self.by_id(id))
            .filter(move |s| s.overlaps(mint, maxt))
    }
}

/// The chunks kept decoded, for the series with the lowest ids: ids count
/// up from 0, so a vector indexes them without hashing, and the series a
/// backtest loads come first.
struct DecodedCache {
    by_id: Vec<DecodedChunks>,
    max_series: usize,
}

impl DecodedCache {
    fn slot(&mut self, id: SeriesId) -> Option<&mut DecodedChunks> {
        let i = usize::try_from(id).ok().filter(|&i| i < self.max_series)?;
        if i >= self.by_id.len() {
            self.by_id.resize_with(i + 1, DecodedChunks::default);
        }
        self.by_id.get_mut(i)
    }
}

/// A counter bumped by every append, on its own cache line so appenders on
/// other cores do not keep invalidating the fields read next to it.
#[repr(align(64))]
#[derive(Default)]
struct HotCounter(AtomicU64);

/// The in-memory TSDB head. All methods take `&self` and are safe to call from
/// many threads; the engine itself never spawns any.
pub struct Head {
    chunk_samples: usize,
    /// Seeded per head: label values come from scraped targets and remote
    /// writers, who must not be able to aim collisions at the table. Also
    /// several times faster than `Labels::stable_hash`, which this table
    /// does not need to be stable.
    label_hasher: foldhash::fast::RandomState,
    index: RwLock<Index>,
    /// Appends older than this fail; reads never return anything older.
    min_valid_time: AtomicI64,
    samples_appended: HotCounter,
    out_of_order: AtomicU64,
    duplicates: AtomicU64,
    out_of_bounds: AtomicU64,
    /// Set once, after durability has replayed its log into the head; a
    /// single atomic load on the append path when unset.
    append_log: OnceLock<Arc<dyn AppendLog>>,
    /// With [`HeadOptions::decoded_series`].
    decoded: Option<Mutex<DecodedCache>>,
    /// Set by the first native histogram appended: until then reads of
    /// histograms return at once, without locking the series again.
    has_histograms: AtomicBool,
}

impl Default for Head {
    fn default() -> Self {
        Head::new(HeadOptions::default())
    }
}

impl Head {
    pub fn new(opts: HeadOptions) -> Self {
        Head {
            chunk_samples: opts.chunk_samples.clamp(1, chunk::MAX_SAMPLES),
            label_hasher: foldhash::fast::RandomState::default(),
            index: RwLock::new(Index::default()),
            min_valid_time: AtomicI64::new(i64::MIN),
            samples_appended: HotCounter::default(),
            out_of_order: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_bounds: AtomicU64::new(0),
            append_log: OnceLock::new(),
            decoded: (opts.decoded_series > 0).then(|| {
                Mutex::new(DecodedCache { by_id: Vec::new(), max_series: opts.decoded_series })
            }),
            has_histograms: AtomicBool::new(false),
        }
    }

    /// Installs the log that is told of every accepted change from now on.
    /// There is one per head: a second call hands its log back.
    pub fn set_append_log(&self, log: Arc<dyn AppendLog>) -> Result<(), Arc<dyn AppendLog>> {
        self.append_log.set(log)
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn hash_labels(&self, labels: &Labels) -> u64 {
        self.label_hasher.hash_one(labels)
    }

    /// The series with exactly these labels, created if new.
    pub fn get_or_create(&self, labels: &Labels) -> SeriesHandle {
        let hash = self.hash_labels(labels);
        if let Some(s) = self.read_index().by_labels(labels, hash) {
            return SeriesHandle(s.clone());
        }
        let mut idx = self.write_index();
        if let Some(s) = idx.by_labels(labels, hash) {
            return SeriesHandle(s.clone());
        }
        let labels = idx.interner.intern_labels(labels);
        let id = idx.next_id;
        idx.next_id += 1;
        let s = Arc::new(MemSeries {
            id,
            labels,
            state: Mutex::default(),
            append_at: AtomicUsize::new(0),
        });
        idx.by_labels.insert_unique(hash, s.clone(), |s| self.hash_labels(&s.labels));
        idx.by_id.insert_unique(id_hash(id), s.clone(), |s| id_hash(s.id));
        idx.postings.add(id, &s.labels);
        idx.series_created += 1;
        if let Some(log) = self.append_log.get() {
            log.series_created(id, &s.labels);
        }
        SeriesHandle(s)
    }

    /// The series with exactly these labels, if present.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesHandle> {
        self.read_index()
            .by_labels(labels, self.hash_labels(labels))
            .map(|s| SeriesHandle(s.clone()))
    }

    /// Appends one sample. Rejections are counted in [`HeadStats`].
    pub fn append(&self, series: &SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        if self.append_uncounted(series, t, v)? {
            self.count_appended(1);
        }
        Ok(())
    }

    /// [`Head::append`] for callers appending many samples in a row, which
    /// add them to the head's total of appended samples once, with
    /// [`Head::count_appended`]: that total is one atomic all appends share,
    /// and writing it per sample costs a scrape's ingest several percent.
    /// `Ok(false)` for an exact resend of the newest sample, which is not
    /// appended. Rejections are counted here.
    #[inline]
    pub fn append_uncounted(
        &self,
        series: &SeriesHandle,
        t: i64,
        v: f64,
    ) -> Result<bool, AppendError> {
        let appended = {
            let mut st = series.0.lock();
            let appended = self.append_locked(&mut st, t, v);
            if let Ok(true) = appended {
                series.0.append_at.store(st.chunks.tail_address(), Ordering::Relaxed);
                if let Some(log) = self.append_log.get() {
                    log.samples_appended(series.0.id, &[Sample::new(t, v)]);
                }
            }
            appended
        };
        if let Err(e) = &appended {
            self.count_rejection(e);
        }
        appended
    }

    /// Adds `n` samples appended with [`Head::append_uncounted`] to the total.
    pub fn count_appended(&self, n: usize) {
        self.samples_appended.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Appends samples of one series, oldest first, under a single lock.
    /// Rejected samples are skipped and counted like [`Head::append`]'s; a
    /// removed series rejects them all.
    pub fn append_many(&self, series: &SeriesHandle, samples: &[Sample]) -> AppendSummary {
        let mut summary = AppendSummary::default();
        let log = self.append_log.get();
        {
            let mut st = series.0.lock();
            // Accepted samples are logged in runs, so a clean batch is one call.
            let mut run_start = 0;
            for (i, s) in samples.iter().enumerate() {
                let accepted = match self.append_locked(&mut st, s.t, s.v) {
                    Ok(true) => {
                        summary.appended += 1;
                        true
                    }
                    Ok(false) => false,
                    Err(AppendError::SeriesRemoved) => {
                        summary.rejected = samples.len();
                        summary.first_error = Some(AppendError::SeriesRemoved);
                        return summary;
                    }
                    Err(e) => {
                        self.count_rejection(&e);
                        summary.rejected += 1;
                        summary.first_error.get_or_insert(e);
                        false
                    }
                };
                if !accepted {
                    if let Some(log) = log
                        && run_start < i
                    {
                        log.samples_appended(series.0.id, &samples[run_start..i]);
                    }
                    run_start = i + 1;
                }
            }
            if let Some(log) = log
                && run_start < samples.len()
            {
                log.samples_appended(series.0.id, &samples[run_start..]);
            }
        }
        self.samples_appended.0.fetch_add(summary.appended as u64, Ordering::Relaxed);
        summary
    }

    /// Checks and appends under the series lock; `Ok(false)` for an exact
    /// resend of the newest sample, which Prometheus silently accepts.
    fn append_locked(&self, st: &mut SeriesState, t: i64, v: f64) -> Result<bool, AppendError> {
        if st.removed {
            return Err(AppendError::SeriesRemoved);
        }
        // Read under the series lock: truncation raises the bound before it
        // locks each series, so a sample it has to drop cannot slip in after.
        let min_valid = self.min_valid_time.load(Ordering::Relaxed);
        if t < min_valid {
            return Err(AppendError::OutOfBounds { t, min_valid });
        }
        if let Some((last_t, last_v)) = st.chunks.last() {
            if t < last_t {
                return Err(AppendError::OutOfOrder { t, last_t });
            }
            if t == last_t {
                return if last_v == v.to_bits() {
                    Ok(false)
                } else {
                    Err(AppendError::Duplicate { t })
                };
            }
        }
        if st.histograms.is_some() {
            st.check_newest_histogram(t)?;
        }
        st.chunks.push(t, v, self.chunk_samples);
        Ok(true)
    }

    /// Appends one native histogram sample, with the same ordering rules as
    /// floats across both kinds. The stored sample's counter-reset hint is
    /// decided here, as Prometheus's head does: a gauge stays a gauge; a
    /// histogram following another one is a reset when its counts went
    /// down (or its hint says so) and not a reset otherwise; one that starts
    /// the series, or follows a float, is unknown.
    ///
    /// The head's [`AppendLog`] is not told: native histograms are not yet
    /// made durable.
    pub fn append_histogram(
        &self,
        series: &SeriesHandle,
        t: i64,
        mut h: Arc<FloatHistogram>,
    ) -> Result<(), HistogramAppendError> {
        h.validate()?;
        let result = (|| {
            let mut st = series.0.lock();
            if st.removed {
                return Err(AppendError::SeriesRemoved);
            }
            let min_valid = self.min_valid_time.load(Ordering::Relaxed);
            if t < min_valid {
                return Err(AppendError::OutOfBounds { t, min_valid });
            }
            let last_float = st.chunks.last().map(|(t, _)| t);
            let previous = st.histograms().last().filter(|p| last_float.is_none_or(|f| p.t > f));
            if let Some(p) = previous
                && t == p.t
                && p.h.as_ref() == without_hint(&h, p.h.counter_reset_hint).as_ref()
            {
                return Ok(false);
            }
            st.check_newest_histogram(t)?;
            if let Some(last_t) = last_float {
                if t < last_t {
                    return Err(AppendError::OutOfOrder { t, last_t });
                }
                if t == last_t {
                    return Err(AppendError::Duplicate { t });
                }
            }
            let hint = match (h.counter_reset_hint, previous) {
                (CounterResetHint::Gauge, _) => CounterResetHint::Gauge,
                (CounterResetHint::Reset, _) => CounterResetHint::Reset,
                (_, None) => CounterResetHint::Unknown,
                (_, Some(p)) if h.detect_reset(&p.h) => CounterResetHint::Reset,
                (_, Some(_)) => CounterResetHint::NotReset,
            };
            if h.counter_reset_hint != hint {
                Arc::make_mut(&mut h).counter_reset_hint = hint;
            }
            self.has_histograms.store(true, Ordering::Relaxed);
            st.histograms.get_or_insert_default().push(HistogramSample { t, h });
            Ok(true)
        })();
        match result {
            Ok(true) => {
                self.samples_appended.0.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => {
                self.count_rejection(&e);
                Err(e.into())
            }
        }
    }

    fn count_rejection(&self, e: &AppendError) {
        let counter = match e {
            AppendError::OutOfOrder { .. } => &self.out_of_order,
            AppendError::Duplicate { .. } => &self.duplicates,
            AppendError::OutOfBounds { .. } => &self.out_of_bounds,
            AppendError::SeriesRemoved => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Looks up or creates the series, then appends.
    pub fn append_labels(&self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        let s = self.get_or_create(labels);
        self.append(&s, t, v)
    }

    /// Time-based retention: drops every chunk whose samples are all older
    /// than `mint` and every series left without samples (their handles then
    /// fail with [`AppendError::SeriesRemoved`]). Later appends before `mint`
    /// fail as out of bounds, and reads never return samples before it, even
    /// those still held in a chunk that straddles `mint`.
    pub fn truncate_before(&self, mint: i64) {
        // Relaxed is enough: every append reads the bound under its series
        // lock, which the loop below takes after this store.
        self.min_valid_time.fetch_max(mint, Ordering::Relaxed);
        let mint = self.min_valid_time.load(Ordering::Relaxed);

        // Free chunks without the index lock, so series creation and queries
        // are not held up while memory is returned.
        let all: Vec<Arc<MemSeries>> = self.read_index().by_id.iter().cloned().collect();
        let mut emptied = Vec::new();
        for s in all {
            let empty = {
                let mut st = s.lock();
                st.chunks.truncate_before(mint);
                if let Some(h) = &mut st.histograms {
                    h.retain(|h| h.t >= mint);
                    if h.is_empty() {
                        st.histograms = None;
                    }
                }
                st.is_empty()
            };
            if empty {
                emptied.push(s);
            }
        }
        if let Some(c) = &self.decoded {
            // Chunks held may be ones just dropped, and slots of series
            // removed below would linger: start afresh.
            c.lock().unwrap_or_else(PoisonError::into_inner).by_id = Vec::new();
        }
        if emptied.is_empty() {
            return;
        }

        let mut idx = self.write_index();
        let mut removed = Vec::with_capacity(emptied.len());
        for s in emptied {
            let mut st = s.lock();
            // An append may have landed since the scan.
            if st.removed || !st.is_empty() {
                continue;
            }
            st.removed = true;
            drop(st);
            removed.push(s);
        }
        for s in &removed {
            if let Ok(e) =
                idx.by_labels.find_entry(self.hash_labels(&s.labels), |x| Arc::ptr_eq(x, s))
            {
                e.remove();
            }
            if let Ok(e) = idx.by_id.find_entry(id_hash(s.id), |x| x.id == s.id) {
                e.remove();
            }
        }
        idx.postings.remove(removed.iter().map(|s| (s.id, &s.labels)));
        idx.series_removed += removed.len() as u64;
        // Tables never shrink by themselves; give memory back after churn.
        if idx.by_id.len() < idx.by_id.capacity() / 4 {
            idx.by_labels.shrink_to_fit(|s| self.hash_labels(&s.labels));
            idx.by_id.shrink_to_fit(|s| id_hash(s.id));
        }
        // The strings can only be collected once nothing here refers to them.
        drop(removed);
        idx.interner.collect_garbage();
    }

    /// Counters and time range. Walks every series (to find the time range
    /// without making appends maintain shared state), so call it at scrape
    /// intervals, not per query.
    pub fn stats(&self) -> HeadStats {
        let idx = self.read_index();
        let mut min_time: Option<i64> = None;
        let mut max_time: Option<i64> = None;
        let mut chunks = 0;
        for s in idx.by_id.iter() {
            let st = s.lock();
            chunks += st.chunks.chunk_count() as u64;
            if let Some((first, last)) = st.time_range() {
                min_time = Some(min_time.map_or(first, |m| m.min(first)));
                max_time = Some(max_time.map_or(last, |m| m.max(last)));
            }
        }
        let min_valid = self.min_valid_time.load(Ordering::Relaxed);
        HeadStats {
            series: idx.by_id.len() as u64,
            samples_appended: self.samples_appended.0.load(Ordering::Relaxed),
            out_of_order_rejected: self.out_of_order.load(Ordering::Relaxed),
            duplicate_rejected: self.duplicates.load(Ordering::Relaxed),
            out_of_bounds_rejected: self.out_of_bounds.load(Ordering::Relaxed),
            min_time: min_time.map(|m| m.max(min_valid)),
            max_time,
            chunks,
            series_created: idx.series_created,
            series_removed: idx.series_removed,
        }
    }

    /// An independent head holding the same series and samples, with
    /// `opts`. For runs that each write into a head of their own over the
    /// same data (backtests): copying the compressed chunks is far cheaper
    /// than appending every sample again. The retention bound is kept; the
    /// counters start from zero. Series get new ids in the order of their
    /// labels, which is the order selections return them in: sorting a
    /// selection then finds it sorted already.
    pub fn copy(&self, opts: HeadOptions) -> Head {
        let copy = Head::new(opts);
        copy.min_valid_time.store(self.min_valid_time.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut all: Vec<Arc<MemSeries>> = self.read_index().by_id.iter().cloned().collect();
        crate::sort::unstable_by(&mut all, |a, b| cmp_interned(&a.labels, &b.labels));
        for s in all {
            let (chunks, histograms) = {
                let st = s.lock();
                if st.removed {
                    continue;
                }
                (st.chunks.clone(), st.histograms.clone())
            };
            if histograms.is_some() {
                copy.has_histograms.store(true, Ordering::Relaxed);
            }
            let series = copy.get_or_create(&s.labels);
            let mut st = series.0.lock();
            st.chunks = chunks;
            st.histograms = histograms;
        }
        copy
    }

    /// Calls `f` with every series and its samples at or after `mint` (and
    /// the retention bound), in id order; series without such samples are
    /// included, with none. For checkpoints: each series is decoded under its
    /// own lock and `f` runs with no lock held, so appends and series
    /// creation carry on meanwhile. Series created during the walk may or may
    /// not be visited.
    pub fn for_each_series<E: From<StorageError>>(
        &self,
        mint: i64,
        mut f: impl FnMut(SeriesId, &Labels, &[Sample]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mint = self.readable_from(mint);
        let mut all: Vec<Arc<MemSeries>> = self.read_index().by_id.iter().cloned().collect();
        crate::sort::unstable_by(&mut all, |a, b| a.id.cmp(&b.id));
        let mut buf = Vec::new();
        for s in all {
            buf.clear();
            {
                let mut st = s.lock();
                if st.removed {
                    continue;
                }
                st.chunks
                    .read(mint, i64::MAX, &mut buf, None)
                    .map_err(|e| StorageError::Source(format!("series {}: {e}", s.id)))?;
            }
            f(s.id, &s.labels, &buf)?;
        }
        Ok(())
    }

    /// Heap bytes held, by purpose. Walks every series, like [`Head::stats`].
    pub fn memory_usage(&self) -> HeadMemory {
        let idx = self.read_index();
        let mut mem = HeadMemory {
            index: idx.by_labels.allocation_size()
                + idx.by_id.allocation_size()
                + idx.postings.heap_size(),
            strings: idx.interner.heap_size(),
            ..HeadMemory::default()
        };
        for s in idx.by_id.iter() {
            // The Arc's allocation: two counts and the series itself.
            mem.series +=
                2 * size_of::<usize>() + size_of::<MemSeries>() + s.labels.heap_size_shallow();
            let st = s.lock();
            mem.chunks += st.chunks.heap_size();
            if let Some(h) = &st.histograms {
                mem.chunks += h.capacity() * size_of::<HistogramSample>()
                    + h.iter().map(|h| histogram_heap_size(&h.h)).sum::<usize>();
            }
        }
        drop(idx);
        if let Some(c) = &self.decoded {
            let c = c.lock().unwrap_or_else(PoisonError::into_inner);
            mem.decoded = c.by_id.capacity() * size_of::<DecodedChunks>()
                + c.by_id.iter().map(DecodedChunks::heap_size).sum::<usize>();
        }
        mem
    }

    fn read_histograms(
        &self,
        s: &MemSeries,
        mint: i64,
        maxt: i64,
        out: &mut Vec<HistogramSample>,
    ) -> Result<(), StorageError> {
        if !self.has_histograms.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mint = self.readable_from(mint);
        let st = s.lock();
        if st.removed {
            return Err(StorageError::SeriesNotFound(s.id));
        }
        let all = st.histograms();
        let from = all.partition_point(|h| h.t < mint);
        let to = all.partition_point(|h| h.t <= maxt);
        if from < to {
            out.extend_from_slice(&all[from..to]);
        }
        Ok(())
    }

    /// Queries never see samples older than the retention bound.
    fn readable_from(&self, mint: i64) -> i64 {
        mint.max(self.min_valid_time.load(Ordering::Relaxed))
    }

    fn read_series(
        &self,
        s: &MemSeries,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        let mint = self.readable_from(mint);
        let mut st = s.lock();
        // As if looked up by id: retention may have removed it since.
        if st.removed {
            return Err(StorageError::SeriesNotFound(s.id));
        }
        if mint > maxt {
            return Ok(());
        }
        let mut cache =
            self.decoded.as_ref().map(|c| c.lock().unwrap_or_else(PoisonError::into_inner));
        st.chunks
            .read(mint, maxt, out, cache.as_mut().and_then(|c| c.slot(s.id)))
            .map_err(|e| StorageError::Source(format!("series {}: {e}", s.id)))
    }
}

/// `Labels::cmp`, skipping string comparisons between strings this head
/// interned once: sorting a large selection is otherwise mostly `memcmp` of
/// equal metric names, jobs and label names.
fn cmp_interned(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering::Equal;
    for (x, y) in a.iter().zip(b.iter()) {
        if !Arc::ptr_eq(&x.name, &y.name) {
            match x.name.cmp(&y.name) {
                Equal => {}
                o => return o,
            }
        }
        if !Arc::ptr_eq(&x.value, &y.value) {
            match x.value.cmp(&y.value) {
                Equal => {}
                o => return o,
            }
        }
    }
    a.len().cmp(&b.len())
}

impl Queryable for Head {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries>, StorageError> {
        let mint = self.readable_from(mint);
        if mint > maxt {
            return Ok(Vec::new());
        }
        let mut out: Vec<SelectedSeries> = self
            .read_index()
            .matching(matchers, mint, maxt)
            .map(|s| SelectedSeries {
                id: s.id,
                labels: s.labels.clone(),
                series: Some(SeriesHandle(s.clone())),
            })
            .collect();
        crate::sort::unstable_by(&mut out, |a, b| cmp_interned(&a.labels, &b.labels));
        Ok(out)
    }

    fn samples(
        &self,
        id: SeriesId,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        // Decode without the index lock held.
        let s = self.read_index().by_id(id).cloned().ok_or(StorageError::SeriesNotFound(id))?;
        self.read_series(&s, mint, maxt, out)
    }

    fn samples_of(
        &self,
        s: &SelectedSeries,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        match &s.series {
            Some(h) => self.read_series(&h.0, mint, maxt, out),
            None => self.samples(s.id, mint, maxt, out),
        }
    }

    fn histograms_of(
        &self,
        s: &SelectedSeries,
        mint: i64,
        maxt: i64,
        out: &mut Vec<HistogramSample>,
    ) -> Result<(), StorageError> {
        match &s.series {
            Some(h) => self.read_histograms(&h.0, mint, maxt, out),
            None => {
                let series = self
                    .read_index()
                    .by_id(s.id)
                    .cloned()
                    .ok_or(StorageError::SeriesNotFound(s.id))?;
                self.read_histograms(&series, mint, maxt, out)
            }
        }
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Str>, StorageError> {
        let mint = self.readable_from(mint);
        if mint > maxt {
            return Ok(Vec::new());
        }
        let idx = self.read_index();
        let mut names: Vec<Str> = if matchers.is_empty() {
            // One live series per name settles it, without a full scan.
            idx.postings
                .names()
                .filter(|n| {
                    idx.postings.lists_of_name(n).any(|ids| idx.any_overlaps(ids, mint, maxt))
                })
                .cloned()
                .collect()
        } else {
            let mut seen = hashbrown::HashSet::<Str, foldhash::fast::RandomState>::default();
            for s in idx.matching(matchers, mint, maxt) {
                for l in s.labels.iter() {
                    if !seen.contains(&*l.name) {
                        seen.insert(l.name.clone());
                    }
                }
            }
            seen.into_iter().collect()
        };
        crate::sort::unstable(&mut names);
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Str>, StorageError> {
        let mint = self.readable_from(mint);
        if mint > maxt {
            return Ok(Vec::new());
        }
        let idx = self.read_index();
        let mut values: Vec<Str> = if matchers.is_empty() {
            idx.postings
                .values(name)
                .filter(|(_, ids)| idx.any_overlaps(ids, mint, maxt))
                .map(|(v, _)| v.clone())
                .collect()
        } else {
            let mut seen = hashbrown::HashSet::<Str, foldhash::fast::RandomState>::default();
            for s in idx.matching(matchers, mint, maxt) {
                if let Some(l) = s.labels.iter().find(|l| &*l.name == name)
                    && !seen.contains(&*l.value)
                {
                    seen.insert(l.value.clone());
                }
            }
            seen.into_iter().collect()
        };
        crate::sort::unstable(&mut values);
        Ok(values)
    }
}

/// `h` with `hint`, for comparing an incoming sample with a stored one whose
/// hint the head set.
fn without_hint(h: &Arc<FloatHistogram>, hint: CounterResetHint) -> Arc<FloatHistogram> {
    if h.counter_reset_hint == hint {
        return h.clone();
    }
    let mut h = FloatHistogram::clone(h);
    h.counter_reset_hint = hint;
    Arc::new(h)
}

/// Heap bytes of a stored histogram sample's value.
fn histogram_heap_size(h: &FloatHistogram) -> usize {
    size_of::<FloatHistogram>()
        + (h.positive_spans.capacity() + h.negative_spans.capacity())
            * size_of::<crate::histogram::Span>()
        + (h.positive_buckets.capacity()
            + h.negative_buckets.capacity()
            + h.custom_values.capacity())
            * size_of::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchOp;
    use crate::sample::{STALE_NAN, is_stale_nan};

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    fn read(h: &Head, id: SeriesId, mint: i64, maxt: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        h.samples(id, mint, maxt, &mut out).unwrap();
        out
    }

    fn strs(v: Vec<Str>) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn head_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Head>();
        check::<SeriesHandle>();
    }

    #[test]
    fn append_and_select() {
        let h = Head::default();
        let a = l(&[("__name__", "up"), ("job", "a")]);
        let b = l(&[("__name__", "up"), ("job", "b")]);
        h.append_labels(&b, 10, 1.0).unwrap();
        h.append_labels(&a, 10, 2.0).unwrap();
        h.append_labels(&a, 20, 3.0).unwrap();
        let m = [Matcher::equal("__name__", "up")];
        let sel = h.select(&m, 0, 100).unwrap();
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[0].labels, a);
        let mut out = Vec::new();
        h.samples(sel[0].id, 15, 100, &mut out).unwrap();
        assert_eq!(out, vec![Sample::new(20, 3.0)]);
        let m = [Matcher::new(MatchOp::Regex, "job", "b").unwrap()];
        assert_eq!(h.select(&m, 0, 100).unwrap().len(), 1);
        assert!(h.select(&m, 11, 100).unwrap().is_empty());
    }

    #[test]
    fn a_copy_holds_the_same_samples_and_goes_its_own_way() {
        let h = Head::new(HeadOptions { chunk_samples: 4, ..HeadOptions::default() });
        let a = l(&[("__name__", "up"), ("job", "a")]);
        let b = l(&[("__name__", "up"), ("job", "b")]);
        for t in 0..30 {
            h.append_labels(&a, t * 10, t as f64).unwrap();
            h.append_labels(&b, t * 10 + 5, -(t as f64)).unwrap();
        }
        h.truncate_before(45);
        let c = h.copy(HeadOptions { decoded_series: 8, ..HeadOptions::default() });
        let m = [Matcher::equal("__name__", "up")];
        let (hs, cs) = (h.select(&m, 0, 1000).unwrap(), c.select(&m, 0, 1000).unwrap());
        assert_eq!(cs.len(), 2);
        for (x, y) in hs.iter().zip(&cs) {
            assert_eq!(x.labels, y.labels);
            assert_eq!(read(&h, x.id, i64::MIN, i64::MAX), read(&c, y.id, i64::MIN, i64::MAX));
        }
        assert_eq!(
            c.append_labels(&a, 40, 1.0),
            Err(AppendError::OutOfBounds { t: 40, min_valid: 45 })
        );
        c.append_labels(&a, 1000, 1.0).unwrap();
        assert_eq!(read(&h, hs[0].id, 1000, 1000), vec![]);
        assert_eq!(read(&c, cs[0].id, 1000, 1000), vec![Sample::new(1000, 1.0)]);
    }

    #[test]
    fn rejects_out_of_order_and_duplicates_and_counts_them() {
        let h = Head::default();
        let s = h.get_or_create(&l(&[("a", "b")]));
        h.append(&s, 10, 1.0).unwrap();
        assert_eq!(h.append(&s, 5, 1.0), Err(AppendError::OutOfOrder { t: 5, last_t: 10 }));
        assert_eq!(h.append(&s, 10, 2.0), Err(AppendError::Duplicate { t: 10 }));
        assert_eq!(h.append(&s, 10, 1.0), Ok(()));
        let st = h.stats();
        assert_eq!(st.out_of_order_rejected, 1);
        assert_eq!(st.duplicate_rejected, 1);
        assert_eq!(st.samples_appended, 1);
    }

    #[test]
    fn nan_resend_is_compared_by_bits() {
        let h = Head::default();
        let s = h.get_or_create(&l(&[("a", "b")]));
        h.append(&s, 10, f64::NAN).unwrap();
        assert_eq!(h.append(&s, 10, f64::NAN), Ok(()));
        assert_eq!(h.append(&s, 10, STALE_NAN), Err(AppendError::Duplicate { t: 10 }));
        h.append(&s, 20, STALE_NAN).unwrap();
        let got = read(&h, s.id(), 0, 100);
        assert!(got[0].v.is_nan() && !is_stale_nan(got[0].v));
        assert!(is_stale_nan(got[1].v));
    }

    #[test]
    fn truncation_removes_old_samples_and_dead_series() {
        let h = Head::default();
        let old = h.get_or_create(&l(&[("a", "old")]));
        h.append(&old, 10, 1.0).unwrap();
        h.append_labels(&l(&[("a", "new")]), 10, 1.0).unwrap();
        h.append_labels(&l(&[("a", "new")]), 100, 1.0).unwrap();
        h.truncate_before(50);
        assert_eq!(h.stats().series, 1);
        assert_eq!(h.append(&old, 200, 1.0), Err(AppendError::SeriesRemoved));
        assert!(matches!(
            h.append_labels(&l(&[("a", "x")]), 20, 1.0),
            Err(AppendError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn truncation_hides_samples_kept_in_a_straddling_chunk() {
        let h = Head::default();
        let s = h.get_or_create(&l(&[("a", "b")]));
        for t in 0..10 {
            h.append(&s, t * 10, t as f64).unwrap();
        }
        h.truncate_before(45);
        assert_eq!(h.stats().chunks, 1, "the straddling chunk stays");
        let got = read(&h, s.id(), 0, 1000);
        assert_eq!(got.first().map(|s| s.t), Some(50));
        assert_eq!(h.stats().min_time, Some(45));
        assert!(h.select(&[], 0, 44).unwrap().is_empty());
        assert_eq!(h.label_names(&[], 0, 44).unwrap(), Vec::<Str>::new());
        // A lower bound never undoes an earlier, higher one.
        h.truncate_before(0);
        assert_eq!(h.append(&s, 40, 1.0), Err(AppendError::OutOfBounds { t: 40, min_valid: 45 }));
        assert_eq!(h.stats().out_of_bounds_rejected, 1);
    }

    #[test]
    fn truncation_frees_chunks_strings_and_postings() {
        let h = Head::new(HeadOptions { chunk_samples: 4, ..HeadOptions::default() });
        let keep = h.get_or_create(&l(&[("__name__", "m"), ("i", "keep")]));
        let gone = h.get_or_create(&l(&[("__name__", "m"), ("i", "gone-unique")]));
        for t in 0..20 {
            h.append(&keep, t, 1.0).unwrap();
            if t < 10 {
                h.append(&gone, t, 1.0).unwrap();
            }
        }
        assert_eq!(h.stats().chunks, 5 + 3);
        let before = h.memory_usage();
        // A live handle would keep the strings alive, so keep only a copy.
        let (gone_id, gone_labels) = (gone.id(), l(&[("__name__", "m"), ("i", "gone-unique")]));
        drop(gone);
        h.truncate_before(12);
        let st = h.stats();
        assert_eq!((st.series, st.series_created, st.series_removed, st.chunks), (1, 2, 1, 2));
        assert_eq!(st.min_time, Some(12));
        assert_eq!(st.max_time, Some(19));
        let after = h.memory_usage();
        assert!(after.chunks < before.chunks && after.strings < before.strings, "{after:?}");
        assert_eq!(strs(h.label_values("i", &[], i64::MIN, i64::MAX).unwrap()), ["keep"]);
        assert!(h.lookup(&gone_labels).is_none());
        assert!(matches!(
            h.samples(gone_id, 0, 100, &mut Vec::new()),
            Err(StorageError::SeriesNotFound(_))
        ));
        // Recreating the same labels yields a new, working series.
        let again = h.get_or_create(&gone_labels);
        assert_ne!(again.id(), gone_id);
        h.append(&again, 30, 1.0).unwrap();
    }

    #[test]
    fn chunks_are_cut_and_read_back_across_boundaries() {
        let h = Head::new(HeadOptions { chunk_samples: 7, ..HeadOptions::default() });
        let s = h.get_or_create(&l(&[("a", "b")]));
        for t in 0..100 {
            h.append(&s, t * 15_000, (t * t) as f64).unwrap();
        }
        assert_eq!(h.stats().chunks, 15);
        let got = read(&h, s.id(), 15_000 * 20, 15_000 * 30);
        assert_eq!(got.len(), 11);
        assert!(got.iter().enumerate().all(|(i, x)| x.v == ((i + 20) * (i + 20)) as f64));
    }

    #[test]
    fn append_many_skips_and_counts_rejections() {
        let h = Head::default();
        let s = h.get_or_create(&l(&[("a", "b")]));
        let batch = [
            Sample::new(10, 1.0),
            Sample::new(20, 2.0),
            Sample::new(20, 2.0),
            Sample::new(15, 9.0),
            Sample::new(20, 3.0),
            Sample::new(30, 4.0),
        ];
        let sum = h.append_many(&s, &batch);
        assert_eq!(
            sum,
            AppendSummary {
                appended: 3,
                rejected: 2,
                first_error: Some(AppendError::OutOfOrder { t: 15, last_t: 20 })
            }
        );
        let st = h.stats();
        assert_eq!(
            (st.samples_appended, st.out_of_order_rejected, st.duplicate_rejected),
            (3, 1, 1)
        );
        h.truncate_before(100);
        let sum = h.append_many(&s, &batch);
        assert_eq!(sum.first_error, Some(AppendError::SeriesRemoved));
        assert_eq!(sum.rejected, batch.len());
    }

    #[test]
    fn labels_names_and_values_respect_matchers_and_time() {
        let h = Head::default();
        h.append_labels(&l(&[("__name__", "up"), ("job", "a"), ("zone", "1")]), 10, 1.0).unwrap();
        h.append_labels(&l(&[("__name__", "up"), ("job", "b")]), 100, 1.0).unwrap();
        h.append_labels(&l(&[("__name__", "x"), ("job", "c")]), 100, 1.0).unwrap();
        h.get_or_create(&l(&[("__name__", "empty"), ("never", "appended")]));
        assert_eq!(strs(h.label_names(&[], 0, 1000).unwrap()), ["__name__", "job", "zone"]);
        assert_eq!(strs(h.label_names(&[], 50, 1000).unwrap()), ["__name__", "job"]);
        let up = [Matcher::equal("__name__", "up")];
        assert_eq!(strs(h.label_names(&up, 0, 50).unwrap()), ["__name__", "job", "zone"]);
        assert_eq!(strs(h.label_values("job", &[], 0, 1000).unwrap()), ["a", "b", "c"]);
        assert_eq!(strs(h.label_values("job", &up, 0, 1000).unwrap()), ["a", "b"]);
        assert_eq!(strs(h.label_values("job", &up, 50, 1000).unwrap()), ["b"]);
        assert!(h.label_values("nope", &[], 0, 1000).unwrap().is_empty());
        assert!(h.select(&[], 1000, 0).unwrap().is_empty());
    }

    #[test]
    fn select_sorts_by_labels_and_handles_empty_matchers() {
        let h = Head::default();
        for (i, job) in ["c", "a", "b"].iter().enumerate() {
            h.append_labels(&l(&[("__name__", "up"), ("job", job)]), 10, i as f64).unwrap();
        }
        h.append_labels(&l(&[("__name__", "up")]), 10, 0.0).unwrap();
        let all = h.select(&[], 0, 100).unwrap();
        let printed: Vec<String> = all.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(
            printed,
            [
                r#"{__name__="up"}"#,
                r#"{__name__="up", job="a"}"#,
                r#"{__name__="up", job="b"}"#,
                r#"{__name__="up", job="c"}"#
            ]
        );
        let no_job = [Matcher::equal("job", "")];
        assert_eq!(h.select(&no_job, 0, 100).unwrap().len(), 1);
        let not_a = [Matcher::new(MatchOp::NotEqual, "job", "a").unwrap()];
        assert_eq!(h.select(&not_a, 0, 100).unwrap().len(), 3);
    }

    #[test]
    fn interned_comparison_orders_like_labels() {
        let h = Head::default();
        let sets = [
            l(&[("a", "1")]),
            l(&[("a", "1"), ("b", "1")]),
            l(&[("a", "2")]),
            l(&[("b", "0")]),
            l(&[("a", "1"), ("c", "0")]),
            l(&[("aa", "1")]),
        ];
        let interned: Vec<Labels> =
            sets.iter().map(|s| h.get_or_create(s).labels().clone()).collect();
        for a in &interned {
            for b in &interned {
                assert_eq!(cmp_interned(a, b), a.cmp(b), "{a} vs {b}");
            }
            // Strings from elsewhere compare by content.
            for b in &sets {
                assert_eq!(cmp_interned(a, b), a.cmp(b), "{a} vs {b}");
            }
        }
    }

    /// A series announcement (with labels) or a batch of samples.
    type Logged = (SeriesId, Option<Labels>, Vec<Sample>);

    #[derive(Default)]
    struct RecordingLog(Mutex<Vec<Logged>>);

    impl AppendLog for RecordingLog {
        fn series_created(&self, id: SeriesId, labels: &Labels) {
            self.0.lock().unwrap().push((id, Some(labels.clone()), Vec::new()));
        }
        fn samples_appended(&self, id: SeriesId, samples: &[Sample]) {
            self.0.lock().unwrap().push((id, None, samples.to_vec()));
        }
    }

    #[test]
    fn append_log_sees_exactly_the_accepted_changes() {
        let h = Head::default();
        let before = h.get_or_create(&l(&[("a", "before")]));
        h.append(&before, 1, 1.0).unwrap();
        let log = Arc::new(RecordingLog::default());
        assert!(h.set_append_log(log.clone()).is_ok());
        assert!(h.set_append_log(log.clone()).is_err(), "one log per head");

        let s = h.get_or_create(&l(&[("a", "b")]));
        h.get_or_create(&l(&[("a", "b")]));
        h.append(&s, 10, 1.0).unwrap();
        h.append(&s, 10, 1.0).unwrap(); // exact resend
        h.append(&s, 5, 1.0).unwrap_err();
        h.append(&before, 2, STALE_NAN).unwrap();
        let batch = [
            Sample::new(20, 2.0),
            Sample::new(30, 3.0),
            Sample::new(30, 3.0),
            Sample::new(25, 9.0),
            Sample::new(40, 4.0),
        ];
        assert_eq!(h.append_many(&s, &batch).appended, 3);
        h.append_labels(&l(&[("a", "c")]), 7, 7.0).unwrap();

        let got = log.0.lock().unwrap().clone();
        let (b, c) = (before.id(), s.id());
        let want = vec![
            (c, Some(l(&[("a", "b")])), vec![]),
            (c, None, vec![Sample::new(10, 1.0)]),
            (b, None, vec![Sample::new(2, STALE_NAN)]),
            (c, None, vec![Sample::new(20, 2.0), Sample::new(30, 3.0)]),
            (c, None, vec![Sample::new(40, 4.0)]),
            (c + 1, Some(l(&[("a", "c")])), vec![]),
            (c + 1, None, vec![Sample::new(7, 7.0)]),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0, &g.1), (w.0, &w.1));
            assert!(g.2.len() == w.2.len() && g.2.iter().zip(&w.2).all(|(x, y)| x.bit_eq(y)));
        }
    }

    #[test]
    fn for_each_series_walks_every_series_from_mint() {
        let h = Head::new(HeadOptions { chunk_samples: 4, ..HeadOptions::default() });
        let a = h.get_or_create(&l(&[("a", "1")]));
        for t in 0..10 {
            h.append(&a, t * 10, t as f64).unwrap();
        }
        h.get_or_create(&l(&[("a", "empty")]));
        h.append_labels(&l(&[("a", "old")]), 5, STALE_NAN).unwrap();
        let mut seen = Vec::new();
        h.for_each_series(45, |id, labels, samples| {
            seen.push((id, labels.to_string(), samples.iter().map(|s| s.t).collect::<Vec<_>>()));
            Ok::<_, StorageError>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, r#"{a="1"}"#.to_string(), vec![50, 60, 70, 80, 90]),
                (1, r#"{a="empty"}"#.to_string(), vec![]),
                (2, r#"{a="old"}"#.to_string(), vec![]),
            ]
        );
        let mut visited = 0;
        let stop = h.for_each_series(0, |id, _, _| {
            visited += 1;
            if id == 1 { Err(StorageError::Source("stop".into())) } else { Ok(()) }
        });
        assert!(matches!(stop, Err(StorageError::Source(_))) && visited == 2);
    }

    #[test]
    fn concurrent_appends_and_queries() {
        let h = Head::new(HeadOptions { chunk_samples: 16, ..HeadOptions::default() });
        std::thread::scope(|scope| {
            for w in 0..3 {
                let h = &h;
                scope.spawn(move || {
                    let handles: Vec<_> = (0..50)
                        .map(|i| {
                            h.get_or_create(&l(&[("w", &w.to_string()), ("i", &i.to_string())]))
                        })
                        .collect();
                    for t in 0..200 {
                        for s in &handles {
                            h.append(s, t, t as f64).unwrap();
                        }
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..50 {
                    for s in h.select(&[Matcher::equal("w", "1")], 0, 1000).unwrap() {
                        let got = read(&h, s.id, 0, 1000);
                        assert!(got.windows(2).all(|w| w[0].t + 1 == w[1].t));
                    }
                }
            });
        });
        let st = h.stats();
        assert_eq!((st.series, st.samples_appended), (150, 150 * 200));
    }

    fn hist(count: f64) -> Arc<FloatHistogram> {
        Arc::new(FloatHistogram {
            count,
            sum: count * 2.0,
            positive_spans: vec![crate::histogram::Span { offset: 0, length: 1 }],
            positive_buckets: vec![count],
            ..FloatHistogram::default()
        })
    }

    fn read_hists(
        h: &Head,
        s: &SeriesHandle,
        mint: i64,
        maxt: i64,
    ) -> Vec<(i64, f64, CounterResetHint)> {
        let sel =
            SelectedSeries { id: s.id(), labels: s.labels().clone(), series: Some(s.clone()) };
        let mut out = Vec::new();
        h.histograms_of(&sel, mint, maxt, &mut out).unwrap();
        out.iter().map(|p| (p.t, p.h.count, p.h.counter_reset_hint)).collect()
    }

    #[test]
    fn histograms_share_a_series_timeline_with_floats() {
        use CounterResetHint::*;
        let h = Head::default();
        let s = h.get_or_create(&l(&[("__name__", "h")]));
        h.append_histogram(&s, 1000, hist(2.0)).unwrap();
        h.append_histogram(&s, 2000, hist(3.0)).unwrap();
        // Counts going down make a reset; a float in between makes the next
        // histogram's relation to the last one unknown.
        h.append_histogram(&s, 3000, hist(1.0)).unwrap();
        h.append(&s, 4000, 7.0).unwrap();
        h.append_histogram(&s, 5000, hist(4.0)).unwrap();
        assert_eq!(
            read_hists(&h, &s, 0, 10_000),
            [(1000, 2.0, Unknown), (2000, 3.0, NotReset), (3000, 1.0, Reset), (5000, 4.0, Unknown)]
        );
        assert_eq!(read(&h, s.id(), 0, 10_000), [Sample::new(4000, 7.0)]);
        assert_eq!(read_hists(&h, &s, 1500, 3000).len(), 2);

        // One timeline across both kinds: neither may go back or repeat.
        assert!(matches!(h.append(&s, 5000, 1.0), Err(AppendError::Duplicate { t: 5000 })));
        assert!(matches!(
            h.append_histogram(&s, 4000, hist(5.0)),
            Err(HistogramAppendError::Append(AppendError::OutOfOrder { t: 4000, last_t: 5000 }))
        ));
        assert!(matches!(
            h.append_histogram(&s, 5000, hist(5.0)),
            Err(HistogramAppendError::Append(AppendError::Duplicate { t: 5000 }))
        ));
        // An exact resend is accepted silently, as for floats.
        h.append_histogram(&s, 5000, hist(4.0)).unwrap();
        let st = h.stats();
        assert_eq!((st.samples_appended, st.min_time, st.max_time), (5, Some(1000), Some(5000)));
        assert_eq!(st.out_of_order_rejected + st.duplicate_rejected, 3);

        // A gauge stays a gauge.
        let g = h.get_or_create(&l(&[("__name__", "g")]));
        let gauge = |c| {
            let mut x = FloatHistogram::clone(&hist(c));
            x.counter_reset_hint = Gauge;
            Arc::new(x)
        };
        h.append_histogram(&g, 1000, gauge(5.0)).unwrap();
        h.append_histogram(&g, 2000, gauge(1.0)).unwrap();
        assert_eq!(read_hists(&h, &g, 0, 3000), [(1000, 5.0, Gauge), (2000, 1.0, Gauge)]);
    }

    #[test]
    fn histogram_only_series_are_selected_copied_and_truncated() {
        let h = Head::default();
        let s = h.get_or_create(&l(&[("__name__", "h")]));
        h.append_histogram(&s, 1000, hist(1.0)).unwrap();
        h.append_histogram(&s, 9000, hist(2.0)).unwrap();
        let sel = |h: &Head, mint, maxt| {
            h.select(&[Matcher::equal("__name__", "h")], mint, maxt).unwrap().len()
        };
        assert_eq!((sel(&h, 0, 500), sel(&h, 500, 1000), sel(&h, 2000, 8000)), (0, 1, 0));

        let copy = h.copy(HeadOptions::default());
        let cs = copy.lookup(&l(&[("__name__", "h")])).unwrap();
        assert_eq!(read_hists(&copy, &cs, 0, i64::MAX).len(), 2);
        assert!(copy.memory_usage().chunks > 0);

        h.truncate_before(5000);
        assert_eq!(read_hists(&h, &s, 0, i64::MAX).len(), 1);
        h.truncate_before(10_000);
        assert_eq!(h.stats().series, 0);
        // The copy went its own way.
        assert_eq!(read_hists(&copy, &cs, 0, i64::MAX).len(), 2);
    }

    #[test]
    fn invalid_histograms_are_refused() {
        let h = Head::default();
        let s = h.get_or_create(&l(&[("__name__", "h")]));
        // Two buckets' counts for a span of one.
        let bad = FloatHistogram {
            count: 2.0,
            positive_spans: vec![crate::histogram::Span { offset: 0, length: 1 }],
            positive_buckets: vec![1.0, 1.0],
            ..FloatHistogram::default()
        };
        assert!(matches!(
            h.append_histogram(&s, 1000, Arc::new(bad)),
            Err(HistogramAppendError::Invalid(_))
        ));
        assert_eq!(h.stats().samples_appended, 0);
    }
}
