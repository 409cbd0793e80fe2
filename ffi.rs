// SPDX-License-Identifier: GPL-2.0

//! The boundary with C.
//!
//! Everything that dereferences a pointer handed over by C code lives here (the
//! KHO memory aside, which is `kho.rs`'s): the exported `<linux/liveupdate.h>`
//! API, typed wrappers around C file handlers and FLBs whose methods call their
//! callbacks, and the `file_operations` of session files. The rest of the crate
//! is safe Rust over these types.

use core::ptr::NonNull;

use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_char,
        c_int,
        c_long,
        c_uint,
        c_ulong,
        c_void, //
    },
    fs::{
        file::LocalFile,
        File, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
    types::ForeignOwnable,
};

use crate::{
    luo_file,
    luo_flb, //
    luo_session::{
        self,
        Session, //
    },
};

/// Module metadata for `#[vtable]` users: this code is built in, so its
/// `THIS_MODULE` is null.
pub(crate) struct LocalModule;

impl kernel::module::ModuleMetadata for LocalModule {
    const NAME: &'static CStr = c"liveupdate";

    const THIS_MODULE: kernel::ThisModule = {
        // SAFETY: Built-in code has a null `THIS_MODULE`; `try_module_get` and `module_put`
        // accept it.
        unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) }
    };
}

/// Length of a handler's or FLB's compatible string field.
const COMPAT_LEN: usize = bindings::LIVEUPDATE_HNDL_COMPAT_LENGTH as usize;
const _: () = assert!(COMPAT_LEN == bindings::LIVEUPDATE_FLB_COMPAT_LENGTH as usize);

/// The bytes of a fixed-size C string field, up to (not including) its NUL.
fn c_field(field: &[c_char; COMPAT_LEN]) -> &[u8] {
    // SAFETY: `c_char` and `u8` have the same size and alignment, and any byte is a valid `u8`.
    let bytes = unsafe { &*core::ptr::from_ref(field).cast::<[u8; COMPAT_LEN]>() };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(COMPAT_LEN);
    &bytes[..len]
}

/// A reference on a module, dropped with `module_put`.
///
/// # Invariants
///
/// A reference on `module` was taken with `try_module_get`.
pub(crate) struct ModuleRef(*mut bindings::module);

// SAFETY: A module reference may be released from any thread.
unsafe impl Send for ModuleRef {}
// SAFETY: `ModuleRef` has no `&self` methods.
unsafe impl Sync for ModuleRef {}

impl ModuleRef {
    /// Takes a reference on `module`, or fails with `err` if it is going away.
    ///
    /// # Safety
    ///
    /// `module` is null or points to a live module.
    unsafe fn get(module: *mut bindings::module, err: Error) -> Result<Self> {
        // SAFETY: By the caller's guarantee.
        if unsafe { bindings::luo_try_module_get(module) } {
            // INVARIANT: The reference was just taken.
            Ok(Self(module))
        } else {
            Err(err)
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, we own a reference on the module.
        unsafe { bindings::luo_module_put(self.0) };
    }
}

/// A C file handler (`struct liveupdate_file_handler`).
///
/// # Invariants
///
/// `self.0` points to a handler whose `ops` table is non-null and has every required
/// callback (`can_preserve`, `preserve`, `unpreserve`, `retrieve`, `finish`). The handler
/// stays valid while it is registered and while a [`ModuleRef`] on its owner is held (the
/// contract of `liveupdate_register_file_handler()`).
#[derive(Clone, Copy)]
pub(crate) struct Handler(NonNull<bindings::liveupdate_file_handler>);

// SAFETY: A C file handler is a constant table of callbacks that may be called from any thread.
unsafe impl Send for Handler {}
// SAFETY: See `Send`.
unsafe impl Sync for Handler {}

/// What a handler's callbacks receive for one file.
pub(crate) struct FileArgs<'a> {
    /// The file, when there is one (not for files that were never retrieved).
    pub(crate) file: Option<&'a File>,
    /// The handler's serialized data (its u64 handle).
    pub(crate) data: u64,
    /// The handler's private pointer, as an opaque value (outgoing only).
    pub(crate) private: usize,
    /// 0: retrieve never attempted; 1: retrieved; negative: the retrieve error.
    pub(crate) retrieve_status: i32,
}

impl Handler {
    /// Wraps a handler passed to the exported C API.
    ///
    /// # Safety
    ///
    /// `fh` is null or points to a `struct liveupdate_file_handler` that stays valid as
    /// described in the type invariants.
    unsafe fn from_raw(fh: *mut bindings::liveupdate_file_handler) -> Result<Self> {
        let fh = NonNull::new(fh).ok_or(EINVAL)?;
        // SAFETY: By the caller's guarantee `fh` is valid.
        let ops = unsafe { (*fh.as_ptr()).ops };
        if ops.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `ops` is non-null and, by the caller's guarantee, valid.
        let ops = unsafe { &*ops };
        if ops.can_preserve.is_none()
            || ops.preserve.is_none()
            || ops.unpreserve.is_none()
            || ops.retrieve.is_none()
            || ops.finish.is_none()
        {
            return Err(EINVAL);
        }
        // INVARIANT: Checked above, and the caller guarantees validity.
        Ok(Self(fh))
    }

    fn ops(&self) -> &bindings::liveupdate_file_ops {
        // SAFETY: By the type invariants, the handler and its ops table are valid.
        unsafe { &*(*self.0.as_ptr()).ops }
    }

    /// The handler's address, its identity.
    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The C handler.
    #[cfg(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT)]
    fn as_ptr(&self) -> *mut bindings::liveupdate_file_handler {
        self.0.as_ptr()
    }

    /// The compatible string, without its NUL.
    pub(crate) fn compatible(&self) -> &[u8] {
        // SAFETY: By the type invariants, the handler is valid.
        c_field(unsafe { &(*self.0.as_ptr()).compatible })
    }

    /// Takes a reference on the module that implements the handler.
    pub(crate) fn module_get(&self, err: Error) -> Result<ModuleRef> {
        // SAFETY: `owner` is the handler's module (or null for built-in code), alive while the
        // handler is registered.
        unsafe { ModuleRef::get(self.ops().owner, err) }
    }

    fn args(&self, a: &FileArgs<'_>) -> bindings::liveupdate_file_op_args {
        bindings::liveupdate_file_op_args {
            handler: self.0.as_ptr(),
            retrieve_status: a.retrieve_status,
            file: a.file.map_or(core::ptr::null_mut(), |f| f.as_ptr()),
            serialized_data: a.data,
            private_data: a.private as *mut c_void,
        }
    }

    /// Whether the handler can preserve `file`.
    pub(crate) fn can_preserve(&self, file: &File) -> bool {
        let Some(f) = self.ops().can_preserve else {
            return false;
        };
        // SAFETY: The callback was provided by the handler for this purpose; `file` is valid.
        unsafe { f(self.0.as_ptr(), file.as_ptr()) }
    }

    /// A key that identifies the preserved object behind `file` (the file itself unless the
    /// handler says otherwise).
    pub(crate) fn id(&self, file: &File) -> usize {
        match self.ops().get_id {
            // SAFETY: The callback was provided by the handler for this purpose.
            Some(f) => unsafe { f(file.as_ptr()) },
            None => file.as_ptr() as usize,
        }
    }

    /// Preserves `file`; returns the handler's serialized data and private pointer.
    pub(crate) fn preserve(&self, file: &File) -> Result<(u64, usize)> {
        let Some(f) = self.ops().preserve else {
            return Err(EINVAL);
        };
        let mut args = self.args(&FileArgs {
            file: Some(file),
            data: 0,
            private: 0,
            retrieve_status: 0,
        });
        // SAFETY: `args` is a valid argument block for this handler.
        to_result(unsafe { f(&mut args) })?;
        Ok((args.serialized_data, args.private_data as usize))
    }

    /// Undoes [`Handler::preserve`].
    pub(crate) fn unpreserve(&self, a: &FileArgs<'_>) {
        if let Some(f) = self.ops().unpreserve {
            let mut args = self.args(a);
            // SAFETY: `args` is a valid argument block for this handler.
            unsafe { f(&mut args) };
        }
    }

    /// Freezes a preserved file just before kexec; may update the serialized data.
    pub(crate) fn freeze(&self, a: &FileArgs<'_>) -> Result<u64> {
        let mut args = self.args(a);
        if let Some(f) = self.ops().freeze {
            // SAFETY: `args` is a valid argument block for this handler.
            to_result(unsafe { f(&mut args) })?;
        }
        Ok(args.serialized_data)
    }

    /// Undoes [`Handler::freeze`].
    pub(crate) fn unfreeze(&self, a: &FileArgs<'_>) {
        if let Some(f) = self.ops().unfreeze {
            let mut args = self.args(a);
            // SAFETY: `args` is a valid argument block for this handler.
            unsafe { f(&mut args) };
        }
    }

    /// Re-creates a file from its serialized data after kexec.
    pub(crate) fn retrieve(&self, data: u64) -> Result<ARef<File>> {
        let Some(f) = self.ops().retrieve else {
            return Err(EINVAL);
        };
        let mut args = self.args(&FileArgs {
            file: None,
            data,
            private: 0,
            retrieve_status: 0,
        });
        // SAFETY: `args` is a valid argument block for this handler.
        to_result(unsafe { f(&mut args) })?;
        let file = NonNull::new(args.file).ok_or(EINVAL)?;
        // SAFETY: On success the handler returns a file with a reference that it hands to us.
        Ok(unsafe { ARef::from_raw(file.cast::<File>()) })
    }

    /// Whether the file may be finished now.
    pub(crate) fn can_finish(&self, a: &FileArgs<'_>) -> bool {
        match self.ops().can_finish {
            Some(f) => {
                let mut args = self.args(a);
                // SAFETY: `args` is a valid argument block for this handler.
                unsafe { f(&mut args) }
            }
            None => true,
        }
    }

    /// Ends the life of an incoming preserved file.
    pub(crate) fn finish(&self, a: &FileArgs<'_>) {
        if let Some(f) = self.ops().finish {
            let mut args = self.args(a);
            // SAFETY: `args` is a valid argument block for this handler.
            unsafe { f(&mut args) };
        }
    }

    /// Tells the FLB test hook (lib/tests/liveupdate.c) about a new handler.
    pub(crate) fn test_register(&self) {
        #[cfg(CONFIG_LIVEUPDATE_TEST)]
        {
            extern "C" {
                // Declared in kernel/liveupdate/luo_internal.h, defined in
                // lib/tests/liveupdate.c.
                // The handler is passed as `void *`: the struct is opaque to this call.
                fn liveupdate_test_register(fh: *mut c_void);
            }
            // SAFETY: The handler is valid and registered.
            unsafe { liveupdate_test_register(self.0.as_ptr().cast()) };
        }
    }
}

/// A C File-Lifecycle-Bound object (`struct liveupdate_flb`).
///
/// # Invariants
///
/// `self.0` points to an FLB whose `ops` table is non-null and has every required callback
/// (`preserve`, `unpreserve`, `retrieve`, `finish`). It stays valid while registered and while
/// a [`ModuleRef`] on its owner is held. Its private fields are never touched: the Rust LUO
/// keeps FLB state in its own tables.
#[derive(Clone, Copy)]
pub(crate) struct Flb(NonNull<bindings::liveupdate_flb>);

// SAFETY: A C FLB is a constant table of callbacks that may be called from any thread.
unsafe impl Send for Flb {}
// SAFETY: See `Send`.
unsafe impl Sync for Flb {}

impl Flb {
    /// Wraps an FLB passed to the exported C API.
    ///
    /// # Safety
    ///
    /// `flb` is null or points to a `struct liveupdate_flb` that stays valid as described in
    /// the type invariants.
    unsafe fn from_raw(flb: *mut bindings::liveupdate_flb) -> Result<Self> {
        let flb = NonNull::new(flb).ok_or(EINVAL)?;
        // SAFETY: By the caller's guarantee `flb` is valid.
        let ops = unsafe { (*flb.as_ptr()).ops };
        if ops.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `ops` is non-null and, by the caller's guarantee, valid.
        let ops = unsafe { &*ops };
        if ops.preserve.is_none()
            || ops.unpreserve.is_none()
            || ops.retrieve.is_none()
            || ops.finish.is_none()
        {
            return Err(EINVAL);
        }
        // INVARIANT: Checked above, and the caller guarantees validity.
        Ok(Self(flb))
    }

    /// Looks up an FLB passed to the exported C API without validating its ops (it is only
    /// compared with registered ones).
    fn addr_of(flb: *mut bindings::liveupdate_flb) -> usize {
        flb as usize
    }

    fn ops(&self) -> &bindings::liveupdate_flb_ops {
        // SAFETY: By the type invariants, the FLB and its ops table are valid.
        unsafe { &*(*self.0.as_ptr()).ops }
    }

    /// The FLB's address, its identity.
    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The compatible string, without its NUL.
    pub(crate) fn compatible(&self) -> &[u8] {
        // SAFETY: By the type invariants, the FLB is valid.
        c_field(unsafe { &(*self.0.as_ptr()).compatible })
    }

    /// Takes a reference on the module that implements the FLB.
    pub(crate) fn module_get(&self) -> Result<ModuleRef> {
        // SAFETY: `owner` is the FLB's module (or null), alive while the FLB is registered.
        unsafe { ModuleRef::get(self.ops().owner, ENODEV) }
    }

    fn args(&self, data: u64, obj: usize) -> bindings::liveupdate_flb_op_args {
        bindings::liveupdate_flb_op_args {
            flb: self.0.as_ptr(),
            data,
            obj: obj as *mut c_void,
        }
    }

    /// Creates the outgoing object; returns its serialized data and the object.
    pub(crate) fn preserve(&self) -> Result<(u64, usize)> {
        let Some(f) = self.ops().preserve else {
            return Err(EINVAL);
        };
        let mut args = self.args(0, 0);
        // SAFETY: `args` is a valid argument block for this FLB.
        to_result(unsafe { f(&mut args) })?;
        Ok((args.data, args.obj as usize))
    }

    /// Destroys the outgoing object.
    pub(crate) fn unpreserve(&self, data: u64, obj: usize) {
        if let Some(f) = self.ops().unpreserve {
            let mut args = self.args(data, obj);
            // SAFETY: `args` is a valid argument block for this FLB.
            unsafe { f(&mut args) };
        }
    }

    /// Re-creates the incoming object from its serialized data.
    pub(crate) fn retrieve(&self, data: u64) -> Result<usize> {
        let Some(f) = self.ops().retrieve else {
            return Err(EINVAL);
        };
        let mut args = self.args(data, 0);
        // SAFETY: `args` is a valid argument block for this FLB.
        to_result(unsafe { f(&mut args) })?;
        Ok(args.obj as usize)
    }

    /// Ends the life of the incoming object.
    pub(crate) fn finish(&self, data: u64, obj: usize) {
        if let Some(f) = self.ops().finish {
            let mut args = self.args(data, obj);
            // SAFETY: `args` is a valid argument block for this FLB.
            unsafe { f(&mut args) };
        }
    }
}

/// Takes a reference on the file behind a user's fd.
pub(crate) fn fget(fd: i32) -> Result<ARef<File>> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let file = LocalFile::fget(fd)?;
    // SAFETY: LUO's ioctls never call `fdget_pos`, so none is active on this thread.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(file) })
}

// ---------------------------------------------------------------------------------------------
// Session files.

/// Creates the anonymous-inode file of a session, named `[luo_session] <name>` like the C
/// implementation's (systemd recognises session fds by that name). The file owns `session`.
pub(crate) fn session_getfile(name: &[u8], session: Arc<Session>) -> Result<ARef<File>> {
    const PREFIX: &[u8] = b"[luo_session] ";
    let mut buf = [0u8; 128];
    let len = PREFIX.len() + name.len();
    if len >= buf.len() || name.contains(&0) {
        return Err(EINVAL);
    }
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    buf[PREFIX.len()..len].copy_from_slice(name);

    let private = session.into_foreign();
    // SAFETY: `buf` is NUL-terminated; `SESSION_FOPS` is static; `private` is handed to the
    // file, whose release callback takes it back.
    let file = unsafe {
        bindings::anon_inode_getfile(
            buf.as_ptr().cast(),
            SESSION_FOPS_REF,
            private,
            bindings::O_RDWR as c_int,
        )
    };
    match from_err_ptr(file) {
        // SAFETY: `anon_inode_getfile` returned a new file with one reference, which we own.
        Ok(file) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) }),
        Err(e) => {
            // SAFETY: The file was not created, so `private` was not taken over.
            drop(unsafe { <Arc<Session> as ForeignOwnable>::from_foreign(private) });
            Err(e)
        }
    }
}

/// `release` of a session file.
///
/// # Safety
///
/// `file` is a session file created by [`session_getfile`], being released.
unsafe extern "C" fn session_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: The release call owns the private data, which `session_getfile` set from an
    // `Arc<Session>`.
    let session = unsafe { <Arc<Session> as ForeignOwnable>::from_foreign((*file).private_data) };
    luo_session::release(session);
    0
}

/// `unlocked_ioctl` (and, through `compat_ptr_ioctl`, `compat_ioctl`) of a session file.
///
/// # Safety
///
/// `file` is a live session file created by [`session_getfile`].
unsafe extern "C" fn session_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: The private data is an `Arc<Session>` that lives until `release`, which cannot
    // run during an ioctl on the file.
    let session = unsafe { <Arc<Session> as ForeignOwnable>::borrow((*file).private_data) };
    let session: Arc<Session> = session.into();
    match luo_session::ioctl(&session, cmd, arg) {
        Ok(ret) => ret as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// Session file operations; a `const`, promoted to a `'static` table.
const SESSION_FOPS_REF: &bindings::file_operations = &SESSION_FOPS;
const SESSION_FOPS: bindings::file_operations = bindings::file_operations {
    release: Some(session_release),
    unlocked_ioctl: Some(session_ioctl),
    // The uAPI structs have the same layout for 32-bit tasks (the u64 fields are
    // __aligned_u64), so compat tasks go through the same path.
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: bindings::compat_ptr_ioctl,
    owner: core::ptr::null_mut(),
    ..pin_init::zeroed()
};

// ---------------------------------------------------------------------------------------------
// The exported C API, exactly the prototypes of include/linux/liveupdate.h.

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
    crate::enabled()
}

/// Called by `kernel_kexec()`: freezes and serializes every outgoing session.
///
/// # Safety
///
/// None; `unsafe` for `#[export]`, as [`liveupdate_enabled`].
#[export]
pub(crate) unsafe extern "C" fn liveupdate_reboot() -> c_int {
    match crate::reboot() {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
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
    let Some(luo) = crate::luo() else {
        return EOPNOTSUPP.to_errno();
    };
    // SAFETY: By the caller's guarantee.
    let res = unsafe { Handler::from_raw(fh) }.and_then(|h| luo_file::register_handler(luo, h));
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
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
    if let Some(luo) = crate::luo() {
        luo_file::unregister_handler(luo, fh as usize);
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
    let Some(luo) = crate::luo() else {
        return EOPNOTSUPP.to_errno();
    };
    // SAFETY: By the caller's guarantee.
    let flb = unsafe { Flb::from_raw(flb) };
    let res = flb.and_then(|flb| luo_flb::register(luo, fh as usize, flb));
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
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
    if let Some(luo) = crate::luo() {
        luo_flb::unregister(luo, fh as usize, Flb::addr_of(flb));
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
    let Some(luo) = crate::luo() else {
        return EOPNOTSUPP.to_errno();
    };
    // SAFETY: By the caller's guarantee `flb` is null or a valid FLB, which C callers
    // allocate statically (it outlives the kernel's use of it).
    match unsafe { Flb::from_raw(flb) }.and_then(|flb| luo_flb::get_incoming(luo, flb)) {
        Ok(obj) => {
            if !objp.is_null() {
                // SAFETY: By the caller's guarantee.
                unsafe { *objp = obj as *mut c_void };
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Puts a reference taken by [`liveupdate_flb_get_incoming`].
///
/// # Safety
///
/// `flb` is any pointer (only compared with registered ones).
#[export]
pub(crate) unsafe extern "C" fn liveupdate_flb_put_incoming(flb: *mut bindings::liveupdate_flb) {
    if let Some(luo) = crate::luo() {
        luo_flb::put_incoming(luo, Flb::addr_of(flb));
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
    let Some(luo) = crate::luo() else {
        return EOPNOTSUPP.to_errno();
    };
    match luo_flb::get_outgoing(luo, Flb::addr_of(flb)) {
        Ok(obj) => {
            if !objp.is_null() {
                // SAFETY: By the caller's guarantee.
                unsafe { *objp = obj as *mut c_void };
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Puts a reference taken by [`liveupdate_flb_get_outgoing`].
///
/// # Safety
///
/// `flb` is any pointer (only compared with registered ones).
#[export]
pub(crate) unsafe extern "C" fn liveupdate_flb_put_outgoing(flb: *mut bindings::liveupdate_flb) {
    if let Some(luo) = crate::luo() {
        luo_flb::put_outgoing(luo, Flb::addr_of(flb));
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
    compatible: *const c_char,
) -> *mut bindings::liveupdate_file_handler {
    let Some(luo) = crate::luo() else {
        return core::ptr::null_mut();
    };
    // SAFETY: By the caller's guarantee.
    let compatible = unsafe { CStr::from_char_ptr(compatible) };
    luo.registry
        .lock()
        .by_compatible(compatible.to_bytes())
        .map_or(core::ptr::null_mut(), |e| e.handler.as_ptr())
}
