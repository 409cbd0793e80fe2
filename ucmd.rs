// SPDX-License-Identifier: GPL-2.0

//! Size-headed ioctls: typed commands, their static op tables and the rules they follow.
//!
//! Every LUO command struct starts with a `u32 size` that user space sets to the size of the
//! struct it was compiled with. The rules, checked in this order (the C implementation's order,
//! except that an unknown command is refused before anything is read):
//!
//! 1. A command that is not in the table gets `ENOTTY`.
//! 2. The size header is read once (`EFAULT`).
//! 3. The op's state check runs ([`Command::allowed`]; for session fds, the direction:
//!    `EINVAL`).
//! 4. A size below the op's minimum gets `EINVAL`.
//! 5. Bytes beyond the struct the kernel knows must be zero (`E2BIG`); a shorter struct is
//!    zero-extended into the kernel's struct (`EFAULT` if the user memory cannot be read).
//! 6. The op runs. It answers by copying back `min(user size, struct size)` bytes, and does so
//!    *before* the point where its effect becomes visible, so an ioctl that fails with
//!    `EFAULT` never has an effect.
//!
//! An op is a type that implements [`Command`]; a table is built from such types with [`op`]
//! and checked at compile time with [`checked_table`].

use core::mem::size_of;

use kernel::{
    ioctl::{
        _IO,
        _IOC_NR, //
    },
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::abi::IOCTL_TYPE;

/// The largest command struct; every op's struct must fit.
pub(crate) const UCMD_MAX: usize = 72;

/// Builds a command number of the LUO ioctl type.
pub(crate) const fn luo_cmd(nr: u32) -> u32 {
    _IO(IOCTL_TYPE, nr)
}

/// A command struct: plain bytes both ways, zero by default.
pub(crate) trait Arg: FromBytes + AsBytes + Default {}

impl<T: FromBytes + AsBytes + Default> Arg for T {}

/// One ioctl of a table, on a file whose context is `C`.
pub(crate) trait Command<C: ?Sized> {
    /// The command struct.
    type Arg: Arg;
    /// The command number.
    const NR: u32;
    /// `offsetofend` of the struct's last field in the first ABI revision.
    const MIN_SIZE: usize = size_of::<Self::Arg>();

    /// Whether the op is allowed on this fd (checked before the size rules).
    fn allowed(_ctx: &C) -> Result {
        Ok(())
    }

    /// The op.
    fn exec(ctx: &C, cmd: &mut UCmd<Self::Arg>) -> Result<isize>;
}

/// How much of a user's command to copy in, and how long a tail must be checked for zeroes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CopyPlan {
    /// Bytes copied from user space (the rest of the kernel struct stays zero).
    pub(crate) copy: usize,
    /// Bytes after the kernel struct that must be zero.
    pub(crate) tail: usize,
}

/// Applies the size rules to a user size, for a struct of `size` bytes whose first revision
/// had `min_size`.
pub(crate) fn plan(user_size: u32, size: usize, min_size: usize) -> Result<CopyPlan> {
    let user_size = user_size as usize;
    if user_size < min_size {
        return Err(EINVAL);
    }
    Ok(CopyPlan {
        copy: user_size.min(size),
        tail: user_size.saturating_sub(size),
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

/// One decoded command: the kernel's copy of the user's struct, zero-extended into a `T`.
///
/// # Invariants
///
/// `user_len` is the user's size, at least the op's minimum size.
pub(crate) struct UCmd<T: Arg> {
    val: T,
    user_len: usize,
    arg: usize,
}

impl<T: Arg> UCmd<T> {
    /// Reads a command whose size header said `user_size`: size rules, zero tail, zero
    /// extension.
    fn read(arg: usize, user_size: u32, min_size: usize) -> Result<Self> {
        let size = size_of::<T>();
        let plan = plan(user_size, size, min_size)?;
        let mut reader = UserSlice::new(UserPtr::from_addr(arg), plan.copy + plan.tail).reader();
        let mut val = T::default();
        reader.read_slice(&mut val.as_bytes_mut()[..plan.copy])?;
        let mut left = plan.tail;
        let mut chunk = [0u8; 64];
        while left > 0 {
            let n = left.min(chunk.len());
            reader.read_slice(&mut chunk[..n])?;
            check_zero(&chunk[..n])?;
            left -= n;
        }
        // INVARIANT: `plan` accepted `user_size`.
        Ok(Self {
            val,
            user_len: user_size as usize,
            arg,
        })
    }

    /// The command.
    pub(crate) fn get(&self) -> &T {
        &self.val
    }

    /// The command, to fill in the answer.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.val
    }

    /// Copies `min(user size, struct size)` bytes of the answer back to user space.
    pub(crate) fn respond(&self) -> Result {
        let bytes = self.val.as_bytes();
        let n = self.user_len.min(bytes.len());
        UserSlice::new(UserPtr::from_addr(self.arg), n)
            .writer()
            .write_slice(&bytes[..n])
    }
}

/// Runs op `X`: reads the size header, asks the op whether it is allowed, reads the command.
fn run<C: ?Sized, X: Command<C>>(ctx: &C, arg: usize) -> Result<isize> {
    let user_size = UserSlice::new(UserPtr::from_addr(arg), size_of::<u32>())
        .reader()
        .read::<u32>()?;
    X::allowed(ctx)?;
    let mut cmd = UCmd::<X::Arg>::read(arg, user_size, X::MIN_SIZE)?;
    X::exec(ctx, &mut cmd)
}

/// One row of an op table.
pub(crate) struct Op<C: ?Sized + 'static> {
    /// The full command word.
    cmd: u32,
    /// `sizeof` the command struct.
    size: usize,
    /// Its first revision's size.
    min_size: usize,
    /// [`run`] for the op.
    run: fn(&C, usize) -> Result<isize>,
}

/// The table row of op `X`.
pub(crate) const fn op<C: ?Sized, X: Command<C>>() -> Op<C> {
    Op {
        cmd: luo_cmd(X::NR),
        size: size_of::<X::Arg>(),
        min_size: X::MIN_SIZE,
        run: run::<C, X>,
    }
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
            || op.size > UCMD_MAX
            || op.min_size > op.size
            || op.min_size < size_of::<u32>()
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
    (op.run)(ctx, arg)
}

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[kernel::macros::kunit_tests(liveupdate_rust_ioctl)]
mod tests {
    use super::*;
    use crate::abi::{
        CreateSession,
        Finish,
        GetName,
        PreserveFd,
        RetrieveFd,
        RetrieveSession, //
    };

    /// Size and minimum size of each command struct.
    const ALL: [(usize, usize); 6] = [
        (size_of::<CreateSession>(), 72),
        (size_of::<RetrieveSession>(), 72),
        (size_of::<PreserveFd>(), 16),
        (size_of::<RetrieveFd>(), 16),
        (size_of::<Finish>(), 8),
        (size_of::<GetName>(), 72),
    ];

    #[test]
    fn layouts_match_the_uapi() {
        for (size, want) in ALL {
            assert_eq!(size, want);
            assert!(size <= UCMD_MAX);
        }
        assert_eq!(core::mem::offset_of!(PreserveFd, 0.token), 8);
    }

    #[test]
    fn sizes_below_the_minimum_are_einval() {
        for (size, _) in ALL {
            for s in 0..size as u32 {
                assert_eq!(plan(s, size, size), Err(EINVAL));
            }
        }
    }

    #[test]
    fn exact_size_copies_everything() {
        for (size, _) in ALL {
            assert_eq!(
                plan(size as u32, size, size),
                Ok(CopyPlan {
                    copy: size,
                    tail: 0
                })
            );
        }
    }

    #[test]
    fn larger_sizes_check_the_tail() {
        for (size, _) in ALL {
            for extra in [1u32, 7, 8, 4096, u32::MAX - size as u32] {
                assert_eq!(
                    plan(size as u32 + extra, size, size),
                    Ok(CopyPlan {
                        copy: size,
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
