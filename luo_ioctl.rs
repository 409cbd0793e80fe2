// SPDX-License-Identifier: GPL-2.0

//! Size-headed ioctls: the command reader, the response writer and the static op tables.
//!
//! Every LUO command struct starts with a `u32 size` that user space sets to the size of the
//! struct it was compiled with. The rules, checked in this order (the C implementation's order,
//! except that an unknown command is refused before anything is read):
//!
//! 1. A command that is not in the table gets `ENOTTY`.
//! 2. The size header is read once (`EFAULT`).
//! 3. The op's state check runs (for session fds, the direction: `EINVAL`).
//! 4. A size below the op's minimum gets `EINVAL`.
//! 5. Bytes beyond the struct the kernel knows must be zero (`E2BIG`); a shorter struct is
//!    zero-extended (`EFAULT` if the user memory cannot be read).
//! 6. The handler runs. It answers by copying back `min(user size, struct size)` bytes, and
//!    does so *before* the point where its effect becomes visible, so an ioctl that fails with
//!    `EFAULT` never has an effect.
//!
//! The layout (sizes, offsets, command numbers) comes from bindgen's view of
//! `<uapi/linux/liveupdate.h>`; nothing here is a hand-copied number.

use core::mem::{
    offset_of,
    size_of, //
};

use kernel::{
    bindings,
    ioctl::{
        _IO,
        _IOC_NR, //
    },
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// The largest command struct; every op's struct must fit.
pub(crate) const UCMD_MAX: usize = 72;

/// Builds a command number of the LUO ioctl type.
pub(crate) const fn luo_cmd(nr: u32) -> u32 {
    _IO(bindings::LIVEUPDATE_IOCTL_TYPE, nr)
}

/// The fields of one command struct, located by bindgen.
pub(crate) struct Layout {
    /// `sizeof` the struct.
    pub(crate) size: usize,
    /// `offsetofend` of its last field in the first ABI revision.
    pub(crate) min_size: usize,
}

/// Layouts of the six commands.
pub(crate) mod layout {
    use super::*;

    macro_rules! layout {
        ($ty:ident, $last:ident, $last_len:expr) => {
            Layout {
                size: size_of::<bindings::$ty>(),
                min_size: offset_of!(bindings::$ty, $last) + $last_len,
            }
        };
    }

    /// Length of a session name field (with its NUL).
    pub(crate) const NAME_LEN: usize = bindings::LIVEUPDATE_SESSION_NAME_LENGTH as usize;

    pub(crate) const CREATE_SESSION: Layout =
        layout!(liveupdate_ioctl_create_session, name, NAME_LEN);
    pub(crate) const RETRIEVE_SESSION: Layout =
        layout!(liveupdate_ioctl_retrieve_session, name, NAME_LEN);
    pub(crate) const PRESERVE_FD: Layout = layout!(liveupdate_session_preserve_fd, token, 8);
    pub(crate) const RETRIEVE_FD: Layout = layout!(liveupdate_session_retrieve_fd, token, 8);
    pub(crate) const FINISH: Layout = layout!(liveupdate_session_finish, reserved, 4);
    pub(crate) const GET_NAME: Layout = layout!(liveupdate_session_get_name, name, NAME_LEN);

    /// Offsets of the fields the handlers use.
    pub(crate) const CREATE_FD: usize = offset_of!(bindings::liveupdate_ioctl_create_session, fd);
    pub(crate) const CREATE_NAME: usize =
        offset_of!(bindings::liveupdate_ioctl_create_session, name);
    pub(crate) const RETRIEVE_SESSION_FD: usize =
        offset_of!(bindings::liveupdate_ioctl_retrieve_session, fd);
    pub(crate) const RETRIEVE_SESSION_NAME: usize =
        offset_of!(bindings::liveupdate_ioctl_retrieve_session, name);
    pub(crate) const PRESERVE_FD_FD: usize =
        offset_of!(bindings::liveupdate_session_preserve_fd, fd);
    pub(crate) const PRESERVE_FD_TOKEN: usize =
        offset_of!(bindings::liveupdate_session_preserve_fd, token);
    pub(crate) const RETRIEVE_FD_FD: usize =
        offset_of!(bindings::liveupdate_session_retrieve_fd, fd);
    pub(crate) const RETRIEVE_FD_TOKEN: usize =
        offset_of!(bindings::liveupdate_session_retrieve_fd, token);
    pub(crate) const FINISH_RESERVED: usize =
        offset_of!(bindings::liveupdate_session_finish, reserved);
    pub(crate) const GET_NAME_RESERVED: usize =
        offset_of!(bindings::liveupdate_session_get_name, reserved);
    pub(crate) const GET_NAME_NAME: usize = offset_of!(bindings::liveupdate_session_get_name, name);
}

/// How much of a user's command to copy in, and how long a tail must be checked for zeroes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CopyPlan {
    /// Bytes copied from user space (the rest of the kernel struct stays zero).
    pub(crate) copy: usize,
    /// Bytes after the kernel struct that must be zero.
    pub(crate) tail: usize,
}

/// Applies the size rules to a user size.
pub(crate) fn plan(user_size: u32, layout: &Layout) -> Result<CopyPlan> {
    let user_size = user_size as usize;
    if user_size < layout.min_size {
        return Err(EINVAL);
    }
    Ok(CopyPlan {
        copy: user_size.min(layout.size),
        tail: user_size.saturating_sub(layout.size),
    })
}

/// `E2BIG` unless every byte is zero.
pub(crate) fn check_zero(bytes: &[u8]) -> Result {
    if bytes.iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(E2BIG)
    }
}

/// One decoded command: the kernel's copy of the user's struct.
///
/// # Invariants
///
/// `len` is the kernel struct size (at most [`UCMD_MAX`]) and `user_len` the user's size,
/// at least the op's minimum size.
pub(crate) struct UCmd {
    buf: [u8; UCMD_MAX],
    len: usize,
    user_len: usize,
    arg: usize,
}

impl UCmd {
    /// Reads a command: size header, size rules, zero tail, zero extension.
    fn read(arg: usize, layout: &Layout, check: impl FnOnce() -> Result) -> Result<Self> {
        let user_size = UserSlice::new(UserPtr::from_addr(arg), size_of::<u32>())
            .reader()
            .read::<u32>()?;
        check()?;
        let plan = plan(user_size, layout)?;
        let mut reader = UserSlice::new(UserPtr::from_addr(arg), plan.copy + plan.tail).reader();
        let mut buf = [0u8; UCMD_MAX];
        reader.read_slice(&mut buf[..plan.copy])?;
        let mut left = plan.tail;
        let mut chunk = [0u8; 64];
        while left > 0 {
            let n = left.min(chunk.len());
            reader.read_slice(&mut chunk[..n])?;
            check_zero(&chunk[..n])?;
            left -= n;
        }
        // INVARIANT: `plan` accepted `user_size`, and tables only hold layouts that fit.
        Ok(Self {
            buf,
            len: layout.size,
            user_len: user_size as usize,
            arg,
        })
    }

    /// The bytes of a field.
    pub(crate) fn bytes(&self, off: usize, len: usize) -> &[u8] {
        &self.buf[off..off + len]
    }

    /// A `__u32` field.
    pub(crate) fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buf[off..off + 4]);
        u32::from_ne_bytes(b)
    }

    /// A `__s32` field.
    pub(crate) fn i32_at(&self, off: usize) -> i32 {
        self.u32_at(off) as i32
    }

    /// A `__u64` field.
    pub(crate) fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[off..off + 8]);
        u64::from_ne_bytes(b)
    }

    /// Sets a `__s32` field of the answer.
    pub(crate) fn set_i32(&mut self, off: usize, v: i32) {
        self.buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Sets a byte-array field of the answer: `src`, then zeroes to the field's end.
    pub(crate) fn set_bytes(&mut self, off: usize, len: usize, src: &[u8]) {
        let field = &mut self.buf[off..off + len];
        field.fill(0);
        field[..src.len()].copy_from_slice(src);
    }

    /// Copies `min(user size, struct size)` bytes of the answer back to user space.
    pub(crate) fn respond(&self) -> Result {
        let n = self.user_len.min(self.len);
        UserSlice::new(UserPtr::from_addr(self.arg), n)
            .writer()
            .write_slice(&self.buf[..n])
    }
}

/// One row of an op table.
pub(crate) struct Op<C: ?Sized + 'static> {
    /// The full command word.
    pub(crate) cmd: u32,
    /// The struct layout.
    pub(crate) layout: Layout,
    /// Whether the op is allowed on this fd now (checked before the size rules).
    pub(crate) allowed: fn(&C) -> Result,
    /// The handler.
    pub(crate) exec: fn(&C, &mut UCmd) -> Result<isize>,
}

/// An op that is always allowed.
pub(crate) fn always<C: ?Sized>(_: &C) -> Result {
    Ok(())
}

/// An op table whose first command has number `base`, checked at compile time (use it in the
/// initializer of the table's `static`): a table that is not dense from `base`, or whose
/// structs do not fit or lack a size header, fails the build.
pub(crate) const fn checked_table<C: ?Sized, const N: usize>(
    table: [Op<C>; N],
    base: u32,
) -> [Op<C>; N] {
    assert!(table_ok(&table, base), "invalid ioctl op table");
    table
}

/// Whether a table is dense from `base` and each struct fits and has a size header.
const fn table_ok<C: ?Sized>(table: &[Op<C>], base: u32) -> bool {
    let mut i = 0;
    while i < table.len() {
        let op = &table[i];
        if _IOC_NR(op.cmd) != base + i as u32
            || op.cmd != luo_cmd(base + i as u32)
            || op.layout.size > UCMD_MAX
            || op.layout.min_size > op.layout.size
            || op.layout.min_size < size_of::<u32>()
        {
            return false;
        }
        i += 1;
    }
    true
}

/// Dispatches an ioctl through a table whose first command has number `base`.
pub(crate) fn dispatch<C: ?Sized>(
    table: &[Op<C>],
    base: u32,
    ctx: &C,
    cmd: u32,
    arg: usize,
) -> Result<isize> {
    let op = _IOC_NR(cmd)
        .checked_sub(base)
        .and_then(|i| table.get(i as usize))
        .filter(|op| op.cmd == cmd)
        .ok_or(ENOTTY)?;
    let mut ucmd = UCmd::read(arg, &op.layout, || (op.allowed)(ctx))?;
    (op.exec)(ctx, &mut ucmd)
}

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[kernel::macros::kunit_tests(liveupdate_rust_ioctl)]
mod tests {
    use super::*;

    const ALL: [&Layout; 6] = [
        &layout::CREATE_SESSION,
        &layout::RETRIEVE_SESSION,
        &layout::PRESERVE_FD,
        &layout::RETRIEVE_FD,
        &layout::FINISH,
        &layout::GET_NAME,
    ];

    #[test]
    fn layouts_match_the_uapi() {
        assert_eq!(layout::CREATE_SESSION.size, 72);
        assert_eq!(layout::RETRIEVE_SESSION.size, 72);
        assert_eq!(layout::PRESERVE_FD.size, 16);
        assert_eq!(layout::RETRIEVE_FD.size, 16);
        assert_eq!(layout::FINISH.size, 8);
        assert_eq!(layout::GET_NAME.size, 72);
        assert_eq!(layout::PRESERVE_FD_TOKEN, 8);
        for l in ALL {
            assert_eq!(l.min_size, l.size);
            assert!(l.size <= UCMD_MAX);
        }
    }

    #[test]
    fn sizes_below_the_minimum_are_einval() {
        for l in ALL {
            for s in 0..l.min_size as u32 {
                assert_eq!(plan(s, l), Err(EINVAL));
            }
        }
    }

    #[test]
    fn exact_size_copies_everything() {
        for l in ALL {
            assert_eq!(
                plan(l.size as u32, l),
                Ok(CopyPlan {
                    copy: l.size,
                    tail: 0
                })
            );
        }
    }

    #[test]
    fn larger_sizes_check_the_tail() {
        for l in ALL {
            for extra in [1u32, 7, 8, 4096, u32::MAX - l.size as u32] {
                assert_eq!(
                    plan(l.size as u32 + extra, l),
                    Ok(CopyPlan {
                        copy: l.size,
                        tail: extra as usize
                    })
                );
            }
        }
    }

    #[test]
    fn zero_tails_pass_and_non_zero_tails_are_e2big() {
        assert_eq!(check_zero(&[]), Ok(()));
        assert_eq!(check_zero(&[0; 64]), Ok(()));
        let mut t = [0u8; 64];
        for i in 0..t.len() {
            t[i] = 1;
            assert_eq!(check_zero(&t), Err(E2BIG));
            t[i] = 0;
        }
    }

    #[test]
    fn command_numbers_are_the_uapi_ones() {
        assert_eq!(luo_cmd(0), 0xba00);
        assert_eq!(luo_cmd(1), 0xba01);
        assert_eq!(luo_cmd(0x40), 0xba40);
        assert_eq!(luo_cmd(0x43), 0xba43);
    }
}
