//! The allocator plugins get by default: a bump arena in the instance's initial memory, then the
//! standard allocator.
//!
//! Every call runs in a fresh instance that is thrown away afterwards, so freeing memory within a
//! call matters little, while growing memory costs the host a system call and a TLB flush on
//! every core at reset. The first [`ARENA_SIZE`] bytes of allocations come from a static arena
//! that is part of the initial memory (no `memory.grow`; the host resets only the pages a call
//! dirtied); beyond it, allocations go to the standard allocator, which frees normally.
//! Turn it off with `default-features = false` to use your own `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

/// Bytes served from the arena before falling back to the standard allocator.
pub const ARENA_SIZE: usize = 256 * 1024;

/// A bump allocator over a static arena, falling back to [`System`].
pub struct Arena {
    memory: UnsafeCell<[u8; ARENA_SIZE]>,
    used: UnsafeCell<usize>,
}

// SAFETY: plugins run single-threaded (wasm32-unknown-unknown has no threads).
unsafe impl Sync for Arena {}

impl Arena {
    /// An empty arena.
    pub const fn new() -> Self {
        Self {
            memory: UnsafeCell::new([0; ARENA_SIZE]),
            used: UnsafeCell::new(0),
        }
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let start = self.memory.get() as *mut u8;
        ptr >= start && ptr < start.wrapping_add(ARENA_SIZE)
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `used` is only touched here.
        let used = unsafe { &mut *self.used.get() };
        let base = self.memory.get() as *mut u8 as usize;
        let start = (base + *used).next_multiple_of(layout.align());
        match start.checked_add(layout.size()) {
            Some(end) if end <= base + ARENA_SIZE => {
                *used = end - base;
                start as *mut u8
            }
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.contains(ptr) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.contains(ptr) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // The last allocation grows or shrinks in place when it fits.
        let used = unsafe { &mut *self.used.get() };
        let base = self.memory.get() as *mut u8 as usize;
        let offset = ptr as usize - base;
        if offset + layout.size() == *used && offset + new_size <= ARENA_SIZE {
            *used = offset + new_size;
            return ptr;
        }
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_from_the_arena_then_falls_back() {
        static ARENA: Arena = Arena::new();
        let arena = &ARENA;
        unsafe {
            let small = Layout::from_size_align(100, 8).unwrap();
            let a = arena.alloc(small);
            assert!(arena.contains(a) && (a as usize).is_multiple_of(8));
            let grown = arena.realloc(a, small, 1000);
            assert_eq!(grown, a, "the last allocation grows in place");
            let big = Layout::from_size_align(ARENA_SIZE, 1).unwrap();
            let b = arena.alloc(big);
            assert!(
                !b.is_null() && !arena.contains(b),
                "too big: the system allocator"
            );
            arena.dealloc(b, big);
            let moved = arena.realloc(
                grown,
                Layout::from_size_align(1000, 8).unwrap(),
                ARENA_SIZE + 1,
            );
            assert!(
                !arena.contains(moved),
                "outgrew the arena: moved to the system allocator"
            );
            assert_eq!(
                std::slice::from_raw_parts(moved, 4),
                std::slice::from_raw_parts(a, 4)
            );
            arena.dealloc(moved, Layout::from_size_align(ARENA_SIZE + 1, 8).unwrap());
        }
    }
}
