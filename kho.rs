// SPDX-License-Identifier: GPL-2.0

//! Kexec HandOver (KHO): the only module that touches KHO and physical addresses.
//!
//! Outgoing memory is an [`OutPage`]: a zeroed page preserved for the next kernel, freed (and
//! unpreserved) when dropped. What reboot wrote stays owned by the frozen sessions, which are
//! never dropped, until the kexec. LUO's root page is published as the "LUO" subtree with
//! [`Published`].
//!
//! Incoming memory is read in place through [`Peeked`], after KHO's record of the page shows
//! that the previous kernel preserved it (nothing is taken from KHO while the hand-over is
//! checked, so a damaged one takes no page from anybody); the pages of a valid hand-over are
//! taken and freed with [`release`] once the sessions they described are gone.

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

/// The name of LUO's subtree in the KHO tree (the bindgen constant is "LUO\0"), checked at
/// build time: a constant that is not one C string fails the build.
const SUBTREE_NAME: &CStr = match CStr::from_bytes_with_nul(bindings::LUO_KHO_ENTRY_NAME) {
    Ok(name) => name,
    Err(_) => panic!("LUO_KHO_ENTRY_NAME is not one NUL-terminated string"),
};

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
        let name = SUBTREE_NAME;
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
        unsafe { bindings::kho_retrieve_subtree(SUBTREE_NAME.as_char_ptr(), &mut pa, &mut len) };
    // The errno is converted only when there is one: the boot's way calls nothing for it.
    match err {
        0 => Ok(Some((pa, len))),
        e if e == ENOENT.to_errno() => Ok(None),
        e => Err(Error::from_errno(e)),
    }
}

/// A page the previous kernel preserved, read in place: it is not taken from KHO (restored)
/// until [`release`], so that a page a damaged hand-over points to by mistake stays with
/// whoever really preserved it.
///
/// # Invariants
///
/// `ptr` is the direct mapping of an order-0 page that KHO preserved for this kernel and that
/// nobody restored when it was checked; it stays mapped and unused while KHO holds it.
pub(crate) struct Peeked {
    ptr: NonNull<u8>,
}

impl Peeked {
    /// The preserved page at `pa`. Fails with `EINVAL` unless `pa` is a page-aligned address
    /// of an order-0 page that KHO preserved for this kernel and nobody restored yet.
    pub(crate) fn new(pa: u64) -> Result<Self> {
        if pa == 0 || pa % PAGE_SIZE as u64 != 0 {
            return Err(EINVAL);
        }
        // SAFETY: FFI call; any address is accepted (only an online page's flags are read). It
        // returns the direct mapping of `pa` only if `pa` is preserved memory of this kernel.
        let ptr = unsafe { bindings::luo_kho_preserved_virt(pa) };
        // INVARIANT: Checked by the call, NULL otherwise.
        Ok(Self {
            ptr: NonNull::new(ptr.cast::<u8>()).ok_or(EINVAL)?,
        })
    }

    /// The page's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: By the type invariants the page is mapped and `PAGE_SIZE` long; KHO holds
        // it, so nothing writes to it.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), PAGE_SIZE) }
    }
}

/// Takes a page of the previous kernel's hand-over from KHO and frees it, unless it is no
/// longer preserved (somebody else took it: then it is theirs).
pub(crate) fn release(pa: u64) {
    // SAFETY: FFI call; any address is accepted (only an online page's flags are read).
    if pa % PAGE_SIZE as u64 != 0 || unsafe { bindings::luo_kho_preserved_virt(pa) }.is_null() {
        return;
    }
    // SAFETY: `pa` is an order-0 page KHO preserved, not restored yet (checked above).
    let folio = unsafe { bindings::kho_restore_folio(pa) };
    if !folio.is_null() {
        // SAFETY: `kho_restore_folio` returned the folio with a reference we own.
        unsafe { bindings::luo_folio_put(folio) };
    }
}
