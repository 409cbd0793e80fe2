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
//! `Luo::sessions` → `Session::inner` → `Luo::registry` → `FlbState::{outgoing, incoming}`
//! → `Luo::preserved`.
//!
//! Handler and FLB callbacks run with at most `Session::inner` (and for `can_preserve`,
//! `Luo::registry`) held, never under a spinlock. A callback must not call back into the
//! registration API.

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
        Mutex,
        SetOnce, //
    },
};

mod ffi;
mod kho;
mod luo_file;
mod luo_flb;
mod luo_ioctl;
mod luo_session;

pub(crate) use ffi::LocalModule;

use luo_file::Registry;
use luo_session::Sessions;

const __LOG_PREFIX: &[u8] = b"luo\0";

/// The state of live update in this kernel. It exists only when live update is enabled.
#[pin_data]
pub(crate) struct Luo {
    /// Every session.
    #[pin]
    pub(crate) sessions: Mutex<Sessions>,
    /// File handlers and FLBs.
    #[pin]
    pub(crate) registry: Mutex<Registry>,
    /// Ids of the objects behind preserved (and retrieved, not yet finished) files.
    #[pin]
    pub(crate) preserved: Mutex<RBTree<usize, ()>>,
    /// `/dev/liveupdate` is open (it is single-open).
    device_open: Atomic<bool>,
}

impl Luo {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            sessions <- new_mutex!(Sessions::new(), "luo::sessions"),
            registry <- new_mutex!(Registry::new(), "luo::registry"),
            preserved <- new_mutex!(RBTree::new(), "luo::preserved"),
            device_open: Atomic::new(false),
        })
    }

    /// The data and count the previous kernel recorded for the FLB `compatible`.
    pub(crate) fn incoming_flb(&self, _compatible: &[u8]) -> Result<(u64, u64)> {
        // No hand-over is parsed yet: there is no incoming FLB data.
        Err(ENODATA)
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
    let Some(luo) = luo() else {
        return Ok(());
    };
    let sessions = luo.sessions.lock();
    if !sessions.outgoing.is_empty() {
        // Serialization into KHO memory is not implemented yet: refuse rather than lose the
        // sessions across kexec.
        pr_err!("cannot serialize sessions yet; refusing the live update\n");
        return Err(EOPNOTSUPP);
    }
    Ok(())
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
    match KBox::pin_init(Luo::new(), GFP_KERNEL) {
        Ok(luo) => {
            LUO.populate(luo);
            ENABLED.store(true, Release);
        }
        Err(e) => pr_err!("failed to allocate the live update state: {:?}\n", e),
    }
    0
}

/// `late_initcall`: registers `/dev/liveupdate`.
#[no_mangle]
pub extern "C" fn luo_rs_late_init() -> c_int {
    if luo().is_none() {
        return 0;
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
        Ok(())
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
