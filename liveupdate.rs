// SPDX-License-Identifier: GPL-2.0

//! Live Update Orchestrator (LUO), in Rust.
//!
//! A drop-in replacement for `kernel/liveupdate/luo_*.c`: the same uAPI (`/dev/liveupdate`),
//! the same in-kernel API (`<linux/liveupdate.h>`) and the same serialized hand-over format
//! ("luo-v5" in Kexec HandOver memory). See `Documentation/` in the repository for the design
//! and for every deliberate difference from the C implementation.
//!
//! # Layers
//!
//! Each module imports only from the modules below it; none imports from above:
//!
//! ```text
//! exports                 the C API of <linux/liveupdate.h>, from_result at each entry
//! liveupdate (this root)  boot (early and late initcall), /dev/liveupdate
//! ioctl   reboot          the two op tables and session files; liveupdate_reboot()
//! session                 sessions, the Luo state, closing, the incoming rebuild
//! file                    preserved files of a session; Core (registry, FLBs, ids)
//! registry                file handlers and the FLBs linked to them
//! flb                     FLB states and their object lifecycles
//! ser                     the luo-v5 hand-over: validating reader, writer
//! ucmd                    size-headed ioctl commands and op tables
//! abi   cabi   kho        typed uAPI and luo-v5 structs; C handler, FLB and file
//! gate  fault  small      wrappers; KHO memory; the reboot gate; fault injection;
//!                         small tables held inline
//! ```
//!
//! Raw `bindings::` appear only in `abi`, `cabi`, `kho` and `exports`.
//!
//! # Lock order
//!
//! The reboot gate's lock → everything else (reboot serializes holding it; operations take
//! it with nothing else held). `Luo::incoming` → the registry's lock; `Luo::sessions` →
//! `Session::inner` →
//! `FlbState::{outgoing, incoming}` → the registry's lock → the FLB states' list, and
//! `Session::inner` → the preserved ids of `Core`. No FLB state's lock is ever taken under
//! the registry's lock (reboot reads the FLBs' records under it from values stored outside
//! the locks), so FLB callbacks, which run under their FLB's lock, may call the FLB API,
//! registration included.
//! `FlbState::incoming` → `Flbs::records` (the previous kernel's FLB records, read at their
//! first use). `Flbs::records` and the preserved ids are leaves.
//! The hand-over's pages go back with no lock held.
//!
//! Every ioctl effect and every close runs inside the reboot gate (never a user-memory access
//! there), so reboot, which closes the gate and waits, never sees an operation half done.
//! File handler callbacks run with at most `Session::inner` held (never the registry's lock:
//! handlers are taken from it with a reference on their module), so they may call the FLB
//! API; FLB callbacks run under their own FLB's lock. Nothing runs under a spinlock.

#![crate_name = "liveupdate"]

use core::pin::Pin;

use kernel::{
    error::from_result,
    ffi::c_int,
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
    sync::{
        atomic::{
            ordering::{
                Acquire,
                Full,
                Release, //
            },
            Atomic,
        },
        SetOnce, //
    },
};

mod abi;
mod cabi;
mod exports;
mod fault;
mod file;
mod flb;
mod gate;
mod ioctl;
mod kho;
mod reboot;
mod registry;
mod ser;
mod session;
mod small;
mod ucmd;

pub(crate) use cabi::LocalModule;

use ser::{
    HandOver,
    Invalid, //
};
use session::Luo;

const __LOG_PREFIX: &[u8] = b"luo\0";

/// The hand-over parser's page source: pages KHO preserved, read in place. The last one is
/// kept with its address (a page stays preserved while the parser runs): in a hand-over of
/// one session, the parser reads its file page again right after counting its files.
struct KhoPages(Option<(u64, kho::Peeked)>);

impl ser::PageSource for KhoPages {
    #[inline(always)]
    fn page(&mut self, pa: u64) -> Result<&[u8]> {
        if !matches!(self.0, Some((last, _)) if last == pa) {
            self.0 = Some((pa, kho::Peeked::new(pa)?));
        }
        self.0.as_ref().map(|(_, page)| page.bytes()).ok_or(EINVAL)
    }
}

/// The previous kernel's hand-over: the address and length of its root, if there is one.
fn find_incoming() -> Option<(u64, usize)> {
    match kho::retrieve_subtree() {
        Ok(found) => found,
        Err(e) => {
            pr_err!("failed to retrieve LUO state 'LUO' from KHO: {:?}\n", e);
            None
        }
    }
}

/// Reads and validates the hand-over whose root is `pa` (`len` bytes) into `h`; returns whether
/// it is valid. Invalid input is logged and ignored: this kernel then boots with no incoming
/// sessions.
fn parse_incoming(h: &mut HandOver, pa: u64, len: usize) -> bool {
    match ser::parse(&mut KhoPages(None), pa, len, h) {
        Ok(()) => {
            cabi::log_retrieved(h.liveupdate_num);
            true
        }
        Err(Invalid(why, e)) => {
            // Its pages stay with KHO: one of them may be somebody else's.
            pr_err!(
                "invalid hand-over from the previous kernel: {} ({:?}); booting without incoming sessions\n",
                why,
                e
            );
            false
        }
    }
}

/// The live update state while live update is enabled (the parameter was set, KHO is on and
/// set-up succeeded), null otherwise: one load tells both, on every ioctl and at reboot.
///
/// # Invariants
///
/// Null, or the address of the state allocated at boot, pinned in its box, which is never
/// dropped (it is forgotten: nothing owns it).
static ENABLED: Atomic<*const Luo> = Atomic::new(core::ptr::null());
/// The state, if live update was disabled after it was allocated (its late set-up failed): it
/// is never dropped, and kmemleak, which finds it through `ENABLED` until then, finds it here.
static DISABLED: Atomic<*const Luo> = Atomic::new(core::ptr::null());
static DEVICE: SetOnce<Pin<KBox<MiscDeviceRegistration<Device>>>> = SetOnce::new();

/// The live update state, if live update is enabled.
pub(crate) fn luo() -> Option<&'static Luo> {
    let luo = ENABLED.load(Acquire);
    // SAFETY: By the invariant of `ENABLED`, `luo` is null or points to the state, which is
    // never dropped; the acquire load pairs with the release store that published it, after
    // it was initialized.
    unsafe { luo.as_ref() }
}

/// `early_initcall`, called by the glue with the value of the `liveupdate=` parameter (off by
/// default, like the C core): parses the previous kernel's hand-over and sets up the state.
/// Never fails the boot: without live update the kernel runs on.
///
/// It runs once, at boot, and is placed in `.init.text` like the C core's `__init` code: the
/// parser inlined into it (all but the file walk's per-block closure and the FLB check, which
/// stay in `.text`) is freed after boot, and the boot's way runs through a few pages
/// next to the other init code, not through pages of `.text` (TCG protects each code page
/// on its first run, at a cost of several translated blocks).
///
/// # Safety
///
/// Called once, by the early initcall: it is freed after boot.
#[no_mangle]
#[link_section = ".init.text"]
pub unsafe extern "C" fn luo_rs_early_init(enabled: bool) -> c_int {
    if !kho::is_enabled() {
        if enabled {
            pr_warn!("Disabling liveupdate because KHO is disabled\n");
        }
        return 0;
    }
    if !enabled {
        return 0;
    }
    match KBox::pin_init(Luo::new(), GFP_KERNEL) {
        Ok(mut luo) => {
            if let Some((pa, len)) = find_incoming() {
                luo.as_mut().receive(|h| parse_incoming(h, pa, len));
            }
            // The state lives as long as the kernel: its box is forgotten, not held in a
            // `SetOnce` (whose atomics are three more calls to C helpers on the boot's way).
            let state = core::ptr::from_ref::<Luo>(&luo);
            core::mem::forget(luo);
            // INVARIANT: The state, pinned in its box, which is never dropped.
            ENABLED.store(state, Release);
        }
        Err(e) => pr_err!("failed to allocate the live update state: {:?}\n", e),
    }
    0
}

/// `late_initcall`: sets up the outgoing hand-over and registers `/dev/liveupdate`.
#[no_mangle]
pub extern "C" fn luo_rs_late_init() -> c_int {
    from_result(|| {
        let Some(luo) = luo() else {
            return Ok(0);
        };
        late_init(luo).inspect_err(|_| {
            // kmemleak must still find the state, which is never dropped.
            DISABLED.store(core::ptr::from_ref::<Luo>(luo), Release);
            // INVARIANT: Null: live update is disabled.
            ENABLED.store(core::ptr::null(), Release);
        })?;
        Ok(0)
    })
}

fn late_init(luo: &'static Luo) -> Result {
    reboot::setup_outgoing(luo)
        .inspect_err(|e| pr_err!("failed to prepare LUO state: {:?}\n", e))?;
    let opts = MiscDeviceOptions {
        name: c"liveupdate",
    };
    let dev = KBox::pin_init(MiscDeviceRegistration::register(opts), GFP_KERNEL)
        .inspect_err(|e| pr_err!("failed to register /dev/liveupdate: {:?}\n", e))?;
    DEVICE.populate(dev);
    Ok(())
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
        ioctl::device_ioctl(luo, cmd, arg)
    }
}
