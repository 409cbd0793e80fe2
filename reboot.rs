// SPDX-License-Identifier: GPL-2.0

//! Crossing kexec: the outgoing hand-over, set up at late boot and written at
//! `liveupdate_reboot()`.

use kernel::{
    prelude::*,
    rbtree::RBTree,
    str::BStr,
    sync::Arc, //
};

use crate::{
    abi::SessionSer,
    fault, kho,
    ser::{
        self,
        Chain, //
    },
    session::{
        Luo,
        Outgoing,
        Session,
        Sessions, //
    },
};

/// Sets up what the next kernel will find: the root ("luo-v5", the next update number, no
/// sessions yet) published as the "LUO" KHO subtree, and an empty FLB page.
pub(crate) fn setup_outgoing(luo: &Luo) -> Result {
    let mut flbs = kho::OutPage::new()?;
    ser::init_flb_page(flbs.bytes());
    let mut root = kho::OutPage::new()?;
    ser::write_root(root.bytes(), luo.liveupdate_num, flbs.pa());
    let root = kho::Published::new(root, ser::ROOT)?;
    luo.sessions.lock().out = Some(Outgoing { root, flbs });
    Ok(())
}

/// Undoes the freeze of the sessions before the one of `seq`, in reverse order, after a later
/// part of the reboot failed.
fn unfreeze_before(outgoing: &mut RBTree<u64, Arc<Session>>, seq: u64) {
    let Some(mut cursor) = outgoing.cursor_lower_bound_mut(&seq) else {
        return;
    };
    while let Some(prev) = cursor.move_prev() {
        cursor = prev;
        cursor.current().1.inner.lock().files.unfreeze();
    }
}

/// `liveupdate_reboot()`: closes the reboot gate (waiting for ioctls and closes in flight to
/// finish), freezes every outgoing session's files in preservation order and writes sessions,
/// files and FLBs for the next kernel. All or nothing: on failure everything frozen is
/// unfrozen, nothing is published, the gate opens again and the error goes back to
/// reboot(2). On success the gate stays shut: every later ioctl gets `EBUSY`, and a session
/// closed before the kexec stays as it was handed over.
///
/// The file chains were written as files were preserved (a freeze stores the data it returns
/// only if it changed); the session chain is written into the pages reserved as sessions were
/// created.
/// Nothing is allocated here unless those ran short, and nothing is freed.
pub(crate) fn serialize(luo: &Luo) -> Result {
    let Some(closed) = luo.gate.close() else {
        return Ok(());
    };
    serialize_closed(luo)?;
    closed.serialized();
    fault::after_serialize(luo.liveupdate_num)
}

/// [`serialize`] with the gate closed: nothing else changes sessions or files meanwhile.
fn serialize_closed(luo: &Luo) -> Result {
    let mut guard = luo.sessions.lock();
    let Sessions {
        outgoing,
        pool,
        out,
        ..
    } = &mut *guard;
    let Some(out) = out.as_mut() else {
        return Ok(());
    };
    fault::reboot_starts();
    // The file chains were written as files were preserved: a session costs its files'
    // freezes and one entry here.
    let mut chain = Chain::<_, SessionSer>::with_pages(core::mem::take(pool));
    let mut failed = None;
    for (seq, s) in outgoing.iter() {
        let mut inner = s.inner.lock();
        let res = inner.files.freeze().and_then(|()| {
            let (head, count) = inner.files.file_chain();
            chain
                .push_session(&s.name, head, count)
                .inspect_err(|_| inner.files.unfreeze())
        });
        if let Err(e) = res {
            failed = Some((*seq, s.name, e));
            break;
        }
    }
    if let Some((seq, name, e)) = failed {
        unfreeze_before(outgoing, seq);
        *pool = chain.into_pages();
        pr_err!(
            "live update refused: session [{}] could not be serialized: {:?}\n",
            BStr::from_bytes(name.as_bytes()),
            e
        );
        return Err(e);
    }

    // Nothing can fail from here on.
    // The registered FLBs' records, read without their locks (see `outgoing_record`).
    let mut n_flbs = 0;
    let page = out.flbs.bytes();
    luo.core.registry.for_each_flb(|state| {
        if let Some((data, count)) = state.outgoing_record() {
            ser::write_flb(page, n_flbs, state.name(), data, count);
            n_flbs += 1;
        }
    });
    ser::set_flb_count(page, n_flbs);
    ser::set_root_sessions(out.root.bytes(), chain.head());
    let kind = fault::damage_kind();
    if !kind.is_empty() {
        let data = outgoing
            .values()
            .next()
            .and_then(|s| s.inner.lock().files.first_data());
        ser::damage(
            kind,
            out.root.bytes(),
            chain.first_block(),
            out.flbs.bytes(),
            data,
        );
    }
    // `pool` was taken above and is empty: forgetting it frees nothing, and spares reboot a
    // call to free an empty vector.
    core::mem::forget(core::mem::replace(pool, chain.into_written()));
    Ok(())
}
