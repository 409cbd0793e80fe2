// SPDX-License-Identifier: GPL-2.0

//! The fixed contracts as typed structs: the uAPI (`<uapi/linux/liveupdate.h>`, through
//! `kernel::uapi`) and the "luo-v5" hand-over (`<linux/kho/abi/luo.h>` and
//! `<linux/kho/abi/block.h>`, through `kernel::bindings`).
//!
//! Each C struct is wrapped in a `#[repr(transparent)]` type that is [`FromBytes`] and
//! [`AsBytes`] (the structs have no padding, which the `const` assertions below check), so
//! user memory and hand-over pages are read and written as whole structs, never through byte
//! offsets. The limits of the format and the one fixed-string type for session names and
//! compatible strings ([`FixedStr`]) are defined here, once.

use core::{
    mem::size_of,
    ops::{
        Deref,
        DerefMut, //
    },
};

use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uapi,
};

/// Length of a session name field, NUL included.
pub(crate) const NAME_LEN: usize = uapi::LIVEUPDATE_SESSION_NAME_LENGTH as usize;
/// Length of a file handler's or FLB's compatible string field, NUL included.
pub(crate) const COMPAT_LEN: usize = bindings::LIVEUPDATE_HNDL_COMPAT_LENGTH as usize;
const _: () = assert!(COMPAT_LEN == bindings::LIVEUPDATE_FLB_COMPAT_LENGTH as usize);
const _: () = assert!(NAME_LEN == bindings::LIVEUPDATE_SESSION_NAME_LENGTH as usize);

/// The compatible string of the hand-over format, with its NUL.
pub(crate) const COMPATIBLE: &[u8] = bindings::LUO_ABI_COMPATIBLE;

/// The ioctl type of every LUO command.
pub(crate) const IOCTL_TYPE: u32 = uapi::LIVEUPDATE_IOCTL_TYPE;
/// First command number of `/dev/liveupdate`.
pub(crate) const CMD_BASE: u32 = uapi::LIVEUPDATE_CMD_BASE;
/// First command number of session fds.
pub(crate) const SESSION_CMD_BASE: u32 = uapi::LIVEUPDATE_CMD_SESSION_BASE;
/// Command numbers.
pub(crate) const CMD_CREATE_SESSION: u32 = uapi::LIVEUPDATE_CMD_CREATE_SESSION;
pub(crate) const CMD_RETRIEVE_SESSION: u32 = uapi::LIVEUPDATE_CMD_RETRIEVE_SESSION;
pub(crate) const CMD_PRESERVE_FD: u32 = uapi::LIVEUPDATE_CMD_SESSION_PRESERVE_FD;
pub(crate) const CMD_RETRIEVE_FD: u32 = uapi::LIVEUPDATE_CMD_SESSION_RETRIEVE_FD;
pub(crate) const CMD_FINISH: u32 = uapi::LIVEUPDATE_CMD_SESSION_FINISH;
pub(crate) const CMD_GET_NAME: u32 = uapi::LIVEUPDATE_CMD_SESSION_GET_NAME;

/// A fixed-size, NUL-padded string field: session names (`N` = [`NAME_LEN`]) and compatible
/// strings (`N` = [`COMPAT_LEN`]).
///
/// # Invariants
///
/// `bytes[..len]` has no NUL, `len < N`, and the rest of `bytes` is zero (so `bytes` alone
/// decides equality and order: see [`FixedStr::words`]).
// Aligned to a word: names are copied and compared a word at a time.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct FixedStr<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> FixedStr<N> {
    /// The field as big-endian words: comparing them in turn compares the bytes in turn (and,
    /// the padding being zero, a string before every longer string it starts). One comparison
    /// per word rather than a `memcmp` call: names are compared at every sort and lookup.
    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        // Whole words: no byte is left out of a comparison.
        const { assert!(N % 8 == 0) };
        self.bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
    }
}

impl<const N: usize> Default for FixedStr<N> {
    /// The empty string (a placeholder: [`FixedStr::parse`] never returns it).
    fn default() -> Self {
        // INVARIANT: No byte, all zero; `0 < N`.
        Self {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> PartialEq for FixedStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.words().eq(other.words())
    }
}

impl<const N: usize> Eq for FixedStr<N> {}

impl<const N: usize> PartialOrd for FixedStr<N> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for FixedStr<N> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.words().cmp(other.words())
    }
}

/// A session name.
pub(crate) type Name = FixedStr<NAME_LEN>;
/// A file handler's or FLB's compatible string.
pub(crate) type Compat = FixedStr<COMPAT_LEN>;

// The length of every fixed string fits its `u8` (`parse` asserts whole words for every `N`).
const _: () = assert!(NAME_LEN <= 256 && COMPAT_LEN <= 256);

/// The words of a field, little-endian: byte `i` of a word is its bits `8 * i..8 * i + 8`.
/// Fields are whole words (asserted where a `FixedStr` is made or read).
fn le_words(raw: &[u8]) -> impl Iterator<Item = u64> + '_ {
    raw.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
}

/// The index of the first zero byte of little-endian word `w`, if it has one.
fn first_nul(w: u64) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // The lowest set bit marks the first zero byte (higher ones may be false).
    let zero = w.wrapping_sub(ONES) & !w & HIGHS;
    (zero != 0).then(|| (zero.trailing_zeros() / 8) as usize)
}

impl<const N: usize> FixedStr<N> {
    /// Validates a field from user space or from the previous kernel: a NUL must end it within
    /// the field and it must not be empty. Bytes after the NUL are ignored.
    ///
    /// The field is read, and the NUL looked for, a word at a time: names are checked at
    /// every open of a session and for every session and FLB of the previous kernel. Always
    /// inlined: the string is then written where its caller keeps it, not copied there.
    #[inline(always)]
    pub(crate) fn parse(raw: &[u8; N]) -> Result<Self> {
        // Whole words: no byte of the field is left unread.
        const { assert!(N % 8 == 0) };
        let mut bytes = [0u8; N];
        for (i, (dst, w)) in bytes.chunks_exact_mut(8).zip(le_words(raw)).enumerate() {
            // `at < 8`: the index of the NUL in this word.
            let Some(at) = first_nul(w) else {
                dst.copy_from_slice(&w.to_le_bytes());
                continue;
            };
            if i == 0 && at == 0 {
                return Err(EINVAL);
            }
            let below = (1u64 << (8 * at)) - 1;
            dst.copy_from_slice(&(w & below).to_le_bytes());
            // INVARIANT: `bytes[..len]` are the field's bytes before its first NUL, the rest
            // is zero (this word masked, later words untouched); `len < N <= 256`.
            return Ok(Self {
                bytes,
                len: (i * 8 + at) as u8,
            });
        }
        Err(EINVAL)
    }

    /// A summary of the string in the field `raw` if [`Self::parse`] accepts it (a NUL ends it
    /// within the field and it is not empty), `None` otherwise. Fields that hold the same
    /// string (see [`Self::same_str`]) have the same key, whatever follows their NUL; records
    /// are checked for duplicate names by their keys first. Read a word at a time, without a
    /// copy.
    #[inline]
    pub(crate) fn key(raw: &[u8; N]) -> Option<u64> {
        // Whole words: no byte of the field is left unread.
        const { assert!(N % 8 == 0) };
        // An odd multiplier: every bit of a word reaches the key's top bits.
        const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut key = 0u64;
        for (i, w) in le_words(raw).enumerate() {
            let Some(at) = first_nul(w) else {
                key = (key ^ w).wrapping_mul(MIX);
                continue;
            };
            if i == 0 && at == 0 {
                return None;
            }
            // `at < 8`: the string's bytes in this word, without its NUL and what follows.
            let below = (1u64 << (8 * at)) - 1;
            return Some((key ^ (w & below)).wrapping_mul(MIX));
        }
        None
    }

    /// Whether the fields `a` and `b` hold the same string, `a` being one that [`Self::parse`]
    /// accepts (a NUL ends it within the field): their bytes up to `a`'s first NUL are equal.
    /// Bytes after it are ignored. Compared in place, a word at a time, so that records are
    /// checked for duplicates without a copy of each.
    pub(crate) fn same_str(a: &[u8; N], b: &[u8; N]) -> bool {
        // Whole words: no byte of the field is left out.
        const { assert!(N % 8 == 0) };
        for (x, y) in le_words(a).zip(le_words(b)) {
            // `at < 8`: `x`'s NUL; the strings are the same if `y` has the same bytes up to
            // and including it.
            let Some(at) = first_nul(x) else {
                if x != y {
                    return false;
                }
                continue;
            };
            let upto = u64::MAX >> (56 - 8 * at);
            return (x ^ y) & upto == 0;
        }
        false
    }

    /// A copy of `s` (a string of ours, or one a C caller registered), cut at its first NUL
    /// and at `N - 1` bytes.
    pub(crate) fn truncated(s: &[u8]) -> Self {
        let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Self::copy(&s[..len])
    }

    /// A copy of `s`, which has no NUL, cut at `N - 1` bytes.
    fn copy(s: &[u8]) -> Self {
        let len = s.len().min(N - 1);
        let mut bytes = [0u8; N];
        bytes[..len].copy_from_slice(&s[..len]);
        // INVARIANT: `len < N` bytes without a NUL, zeroes after them; `N <= 256`.
        Self {
            bytes,
            len: len as u8,
        }
    }

    /// The string without its NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The whole field, NUL padding included.
    pub(crate) fn field(&self) -> &[u8; N] {
        &self.bytes
    }
}

/// Wraps a C struct of integers and byte arrays without padding (its size is asserted to be
/// the sum of its fields' sizes) as a [`FromBytes`] and [`AsBytes`] type.
macro_rules! wire {
    ($(#[$meta:meta])* $name:ident = $c:ty, size $size:expr) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Default)]
        pub(crate) struct $name(pub(crate) $c);

        const _: () = assert!(size_of::<$c>() == $size);

        // SAFETY: The struct holds only integers and arrays of integers and has no padding
        // (its size is the sum of its fields', asserted above): any bytes are a valid value.
        unsafe impl FromBytes for $name {}

        // SAFETY: No padding (asserted above), so every byte of a value is initialized.
        unsafe impl AsBytes for $name {}

        impl Deref for $name {
            type Target = $c;

            fn deref(&self) -> &$c {
                &self.0
            }
        }

        impl DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $c {
                &mut self.0
            }
        }
    };
}

// uAPI command structs: `u32 size` first, then the command's fields.
wire!(
    /// `struct liveupdate_ioctl_create_session`.
    CreateSession = uapi::liveupdate_ioctl_create_session, size 4 + 4 + NAME_LEN
);
wire!(
    /// `struct liveupdate_ioctl_retrieve_session`.
    RetrieveSession = uapi::liveupdate_ioctl_retrieve_session, size 4 + 4 + NAME_LEN
);
wire!(
    /// `struct liveupdate_session_preserve_fd`.
    PreserveFd = uapi::liveupdate_session_preserve_fd, size 4 + 4 + 8
);
wire!(
    /// `struct liveupdate_session_retrieve_fd`.
    RetrieveFd = uapi::liveupdate_session_retrieve_fd, size 4 + 4 + 8
);
wire!(
    /// `struct liveupdate_session_finish`.
    Finish = uapi::liveupdate_session_finish, size 4 + 4
);
wire!(
    /// `struct liveupdate_session_get_name`.
    GetName = uapi::liveupdate_session_get_name, size 4 + 4 + NAME_LEN
);

// The hand-over ("luo-v5"; the luo structs are `__packed`).
wire!(
    /// `struct luo_ser`: the root, LUO's KHO subtree.
    RootSer = bindings::luo_ser, size 8 + 8 + 8 + 8
);
wire!(
    /// `struct kho_block_header_ser`: the header of a one-page block of a chain.
    BlockHeader = bindings::kho_block_header_ser, size 8 + 8
);
wire!(
    /// `struct luo_session_ser`.
    SessionSer = bindings::luo_session_ser, size NAME_LEN + 8 + 8
);
wire!(
    /// `struct luo_file_ser`.
    FileSer = bindings::luo_file_ser, size COMPAT_LEN + 8 + 8
);
wire!(
    /// `struct luo_flb_header_ser`: the header of the FLB page.
    FlbHeader = bindings::luo_flb_header_ser, size 8 + 8
);
wire!(
    /// `struct luo_flb_ser`.
    FlbSer = bindings::luo_flb_ser, size COMPAT_LEN + 8 + 8
);

// The kernel's `c_char` is `u8` (it builds with -funsigned-char), so the luo-v5 structs' `char`
// arrays are byte arrays.

impl RootSer {
    /// The root: "luo-v5", the live update number and the two chains' heads.
    pub(crate) fn new(liveupdate_num: u64, sessions_pa: u64, flbs_pa: u64) -> Self {
        let mut compatible = [0u8; 8];
        compatible[..COMPATIBLE.len()].copy_from_slice(COMPATIBLE);
        Self(bindings::luo_ser {
            compatible,
            liveupdate_num,
            sessions_pa,
            flbs_pa,
        })
    }
}

impl BlockHeader {
    pub(crate) fn new(next: u64, count: u64) -> Self {
        Self(bindings::kho_block_header_ser { next, count })
    }
}

impl FlbHeader {
    /// The header of the FLB page (one page) with `count` entries.
    pub(crate) fn new(count: u64) -> Self {
        Self(bindings::luo_flb_header_ser { pgcnt: 1, count })
    }
}

impl FlbSer {
    pub(crate) fn new(name: &Compat, data: u64, count: u64) -> Self {
        Self(bindings::luo_flb_ser {
            name: *name.field(),
            data,
            count,
        })
    }
}

/// An entry of a block chain.
pub(crate) trait Entry: FromBytes + AsBytes + Default {
    /// Entries in one block.
    const PER_BLOCK: usize = (PAGE_SIZE - size_of::<BlockHeader>()) / size_of::<Self>();
}

impl Entry for SessionSer {}
impl Entry for FileSer {}

/// Most blocks in one chain (the C implementation's `KHO_MAX_BLOCKS`).
pub(crate) const MAX_BLOCKS: usize = 10000;
/// Most sessions the format can carry.
pub(crate) const MAX_SESSIONS: usize = MAX_BLOCKS * SessionSer::PER_BLOCK;
/// Most files of one session the format can carry.
pub(crate) const MAX_FILES: usize = MAX_BLOCKS * FileSer::PER_BLOCK;
/// Most FLB entries in the FLB page (the C implementation's `LUO_FLB_MAX`).
pub(crate) const MAX_FLBS: usize = (PAGE_SIZE - size_of::<FlbHeader>()) / size_of::<FlbSer>();
/// The most an FLB's count can be: it counts files and references, objects in memory.
pub(crate) const FLB_COUNT_MAX: u64 = 1 << 32;

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[kernel::macros::kunit_tests(liveupdate_rust_session)]
mod tests {
    use super::*;

    fn field(s: &[u8]) -> [u8; NAME_LEN] {
        let mut f = [0u8; NAME_LEN];
        f[..s.len()].copy_from_slice(s);
        f
    }

    #[test]
    fn names_need_a_nul_and_a_byte() {
        assert!(Name::parse(&field(b"")).is_err());
        assert!(Name::parse(&[b'X'; NAME_LEN]).is_err());
        assert!(Name::parse(&field(&[b'a'; 63])).is_ok());
        assert_eq!(Name::parse(&field(b"abc")).unwrap().as_bytes(), b"abc");
    }

    #[test]
    fn bytes_after_the_nul_are_ignored() {
        let mut f = field(b"abc");
        f[10] = b'z';
        assert!(Name::parse(&f).unwrap() == Name::parse(&field(b"abc")).unwrap());
    }

    #[test]
    fn the_nul_is_found_at_every_place_whatever_the_bytes_around_it() {
        // Bytes that fool a careless zero-byte test: 0x01 becomes a zero byte when the test
        // subtracts, 0x80 is flagged without the `& !w`, 0x81 and 0xff have the high bit set.
        for &b in &[0x01u8, 0x80, 0x81, 0xff, b'a'] {
            assert!(Name::parse(&[b; NAME_LEN]).is_err());
            for at in 0..NAME_LEN {
                let mut f = [b; NAME_LEN];
                f[at] = 0;
                let parsed = Name::parse(&f);
                if at == 0 {
                    assert!(parsed.is_err());
                    continue;
                }
                let name = parsed.unwrap();
                assert_eq!(name.as_bytes(), &f[..at]);
                assert!(name.field()[at..].iter().all(|&x| x == 0));
            }
            // A NUL right after a 0x01 byte, which the subtraction turns into a zero byte.
            let mut f = [0u8; NAME_LEN];
            f[0] = b;
            f[1] = 0x01;
            assert_eq!(Name::parse(&f).unwrap().as_bytes(), &f[..2]);
        }
    }

    #[test]
    fn names_compare_and_order_as_their_bytes() {
        // Prefixes, a difference in every byte of a word and across words, high bytes (which
        // a signed comparison would put first), the longest name.
        let strs: [&[u8]; 14] = [
            b"a",
            b"ab",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefgha",
            b"abcdefgi",
            b"bbcdefgh",
            b"a\x7f",
            b"a\x80",
            b"\xff",
            b"\x01",
            &[b'z'; NAME_LEN - 1],
            // Differ from the one above only in the last word of a name, and of a compatible
            // string once cut to its width.
            &[b'z'; NAME_LEN - 2],
            &[b'z'; COMPAT_LEN - 2],
        ];
        for a in strs {
            for b in strs {
                let (x, y) = (
                    Name::parse(&field(a)).unwrap(),
                    Name::parse(&field(b)).unwrap(),
                );
                assert_eq!(x.cmp(&y), a.cmp(b));
                assert_eq!((x == y), (a == b));
                // The compatible strings' width too (the longest name is cut to fit).
                let (x, y) = (Compat::truncated(a), Compat::truncated(b));
                assert_eq!(x.cmp(&y), x.as_bytes().cmp(y.as_bytes()));
                assert_eq!((x == y), (x.as_bytes() == y.as_bytes()));
            }
        }
    }

    #[test]
    fn fields_are_the_same_string_up_to_their_nul() {
        // Names of every length up to the longest, bytes after the NUL that differ, and a
        // field whose NUL comes later (a longer string) or is missing.
        let strs: [&[u8]; 9] = [
            b"a",
            b"ab",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefgi",
            b"abcdefghabcdefg",
            b"a\xff",
            &[b'z'; NAME_LEN - 1],
            &[b'z'; NAME_LEN - 2],
        ];
        for a in strs {
            for b in strs {
                let (x, mut y) = (field(a), field(b));
                // Garbage after `b`'s NUL is ignored.
                for byte in y.iter_mut().skip(b.len() + 1) {
                    *byte = 0x5a;
                }
                assert_eq!(Name::same_str(&x, &y), a == b);
                assert!(Name::key(&y).is_some());
                // The same string, the same key.
                if a == b {
                    assert_eq!(Name::key(&x), Name::key(&y));
                }
                assert_eq!(
                    Name::same_str(&x, &y),
                    Name::parse(&x).unwrap() == Name::parse(&y).unwrap()
                );
                // The compatible strings' width too.
                let (x, y) = (Compat::truncated(a), Compat::truncated(b));
                assert_eq!(
                    Compat::same_str(x.field(), y.field()),
                    x.as_bytes() == y.as_bytes()
                );
                assert!(Compat::key(x.field()).is_some());
            }
            // A field with no NUL is never the same as a string.
            assert!(!Name::same_str(&field(a), &[b'z'; NAME_LEN]));
        }
        // What has a `key` is what `parse` accepts: not empty, a NUL within the field
        // (in any word), whatever follows it.
        let mut fields = [[0u8; NAME_LEN]; 5];
        fields[1] = [b'z'; NAME_LEN];
        fields[2][1] = b'z';
        fields[3] = [b'z'; NAME_LEN];
        fields[3][NAME_LEN - 1] = 0;
        fields[4] = [0xff; NAME_LEN];
        fields[4][9] = 0;
        for (f, ok) in fields.iter().zip([false, false, false, true, true]) {
            assert_eq!(Name::key(f).is_some(), ok);
            assert_eq!(Name::parse(f).is_ok(), ok);
        }
    }

    #[test]
    fn copies_are_cut_to_fit() {
        assert_eq!(
            Compat::truncated(&[b'c'; 60]).as_bytes().len(),
            COMPAT_LEN - 1
        );
        assert_eq!(Compat::truncated(b"ab\0cd").as_bytes(), b"ab");
        assert_eq!(Compat::truncated(b"").as_bytes(), b"");
    }
}
