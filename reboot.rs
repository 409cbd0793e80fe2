// SPDX-License-Identifier: GPL-2.0

//! Crossing kexec: the outgoing hand-over, set up at late boot and written at
//! `liveupdate_reboot()`.

use kernel::{
    prelude::*,
    str::BStr,
    sync::Arc, //
};

use crate::{
    abi::{
        FileSer,
        SessionSer, //
    },
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

/// Undoes the freeze of `done` (in reverse) after a later part of the reboot failed; the
/// pages their file chains were written to are zeroed for the next attempt.
fn unfreeze_all(done: &mut KVVec<&Arc<Session>>) {
    while let Some(s) = done.pop() {
        let mut inner = s.inner.lock();
        inner.files.unfreeze();
        inner.files.zero_pool();
    }
}

/// `liveupdate_reboot()`: closes the reboot gate (waiting for ioctls and closes in flight to
/// finish), freezes every outgoing session's files in preservation order and writes sessions,
/// files and FLBs for the next kernel. All or nothing: on failure everything frozen is
/// unfrozen, nothing is published, the gate opens again and the error goes back to
/// reboot(2). On success the gate stays shut: every later ioctl gets `EBUSY`, and a session
/// closed before the kexec stays as it was handed over.
///
/// The chains are written into the pages reserved as sessions were created and files were
/// preserved, and stay there: nothing is allocated here unless those ran short (the list of
/// frozen sessions aside), and nothing is freed.
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
        n_outgoing,
        pool,
        out,
        ..
    } = &mut *guard;
    let Some(out) = out.as_mut() else {
        return Ok(());
    };
    fault::reboot_starts();
    // The registered FLBs, copied: their records are written at the end, without the registry
    // lock (FLB locks are never taken under it).
    let flbs = luo.core.registry.registered_flbs()?;
    let mut done = KVVec::with_capacity(*n_outgoing, GFP_KERNEL)?;
    let mut chain = Chain::<_, SessionSer>::with_pages(core::mem::take(pool));
    for s in outgoing.values() {
        let mut inner = s.inner.lock();
        let mut files = Chain::<_, FileSer>::with_pages(inner.files.take_pool());
        let res = inner.files.freeze(&mut files).and_then(|()| {
            chain
                .push_session(&s.name, &files)
                .inspect_err(|_| inner.files.unfreeze())
        });
        let res = match res {
            Ok(()) => {
                inner.files.restore_pool(files.into_written());
                // Cannot fail: capacity for every session was reserved above.
                done.push(s, GFP_KERNEL).map_err(|e| {
                    inner.files.unfreeze();
                    inner.files.zero_pool();
                    Error::from(e)
                })
            }
            Err(e) => {
                inner.files.restore_pool(files.into_pages());
                Err(e)
            }
        };
        drop(inner);
        if let Err(e) = res {
            unfreeze_all(&mut done);
            *pool = chain.into_pages();
            pr_err!(
                "live update refused: session [{}] could not be serialized: {:?}\n",
                BStr::from_bytes(s.name.as_bytes()),
                e
            );
            return Err(e);
        }
    }

    // Nothing can fail from here on.
    let mut n_flbs = 0;
    let page = out.flbs.bytes();
    for state in flbs.iter() {
        if let Some((data, count)) = state.outgoing_record() {
            ser::write_flb(page, n_flbs, state.name(), data, count);
            n_flbs += 1;
        }
    }
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
    *pool = chain.into_written();
    Ok(())
}
