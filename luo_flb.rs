// SPDX-License-Identifier: GPL-2.0

//! File-Lifecycle-Bound (FLB) objects: global state shared by the files of a handler.
//!
//! An FLB's outgoing object is created when the first file of a linked handler is preserved
//! and destroyed when the last one is unpreserved; its data is serialized with a count at
//! reboot. In the next kernel the incoming object is retrieved on first use and finished when
//! the count (files that held it, plus outstanding gets) drops to zero.
//!
//! The C `struct liveupdate_flb` is only read (ops, compatible); its private fields are
//! untouched, the state lives in [`FlbState`].

use kernel::{
    new_mutex,
    prelude::*,
    str::BStr,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    ffi::{
        Flb,
        Handler,
        ModuleRef, //
    },
    luo_file::{
        FlbEntry,
        Registry, //
    },
    luo_ser::COMPAT_LEN,
    Luo,
};

/// Most FLBs that fit one serialization page (the C implementation's `LUO_FLB_MAX`).
pub(crate) const FLB_MAX: usize = (kernel::page::PAGE_SIZE - 16) / 64;

/// Outgoing side of an FLB.
struct Outgoing {
    count: u64,
    data: u64,
    obj: usize,
    module: Option<ModuleRef>,
}

/// Incoming side of an FLB.
struct Incoming {
    count: u64,
    data: u64,
    obj: usize,
    /// 0: not retrieved; 1: retrieved; negative: the (sticky) retrieve error.
    status: i32,
    finished: bool,
    module: Option<ModuleRef>,
}

/// The state of one FLB.
///
/// FLB states are never dropped (the C structs they describe are static): a state whose FLB
/// went away with its module stays, is never dereferenced again (its FLB is then in no
/// handler's list, and an object of it would have pinned the module), and is told apart from
/// a new FLB at the same address by its compatible string, copied at creation.
#[pin_data]
pub(crate) struct FlbState {
    pub(crate) flb: Flb,
    compat: [u8; COMPAT_LEN],
    #[pin]
    outgoing: Mutex<Outgoing>,
    #[pin]
    incoming: Mutex<Incoming>,
}

impl FlbState {
    fn new(flb: Flb) -> impl PinInit<Self> {
        let mut compat = [0u8; COMPAT_LEN];
        let name = flb.compatible();
        let n = name.len().min(COMPAT_LEN - 1);
        compat[..n].copy_from_slice(&name[..n]);
        pin_init!(Self {
            flb,
            compat,
            outgoing <- new_mutex!(
                Outgoing {
                    count: 0,
                    data: 0,
                    obj: 0,
                    module: None,
                },
                "luo_flb::outgoing"
            ),
            incoming <- new_mutex!(
                Incoming {
                    count: 0,
                    data: 0,
                    obj: 0,
                    status: 0,
                    finished: false,
                    module: None,
                },
                "luo_flb::incoming"
            ),
        })
    }

    /// The outgoing data and count, if the FLB is preserved (for serialization).
    pub(crate) fn outgoing_record(&self) -> Option<(u64, u64)> {
        let o = self.outgoing.lock();
        (o.count > 0).then_some((o.data, o.count))
    }

    fn preserve_one(&self) -> Result {
        let mut o = self.outgoing.lock();
        if o.count == 0 {
            let module = self.flb.module_get()?;
            let (data, obj) = self.flb.preserve()?;
            o.data = data;
            o.obj = obj;
            o.module = Some(module);
        }
        o.count += 1;
        Ok(())
    }

    fn put_outgoing(&self) {
        let mut o = self.outgoing.lock();
        if o.count == 0 {
            pr_warn!(
                "FLB '{}': outgoing reference underflow\n",
                BStr::from_bytes(self.flb.compatible())
            );
            return;
        }
        o.count -= 1;
        if o.count == 0 {
            self.flb.unpreserve(o.data, o.obj);
            o.data = 0;
            o.obj = 0;
            o.module = None;
        }
    }

    /// The FLB's compatible string, as copied when the state was made.
    pub(crate) fn name(&self) -> &[u8] {
        let n = self
            .compat
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(COMPAT_LEN);
        &self.compat[..n]
    }

    /// Whether this state describes `flb`: same address, same compatible string (read from
    /// `flb`, which is live; never from the state's own, possibly stale, pointer).
    fn describes(&self, flb: &Flb) -> bool {
        let name = flb.compatible();
        self.flb.addr() == flb.addr()
            && name.len() < COMPAT_LEN
            && self.compat[..name.len()] == *name
            && self.compat[name.len()] == 0
    }

    /// Retrieves the incoming object on first use; the caller holds the lock.
    fn retrieve_locked(&self, luo: &Luo, i: &mut Incoming) -> Result {
        if i.finished {
            return Err(ENODATA);
        }
        if i.status < 0 {
            return Err(Error::from_errno(i.status));
        }
        if i.status > 0 {
            return Ok(());
        }
        let (data, count) = luo.take_incoming_flb(self.flb.compatible())?;
        i.data = data;
        i.count = count;
        let module = self.flb.module_get()?;
        match self.flb.retrieve(data) {
            Ok(obj) => {
                i.obj = obj;
                i.module = Some(module);
                i.status = 1;
                Ok(())
            }
            Err(e) => {
                i.status = e.to_errno();
                Err(e)
            }
        }
    }

    fn put_incoming(&self, luo: &Luo) {
        let mut i = self.incoming.lock();
        // A file can finish before anybody asked for the object: retrieve it now, so the
        // count starts from what the previous kernel recorded (the C implementation
        // underflows its refcount here).
        if let Err(e) = self.retrieve_locked(luo, &mut i) {
            pr_warn!(
                "FLB '{}': cannot retrieve incoming object: {:?}\n",
                BStr::from_bytes(self.flb.compatible()),
                e
            );
            return;
        }
        if i.count == 0 {
            pr_warn!(
                "FLB '{}': incoming reference underflow\n",
                BStr::from_bytes(self.flb.compatible())
            );
            return;
        }
        i.count -= 1;
        if i.count == 0 {
            self.flb.finish(i.data, i.obj);
            i.data = 0;
            i.obj = 0;
            i.finished = true;
            i.module = None;
        }
    }
}

/// Registers `flb` with the handler at `fh` (`liveupdate_register_flb()`).
pub(crate) fn register(luo: &Luo, fh: usize, flb: Flb) -> Result {
    let mut reg = luo.registry.lock();
    let Some(hi) = reg.handlers.iter().position(|e| e.handler.addr() == fh) else {
        pr_warn!("cannot register an FLB with a file handler that is not registered\n");
        return Err(EINVAL);
    };
    if reg.handlers[hi]
        .flbs
        .iter()
        .any(|s| s.flb.addr() == flb.addr())
    {
        return Err(EEXIST);
    }
    reg.handlers[hi].flbs.reserve(1, GFP_KERNEL)?;
    let state = match reg
        .flbs
        .iter_mut()
        .find(|e| e.state.flb.addr() == flb.addr())
    {
        Some(e) => {
            e.users += 1;
            e.state.clone()
        }
        None => {
            if reg.flbs.len() >= FLB_MAX {
                return Err(ENOSPC);
            }
            if reg
                .flbs
                .iter()
                .any(|e| e.state.flb.compatible() == flb.compatible())
            {
                return Err(EEXIST);
            }
            // An FLB asked for its incoming object before registration keeps its state.
            let state = known_state(luo, flb)?;
            reg.flbs.push(
                FlbEntry {
                    state: state.clone(),
                    users: 1,
                },
                GFP_KERNEL,
            )?;
            state
        }
    };
    // Cannot fail: capacity was reserved above.
    reg.handlers[hi].flbs.push(state, GFP_KERNEL)?;
    Ok(())
}

/// Drops one handler's link to an FLB; the FLB leaves the global list with its last user.
pub(crate) fn unlink(reg: &mut Registry, state: &Arc<FlbState>) {
    let Some(i) = reg.flbs.iter().position(|e| Arc::ptr_eq(&e.state, state)) else {
        return;
    };
    reg.flbs[i].users -= 1;
    if reg.flbs[i].users == 0 {
        let _ = reg.flbs.remove(i);
    }
}

/// Unregisters `flb` from the handler at `fh`.
pub(crate) fn unregister(luo: &Luo, fh: usize, flb: usize) {
    let mut reg = luo.registry.lock();
    let found = reg
        .handlers
        .iter()
        .position(|e| e.handler.addr() == fh)
        .and_then(|hi| {
            let fi = reg.handlers[hi]
                .flbs
                .iter()
                .position(|s| s.flb.addr() == flb)?;
            Some((hi, fi))
        });
    let Some((hi, fi)) = found else {
        pr_warn!("Failed to unregister FLB: not found in file handler\n");
        return;
    };
    if let Ok(state) = reg.handlers[hi].flbs.remove(fi) {
        unlink(&mut reg, &state);
    }
}

/// The state of `flb` (a live FLB), created on first use.
fn known_state(luo: &Luo, flb: Flb) -> Result<Arc<FlbState>> {
    let mut states = luo.flb_states.lock();
    if let Some(s) = states.iter().rev().find(|s| s.describes(&flb)) {
        return Ok(s.clone());
    }
    states.reserve(1, GFP_KERNEL)?;
    let state = Arc::pin_init(FlbState::new(flb), GFP_KERNEL)?;
    states.push(state.clone(), GFP_KERNEL)?;
    Ok(state)
}

/// The newest state of an FLB at `addr`, registered or not, if one was ever seen (the C API's
/// put and get functions may be passed any pointer: it is only compared).
fn find(luo: &Luo, addr: usize) -> Option<Arc<FlbState>> {
    luo.flb_states
        .lock()
        .iter()
        .rev()
        .find(|s| s.flb.addr() == addr)
        .cloned()
}

/// `liveupdate_flb_get_outgoing()`.
pub(crate) fn get_outgoing(luo: &Luo, addr: usize) -> Result<usize> {
    let state = find(luo, addr).ok_or(ENOENT)?;
    let mut o = state.outgoing.lock();
    if o.count == 0 {
        return Err(ENOENT);
    }
    o.count = o.count.checked_add(1).ok_or(EOVERFLOW)?;
    Ok(o.obj)
}

/// `liveupdate_flb_put_outgoing()`.
pub(crate) fn put_outgoing(luo: &Luo, addr: usize) {
    if let Some(state) = find(luo, addr) {
        state.put_outgoing();
    }
}

/// `liveupdate_flb_get_incoming()`: also for an FLB that is not registered (yet), as in C
/// (`lib/tests/liveupdate.c` asks before it registers, to retrieve early).
pub(crate) fn get_incoming(luo: &Luo, flb: Flb) -> Result<usize> {
    let state = known_state(luo, flb)?;
    let mut i = state.incoming.lock();
    state.retrieve_locked(luo, &mut i)?;
    // The count started from the previous kernel's record: checked.
    i.count = i.count.checked_add(1).ok_or(EOVERFLOW)?;
    Ok(i.obj)
}

/// `liveupdate_flb_put_incoming()`.
pub(crate) fn put_incoming(luo: &Luo, addr: usize) {
    if let Some(state) = find(luo, addr) {
        state.put_incoming(luo);
    }
}

/// FLBs, each with a reference on its module: valid with no lock held.
pub(crate) type Pinned = KVec<(Arc<FlbState>, ModuleRef)>;

/// The FLBs linked to a registered handler. `ENOENT` if the handler is not registered; an FLB
/// whose module is going away fails the whole call with `ENODEV`, or with `skip_going` is
/// left out.
pub(crate) fn linked(luo: &Luo, handler: &Handler, skip_going: bool) -> Result<Pinned> {
    let reg = luo.registry.lock();
    let entry = reg
        .handlers
        .iter()
        .find(|e| e.handler.addr() == handler.addr())
        .ok_or(ENOENT)?;
    let mut v = KVec::with_capacity(entry.flbs.len(), GFP_KERNEL)?;
    for s in entry.flbs.iter() {
        match s.flb.module_get() {
            Ok(module) => v.push((s.clone(), module), GFP_KERNEL)?,
            Err(_) if skip_going => {}
            Err(e) => return Err(e),
        }
    }
    Ok(v)
}

/// Takes an outgoing reference on each FLB of a file being preserved; all or nothing. Returns
/// the FLBs the file now holds.
pub(crate) fn file_preserve(flbs: Pinned) -> Result<KVec<Arc<FlbState>>> {
    let mut held = KVec::with_capacity(flbs.len(), GFP_KERNEL)?;
    for (s, _module) in flbs.into_iter() {
        if let Err(e) = s.preserve_one() {
            file_unpreserve(&held);
            return Err(e);
        }
        // Cannot fail: capacity was reserved above.
        if let Err(e) = held.push(s, GFP_KERNEL) {
            file_unpreserve(&held);
            return Err(e.into());
        }
    }
    Ok(held)
}

/// Drops the outgoing references of an unpreserved file, in reverse order.
pub(crate) fn file_unpreserve(flbs: &[Arc<FlbState>]) {
    for s in flbs.iter().rev() {
        s.put_outgoing();
    }
}

/// The FLBs of the handlers of a set of incoming files, taken before any file finishes so
/// that finishing allocates nothing (FINISH is all or nothing).
pub(crate) struct FinishFlbs(KVec<(usize, Pinned)>);

impl FinishFlbs {
    pub(crate) fn new() -> Self {
        Self(KVec::new())
    }

    /// Takes the FLBs now linked to `handler`, once per handler. A handler that is no longer
    /// registered has none.
    pub(crate) fn add(&mut self, luo: &Luo, handler: &Handler) -> Result {
        if self.0.iter().any(|(h, _)| *h == handler.addr()) {
            return Ok(());
        }
        let flbs = match linked(luo, handler, true) {
            Ok(flbs) => flbs,
            Err(e) if e == ENOENT => KVec::new(),
            Err(e) => return Err(e),
        };
        self.0.push((handler.addr(), flbs), GFP_KERNEL)?;
        Ok(())
    }

    /// Drops a finished file's incoming reference on each FLB linked to its handler, in
    /// reverse order, as C does at finish.
    pub(crate) fn file_finish(&self, luo: &Luo, handler: &Handler) {
        if let Some((_, flbs)) = self.0.iter().find(|(h, _)| *h == handler.addr()) {
            for (s, _) in flbs.iter().rev() {
                s.put_incoming(luo);
            }
        }
    }
}
