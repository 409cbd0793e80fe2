// SPDX-License-Identifier: GPL-2.0

//! Kexec HandOver (KHO): the only module that touches KHO and physical addresses.

use kernel::bindings;

/// Whether KHO is enabled in this kernel (`kho=`, and never in a kdump kernel).
pub(crate) fn is_enabled() -> bool {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::kho_is_enabled() }
}
