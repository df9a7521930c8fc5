//! Sorting that costs the browser bundle one copy of the standard library's
//! sort in all, not one per call site.
//!
//! `slice::sort_by` is generic over element and comparator, so every call
//! with its own closure instantiates the whole sort again: about 4.5 KiB of
//! WebAssembly each, which the playground's 2 MiB budget feels. On wasm32
//! these functions sort a permutation of `u32` indexes through a `dyn`
//! comparator, always the same instantiation, and then move the elements
//! into place; each element type only adds that small move. Natively they
//! are the standard library's sorts with the closure inlined, since sorting
//! selections by labels is on the query path there.

use std::cmp::Ordering;

/// Stable sort by `cmp`, as `slice::sort_by`.
#[inline]
#[cfg_attr(not(target_arch = "wasm32"), allow(unused_mut))]
pub fn by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    #[cfg(target_arch = "wasm32")]
    {
        let mut order = sorted_order(v.len(), &mut |a, b| cmp(&v[a], &v[b]));
        permute(v, &mut order);
    }
    #[cfg(not(target_arch = "wasm32"))]
    v.sort_by(cmp);
}

/// Stable sort by `key`, as `slice::sort_by_key`.
#[inline]
pub fn by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    by(v, |a, b| key(a).cmp(&key(b)));
}

/// Stable sort of an `Ord` type, as `slice::sort`.
#[inline]
pub fn sort<T: Ord>(v: &mut [T]) {
    by(v, T::cmp);
}

/// Sort by `cmp` where the order of equal elements does not matter, as
/// `slice::sort_unstable_by`.
#[inline]
pub fn unstable_by<T>(v: &mut [T], cmp: impl FnMut(&T, &T) -> Ordering) {
    #[cfg(target_arch = "wasm32")]
    by(v, cmp);
    #[cfg(not(target_arch = "wasm32"))]
    v.sort_unstable_by(cmp);
}

/// Sort of an `Ord` type where equal elements' order does not matter, as
/// `slice::sort_unstable`.
#[inline]
pub fn unstable<T: Ord>(v: &mut [T]) {
    unstable_by(v, T::cmp);
}

/// The indexes `0..len` in the stable order `cmp` gives them.
#[cfg(any(target_arch = "wasm32", test))]
#[inline(never)]
fn sorted_order(len: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<u32> {
    // Slices longer than u32::MAX elements do not fit in wasm32's memory.
    let mut order: Vec<u32> = (0..len as u32).collect();
    order.sort_by(|a, b| cmp(*a as usize, *b as usize));
    order
}

/// Moves `v[order[i]]` to `v[i]` for every `i`, following each cycle of the
/// permutation with swaps; `order` is used up.
#[cfg(any(target_arch = "wasm32", test))]
fn permute<T>(v: &mut [T], order: &mut [u32]) {
    for start in 0..v.len() {
        let mut cur = start;
        while order[cur] as usize != start {
            let next = order[cur] as usize;
            v.swap(cur, next);
            order[cur] = cur as u32;
            cur = next;
        }
        order[cur] = cur as u32;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    #[test]
    fn sorts_stably_and_by_key() {
        let mut v = vec![(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd')];
        super::by_key(&mut v, |x| x.0);
        assert_eq!(v, [(1, 'b'), (1, 'd'), (2, 'a'), (2, 'c')]);
        super::by(&mut v, |a, b| b.0.cmp(&a.0));
        assert_eq!(v, [(2, 'a'), (2, 'c'), (1, 'b'), (1, 'd')]);
        super::unstable_by(&mut v, |a, b| a.1.cmp(&b.1));
        assert_eq!(v, [(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd')]);
    }

    proptest! {
        /// The wasm32 path (index sort, then the permutation), run natively.
        #[test]
        fn index_sort_matches_the_standard_stable_sort(v in prop::collection::vec((0u8..8, any::<u16>()), 0..200)) {
            let mut want = v.clone();
            want.sort_by_key(|x| x.0);
            let mut got = v.clone();
            let mut order = super::sorted_order(got.len(), &mut |a, b| got[a].0.cmp(&got[b].0));
            super::permute(&mut got, &mut order);
            prop_assert_eq!(got, want);
        }
    }
}
