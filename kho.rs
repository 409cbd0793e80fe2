// SPDX-License-Identifier: GPL-2.0

//! Kexec HandOver (KHO): the only module that touches KHO and physical addresses.
//!
//! Outgoing memory is an [`OutPage`]: a zeroed page preserved for the next kernel, freed (and
//! unpreserved) when dropped. What reboot wrote stays owned by the frozen sessions, which are
//! never dropped, until the kexec. LUO's root page is published as the "LUO" subtree with
//! [`Published`].
//!
//! Incoming memory is an [`InPage`]: a page the previous kernel preserved, restored from KHO
//! (which proves that the previous kernel really preserved it) and freed when dropped.

use core::ptr::NonNull;

use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    page::PAGE_SIZE,
    prelude::*,
};

/// Whether KHO is enabled in this kernel (`kho=`, and never in a kdump kernel).
pub(crate) fn is_enabled() -> bool {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::kho_is_enabled() }
}

/// The name of LUO's subtree in the KHO tree.
fn subtree_name() -> &'static CStr {
    // The bindgen constant is "LUO\0".
    CStr::from_bytes_with_nul(bindings::LUO_KHO_ENTRY_NAME).unwrap_or(c"LUO")
}

/// A zeroed page preserved for the next kernel.
///
/// # Invariants
///
/// `ptr` is the address of an order-0 folio returned by `kho_alloc_preserve()` and owned by
/// this object; `pa` is its physical address.
pub(crate) struct OutPage {
    ptr: NonNull<u8>,
    pa: u64,
}

// SAFETY: The page is plain memory owned by this object.
unsafe impl Send for OutPage {}
// SAFETY: `&self` methods only read the address.
unsafe impl Sync for OutPage {}

impl OutPage {
    /// Allocates and preserves one zeroed page.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: FFI call; a size of one page is valid.
        let p = from_err_ptr(unsafe { bindings::kho_alloc_preserve(PAGE_SIZE) })?;
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(ENOMEM)?;
        // SAFETY: `ptr` is a direct-map address of the page just allocated.
        let pa = unsafe { bindings::luo_virt_to_phys(ptr.as_ptr().cast()) };
        // INVARIANT: `kho_alloc_preserve` returned a preserved order-0 folio at `pa`.
        Ok(Self { ptr, pa })
    }

    /// The page's bytes.
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: By the type invariants the page is ours, `PAGE_SIZE` bytes long, and
        // `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), PAGE_SIZE) }
    }

    /// The page's physical address.
    pub(crate) fn pa(&self) -> u64 {
        self.pa
    }
}

impl Drop for OutPage {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the page came from `kho_alloc_preserve` and is owned
        // by us.
        unsafe { bindings::kho_unpreserve_free(self.ptr.as_ptr().cast()) };
    }
}

/// LUO's root page, published as the "LUO" KHO subtree.
///
/// # Invariants
///
/// `page` is registered with `kho_add_subtree()` with `len` bytes, until this object drops.
pub(crate) struct Published {
    page: OutPage,
}

impl Published {
    /// Publishes the first `len` bytes of `page` as the "LUO" subtree.
    pub(crate) fn new(page: OutPage, len: usize) -> Result<Self> {
        let name = subtree_name();
        // SAFETY: `name` is NUL-terminated; the page stays preserved and allocated until
        // `drop` removes the subtree.
        to_result(unsafe {
            bindings::kho_add_subtree(name.as_char_ptr(), page.ptr.as_ptr().cast(), len)
        })?;
        // INVARIANT: Just registered.
        Ok(Self { page })
    }

    /// The root page's bytes (the next kernel reads what is there at kexec).
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        self.page.bytes()
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the page is registered as a subtree.
        unsafe { bindings::kho_remove_subtree(self.page.ptr.as_ptr().cast()) };
    }
}

/// Finds the "LUO" subtree of the previous kernel: its physical address and length, or
/// `None` if there is none (a cold boot, or a previous kernel without LUO).
pub(crate) fn retrieve_subtree() -> Result<Option<(u64, usize)>> {
    let mut pa: bindings::phys_addr_t = 0;
    let mut len: usize = 0;
    // SAFETY: The name is NUL-terminated and both outputs are valid for writes.
    let err =
        unsafe { bindings::kho_retrieve_subtree(subtree_name().as_char_ptr(), &mut pa, &mut len) };
    if err == ENOENT.to_errno() {
        return Ok(None);
    }
    to_result(err)?;
    Ok(Some((pa, len)))
}

/// A page the previous kernel preserved, restored from KHO.
///
/// # Invariants
///
/// `folio` was returned by `kho_restore_folio()` for the page-aligned address whose direct
/// mapping is `ptr`, and we own its reference.
pub(crate) struct InPage {
    folio: NonNull<bindings::folio>,
    ptr: NonNull<u8>,
}

// SAFETY: The page is plain memory owned by this object.
unsafe impl Send for InPage {}
// SAFETY: `&self` methods only read the page.
unsafe impl Sync for InPage {}

impl InPage {
    /// Restores the page at `pa`. Fails with `EINVAL` unless `pa` is a page-aligned address
    /// that the previous kernel preserved and that was not restored before (so a chain that
    /// loops is caught too).
    pub(crate) fn restore(pa: u64) -> Result<Self> {
        if pa == 0 || pa % PAGE_SIZE as u64 != 0 {
            return Err(EINVAL);
        }
        // SAFETY: FFI call; KHO checks that `pa` is online memory it preserved.
        let folio = NonNull::new(unsafe { bindings::kho_restore_folio(pa) }).ok_or(EINVAL)?;
        // SAFETY: `pa` is now restored memory of this kernel, so it is in the direct map.
        let ptr = unsafe { bindings::luo_phys_to_virt(pa) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(EINVAL)?;
        // INVARIANT: Restored above; the reference is ours.
        Ok(Self { folio, ptr })
    }

    /// The page's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: By the type invariants the page is ours and at least `PAGE_SIZE` long.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), PAGE_SIZE) }
    }
}

impl Drop for InPage {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own a reference on the folio.
        unsafe { bindings::luo_folio_put(self.folio.as_ptr()) };
    }
}
