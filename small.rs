// SPDX-License-Identifier: GPL-2.0

//! A vector whose first few items need no allocation.
//!
//! The tables of a small hand-over (its pages, its one session, its one handler name) are read
//! at boot while the guests wait: an allocation costs more there than the checks of a whole
//! session. They are held inline up to `N` items and move to the heap, whole, past that.

use core::ops::{
    Deref,
    DerefMut, //
};

use kernel::{
    alloc::{
        AllocError,
        Flags, //
    },
    prelude::*,
};

/// A vector of `T` that holds up to `N` items inline and all of them in `heap` past that.
///
/// # Invariants
///
/// If `spilled`, the items are `heap[..]` (the inline slots hold defaults); otherwise they
/// are `inline[..len]`, `len <= N`. `spilled` never goes back to `false`.
pub(crate) struct SmallVec<T: Default, const N: usize> {
    inline: [T; N],
    len: usize,
    heap: KVVec<T>,
    spilled: bool,
}

impl<T: Default, const N: usize> SmallVec<T, N> {
    /// An empty vector.
    #[inline]
    pub(crate) fn new() -> Self {
        // INVARIANT: Not spilled, no item.
        Self {
            inline: core::array::from_fn(|_| T::default()),
            len: 0,
            heap: KVVec::new(),
            spilled: false,
        }
    }

    /// Makes room for `n` more items: pushing them then allocates nothing.
    #[inline]
    pub(crate) fn reserve(&mut self, n: usize, flags: Flags) -> Result<(), AllocError> {
        if self.spilled {
            return self.heap.reserve(n, flags);
        }
        self.spill(n, flags)
    }

    /// Moves the items to the heap, with room for `n` more, if they do not fit inline.
    #[inline(never)]
    fn spill(&mut self, n: usize, flags: Flags) -> Result<(), AllocError> {
        let want = self.len.checked_add(n).ok_or(AllocError)?;
        if want <= N {
            return Ok(());
        }
        // Past the inline room: every item moves to the heap, with room for `want`.
        let mut heap = KVVec::with_capacity(want, flags)?;
        for v in self.inline.iter_mut().take(self.len) {
            // Within the capacity: `want >= len`.
            let _ = heap.push_within_capacity(core::mem::take(v));
        }
        // INVARIANT: The items, in order, are now `heap[..]`.
        self.heap = heap;
        self.spilled = true;
        Ok(())
    }

    /// Appends `n` default items.
    pub(crate) fn extend_default(&mut self, n: usize, flags: Flags) -> Result<(), AllocError>
    where
        T: Clone,
    {
        self.reserve(n, flags)?;
        if self.spilled {
            return self.heap.extend_with(n, T::default(), flags);
        }
        for _ in 0..n {
            // Within the inline room reserved above: nothing is allocated.
            self.push(T::default(), flags)?;
        }
        Ok(())
    }

    /// Appends `v`.
    #[inline]
    pub(crate) fn push(&mut self, v: T, flags: Flags) -> Result<(), AllocError> {
        if self.spilled {
            // Mostly within a reservation: that path is small enough to be inlined.
            return match self.heap.push_within_capacity(v) {
                Ok(()) => Ok(()),
                Err(full) => self.heap.push(full.0, flags),
            };
        }
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = v;
            // INVARIANT: `v` follows the items inline; `len <= N`.
            self.len += 1;
            return Ok(());
        }
        // The inline room is full: the items move to the heap, `v` after them.
        self.spill(1, flags)?;
        self.heap.push(v, flags)
    }
}

impl<T: Default, const N: usize> Default for SmallVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Default, const N: usize> Deref for SmallVec<T, N> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match self.spilled {
            true => &self.heap,
            // `len <= N` (the type's invariant).
            false => self.inline.get(..self.len).unwrap_or(&[]),
        }
    }
}

impl<T: Default, const N: usize> DerefMut for SmallVec<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match self.spilled {
            true => &mut self.heap,
            // `len <= N` (the type's invariant).
            false => self.inline.get_mut(..self.len).unwrap_or(&mut []),
        }
    }
}

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[kernel::macros::kunit_tests(liveupdate_rust_small)]
mod tests {
    use super::*;
    use kernel::sync::Arc;

    #[test]
    fn items_keep_their_order_inline_and_on_the_heap() {
        for n in 0..9usize {
            // Pushed one by one, and after a reservation of all of them.
            for reserve in [false, true] {
                let mut v: SmallVec<usize, 3> = SmallVec::new();
                if reserve {
                    v.reserve(n, GFP_KERNEL).unwrap();
                }
                for i in 0..n {
                    v.push(i * 10, GFP_KERNEL).unwrap();
                }
                assert_eq!(v.len(), n);
                assert!(v.iter().copied().eq((0..n).map(|i| i * 10)));
                // Sorted in place (the slice is the items, wherever they are).
                v.reverse();
                v.sort_unstable();
                assert!(v.iter().copied().eq((0..n).map(|i| i * 10)));
                // More after a reservation, and after the items went to the heap.
                v.reserve(2, GFP_KERNEL).unwrap();
                v.push(1000, GFP_KERNEL).unwrap();
                assert_eq!(v.len(), n + 1);
                assert_eq!(v.last(), Some(&1000));
            }
        }
    }

    #[test]
    fn items_that_are_not_copied_move_to_the_heap_whole() {
        for n in 0..6usize {
            let mut v: SmallVec<Option<Arc<usize>>, 2> = SmallVec::new();
            v.extend_default(n, GFP_KERNEL).unwrap();
            assert!(v.iter().all(Option::is_none));
            for (i, item) in v.iter_mut().enumerate() {
                *item = Some(Arc::new(i, GFP_KERNEL).unwrap());
            }
            v.push(Some(Arc::new(99, GFP_KERNEL).unwrap()), GFP_KERNEL)
                .unwrap();
            assert_eq!(v.len(), n + 1);
            for (i, item) in v.iter().enumerate() {
                let want = if i < n { i } else { 99 };
                assert_eq!(item.as_deref(), Some(&want));
            }
        }
    }
}
