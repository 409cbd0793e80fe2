// SPDX-License-Identifier: GPL-2.0

//! Live Update Orchestrator (LUO), in Rust.
//!
//! A drop-in replacement for `kernel/liveupdate/luo_*.c`: the same uAPI
//! (`/dev/liveupdate`), the same in-kernel API (`<linux/liveupdate.h>`) and the
//! same serialized hand-over format ("luo-v5" in Kexec HandOver memory).
//!
//! This first cut provides the boot entry points and the in-kernel API with
//! live update reported as unavailable; sessions, files and FLBs follow.

#![crate_name = "liveupdate"]

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
    sync::atomic::{ordering::Relaxed, Atomic},
};

const __LOG_PREFIX: &[u8] = b"luo\0";

/// Value of the `liveupdate=` boot parameter (default off, like the C core).
static ENABLED_PARAM: Atomic<bool> = Atomic::new(false);

/// Called by the `early_param("liveupdate")` glue with the parsed value.
#[no_mangle]
pub extern "C" fn luo_rs_set_enabled(enabled: bool) {
    ENABLED_PARAM.store(enabled, Relaxed);
}

/// `early_initcall`: parses the previous kernel's hand-over.
#[no_mangle]
pub extern "C" fn luo_rs_early_init() -> c_int {
    if ENABLED_PARAM.load(Relaxed) {
        pr_warn!("the Rust implementation does not support live update yet\n");
    }
    0
}

/// `late_initcall`: creates the outgoing state and registers `/dev/liveupdate`.
#[no_mangle]
pub extern "C" fn luo_rs_late_init() -> c_int {
    0
}

/// Returns true if live update is enabled.
#[export]
pub extern "C" fn liveupdate_enabled() -> bool {
    false
}

/// Called by `kernel_kexec()` before jumping to the next kernel.
#[export]
pub extern "C" fn liveupdate_reboot() -> c_int {
    0
}

/// Registers a file handler.
///
/// # Safety
///
/// `_fh` must point to a valid `struct liveupdate_file_handler`.
#[export]
pub unsafe extern "C" fn liveupdate_register_file_handler(
    _fh: *mut kernel::bindings::liveupdate_file_handler,
) -> c_int {
    EOPNOTSUPP.to_errno()
}

/// Unregisters a file handler.
///
/// # Safety
///
/// `_fh` must point to a valid `struct liveupdate_file_handler`.
#[export]
pub unsafe extern "C" fn liveupdate_unregister_file_handler(
    _fh: *mut kernel::bindings::liveupdate_file_handler,
) {
}

/// Registers a File-Lifecycle-Bound object with a file handler.
///
/// # Safety
///
/// Both pointers must be valid.
#[export]
pub unsafe extern "C" fn liveupdate_register_flb(
    _fh: *mut kernel::bindings::liveupdate_file_handler,
    _flb: *mut kernel::bindings::liveupdate_flb,
) -> c_int {
    EOPNOTSUPP.to_errno()
}

/// Unregisters a File-Lifecycle-Bound object from a file handler.
///
/// # Safety
///
/// Both pointers must be valid.
#[export]
pub unsafe extern "C" fn liveupdate_unregister_flb(
    _fh: *mut kernel::bindings::liveupdate_file_handler,
    _flb: *mut kernel::bindings::liveupdate_flb,
) {
}

/// Gets the incoming object of an FLB.
///
/// # Safety
///
/// Both pointers must be valid.
#[export]
pub unsafe extern "C" fn liveupdate_flb_get_incoming(
    _flb: *mut kernel::bindings::liveupdate_flb,
    _objp: *mut *mut c_void,
) -> c_int {
    EOPNOTSUPP.to_errno()
}

/// Puts the incoming object of an FLB.
///
/// # Safety
///
/// `_flb` must be valid.
#[export]
pub unsafe extern "C" fn liveupdate_flb_put_incoming(_flb: *mut kernel::bindings::liveupdate_flb) {}

/// Gets the outgoing object of an FLB.
///
/// # Safety
///
/// Both pointers must be valid.
#[export]
pub unsafe extern "C" fn liveupdate_flb_get_outgoing(
    _flb: *mut kernel::bindings::liveupdate_flb,
    _objp: *mut *mut c_void,
) -> c_int {
    EOPNOTSUPP.to_errno()
}

/// Puts the outgoing object of an FLB.
///
/// # Safety
///
/// `_flb` must be valid.
#[export]
pub unsafe extern "C" fn liveupdate_flb_put_outgoing(_flb: *mut kernel::bindings::liveupdate_flb) {}
