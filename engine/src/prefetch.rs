//! Cache prefetch hints, for loops that touch one scattered object after
//! another (a scrape's appends go to thousands of series) and know which
//! ones come next.

/// Asks the CPU to start loading the cache line holding `p`. Nothing where
/// there is no prefetch instruction, and nothing the program can observe:
/// any address will do, even a dangling one.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults or changes memory, whatever the
    // address, and reads nothing the program can observe.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
