// SPDX-License-Identifier: GPL-2.0

//! The uAPI of `/dev/liveupdate` (`include/uapi/linux/liveupdate.h`), as
//! typed structs, and the ioctls that take them.
//!
//! Every ioctl argument starts with its own size, which the kernel checks
//! against the smallest size it knows; bytes past the known fields must be
//! zero. The constructors here write `size` and zero everything else, so a
//! caller sets only the fields it means.
//!
//! This module holds all of the crate's `unsafe`: the ioctl calls and the
//! taking of the descriptors they return.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

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
#[repr(C)]
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

// The layouts of the uAPI header (x86_64 and every other 64-bit target; the
// `__aligned_u64` token aligns `FdArg` to 8 on 32-bit targets too).
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

macro_rules! updater_ioctl {
    ($(#[$doc:meta])* $name:ident, $opcode:expr, $arg:ty) => {
        $(#[$doc])*
        pub fn $name(fd: BorrowedFd<'_>, arg: &mut $arg) -> io::Result<()> {
            // SAFETY: the opcode is the uAPI's for this command, and `$arg` is
            // the `#[repr(C)]` struct of the uAPI header that the command
            // reads and writes (layout checked above); it is borrowed mutably
            // for the whole call.
            let updater = unsafe { Updater::<{ $opcode }, $arg>::new(arg) };
            // SAFETY: `updater` describes a valid ioctl (above); the kernel
            // reads and writes at most `arg.size` bytes of it.
            unsafe { ioctl(fd, updater) }.map_err(io::Error::from)
        }
    };
}

updater_ioctl!(
    /// `LIVEUPDATE_IOCTL_CREATE_SESSION` on `/dev/liveupdate`.
    create_session,
    IOCTL_CREATE_SESSION,
    SessionArg
);
updater_ioctl!(
    /// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION` on `/dev/liveupdate`.
    retrieve_session,
    IOCTL_RETRIEVE_SESSION,
    SessionArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_PRESERVE_FD` on a session.
    preserve_fd,
    SESSION_PRESERVE_FD,
    FdArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_RETRIEVE_FD` on a session.
    retrieve_fd,
    SESSION_RETRIEVE_FD,
    FdArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_FINISH` on a session.
    finish,
    SESSION_FINISH,
    FinishArg
);
updater_ioctl!(
    /// `LIVEUPDATE_SESSION_GET_NAME` on a session.
    get_name,
    SESSION_GET_NAME,
    GetNameArg
);

/// Takes ownership of the descriptor a successful ioctl wrote into its
/// argument.
pub fn take_fd(fd: i32) -> io::Result<OwnedFd> {
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
    fn an_ioctl_on_another_file_is_an_errno() {
        let memfd = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        use std::os::fd::AsFd;
        let err = finish(memfd.as_fd(), &mut FinishArg::default()).unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::NOTTY.raw_os_error())
        );
    }
}
