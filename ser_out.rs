// SPDX-License-Identifier: GPL-2.0

//! Writing the hand-over at reboot: block chains written into pages reserved beforehand, the
//! root and the FLB page.

use core::{
    marker::PhantomData,
    mem::size_of, //
};

use kernel::prelude::*;

use super::{
    entry_off,
    flb_off,
    read,
    write, //
};
use crate::{
    abi::{
        BlockHeader,
        Compat,
        Entry,
        FileSer,
        FlbHeader,
        FlbSer,
        Name,
        RootSer,
        SessionSer,
        COMPAT_LEN,
        MAX_BLOCKS,
        MAX_FLBS, //
    },
    kho,
};

/// Pages the writer can allocate: KHO pages in the kernel, plain pages in the KUnit tests.
pub(crate) trait OutMem: Sized {
    fn alloc() -> Result<Self>;
    fn bytes(&mut self) -> &mut [u8];
    fn pa(&self) -> u64;
}

impl OutMem for kho::OutPage {
    fn alloc() -> Result<Self> {
        Self::new()
    }
    fn bytes(&mut self) -> &mut [u8] {
        kho::OutPage::bytes(self)
    }
    fn pa(&self) -> u64 {
        kho::OutPage::pa(self)
    }
}

/// Pages a chain of `entries` entries of `E` needs.
pub(crate) const fn pages_for<E: Entry>(entries: usize) -> usize {
    entries.div_ceil(E::PER_BLOCK)
}

/// Grows or shrinks `pool` to the pages a chain of `entries` entries of `E` needs, so that
/// reboot writes into pages allocated in advance (as the C core does) instead of allocating
/// them while the machine waits. Growing can fail and then changes nothing.
pub(crate) fn fit_pool<E: Entry, P: OutMem>(pool: &mut KVec<P>, entries: usize) -> Result {
    let want = pages_for::<E>(entries);
    while pool.len() > want {
        pool.pop();
    }
    if pool.len() < want {
        pool.reserve(want - pool.len(), GFP_KERNEL)?;
        while pool.len() < want {
            pool.push(P::alloc()?, GFP_KERNEL)?;
        }
    }
    Ok(())
}

/// A block chain of `E` being written: never holds an empty block. It writes into pages
/// reserved beforehand (see [`fit_pool`]) and allocates only if they run out. Dropping it
/// frees its pages; a successful reboot keeps them where they were reserved with
/// [`Chain::into_written`], a failed one takes them back zeroed with [`Chain::into_pages`].
///
/// # Invariants
///
/// `pages[..used]` are the chain's blocks, each full one linked to the next; the last one holds
/// `in_last` entries (its header is written when `sealed`); `pages[used..]` are zeroed spares.
pub(crate) struct Chain<P: OutMem, E: Entry> {
    pages: KVec<P>,
    used: usize,
    in_last: usize,
    total: u64,
    /// The last block's header is written (nothing was pushed since).
    sealed: bool,
    _entry: PhantomData<E>,
}

impl<P: OutMem, E: Entry> Chain<P, E> {
    /// A chain that writes into `pages` (zeroed) before it allocates.
    pub(crate) fn with_pages(pages: KVec<P>) -> Self {
        // INVARIANT: No page is used yet; the caller passes zeroed pages.
        Self {
            pages,
            used: 0,
            in_last: 0,
            total: 0,
            sealed: false,
            _entry: PhantomData,
        }
    }

    /// Appends an entry, in the next page if the last one is full: `fill` writes it in place,
    /// into a zeroed slot. The last block's header is written when the chain is sealed.
    pub(crate) fn push_with(&mut self, fill: impl FnOnce(&mut E)) -> Result {
        if self.used == 0 || self.in_last == E::PER_BLOCK {
            if self.used == MAX_BLOCKS {
                return Err(ENOSPC);
            }
            if self.used == self.pages.len() {
                self.pages.reserve(1, GFP_KERNEL)?;
                self.pages.push(P::alloc()?, GFP_KERNEL)?;
            }
            let pa = self.pages[self.used].pa();
            if let Some(prev) = self.used.checked_sub(1) {
                let count = E::PER_BLOCK as u64;
                write(self.pages[prev].bytes(), 0, &BlockHeader::new(pa, count));
            }
            // INVARIANT: The new block is linked from the previous one and still empty.
            self.used += 1;
            self.in_last = 0;
        }
        let off = entry_off::<E>(self.in_last);
        let page = self.pages[self.used - 1].bytes();
        // The entry types are packed (alignment 1): the slot is always one.
        let slot = page
            .get_mut(off..off + size_of::<E>())
            .and_then(E::from_bytes_mut)
            .ok_or(EINVAL)?;
        fill(slot);
        self.in_last += 1;
        self.total += 1;
        self.sealed = false;
        Ok(())
    }

    /// Writes the last block's header (its count; it links nowhere), once: what was changed
    /// in it since (fault injection) stays.
    fn seal(&mut self) {
        if self.sealed {
            return;
        }
        if let Some(last) = self.used.checked_sub(1) {
            let count = self.in_last as u64;
            write(self.pages[last].bytes(), 0, &BlockHeader::new(0, count));
        }
        self.sealed = true;
    }

    /// The bytes of the first block, if any (for fault injection).
    pub(crate) fn first_block(&mut self) -> Option<(&mut [u8], u64)> {
        if self.used == 0 {
            return None;
        }
        self.seal();
        let page = self.pages.first_mut()?;
        let pa = page.pa();
        Some((page.bytes(), pa))
    }

    /// Physical address of the first block, 0 for an empty chain.
    pub(crate) fn head(&self) -> u64 {
        if self.used == 0 {
            return 0;
        }
        self.pages.first().map_or(0, |p| p.pa())
    }

    /// All pages, the chain written in them: they are the hand-over now, and must stay
    /// allocated and preserved until the kexec (see `reboot::serialize`).
    pub(crate) fn into_written(mut self) -> KVec<P> {
        self.seal();
        self.pages
    }

    /// All pages back, zeroed, for another attempt.
    pub(crate) fn into_pages(self) -> KVec<P> {
        let used = self.used;
        let mut pages = self.pages;
        for p in pages.iter_mut().take(used) {
            p.bytes().fill(0);
        }
        pages
    }
}

impl<P: OutMem> Chain<P, FileSer> {
    /// Appends a file entry; `compatible` (a handler's, without NUL) is cut to fit its field.
    pub(crate) fn push_file(&mut self, compatible: &[u8], data: u64, token: u64) -> Result {
        let n = compatible.len().min(COMPAT_LEN - 1);
        self.push_with(|e| {
            e.compatible[..n].copy_from_slice(&compatible[..n]);
            e.data = data;
            e.token = token;
        })
    }
}

impl<P: OutMem> Chain<P, SessionSer> {
    /// Appends a session entry whose files are `files`.
    pub(crate) fn push_session(&mut self, name: &Name, files: &Chain<P, FileSer>) -> Result {
        let (head, count) = (files.head(), files.total);
        self.push_with(|e| {
            e.name = *name.field();
            e.file_set_ser.files = head;
            e.file_set_ser.count = count;
        })
    }
}

/// Writes the root: compatible string, update number, no sessions, the FLB page.
pub(crate) fn write_root(root: &mut [u8], liveupdate_num: u64, flbs_pa: u64) {
    write(root, 0, &RootSer::new(liveupdate_num, 0, flbs_pa));
}

/// The root as written.
pub(super) fn root_of(root: &[u8]) -> RootSer {
    read::<RootSer>(root, 0).unwrap_or_default()
}

/// Sets the root's session chain.
pub(crate) fn set_root_sessions(root: &mut [u8], sessions_pa: u64) {
    let r = root_of(root);
    write(
        root,
        0,
        &RootSer::new(r.liveupdate_num, sessions_pa, r.flbs_pa),
    );
}

/// Initializes an empty FLB page.
pub(crate) fn init_flb_page(page: &mut [u8]) {
    page.fill(0);
    set_flb_header(page, 0);
}

pub(super) fn set_flb_header(page: &mut [u8], count: u64) {
    write(page, 0, &FlbHeader::new(count));
}

/// Writes FLB record `index` (name, data, count) into the FLB page; `index < MAX_FLBS`.
pub(crate) fn write_flb(page: &mut [u8], index: usize, name: &[u8], data: u64, count: u64) {
    if index >= MAX_FLBS {
        return;
    }
    let e = FlbSer::new(&Compat::truncated(name), data, count);
    write(page, flb_off(index), &e);
}

/// Sets the number of FLB records in the FLB page.
pub(crate) fn set_flb_count(page: &mut [u8], count: usize) {
    set_flb_header(page, count.min(MAX_FLBS) as u64);
}
