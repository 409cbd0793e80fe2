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
    rbtree::RBTree,
};

use crate::luo_session::SessionName;

/// Size of a block header.
const HDR: usize = size_of::<bindings::kho_block_header_ser>();
/// Size of a session entry.
const SESSION: usize = size_of::<bindings::luo_session_ser>();
/// Size of a file entry.
const FILE: usize = size_of::<bindings::luo_file_ser>();
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
pub(crate) const MAX_SESSIONS: usize = MAX_BLOCKS * capacity(SESSION);
pub(crate) const MAX_FILES: usize = MAX_BLOCKS * capacity(FILE);
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
    let field = &mut b[off..off + len];
    field.fill(0);
    let n = s.len().min(len - 1);
    field[..n].copy_from_slice(&s[..n]);
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
        let len = raw.iter().take(COMPAT_LEN).position(|&b| b == 0).ok_or(EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
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
    pub(crate) files: KVec<InFile>,
}

/// An FLB of the previous kernel.
pub(crate) struct InFlb {
    pub(crate) name: Compat,
    pub(crate) data: u64,
    pub(crate) count: u64,
}

/// A validated hand-over.
///
/// # Invariants
///
/// Session names are unique, tokens are unique within each session, FLB names are unique.
pub(crate) struct HandOver {
    pub(crate) liveupdate_num: u64,
    pub(crate) sessions: KVec<InSession>,
    pub(crate) flbs: KVec<InFlb>,
}

/// Where the reader gets the previous kernel's pages from: KHO in the kernel, a table in the
/// KUnit tests.
pub(crate) trait PageSource {
    /// The bytes of the page at `pa`; fails unless it is a page the previous kernel preserved
    /// and that was not asked for before.
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

/// Walks a block chain of `entry`-byte entries, calling `f` on each entry in order.
/// Returns the number of entries.
fn walk<S: PageSource>(
    src: &mut S,
    head: u64,
    entry: usize,
    mut f: impl FnMut(&[u8]) -> PResult<()>,
) -> PResult<u64> {
    let mut seen: RBTree<u64, ()> = RBTree::new();
    let mut pa = head;
    let mut blocks = 0;
    let mut total = 0u64;
    while pa != 0 {
        blocks += 1;
        if blocks > MAX_BLOCKS {
            return bad("a block chain is longer than 10000 blocks");
        }
        if seen.get(&pa).is_some() {
            return bad("a block chain loops");
        }
        seen.try_create_and_insert(pa, (), GFP_KERNEL).map_err(oom)?;
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

/// Reads and validates a whole hand-over: `root` is the root blob of `root_len` bytes.
pub(crate) fn parse<S: PageSource>(src: &mut S, root: &[u8], root_len: usize) -> PResult<HandOver> {
    if root_len < ROOT || root.len() < ROOT {
        return bad("the LUO root is too small");
    }
    let compat = &root[ROOT_COMPAT..ROOT_COMPAT + COMPATIBLE.len()];
    if compat != COMPATIBLE {
        return bad("the LUO root is not \"luo-v5\"");
    }
    let liveupdate_num = rd64(root, ROOT_NUM);
    let sessions_pa = rd64(root, ROOT_SESSIONS);
    let flbs_pa = rd64(root, ROOT_FLBS);

    // Sessions first, with their file chains' addresses; the file chains are walked after,
    // so that no two pages are borrowed from `src` at once.
    let mut heads: KVec<(SessionName, u64, u64)> = KVec::new();
    let mut names: RBTree<SessionName, ()> = RBTree::new();
    walk(src, sessions_pa, SESSION, |e| {
        let Ok(name) = SessionName::new(&e[S_NAME..S_NAME + NAME_LEN]) else {
            return bad("a session name is empty or not terminated");
        };
        if names.get(&name).is_some() {
            return bad("two sessions have the same name");
        }
        names.try_create_and_insert(name, (), GFP_KERNEL).map_err(oom)?;
        let (files, count) = (rd64(e, S_FILES), rd64(e, S_COUNT));
        if (files == 0) != (count == 0) || count > MAX_FILES as u64 {
            return bad("a session's file count does not match its file chain");
        }
        heads.push((name, files, count), GFP_KERNEL).map_err(oom)?;
        Ok(())
    })?;

    let mut sessions = KVec::with_capacity(heads.len(), GFP_KERNEL).map_err(oom)?;
    for (name, files_pa, count) in heads.iter() {
        let mut files = KVec::with_capacity(*count as usize, GFP_KERNEL).map_err(oom)?;
        let mut tokens: RBTree<u64, ()> = RBTree::new();
        let n = walk(src, *files_pa, FILE, |e| {
            let Ok(compatible) = Compat::parse(&e[F_COMPAT..F_COMPAT + COMPAT_LEN]) else {
                return bad("a file's handler name is empty or not terminated");
            };
            let token = rd64(e, F_TOKEN);
            if tokens.get(&token).is_some() {
                return bad("two files of a session have the same token");
            }
            tokens.try_create_and_insert(token, (), GFP_KERNEL).map_err(oom)?;
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
        sessions
            .push(InSession { name: *name, files }, GFP_KERNEL)
            .map_err(oom)?;
    }

    let mut flbs = KVec::new();
    if flbs_pa != 0 {
        let page = src
            .page(flbs_pa)
            .map_err(|e| Invalid("the FLB page is not a page the previous kernel preserved", e))?;
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
            flbs.push(
                InFlb {
                    name,
                    data: rd64(e, FLB_DATA),
                    count: rd64(e, FLB_COUNT),
                },
                GFP_KERNEL,
            )
            .map_err(oom)?;
        }
    }

    // INVARIANT: Names, tokens and FLB names were checked for uniqueness above.
    Ok(HandOver {
        liveupdate_num,
        sessions,
        flbs,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// A block chain being written: never holds an empty block. Dropping it frees its pages; a
/// successful reboot hands them over with [`Chain::hand_over`].
pub(crate) struct Chain<P: OutMem> {
    entry: usize,
    pages: KVec<P>,
    in_last: usize,
    total: u64,
}

/// Pages the writer can allocate: KHO pages in the kernel, plain pages in the KUnit tests.
pub(crate) trait OutMem: Sized {
    fn alloc() -> Result<Self>;
    fn bytes(&mut self) -> &mut [u8];
    fn pa(&self) -> u64;
    fn hand_over(self) -> u64;
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
    fn hand_over(self) -> u64 {
        crate::kho::OutPage::hand_over(self)
    }
}

impl<P: OutMem> Chain<P> {
    pub(crate) fn new(entry: usize) -> Self {
        Self {
            entry,
            pages: KVec::new(),
            in_last: 0,
            total: 0,
        }
    }

    /// The chain for session entries.
    pub(crate) fn sessions() -> Self {
        Self::new(SESSION)
    }

    /// The chain for file entries.
    pub(crate) fn files() -> Self {
        Self::new(FILE)
    }

    /// A zeroed slot for the next entry, in a new page if the last one is full.
    fn slot(&mut self) -> Result<&mut [u8]> {
        let cap = capacity(self.entry);
        if self.pages.is_empty() || self.in_last == cap {
            if self.pages.len() == MAX_BLOCKS {
                return Err(ENOSPC);
            }
            self.pages.reserve(1, GFP_KERNEL)?;
            let page = P::alloc()?;
            let pa = page.pa();
            if let Some(prev) = self.pages.last_mut() {
                wr64(prev.bytes(), HDR_NEXT, pa);
            }
            self.pages.push(page, GFP_KERNEL)?;
            self.in_last = 0;
        }
        let i = self.in_last;
        self.in_last += 1;
        self.total += 1;
        let entry = self.entry;
        let last = self.pages.len() - 1;
        let page = self.pages[last].bytes();
        wr64(page, HDR_COUNT, (i + 1) as u64);
        Ok(&mut page[HDR + i * entry..HDR + (i + 1) * entry])
    }

    /// Appends a file entry.
    pub(crate) fn push_file(&mut self, compatible: &[u8], data: u64, token: u64) -> Result {
        let e = self.slot()?;
        wr_str(e, F_COMPAT, COMPAT_LEN, compatible);
        wr64(e, F_DATA, data);
        wr64(e, F_TOKEN, token);
        Ok(())
    }

    /// Appends a session entry whose files are `files`.
    pub(crate) fn push_session(&mut self, name: &[u8], files: &Chain<P>) -> Result {
        let (head, count) = (files.head(), files.total);
        let e = self.slot()?;
        wr_str(e, S_NAME, NAME_LEN, name);
        wr64(e, S_FILES, head);
        wr64(e, S_COUNT, count);
        Ok(())
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// Physical address of the first block, 0 for an empty chain.
    pub(crate) fn head(&self) -> u64 {
        self.pages.first().map_or(0, |p| p.pa())
    }

    /// Gives the pages to the next kernel.
    pub(crate) fn hand_over(self) {
        let mut pages = self.pages;
        while let Some(p) = pages.pop() {
            p.hand_over();
        }
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

/// Sets the number of FLB records in the FLB page.
pub(crate) fn set_flb_count(page: &mut [u8], count: usize) {
    wr64(page, FH_COUNT, count.min(MAX_FLBS) as u64);
}
