// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the hand-over reader: a valid hand-over is read whole, every kind of damage
//! is refused.

use kernel::macros::kunit_tests;

#[kunit_tests(liveupdate_rust_handover)]
mod handover {
    use crate::{
        abi::{
            BlockHeader,
            Compat,
            Entry,
            FileSer,
            FlbHeader,
            FlbSer,
            SessionSer,
            COMPAT_LEN,
            FLB_COUNT_MAX,
            MAX_BLOCKS,
            MAX_FLBS,
            NAME_LEN, //
        },
        ser::{
            out::{
                pages_for,
                OutMem, //
            },
            *,
        },
    };
    use core::mem::size_of;
    use kernel::{
        page::PAGE_SIZE,
        transmute::{
            AsBytes,
            FromBytes, //
        },
    };

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

        /// Page number `i` (in the order added).
        fn at(&mut self, i: usize) -> &mut [u8] {
            &mut self.pages[i].1
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
    const HDR: usize = size_of::<BlockHeader>();
    const FLB_HDR: usize = size_of::<FlbHeader>();

    fn get<T: FromBytes>(b: &[u8], off: usize) -> T {
        T::from_bytes_copy(&b[off..off + size_of::<T>()]).unwrap()
    }

    fn put<T: AsBytes>(b: &mut [u8], off: usize, v: &T) {
        b[off..off + size_of::<T>()].copy_from_slice(v.as_bytes());
    }

    /// Changes a `T` in `b` at `off`.
    fn edit<T: FromBytes + AsBytes>(b: &mut [u8], off: usize, f: impl FnOnce(&mut T)) {
        let mut v = get::<T>(b, off);
        f(&mut v);
        put(b, off, &v);
    }

    fn header(b: &mut [u8], f: impl FnOnce(&mut BlockHeader)) {
        edit(b, 0, f)
    }

    fn session_off(i: usize) -> usize {
        HDR + i * size_of::<SessionSer>()
    }

    fn file_off(i: usize) -> usize {
        HDR + i * size_of::<FileSer>()
    }

    fn flb_off(i: usize) -> usize {
        FLB_HDR + i * size_of::<FlbSer>()
    }

    fn chars<const N: usize>(s: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a[..s.len()].copy_from_slice(s);
        a
    }

    fn root(sessions: u64, flbs: u64) -> [u8; ROOT] {
        let mut r = [0u8; ROOT];
        write_root(&mut r, 41, flbs);
        set_root_sessions(&mut r, sessions);
        r
    }

    fn session(page: &mut [u8], i: usize, name: &[u8], files: u64, count: u64) {
        edit(page, session_off(i), |s: &mut SessionSer| {
            s.name = chars(name);
            s.file_set_ser.files = files;
            s.file_set_ser.count = count;
        });
    }

    fn file(page: &mut [u8], i: usize, compat: &[u8], data: u64, token: u64) {
        edit(page, file_off(i), |f: &mut FileSer| {
            f.compatible = chars(compat);
            f.data = data;
            f.token = token;
        });
    }

    /// A valid hand-over: "a" with two files, "b" empty, two FLBs.
    fn valid() -> Fake {
        let mut f = Fake::new();
        let p = f.add(SESS);
        header(p, |h| h.count = 2);
        session(p, 0, b"a", FILES, 2);
        session(p, 1, b"b", 0, 0);
        let p = f.add(FILES);
        header(p, |h| h.count = 2);
        file(p, 0, b"memfd-v2", 7, 100);
        file(p, 1, b"memfd-v2", 8, 200);
        let p = f.add(FLBS);
        init_flb_page(p);
        write_flb(p, 0, &Compat::truncated(b"flb-0"), 0xfeed, 3);
        write_flb(p, 1, &Compat::truncated(b"flb-1"), 0xbeef, 1);
        set_flb_count(p, 2);
        f
    }

    /// Parses `f` with root `r` (of `r.len()` bytes) at `ROOT_PA`.
    fn parse_with(f: &mut Fake, r: &[u8]) -> core::result::Result<HandOver, Invalid> {
        f.pages[0].1[..r.len()].copy_from_slice(r);
        let mut h = HandOver::new();
        parse(f, ROOT_PA, r.len(), &mut h)?;
        Ok(h)
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
        assert_eq!(h.files(&h.sessions[0]).len(), 2);
        assert_eq!(h.files(&h.sessions[0])[1].token, 200);
        assert_eq!(h.files(&h.sessions[0])[1].data, 8);
        assert_eq!(h.compats.len(), 1);
        assert_eq!(h.files(&h.sessions[0])[0].compat, 0);
        assert_eq!(h.compats[0].as_bytes(), b"memfd-v2");
        assert_eq!(h.files(&h.sessions[1]).len(), 0);
        // The FLB records are checked in place and read at their first use.
        assert_eq!(h.flb_page, FLBS);
        let flbs = read_flbs(f.at(3)).ok().unwrap();
        assert_eq!(flbs.len(), 2);
        assert_eq!(flbs[0].name.as_bytes(), b"flb-0");
        assert_eq!((flbs[0].data, flbs[0].count), (0xfeed, 3));
        assert_eq!(flbs[1].name.as_bytes(), b"flb-1");
    }

    #[test]
    fn no_sessions_and_no_flbs_is_valid() {
        let mut f = Fake::new();
        let r = root(0, 0);
        let h = parse_with(&mut f, &r).ok().unwrap();
        assert_eq!(h.sessions.len(), 0);
        assert_eq!(h.flb_page, 0);
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
        header(f.at(1), |h| h.count = SessionSer::PER_BLOCK as u64 + 1);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        header(f.at(2), |h| h.count = u64::MAX);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(3), 0, |h: &mut FlbHeader| {
            h.count = MAX_FLBS as u64 + 1
        });
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn cyclic_chains_are_rejected() {
        let mut f = valid();
        header(f.at(1), |h| h.next = SESS);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        header(f.at(2), |h| h.next = FILES);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn out_of_range_addresses_are_rejected() {
        assert!(rejects(valid(), &root(0x50000, FLBS)));
        assert!(rejects(valid(), &root(SESS, 0x50000)));
        assert!(rejects(valid(), &root(SESS + 8, FLBS)));
        let mut f = valid();
        header(f.at(1), |h| h.next = 0x123000);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(1), session_off(0), |s: &mut SessionSer| {
            s.file_set_ser.files = 0x77000
        });
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    /// Serves any address as an empty block whose successor `next` gives.
    struct Links<F: Fn(u64) -> u64> {
        page: KVec<u8>,
        next: F,
    }

    impl<F: Fn(u64) -> u64> PageSource for Links<F> {
        fn page(&mut self, pa: u64) -> Result<&[u8]> {
            let next = (self.next)(pa);
            header(&mut self.page, |h| (h.next, h.count) = (next, 0));
            Ok(&self.page[..])
        }
    }

    /// Why `walk` refuses the chain from `head` whose links `next` gives.
    fn walk_refusal(head: u64, next: impl Fn(u64) -> u64) -> &'static str {
        let mut page = KVec::new();
        page.extend_with(PAGE_SIZE, 0u8, GFP_KERNEL).unwrap();
        let mut src = Links { page, next };
        match walk::<_, FileSer>(&mut src, head, |_, _, _| Ok(())) {
            Ok(_) => "accepted",
            Err(Invalid(why, _)) => why,
        }
    }

    #[test]
    fn walk_tells_why_it_refuses_a_chain() {
        const P: u64 = PAGE_SIZE as u64;
        const LONG: &str = "a block chain is longer than 10000 blocks";
        const LOOPS: &str = "a block chain loops";
        const ALIGN: &str = "a block address is not page-aligned";
        assert_eq!(
            walk_refusal(P, |pa| if pa < 5 * P { pa + P } else { 0 }),
            "accepted"
        );
        assert_eq!(walk_refusal(P, |pa| pa), LOOPS);
        assert_eq!(
            walk_refusal(P, |pa| if pa < 3 * P { pa + P } else { P }),
            LOOPS
        );
        assert_eq!(walk_refusal(P + 8, |_| 0), ALIGN);
        assert_eq!(
            walk_refusal(P, |pa| if pa < 3 * P { pa + P } else { pa + 8 }),
            ALIGN
        );
        // 10,000 blocks are accepted, one more is not.
        let max = MAX_BLOCKS as u64;
        assert_eq!(
            walk_refusal(P, |pa| if pa < max * P { pa + P } else { 0 }),
            "accepted"
        );
        assert_eq!(walk_refusal(P, |pa| pa + P), LONG);
        // Two reasons at the 10,001st block: the length is told first. A tail of 5,000
        // blocks and a loop of 1,810 is caught looping at that very block.
        assert_eq!(
            walk_refusal(P, |pa| if pa < max * P { pa + P } else { pa + 8 }),
            LONG
        );
        assert_eq!(
            walk_refusal(P, |pa| if pa < 6810 * P { pa + P } else { 5001 * P }),
            LONG
        );
    }

    #[test]
    fn zero_count_blocks_carry_nothing() {
        // The C writer can leave an empty block at the end of a chain: accepted.
        let mut f = valid();
        header(f.at(1), |h| h.next = 0x40000);
        f.add(0x40000);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
        // But an empty file chain cannot stand for a non-zero count.
        let mut f = valid();
        header(f.at(2), |h| h.count = 0);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn file_counts_must_add_up() {
        for (i, count) in [(0, 3), (0, 1), (1, 1)] {
            let mut f = valid();
            edit(f.at(1), session_off(i), |s: &mut SessionSer| {
                s.file_set_ser.count = count
            });
            assert!(rejects(f, &root(SESS, FLBS)));
        }
    }

    #[test]
    fn unterminated_and_empty_strings_are_rejected() {
        let mut f = valid();
        edit(f.at(1), session_off(0), |s: &mut SessionSer| {
            s.name = [b'X'; NAME_LEN]
        });
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(1), session_off(0), |s: &mut SessionSer| s.name[0] = 0);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(2), file_off(0), |e: &mut FileSer| {
            e.compatible = chars(&[b'm'; 48])
        });
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(3), flb_off(0), |e: &mut FlbSer| {
            e.name = chars(&[b'f'; 48])
        });
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn duplicates_are_rejected() {
        let mut f = valid();
        edit(f.at(1), session_off(1), |s: &mut SessionSer| {
            s.name[0] = b'a'
        });
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(2), file_off(1), |e: &mut FileSer| e.token = 100);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        edit(f.at(3), flb_off(1), |e: &mut FlbSer| e.name[4] = b'0');
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn a_large_session_gets_a_sorted_token_index() {
        let n = SMALL_SESSION + 2;
        let mut f = valid();
        edit(f.at(1), session_off(0), |s: &mut SessionSer| {
            s.file_set_ser.count = n as u64
        });
        header(f.at(2), |h| h.count = n as u64);
        for i in 0..n {
            // Tokens in falling order: the index sorts them.
            file(
                f.at(2),
                i,
                b"memfd-v2",
                0x100 + i as u64,
                (n - i) as u64 * 10,
            );
        }
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let idx = h.by_token(&h.sessions[0]);
        assert_eq!(idx.len(), n);
        assert!(idx.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(idx[0], (10, (n - 1) as u32));
        // A duplicate among them is refused.
        file(f.at(2), n - 1, b"memfd-v2", 0x200, 30);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
        // A small session needs no index.
        let h = parse_with(&mut valid(), &root(SESS, FLBS)).ok().unwrap();
        assert!(h.by_token(&h.sessions[0]).is_empty());
    }

    #[test]
    fn a_large_session_in_token_order_needs_no_index() {
        let n = SMALL_SESSION + 2;
        let large = |tokens: &dyn Fn(usize) -> u64| {
            let mut f = valid();
            edit(f.at(1), session_off(0), |s: &mut SessionSer| {
                s.file_set_ser.count = n as u64
            });
            header(f.at(2), |h| h.count = n as u64);
            for i in 0..n {
                file(f.at(2), i, b"memfd-v2", 0x100 + i as u64, tokens(i));
            }
            f
        };
        // Rising tokens, as files preserved in token order are written: no index.
        let mut f = large(&|i| 7 + i as u64 * 3);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert!(h.by_token(&h.sessions[0]).is_empty());
        assert_eq!(h.files(&h.sessions[0])[n - 1].token, 7 + (n as u64 - 1) * 3);
        // One token out of order: an index, of every file.
        let mut f = large(&|i| if i == 3 { 1 } else { 7 + i as u64 * 3 });
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let idx = h.by_token(&h.sessions[0]);
        assert_eq!(idx.len(), n);
        assert_eq!(idx[0], (1, 3));
        // Equal neighbours and a duplicate far apart are refused.
        assert!(rejects(
            large(&|i| if i == 5 { 7 + 4 * 3 } else { 7 + i as u64 * 3 }),
            &root(SESS, FLBS)
        ));
        assert!(rejects(
            large(&|i| if i == n - 1 { 7 } else { 7 + i as u64 * 3 }),
            &root(SESS, FLBS)
        ));
    }

    #[test]
    fn the_page_sort_sorts_any_order() {
        // Sorted as the general sort sorts them: the same elements, in order.
        let check = |v: &mut [u64]| {
            let mut want = [0u64; 64];
            let want = &mut want[..v.len()];
            want.copy_from_slice(v);
            want.sort_unstable();
            sort_pages(v);
            assert_eq!(&*v, &*want);
        };
        check(&mut []);
        check(&mut [5]);
        check(&mut [9, 3, 3, 12, 1, 0, 7]);
        // The heapsort alone, on a few elements too.
        for v in [
            &mut [][..],
            &mut [4],
            &mut [2, 1],
            &mut [1, 2],
            &mut [3, 1, 2],
            &mut [2, 3, 1],
        ] {
            heapsort(v);
            assert!(v.windows(2).all(|w| w[0] <= w[1]));
        }
        let mut v = [9, 3, 3, 12, 1, 0, 7];
        heapsort(&mut v);
        assert_eq!(v, [0, 1, 3, 3, 7, 9, 12]);
        // Either side of the insertion sort's bound, and more: falling, repeating, rising.
        for n in [16usize, 17, 37, 64] {
            let mut v = [0u64; 64];
            let v = &mut v[..n];
            for (i, x) in v.iter_mut().enumerate() {
                *x = (n - i) as u64;
            }
            check(v);
            for (i, x) in v.iter_mut().enumerate() {
                *x = (i as u64 * 17) % 11;
            }
            check(v);
            check(v);
        }
    }

    #[test]
    fn large_sessions_with_and_without_an_index_share_the_table() {
        // "a" and "c" out of token order (an index each), "b" rising (none), in one
        // hand-over: the index table is reserved once, at "a", for all three.
        let n = SMALL_SESSION + 3;
        let mut f = valid();
        let p = f.at(1);
        header(p, |h| h.count = 3);
        for (i, name) in [b"a", b"b", b"c"].iter().enumerate() {
            let pa = 0x40000 + (i * PAGE_SIZE) as u64;
            session(f.at(1), i, *name, pa, n as u64);
            let p = f.add(pa);
            header(p, |h| h.count = n as u64);
            for k in 0..n {
                let token = match i {
                    1 => 10 + k as u64,
                    _ => ((k * 5) % n) as u64 + 100 * i as u64,
                };
                file(p, k, b"memfd-v2", 0x900000 + (i * 64 + k) as u64, token);
            }
        }
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert!(h.by_token(&h.sessions[1]).is_empty());
        for s in [&h.sessions[0], &h.sessions[2]] {
            let (idx, files) = (h.by_token(s), h.files(s));
            assert_eq!(idx.len(), n);
            assert!(idx.windows(2).all(|w| w[0].0 < w[1].0));
            for &(t, i) in idx {
                assert_eq!(files[i as usize].token, t);
            }
        }
        // A rising session first, then one out of order: the same.
        session(f.at(1), 0, b"a", 0x40000 + PAGE_SIZE as u64, n as u64);
        session(f.at(1), 1, b"b", 0x40000, n as u64);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert!(h.by_token(&h.sessions[0]).is_empty());
        assert_eq!(h.by_token(&h.sessions[1]).len(), n);
        assert_eq!(h.by_token(&h.sessions[2]).len(), n);
    }

    #[test]
    fn sessions_are_sorted_by_name_and_keep_their_files() {
        // "z" first in the chain with two files, then "m" with a token index of its own,
        // then "a" with one file.
        let n = SMALL_SESSION + 3;
        let mut f = valid();
        let p = f.at(1);
        header(p, |h| h.count = 3);
        session(p, 0, b"z", FILES, 2);
        session(p, 1, b"m", 0x40000, n as u64);
        session(p, 2, b"a", 0x50000, 1);
        let p = f.add(0x40000);
        header(p, |h| h.count = n as u64);
        for i in 0..n {
            file(p, i, b"memfd-v2", 0x1000 + i as u64, 1000 - i as u64);
        }
        let p = f.add(0x50000);
        header(p, |h| h.count = 1);
        file(p, 0, b"memfd-v2", 0x2000, 5);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let names: KVec<&[u8]> = {
            let mut v = KVec::new();
            for s in h.sessions.iter() {
                v.push(s.name.as_bytes(), GFP_KERNEL).unwrap();
            }
            v
        };
        assert_eq!(&names[..], &[&b"a"[..], &b"m"[..], &b"z"[..]]);
        let (a, m, z) = (&h.sessions[0], &h.sessions[1], &h.sessions[2]);
        assert_eq!(h.files(a).len(), 1);
        assert_eq!(h.files(a)[0].data, 0x2000);
        assert!(h.by_token(a).is_empty());
        assert_eq!(h.files(m).len(), n);
        assert_eq!(h.files(m)[n - 1].data, 0x1000 + n as u64 - 1);
        let idx = h.by_token(m);
        assert_eq!(idx.len(), n);
        assert_eq!(idx[0], (1000 - n as u64 + 1, (n - 1) as u32));
        assert_eq!(h.files(z).len(), 2);
        assert_eq!(h.files(z)[1].token, 200);
        // The same name twice is refused, wherever the two are.
        session(f.at(1), 2, b"z", 0x50000, 1);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
    }

    #[test]
    fn handler_names_are_kept_once() {
        let mut f = valid();
        file(f.at(2), 1, b"other-v1", 8, 200);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert_eq!(h.compats.len(), 2);
        assert_eq!(h.files(&h.sessions[0])[1].compat, 1);
        assert_eq!(h.compats[1].as_bytes(), b"other-v1");
        // The same names again in a second session: no new entry.
        session(f.at(1), 1, b"b", 0x40000, 2);
        let p = f.add(0x40000);
        header(p, |h| h.count = 2);
        file(p, 0, b"other-v1", 9, 1);
        file(p, 1, b"memfd-v2", 10, 2);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert_eq!(h.compats.len(), 2);
        assert_eq!(h.files(&h.sessions[1])[0].compat, 1);
        assert_eq!(h.files(&h.sessions[1])[1].compat, 0);
        // Each session has the bits of its own files' names, whatever the session before
        // ended with: "c"'s one file follows "b"'s last, of another name; "d"'s follows
        // "c"'s, of the same name; "e" has no file.
        let p = f.at(1);
        header(p, |h| h.count = 5);
        session(p, 2, b"c", 0x60000, 1);
        session(p, 3, b"d", 0x70000, 1);
        session(p, 4, b"e", 0, 0);
        file(f.add(0x60000), 0, b"other-v1", 11, 1);
        header(f.at(5), |h| h.count = 1);
        file(f.add(0x70000), 0, b"other-v1", 12, 1);
        header(f.at(6), |h| h.count = 1);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let names: KVec<u64> = {
            let mut v = KVec::new();
            for s in h.sessions.iter() {
                v.push(s.compats(), GFP_KERNEL).unwrap();
            }
            v
        };
        assert_eq!(&names[..], &[0b11, 0b11, 0b10, 0b10, 0]);
    }

    /// A hand-over whose session "a" has `n` files (two blocks), each naming another handler.
    fn many_handlers(n: usize) -> Fake {
        let per = FileSer::PER_BLOCK;
        let mut f = valid();
        edit(f.at(1), session_off(0), |s: &mut SessionSer| {
            s.file_set_ser.count = n as u64
        });
        header(f.at(2), |h| {
            h.count = per.min(n) as u64;
            h.next = if n > per { 0x50000 } else { 0 };
        });
        f.add(0x50000);
        header(f.at(4), |h| h.count = n.saturating_sub(per) as u64);
        for i in 0..n {
            let mut name = *b"handler-000";
            name[8] = b'0' + (i / 100) as u8;
            name[9] = b'0' + (i / 10 % 10) as u8;
            name[10] = b'0' + (i % 10) as u8;
            let (page, slot) = if i < per { (2, i) } else { (4, i - per) };
            file(f.at(page), slot, &name, 0x100 + i as u64, i as u64);
        }
        f
    }

    /// A hand-over whose session "a" has `n` files of one handler in two blocks: file `i` has
    /// token `i` and its data in page 0, at `0x100 + i`.
    fn one_handler(n: usize) -> Fake {
        let per = FileSer::PER_BLOCK;
        let mut f = many_handlers(n);
        for i in 0..n {
            let (page, slot) = if i < per { (2, i) } else { (4, i - per) };
            file(f.at(page), slot, b"memfd-v2", 0x100 + i as u64, i as u64);
        }
        f
    }

    #[test]
    fn a_block_of_one_handler_is_checked_file_by_file_all_the_same() {
        // Five pages of 73 files: the page filter is used, and the second block's files all
        // have the name the first block's had.
        let per = FileSer::PER_BLOCK;
        let n = per + 10;
        let (k, tok) = (per + 5, per as u64 + 5);
        let mut f = one_handler(n);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let files = h.files(&h.sessions[0]);
        assert_eq!(files.len(), n);
        for (i, x) in files.iter().enumerate() {
            assert_eq!((x.compat, x.data, x.token), (0, 0x100 + i as u64, i as u64));
        }
        assert_eq!(h.sessions[0].compats(), 1);
        // Data whose filter bit is a page's of the hand-over (1,024 frames past SESS's) but
        // is not in one: accepted.
        file(f.at(4), 5, b"memfd-v2", SESS + 1024 * PAGE_SIZE as u64, tok);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert_eq!(
            h.files(&h.sessions[0])[k].data,
            SESS + 1024 * PAGE_SIZE as u64
        );
        // Data in a page of the hand-over, in the second block: refused for that.
        file(f.at(4), 5, b"memfd-v2", FILES + 8, tok);
        assert_eq!(
            parse_with(&mut f, &root(SESS, FLBS)).err().map(|e| e.0),
            Some("a page of the hand-over is also a file's or an FLB's data")
        );
        // Another handler in the middle of the second block: that file has the new name's
        // index, the ones around it the first name's, and the session both names' bits.
        file(f.at(4), 5, b"other-v1", 0x100 + k as u64, tok);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let files = h.files(&h.sessions[0]);
        assert_eq!(h.compats.len(), 2);
        assert_eq!(h.compats[1].as_bytes(), b"other-v1");
        assert_eq!((files[k - 1].compat, files[k].compat), (0, 1));
        assert_eq!((files[k + 1].compat, files[n - 1].compat), (0, 0));
        assert_eq!(files[k].data, 0x100 + k as u64);
        assert_eq!(h.sessions[0].compats(), 0b11);
        // A name a NUL does not end, in the second block, or empty, as the hand-over's first
        // file's (which names the handler the others are compared with).
        let bad_name = Some("a file's handler name is empty or not terminated");
        file(f.at(4), 5, &[b'x'; COMPAT_LEN], 0x100 + k as u64, tok);
        assert_eq!(
            parse_with(&mut f, &root(SESS, FLBS)).err().map(|e| e.0),
            bad_name
        );
        // The same name with other bytes after its NUL: the same handler.
        let mut other = [0xffu8; COMPAT_LEN];
        other[..9].copy_from_slice(b"memfd-v2\0");
        file(f.at(4), 5, &other, 0x100 + k as u64, tok);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert_eq!(h.compats.len(), 1);
        assert!(h.files(&h.sessions[0]).iter().all(|x| x.compat == 0));
        assert_eq!(h.sessions[0].compats(), 1);
        file(f.at(4), 5, b"memfd-v2", 0x100 + k as u64, tok);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
        file(f.at(2), 0, b"", 0x100, 0);
        assert_eq!(
            parse_with(&mut f, &root(SESS, FLBS)).err().map(|e| e.0),
            bad_name
        );
    }

    #[test]
    fn too_many_handler_names_are_rejected() {
        let mut f = many_handlers(MAX_HANDLER_NAMES + 1);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
        let mut f = many_handlers(MAX_HANDLER_NAMES);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert_eq!(h.compats.len(), MAX_HANDLER_NAMES);
        assert_eq!(h.files(&h.sessions[0]).len(), MAX_HANDLER_NAMES);
        // Every name's bit, the 64th's too.
        assert_eq!(h.sessions[0].compats(), u64::MAX);
    }

    #[test]
    fn a_hand_over_of_more_pages_than_held_inline_is_read_whole() {
        // Session "a" with a file chain of more blocks than the pages held inline, one file
        // each: the pages move to the heap in the middle of the chain.
        let n = PAGES_INLINE + 12;
        let block = |i: usize| 0x100000 + (i * PAGE_SIZE) as u64;
        let mut f = valid();
        edit(f.at(1), session_off(0), |s: &mut SessionSer| {
            s.file_set_ser.files = block(0);
            s.file_set_ser.count = n as u64;
        });
        for i in 0..n {
            let p = f.add(block(i));
            header(p, |h| {
                h.count = 1;
                h.next = if i + 1 < n { block(i + 1) } else { 0 };
            });
            file(p, 0, b"memfd-v2", 0x900000 + i as u64, 10 + i as u64);
        }
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        // The root, the session block, the FLB page and the chain's blocks, sorted; the
        // first file page of `valid()` is no longer used.
        assert_eq!(h.pages.len(), n + 3);
        assert!(h.pages.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(h.pages[n + 2], block(n - 1));
        let files = h.files(&h.sessions[0]);
        assert_eq!(files.len(), n);
        assert_eq!(
            (files[n - 1].data, files[n - 1].token),
            (0x900000 + n as u64 - 1, 9 + n as u64)
        );
        // A page used twice past the inline ones is found all the same: "b" shares the
        // last block.
        session(f.at(1), 1, b"b", block(n - 1), 1);
        assert_eq!(
            parse_with(&mut f, &root(SESS, FLBS)).err().map(|e| e.0),
            Some("a page of the hand-over is used twice")
        );
    }

    #[test]
    fn a_page_used_twice_is_rejected() {
        // A file chain that is also another session's.
        let mut f = valid();
        session(f.at(1), 1, b"b", FILES, 2);
        assert!(rejects(f, &root(SESS, FLBS)));
        // The FLB page is a session block; the root is a block.
        assert!(rejects(valid(), &root(SESS, SESS)));
        let mut f = valid();
        header(f.at(2), |h| h.next = ROOT_PA);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn a_page_that_is_a_handlers_data_is_rejected() {
        let mut f = valid();
        file(f.at(2), 1, b"memfd-v2", SESS + 0x10, 200);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        write_flb(f.at(3), 1, &Compat::truncated(b"flb-1"), FILES, 1);
        assert!(rejects(f, &root(SESS, FLBS)));
        // A session of one file, which keeps its file out of the files' table.
        let mut f = valid();
        session(f.at(1), 0, b"a", FILES, 1);
        header(f.at(2), |h| h.count = 1);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
        file(f.at(2), 0, b"memfd-v2", FLBS + 0x100, 100);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn a_large_hand_over_checks_data_through_its_filter() {
        // Twenty more sessions of one file, each file in a page of its own: more pages than
        // are scanned one by one.
        let mut f = valid();
        header(f.at(1), |h| h.count = 22);
        let block = |i: usize| 0x40000 + (i * PAGE_SIZE) as u64;
        for i in 0..20 {
            session(f.at(1), 2 + i, &[b's', b'a' + i as u8], block(i), 1);
            let p = f.add(block(i));
            header(p, |h| h.count = 1);
            file(p, 0, b"memfd-v2", 0x900000 + (i * PAGE_SIZE) as u64, 1);
        }
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        assert_eq!(h.pages.len(), 24);
        // More pages than are sorted by insertion: one used twice is found all the same.
        session(f.at(1), 21, b"sz", block(3), 1);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
        session(f.at(1), 21, b"sz", block(19), 1);
        // A file's or an FLB's data anywhere in one of the pages is refused.
        for pa in [ROOT_PA, SESS + 8, block(0), block(19) + 0xfff, FLBS + 0x40] {
            file(f.at(4 + 7), 0, b"memfd-v2", pa, 1);
            assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
            file(f.at(4 + 7), 0, b"memfd-v2", 0x900000, 1);
            write_flb(f.at(3), 1, &Compat::truncated(b"flb-1"), pa, 1);
            assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
            write_flb(f.at(3), 1, &Compat::truncated(b"flb-1"), 0xbeef, 1);
            assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
        }
    }

    #[test]
    fn a_full_flb_page_of_distinct_names_is_valid() {
        // More names than their keys' bits: some share a bit and are compared by name.
        let name = |i: usize| {
            [
                b'f',
                b'l',
                b'b',
                b'-',
                b'0' + (i / 10) as u8,
                b'0' + (i % 10) as u8,
            ]
        };
        let mut f = valid();
        for i in 0..MAX_FLBS {
            write_flb(f.at(3), i, &Compat::truncated(&name(i)), 0xd00d, 1);
        }
        set_flb_count(f.at(3), MAX_FLBS);
        assert_eq!(read_flbs(f.at(3)).ok().unwrap().len(), MAX_FLBS);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
        // The last one named as any earlier one: refused.
        for i in [0, 17, MAX_FLBS - 2] {
            write_flb(
                f.at(3),
                MAX_FLBS - 1,
                &Compat::truncated(&name(i)),
                0xd00d,
                1,
            );
            assert!(read_flbs(f.at(3)).is_err());
            assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
        }
    }

    #[test]
    fn a_session_of_one_file_holds_it() {
        let mut f = valid();
        session(f.at(1), 1, b"b", 0x40000, 1);
        let p = f.add(0x40000);
        header(p, |h| h.count = 1);
        file(p, 0, b"other-v1", 0x9000, 77);
        let h = parse_with(&mut f, &root(SESS, FLBS)).ok().unwrap();
        let (a, b) = (&h.sessions[0], &h.sessions[1]);
        assert_eq!(h.files(a).len(), 2);
        assert_eq!(h.files(a)[1].token, 200);
        assert_eq!(h.files(b).len(), 1);
        assert_eq!((h.files(b)[0].data, h.files(b)[0].token), (0x9000, 77));
        assert_eq!(
            h.compats[h.files(b)[0].compat as usize].as_bytes(),
            b"other-v1"
        );
        assert!(h.by_token(b).is_empty());
        // Its chain holds two files: refused (by the count of the first pass; the second
        // pass checks again in case the chain changed in between).
        header(f.at(4), |h| h.count = 2);
        file(f.at(4), 1, b"other-v1", 0x9001, 78);
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_err());
    }

    #[test]
    fn numbers_that_would_overflow_are_rejected() {
        let mut r = root(SESS, FLBS);
        edit(&mut r, 0, |r: &mut crate::abi::RootSer| {
            r.liveupdate_num = u64::MAX
        });
        assert!(rejects(valid(), &r));
        let mut f = valid();
        write_flb(f.at(3), 1, &Compat::truncated(b"flb-1"), 0xbeef, u64::MAX);
        assert!(rejects(f, &root(SESS, FLBS)));
        let mut f = valid();
        write_flb(f.at(3), 1, &Compat::truncated(b"flb-1"), 0xbeef, 0);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    /// Writes FLB record `i` with a name field of `raw` (bytes after its NUL kept).
    fn raw_flb(p: &mut [u8], i: usize, raw: &[u8], count: u64) {
        edit(p, flb_off(i), |e: &mut FlbSer| {
            e.name = [0; COMPAT_LEN];
            e.name[..raw.len()].copy_from_slice(raw);
            e.data = 0xd00d;
            e.count = count;
        });
    }

    #[test]
    fn flb_records_are_checked_at_boot_as_when_they_are_read() {
        // Each damage to the FLB page: refused by the boot's check in place and by the read
        // at first use alike.
        let damages: [fn(&mut [u8]); 9] = [
            |p| edit(p, 0, |h: &mut FlbHeader| h.pgcnt = 2),
            |p| edit(p, 0, |h: &mut FlbHeader| h.count = MAX_FLBS as u64 + 1),
            |p| raw_flb(p, 1, b"flb-1\0", 0),
            |p| raw_flb(p, 1, b"flb-1\0", FLB_COUNT_MAX + 1),
            |p| raw_flb(p, 1, b"\0flb-1", 1),
            |p| raw_flb(p, 1, &[b'f'; COMPAT_LEN], 1),
            // The same name as record 0, with other bytes after its NUL.
            |p| raw_flb(p, 1, b"flb-0\0xyz", 1),
            |p| raw_flb(p, 0, b"flb-1\0\x01", 1),
            // Names of more than a word, the same up to the NUL.
            |p| {
                raw_flb(p, 0, b"a-longer-flb-name\0x", 1);
                raw_flb(p, 1, b"a-longer-flb-name\0y", 1);
            },
        ];
        for damage in damages {
            let mut f = valid();
            damage(f.at(3));
            assert!(read_flbs(f.at(3)).is_err());
            assert!(rejects(f, &root(SESS, FLBS)));
        }
        // Names that only start alike, and bytes after a NUL, are accepted by both.
        let mut f = valid();
        raw_flb(f.at(3), 1, b"flb-00\0flb-0", 1);
        let flbs = read_flbs(f.at(3)).ok().unwrap();
        assert_eq!(flbs[1].name.as_bytes(), b"flb-00");
        assert!(parse_with(&mut f, &root(SESS, FLBS)).is_ok());
    }

    #[test]
    fn the_flb_page_must_be_one_page() {
        let mut f = valid();
        edit(f.at(3), 0, |h: &mut FlbHeader| h.pgcnt = 2);
        assert!(rejects(f, &root(SESS, FLBS)));
    }

    #[test]
    fn capacities_match_the_c_implementation() {
        assert_eq!(SessionSer::PER_BLOCK, 51);
        assert_eq!(FileSer::PER_BLOCK, 63);
        assert_eq!(MAX_FLBS, 63);
        assert_eq!(ROOT, 32);
    }

    #[test]
    fn the_writer_reads_back() {
        // Two blocks of files: 64 entries do not fit one page.
        let mut chain: Chain<Fake1, FileSer> = Chain::with_pages(KVec::new());
        for t in 0..64u64 {
            chain.push_file(b"memfd-v2", t + 1, t).unwrap();
        }
        assert_eq!(pages_for::<FileSer>(64), 2);
        let pages = chain.into_written();
        assert_eq!(pages.len(), 2);
        let h0: BlockHeader = get(&pages[0].0, 0);
        let h1: BlockHeader = get(&pages[1].0, 0);
        assert_eq!((h0.next, h0.count), (pages[1].1, 63));
        assert_eq!((h1.next, h1.count), (0, 1));
        let last: FileSer = get(&pages[1].0, file_off(0));
        assert_eq!((last.data, last.token), (64, 63));
    }

    /// The chain's headers after `n` appends: every block counts its entries, a full block
    /// links to the next, the last links nowhere, and there is no spare page.
    fn check_chain(pages: &[Fake1], n: usize) {
        assert_eq!(pages.len(), pages_for::<FileSer>(n));
        let mut seen = 0;
        for (i, p) in pages.iter().enumerate() {
            let h: BlockHeader = get(&p.0, 0);
            let next = pages.get(i + 1).map_or(0, |q| q.1);
            assert_eq!(h.next, next);
            assert!(h.count >= 1 && h.count <= FileSer::PER_BLOCK as u64);
            assert!(next == 0 || h.count == FileSer::PER_BLOCK as u64);
            for j in 0..h.count as usize {
                let e: FileSer = get(&p.0, file_off(j));
                assert_eq!(e.token, seen as u64);
                seen += 1;
            }
        }
        assert_eq!(seen, n);
    }

    #[test]
    fn the_chain_is_complete_after_every_append() {
        for n in [1usize, 62, 63, 64, 126, 127] {
            let mut chain: Chain<Fake1, FileSer> = Chain::new();
            for t in 0..n as u64 {
                chain.push_file(b"memfd-v2", 0, t).unwrap();
            }
            assert_eq!(chain.len(), n);
            // What a freeze changes is stored in place.
            chain.entry_mut(n - 1).unwrap().data = 0xfeed;
            assert!(chain.entry_mut(n).is_none());
            // A page reserved for an append that did not happen is freed again.
            chain.reserve().unwrap();
            chain.trim();
            let pages = chain.into_written();
            check_chain(&pages, n);
            let last: FileSer = get(&pages[pages.len() - 1].0, file_off((n - 1) % 63));
            assert_eq!(last.data, 0xfeed);
        }
    }

    #[test]
    fn spare_pages_hold_no_entries() {
        // Three pages reserved (as reboot's session chain is), one entry written: the slots
        // of the spares and the rest of the first page are no entries, and appends use the
        // reserved pages in order without allocating.
        let mut pages = KVec::new();
        for _ in 0..3 {
            pages.push(Fake1::alloc().unwrap(), GFP_KERNEL).unwrap();
        }
        let addrs: KVec<u64> = {
            let mut v = KVec::new();
            for p in pages.iter() {
                v.push(p.1, GFP_KERNEL).unwrap();
            }
            v
        };
        let mut chain: Chain<Fake1, FileSer> = Chain::with_pages(pages);
        chain.push_file(b"memfd-v2", 1, 0).unwrap();
        assert!(chain.entry_mut(0).is_some());
        for i in [1usize, 62, 63, 64, 126, 189, usize::MAX] {
            assert!(chain.entry_mut(i).is_none());
        }
        for t in 1..64u64 {
            chain.push_file(b"memfd-v2", 1, t).unwrap();
        }
        assert!(chain.entry_mut(63).is_some());
        assert!(chain.entry_mut(64).is_none());
        assert_eq!(chain.head(), addrs[0]);
        chain.trim();
        let pages = chain.into_written();
        check_chain(&pages, 64);
        assert_eq!(pages[1].1, addrs[1]);
    }

    #[test]
    fn a_failed_attempt_gives_back_zeroed_pages() {
        let mut chain: Chain<Fake1, FileSer> = Chain::new();
        for t in 0..70u64 {
            chain.push_file(b"memfd-v2", t, t).unwrap();
        }
        let pages = chain.into_pages();
        assert_eq!(pages.len(), 2);
        assert!(pages.iter().all(|p| p.0.iter().all(|&b| b == 0)));
        // They are written again from the start.
        let mut chain: Chain<Fake1, FileSer> = Chain::with_pages(pages);
        chain.push_file(b"memfd-v2", 1, 0).unwrap();
        let pages = chain.into_written();
        let h: BlockHeader = get(&pages[0].0, 0);
        assert_eq!((h.next, h.count), (0, 1));
    }

    /// A writer page for [`the_writer_reads_back`]: bytes and a fake address.
    struct Fake1(KVec<u8>, u64);

    impl OutMem for Fake1 {
        fn alloc() -> Result<Self> {
            let mut v = KVec::new();
            v.extend_with(PAGE_SIZE, 0u8, GFP_KERNEL)?;
            // A unique address: the buffer's own.
            let pa = v.as_ptr() as u64;
            Ok(Self(v, pa))
        }
        fn bytes(&mut self) -> &mut [u8] {
            &mut self.0
        }
        fn pa(&self) -> u64 {
            self.1
        }
    }
}
