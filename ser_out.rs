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

/// A block chain of `E`, complete after every change: the next kernel could read it at any
/// moment. So a session's file chain is written as files are preserved and reboot only
/// stores what a freeze changed, and the session chain is written at reboot into pages
/// reserved beforehand (see [`fit_pool`]). Dropping the chain frees its pages; a successful
/// reboot keeps them where they were reserved with [`Chain::into_written`], a failed one
/// takes them back zeroed with [`Chain::into_pages`].
///
/// # Invariants
///
/// `pages[..pages_for::<E>(len)]` hold the chain of the `len` entries: each block's header
/// holds its number of entries (1 to `E::PER_BLOCK`), a full block links to the next one, the
/// last block links nowhere. `pages[pages_for::<E>(len)..]` are zeroed spares.
pub(crate) struct Chain<P: OutMem, E: Entry> {
    pages: KVec<P>,
    len: usize,
    _entry: PhantomData<E>,
}

/// The entry in slot `slot` of a block.
fn slot_mut<E: Entry>(page: &mut [u8], slot: usize) -> Option<&mut E> {
    let off = entry_off::<E>(slot);
    // The entry types are packed (alignment 1): the slot is always one.
    page.get_mut(off..off + size_of::<E>())
        .and_then(E::from_bytes_mut)
}

impl<P: OutMem, E: Entry> Chain<P, E> {
    /// An empty chain with no pages.
    pub(crate) const fn new() -> Self {
        // INVARIANT: No entry, no page.
        Self {
            pages: KVec::new(),
            len: 0,
            _entry: PhantomData,
        }
    }

    /// An empty chain that writes into `pages` (zeroed) before it allocates.
    pub(crate) fn with_pages(pages: KVec<P>) -> Self {
        // INVARIANT: No entry yet; the caller passes zeroed pages.
        Self {
            pages,
            len: 0,
            _entry: PhantomData,
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes sure the next append allocates nothing: `ENOSPC` past [`MAX_BLOCKS`] blocks.
    pub(crate) fn reserve(&mut self) -> Result {
        // Room in the pages there are (always, at reboot): one test.
        if self.len < self.pages.len().min(MAX_BLOCKS) * E::PER_BLOCK {
            return Ok(());
        }
        let want = pages_for::<E>(self.len + 1);
        if want > MAX_BLOCKS {
            return Err(ENOSPC);
        }
        if self.pages.len() < want {
            self.pages.reserve(1, GFP_KERNEL)?;
            // INVARIANT: A new page is zeroed: a spare.
            self.pages.push(P::alloc()?, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Frees the spare pages (after [`Self::reserve`] for an append that did not happen).
    pub(crate) fn trim(&mut self) {
        self.pages.truncate(pages_for::<E>(self.len));
    }

    /// Appends an entry: `fill` writes it in place, into a zeroed slot. Allocates only
    /// without a [`Self::reserve`] before.
    pub(crate) fn push_with(&mut self, fill: impl FnOnce(&mut E)) -> Result {
        self.reserve()?;
        let (block, slot) = (self.len / E::PER_BLOCK, self.len % E::PER_BLOCK);
        let page = self.pages[block].bytes();
        let entry = slot_mut::<E>(page, slot).ok_or(EINVAL)?;
        fill(entry);
        write(page, 0, &BlockHeader::new(0, slot as u64 + 1));
        if slot == 0 {
            // A new block, written: the previous one (full) links to it now.
            if let Some(prev) = block.checked_sub(1) {
                let pa = self.pages[block].pa();
                let full = BlockHeader::new(pa, E::PER_BLOCK as u64);
                write(self.pages[prev].bytes(), 0, &full);
            }
        }
        // INVARIANT: The entry is written, its block counts it, a new block is linked.
        self.len += 1;
        Ok(())
    }

    /// Entry `i`, to change in place.
    pub(crate) fn entry_mut(&mut self, i: usize) -> Option<&mut E> {
        // One test, not two (reboot calls this once per file): an index past the entries is
        // mapped past the pages.
        let block = if i < self.len {
            i / E::PER_BLOCK
        } else {
            usize::MAX
        };
        let page = self.pages.get_mut(block)?.bytes();
        slot_mut::<E>(page, i % E::PER_BLOCK)
    }

    /// The bytes of the first block, if any (for fault injection).
    pub(crate) fn first_block(&mut self) -> Option<(&mut [u8], u64)> {
        if self.len == 0 {
            return None;
        }
        let page = self.pages.first_mut()?;
        let pa = page.pa();
        Some((page.bytes(), pa))
    }

    /// Physical address of the first block, 0 for an empty chain.
    pub(crate) fn head(&self) -> u64 {
        if self.len == 0 {
            return 0;
        }
        self.pages.first().map_or(0, |p| p.pa())
    }

    /// All pages, the chain written in them: they are the hand-over now, and must stay
    /// allocated and preserved until the kexec (see `reboot::serialize`).
    pub(crate) fn into_written(self) -> KVec<P> {
        self.pages
    }

    /// All pages back, zeroed, for another attempt.
    pub(crate) fn into_pages(self) -> KVec<P> {
        let used = pages_for::<E>(self.len);
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
    /// Appends a session entry whose file chain starts at `files` and holds `count` files.
    pub(crate) fn push_session(&mut self, name: &Name, files: u64, count: usize) -> Result {
        self.push_with(|e| {
            e.name = *name.field();
            e.file_set_ser.files = files;
            e.file_set_ser.count = count as u64;
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
pub(crate) fn write_flb(page: &mut [u8], index: usize, name: &Compat, data: u64, count: u64) {
    if index >= MAX_FLBS {
        return;
    }
    write(page, flb_off(index), &FlbSer::new(name, data, count));
}

/// Sets the number of FLB records in the FLB page.
pub(crate) fn set_flb_count(page: &mut [u8], count: usize) {
    set_flb_header(page, count.min(MAX_FLBS) as u64);
}
