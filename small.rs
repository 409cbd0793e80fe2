// SPDX-License-Identifier: GPL-2.0

//! A vector whose first few items need no allocation.
//!
//! The tables of a small hand-over (its pages, its one session, its one handler name) are read
//! at boot while the guests wait: an allocation costs more there than the checks of a whole
//! session. They are held inline up to `N` items and move to the heap, whole, past that.

use core::{
    mem::MaybeUninit,
    ops::{
        Deref,
        DerefMut, //
    },
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
/// The inline slots are not initialized until an item is pushed: an empty vector costs a few
/// words to make, whatever `N` and `T`, and moving one copies no item.
///
/// # Invariants
///
/// If `spilled`, the items are `heap[..]` and no inline slot holds one; otherwise they are
/// `inline[..len]`, initialized, and `len <= N`. `spilled` never goes back to `false`.
pub(crate) struct SmallVec<T, const N: usize> {
    inline: [MaybeUninit<T>; N],
    len: usize,
    heap: KVVec<T>,
    spilled: bool,
}

impl<T, const N: usize> SmallVec<T, N> {
    /// An empty vector.
    #[inline]
    pub(crate) fn new() -> Self {
        // INVARIANT: Not spilled, no item.
        Self {
            inline: [const { MaybeUninit::uninit() }; N],
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
        // Room inline: decided here, without a call.
        if self.len.checked_add(n).is_some_and(|want| want <= N) {
            return Ok(());
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
        let len = core::mem::replace(&mut self.len, 0);
        for slot in self.inline.iter().take(len) {
            // SAFETY: `slot` is one of the first `len` slots, which hold the items (the type's
            // invariant, not spilled); `self.len` is 0 now, so each is read once, here, and
            // never dropped in place.
            let v = unsafe { slot.assume_init_read() };
            // Within the capacity: `want >= len`.
            let _ = heap.push_within_capacity(v);
        }
        // INVARIANT: The items, in order, are now `heap[..]`; no inline slot holds one.
        self.heap = heap;
        self.spilled = true;
        Ok(())
    }

    /// Appends `n` default items.
    pub(crate) fn extend_default(&mut self, n: usize, flags: Flags) -> Result<(), AllocError>
    where
        T: Default,
    {
        self.reserve(n, flags)?;
        if self.spilled {
            // Within the room reserved above, so no push fails (the error is never returned).
            // Not `extend_with`: its reservation and unrolled copies are code TCG translates
            // at each site, for no allocation.
            for _ in 0..n {
                self.heap
                    .push_within_capacity(T::default())
                    .map_err(|_| AllocError)?;
            }
            return Ok(());
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
        // Read once: the compiler then knows `len < N` below, and adds one with no check.
        let len = self.len;
        if let Some(slot) = self.inline.get_mut(len) {
            slot.write(v);
            // INVARIANT: `v` follows the items inline, initialized; `len < N`, so the new
            // length is at most `N`.
            self.len = len + 1;
            return Ok(());
        }
        // The inline room is full: the items move to the heap, `v` after them.
        self.spill(1, flags)?;
        self.heap.push(v, flags)
    }
}

impl<T, const N: usize> Default for SmallVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Deref for SmallVec<T, N> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        if self.spilled {
            return &self.heap;
        }
        let items = self.inline.get(..self.len).unwrap_or(&[]);
        // SAFETY: Not spilled: the first `len` slots hold the items, initialized (the type's
        // invariant); `MaybeUninit<T>` has the layout of `T`.
        unsafe { &*(core::ptr::from_ref(items) as *const [T]) }
    }
}

impl<T, const N: usize> DerefMut for SmallVec<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        if self.spilled {
            return &mut self.heap;
        }
        let items = self.inline.get_mut(..self.len).unwrap_or(&mut []);
        // SAFETY: As in `deref`, and `items` is borrowed mutably from `self`.
        unsafe { &mut *(core::ptr::from_mut(items) as *mut [T]) }
    }
}

impl<T, const N: usize> Drop for SmallVec<T, N> {
    fn drop(&mut self) {
        if self.spilled {
            // `heap` drops its items.
            return;
        }
        let items: *mut [T] = &mut **self;
        // SAFETY: Not spilled: `items` are the initialized inline items (the type's invariant),
        // dropped once, here, as the vector goes; nothing reads them afterwards.
        unsafe { core::ptr::drop_in_place(items) };
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

    /// An item that counts its drops in its cell.
    struct Counted<'a>(&'a core::cell::Cell<usize>);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn every_item_is_dropped_once_inline_and_on_the_heap() {
        for n in 0..6usize {
            let drops = core::cell::Cell::new(0);
            {
                let mut v: SmallVec<Counted<'_>, 2> = SmallVec::new();
                for _ in 0..n {
                    v.push(Counted(&drops), GFP_KERNEL).unwrap();
                }
                // Nothing is dropped as items move to the heap.
                assert_eq!(drops.get(), 0);
                assert_eq!(v.len(), n);
            }
            assert_eq!(drops.get(), n);
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
            // Defaults after the items, moving them to the heap or already there.
            v.extend_default(n, GFP_KERNEL).unwrap();
            assert_eq!(v.len(), 2 * n + 1);
            for (i, item) in v.iter().take(n).enumerate() {
                assert_eq!(item.as_deref(), Some(&i));
            }
            assert_eq!(v.get(n).and_then(|i| i.as_deref()), Some(&99));
            assert!(v.iter().skip(n + 1).all(Option::is_none));
        }
        // Defaults after an item, all inline.
        let mut v: SmallVec<usize, 2> = SmallVec::new();
        v.push(7, GFP_KERNEL).unwrap();
        v.extend_default(1, GFP_KERNEL).unwrap();
        assert!(!v.spilled);
        assert_eq!(&v[..], &[7, 0]);
    }
}
