// SPDX-License-Identifier: GPL-2.0

//! The C types the crate works with, behind safe wrappers: file handlers ([`Handler`]) and
//! FLBs ([`Flb`]) whose methods call their C callbacks, module references ([`ModuleRef`]),
//! user fds ([`fget`]) and anonymous-inode files whose `file_operations` are built from a
//! trait ([`AnonFile`], the way `kernel::miscdevice` builds its vtable).
//!
//! Every pointer a C caller hands over is dereferenced here (KHO memory aside, which is
//! `kho`'s); the exported functions that receive them are in `exports`.

use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

use kernel::{
    bindings,
    error::{
        from_err_ptr,
        from_result,
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
        file::{
            FileDescriptorReservation,
            LocalFile, //
        },
        File, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
    types::ForeignOwnable,
};

use crate::abi::COMPAT_LEN;

pub(crate) struct LocalModule;

impl kernel::module::ModuleMetadata for LocalModule {
    const NAME: &'static CStr = c"liveupdate";

    const THIS_MODULE: kernel::ThisModule = {
        // SAFETY: Built-in code has a null `THIS_MODULE`; `try_module_get` and `module_put`
        // accept it.
        unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) }
    };
}

/// The bytes of a fixed-size C string field, up to (not including) its NUL (the kernel's
/// `c_char` is `u8`).
fn c_field(field: &[c_char; COMPAT_LEN]) -> &[u8] {
    let len = field.iter().position(|&b| b == 0).unwrap_or(COMPAT_LEN);
    &field[..len]
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
/// `ptr` points to a handler whose `ops` table is non-null and has every required
/// callback (`can_preserve`, `preserve`, `unpreserve`, `retrieve`, `finish`). The handler
/// stays valid while it is registered and while a [`ModuleRef`] on its owner is held (the
/// contract of `liveupdate_register_file_handler()`). The callback fields are those of its
/// ops table, which C handlers never change.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    ptr: NonNull<bindings::liveupdate_file_handler>,
    /// The required callbacks, read once from the ops table.
    can_preserve: CanPreserveFn,
    preserve: FileFn,
    unpreserve: FileVoidFn,
    retrieve: FileFn,
    finish: FileVoidFn,
}

/// `liveupdate_file_ops::can_preserve`.
type CanPreserveFn =
    unsafe extern "C" fn(*mut bindings::liveupdate_file_handler, *mut bindings::file) -> bool;
/// A file callback that can fail.
type FileFn = unsafe extern "C" fn(*mut bindings::liveupdate_file_op_args) -> c_int;
/// A file callback that cannot fail.
type FileVoidFn = unsafe extern "C" fn(*mut bindings::liveupdate_file_op_args);
/// An FLB callback that can fail.
type FlbFn = unsafe extern "C" fn(*mut bindings::liveupdate_flb_op_args) -> c_int;
/// An FLB callback that cannot fail.
type FlbVoidFn = unsafe extern "C" fn(*mut bindings::liveupdate_flb_op_args);

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
    pub(crate) unsafe fn from_raw(fh: *mut bindings::liveupdate_file_handler) -> Result<Self> {
        let fh = NonNull::new(fh).ok_or(EINVAL)?;
        // SAFETY: By the caller's guarantee `fh` is valid.
        let ops = unsafe { (*fh.as_ptr()).ops };
        if ops.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `ops` is non-null and, by the caller's guarantee, valid.
        let ops = unsafe { &*ops };
        let (Some(can_preserve), Some(preserve), Some(unpreserve), Some(retrieve), Some(finish)) = (
            ops.can_preserve,
            ops.preserve,
            ops.unpreserve,
            ops.retrieve,
            ops.finish,
        ) else {
            return Err(EINVAL);
        };
        // INVARIANT: Checked above, and the caller guarantees validity.
        Ok(Self {
            ptr: fh,
            can_preserve,
            preserve,
            unpreserve,
            retrieve,
            finish,
        })
    }

    fn ops(&self) -> &bindings::liveupdate_file_ops {
        // SAFETY: By the type invariants, the handler and its ops table are valid.
        unsafe { &*(*self.ptr.as_ptr()).ops }
    }

    /// The handler's address, its identity.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The C handler.
    #[cfg(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT)]
    pub(crate) fn as_ptr(&self) -> *mut bindings::liveupdate_file_handler {
        self.ptr.as_ptr()
    }

    /// The compatible string, without its NUL.
    pub(crate) fn compatible(&self) -> &[u8] {
        c_field(self.compatible_field())
    }

    /// The compatible field, whole (a NUL ends the string; what follows it is not ours to
    /// trust).
    pub(crate) fn compatible_field(&self) -> &[u8; COMPAT_LEN] {
        // SAFETY: By the type invariants, the handler is valid.
        unsafe { &(*self.ptr.as_ptr()).compatible }
    }

    /// Takes a reference on the module that implements the handler.
    pub(crate) fn module_get(&self, err: Error) -> Result<ModuleRef> {
        // SAFETY: `owner` is the handler's module (or null for built-in code), alive while the
        // handler is registered.
        unsafe { ModuleRef::get(self.ops().owner, err) }
    }

    fn args(&self, a: &FileArgs<'_>) -> bindings::liveupdate_file_op_args {
        bindings::liveupdate_file_op_args {
            handler: self.ptr.as_ptr(),
            retrieve_status: a.retrieve_status,
            file: a.file.map_or(core::ptr::null_mut(), |f| f.as_ptr()),
            serialized_data: a.data,
            private_data: a.private as *mut c_void,
        }
    }

    /// Whether the handler can preserve `file`.
    pub(crate) fn can_preserve(&self, file: &File) -> bool {
        // SAFETY: The callback was provided by the handler for this purpose; `file` is valid.
        unsafe { (self.can_preserve)(self.ptr.as_ptr(), file.as_ptr()) }
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
        let f = self.preserve;
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
        let mut args = self.args(a);
        // SAFETY: `args` is a valid argument block for this handler.
        unsafe { (self.unpreserve)(&mut args) };
    }

    /// Freezes a preserved file just before kexec; may update the serialized data.
    pub(crate) fn freeze(&self, a: &FileArgs<'_>) -> Result<u64> {
        let mut args = self.args(a);
        if let Some(f) = self.ops().freeze {
            // SAFETY: `args` is a valid argument block for this handler.
            let ret = unsafe { f(&mut args) };
            // Tested here rather than by a call to `to_result`: reboot runs this once per file
            // while the machine waits.
            if ret < 0 {
                return Err(Error::from_errno(ret));
            }
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
        let f = self.retrieve;
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
        let mut args = self.args(a);
        // SAFETY: `args` is a valid argument block for this handler.
        unsafe { (self.finish)(&mut args) };
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
            unsafe { liveupdate_test_register(self.ptr.as_ptr().cast()) };
        }
    }
}

/// A C File-Lifecycle-Bound object (`struct liveupdate_flb`).
///
/// # Invariants
///
/// `ptr` points to an FLB whose `ops` table is non-null and has every required callback
/// (`preserve`, `unpreserve`, `retrieve`, `finish`). It stays valid while registered and while
/// a [`ModuleRef`] on its owner is held. Its private fields are never touched: the Rust LUO
/// keeps FLB state in its own tables. The callback fields are those of its ops table.
#[derive(Clone, Copy)]
pub(crate) struct Flb {
    ptr: NonNull<bindings::liveupdate_flb>,
    /// The required callbacks, read once from the ops table.
    preserve: FlbFn,
    unpreserve: FlbVoidFn,
    retrieve: FlbFn,
    finish: FlbVoidFn,
}

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
    pub(crate) unsafe fn from_raw(flb: *mut bindings::liveupdate_flb) -> Result<Self> {
        let flb = NonNull::new(flb).ok_or(EINVAL)?;
        // SAFETY: By the caller's guarantee `flb` is valid.
        let ops = unsafe { (*flb.as_ptr()).ops };
        if ops.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `ops` is non-null and, by the caller's guarantee, valid.
        let ops = unsafe { &*ops };
        let (Some(preserve), Some(unpreserve), Some(retrieve), Some(finish)) =
            (ops.preserve, ops.unpreserve, ops.retrieve, ops.finish)
        else {
            return Err(EINVAL);
        };
        // INVARIANT: Checked above, and the caller guarantees validity.
        Ok(Self {
            ptr: flb,
            preserve,
            unpreserve,
            retrieve,
            finish,
        })
    }

    /// Looks up an FLB passed to the exported C API without validating its ops (it is only
    /// compared with registered ones).
    pub(crate) fn addr_of(flb: *mut bindings::liveupdate_flb) -> usize {
        flb as usize
    }

    fn ops(&self) -> &bindings::liveupdate_flb_ops {
        // SAFETY: By the type invariants, the FLB and its ops table are valid.
        unsafe { &*(*self.ptr.as_ptr()).ops }
    }

    /// The FLB's address, its identity.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The compatible string, without its NUL.
    pub(crate) fn compatible(&self) -> &[u8] {
        // SAFETY: By the type invariants, the FLB is valid.
        c_field(unsafe { &(*self.ptr.as_ptr()).compatible })
    }

    /// Takes a reference on the module that implements the FLB.
    pub(crate) fn module_get(&self) -> Result<ModuleRef> {
        // SAFETY: `owner` is the FLB's module (or null), alive while the FLB is registered.
        unsafe { ModuleRef::get(self.ops().owner, ENODEV) }
    }

    fn args(&self, data: u64, obj: usize) -> bindings::liveupdate_flb_op_args {
        bindings::liveupdate_flb_op_args {
            flb: self.ptr.as_ptr(),
            data,
            obj: obj as *mut c_void,
        }
    }

    /// Creates the outgoing object; returns its serialized data and the object.
    pub(crate) fn preserve(&self) -> Result<(u64, usize)> {
        let f = self.preserve;
        let mut args = self.args(0, 0);
        // SAFETY: `args` is a valid argument block for this FLB.
        to_result(unsafe { f(&mut args) })?;
        Ok((args.data, args.obj as usize))
    }

    /// Destroys the outgoing object.
    pub(crate) fn unpreserve(&self, data: u64, obj: usize) {
        let mut args = self.args(data, obj);
        // SAFETY: `args` is a valid argument block for this FLB.
        unsafe { (self.unpreserve)(&mut args) };
    }

    /// Re-creates the incoming object from its serialized data.
    pub(crate) fn retrieve(&self, data: u64) -> Result<usize> {
        let f = self.retrieve;
        let mut args = self.args(data, 0);
        // SAFETY: `args` is a valid argument block for this FLB.
        to_result(unsafe { f(&mut args) })?;
        Ok(args.obj as usize)
    }

    /// Ends the life of the incoming object.
    pub(crate) fn finish(&self, data: u64, obj: usize) {
        let mut args = self.args(data, obj);
        // SAFETY: `args` is a valid argument block for this FLB.
        unsafe { (self.finish)(&mut args) };
    }
}

/// Logs the previous kernel's update number, the line C's `luo_early_startup()` logs, through
/// `_printk`'s own conversion (`%llu`: C's `%lld` prints a number from 2^63 up as negative,
/// which `pr_info!` never did here). It runs in the next kernel's
/// blackout window, where `pr_info!` would format the same line through `core::fmt` and `%pA`
/// for about 300 more instructions (`lu bench -p`).
pub(crate) fn log_retrieved(previous_num: u64) {
    #[cfg(CONFIG_PRINTK)]
    // SAFETY: The format is a NUL-terminated literal with one conversion, `%llu`, whose
    // argument is the `u64` (`c_ulonglong`) passed.
    unsafe {
        bindings::_printk(
            c"\x016luo: Retrieved live update data, liveupdate number: %llu\n".as_char_ptr(),
            previous_num,
        )
    };
    #[cfg(not(CONFIG_PRINTK))]
    let _ = previous_num;
}

/// Takes a reference on the file behind a user's fd.
pub(crate) fn fget(fd: i32) -> Result<ARef<File>> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let file = LocalFile::fget(fd)?;
    // SAFETY: LUO's ioctls never call `fdget_pos`, so none is active on this thread.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(file) })
}

/// An unused fd of the calling task, closed on exec.
pub(crate) fn unused_fd() -> Result<FileDescriptorReservation> {
    FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)
}

// ---------------------------------------------------------------------------------------------
// Anonymous-inode files.

/// An object that owns an anonymous-inode file (a session): its ioctls and its release.
pub(crate) trait AnonFile: Send + Sync + Sized + 'static {
    /// An ioctl on the file.
    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> Result<isize>;

    /// The last reference to the file went away; the file's reference on `this` comes back.
    fn release(this: Arc<Self>);
}

/// The `file_operations` of the files of one [`AnonFile`] type.
struct AnonVtable<T>(PhantomData<T>);

impl<T: AnonFile> AnonVtable<T> {
    /// `release`.
    ///
    /// # Safety
    ///
    /// `file` is a file made by [`anon_getfile`] for `T`, being released.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The release call owns the private data, which `anon_getfile` set from an
        // `Arc<T>`.
        let this = unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*file).private_data) };
        T::release(this);
        0
    }

    /// `unlocked_ioctl` (and, through `compat_ptr_ioctl`, `compat_ioctl`).
    ///
    /// # Safety
    ///
    /// `file` is a live file made by [`anon_getfile`] for `T`.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The private data is an `Arc<T>` that lives until `release`, which cannot run
        // during an ioctl on the file.
        let this = unsafe { <Arc<T> as ForeignOwnable>::borrow((*file).private_data) };
        let this: Arc<T> = this.into();
        from_result(|| Ok(T::ioctl(&this, cmd, arg)? as c_long))
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        release: Some(Self::release),
        unlocked_ioctl: Some(Self::ioctl),
        // The LUO uAPI structs have the same layout for 32-bit tasks (their u64 fields are
        // __aligned_u64), so compat tasks go through the same path.
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        owner: core::ptr::null_mut(),
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::file_operations {
        &Self::VTABLE
    }
}

/// Creates an anonymous-inode file named `prefix` followed by `name`, which owns `this`.
pub(crate) fn anon_getfile<T: AnonFile>(
    prefix: &[u8],
    name: &[u8],
    this: Arc<T>,
) -> Result<ARef<File>> {
    let mut buf = [0u8; 128];
    let len = prefix.len() + name.len();
    if len >= buf.len() || name.contains(&0) || prefix.contains(&0) {
        return Err(EINVAL);
    }
    buf[..prefix.len()].copy_from_slice(prefix);
    buf[prefix.len()..len].copy_from_slice(name);

    let private = this.into_foreign();
    // SAFETY: `buf` is NUL-terminated; the vtable is static; `private` is handed to the file,
    // whose release callback takes it back.
    let file = unsafe {
        bindings::anon_inode_getfile(
            buf.as_ptr().cast(),
            AnonVtable::<T>::build(),
            private,
            bindings::O_RDWR as c_int,
        )
    };
    match from_err_ptr(file) {
        // SAFETY: `anon_inode_getfile` returned a new file with one reference, which we own.
        Ok(file) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) }),
        Err(e) => {
            // SAFETY: The file was not created, so `private` was not taken over.
            drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(private) });
            Err(e)
        }
    }
}
