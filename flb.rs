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
        atomic::{
            ordering::{
                Acquire,
                Full,
                Release, //
            },
            Atomic,
        },
        Arc,
        Mutex, //
    },
};

use crate::{
    abi::Compat,
    cabi::{
        Flb,
        ModuleRef, //
    },
    kho,
    ser::{
        self,
        InFlb,
        Invalid, //
    },
};

/// The FLB records the previous kernel handed over.
enum Records {
    /// Not read yet (the page, checked at boot, is [`Flbs::handed`]); `settled` if the page
    /// is to be given back as soon as it is read (the other pages were, while memory ran out).
    Unread { settled: bool },
    /// Read into `table` (empty if the hand-over had no FLB page); `page` (0 if none) is
    /// given back with the hand-over's other pages, by [`Flbs::settle`].
    Read { table: KVec<InFlb>, page: u64 },
}

/// Every FLB state ever made, and the FLB records the previous kernel handed over.
#[pin_data]
pub(crate) struct Flbs {
    /// Every FLB state ever created, registered or only asked for its incoming object.
    #[pin]
    states: Mutex<KVec<Arc<FlbState>>>,
    /// The previous kernel's FLB records.
    #[pin]
    records: Mutex<Records>,
    /// The hand-over's FLB page (0 if it had none), or `None` if there was no valid
    /// hand-over. Set at boot, before anybody can see the state.
    handed: Option<u64>,
}

impl Flbs {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            states <- new_mutex!(KVec::new(), "luo_flb::states"),
            records <- new_mutex!(Records::Unread { settled: false }, "luo_flb::records"),
            handed: None,
        })
    }

    /// Takes the FLB page of a valid hand-over (0 if it had none), at boot, before any FLB
    /// use: its records are read at their first use, and give the page back
    /// ([`Flbs::settle`]).
    pub(crate) fn receive(self: Pin<&mut Self>, page: u64) {
        *self.project().handed = Some(page);
    }

    /// The data and count the previous kernel recorded for the FLB `compatible`, once per
    /// boot: an FLB whose module was unloaded and loaded again gets `ENODATA` (its object was
    /// retrieved already).
    fn take_incoming(&self, compatible: &[u8]) -> Result<(u64, u64)> {
        let mut records = self.records.lock();
        let f = self
            .read(&mut records)?
            .iter()
            .find(|f| f.name.as_bytes() == compatible)
            .ok_or(ENOENT)?;
        f.taken.cmpxchg(false, true, Full).map_err(|_| ENODATA)?;
        Ok((f.data, f.count))
    }

    /// Reads the FLB records now if they were not read yet: `ENOMEM` if their table cannot be
    /// allocated. Called where a first use could not fail (a file's finish).
    pub(crate) fn read_records(&self) -> Result {
        match self.read(&mut self.records.lock()) {
            Err(e) if e == ENOMEM => Err(e),
            _ => Ok(()),
        }
    }

    /// Gives the FLB page back with the hand-over's other pages, once no incoming session is
    /// left (a handler that shares it by mistake has taken its own pages by then), after
    /// reading the records if they were not. If memory runs out for them, the page is kept
    /// and read, then given back, at the next use of an FLB.
    pub(crate) fn settle(&self) {
        let mut records = self.records.lock();
        match &mut *records {
            Records::Unread { settled } => {
                *settled = true;
                let _ = self.read(&mut records);
            }
            Records::Read { page, .. } => {
                let pa = core::mem::take(page);
                if pa != 0 {
                    kho::release(pa);
                }
            }
        }
    }

    /// The FLB records, read from their page if they were not yet; `ENODATA` if there was no
    /// hand-over, `ENOMEM` (the page kept, to be read later) if the table cannot be
    /// allocated.
    fn read<'a>(&self, records: &'a mut Records) -> Result<&'a KVec<InFlb>> {
        if let Records::Unread { settled } = *records {
            let pa = self.handed.ok_or(ENODATA)?;
            // The page was checked at boot: it reads the same unless the hand-over was damaged
            // (a handler took or writes a page it shares with our records).
            let table = match pa {
                0 => KVec::new(),
                pa => match kho::Peeked::new(pa) {
                    Ok(page) => match ser::read_flbs(page.bytes()) {
                        Ok(table) => table,
                        Err(Invalid(_, e)) if e == ENOMEM => return Err(ENOMEM),
                        Err(Invalid(why, _)) => {
                            pr_err!(
                                "the FLB records of the previous kernel are dropped: {}\n",
                                why
                            );
                            KVec::new()
                        }
                    },
                    Err(e) => {
                        pr_err!("the FLB page of the previous kernel was taken: {:?}\n", e);
                        KVec::new()
                    }
                },
            };
            let page = match settled {
                true => {
                    if pa != 0 {
                        kho::release(pa);
                    }
                    0
                }
                false => pa,
            };
            *records = Records::Read { table, page };
        }
        match records {
            Records::Read { table, .. } => Ok(table),
            _ => Err(ENODATA),
        }
    }

    /// The state of `flb` (a live FLB), created on first use.
    pub(crate) fn known_state(&self, flb: Flb) -> Result<Arc<FlbState>> {
        let mut states = self.states.lock();
        if let Some(s) = states.iter().rev().find(|s| s.describes(&flb)) {
            return Ok(s.clone());
        }
        states.reserve(1, GFP_KERNEL)?;
        let state = Arc::pin_init(FlbState::new(flb), GFP_KERNEL)?;
        states.push(state.clone(), GFP_KERNEL)?;
        Ok(state)
    }

    /// The newest state of an FLB at `addr`, registered or not, if one was ever seen (the C
    /// API's put and get functions may be passed any pointer: it is only compared).
    fn find(&self, addr: usize) -> Option<Arc<FlbState>> {
        self.states
            .lock()
            .iter()
            .rev()
            .find(|s| s.flb.addr() == addr)
            .cloned()
    }
}

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
    compat: Compat,
    #[pin]
    outgoing: Mutex<Outgoing>,
    /// The outgoing count and data, stored under `outgoing`'s lock at every change, for
    /// reboot to read without that lock (see [`FlbState::outgoing_record`]).
    record_count: Atomic<u64>,
    record_data: Atomic<u64>,
    #[pin]
    incoming: Mutex<Incoming>,
}

impl FlbState {
    fn new(flb: Flb) -> impl PinInit<Self> {
        let compat = Compat::truncated(flb.compatible());
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
            record_count: Atomic::new(0),
            record_data: Atomic::new(0),
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

    /// Stores the outgoing count and data for [`FlbState::outgoing_record`]; the caller holds
    /// `outgoing`'s lock. The data goes first when the count becomes non-zero, last when it
    /// becomes zero.
    fn publish(&self, o: &Outgoing) {
        if o.count == 0 {
            self.record_count.store(0, Release);
            self.record_data.store(o.data, Release);
        } else {
            self.record_data.store(o.data, Release);
            self.record_count.store(o.count, Release);
        }
    }

    /// The outgoing data and count, if the FLB is preserved, read without the FLB's lock:
    /// reboot reads them under the registry's lock, under which no FLB lock may be taken.
    /// With the reboot gate shut no file preserves or unpreserves, so the data only changes
    /// when a module's last put drops the count to zero, which is stored before the object
    /// goes: a count still non-zero after the data was read vouches for it. Every earlier
    /// publication happened before the gate was shut, so the data read is at least that new.
    /// (A module's get or put racing reboot makes the count a moment's, as in C.)
    pub(crate) fn outgoing_record(&self) -> Option<(u64, u64)> {
        let data = self.record_data.load(Acquire);
        let count = self.record_count.load(Acquire);
        (count > 0).then_some((data, count))
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
        self.publish(&o);
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
        // Before the object goes: reboot no longer records it.
        self.publish(&o);
        if o.count == 0 {
            self.flb.unpreserve(o.data, o.obj);
            o.data = 0;
            o.obj = 0;
            o.module = None;
            self.publish(&o);
        }
    }

    /// The FLB's compatible string, as copied when the state was made.
    pub(crate) fn name(&self) -> &Compat {
        &self.compat
    }

    /// Whether this state describes `flb`: same address, same compatible string (read from
    /// `flb`, which is live; never from the state's own, possibly stale, pointer).
    fn describes(&self, flb: &Flb) -> bool {
        self.flb.addr() == flb.addr() && self.compat.as_bytes() == flb.compatible()
    }

    /// Retrieves the incoming object on first use; the caller holds the lock.
    fn retrieve_locked(&self, flbs: &Flbs, i: &mut Incoming) -> Result {
        if i.finished {
            return Err(ENODATA);
        }
        if i.status < 0 {
            return Err(Error::from_errno(i.status));
        }
        if i.status > 0 {
            return Ok(());
        }
        let (data, count) = flbs.take_incoming(self.flb.compatible())?;
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

    /// Drops one incoming reference; the last one finishes the object.
    pub(crate) fn put_incoming(&self, flbs: &Flbs) {
        let mut i = self.incoming.lock();
        // A file can finish before anybody asked for the object: retrieve it now, so the
        // count starts from what the previous kernel recorded (the C implementation
        // underflows its refcount here).
        if let Err(e) = self.retrieve_locked(flbs, &mut i) {
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

/// `liveupdate_flb_get_outgoing()`.
pub(crate) fn get_outgoing(flbs: &Flbs, addr: usize) -> Result<usize> {
    let state = flbs.find(addr).ok_or(ENOENT)?;
    let mut o = state.outgoing.lock();
    if o.count == 0 {
        return Err(ENOENT);
    }
    o.count = o.count.checked_add(1).ok_or(EOVERFLOW)?;
    state.publish(&o);
    Ok(o.obj)
}

/// `liveupdate_flb_put_outgoing()`.
pub(crate) fn put_outgoing(flbs: &Flbs, addr: usize) {
    if let Some(state) = flbs.find(addr) {
        state.put_outgoing();
    }
}

/// `liveupdate_flb_get_incoming()`: also for an FLB that is not registered (yet), as in C
/// (`lib/tests/liveupdate.c` asks before it registers, to retrieve early).
pub(crate) fn get_incoming(flbs: &Flbs, flb: Flb) -> Result<usize> {
    let state = flbs.known_state(flb)?;
    let mut i = state.incoming.lock();
    state.retrieve_locked(flbs, &mut i)?;
    // The count started from the previous kernel's record: checked.
    i.count = i.count.checked_add(1).ok_or(EOVERFLOW)?;
    Ok(i.obj)
}

/// `liveupdate_flb_put_incoming()`.
pub(crate) fn put_incoming(flbs: &Flbs, addr: usize) {
    if let Some(state) = flbs.find(addr) {
        state.put_incoming(flbs);
    }
}

/// FLBs, each with a reference on its module: valid with no lock held.
pub(crate) type Pinned = KVec<(Arc<FlbState>, ModuleRef)>;

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
