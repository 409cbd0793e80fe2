// SPDX-License-Identifier: GPL-2.0

//! A safe API over the uAPI of the Live Update Orchestrator (LUO),
//! `/dev/liveupdate` (`include/uapi/linux/liveupdate.h`).
//!
//! A [`Device`] is the one open of `/dev/liveupdate` (the kernel allows a
//! single opener, normally `luod`). It creates sessions before a live update
//! and retrieves them, by name, in the next kernel. A [`Session`] preserves
//! file descriptors under tokens, gives them back in the next kernel, and is
//! finished once everything was retrieved. Every file descriptor is owned:
//! dropping a [`Device`] or [`Session`] closes it, and closing a session's
//! last descriptor before the kexec drops what it preserved.
//!
//! Errors are [`std::io::Error`]s carrying the kernel's errno.
//!
//! # Examples
//!
//! Before the kexec:
//!
//! ```no_run
//! use std::os::fd::AsFd;
//!
//! let dev = liveupdate::Device::open()?;
//! let session = dev.create_session("vm-42")?;
//! let memfd = rustix::fs::memfd_create("guest-ram", rustix::fs::MemfdFlags::CLOEXEC)?;
//! rustix::fs::ftruncate(&memfd, 1 << 20)?;
//! session.preserve(memfd.as_fd(), 1)?;
//! // Keep `dev` and `session` open until reboot(LINUX_REBOOT_CMD_KEXEC).
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! In the next kernel:
//!
//! ```no_run
//! let dev = liveupdate::Device::open()?;
//! let session = dev.retrieve_session("vm-42")?;
//! let memfd = session.retrieve(1)?;
//! session.finish()?;
//! # drop(memfd);
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(unsafe_code)]

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

#[expect(unsafe_code, reason = "the ioctl wrappers: the crate's only unsafe")]
pub mod sys;

/// The device node of the LUO.
pub const DEVICE_PATH: &str = "/dev/liveupdate";

/// A session name: 1 to 63 bytes, no NUL (the kernel keeps 64 with the NUL).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionName(String);

impl SessionName {
    /// The longest name, in bytes.
    pub const MAX_LEN: usize = sys::SESSION_NAME_LENGTH - 1;

    /// Checks `name`: `EINVAL` if it is empty, longer than
    /// [`SessionName::MAX_LEN`] bytes or contains a NUL.
    ///
    /// ```
    /// use liveupdate::SessionName;
    ///
    /// assert!(SessionName::new("vm-42").is_ok());
    /// assert!(SessionName::new("").is_err());
    /// assert!(SessionName::new(&"x".repeat(64)).is_err());
    /// ```
    pub fn new(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() > Self::MAX_LEN || name.contains('\0') {
            return Err(Errno::INVAL.into());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of a kernel answer: the bytes before the first NUL, which
    /// must be valid UTF-8 (`EILSEQ` otherwise) and not empty (`EINVAL`).
    fn from_kernel(raw: &[u8; sys::SESSION_NAME_LENGTH]) -> io::Result<Self> {
        let name = CStr::from_bytes_until_nul(raw).map_err(|_| Errno::INVAL)?;
        let name = name.to_str().map_err(|_| Errno::ILSEQ)?;
        Self::new(name)
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TryFrom<&str> for SessionName {
    type Error = io::Error;

    fn try_from(name: &str) -> io::Result<Self> {
        Self::new(name)
    }
}

/// The open `/dev/liveupdate`.
#[derive(Debug)]
pub struct Device {
    fd: sys::DeviceFd,
}

impl Device {
    /// Opens [`DEVICE_PATH`]. `EBUSY` if another process has it open.
    pub fn open() -> io::Result<Self> {
        Self::open_path(DEVICE_PATH)
    }

    /// Opens the device at `path`: `ENOTTY` if it is not the LUO's.
    pub fn open_path(path: impl AsRef<Path>) -> io::Result<Self> {
        let fd = rustix::fs::open(path.as_ref(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Self {
            fd: sys::DeviceFd::new(fd)?,
        })
    }

    /// Creates an outgoing session, preserved at the next
    /// reboot(LINUX_REBOOT_CMD_KEXEC) as long as one of its descriptors is
    /// open. `EEXIST` if an outgoing session has this name.
    pub fn create_session(&self, name: &str) -> io::Result<Session> {
        self.session_ioctl(name, sys::create_session)
    }

    /// Retrieves a session the previous kernel preserved. `ENOENT` if there
    /// is none by this name, `EINVAL` if it was retrieved already.
    pub fn retrieve_session(&self, name: &str) -> io::Result<Session> {
        self.session_ioctl(name, sys::retrieve_session)
    }

    /// CREATE_SESSION or RETRIEVE_SESSION of `name`.
    fn session_ioctl(
        &self,
        name: &str,
        ioctl: fn(&sys::DeviceFd, &mut sys::SessionArg) -> io::Result<()>,
    ) -> io::Result<Session> {
        let name = SessionName::new(name)?;
        let mut arg = sys::SessionArg::new(name.as_str().as_bytes());
        ioctl(&self.fd, &mut arg)?;
        Ok(Session {
            fd: sys::session_of(&arg)?,
        })
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A LUO session: created by [`Device::create_session`], retrieved by
/// [`Device::retrieve_session`], or received from another process (luod
/// hands session descriptors to its clients) through [`Session::from_fd`].
#[derive(Debug)]
pub struct Session {
    fd: sys::SessionFd,
}

impl Session {
    /// Takes a descriptor that is said to be a session (received from
    /// luod, inherited): `ENOTTY` if it is another kind of file.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        Ok(Self {
            fd: sys::SessionFd::new(fd)?,
        })
    }

    /// Preserves `file` under `token` (any `u64`, unique in this session).
    /// `EEXIST` if the token is taken, `ENOENT` if no handler can preserve
    /// this kind of file.
    pub fn preserve(&self, file: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut arg = sys::FdArg::new(file.as_raw_fd(), token);
        sys::preserve_fd(&self.fd, &mut arg)
    }

    /// Retrieves the file preserved under `token` in the previous kernel.
    pub fn retrieve(&self, token: u64) -> io::Result<OwnedFd> {
        let mut arg = sys::FdArg::new(-1, token);
        sys::retrieve_fd(&self.fd, &mut arg)?;
        sys::take_fd(arg.fd)
    }

    /// Finishes a retrieved session: every file was retrieved and the
    /// previous kernel's state of it may go. `EBUSY` if a file was not
    /// retrieved.
    pub fn finish(&self) -> io::Result<()> {
        sys::finish(&self.fd, &mut sys::FinishArg::default())
    }

    /// The session's name.
    pub fn name(&self) -> io::Result<SessionName> {
        let mut arg = sys::GetNameArg::default();
        sys::get_name(&self.fd, &mut arg)?;
        SessionName::from_kernel(&arg.name)
    }

    /// Gives up ownership of the descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.fd.into_fd()
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Session> for OwnedFd {
    fn from(session: Session) -> Self {
        session.fd.into_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(SessionName::new("a").unwrap().as_str(), "a");
        assert!(SessionName::new(&"n".repeat(63)).is_ok());
        for bad in ["", "a\0b"] {
            let e = SessionName::new(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(Errno::INVAL.raw_os_error()));
        }
        assert!(SessionName::new(&"n".repeat(64)).is_err());
    }

    #[test]
    fn kernel_names_end_at_the_first_nul() {
        let mut raw = [0u8; sys::SESSION_NAME_LENGTH];
        raw[..3].copy_from_slice(b"abc");
        raw[4] = b'z';
        assert_eq!(SessionName::from_kernel(&raw).unwrap().as_str(), "abc");
        assert!(SessionName::from_kernel(&[0; sys::SESSION_NAME_LENGTH]).is_err());
        assert!(SessionName::from_kernel(&[b'x'; sys::SESSION_NAME_LENGTH]).is_err());
        raw[0] = 0xff;
        let e = SessionName::from_kernel(&raw).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::ILSEQ.raw_os_error()));
    }

    #[test]
    fn another_file_is_not_taken_for_a_session() {
        let memfd = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let e = Session::from_fd(memfd).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::NOTTY.raw_os_error()));
        let e = Device::open_path("/dev/null").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::NOTTY.raw_os_error()));
    }

    #[test]
    fn a_missing_device_is_enoent() {
        let e = Device::open_path("/nonexistent/liveupdate").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
