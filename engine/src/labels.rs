//! Label sets: the identity of a series.
//!
//! A [`Labels`] is an immutable, sorted set of name/value pairs behind one `Arc`,
//! so cloning is a reference-count bump and a series' identity can be shared by
//! the head, query results and alert state without copying strings. The strings
//! themselves are `Arc<str>`; the storage head interns them ([`Interner`]) so the
//! million series of a large host share one copy of every `job`, `instance` and
//! metric name.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::gofmt;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// A shared, immutable string. Interned by the head; cheap to clone.
pub type Str = Arc<str>;

/// One name/value pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: Str,
    pub value: Str,
}

impl Label {
    pub fn new(name: impl Into<Str>, value: impl Into<Str>) -> Self {
        Label { name: name.into(), value: value.into() }
    }
}

/// A sorted set of labels with unique names and no empty values.
///
/// The invariants are upheld by every constructor: pairs are sorted by name,
/// names are unique (the last value given wins) and labels with an empty value
/// are dropped, because in Prometheus's model an empty value means "absent".
#[derive(Clone, Default)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from arbitrary pairs, establishing the invariants.
    pub fn new(mut pairs: Vec<Label>) -> Self {
        // Stable sort so that, among duplicates, the last given stays last.
        crate::sort::by(&mut pairs, |a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(pairs.len());
        for l in pairs {
            match out.last_mut() {
                Some(prev) if prev.name == l.name => *prev = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Labels(out.into())
    }

    /// Convenience constructor from string pairs.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Self {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(n.as_ref(), v.as_ref())).collect())
    }

    /// Wraps pairs that the caller guarantees are sorted, unique and non-empty.
    /// Checked in debug builds.
    pub fn from_sorted(pairs: Vec<Label>) -> Self {
        debug_assert!(pairs.windows(2).all(|w| w[0].name < w[1].name));
        debug_assert!(pairs.iter().all(|l| !l.value.is_empty()));
        Labels(pairs.into())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// The value of label `name`, or `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|l| (*l.name).cmp(name)).ok().map(|i| &*self.0[i].value)
    }

    /// The value of label `name`, or `""` when absent (Prometheus's convention).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.metric_name_label().map(|l| &*l.value)
    }

    /// The `__name__` label, if any.
    pub fn metric_name_label(&self) -> Option<&Label> {
        self.metric_name_index().map(|i| &self.0[i])
    }

    fn metric_name_index(&self) -> Option<usize> {
        // Only names starting with a digit or a capital sort before it, so
        // it is nearly always first: one comparison instead of a search.
        match self.0.first() {
            Some(l) if &*l.name == METRIC_NAME => Some(0),
            _ => self.0.binary_search_by(|l| (*l.name).cmp(METRIC_NAME)).ok(),
        }
    }

    /// The same set without `__name__`; shares storage when there is none.
    pub fn without_metric_name(&self) -> Labels {
        match self.metric_name_index() {
            Some(i) => Labels(self.0[..i].iter().chain(&self.0[i + 1..]).cloned().collect()),
            None => self.clone(),
        }
    }

    /// The 64-bit hash Prometheus computes for this set (xxhash64 over its
    /// length-prefixed "stringlabels" encoding). Equal in every process and on
    /// every platform, and equal to Prometheus's own, which matters where the
    /// hash decides results (`limit_ratio`).
    pub fn stable_hash(&self) -> u64 {
        hash_pairs(self.0.iter())
    }

    /// Hash of only the labels named in `names` (which must be sorted), as used
    /// for `on(...)` and `by(...)` grouping.
    pub fn hash_for(&self, names: &[Str]) -> u64 {
        hash_pairs(self.0.iter().filter(|l| names.binary_search(&l.name).is_ok()))
    }

    /// Hash of all labels except those named in `names` (sorted) and `__name__`,
    /// as used for `ignoring(...)` and `without(...)`.
    pub fn hash_without(&self, names: &[Str]) -> u64 {
        hash_pairs(
            self.0
                .iter()
                .filter(|l| &*l.name != METRIC_NAME && names.binary_search(&l.name).is_err()),
        )
    }

    /// The subset of labels named in `names` (sorted).
    pub fn keep(&self, names: &[Str]) -> Labels {
        Labels(self.0.iter().filter(|l| names.binary_search(&l.name).is_ok()).cloned().collect())
    }

    /// All labels except those named in `names` (sorted) and `__name__`.
    pub fn drop_with_name(&self, names: &[Str]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| &*l.name != METRIC_NAME && names.binary_search(&l.name).is_err())
                .cloned()
                .collect(),
        )
    }

    /// Starts a builder that edits a copy of this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder { labels: self.0.to_vec() }
    }

    /// Whether two sets share the same `Arc` (a cheap, sufficient test for equality).
    pub fn ptr_eq(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Approximate heap bytes owned by this set itself, not counting strings
    /// shared with other sets. Used by memory accounting in benchmarks.
    pub fn heap_size_shallow(&self) -> usize {
        2 * std::mem::size_of::<usize>() + self.0.len() * std::mem::size_of::<Label>()
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || self.0 == other.0
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for l in self.0.iter() {
            state.write(l.name.as_bytes());
            state.write_u8(0xff);
            state.write(l.value.as_bytes());
            state.write_u8(0xff);
        }
    }
}

/// Prometheus's `labels.Compare`: pairwise by name, then by value, then the
/// shorter set first. This is the order of series in query results.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            match a.name.cmp(&b.name) {
                Ordering::Equal => {}
                o => return o,
            }
            match a.value.cmp(&b.value) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Prints like Prometheus's `Labels.String()`: `{a="1", b="2"}` with Go quoting.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(self.0.len() * 16 + 2);
        s.push('{');
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            push_label_name(&mut s, &l.name);
            s.push('=');
            gofmt::quote_into(&mut s, &l.value);
        }
        s.push('}');
        f.write_str(&s)
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// xxhash64 over Prometheus's "stringlabels" encoding of `labels`: each name
/// and value preceded by its length (one byte below 255, else 255 and three
/// little-endian bytes). Label sets almost always fit a stack buffer, and one
/// one-shot hash over it is several times faster than streaming every piece.
fn hash_pairs<'a>(labels: impl Iterator<Item = &'a Label>) -> u64 {
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut stream: Option<xxhash_rust::xxh64::Xxh64> = None;
    for l in labels {
        for s in [&*l.name, &*l.value] {
            let n = s.len();
            let mut prefix = [255u8, n as u8, (n >> 8) as u8, (n >> 16) as u8];
            let plen = if n < 255 {
                prefix[0] = n as u8;
                1
            } else {
                4
            };
            if stream.is_none() && len + plen + n <= buf.len() {
                buf[len..len + plen].copy_from_slice(&prefix[..plen]);
                buf[len + plen..len + plen + n].copy_from_slice(s.as_bytes());
                len += plen + n;
                continue;
            }
            let h = stream.get_or_insert_with(|| {
                let mut h = xxhash_rust::xxh64::Xxh64::new(0);
                h.update(&buf[..len]);
                h
            });
            h.update(&prefix[..plen]);
            h.update(s.as_bytes());
        }
    }
    match stream {
        Some(h) => h.digest(),
        None => xxhash_rust::xxh64::xxh64(&buf[..len], 0),
    }
}

/// Label names that are not legacy identifiers (UTF-8 names, allowed since
/// Prometheus 3) are printed quoted, as Prometheus does.
fn push_label_name(out: &mut String, name: &str) {
    if is_legacy_label_name(name) {
        out.push_str(name);
    } else {
        gofmt::quote_into(out, name);
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: the classic label-name syntax.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: the classic metric-name syntax.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Edits a label set; `labels()` re-establishes the invariants.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<Str>, value: impl Into<Str>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) => l.value = value,
            None => self.labels.push(Label { name, value }),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| &*l.name != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|l| &*l.name == name).map(|l| &*l.value)
    }

    pub fn labels(&self) -> Labels {
        Labels::new(self.labels.clone())
    }
}

/// Deduplicates strings so that equal label names and values share one
/// allocation. Owned by the storage head; not global, so dropping a head frees
/// everything it interned.
#[derive(Default)]
pub struct Interner {
    set: hashbrown::HashSet<Str, foldhash::fast::RandomState>,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `s`, adding it on first sight.
    pub fn intern(&mut self, s: &str) -> Str {
        if let Some(found) = self.set.get(s) {
            return found.clone();
        }
        let owned: Str = Arc::from(s);
        self.set.insert(owned.clone());
        owned
    }

    /// Interns every string of a label set, returning the shared version.
    pub fn intern_labels(&mut self, labels: &Labels) -> Labels {
        Labels(
            labels
                .iter()
                .map(|l| Label { name: self.intern(&l.name), value: self.intern(&l.value) })
                .collect(),
        )
    }

    /// Forgets strings no longer referenced from anywhere but here.
    pub fn collect_garbage(&mut self) {
        self.set.retain(|s| Arc::strong_count(s) > 1);
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Approximate heap bytes: table slots plus string bytes.
    pub fn heap_size(&self) -> usize {
        self.set.capacity() * (std::mem::size_of::<Str>() + 1)
            + self.set.iter().map(|s| s.len() + 2 * std::mem::size_of::<usize>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs(&[("b", "2"), ("a", "1"), ("c", ""), ("b", "3")]);
        assert_eq!(l.to_string(), r#"{a="1", b="3"}"#);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.get_or_empty("c"), "");
    }

    #[test]
    fn ordering_is_prometheus_compare() {
        let a = Labels::from_pairs(&[("a", "1")]);
        let ab = Labels::from_pairs(&[("a", "1"), ("b", "1")]);
        let b = Labels::from_pairs(&[("b", "0")]);
        assert!(a < ab);
        assert!(ab < b);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
    }

    #[test]
    fn hashes_agree_with_subsets() {
        let l = Labels::from_pairs(&[("__name__", "x"), ("a", "1"), ("b", "2")]);
        let names: Vec<Str> = vec!["a".into()];
        assert_eq!(l.hash_for(&names), l.keep(&names).stable_hash());
        assert_eq!(l.hash_without(&names), l.drop_with_name(&names).stable_hash());
        assert_ne!(l.stable_hash(), l.without_metric_name().stable_hash());
    }

    #[test]
    fn hash_is_the_same_for_long_label_sets() {
        // Past the stack buffer the hash streams; the result must not change.
        let long = "v".repeat(300);
        let l = Labels::from_pairs(&[("a", long.as_str()), ("b", long.as_str())]);
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for x in ["a", long.as_str(), "b", long.as_str()] {
            if x.len() < 255 {
                h.update(&[x.len() as u8]);
            } else {
                h.update(&[255, x.len() as u8, (x.len() >> 8) as u8, 0]);
            }
            h.update(x.as_bytes());
        }
        assert_eq!(l.stable_hash(), h.digest());
    }

    #[test]
    fn display_quotes_like_go() {
        let l = Labels::from_pairs(&[("a", "x\"y\n"), ("utf8.name", "v")]);
        assert_eq!(l.to_string(), r#"{a="x\"y\n", "utf8.name"="v"}"#);
    }

    #[test]
    fn interner_shares_and_collects() {
        let mut i = Interner::new();
        let a = i.intern("job");
        let b = i.intern("job");
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        i.intern("other");
        i.collect_garbage();
        assert!(i.is_empty());
    }

    #[test]
    fn builder_sets_and_deletes() {
        let l = Labels::from_pairs(&[("a", "1"), ("b", "2")]);
        let mut b = l.builder();
        b.set("c", "3").del("a").set("b", "");
        assert_eq!(b.labels().to_string(), r#"{c="3"}"#);
    }
}
