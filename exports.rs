// SPDX-License-Identifier: GPL-2.0

//! The exported C API, exactly the prototypes of `include/linux/liveupdate.h`, and the test
//! modules' lookup. Each function checks its pointers through [`crate::cabi`] and answers
//! through `from_result`.

use kernel::{
    bindings,
    error::from_result,
    ffi::{
        c_int,
        c_void, //
    },
    prelude::*,
};

use crate::{
    cabi::{
        Flb,
        Handler, //
    },
    flb, luo, reboot,
    session::Luo,
};

/// The live update state, or `EOPNOTSUPP` when live update is disabled.
fn enabled_luo() -> Result<&'static Luo> {
    luo().ok_or(EOPNOTSUPP)
}

/// Returns true if live update is enabled.
///
/// # Safety
///
/// None: any caller may call it. It is `unsafe` only because `#[export]` compares it with
/// bindgen's declaration, which is `unsafe`, and rustc 1.85 (the kernel's minimum) does not
/// unify a safe and an `unsafe` function type there (upstream's `drm_panic_qr_max_data_size`
/// is `unsafe` for the same reason).
#[export]
pub(crate) unsafe extern "C" fn liveupdate_enabled() -> bool {
    luo().is_some()
}

/// Called by `kernel_kexec()`: freezes and serializes every outgoing session.
///
/// # Safety
///
/// None; `unsafe` for `#[export]`, as [`liveupdate_enabled`].
#[export]
pub(crate) unsafe extern "C" fn liveupdate_reboot() -> c_int {
    from_result(|| {
        if let Some(luo) = luo() {
            reboot::serialize(luo)?;
        }
        Ok(0)
    })
}

/// Registers a file handler.
///
/// # Safety
///
/// `fh` points to a handler that stays valid until it is unregistered.
#[export]
pub(crate) unsafe extern "C" fn liveupdate_register_file_handler(
    fh: *mut bindings::liveupdate_file_handler,
) -> c_int {
    from_result(|| {
        let luo = enabled_luo()?;
        // SAFETY: By the caller's guarantee.
        let handler = unsafe { Handler::from_raw(fh) }?;
        luo.core.registry.register_handler(handler)?;
        Ok(0)
    })
}

/// Unregisters a file handler.
///
/// # Safety
///
/// `fh` is a pointer passed to [`liveupdate_register_file_handler`] (or any pointer, which is
/// then ignored).
#[export]
pub(crate) unsafe extern "C" fn liveupdate_unregister_file_handler(
    fh: *mut bindings::liveupdate_file_handler,
) {
    if let Some(luo) = luo() {
        luo.core.registry.unregister_handler(fh as usize);
    }
}

/// Registers a File-Lifecycle-Bound object with a registered file handler.
///
/// # Safety
///
/// `fh` is a registered handler (otherwise `-EINVAL`); `flb` points to an FLB that stays valid
/// until it is unregistered.
#[export]
pub(crate) unsafe extern "C" fn liveupdate_register_flb(
    fh: *mut bindings::liveupdate_file_handler,
    flb: *mut bindings::liveupdate_flb,
) -> c_int {
    from_result(|| {
        let luo = enabled_luo()?;
        // SAFETY: By the caller's guarantee.
        let flb = unsafe { Flb::from_raw(flb) }?;
        luo.core
            .registry
            .register_flb(&luo.core.flbs, fh as usize, flb)?;
        Ok(0)
    })
}

/// Unregisters a File-Lifecycle-Bound object from a file handler.
///
/// # Safety
///
/// Any pointers: they are only compared with registered ones.
#[export]
pub(crate) unsafe extern "C" fn liveupdate_unregister_flb(
    fh: *mut bindings::liveupdate_file_handler,
    flb: *mut bindings::liveupdate_flb,
) {
    if let Some(luo) = luo() {
        luo.core
            .registry
            .unregister_flb(fh as usize, Flb::addr_of(flb));
    }
}

/// Gets (and retrieves on first use) the incoming object of an FLB, registered or not.
///
/// # Safety
///
/// `flb` is null or points to an FLB that stays valid (C FLBs are static); `objp` is null or
/// valid for writes.
#[export]
pub(crate) unsafe extern "C" fn liveupdate_flb_get_incoming(
    flb: *mut bindings::liveupdate_flb,
    objp: *mut *mut c_void,
) -> c_int {
    from_result(|| {
        let luo = enabled_luo()?;
        // SAFETY: By the caller's guarantee `flb` is null or a valid FLB, which C callers
        // allocate statically (it outlives the kernel's use of it).
        let flb = unsafe { Flb::from_raw(flb) }?;
        let obj = flb::get_incoming(&luo.core.flbs, flb)?;
        if !objp.is_null() {
            // SAFETY: By the caller's guarantee.
            unsafe { *objp = obj as *mut c_void };
        }
        Ok(0)
    })
}

/// Puts a reference taken by [`liveupdate_flb_get_incoming`].
///
/// # Safety
///
/// `flb` is any pointer (only compared with registered ones).
#[export]
pub(crate) unsafe extern "C" fn liveupdate_flb_put_incoming(flb: *mut bindings::liveupdate_flb) {
    if let Some(luo) = luo() {
        flb::put_incoming(&luo.core.flbs, Flb::addr_of(flb));
    }
}

/// Gets the outgoing object of an FLB.
///
/// # Safety
///
/// `flb` is any pointer (only compared with registered ones); `objp` is valid for writes.
#[export]
pub(crate) unsafe extern "C" fn liveupdate_flb_get_outgoing(
    flb: *mut bindings::liveupdate_flb,
    objp: *mut *mut c_void,
) -> c_int {
    from_result(|| {
        let luo = enabled_luo()?;
        let obj = flb::get_outgoing(&luo.core.flbs, Flb::addr_of(flb))?;
        if !objp.is_null() {
            // SAFETY: By the caller's guarantee.
            unsafe { *objp = obj as *mut c_void };
        }
        Ok(0)
    })
}

/// Puts a reference taken by [`liveupdate_flb_get_outgoing`].
///
/// # Safety
///
/// `flb` is any pointer (only compared with registered ones).
#[export]
pub(crate) unsafe extern "C" fn liveupdate_flb_put_outgoing(flb: *mut bindings::liveupdate_flb) {
    if let Some(luo) = luo() {
        flb::put_outgoing(&luo.core.flbs, Flb::addr_of(flb));
    }
}

/// For the test modules (`CONFIG_LIVEUPDATE_RUST_FAULT_INJECT` only, exported by
/// luo_test_glue.c): the registered file handler whose compatible string is `compatible`, or
/// null. A test module links its FLB to memfd's handler with it.
///
/// # Safety
///
/// `compatible` is a NUL-terminated string.
#[cfg(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT)]
#[no_mangle]
pub(crate) unsafe extern "C" fn luo_rs_find_file_handler(
    compatible: *const kernel::ffi::c_char,
) -> *mut bindings::liveupdate_file_handler {
    let Some(luo) = luo() else {
        return core::ptr::null_mut();
    };
    // SAFETY: By the caller's guarantee.
    let compatible = unsafe { CStr::from_char_ptr(compatible) };
    luo.core
        .registry
        .find(compatible.to_bytes())
        .map_or(core::ptr::null_mut(), |h| h.as_ptr())
}
