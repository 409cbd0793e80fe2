// SPDX-License-Identifier: GPL-2.0

//! Live Update Orchestrator (LUO), in Rust.
//!
//! A drop-in replacement for `kernel/liveupdate/luo_*.c`: the same uAPI (`/dev/liveupdate`),
//! the same in-kernel API (`<linux/liveupdate.h>`) and the same serialized hand-over format
//! ("luo-v5" in Kexec HandOver memory). See `Documentation/` in the repository for the design
//! and for every deliberate difference from the C implementation.
//!
//! Modules: [`luo_ioctl`] (size-headed ioctls and op tables), [`luo_session`] (sessions and
//! their fds), [`luo_file`] (preserved files, handler registry), [`luo_flb`] (FLBs), [`kho`]
//! (Kexec HandOver memory, the only module that touches physical addresses) and [`ffi`] (the
//! C boundary: exported API, handler and FLB callbacks, session `file_operations`).
//!
//! # Lock order
//!
//! `Luo::incoming_built` → `Luo::sessions` → `Session::inner` → `Luo::registry` →
//! `FlbState::{outgoing, incoming}` → `Luo::flb_states`, and `Session::inner` →
//! `Luo::preserved`. `Luo::registry` is never held with an FLB state's lock (reboot copies
//! the registered FLBs first), so FLB callbacks, which run under their FLB's lock, may call
//! the FLB API for other FLBs. The reboot gate's lock (`luo_gate::Gate`),
//! `Luo::handover_pages` and `Luo::preserved` are leaves.
//!
//! Every ioctl effect and every close runs inside the reboot gate (never a user-memory access
//! there), so reboot, which closes the gate and waits, never sees an operation half done.
//! File handler callbacks run with at most `Session::inner` held (never `Luo::registry`:
//! handlers are taken from it with a reference on their module), so they may call the FLB
//! API; FLB callbacks run under their own FLB's lock. Nothing runs under a spinlock.

#![crate_name = "liveupdate"]

use core::pin::Pin;

use kernel::{
    ffi::c_int,
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::{
        atomic::{
            ordering::{
                Acquire,
                Full,
                Relaxed,
                Release, //
            },
            Atomic,
        },
        Arc,
        Mutex,
        SetOnce, //
    },
};

mod ffi;
mod kho;
mod luo_fault;
mod luo_file;
mod luo_flb;
mod luo_gate;
mod luo_ioctl;
mod luo_ser;
mod luo_session;

pub(crate) use ffi::LocalModule;

use luo_file::Registry;
use luo_flb::FlbState;
use luo_gate::Gate;
use luo_ser::{
    HandOver,
    Invalid, //
};
use luo_session::Sessions;

const __LOG_PREFIX: &[u8] = b"luo\0";

/// The state of live update in this kernel. It exists only when live update is enabled.
#[pin_data]
pub(crate) struct Luo {
    /// Every session, and the outgoing hand-over.
    #[pin]
    pub(crate) sessions: Mutex<Sessions>,
    /// File handlers and FLBs.
    #[pin]
    pub(crate) registry: Mutex<Registry>,
    /// Every FLB state ever created, registered or only asked for its incoming object.
    #[pin]
    pub(crate) flb_states: Mutex<KVec<Arc<FlbState>>>,
    /// Ids of the objects behind preserved (and retrieved, not yet finished) files.
    #[pin]
    pub(crate) preserved: Mutex<RBTree<usize, ()>>,
    /// `/dev/liveupdate` is open (it is single-open).
    device_open: Atomic<bool>,
    /// The validated hand-over of the previous kernel, if there was one.
    handover: Option<HandOver>,
    /// The incoming sessions were built from `handover`.
    #[pin]
    incoming_built: Mutex<bool>,
    /// The pages of `handover`, until the sessions they described are gone.
    #[pin]
    handover_pages: Mutex<KVVec<u64>>,
    /// Reboot's exclusion of ioctls and closes.
    #[pin]
    pub(crate) gate: Gate,
    /// This kernel's live update number: the previous kernel's plus one.
    pub(crate) liveupdate_num: u64,
}

impl Luo {
    fn new(mut handover: Option<HandOver>) -> impl PinInit<Self> {
        // The parser checked that the previous number has a successor.
        let liveupdate_num = handover
            .as_ref()
            .map_or(0, |h| h.liveupdate_num)
            .saturating_add(1);
        let pages = handover
            .as_mut()
            .map_or_else(KVVec::new, |h| core::mem::take(&mut h.pages));
        pin_init!(Self {
            sessions <- new_mutex!(Sessions::new(), "luo::sessions"),
            registry <- new_mutex!(Registry::new(), "luo::registry"),
            flb_states <- new_mutex!(KVec::new(), "luo::flb_states"),
            preserved <- new_mutex!(RBTree::new(), "luo::preserved"),
            device_open: Atomic::new(false),
            handover,
            incoming_built <- new_mutex!(false, "luo::incoming_built"),
            handover_pages <- new_mutex!(pages, "luo::handover_pages"),
            gate <- Gate::new(),
            liveupdate_num,
        })
    }

    /// Gives the hand-over's pages back to the allocator once no incoming session is left
    /// (the sessions' handlers have taken their own pages by then, so a page our records
    /// shared with one by mistake is theirs, and is skipped).
    pub(crate) fn release_handover_pages(&self) {
        let built = *self.incoming_built.lock();
        if !built || !self.sessions.lock().incoming.is_empty() {
            return;
        }
        let pages = core::mem::take(&mut *self.handover_pages.lock());
        for pa in pages.iter() {
            kho::release(*pa);
        }
    }

    /// The data and count the previous kernel recorded for the FLB `compatible`, once per boot:
    /// an FLB whose module was unloaded and loaded again gets `ENODATA` (its object was
    /// retrieved already).
    pub(crate) fn take_incoming_flb(&self, compatible: &[u8]) -> Result<(u64, u64)> {
        let handover = self.handover.as_ref().ok_or(ENODATA)?;
        let f = handover
            .flbs
            .iter()
            .find(|f| f.name.as_bytes() == compatible)
            .ok_or(ENOENT)?;
        f.taken.cmpxchg(false, true, Full).map_err(|_| ENODATA)?;
        Ok((f.data, f.count))
    }

    /// Builds the incoming sessions on first use. A failure (out of memory) is returned
    /// to the opener and the build is retried at the next open: sessions already built
    /// are kept, none is lost to a transient failure.
    fn build_incoming(&'static self) -> Result {
        let mut built = self.incoming_built.lock();
        if *built {
            return Ok(());
        }
        if let Some(h) = self.handover.as_ref() {
            luo_session::build_incoming(self, h).inspect_err(|e| {
                pr_err!(
                    "failed to set up the incoming sessions (retried at the next open): {:?}\n",
                    e
                )
            })?;
        }
        *built = true;
        drop(built);
        self.release_handover_pages();
        Ok(())
    }
}

/// The hand-over parser's page source: pages KHO preserved, read in place.
struct KhoPages(Option<kho::Peeked>);

impl luo_ser::PageSource for KhoPages {
    fn page(&mut self, pa: u64) -> Result<&[u8]> {
        Ok(self.0.insert(kho::Peeked::new(pa)?).bytes())
    }
}

/// Reads and validates the previous kernel's hand-over, if there is one. Invalid input is
/// logged and ignored: this kernel then boots with no incoming sessions.
fn parse_incoming() -> Option<HandOver> {
    let (pa, len) = match kho::retrieve_subtree() {
        Ok(Some(found)) => found,
        Ok(None) => return None,
        Err(e) => {
            pr_err!("failed to retrieve LUO state 'LUO' from KHO: {:?}\n", e);
            return None;
        }
    };
    match luo_ser::parse(&mut KhoPages(None), pa, len) {
        Ok(h) => {
            pr_info!(
                "Retrieved live update data, liveupdate number: {}\n",
                h.liveupdate_num
            );
            Some(h)
        }
        Err(Invalid(why, e)) => {
            // Its pages stay with KHO: one of them may be somebody else's.
            pr_err!(
                "invalid hand-over from the previous kernel: {} ({:?}); booting without incoming sessions\n",
                why,
                e
            );
            None
        }
    }
}

/// Value of the `liveupdate=` boot parameter (default off, like the C core).
static PARAM: Atomic<bool> = Atomic::new(false);
/// Live update is enabled: the parameter was set, KHO is on and set-up succeeded.
static ENABLED: Atomic<bool> = Atomic::new(false);
static LUO: SetOnce<Pin<KBox<Luo>>> = SetOnce::new();
static DEVICE: SetOnce<Pin<KBox<MiscDeviceRegistration<Device>>>> = SetOnce::new();

/// The live update state, if live update is enabled.
pub(crate) fn luo() -> Option<&'static Luo> {
    if !ENABLED.load(Acquire) {
        return None;
    }
    LUO.as_ref().map(|b| &**b)
}

/// Whether live update is enabled.
pub(crate) fn enabled() -> bool {
    luo().is_some()
}

/// `liveupdate_reboot()`.
pub(crate) fn reboot() -> Result {
    match luo() {
        Some(luo) => luo_session::serialize(luo),
        None => Ok(()),
    }
}

/// Called by the `early_param("liveupdate")` glue with the parsed value.
#[no_mangle]
pub extern "C" fn luo_rs_set_enabled(enabled: bool) {
    PARAM.store(enabled, Relaxed);
}

/// `early_initcall`: parses the previous kernel's hand-over and sets up the state.
#[no_mangle]
pub extern "C" fn luo_rs_early_init() -> c_int {
    if !kho::is_enabled() {
        if PARAM.load(Relaxed) {
            pr_warn!("Disabling liveupdate because KHO is disabled\n");
        }
        return 0;
    }
    if !PARAM.load(Relaxed) {
        return 0;
    }
    let handover = parse_incoming();
    match KBox::pin_init(Luo::new(handover), GFP_KERNEL) {
        Ok(luo) => {
            LUO.populate(luo);
            ENABLED.store(true, Release);
        }
        Err(e) => pr_err!("failed to allocate the live update state: {:?}\n", e),
    }
    0
}

/// `late_initcall`: sets up the outgoing hand-over and registers `/dev/liveupdate`.
#[no_mangle]
pub extern "C" fn luo_rs_late_init() -> c_int {
    let Some(luo) = luo() else {
        return 0;
    };
    if let Err(e) = luo_session::setup_outgoing(luo, luo.liveupdate_num) {
        pr_err!("failed to prepare LUO state: {:?}\n", e);
        ENABLED.store(false, Release);
        return e.to_errno();
    }
    let opts = MiscDeviceOptions {
        name: c"liveupdate",
    };
    match KBox::pin_init(MiscDeviceRegistration::register(opts), GFP_KERNEL) {
        Ok(dev) => {
            DEVICE.populate(dev);
            0
        }
        Err(e) => {
            pr_err!("failed to register /dev/liveupdate: {:?}\n", e);
            ENABLED.store(false, Release);
            e.to_errno()
        }
    }
}

/// `/dev/liveupdate`.
struct Device;

#[vtable]
impl MiscDevice for Device {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<()> {
        let luo = luo().ok_or(ENODEV)?;
        luo.device_open
            .cmpxchg(false, true, Full)
            .map_err(|_| EBUSY)?;
        luo.build_incoming()
            .inspect_err(|_| luo.device_open.store(false, Release))
    }

    fn release(_device: (), _file: &File) {
        if let Some(luo) = luo() {
            luo.device_open.store(false, Release);
        }
    }

    fn ioctl(_device: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let luo = luo().ok_or(ENODEV)?;
        luo_session::device_ioctl(luo, cmd, arg)
    }
}
