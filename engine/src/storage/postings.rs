//! The inverted index: label name -> label value -> ids of the series with
//! that label, sorted. Selectors are resolved the way Prometheus does it:
//! intersect the lists of the matchers that need a label to be present,
//! subtract the lists of those that also accept its absence.
//!
//! Ids only ever grow, so adding a series is a push onto each of its lists;
//! removal happens in batches (retention) and rewrites just the lists it
//! touches.

use std::borrow::Cow;

use crate::labels::{Labels, Str};
use crate::matcher::{MatchOp, Matcher};

use super::SeriesId;

type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
pub(super) struct Postings {
    by_name: Map<Str, Map<Str, Vec<SeriesId>>>,
    all: Vec<SeriesId>,
}

/// Which stored values of a label a matcher accepts. Stored values are never
/// empty, which is what makes `.+` and `.*` the same here.
enum Accepts<'m> {
    All,
    Nothing,
    Only(Vec<&'m str>),
    AllBut(Vec<&'m str>),
    /// Evaluate the matcher on every value; `negate` inverts the outcome.
    Test {
        negate: bool,
    },
}

impl<'m> Accepts<'m> {
    fn of(m: &'m Matcher) -> Self {
        match m.op {
            MatchOp::Equal => Accepts::Only(vec![&m.value]),
            MatchOp::NotEqual => Accepts::AllBut(vec![&m.value]),
            MatchOp::Regex => regex_accepts(&m.value),
            MatchOp::NotRegex => match regex_accepts(&m.value) {
                // `Test` runs the matcher itself, which already negates.
                test @ Accepts::Test { .. } => test,
                literal => literal.complement(),
            },
        }
    }

    fn complement(self) -> Self {
        match self {
            Accepts::All => Accepts::Nothing,
            Accepts::Nothing => Accepts::All,
            Accepts::Only(v) => Accepts::AllBut(v),
            Accepts::AllBut(v) => Accepts::Only(v),
            Accepts::Test { negate } => Accepts::Test { negate: !negate },
        }
    }
}

/// Recognises the regexes that need no regex engine: `.*`, `.+` and plain
/// alternations like `api|web-1|host:9100`, which dashboards generate all the
/// time and which then cost one lookup per alternative instead of one regex
/// run per stored value.
fn regex_accepts(pattern: &str) -> Accepts<'_> {
    if pattern == ".*" || pattern == ".+" {
        return Accepts::All;
    }
    let literal = |c: char| c.is_ascii_alphanumeric() || "_-:/,=@% ".contains(c);
    if pattern.chars().all(|c| literal(c) || c == '|') {
        return Accepts::Only(pattern.split('|').collect());
    }
    Accepts::Test { negate: false }
}

impl Postings {
    /// Indexes series `id`, which must be larger than every id added before.
    pub fn add(&mut self, id: SeriesId, labels: &Labels) {
        debug_assert!(self.all.last().is_none_or(|&last| last < id));
        self.all.push(id);
        for l in labels.iter() {
            // The raw entry API looks up by `&str` and clones the (interned)
            // key only on insertion.
            let (_, values) = self
                .by_name
                .raw_entry_mut()
                .from_key(&*l.name)
                .or_insert_with(|| (l.name.clone(), Map::default()));
            let (_, list) = values
                .raw_entry_mut()
                .from_key(&*l.value)
                .or_insert_with(|| (l.value.clone(), Vec::new()));
            list.push(id);
        }
    }

    /// Removes a batch of series.
    pub fn remove<'a>(&mut self, series: impl IntoIterator<Item = (SeriesId, &'a Labels)>) {
        let mut ids = Vec::new();
        let mut touched: Vec<(&str, &str)> = Vec::new();
        for (id, labels) in series {
            ids.push(id);
            touched.extend(labels.iter().map(|l| (&*l.name, &*l.value)));
        }
        if ids.is_empty() {
            return;
        }
        crate::sort::unstable(&mut ids);
        crate::sort::unstable(&mut touched);
        touched.dedup();
        let gone = |id: &SeriesId| ids.binary_search(id).is_ok();
        retain_shrinking(&mut self.all, |id| !gone(id));
        for (name, value) in touched {
            let Some(values) = self.by_name.get_mut(name) else { continue };
            if let Some(list) = values.get_mut(value) {
                retain_shrinking(list, |id| !gone(id));
                if list.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// Ids of the series selected by every matcher, ascending. No matchers,
    /// or only matchers that accept an absent label, select from all series.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesId> {
        let mut include: Vec<Cow<'_, [SeriesId]>> = Vec::new();
        let mut exclude: Vec<Cow<'_, [SeriesId]>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // Series without the label are selected, and so are those whose
                // value matches: what remains to drop is the other values.
                let drop = self.with_values(&m.name, Accepts::of(m).complement(), m);
                if !drop.is_empty() {
                    exclude.push(drop);
                }
            } else {
                let keep = self.with_values(&m.name, Accepts::of(m), m);
                if keep.is_empty() {
                    return Vec::new();
                }
                include.push(keep);
            }
        }
        crate::sort::by_key(&mut include, |l| l.len());
        let mut lists = include.into_iter();
        let mut result = match lists.next() {
            Some(first) => first.into_owned(),
            None => self.all.clone(),
        };
        for l in lists {
            result = intersect(&result, &l);
            if result.is_empty() {
                return result;
            }
        }
        for l in &exclude {
            subtract(&mut result, l);
        }
        result
    }

    /// Ids of the series whose value of `name` is accepted, ascending.
    fn with_values(&self, name: &str, accepts: Accepts<'_>, m: &Matcher) -> Cow<'_, [SeriesId]> {
        let Some(values) = self.by_name.get(name) else { return Cow::Borrowed(&[]) };
        let mut lists: Vec<&[SeriesId]> = match accepts {
            Accepts::Nothing => return Cow::Borrowed(&[]),
            Accepts::Only(wanted) => {
                wanted.iter().filter_map(|v| values.get(*v)).map(|l| &l[..]).collect()
            }
            Accepts::All => values.values().map(|l| &l[..]).collect(),
            Accepts::AllBut(unwanted) => values
                .iter()
                .filter(|(v, _)| !unwanted.contains(&&***v))
                .map(|(_, l)| &l[..])
                .collect(),
            Accepts::Test { negate } => {
                values.iter().filter(|(v, _)| m.matches(v) != negate).map(|(_, l)| &l[..]).collect()
            }
        };
        match lists.len() {
            0 => Cow::Borrowed(&[]),
            1 => Cow::Borrowed(lists.swap_remove(0)),
            _ => {
                // A series has one value per name, so the lists are disjoint
                // and their union is a sorted concatenation.
                let mut out = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
                for l in lists {
                    out.extend_from_slice(l);
                }
                crate::sort::unstable(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Label names in the index, unordered.
    pub fn names(&self) -> impl Iterator<Item = &Str> {
        self.by_name.keys()
    }

    /// The lists of every value of `name`, unordered.
    pub fn lists_of_name(&self, name: &str) -> impl Iterator<Item = &[SeriesId]> {
        self.by_name.get(name).into_iter().flat_map(|vs| vs.values().map(|l| &l[..]))
    }

    /// Values of `name` with their lists, unordered.
    pub fn values(&self, name: &str) -> impl Iterator<Item = (&Str, &[SeriesId])> {
        self.by_name.get(name).into_iter().flat_map(|vs| vs.iter().map(|(v, l)| (v, &l[..])))
    }

    /// Heap bytes held: tables, keys' slots and id lists (the key strings
    /// themselves are interned and counted by the interner).
    pub fn heap_size(&self) -> usize {
        let lists: usize = self
            .by_name
            .values()
            .map(|vs| {
                vs.allocation_size()
                    + vs.values().map(|l| l.capacity() * size_of::<SeriesId>()).sum::<usize>()
            })
            .sum();
        self.by_name.allocation_size() + lists + self.all.capacity() * size_of::<SeriesId>()
    }
}

/// `Vec::retain` that also gives memory back once a list has shrunk a lot.
fn retain_shrinking(list: &mut Vec<SeriesId>, keep: impl FnMut(&SeriesId) -> bool) {
    list.retain(keep);
    if list.len() < list.capacity() / 2 {
        list.shrink_to_fit();
    }
}

/// Sorted intersection. Gallops through the longer list when the shorter is
/// much shorter, as happens for `{__name__="x", instance="y"}`.
fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    if short.len() * 16 < long.len() {
        let mut rest = long;
        for &id in short {
            rest = &rest[gallop(rest, id)..];
            match rest.first() {
                Some(&x) if x == id => out.push(id),
                Some(_) => {}
                None => break,
            }
        }
    } else {
        let (mut i, mut j) = (0, 0);
        while i < short.len() && j < long.len() {
            match short[i].cmp(&long[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.push(short[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
    }
    out
}

/// Index of the first element `>= id`: exponential probe, then binary search.
fn gallop(list: &[SeriesId], id: SeriesId) -> usize {
    let mut hi = 1;
    while hi < list.len() && list[hi - 1] < id {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(list.len());
    lo + list[lo..hi].partition_point(|&x| x < id)
}

/// Removes from sorted `base` every id in sorted `remove`.
fn subtract(base: &mut Vec<SeriesId>, remove: &[SeriesId]) {
    let mut j = 0;
    base.retain(|&id| {
        j += gallop(&remove[j..], id);
        remove.get(j) != Some(&id)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher::new(op, name, value).unwrap()
    }

    fn index(series: &[&[(&str, &str)]]) -> (Postings, Vec<Labels>) {
        let mut p = Postings::default();
        let labels: Vec<Labels> = series.iter().map(|s| Labels::from_pairs(s)).collect();
        for (id, l) in labels.iter().enumerate() {
            p.add(id as SeriesId, l);
        }
        (p, labels)
    }

    fn sample() -> (Postings, Vec<Labels>) {
        index(&[
            &[("__name__", "up"), ("job", "api"), ("instance", "a:1")],
            &[("__name__", "up"), ("job", "api"), ("instance", "b:1")],
            &[("__name__", "up"), ("job", "db")],
            &[("__name__", "req"), ("job", "api"), ("code", "200")],
            &[("__name__", "req"), ("job", "api"), ("code", "500")],
            &[("__name__", "req")],
        ])
    }

    #[test]
    fn equality_and_intersection() {
        let (p, _) = sample();
        assert_eq!(p.select(&[Matcher::equal("__name__", "up")]), vec![0, 1, 2]);
        assert_eq!(
            p.select(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "api")]),
            vec![0, 1]
        );
        assert_eq!(p.select(&[Matcher::equal("job", "nope")]), Vec::<SeriesId>::new());
        assert_eq!(p.select(&[Matcher::equal("nolabel", "x")]), Vec::<SeriesId>::new());
    }

    #[test]
    fn empty_matching_matchers_select_absent_labels() {
        let (p, _) = sample();
        // {instance=""}: series without an instance.
        assert_eq!(p.select(&[m("instance", MatchOp::Equal, "")]), vec![2, 3, 4, 5]);
        // {job!="api"}: includes the series with no job.
        assert_eq!(p.select(&[m("job", MatchOp::NotEqual, "api")]), vec![2, 5]);
        // {code=~"500|"}: code 500 or no code.
        assert_eq!(p.select(&[m("code", MatchOp::Regex, "500|")]), vec![0, 1, 2, 4, 5]);
        // {code!~"2.."}
        assert_eq!(p.select(&[m("code", MatchOp::NotRegex, "2..")]), vec![0, 1, 2, 4, 5]);
        // {x=~".*"} and no matchers at all: everything.
        assert_eq!(p.select(&[m("x", MatchOp::Regex, ".*")]), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(p.select(&[]), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn non_empty_matchers_require_the_label() {
        let (p, _) = sample();
        assert_eq!(p.select(&[m("job", MatchOp::NotEqual, "")]), vec![0, 1, 2, 3, 4]);
        assert_eq!(p.select(&[m("job", MatchOp::Regex, ".+")]), vec![0, 1, 2, 3, 4]);
        assert_eq!(p.select(&[m("code", MatchOp::NotRegex, "")]), vec![3, 4]);
        assert_eq!(p.select(&[m("instance", MatchOp::Regex, "a:1|b:1")]), vec![0, 1]);
        assert_eq!(p.select(&[m("instance", MatchOp::Regex, "[ab]:.")]), vec![0, 1]);
        assert_eq!(p.select(&[m("code", MatchOp::NotRegex, "200|")]), vec![4]);
    }

    #[test]
    fn removal_cleans_lists_and_names() {
        let (mut p, labels) = sample();
        p.remove([(3, &labels[3]), (4, &labels[4])]);
        assert_eq!(p.select(&[]), vec![0, 1, 2, 5]);
        assert!(p.names().all(|n| &**n != "code"));
        assert_eq!(p.values("job").count(), 2);
        assert_eq!(p.lists_of_name("__name__").map(|l| l.len()).sum::<usize>(), 4);
        p.add(9, &labels[3]);
        assert_eq!(p.select(&[Matcher::equal("code", "200")]), vec![9]);
    }

    #[test]
    fn gallop_finds_lower_bound() {
        let l = [1, 3, 5, 7, 9, 11, 13];
        for id in 0..15 {
            assert_eq!(gallop(&l, id), l.partition_point(|&x| x < id), "{id}");
        }
        assert_eq!(gallop(&[], 3), 0);
    }

    fn sorted_ids() -> impl Strategy<Value = Vec<SeriesId>> {
        prop::collection::btree_set(0u64..500, 0..200).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn set_operations_match_naive(a in sorted_ids(), b in sorted_ids()) {
            let naive: Vec<_> = a.iter().copied().filter(|x| b.contains(x)).collect();
            prop_assert_eq!(intersect(&a, &b), naive.clone());
            prop_assert_eq!(intersect(&b, &a), naive);
            let mut diff = a.clone();
            subtract(&mut diff, &b);
            let naive: Vec<_> = a.iter().copied().filter(|x| !b.contains(x)).collect();
            prop_assert_eq!(diff, naive);
        }

        #[test]
        fn select_matches_a_scan(
            series in prop::collection::vec(prop::collection::vec((0usize..3, 0usize..3), 0..4), 1..30),
            matchers in prop::collection::vec((0usize..3, 0usize..4, 0usize..6), 0..4),
        ) {
            const NAMES: [&str; 3] = ["a", "b", "c"];
            const VALUES: [&str; 3] = ["x", "y", "zz"];
            const PATTERNS: [&str; 6] = ["", "x", "x|y", ".*", ".+", "z+|"];
            let mut p = Postings::default();
            let labels: Vec<Labels> = series
                .iter()
                .map(|ls| Labels::from_pairs(&ls.iter().map(|&(n, v)| (NAMES[n], VALUES[v])).collect::<Vec<_>>()))
                .collect();
            for (id, l) in labels.iter().enumerate() {
                p.add(id as SeriesId, l);
            }
            let ops = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex];
            let ms: Vec<Matcher> = matchers.iter().map(|&(n, o, v)| m(NAMES[n], ops[o], PATTERNS[v])).collect();
            let expect: Vec<SeriesId> = labels
                .iter()
                .enumerate()
                .filter(|(_, l)| crate::matcher::matches_all(&ms, l))
                .map(|(id, _)| id as SeriesId)
                .collect();
            prop_assert_eq!(p.select(&ms), expect);
        }
    }
}
