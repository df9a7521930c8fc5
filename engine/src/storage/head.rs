//! The in-memory head: every active series and its recent samples.
//!
//! NOTE: this first version keeps samples in plain vectors and scans all series
//! on select. It fixes the public API (thread-safe, `&self` everywhere, cacheable
//! series handles for the scrape hot path); compressed chunks and postings
//! replace the internals without changing it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::labels::{Interner, Labels, Str};
use crate::matcher::{Matcher, matches_all};
use crate::sample::Sample;

use super::{Queryable, SelectedSeries, SeriesId, StorageError};

/// Tuning of a [`Head`].
#[derive(Clone, Debug)]
pub struct HeadOptions {
    /// Samples per compressed chunk before a new one is cut.
    pub chunk_samples: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions { chunk_samples: 120 }
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

/// Counters describing the head.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadStats {
    pub series: u64,
    pub samples_appended: u64,
    pub out_of_order_rejected: u64,
    pub duplicate_rejected: u64,
    pub out_of_bounds_rejected: u64,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

struct MemSeries {
    id: SeriesId,
    labels: Labels,
    samples: Mutex<Vec<Sample>>,
    removed: AtomicBool,
}

/// A cheap, cloneable reference to one series of a head, for callers (a scrape
/// loop) that append to the same series over and over without looking it up.
#[derive(Clone)]
pub struct SeriesHandle(Arc<MemSeries>);

impl SeriesHandle {
    pub fn labels(&self) -> &Labels {
        &self.0.labels
    }

    pub fn id(&self) -> SeriesId {
        self.0.id
    }
}

#[derive(Default)]
struct Index {
    interner: Interner,
    by_hash: hashbrown::HashMap<u64, Vec<Arc<MemSeries>>, foldhash::fast::RandomState>,
    by_id: std::collections::BTreeMap<SeriesId, Arc<MemSeries>>,
    next_id: SeriesId,
}

/// The in-memory TSDB head. All methods take `&self` and are safe to call from
/// many threads; the engine itself never spawns any.
pub struct Head {
    #[allow(dead_code)]
    opts: HeadOptions,
    index: RwLock<Index>,
    min_valid_time: AtomicI64Cell,
    samples_appended: AtomicU64,
    out_of_order: AtomicU64,
    duplicates: AtomicU64,
    out_of_bounds: AtomicU64,
}

/// An i64 in an `AtomicU64`, to keep the head free of extra dependencies.
struct AtomicI64Cell(AtomicU64);

impl AtomicI64Cell {
    fn new(v: i64) -> Self {
        AtomicI64Cell(AtomicU64::new(v as u64))
    }
    fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed) as i64
    }
    fn set(&self, v: i64) {
        self.0.store(v as u64, Ordering::Relaxed)
    }
}

impl Default for Head {
    fn default() -> Self {
        Head::new(HeadOptions::default())
    }
}

impl Head {
    pub fn new(opts: HeadOptions) -> Self {
        Head {
            opts,
            index: RwLock::new(Index::default()),
            min_valid_time: AtomicI64Cell::new(i64::MIN),
            samples_appended: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_bounds: AtomicU64::new(0),
        }
    }

    /// The series with exactly these labels, created if new.
    pub fn get_or_create(&self, labels: &Labels) -> SeriesHandle {
        let hash = labels.stable_hash();
        if let Some(s) = self.lookup_hashed(labels, hash) {
            return s;
        }
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = idx.by_hash.get(&hash)
            && let Some(s) = list.iter().find(|s| s.labels == *labels)
        {
            return SeriesHandle(s.clone());
        }
        let labels = idx.interner.intern_labels(labels);
        let id = idx.next_id;
        idx.next_id += 1;
        let s = Arc::new(MemSeries {
            id,
            labels,
            samples: Mutex::new(Vec::new()),
            removed: AtomicBool::new(false),
        });
        idx.by_hash.entry(hash).or_default().push(s.clone());
        idx.by_id.insert(id, s.clone());
        SeriesHandle(s)
    }

    /// The series with exactly these labels, if present.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesHandle> {
        self.lookup_hashed(labels, labels.stable_hash())
    }

    fn lookup_hashed(&self, labels: &Labels, hash: u64) -> Option<SeriesHandle> {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        idx.by_hash
            .get(&hash)
            .and_then(|list| list.iter().find(|s| s.labels == *labels))
            .map(|s| SeriesHandle(s.clone()))
    }

    /// Appends one sample. Rejections are counted in [`HeadStats`].
    pub fn append(&self, series: &SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        let s = &series.0;
        if s.removed.load(Ordering::Acquire) {
            return Err(AppendError::SeriesRemoved);
        }
        let min_valid = self.min_valid_time.get();
        if t < min_valid {
            self.out_of_bounds.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::OutOfBounds { t, min_valid });
        }
        let mut samples = s.samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = samples.last() {
            if t < last.t {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
                return Err(AppendError::OutOfOrder { t, last_t: last.t });
            }
            if t == last.t {
                // Prometheus ignores an exact resend of the newest sample.
                if last.v.to_bits() == v.to_bits() {
                    return Ok(());
                }
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                return Err(AppendError::Duplicate { t });
            }
        }
        samples.push(Sample { t, v });
        self.samples_appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Looks up or creates the series, then appends.
    pub fn append_labels(&self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        let s = self.get_or_create(labels);
        self.append(&s, t, v)
    }

    /// Drops all samples before `mint` and series left without samples;
    /// later appends before `mint` are rejected as out of bounds.
    pub fn truncate_before(&self, mint: i64) {
        self.min_valid_time.set(mint.max(self.min_valid_time.get()));
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        let mut dead = Vec::new();
        for s in idx.by_id.values() {
            let mut samples = s.samples.lock().unwrap_or_else(|e| e.into_inner());
            let keep_from = samples.partition_point(|x| x.t < mint);
            samples.drain(..keep_from);
            if samples.is_empty() {
                s.removed.store(true, Ordering::Release);
                dead.push((s.id, s.labels.stable_hash()));
            }
        }
        for (id, hash) in dead {
            idx.by_id.remove(&id);
            if let Some(list) = idx.by_hash.get_mut(&hash) {
                list.retain(|s| s.id != id);
                if list.is_empty() {
                    idx.by_hash.remove(&hash);
                }
            }
        }
        idx.interner.collect_garbage();
    }

    pub fn stats(&self) -> HeadStats {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut min_time = None;
        let mut max_time = None;
        for s in idx.by_id.values() {
            let samples = s.samples.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(f), Some(l)) = (samples.first(), samples.last()) {
                min_time = Some(min_time.map_or(f.t, |m: i64| m.min(f.t)));
                max_time = Some(max_time.map_or(l.t, |m: i64| m.max(l.t)));
            }
        }
        HeadStats {
            series: idx.by_id.len() as u64,
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            out_of_order_rejected: self.out_of_order.load(Ordering::Relaxed),
            duplicate_rejected: self.duplicates.load(Ordering::Relaxed),
            out_of_bounds_rejected: self.out_of_bounds.load(Ordering::Relaxed),
            min_time,
            max_time,
        }
    }

    fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        idx.by_id.values().filter(|s| matches_all(matchers, &s.labels)).cloned().collect()
    }
}

fn overlaps(s: &MemSeries, mint: i64, maxt: i64) -> bool {
    let samples = s.samples.lock().unwrap_or_else(|e| e.into_inner());
    match (samples.first(), samples.last()) {
        (Some(f), Some(l)) => f.t <= maxt && l.t >= mint,
        _ => false,
    }
}

impl Queryable for Head {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries>, StorageError> {
        let mut out: Vec<SelectedSeries> = self
            .matching(matchers)
            .into_iter()
            .filter(|s| overlaps(s, mint, maxt))
            .map(|s| SelectedSeries { id: s.id, labels: s.labels.clone() })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn samples(
        &self,
        id: SeriesId,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), StorageError> {
        let s = {
            let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
            idx.by_id.get(&id).cloned().ok_or(StorageError::SeriesNotFound(id))?
        };
        let samples = s.samples.lock().unwrap_or_else(|e| e.into_inner());
        let from = samples.partition_point(|x| x.t < mint);
        let to = samples.partition_point(|x| x.t <= maxt);
        out.extend_from_slice(&samples[from..to]);
        Ok(())
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Str>, StorageError> {
        let mut names = BTreeSet::new();
        for s in self.matching(matchers) {
            if overlaps(&s, mint, maxt) {
                names.extend(s.labels.iter().map(|l| l.name.clone()));
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Str>, StorageError> {
        let mut values = BTreeSet::new();
        for s in self.matching(matchers) {
            if overlaps(&s, mint, maxt)
                && let Some(l) = s.labels.iter().find(|l| &*l.name == name)
            {
                values.insert(l.value.clone());
            }
        }
        Ok(values.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchOp;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
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
}
