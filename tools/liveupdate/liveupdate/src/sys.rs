// SPDX-License-Identifier: GPL-2.0

//! The uAPI of `/dev/liveupdate` (`include/uapi/linux/liveupdate.h`), as
//! typed structs, and the ioctls that take them.
//!
//! Every ioctl argument starts with its own size, which the kernel checks
//! against the smallest size it knows; bytes past the known fields must be
//! zero. The constructors here write `size` and zero everything else, so a
//! caller sets only the fields it means.
//!
//! The ioctls take a [`DeviceFd`] or a [`SessionFd`], never a bare
//! descriptor: their numbers (`_IO(0xBA, n)`) carry no size, and another
//! driver could read or write more than the argument under the same number.
//! Both types check, when they are made from a descriptor of unknown origin,
//! that it is the LUO's device or one of its session files.
//!
//! This module holds all of the crate's `unsafe`: the ioctl calls and the
//! taking of the descriptors they return.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::ioctl::{ioctl, opcode, Opcode, Updater};

/// The ioctl type of `/dev/liveupdate` and of session files.
pub const IOCTL_TYPE: u8 = 0xBA;
/// The length of a session name, its terminating NUL included.
pub const SESSION_NAME_LENGTH: usize = 64;

/// `LIVEUPDATE_IOCTL_CREATE_SESSION`.
pub const IOCTL_CREATE_SESSION: Opcode = opcode::none(IOCTL_TYPE, 0x00);
/// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`.
pub const IOCTL_RETRIEVE_SESSION: Opcode = opcode::none(IOCTL_TYPE, 0x01);
/// `LIVEUPDATE_SESSION_PRESERVE_FD`.
pub const SESSION_PRESERVE_FD: Opcode = opcode::none(IOCTL_TYPE, 0x40);
/// `LIVEUPDATE_SESSION_RETRIEVE_FD`.
pub const SESSION_RETRIEVE_FD: Opcode = opcode::none(IOCTL_TYPE, 0x41);
/// `LIVEUPDATE_SESSION_FINISH`.
pub const SESSION_FINISH: Opcode = opcode::none(IOCTL_TYPE, 0x42);
/// `LIVEUPDATE_SESSION_GET_NAME`.
pub const SESSION_GET_NAME: Opcode = opcode::none(IOCTL_TYPE, 0x43);

/// `struct liveupdate_ioctl_create_session` and
/// `struct liveupdate_ioctl_retrieve_session` (the same layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionArg {
    /// Size of this struct.
    pub size: u32,
    /// Output: the session's file descriptor.
    pub fd: i32,
    /// The session's name, NUL-terminated.
    pub name: [u8; SESSION_NAME_LENGTH],
}

/// `struct liveupdate_session_preserve_fd` and
/// `struct liveupdate_session_retrieve_fd` (the same layout).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdArg {
    /// Size of this struct.
    pub size: u32,
    /// Input of PRESERVE_FD, output of RETRIEVE_FD.
    pub fd: i32,
    /// The caller's name of the file inside its session (`__aligned_u64`).
    pub token: u64,
}

/// `struct liveupdate_session_finish`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinishArg {
    /// Size of this struct.
    pub size: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct liveupdate_session_get_name`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetNameArg {
    /// Size of this struct.
    pub size: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Output: the session's name, NUL-terminated.
    pub name: [u8; SESSION_NAME_LENGTH],
}

// The layouts of the uAPI header: `FdArg`'s `__aligned_u64` token aligns it
// to 8 on every target (`repr(align(8))` where `u64` is 4-aligned).
const _: () = {
    assert!(core::mem::size_of::<SessionArg>() == 72);
    assert!(core::mem::size_of::<FdArg>() == 16);
    assert!(core::mem::align_of::<FdArg>() == 8);
    assert!(core::mem::size_of::<FinishArg>() == 8);
    assert!(core::mem::size_of::<GetNameArg>() == 72);
};

/// The `size` field of a struct: its size, which fits in a `u32`.
const fn size_of<T>() -> u32 {
    core::mem::size_of::<T>() as u32
}

impl SessionArg {
    /// An argument for `name` (already checked: at most 63 bytes, no NUL),
    /// zero everywhere else.
    pub fn new(name: &[u8]) -> Self {
        let mut arg = Self {
            size: size_of::<Self>(),
            fd: -1,
            name: [0; SESSION_NAME_LENGTH],
        };
        let n = name.len().min(SESSION_NAME_LENGTH - 1);
        arg.name[..n].copy_from_slice(&name[..n]);
        arg
    }
}

impl FdArg {
    /// An argument for `fd` (-1 for RETRIEVE_FD) and `token`.
    pub fn new(fd: i32, token: u64) -> Self {
        Self {
            size: size_of::<Self>(),
            fd,
            token,
        }
    }
}

impl Default for FinishArg {
    fn default() -> Self {
        Self {
            size: size_of::<Self>(),
            reserved: 0,
        }
    }
}

impl Default for GetNameArg {
    fn default() -> Self {
        Self {
            size: size_of::<Self>(),
            reserved: 0,
            name: [0; SESSION_NAME_LENGTH],
        }
    }
}

/// The sysfs file that gives the LUO device's number, `MAJOR:MINOR`.
const DEVICE_NUMBER: &str = "/sys/class/misc/liveupdate/dev";
/// How a session file reads in `/proc/self/fd` (C and Rust LUO alike).
const SESSION_LINK: &str = "anon_inode:[luo_session] ";

/// An open `/dev/liveupdate`.
///
/// # Invariants
///
/// The descriptor is the LUO's misc device: a character device with the
/// number of [`DEVICE_NUMBER`].
#[derive(Debug)]
pub struct DeviceFd(OwnedFd);

impl DeviceFd {
    /// Checks that `fd` is the LUO's device: `ENOTTY` if it is another file
    /// (or sysfs cannot tell).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice {
            return Err(Errno::NOTTY.into());
        }
        let want = std::fs::read_to_string(DEVICE_NUMBER).map_err(|_| Errno::NOTTY)?;
        let got = format!(
            "{}:{}",
            rustix::fs::major(st.st_rdev),
            rustix::fs::minor(st.st_rdev)
        );
        if want.trim() != got {
            return Err(Errno::NOTTY.into());
        }
        // INVARIANT: a character device with the LUO's number.
        Ok(Self(fd))
    }
}

impl AsFd for DeviceFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A LUO session file.
///
/// # Invariants
///
/// The descriptor is a session file of the LUO: returned by its
/// CREATE_SESSION or RETRIEVE_SESSION, or checked by [`SessionFd::new`].
#[derive(Debug)]
pub struct SessionFd(OwnedFd);

impl SessionFd {
    /// Checks that `fd` is a LUO session (by its anonymous inode's name):
    /// `ENOTTY` if it is another file (or `/proc` cannot tell).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|_| Errno::NOTTY)?;
        if !link.to_string_lossy().starts_with(SESSION_LINK) {
            return Err(Errno::NOTTY.into());
        }
        // INVARIANT: an anonymous inode of the LUO's session type.
        Ok(Self(fd))
    }

    /// Gives up the descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for SessionFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

macro_rules! updater_ioctl {
    ($(#[$doc:meta])* $name:ident, $file:ty, $opcode:expr, $arg:ty) => {
        $(#[$doc])*
        /// `arg.size` is set to the struct's size first: the kernel copies
        /// back as many bytes as `size` says, up to its own struct's.
        pub fn $name(file: &$file, arg: &mut $arg) -> io::Result<()> {
            arg.size = size_of::<$arg>();
            // SAFETY: the opcode is the uAPI's for this command, and `$arg` is
            // the `#[repr(C)]` struct of the uAPI header that the command
            // reads and writes (layout checked above); it is borrowed mutably
            // for the whole call.
            let updater = unsafe { Updater::<{ $opcode }, $arg>::new(arg) };
            // SAFETY: `file` is the LUO's device or one of its sessions (the
            // type's invariant), whose ioctls read and write at most
            // `size_of::<$arg>()` bytes of `arg` for this command: the size
            // the argument states.
            unsafe { ioctl(file.as_fd(), updater) }.map_err(io::Error::from)
        }
    };
}

updater_ioctl!(
    /// `LIVEUPDATE_IOCTL_CREATE_SESSION` on `/dev/liveupdate`.
    create_session,
    DeviceFd,
    IOCTL_CREATE_SESSION,
    SessionArg
);
updater_ioctl!(
    /// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION` on `/dev/liveupdate`.
    retrieve_session,
    DeviceFd,
    IOCTL_RETRIEVE_SESSION,
    SessionArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_PRESERVE_FD` on a session.
    preserve_fd,
    SessionFd,
    SESSION_PRESERVE_FD,
    FdArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_RETRIEVE_FD` on a session.
    retrieve_fd,
    SessionFd,
    SESSION_RETRIEVE_FD,
    FdArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_FINISH` on a session.
    finish,
    SessionFd,
    SESSION_FINISH,
    FinishArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_GET_NAME` on a session.
    get_name,
    SessionFd,
    SESSION_GET_NAME,
    GetNameArg
);

/// The session CREATE_SESSION or RETRIEVE_SESSION returned in `arg.fd`:
/// only right after such a call succeeded with this `arg`.
pub(crate) fn session_of(arg: &SessionArg) -> io::Result<SessionFd> {
    // INVARIANT: the LUO returned this descriptor for a session.
    Ok(SessionFd(take_fd(arg.fd)?))
}

/// Takes ownership of the descriptor a successful ioctl wrote into its
/// argument.
/// Only for the `fd` of an argument of a call that just succeeded.
pub(crate) fn take_fd(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(Errno::BADF.into());
    }
    // SAFETY: on success the kernel installed `fd` in this process's table
    // for the caller, and nothing else owns it: the argument it was read from
    // is the caller's own and is not read again.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layouts_match_the_uapi_header() {
        assert_eq!(offset_of!(SessionArg, fd), 4);
        assert_eq!(offset_of!(SessionArg, name), 8);
        assert_eq!(offset_of!(FdArg, fd), 4);
        assert_eq!(offset_of!(FdArg, token), 8);
        assert_eq!(offset_of!(GetNameArg, name), 8);
    }

    #[test]
    fn opcodes_match_the_uapi_header() {
        // _IO(0xBA, nr) is (0xBA << 8) | nr.
        assert_eq!(IOCTL_CREATE_SESSION, 0xBA00);
        assert_eq!(IOCTL_RETRIEVE_SESSION, 0xBA01);
        assert_eq!(SESSION_PRESERVE_FD, 0xBA40);
        assert_eq!(SESSION_RETRIEVE_FD, 0xBA41);
        assert_eq!(SESSION_FINISH, 0xBA42);
        assert_eq!(SESSION_GET_NAME, 0xBA43);
    }

    #[test]
    fn arguments_carry_their_size_and_a_zero_tail() {
        let a = SessionArg::new(b"abc");
        assert_eq!(a.size, 72);
        assert_eq!(&a.name[..4], b"abc\0");
        assert!(a.name[3..].iter().all(|&b| b == 0));
        assert_eq!(FdArg::new(3, 7).size, 16);
        assert_eq!(
            FinishArg::default(),
            FinishArg {
                size: 8,
                reserved: 0
            }
        );
        let g = GetNameArg::default();
        assert_eq!((g.size, g.reserved), (72, 0));
        assert!(g.name.iter().all(|&b| b == 0));
    }

    #[test]
    fn another_file_is_no_session_and_no_device() {
        let memfd = || rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let e = SessionFd::new(memfd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::NOTTY.raw_os_error()));
        let e = DeviceFd::new(memfd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::NOTTY.raw_os_error()));
        // A character device of another number (or any, without the LUO).
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert!(DeviceFd::new(null).is_err());
    }

    #[test]
    fn fd_args_are_8_aligned_like_aligned_u64() {
        assert_eq!(core::mem::align_of::<FdArg>(), 8);
    }
}
