// SPDX-License-Identifier: GPL-2.0

//! The "luo-v5" hand-over format: writing it at reboot, validating and reading it at boot.
//!
//! Layout (`include/linux/kho/abi/luo.h` and `kho/abi/block.h`, native endian):
//!
//! ```text
//! root (struct luo_ser, the "LUO" subtree): compatible "luo-v5", liveupdate_num,
//!                                            sessions_pa, flbs_pa
//! sessions_pa -> [kho_block_header_ser {next, count}][luo_session_ser x count] -> next ...
//!   luo_session_ser.file_set_ser.files -> [header][luo_file_ser x count] -> next ...
//! flbs_pa     -> [luo_flb_header_ser {pgcnt = 1, count}][luo_flb_ser x count]
//! ```
//!
//! Every block is one page with 1..=capacity entries; a chain has at most
//! [`MAX_BLOCKS`] blocks. The writer never emits an empty block. The reader trusts nothing:
//! every address must be a page the previous kernel preserved (KHO checks it), chains may not
//! loop or grow past [`MAX_BLOCKS`], counts must fit their pages and add up, strings must be
//! terminated, names and tokens unique. Anything else is refused as a whole, with a log line,
//! and the kernel boots without incoming sessions.

use core::mem::{
    offset_of,
    size_of, //
};

use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::Atomic, //
};

use crate::luo_session::{
    terminated_len,
    SessionName, //
};

/// Size of a block header.
const HDR: usize = size_of::<bindings::kho_block_header_ser>();
/// Size of a session entry.
pub(crate) const SESSION_SER: usize = size_of::<bindings::luo_session_ser>();
/// Size of a file entry.
pub(crate) const FILE_SER: usize = size_of::<bindings::luo_file_ser>();
/// Size of the FLB page header and of an FLB entry.
const FLB_HDR: usize = size_of::<bindings::luo_flb_header_ser>();
const FLB: usize = size_of::<bindings::luo_flb_ser>();
/// Size of the root.
pub(crate) const ROOT: usize = size_of::<bindings::luo_ser>();
/// Most blocks in one chain (the C implementation's `KHO_MAX_BLOCKS`).
pub(crate) const MAX_BLOCKS: usize = 10000;
/// Length of handler and FLB compatible strings, NUL included.
pub(crate) const COMPAT_LEN: usize = bindings::LIVEUPDATE_HNDL_COMPAT_LENGTH as usize;

/// Entries of `entry` bytes in one block.
pub(crate) const fn capacity(entry: usize) -> usize {
    (PAGE_SIZE - HDR) / entry
}
/// Most sessions, and most files in one session, the format can carry.
pub(crate) const MAX_SESSIONS: usize = MAX_BLOCKS * capacity(SESSION_SER);
pub(crate) const MAX_FILES: usize = MAX_BLOCKS * capacity(FILE_SER);
/// Most FLB entries in the FLB page.
pub(crate) const MAX_FLBS: usize = (PAGE_SIZE - FLB_HDR) / FLB;

// Field offsets, from bindgen.
const ROOT_COMPAT: usize = offset_of!(bindings::luo_ser, compatible);
const ROOT_NUM: usize = offset_of!(bindings::luo_ser, liveupdate_num);
const ROOT_SESSIONS: usize = offset_of!(bindings::luo_ser, sessions_pa);
const ROOT_FLBS: usize = offset_of!(bindings::luo_ser, flbs_pa);
const HDR_NEXT: usize = offset_of!(bindings::kho_block_header_ser, next);
const HDR_COUNT: usize = offset_of!(bindings::kho_block_header_ser, count);
const S_NAME: usize = offset_of!(bindings::luo_session_ser, name);
const S_FILES: usize = offset_of!(bindings::luo_session_ser, file_set_ser)
    + offset_of!(bindings::luo_file_set_ser, files);
const S_COUNT: usize = offset_of!(bindings::luo_session_ser, file_set_ser)
    + offset_of!(bindings::luo_file_set_ser, count);
const F_COMPAT: usize = offset_of!(bindings::luo_file_ser, compatible);
const F_DATA: usize = offset_of!(bindings::luo_file_ser, data);
const F_TOKEN: usize = offset_of!(bindings::luo_file_ser, token);
const FH_PGCNT: usize = offset_of!(bindings::luo_flb_header_ser, pgcnt);
const FH_COUNT: usize = offset_of!(bindings::luo_flb_header_ser, count);
const FLB_NAME: usize = offset_of!(bindings::luo_flb_ser, name);
const FLB_DATA: usize = offset_of!(bindings::luo_flb_ser, data);
const FLB_COUNT: usize = offset_of!(bindings::luo_flb_ser, count);
const NAME_LEN: usize = bindings::LIVEUPDATE_SESSION_NAME_LENGTH as usize;

/// The compatible string of this format, with its NUL.
const COMPATIBLE: &[u8] = bindings::LUO_ABI_COMPATIBLE;

fn rd64(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(v)
}

fn wr64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Writes `s` and zero-fills the rest of a `len`-byte string field.
fn wr_str(b: &mut [u8], off: usize, len: usize, s: &[u8]) {
    b[off..off + len].fill(0);
    wr_str_zeroed(b, off, len, s);
}

/// Writes `s` into a `len`-byte string field that is already zero.
fn wr_str_zeroed(b: &mut [u8], off: usize, len: usize, s: &[u8]) {
    let n = s.len().min(len - 1);
    b[off..off + n].copy_from_slice(&s[..n]);
}

/// A compatible string read from the previous kernel.
///
/// # Invariants
///
/// `bytes[..len]` has no NUL, `len` is in `1..COMPAT_LEN`, and the rest is zero.
#[derive(Clone, Copy)]
pub(crate) struct Compat {
    bytes: [u8; COMPAT_LEN],
    len: usize,
}

impl Compat {
    fn parse(raw: &[u8]) -> Result<Self> {
        let len = terminated_len(raw, COMPAT_LEN)?;
        let mut bytes = [0u8; COMPAT_LEN];
        bytes[..len].copy_from_slice(&raw[..len]);
        // INVARIANT: Checked above.
        Ok(Self { bytes, len })
    }

    /// The string without its NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A file of an incoming session, as the previous kernel recorded it.
pub(crate) struct InFile {
    pub(crate) compatible: Compat,
    pub(crate) data: u64,
    pub(crate) token: u64,
}

/// An incoming session; its tokens are unique.
pub(crate) struct InSession {
    pub(crate) name: SessionName,
    pub(crate) files: KVVec<InFile>,
}

/// An FLB of the previous kernel.
pub(crate) struct InFlb {
    pub(crate) name: Compat,
    pub(crate) data: u64,
    pub(crate) count: u64,
    /// Its object was retrieved (or its retrieve was tried) in this boot.
    pub(crate) taken: Atomic<bool>,
}

/// A validated hand-over.
///
/// # Invariants
///
/// Session names are unique, tokens are unique within each session, FLB names are unique.
pub(crate) struct HandOver {
    pub(crate) liveupdate_num: u64,
    pub(crate) sessions: KVVec<InSession>,
    pub(crate) flbs: KVec<InFlb>,
    /// The pages it was read from, sorted, each once: given back once its sessions are gone.
    pub(crate) pages: KVVec<u64>,
}

/// Where the reader gets the previous kernel's pages from: KHO in the kernel, a table in the
/// KUnit tests.
pub(crate) trait PageSource {
    /// The bytes of the page at `pa`; fails unless it is a page the previous kernel preserved.
    /// Reading a page takes nothing from anybody.
    fn page(&mut self, pa: u64) -> Result<&[u8]>;
}

/// What made a hand-over invalid, for the log.
pub(crate) struct Invalid(pub(crate) &'static str, pub(crate) Error);

type PResult<T> = core::result::Result<T, Invalid>;

fn bad<T>(why: &'static str) -> PResult<T> {
    Err(Invalid(why, EINVAL))
}

fn oom(e: impl Into<Error>) -> Invalid {
    Invalid("out of memory", e.into())
}

/// Walks a block chain of `entry`-byte entries, calling `f` on each entry in order, and
/// records each block's address in `pages`. Returns the number of entries. A chain that loops
/// ends at [`MAX_BLOCKS`]; a page used twice anywhere is caught by [`parse`] afterwards.
fn walk<S: PageSource>(
    src: &mut S,
    pages: &mut KVVec<u64>,
    head: u64,
    entry: usize,
    mut f: impl FnMut(&[u8]) -> PResult<()>,
) -> PResult<u64> {
    let mut pa = head;
    let mut blocks = 0;
    let mut total = 0u64;
    // Brent's cycle detection: a chain that loops is caught within twice its length, with
    // no memory.
    let (mut mark, mut power, mut lap) = (0u64, 1usize, 0usize);
    while pa != 0 {
        blocks += 1;
        if blocks > MAX_BLOCKS {
            return bad("a block chain is longer than 10000 blocks");
        }
        if pa == mark {
            return bad("a block chain loops");
        }
        lap += 1;
        if lap == power {
            (mark, power, lap) = (pa, power * 2, 0);
        }
        if pa % PAGE_SIZE as u64 != 0 {
            return bad("a block address is not page-aligned");
        }
        pages.push(pa, GFP_KERNEL).map_err(oom)?;
        let page = src
            .page(pa)
            .map_err(|e| Invalid("a block is not a page the previous kernel preserved", e))?;
        if page.len() < PAGE_SIZE {
            return bad("a block is shorter than a page");
        }
        let count = rd64(page, HDR_COUNT);
        // The C writer can leave one empty block at the end of the session chain; it carries
        // nothing, so it is accepted (the C reader refuses it and panics).
        if count > capacity(entry) as u64 {
            return bad("a block's entry count does not fit its page");
        }
        for i in 0..count as usize {
            f(&page[HDR + i * entry..HDR + (i + 1) * entry])?;
        }
        total += count;
        pa = rd64(page, HDR_NEXT);
    }
    Ok(total)
}

/// The most an FLB's count can be: it counts files and references, objects in memory.
const FLB_COUNT_MAX: u64 = 1 << 32;

/// Reads and validates a whole hand-over whose root (a `root_len`-byte blob) is the page at
/// `root_pa`. Every page it uses is in [`HandOver::pages`], each once.
pub(crate) fn parse<S: PageSource>(
    src: &mut S,
    root_pa: u64,
    root_len: usize,
) -> PResult<HandOver> {
    let mut pages: KVVec<u64> = KVVec::new();
    pages.push(root_pa, GFP_KERNEL).map_err(oom)?;
    let mut root = [0u8; ROOT];
    {
        let page = src.page(root_pa).map_err(|e| {
            Invalid(
                "the LUO root is not a page the previous kernel preserved",
                e,
            )
        })?;
        if root_len < ROOT || page.len() < ROOT {
            return bad("the LUO root is too small");
        }
        root.copy_from_slice(&page[..ROOT]);
    }
    let compat = &root[ROOT_COMPAT..ROOT_COMPAT + COMPATIBLE.len()];
    if compat != COMPATIBLE {
        return bad("the LUO root is not \"luo-v5\"");
    }
    let liveupdate_num = rd64(&root, ROOT_NUM);
    if liveupdate_num.checked_add(1).is_none() {
        return bad("the live update number is at its maximum");
    }
    let sessions_pa = rd64(&root, ROOT_SESSIONS);
    let flbs_pa = rd64(&root, ROOT_FLBS);

    // Sessions first, with their file chains' addresses; the file chains are walked after,
    // so that no two pages are borrowed from `src` at once.
    let mut heads: KVVec<(SessionName, u64, u64)> = KVVec::new();
    walk(src, &mut pages, sessions_pa, SESSION_SER, |e| {
        let Ok(name) = SessionName::new(&e[S_NAME..S_NAME + NAME_LEN]) else {
            return bad("a session name is empty or not terminated");
        };
        let (files, count) = (rd64(e, S_FILES), rd64(e, S_COUNT));
        if (files == 0) != (count == 0) || count > MAX_FILES as u64 {
            return bad("a session's file count does not match its file chain");
        }
        heads.push((name, files, count), GFP_KERNEL).map_err(oom)?;
        Ok(())
    })?;

    // Uniqueness by sorting: one allocation, O(n log n).
    let mut names = KVVec::with_capacity(heads.len(), GFP_KERNEL).map_err(oom)?;
    for (name, _, _) in heads.iter() {
        names.push(name, GFP_KERNEL).map_err(oom)?;
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return bad("two sessions have the same name");
    }
    drop(names);

    let mut sessions = KVVec::with_capacity(heads.len(), GFP_KERNEL).map_err(oom)?;
    let mut tokens: KVVec<u64> = KVVec::new();
    for (name, files_pa, count) in heads.iter() {
        // The count is checked against the chain as it is read: not trusted for memory.
        let mut files = KVVec::with_capacity((*count as usize).min(capacity(FILE_SER)), GFP_KERNEL)
            .map_err(oom)?;
        let n = walk(src, &mut pages, *files_pa, FILE_SER, |e| {
            let Ok(compatible) = Compat::parse(&e[F_COMPAT..F_COMPAT + COMPAT_LEN]) else {
                return bad("a file's handler name is empty or not terminated");
            };
            let token = rd64(e, F_TOKEN);
            if files.len() as u64 >= *count {
                return bad("a session's file chain holds more files than its count");
            }
            files
                .push(
                    InFile {
                        compatible,
                        data: rd64(e, F_DATA),
                        token,
                    },
                    GFP_KERNEL,
                )
                .map_err(oom)
        })?;
        if n != *count {
            return bad("a session's file chain holds fewer files than its count");
        }
        tokens.clear();
        tokens.reserve(files.len(), GFP_KERNEL).map_err(oom)?;
        for f in files.iter() {
            tokens.push(f.token, GFP_KERNEL).map_err(oom)?;
        }
        tokens.sort_unstable();
        if tokens.windows(2).any(|w| w[0] == w[1]) {
            return bad("two files of a session have the same token");
        }
        sessions
            .push(InSession { name: *name, files }, GFP_KERNEL)
            .map_err(oom)?;
    }

    let mut flbs = KVec::new();
    if flbs_pa != 0 {
        pages.push(flbs_pa, GFP_KERNEL).map_err(oom)?;
        let page = src.page(flbs_pa).map_err(|e| {
            Invalid(
                "the FLB page is not a page the previous kernel preserved",
                e,
            )
        })?;
        if page.len() < PAGE_SIZE {
            return bad("the FLB page is shorter than a page");
        }
        let (pgcnt, count) = (rd64(page, FH_PGCNT), rd64(page, FH_COUNT));
        if pgcnt != 1 {
            return bad("the FLB page count is not 1");
        }
        if count > MAX_FLBS as u64 {
            return bad("the FLB count does not fit the FLB page");
        }
        for i in 0..count as usize {
            let e = &page[FLB_HDR + i * FLB..FLB_HDR + (i + 1) * FLB];
            let name = Compat::parse(&e[FLB_NAME..FLB_NAME + COMPAT_LEN])
                .map_err(|_| Invalid("an FLB name is empty or not terminated", EINVAL))?;
            if flbs
                .iter()
                .any(|f: &InFlb| f.name.as_bytes() == name.as_bytes())
            {
                return bad("two FLBs have the same name");
            }
            let count = rd64(e, FLB_COUNT);
            if count == 0 || count > FLB_COUNT_MAX {
                return bad("an FLB count is 0 or impossibly large");
            }
            flbs.push(
                InFlb {
                    name,
                    data: rd64(e, FLB_DATA),
                    count,
                    taken: Atomic::new(false),
                },
                GFP_KERNEL,
            )
            .map_err(oom)?;
        }
    }

    // No page twice (a block in two chains, the FLB page or the root also a block), and no
    // page that a file's or an FLB's data names: those belong to their handlers.
    pages.sort_unstable();
    if pages.windows(2).any(|w| w[0] == w[1]) {
        return bad("a page of the hand-over is used twice");
    }
    let owned = |pa: u64| pages.binary_search(&(pa & !(PAGE_SIZE as u64 - 1))).is_ok();
    if sessions
        .iter()
        .flat_map(|s| s.files.iter())
        .any(|f| owned(f.data))
        || flbs.iter().any(|f: &InFlb| owned(f.data))
    {
        return bad("a page of the hand-over is also a file's or an FLB's data");
    }

    // INVARIANT: Names, tokens and FLB names were checked for uniqueness above.
    Ok(HandOver {
        liveupdate_num,
        sessions,
        flbs,
        pages,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// A block chain being written: never holds an empty block. It writes into pages reserved
/// beforehand (see [`pages_for`]) and allocates only if they run out. Dropping it frees its
/// pages; a successful reboot keeps them where they were reserved with
/// [`Chain::into_written`], a failed one takes them back zeroed with [`Chain::into_pages`].
///
/// # Invariants
///
/// `pages[..used]` are the chain's blocks, each linked to the next, the last one holding
/// `in_last` entries; `pages[used..]` are zeroed spares.
pub(crate) struct Chain<P: OutMem> {
    entry: usize,
    pages: KVec<P>,
    used: usize,
    in_last: usize,
    total: u64,
}

/// Pages a chain of `entries` entries of `entry` bytes needs.
pub(crate) const fn pages_for(entries: usize, entry: usize) -> usize {
    entries.div_ceil(capacity(entry))
}

/// Grows or shrinks `pool` to the pages a chain of `entries` entries of `entry` bytes needs,
/// so that reboot writes into pages allocated in advance (as the C core does) instead of
/// allocating them while the machine waits. Growing can fail and then changes nothing.
pub(crate) fn fit_pool<P: OutMem>(pool: &mut KVec<P>, entries: usize, entry: usize) -> Result {
    let want = pages_for(entries, entry);
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

/// Pages the writer can allocate: KHO pages in the kernel, plain pages in the KUnit tests.
pub(crate) trait OutMem: Sized {
    fn alloc() -> Result<Self>;
    fn bytes(&mut self) -> &mut [u8];
    fn pa(&self) -> u64;
}

impl OutMem for crate::kho::OutPage {
    fn alloc() -> Result<Self> {
        Self::new()
    }
    fn bytes(&mut self) -> &mut [u8] {
        crate::kho::OutPage::bytes(self)
    }
    fn pa(&self) -> u64 {
        crate::kho::OutPage::pa(self)
    }
}

impl<P: OutMem> Chain<P> {
    /// A chain that writes into `pages` (zeroed) before it allocates.
    pub(crate) fn with_pages(entry: usize, pages: KVec<P>) -> Self {
        // INVARIANT: No page is used yet; the caller passes zeroed pages.
        Self {
            entry,
            pages,
            used: 0,
            in_last: 0,
            total: 0,
        }
    }

    /// A zeroed slot for the next entry, in the next page if the last one is full.
    fn slot(&mut self) -> Result<&mut [u8]> {
        let cap = capacity(self.entry);
        if self.used == 0 || self.in_last == cap {
            if self.used == MAX_BLOCKS {
                return Err(ENOSPC);
            }
            if self.used == self.pages.len() {
                self.pages.reserve(1, GFP_KERNEL)?;
                self.pages.push(P::alloc()?, GFP_KERNEL)?;
            }
            let pa = self.pages[self.used].pa();
            if let Some(prev) = self.used.checked_sub(1) {
                wr64(self.pages[prev].bytes(), HDR_NEXT, pa);
            }
            // INVARIANT: The new block is linked from the previous one and still empty.
            self.used += 1;
            self.in_last = 0;
        }
        let i = self.in_last;
        self.in_last += 1;
        self.total += 1;
        let entry = self.entry;
        let page = self.pages[self.used - 1].bytes();
        wr64(page, HDR_COUNT, (i + 1) as u64);
        Ok(&mut page[HDR + i * entry..HDR + (i + 1) * entry])
    }

    /// Appends a file entry.
    pub(crate) fn push_file(&mut self, compatible: &[u8], data: u64, token: u64) -> Result {
        // Slots are zero (see `slot`).
        let e = self.slot()?;
        wr_str_zeroed(e, F_COMPAT, COMPAT_LEN, compatible);
        wr64(e, F_DATA, data);
        wr64(e, F_TOKEN, token);
        Ok(())
    }

    /// Appends a session entry whose files are `files`.
    pub(crate) fn push_session(&mut self, name: &[u8], files: &Chain<P>) -> Result {
        let (head, count) = (files.head(), files.total);
        let e = self.slot()?;
        wr_str_zeroed(e, S_NAME, NAME_LEN, name);
        wr64(e, S_FILES, head);
        wr64(e, S_COUNT, count);
        Ok(())
    }

    /// The bytes of the first block, if any (for fault injection).
    pub(crate) fn first_block(&mut self) -> Option<(&mut [u8], u64)> {
        if self.used == 0 {
            return None;
        }
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
    /// allocated and preserved until the kexec (see `luo_session::serialize`).
    pub(crate) fn into_written(self) -> KVec<P> {
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

/// Writes the root: compatible string, update number, no sessions, the FLB page.
pub(crate) fn write_root(root: &mut [u8], liveupdate_num: u64, flbs_pa: u64) {
    root[..ROOT].fill(0);
    root[ROOT_COMPAT..ROOT_COMPAT + COMPATIBLE.len()].copy_from_slice(COMPATIBLE);
    wr64(root, ROOT_NUM, liveupdate_num);
    wr64(root, ROOT_SESSIONS, 0);
    wr64(root, ROOT_FLBS, flbs_pa);
}

/// Sets the root's session chain.
pub(crate) fn set_root_sessions(root: &mut [u8], sessions_pa: u64) {
    wr64(root, ROOT_SESSIONS, sessions_pa);
}

/// Initializes an empty FLB page.
pub(crate) fn init_flb_page(page: &mut [u8]) {
    page.fill(0);
    wr64(page, FH_PGCNT, 1);
}

/// Writes FLB record `index` (name, data, count) into the FLB page; `index < MAX_FLBS`.
pub(crate) fn write_flb(page: &mut [u8], index: usize, name: &[u8], data: u64, count: u64) {
    if index >= MAX_FLBS {
        return;
    }
    let e = &mut page[FLB_HDR + index * FLB..FLB_HDR + (index + 1) * FLB];
    wr_str(e, FLB_NAME, COMPAT_LEN, name);
    wr64(e, FLB_DATA, data);
    wr64(e, FLB_COUNT, count);
}

/// Damages a field of the written hand-over, for the tests of the reader
/// (`luo_rs_damage=`, see `luo_fault`): `compat`, `count`, `chain`, `name`, `flbcount`,
/// `bootnum` (the live update number at its maximum), `flbcount_max` (an FLB count at
/// `u64::MAX`), `shared_block` (the FLB page is the first session block) and `foreign_page`
/// (the first session block links to the page of the first file's data, which its handler
/// preserved). `file_data` is the first file's data, if any.
pub(crate) fn damage(
    kind: &[u8],
    root: &mut [u8],
    sessions: Option<(&mut [u8], u64)>,
    flbs: &mut [u8],
    file_data: Option<u64>,
) {
    match (kind, sessions) {
        (b"", _) => return,
        (b"compat", _) => root[ROOT_COMPAT] = b'X',
        (b"count", Some((b, _))) => wr64(b, HDR_COUNT, capacity(SESSION_SER) as u64 + 1),
        (b"chain", Some((b, pa))) => wr64(b, HDR_NEXT, pa),
        (b"name", Some((b, _))) => b[HDR + S_NAME..HDR + S_NAME + NAME_LEN].fill(b'X'),
        (b"flbcount", _) => wr64(flbs, FH_COUNT, MAX_FLBS as u64 + 1),
        (b"bootnum", _) => wr64(root, ROOT_NUM, u64::MAX),
        (b"flbcount_max", _) if rd64(flbs, FH_COUNT) > 0 => {
            wr64(flbs, FLB_HDR + FLB_COUNT, u64::MAX)
        }
        (b"shared_block", Some((_, pa))) => wr64(root, ROOT_FLBS, pa),
        (b"foreign_page", Some((b, _))) if file_data.is_some() => wr64(
            b,
            HDR_NEXT,
            file_data.unwrap_or(0) & !(PAGE_SIZE as u64 - 1),
        ),
        _ => {
            pr_warn!(
                "fault injection: cannot damage the hand-over ({}): nothing to damage\n",
                kernel::str::BStr::from_bytes(kind)
            );
            return;
        }
    }
    pr_warn!(
        "fault injection: damaged the hand-over ({})\n",
        kernel::str::BStr::from_bytes(kind)
    );
}

/// Sets the number of FLB records in the FLB page.
pub(crate) fn set_flb_count(page: &mut [u8], count: usize) {
    wr64(page, FH_COUNT, count.min(MAX_FLBS) as u64);
}

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[kernel::macros::kunit_tests(liveupdate_rust_handover)]
mod tests {
    use super::*;

    /// Pages by fake physical address, read in place like KHO's preserved pages.
    struct Fake {
        pages: KVec<(u64, KVec<u8>)>,
    }

    impl Fake {
        fn new() -> Self {
            let mut f = Self { pages: KVec::new() };
            f.add(ROOT_PA);
            f
        }

        /// Adds a zeroed page at `pa` and returns it.
        fn add(&mut self, pa: u64) -> &mut [u8] {
            let mut v = KVec::new();
            v.extend_with(PAGE_SIZE, 0u8, GFP_KERNEL).unwrap();
            self.pages.push((pa, v), GFP_KERNEL).unwrap();
            let last = self.pages.len() - 1;
            &mut self.pages[last].1
        }
    }

    impl PageSource for Fake {
        fn page(&mut self, pa: u64) -> Result<&[u8]> {
            self.pages
                .iter()
                .find(|(p, _)| *p == pa)
                .map(|(_, v)| &v[..])
                .ok_or(EINVAL)
        }
    }

    const ROOT_PA: u64 = 0x8000;
    const SESS: u64 = 0x10000;
    const FILES: u64 = 0x20000;
    const FLBS: u64 = 0x30000;

    fn root(sessions: u64, flbs: u64) -> [u8; ROOT] {
        let mut r = [0u8; ROOT];
        write_root(&mut r, 41, flbs);
        set_root_sessions(&mut r, sessions);
        r
    }

    fn session(page: &mut [u8], i: usize, name: &[u8], files: u64, count: u64) {
        let e = &mut page[HDR + i * SESSION_SER..HDR + (i + 1) * SESSION_SER];
        e[S_NAME..S_NAME + name.len()].copy_from_slice(name);
        wr64(e, S_FILES, files);
        wr64(e, S_COUNT, count);
    }

    fn file(page: &mut [u8], i: usize, compat: &[u8], data: u64, token: u64) {
        let e = &mut page[HDR + i * FILE_SER..HDR + (i + 1) * FILE_SER];
        e[F_COMPAT..F_COMPAT + compat.len()].copy_from_slice(compat);
        wr64(e, F_DATA, data);
        wr64(e, F_TOKEN, token);
    }

    /// A valid hand-over: "a" with two files, "b" empty, two FLBs.
    fn valid() -> Fake {
        let mut f = Fake::new();
        let p = f.add(SESS);
        wr64(p, HDR_COUNT, 2);
        session(p, 0, b"a", FILES, 2);
        session(p, 1, b"b", 0, 0);
        let p = f.add(FILES);
        wr64(p, HDR_COUNT, 2);
        file(p, 0, b"memfd-v2", 7, 100);
        file(p, 1, b"memfd-v2", 8, 200);
        let p = f.add(FLBS);
        init_flb_page(p);
        write_flb(p, 0, b"flb-0", 0xfeed, 3);
        write_flb(p, 1, b"flb-1", 0xbeef, 1);
        set_flb_count(p, 2);
        f
    }

    /// Parses `f` with root `r` (of `r.len()` bytes) at `ROOT_PA`.
    fn parse_with(f: &mut Fake, r: &[u8]) -> PResult<HandOver> {
        f.pages[0].1[..r.len()].copy_from_slice(r);
        parse(f, ROOT_PA, r.len())
    }

    fn rejects(mut f: Fake, r: &[u8]) -> bool {
        parse_with(&mut f, r).is_err()
    }

    #[test]
    fn a_valid_hand_over_is_read_whole() {
        let mut f = valid();
        let r = root(SESS, FLBS);
        let h = parse_with(&mut f, &r).ok().unwrap();
        assert_eq!(h.liveupdate_num, 41);
        assert_eq!(&h.pages[..], &[ROOT_PA, SESS, FILES, FLBS]);
        assert_eq!(h.sessions.len(), 2);
        assert_eq!(h.sessions[0].name.as_bytes(), b"a");
        assert_eq!(h.sessions[0].files.len(), 2);
        assert_eq!(h.sessions[0].files[1].token, 200);
        assert_eq!(h.sessions[0].files[1].data, 8);
        assert_eq!(h.sessions[0].files[0].compatible.as_bytes(), b"memfd-v2");
        assert_eq!(h.sessions[1].files.len(), 0);
        assert_eq!(h.flbs.len(), 2);
        assert_eq!(h.flbs[0].name.as_bytes(), b"flb-0");
        assert_eq!(h.flbs[0].count, 3);
    }

    #[test]
    fn no_sessions_and_no_flbs_is_valid() {
        let mut f = Fake::new();
        let r = root(0, 0);
        let h = parse_with(&mut f, &r).ok().unwrap();
        assert_eq!(h.sessions.len(), 0);
        assert_eq!(h.flbs.len(), 0);
    }

    #[test]
    fn a_truncated_root_is_rejected() {
        let r = root(SESS, FLBS);
        assert!(rejects(valid(), &r[..ROOT - 1]));
        assert!(rejects(valid(), &r[..ROOT - 8]));
    }

    #[test]
    fn a_foreign_compatible_is_rejected() {
        let mut r = root(SESS, FLBS);
        r[5] = b'4';
        assert!(rejects(valid(), &r));
        let mut r = root(SESS, FLBS);
        r[6] = b'x';
        assert!(rejects(valid(), &r));
    }

    #[test]
    fn oversized_counts_are_rejected() {
        let mut f = valid();
        wr64(
            f.pages[1].1.as_mut_slice(),
            HDR_COUNT,
            capacity(SESSION_SER) as u64 + 1,
        );
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        wr64(f.pages[2].1.as_mut_slice(), HDR_COUNT, u64::MAX);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        set_flb_count(f.pages[3].1.as_mut_slice(), MAX_FLBS);
        wr64(f.pages[3].1.as_mut_slice(), FH_COUNT, MAX_FLBS as u64 + 1);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn cyclic_chains_are_rejected() {
        let mut f = valid();
        wr64(f.pages[1].1.as_mut_slice(), HDR_NEXT, SESS);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        wr64(f.pages[2].1.as_mut_slice(), HDR_NEXT, FILES);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn out_of_range_addresses_are_rejected() {
        assert!(rejects(valid(), &root(0x50000, FLBS)));
        assert!(rejects(valid(), &root(SESS, 0x50000)));
        assert!(rejects(valid(), &root(SESS + 8, FLBS)));
        let mut f = valid();
        wr64(f.pages[1].1.as_mut_slice(), HDR_NEXT, 0x123000);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        wr64(&mut f.pages[1].1[HDR..HDR + SESSION_SER], S_FILES, 0x77000);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn zero_count_blocks_carry_nothing() {
        // The C writer can leave an empty block at the end of a chain: accepted.
        let mut f = valid();
        wr64(f.pages[1].1.as_mut_slice(), HDR_NEXT, 0x40000);
        f.add(0x40000);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
        // But an empty file chain cannot stand for a non-zero count.
        let mut f = valid();
        wr64(f.pages[2].1.as_mut_slice(), HDR_COUNT, 0);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn file_counts_must_add_up() {
        let mut f = valid();
        wr64(&mut f.pages[1].1[HDR..HDR + SESSION_SER], S_COUNT, 3);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        wr64(&mut f.pages[1].1[HDR..HDR + SESSION_SER], S_COUNT, 1);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        wr64(
            &mut f.pages[1].1[HDR + SESSION_SER..HDR + 2 * SESSION_SER],
            S_COUNT,
            1,
        );
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn unterminated_and_empty_strings_are_rejected() {
        let mut f = valid();
        f.pages[1].1[HDR + S_NAME..HDR + S_NAME + NAME_LEN].fill(b'X');
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        f.pages[1].1[HDR + S_NAME] = 0;
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        f.pages[2].1[HDR + F_COMPAT..HDR + F_COMPAT + COMPAT_LEN].fill(b'm');
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        f.pages[3].1[FLB_HDR + FLB_NAME..FLB_HDR + FLB_NAME + COMPAT_LEN].fill(b'f');
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn duplicates_are_rejected() {
        let mut f = valid();
        f.pages[1].1[HDR + SESSION_SER + S_NAME] = b'a';
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        wr64(
            &mut f.pages[2].1[HDR + FILE_SER..HDR + 2 * FILE_SER],
            F_TOKEN,
            100,
        );
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        f.pages[3].1[FLB_HDR + FLB + FLB_NAME + 4] = b'0';
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn a_page_used_twice_is_rejected() {
        // A file chain that is also another session's.
        let mut f = valid();
        session(f.pages[1].1.as_mut_slice(), 1, b"b", FILES, 2);
        assert!(rejects(f, &root(SESS, FLBS)));
        // The FLB page is a session block; the root is a block.
        assert!(rejects(valid(), &root(SESS, SESS)));
        let mut f = valid();
        wr64(f.pages[2].1.as_mut_slice(), HDR_NEXT, ROOT_PA);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn a_page_that_is_a_handlers_data_is_rejected() {
        let mut f = valid();
        file(
            f.pages[2].1.as_mut_slice(),
            1,
            b"memfd-v2",
            SESS + 0x10,
            200,
        );
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        write_flb(f.pages[3].1.as_mut_slice(), 1, b"flb-1", FILES, 1);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn numbers_that_would_overflow_are_rejected() {
        let mut r = root(SESS, FLBS);
        wr64(&mut r, ROOT_NUM, u64::MAX);
        assert!(rejects(valid(), &r));
        let mut f = valid();
        write_flb(f.pages[3].1.as_mut_slice(), 1, b"flb-1", 0xbeef, u64::MAX);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        write_flb(f.pages[3].1.as_mut_slice(), 1, b"flb-1", 0xbeef, 0);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn the_flb_page_must_be_one_page() {
        let mut f = valid();
        wr64(f.pages[3].1.as_mut_slice(), FH_PGCNT, 2);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn capacities_match_the_c_implementation() {
        assert_eq!(capacity(SESSION_SER), 51);
        assert_eq!(capacity(FILE_SER), 63);
        assert_eq!(MAX_FLBS, 63);
        assert_eq!(ROOT, 32);
    }
}
