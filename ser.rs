// SPDX-License-Identifier: GPL-2.0

//! The "luo-v5" hand-over format: writing it at reboot, validating and reading it at boot.
//!
//! Layout (the structs of [`crate::abi`], native endian):
//!
//! ```text
//! root (RootSer, the "LUO" subtree): compatible "luo-v5", liveupdate_num, sessions_pa, flbs_pa
//! sessions_pa -> [BlockHeader {next, count}][SessionSer x count] -> next ...
//!   SessionSer.file_set_ser.files -> [BlockHeader][FileSer x count] -> next ...
//! flbs_pa     -> [FlbHeader {pgcnt = 1, count}][FlbSer x count]
//! ```
//!
//! Every block is one page with 1..=[`Entry::PER_BLOCK`] entries; a chain has at most
//! [`MAX_BLOCKS`] blocks. The writer never emits an empty block. The reader trusts nothing:
//! every address must be a page the previous kernel preserved (KHO checks it), chains may not
//! loop or grow past [`MAX_BLOCKS`], counts must fit their pages and add up, strings must be
//! terminated, names and tokens unique. Anything else is refused as a whole, with a log line,
//! and the kernel boots without incoming sessions.

use core::mem::size_of;

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::Atomic,
    transmute::{
        AsBytes,
        FromBytes, //
    },
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
        COMPATIBLE,
        COMPAT_LEN,
        FLB_COUNT_MAX,
        MAX_BLOCKS,
        MAX_FILES,
        MAX_FLBS, //
    },
    small::SmallVec, //
};

/// Size of a block header.
const HDR: usize = size_of::<BlockHeader>();
/// Size of the root.
pub(crate) const ROOT: usize = size_of::<RootSer>();
/// Most distinct file handler names one hand-over may use (a kernel has a handful of file
/// handlers; memfd is the only one in Linux 7.3). A session's names are one bit each in a
/// `u64` ([`InSession::compats`]).
pub(crate) const MAX_HANDLER_NAMES: usize = 64;
const _: () = assert!(MAX_HANDLER_NAMES <= u64::BITS as usize);
/// Most pages one hand-over may use, its root, its FLB page and all its chains together (16 GiB
/// of chains, some 260 million files, far more than open files and memory allow): it bounds
/// the reader's work whatever chains share.
pub(crate) const MAX_PAGES: usize = 1 << 22;
/// The pages a hand-over holds without an allocation: the root, the FLB page and 126 blocks,
/// some 7,900 files in a few sessions, or the sessions and files of some 120 sessions of one
/// file (1 KiB in the one [`HandOver`] of a boot). A table allocated at boot costs the
/// blackout more than its checks: TCG translates the allocator's paths on their first run.
const PAGES_INLINE: usize = 128;
/// The pages of a hand-over.
pub(crate) type Pages = SmallVec<u64, PAGES_INLINE>;
/// Sessions of at most this many files have no token index: they are scanned.
pub(crate) const SMALL_SESSION: usize = 8;
// A file's index in its session fits the token index's `u32`.
const _: () = assert!(MAX_FILES <= u32::MAX as usize);

/// A `T` read from `b` at `off`, if it fits.
fn read<T: FromBytes>(b: &[u8], off: usize) -> Option<T> {
    T::from_bytes_copy(b.get(off..off.checked_add(size_of::<T>())?)?)
}

/// Writes `v` into `b` at `off` (within the page: offsets come from the format's constants).
fn write<T: AsBytes>(b: &mut [u8], off: usize, v: &T) {
    let bytes = v.as_bytes();
    if let Some(dst) = b.get_mut(off..off + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Offset of entry `i` of a block of `E`.
const fn entry_off<E: Entry>(i: usize) -> usize {
    HDR + i * size_of::<E>()
}

/// Offset of FLB entry `i` in the FLB page.
const fn flb_off(i: usize) -> usize {
    size_of::<FlbHeader>() + i * size_of::<FlbSer>()
}

/// A file of an incoming session, as the previous kernel recorded it.
#[derive(Clone, Copy, Default)]
pub(crate) struct InFile {
    /// Its handler's compatible string: an index in [`HandOver::compats`].
    pub(crate) compat: u32,
    pub(crate) data: u64,
    pub(crate) token: u64,
}

/// An incoming session.
///
/// # Invariants
///
/// Its files are `one` if `count` is 1 (most sessions hold one file: they need no room in the
/// files' table), `HandOver::files[first..first + count]` otherwise; their tokens are unique.
/// A session of more than [`SMALL_SESSION`] files either has its files in rising token order
/// (`index` is `None`: they are searched in place) or `index` is `Some(i)` and
/// `HandOver::tokens[i..i + count]` holds `(token, index in its files)` for every file, sorted
/// by token; a smaller one is scanned. `compats` has the bit of the compatible index of each
/// of its files, and no other.
#[derive(Clone, Copy, Default)]
pub(crate) struct InSession {
    pub(crate) name: Name,
    /// Its file chain, until the files are read.
    head: u64,
    first: usize,
    count: usize,
    index: Option<usize>,
    one: InFile,
    /// Bit `i` is set if one of its files has the compatible string `HandOver::compats[i]`.
    compats: u64,
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
/// Session names are unique (`sessions` is sorted by name), tokens are unique within each
/// session. The range of every session of more than one file lies within `files` (a session
/// of one file holds it in [`InSession`]), and its index's within `tokens` if it has one; a
/// session of more than [`SMALL_SESSION`] files without one has strictly rising tokens. Each
/// session's `compats` has the bits of its files' names, and only those.
/// `flb_page`, if not 0, is a page of `pages` whose FLB records [`read_flbs`] accepts.
pub(crate) struct HandOver {
    pub(crate) liveupdate_num: u64,
    /// The sessions (most hand-overs from a host have one per guest, a guest's one).
    pub(crate) sessions: SmallVec<InSession, 1>,
    /// The files of every session of more than one file, one session after the other.
    files: KVVec<InFile>,
    /// The token indexes of the sessions with more than [`SMALL_SESSION`] files that are not
    /// in token order.
    tokens: KVVec<(u64, u32)>,
    /// The distinct compatible strings of the files' handlers (a handful).
    pub(crate) compats: SmallVec<Compat, 2>,
    /// The FLB page, or 0: its records were checked in place and are read at their first use
    /// (after the blackout, as in C), by [`read_flbs`].
    pub(crate) flb_page: u64,
    /// The pages it was read from, sorted, each once: given back once its sessions are gone.
    pub(crate) pages: Pages,
}

impl InSession {
    /// The compatible strings its files use: bit `i` for `HandOver::compats[i]`.
    pub(crate) fn compats(&self) -> u64 {
        self.compats
    }

    /// Orders sessions by name (compared in place: a key would copy each name).
    fn by_name(a: &Self, b: &Self) -> core::cmp::Ordering {
        a.name.cmp(&b.name)
    }
}

impl HandOver {
    /// The files of `s`, a session of this hand-over, in the order they were preserved.
    pub(crate) fn files<'a>(&'a self, s: &'a InSession) -> &'a [InFile] {
        if s.count == 1 {
            return core::slice::from_ref(&s.one);
        }
        self.files.get(s.first..s.first + s.count).unwrap_or(&[])
    }

    /// The index of the session `name` in `sessions`, if there is one.
    pub(crate) fn position(&self, name: &Name) -> Option<usize> {
        self.sessions.binary_search_by(|s| s.name.cmp(name)).ok()
    }

    /// The token index of `s`: `(token, index in its files)` sorted by token, or empty for a
    /// session of at most [`SMALL_SESSION`] files (scanned) and for one whose files are in
    /// rising token order (searched in place).
    pub(crate) fn by_token(&self, s: &InSession) -> &[(u64, u32)] {
        match s.index {
            Some(i) if s.count > SMALL_SESSION => self.tokens.get(i..i + s.count).unwrap_or(&[]),
            _ => &[],
        }
    }
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

/// Walks a block chain of `E`, calling `f` on each block with its address, its page and its
/// number of entries (which fit the page). Returns the number of entries. A chain that loops
/// ends at [`MAX_BLOCKS`]; a page used twice anywhere is caught by [`parse`] afterwards.
// `allow`, not `expect`: clippy 1.96 flags these `|`, the minimum toolchain's (1.85) does not.
#[allow(
    clippy::needless_bitwise_bool,
    reason = "one branch for several checks: each branch ends a block TCG translates"
)]
#[inline(always)]
fn walk<S: PageSource, E: Entry>(
    src: &mut S,
    head: u64,
    mut f: impl FnMut(u64, &[u8], usize) -> PResult<()>,
) -> PResult<usize> {
    let mut pa = head;
    let mut blocks = 0usize;
    let mut total = 0usize;
    // Brent's cycle detection: a chain that loops is caught within twice its length, with
    // no memory.
    let (mut mark, mut power, mut lap) = (0u64, 1usize, 0usize);
    while pa != 0 {
        // `blocks` is at most `MAX_BLOCKS + 1` here, `lap` and `power` at most twice that:
        // no overflow.
        blocks = blocks.wrapping_add(1);
        // One test for the three ways a block is refused before it is read (each test is a
        // block TCG translates); which one is told apart only on the way out.
        if (blocks > MAX_BLOCKS) | (pa == mark) | (pa % PAGE_SIZE as u64 != 0) {
            return Err(chain_error(blocks, pa == mark));
        }
        lap = lap.wrapping_add(1);
        if lap == power {
            (mark, power, lap) = (pa, power.wrapping_mul(2), 0);
        }
        let page = src
            .page(pa)
            .map_err(|e| Invalid("a block is not a page the previous kernel preserved", e))?;
        let Some(hdr) = read::<BlockHeader>(page, 0).filter(|_| page.len() >= PAGE_SIZE) else {
            return bad("a block is shorter than a page");
        };
        // The C writer can leave one empty block at the end of the session chain; it carries
        // nothing, so it is accepted (the C reader refuses it and panics).
        if hdr.count > E::PER_BLOCK as u64 {
            return bad("a block's entry count does not fit its page");
        }
        // `count <= E::PER_BLOCK`: the entries fit the page.
        let count = hdr.count as usize;
        f(pa, page, count)?;
        // At most `MAX_BLOCKS * E::PER_BLOCK`: no overflow.
        total = total.wrapping_add(count);
        pa = hdr.next;
    }
    Ok(total)
}

/// Why [`walk`] refused a block before reading it: its chain is too long, loops, or the
/// block is not page-aligned.
#[cold]
fn chain_error(blocks: usize, looped: bool) -> Invalid {
    let why = if blocks > MAX_BLOCKS {
        "a block chain is longer than 10000 blocks"
    } else if looped {
        "a block chain loops"
    } else {
        "a block address is not page-aligned"
    };
    Invalid(why, EINVAL)
}

/// The entries of a block whose header counts `count` (at most `E::PER_BLOCK`), read in place.
fn entries<E: Entry + 'static>(page: &[u8], count: usize) -> impl Iterator<Item = &E> + '_ {
    let body = page.get(entry_off::<E>(0)..).unwrap_or(&[]);
    // Entries are packed (alignment 1): each chunk is one.
    body.chunks_exact(size_of::<E>())
        .take(count)
        .filter_map(E::from_bytes)
}

// Compatible fields are compared a word at a time.
const _: () = assert!(COMPAT_LEN % 8 == 0);

/// A compatible field as words.
#[inline(always)]
fn field_words(c: &[u8; COMPAT_LEN]) -> [u64; COMPAT_LEN / 8] {
    let mut w = [0u64; COMPAT_LEN / 8];
    for (w, c) in w.iter_mut().zip(c.chunks_exact(8)) {
        *w = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
    }
    w
}

/// The bits in which the compatible field `c` differs from `w` ([`field_words`] of another):
/// 0 if they are the same. No early exit: the fields of a hand-over's files mostly are the
/// same, so an exit would spare nothing, and each branch ends a block TCG translates.
#[inline(always)]
fn field_diff(w: &[u64; COMPAT_LEN / 8], c: &[u8; COMPAT_LEN]) -> u64 {
    w.iter()
        .zip(field_words(c))
        .fold(0u64, |d, (x, y)| d | (x ^ y))
}

/// Whether two compatible fields are the same.
fn same_field(a: &[u8; COMPAT_LEN], b: &[u8; COMPAT_LEN]) -> bool {
    field_diff(&field_words(a), b) == 0
}

/// Appends the `count` files of the file block `page` (a session of several files) to `files`
/// if they all have the compatible field `raw`, whose index is `compat`, there is room for them
/// and no data is a page of the hand-over. Returns whether it did; if not, `files` is as it was,
/// and the block is to be read a file at a time, which tells what is wrong.
///
/// This is the common block (the files of one handler), read with no branch per file but the
/// filter's: the fields are compared after the loop, by the bits they differ in. TCG's cost of
/// a loop is its guest instructions and the blocks each pass goes through.
#[inline(always)]
fn same_name_block(
    files: &mut KVVec<InFile>,
    owned: &Owned<'_>,
    page: &[u8],
    count: usize,
    raw: &[u8; COMPAT_LEN],
    compat: u32,
) -> bool {
    // A hand-over of a few pages and files has no filter: it has few blocks, too.
    let Some(filter) = owned.filter else {
        return false;
    };
    let want = field_words(raw);
    let Some(spare) = files.spare_capacity_mut().get_mut(..count) else {
        return false;
    };
    let (mut diff, mut n) = (0u64, 0usize);
    for (slot, e) in spare.iter_mut().zip(entries::<FileSer>(page, count)) {
        diff |= field_diff(&want, &e.compatible);
        if owned.has_in(filter, e.data) {
            return false;
        }
        slot.write(InFile {
            compat,
            data: e.data,
            token: e.token,
        });
        // At most `count`.
        n = n.wrapping_add(1);
    }
    if diff != 0 {
        return false;
    }
    // SAFETY: `spare` is the first `count` slots past the length, within the capacity, and the
    // loop wrote the first `n <= count` of them: `n` is at most the room left, and the `n`
    // slots past the length are initialized.
    unsafe { files.inc_len(n) };
    true
}

/// The index of the compatible string `raw` (a file entry's field) in `compats`, added if
/// new; refused unless a NUL ends it within the field and it is not empty, and past
/// [`MAX_HANDLER_NAMES`] distinct names (which bounds the search, whatever the input).
#[inline(always)]
fn compat_index(compats: &mut SmallVec<Compat, 2>, raw: &[u8; COMPAT_LEN]) -> PResult<u32> {
    let Ok(c) = Compat::parse(raw) else {
        return bad("a file's handler name is empty or not terminated");
    };
    if let Some(i) = compats.iter().position(|x| *x == c) {
        // `i < MAX_HANDLER_NAMES`.
        return Ok(i as u32);
    }
    if compats.len() >= MAX_HANDLER_NAMES {
        return bad("the files name more than 64 different handlers");
    }
    compats.push(c, GFP_KERNEL).map_err(oom)?;
    Ok((compats.len() - 1) as u32)
}

/// A file's handler name `raw` that is not the one of the file read before it: its index (see
/// [`compat_index`], which may refuse it), kept in `last` for the files that follow, and its bit
/// set in `names`.
#[inline(always)]
fn new_name(
    compats: &mut SmallVec<Compat, 2>,
    last: &mut Option<([u8; COMPAT_LEN], u32)>,
    names: &mut u64,
    raw: &[u8; COMPAT_LEN],
) -> PResult<u32> {
    let i = compat_index(compats, raw)?;
    *last = Some((*raw, i));
    // `i < MAX_HANDLER_NAMES <= 64`: the shift keeps its bit.
    *names |= 1u64.wrapping_shl(i);
    Ok(i)
}

impl HandOver {
    /// An empty hand-over, for [`parse`] to fill.
    pub(crate) fn new() -> Self {
        // INVARIANT: No session, no FLB page.
        Self {
            liveupdate_num: 0,
            sessions: SmallVec::new(),
            files: KVVec::new(),
            tokens: KVVec::new(),
            compats: SmallVec::new(),
            flb_page: 0,
            pages: Pages::new(),
        }
    }
}

/// Reads and validates a whole hand-over whose root (a `root_len`-byte blob) is the page at
/// `root_pa` into `h`, an empty [`HandOver`] (filled where it is: a small hand-over's tables
/// are held inline and are not copied). Every page it uses is in [`HandOver::pages`], each
/// once. On an error, `h` holds part of it and is to be dropped.
///
/// At boot the compiler inlines it into its one caller there, `luo_rs_early_init`, which is in
/// `.init.text`, with the small functions it calls (`#[inline(always)]`, [`walk`] included: the
/// block loop of every chain): the boot's way runs more through a few contiguous pages of init
/// code than through scattered pages of `.text`, which TCG protects one by one on their first
/// run. Out of line, in `.text`, are the file walk's per-block closure (the common block's
/// read, the per-file loop and the handler-name lookup, [`compat_index`]) and the FLB check.
// `allow`, not `expect`: clippy 1.96 flags these `|`, the minimum toolchain's (1.85) does not.
#[allow(
    clippy::needless_bitwise_bool,
    reason = "one branch for several checks: each branch ends a block TCG translates"
)]
pub(crate) fn parse<S: PageSource>(
    src: &mut S,
    root_pa: u64,
    root_len: usize,
    h: &mut HandOver,
) -> PResult<()> {
    let HandOver {
        liveupdate_num: h_num,
        sessions,
        files,
        tokens,
        compats,
        flb_page,
        pages,
    } = h;
    pages.push(root_pa, GFP_KERNEL).map_err(oom)?;
    let root = {
        let page = src.page(root_pa).map_err(|e| {
            Invalid(
                "the LUO root is not a page the previous kernel preserved",
                e,
            )
        })?;
        match read::<RootSer>(page, 0) {
            Some(root) if root_len >= ROOT => root,
            _ => return bad("the LUO root is too small"),
        }
    };
    if root.compatible.get(..COMPATIBLE.len()) != Some(COMPATIBLE) {
        return bad("the LUO root is not \"luo-v5\"");
    }
    let liveupdate_num = root.liveupdate_num;
    if liveupdate_num.checked_add(1).is_none() {
        return bad("the live update number is at its maximum");
    }
    let (sessions_pa, flbs_pa) = (root.sessions_pa, root.flbs_pa);
    if flbs_pa != 0 {
        pages.push(flbs_pa, GFP_KERNEL).map_err(oom)?;
    }

    // First the structure: the sessions, and every page of every chain, so that no page is
    // used twice before anything is sized by what the chains hold.
    let add_page = |pages: &mut Pages, pa: u64| {
        if pages.len() >= MAX_PAGES {
            return bad("the hand-over's chains use more than 2^22 pages");
        }
        pages.push(pa, GFP_KERNEL).map_err(oom)
    };
    walk::<_, SessionSer>(src, sessions_pa, |pa, page, count| {
        add_page(pages, pa)?;
        sessions.reserve(count, GFP_KERNEL).map_err(oom)?;
        for e in entries::<SessionSer>(page, count) {
            let (head, count) = (e.file_set_ser.files, e.file_set_ser.count);
            // One test for both (each test is a block TCG translates).
            if ((head == 0) != (count == 0)) | (count > MAX_FILES as u64) {
                return bad("a session's file count does not match its file chain");
            }
            let Ok(name) = Name::parse(&e.name) else {
                return bad("a session name is empty or not terminated");
            };
            let session = InSession {
                name,
                head,
                // `count <= MAX_FILES`.
                count: count as usize,
                first: 0,
                index: None,
                one: InFile::default(),
                compats: 0,
            };
            sessions.push(session, GFP_KERNEL).map_err(oom)?;
        }
        Ok(())
    })?;
    let (mut n_all, mut n_files, mut n_tokens) = (0usize, 0usize, 0usize);
    for s in sessions.iter() {
        // The pages of a chain of many files are reserved at once, not one growth at a time:
        // at most `MAX_BLOCKS` of them, and a chain shorter than its count is refused below.
        if s.count > FileSer::PER_BLOCK {
            pages
                .reserve(s.count.div_ceil(FileSer::PER_BLOCK), GFP_KERNEL)
                .map_err(oom)?;
        }
        let n = walk::<_, FileSer>(src, s.head, |pa, _, _| add_page(pages, pa))?;
        if n != s.count {
            return bad("a session's file count does not match its file chain");
        }
        n_all += n;
        // A session of one file holds it.
        if n > 1 {
            n_files += n;
        }
        if n > SMALL_SESSION {
            n_tokens += n;
        }
    }
    // No page twice (a block in two chains, the FLB page or the root also a block). The
    // files are then bounded by the pages that really hold them.
    sort_pages(pages);
    // Neighbours compared in a plain loop: `windows` would be a call, for a handful of pages.
    let mut prev = None;
    for &pa in pages.iter() {
        if prev == Some(pa) {
            return bad("a page of the hand-over is used twice");
        }
        prev = Some(pa);
    }
    // No page that a file's or an FLB's data names: those belong to their handlers. Each
    // file's data is checked as the file is read, below.
    let filter = Owned::filter_for(pages, n_all);
    let owned = Owned {
        pages,
        filter: filter.as_ref(),
    };

    // Uniqueness of the names by sorting, in place.
    sessions.sort_unstable_by(InSession::by_name);
    // A plain loop: `any` on `windows` would be a call (its `try_fold`).
    for w in sessions.windows(2) {
        if w[0].name == w[1].name {
            return bad("two sessions have the same name");
        }
    }

    // Then the files, into a table of the exact size. The token indexes are sized at the first
    // large session whose files are not in token order, for all the large sessions left.
    files.reserve(n_files, GFP_KERNEL).map_err(oom)?;
    // The last file's raw compatible field and its index: files of one handler follow each
    // other, and are then validated by one comparison.
    let mut last: Option<([u8; COMPAT_LEN], u32)> = None;
    for s in sessions.iter_mut() {
        s.first = files.len();
        // A session of one file keeps it: `one` is its file, `seen` counts what its chain holds.
        let (single, mut one, mut seen) = (s.count == 1, InFile::default(), 0usize);
        let mut names = 0u64;
        walk::<_, FileSer>(src, s.head, |_, page, count| {
            if !single {
                // The hand-over's first file names the handler the others are compared with,
                // as the loop below would: the loop then runs only for a block that is not all
                // of one handler, or has a fault.
                if last.is_none() {
                    if let Some(e) = entries::<FileSer>(page, count).next() {
                        new_name(compats, &mut last, &mut names, &e.compatible)?;
                    }
                }
                if let Some((raw, i)) = &last {
                    if same_name_block(files, &owned, page, count, raw, *i) {
                        return Ok(());
                    }
                }
            }
            for e in entries::<FileSer>(page, count) {
                let compat = match &last {
                    Some((raw, i)) if same_field(raw, &e.compatible) => *i,
                    _ => new_name(compats, &mut last, &mut names, &e.compatible)?,
                };
                let f = InFile {
                    compat,
                    data: e.data,
                    token: e.token,
                };
                if owned.has(f.data) {
                    return bad(DATA_IS_OURS);
                }
                if single {
                    (one, seen) = (f, seen + 1);
                } else if files.push_within_capacity(f).is_err() {
                    // Within the capacity: the chain was counted above (and has not changed).
                    return bad("a session's file chain holds more files than its count");
                }
            }
            Ok(())
        })?;
        s.one = one;
        // The same chain as counted above: the same files.
        let own = match single {
            true => core::slice::from_ref(&s.one),
            false => files.get(s.first..).unwrap_or(&[]),
        };
        // A file whose name was looked up set its bit above; any other has the name of the
        // file read before it: of this session, whose bit is set, or, for its first file, of
        // the session before. So the first file's bit completes the session's names.
        s.compats = names | own.first().map_or(0, |f| 1u64.wrapping_shl(f.compat));
        if (single & (seen != 1)) | (own.len() != s.count) {
            return bad("a session's file count does not match its file chain");
        }
        // A small session is checked pair by pair and needs no index. A large one whose chain
        // is in rising token order (both writers keep the order of preservation) is unique by
        // that order and needs none either. Any other gets a token index, sorted once: it is
        // also the uniqueness check.
        if s.count <= SMALL_SESSION {
            for (i, f) in own.iter().enumerate() {
                if own[..i].iter().any(|g| g.token == f.token) {
                    return bad("two files of a session have the same token");
                }
            }
            continue;
        }
        // The files of the large sessions from this one on: at most one reservation covers
        // every index (no more than the files of all large sessions, what a table of every
        // large session's index would take).
        let left = n_tokens;
        n_tokens = n_tokens.saturating_sub(s.count);
        if !tokens_rise(own) {
            if tokens.capacity() - tokens.len() < s.count {
                tokens.reserve(left, GFP_KERNEL).map_err(oom)?;
            }
            let start = tokens.len();
            s.index = Some(start);
            for (i, f) in own.iter().enumerate() {
                // `i < MAX_FILES`, which fits a `u32`. Within the capacity: the large
                // sessions' counts were reserved, and `own` holds its session's count.
                if tokens.push_within_capacity((f.token, i as u32)).is_err() {
                    return bad("a session's file count does not match its file chain");
                }
            }
            let index = &mut tokens[start..];
            index.sort_unstable();
            if index.windows(2).any(|w| w[0].0 == w[1].0) {
                return bad("two files of a session have the same token");
            }
        }
    }

    // The FLB records are checked where they are; they are copied at their first use.
    if flbs_pa != 0 {
        let page = src.page(flbs_pa).map_err(|e| {
            Invalid(
                "the FLB page is not a page the previous kernel preserved",
                e,
            )
        })?;
        check_flbs(page, |pa| owned.has(pa))?;
    }

    // INVARIANT: Names and tokens were checked for uniqueness above; the ranges of the
    // sessions of more than one file were laid out over `files`, and those of their indexes
    // over `tokens`, as they were filled; a session of one file holds it; a large session
    // without an index had its tokens rising; each session's `compats` has the bit of each of
    // its files' names, set as they were read. The FLB page is in `pages` and was checked by
    // `check_flbs`, whose checks are those of `read_flbs`.
    *h_num = liveupdate_num;
    *flb_page = flbs_pa;
    Ok(())
}

/// Sorts `v`, a hand-over's pages: by insertion if they are a few (a hand-over of a few files),
/// by a heapsort otherwise, bounded on any input. Both are little code: TCG translates every
/// distinct block the boot runs, which costs more than the comparisons a general sort spares.
#[inline(always)]
fn sort_pages(v: &mut [u64]) {
    /// The most pages sorted by insertion: at most 120 moves.
    const FEW: usize = 16;
    if v.len() > FEW {
        return heapsort(v);
    }
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// Sorts `v` by a heapsort: the heap is built and taken apart by one loop, so that the sift is
/// inlined once.
#[inline(always)]
fn heapsort(v: &mut [u64]) {
    /// Moves `v[node]` down its heap (`v`) to where its children are not greater.
    #[inline(always)]
    fn sift_down(v: &mut [u64], mut node: usize) {
        loop {
            // `node < v.len() <= MAX_PAGES + 2`: no overflow.
            let mut child = 2 * node + 1;
            let Some(&c) = v.get(child) else {
                return;
            };
            let (mut max, n) = (c, v[node]);
            if let Some(&r) = v.get(child + 1) {
                if r > c {
                    (max, child) = (r, child + 1);
                }
            }
            if n >= max {
                return;
            }
            (v[node], v[child]) = (max, n);
            node = child;
        }
    }
    let n = v.len();
    // `i >= n`: the heap is being built, node `i - n` sifted in all of `v`. `0 < i < n`: the
    // largest is put at `i`, and the root sifted in the heap left, `v[..i]`. `n + n / 2` does
    // not overflow: `n <= MAX_PAGES + 2`.
    for i in (1..n + n / 2).rev() {
        let (end, node) = match i.checked_sub(n) {
            Some(node) => (n, node),
            None => {
                v.swap(0, i);
                (i, 0)
            }
        };
        sift_down(&mut v[..end], node);
    }
}

/// Whether the tokens of `files` rise strictly, in one pass: they are then unique, and
/// searched in place.
fn tokens_rise(files: &[InFile]) -> bool {
    let mut prev = None;
    for f in files {
        if prev.is_some_and(|p| p >= f.token) {
            return false;
        }
        prev = Some(f.token);
    }
    true
}

/// What a hand-over whose data is also one of its pages is refused with.
const DATA_IS_OURS: &str = "a page of the hand-over is also a file's or an FLB's data";

/// The pages of a hand-over (sorted, each once), for the checks of the data its records name.
/// A few pages looked up a few times are scanned; otherwise a filter of the pages' frame
/// numbers answers most lookups without a search.
struct Owned<'a> {
    /// Sorted.
    pages: &'a [u64],
    /// The filter of `pages` ([`Owned::filter_for`]), if they have one.
    filter: Option<&'a [u64; Owned::FILTER_WORDS]>,
}

impl<'a> Owned<'a> {
    /// The most page comparisons of a scan (pages times files): below the filter's set-up.
    const SMALL: usize = 32;
    const FILTER_WORDS: usize = 16;

    /// The filter of `pages` if `lookups` (about how many data will be looked up) make a scan
    /// of them cost more than a filter's set-up. Kept by the caller: the set borrows it.
    #[inline(always)]
    fn filter_for(pages: &[u64], lookups: usize) -> Option<[u64; Owned::FILTER_WORDS]> {
        (pages.len().saturating_mul(lookups) > Self::SMALL).then(|| Self::filter(pages))
    }

    /// The filter of `pages`: the bit of each page set. Built once, at boot: inlined there, into
    /// `.init.text` (see [`parse`]).
    #[inline(always)]
    fn filter(pages: &[u64]) -> [u64; Owned::FILTER_WORDS] {
        let mut filter = [0u64; Self::FILTER_WORDS];
        for &pa in pages {
            let (w, b) = Self::bit(pa);
            filter[w] |= b;
        }
        filter
    }

    /// The word and the bit of the filter for the page of `pa`.
    fn bit(pa: u64) -> (usize, u64) {
        let i = (pa / PAGE_SIZE as u64) as usize % (64 * Self::FILTER_WORDS);
        (i / 64, 1u64 << (i % 64))
    }

    /// Whether the page that holds `pa` is one of the pages.
    #[inline]
    fn has(&self, pa: u64) -> bool {
        let page = pa & !(PAGE_SIZE as u64 - 1);
        match self.filter {
            None => self.pages.contains(&page),
            Some(filter) => self.has_in(filter, pa),
        }
    }

    /// [`Owned::has`] with `filter`, the pages' filter.
    #[inline(always)]
    fn has_in(&self, filter: &[u64; Owned::FILTER_WORDS], pa: u64) -> bool {
        let (w, b) = Self::bit(pa);
        filter[w] & b != 0
            && self
                .pages
                .binary_search(&(pa & !(PAGE_SIZE as u64 - 1)))
                .is_ok()
    }
}

/// The FLB records of the FLB page `page`, in place, if its header is valid: one page, a count
/// that fits it.
fn flb_page_records(page: &[u8]) -> PResult<&[u8]> {
    let Some(hdr) = read::<FlbHeader>(page, 0).filter(|_| page.len() >= PAGE_SIZE) else {
        return bad("the FLB page is shorter than a page");
    };
    if hdr.pgcnt != 1 {
        return bad("the FLB page count is not 1");
    }
    if hdr.count > MAX_FLBS as u64 {
        return bad("the FLB count does not fit the FLB page");
    }
    // `count <= MAX_FLBS`: the records fit the page, which is whole.
    let n = hdr.count as usize;
    match page.get(flb_off(0)..flb_off(n)) {
        Some(records) => Ok(records),
        None => bad("the FLB count does not fit the FLB page"),
    }
}

/// The records of [`flb_page_records`], read in place (packed: every chunk is one).
fn flbs_in(records: &[u8]) -> impl Iterator<Item = &FlbSer> + '_ {
    records
        .chunks_exact(size_of::<FlbSer>())
        .filter_map(FlbSer::from_bytes)
}

/// Checks one FLB record: a name a NUL ends and not empty, a count from 1 to
/// [`FLB_COUNT_MAX`]. Returns its name's key ([`Compat::key`]).
#[inline]
fn check_flb(e: &FlbSer) -> PResult<u64> {
    let Some(key) = Compat::key(&e.name) else {
        return bad("an FLB name is empty or not terminated");
    };
    let count = e.count;
    if count == 0 || count > FLB_COUNT_MAX {
        return bad("an FLB count is 0 or impossibly large");
    }
    Ok(key)
}

/// Checks the FLB page's records where they are, at boot: [`check_flb`] for each, no two of
/// the same name (the checks of [`read_flbs`], which accepts exactly these records), and no
/// data that `ours` says is a page of the hand-over.
fn check_flbs(page: &[u8], ours: impl Fn(u64) -> bool) -> PResult<()> {
    let records = flb_page_records(page)?;
    // A bit per name key, set by each record: only a record whose bit an earlier one set is
    // compared with the earlier ones by name.
    let mut seen = 0u64;
    for (i, e) in flbs_in(records).enumerate() {
        let bit = 1u64 << (check_flb(e)? >> 58);
        // The earlier records were checked: a NUL ends each name.
        if seen & bit != 0
            && flbs_in(records)
                .take(i)
                .any(|f| Compat::same_str(&f.name, &e.name))
        {
            return bad("two FLBs have the same name");
        }
        seen |= bit;
        if ours(e.data) {
            return bad(DATA_IS_OURS);
        }
    }
    Ok(())
}

/// The FLB records of the FLB page `page`, read into a table: at the first use of an incoming
/// FLB, or before the page is given back. The page was checked at boot (by [`parse`]); its
/// records are checked again as they are read.
pub(crate) fn read_flbs(page: &[u8]) -> PResult<KVec<InFlb>> {
    let records = flb_page_records(page)?;
    let mut flbs =
        KVec::with_capacity(records.len() / size_of::<FlbSer>(), GFP_KERNEL).map_err(oom)?;
    for e in flbs_in(records) {
        check_flb(e)?;
        let name = Compat::parse(&e.name)
            .map_err(|_| Invalid("an FLB name is empty or not terminated", EINVAL))?;
        if flbs.iter().any(|f: &InFlb| f.name == name) {
            return bad("two FLBs have the same name");
        }
        let flb = InFlb {
            name,
            data: e.data,
            count: e.count,
            taken: Atomic::new(false),
        };
        // Within the capacity: one entry per record.
        if flbs.push_within_capacity(flb).is_err() {
            return bad("the FLB count does not fit the FLB page");
        }
    }
    Ok(flbs)
}

#[path = "ser_out.rs"]
mod out;
pub(crate) use out::{
    fit_pool,
    init_flb_page,
    set_flb_count,
    set_root_sessions,
    write_flb,
    write_root,
    Chain, //
};

#[path = "ser_damage.rs"]
mod damage;
pub(crate) use damage::damage;

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[path = "ser_tests.rs"]
mod tests;
