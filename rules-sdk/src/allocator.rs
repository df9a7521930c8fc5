//! The guest's allocator: a bump arena inside the module's initial memory,
//! then Rust's standard allocator (dlmalloc) once the arena is full.
//!
//! Why: the host runs every evaluation in a fresh instance, and dlmalloc
//! gets every byte it hands out with `memory.grow`. In wasmtime a grow past
//! the module's initial size costs two `mprotect` calls per evaluation (the
//! new pages made accessible, and inaccessible again when the instance's
//! slot is reused), ~8 µs: more than everything else a trivial rule's
//! evaluation does. The arena is a zeroed static, so it is part of the
//! initial memory, already accessible, and a small rule never grows memory.
//!
//! Freeing only gives back the latest allocation (so a growing `Vec` at the
//! top extends in place); everything else in the arena is reclaimed when the
//! instance is dropped after the evaluation. A rule that allocates more than
//! the arena holds continues in dlmalloc, exactly as without it.
//!
//! Rules that need an allocator of their own turn the SDK's `allocator`
//! feature off.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Enough for a rule that reads a few hundred samples; one 64 KiB wasm page.
const ARENA_BYTES: usize = 64 << 10;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: only the allocator touches it, and it hands out disjoint ranges
// (wasm32-unknown-unknown guests are single-threaded, so the plain loads and
// stores of `USED` below cannot race).
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
/// Bytes of the arena in use, from its start.
static USED: AtomicUsize = AtomicUsize::new(0);

pub struct Allocator;

fn arena() -> (usize, usize) {
    let base = ARENA.0.get() as usize;
    (base, base + ARENA_BYTES)
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (base, end) = arena();
        let top = base + USED.load(Relaxed);
        let stop = top
            .checked_next_multiple_of(layout.align())
            .and_then(|start| Some((start, start.checked_add(layout.size())?)));
        match stop {
            Some((start, stop)) if stop <= end => {
                USED.store(stop - base, Relaxed);
                start as *mut u8
            }
            // SAFETY: the caller's contract is System's.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (base, end) = arena();
        let p = ptr as usize;
        if (base..end).contains(&p) {
            if p + layout.size() == base + USED.load(Relaxed) {
                USED.store(p - base, Relaxed);
            }
        } else {
            // SAFETY: not from the arena, so System allocated it.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (base, end) = arena();
        let p = ptr as usize;
        if !(base..end).contains(&p) {
            // SAFETY: not from the arena, so System allocated it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let latest = p + layout.size() == base + USED.load(Relaxed);
        if latest && p.checked_add(new_size).is_some_and(|stop| stop <= end) {
            USED.store(p + new_size - base, Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `GlobalAlloc::realloc`'s contract makes this layout valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for any allocation; `ptr` is valid for `layout.size()`
        // bytes and the new block for more, and they are distinct blocks.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
