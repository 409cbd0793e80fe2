// SPDX-License-Identifier: GPL-2.0

//! Damage to a written hand-over, for the tests of the reader (`luo_rs_damage=`, see
//! `fault`): reboot calls it only when that parameter names a field.

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    str::BStr, //
};

use super::{
    entry_off,
    flb_off,
    out::{
        root_of,
        set_flb_header, //
    },
    read,
    write, //
};
use crate::abi::{
    BlockHeader,
    Entry,
    FlbHeader,
    FlbSer,
    SessionSer,
    MAX_FLBS,
    NAME_LEN, //
};

/// Damages a field of the written hand-over, for the tests of the reader
/// (`luo_rs_damage=`, see `fault`): `compat`, `count`, `chain`, `name`, `flbcount`,
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
    let mut r = root_of(root);
    let hdr = |b: &[u8]| read::<BlockHeader>(b, 0).unwrap_or_default();
    let flb_hdr = read::<FlbHeader>(flbs, 0).unwrap_or_default();
    match (kind, sessions) {
        (b"", _) => return,
        (b"compat", _) => {
            r.compatible[0] = b'X';
            write(root, 0, &r);
        }
        (b"count", Some((b, _))) => {
            let h = BlockHeader::new(hdr(&*b).next, SessionSer::PER_BLOCK as u64 + 1);
            write(b, 0, &h);
        }
        (b"chain", Some((b, pa))) => write(b, 0, &BlockHeader::new(pa, hdr(&*b).count)),
        (b"name", Some((b, _))) => {
            let mut s = read::<SessionSer>(b, entry_off::<SessionSer>(0)).unwrap_or_default();
            s.name = [b'X'; NAME_LEN];
            write(b, entry_off::<SessionSer>(0), &s);
        }
        (b"flbcount", _) => set_flb_header(flbs, MAX_FLBS as u64 + 1),
        (b"bootnum", _) => {
            r.liveupdate_num = u64::MAX;
            write(root, 0, &r);
        }
        (b"flbcount_max", _) if flb_hdr.count > 0 => {
            let mut e = read::<FlbSer>(flbs, flb_off(0)).unwrap_or_default();
            e.count = u64::MAX;
            write(flbs, flb_off(0), &e);
        }
        (b"shared_block", Some((_, pa))) => {
            r.flbs_pa = pa;
            write(root, 0, &r);
        }
        (b"foreign_page", Some((b, _))) if file_data.is_some() => {
            let next = file_data.unwrap_or(0) & !(PAGE_SIZE as u64 - 1);
            write(b, 0, &BlockHeader::new(next, hdr(&*b).count));
        }
        _ => {
            pr_warn!(
                "fault injection: cannot damage the hand-over ({}): nothing to damage\n",
                BStr::from_bytes(kind)
            );
            return;
        }
    }
    pr_warn!(
        "fault injection: damaged the hand-over ({})\n",
        BStr::from_bytes(kind)
    );
}
