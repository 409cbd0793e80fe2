// SPDX-License-Identifier: GPL-2.0

//! Fault injection for the test suite (`CONFIG_LIVEUPDATE_RUST_FAULT_INJECT`). Without that
//! option every hook here is an empty inline function: call sites carry no `#[cfg]`.
//!
//! - `luo_rs_fail_freeze=N` makes the freeze of the N-th file of a reboot fail once, with
//!   `EAGAIN`, as if its handler had refused; the test then checks that reboot(2) returned the
//!   error, that every session is usable again, and that a second reboot succeeds.
//! - `luo_rs_damage=FIELD` damages that field of the hand-over (see `ser::damage`).
//! - `luo_rs_leak=N` leaks one small allocation in each of the first N `CREATE_SESSION`s:
//!   the suite's kmemleak check must then find it (`luo_kmemleak_check`), which shows that
//!   the leak checks of the other tests would see a leak of ours.
//! - `luo_rs_release_delay_ms=N` makes the close of an outgoing session sleep N ms between
//!   leaving the session tables and unpreserving its files, to widen that window for
//!   `luo_review.close_vs_reboot`.
//! - `luo_rs_fail_after_serialize=N` makes `liveupdate_reboot()` of the N-th kernel of a chain
//!   of live updates (its live update number) return `ECANCELED` once, after everything was
//!   serialized, as if the kexec had not happened yet: user space can then watch what the
//!   sessions do between serialization and kexec (`luo_review.serialized_incoming_ebusy`).

#[cfg(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT)]
mod on {
    use kernel::{
        prelude::*,
        sync::{
            atomic::{
                ordering::Relaxed,
                Atomic, //
            },
            SetOnce,
        },
        time::{
            delay::fsleep,
            Delta, //
        },
    };

    /// The file whose freeze fails (1-based), 0 for none.
    static FAIL_FREEZE: Atomic<u32> = Atomic::new(0);
    /// Files frozen so far in this reboot attempt.
    static FROZEN: Atomic<u32> = Atomic::new(0);
    /// `CREATE_SESSION`s that still leak an allocation.
    static LEAK: Atomic<u32> = Atomic::new(0);
    /// Milliseconds the close of an outgoing session sleeps.
    static RELEASE_DELAY: Atomic<u32> = Atomic::new(0);
    /// The live update number whose reboot reports failure after serializing, 0 for none.
    static FAIL_AFTER_SERIALIZE: Atomic<u32> = Atomic::new(0);
    /// The field `luo_rs_damage=` names (NUL-padded), empty for none.
    static DAMAGE: SetOnce<[u8; 16]> = SetOnce::new();

    /// Called by the `luo_rs_fail_freeze=` glue.
    #[no_mangle]
    pub(crate) extern "C" fn luo_rs_set_fail_freeze(n: u32) {
        FAIL_FREEZE.store(n, Relaxed);
    }

    /// Called by the `luo_rs_leak=` glue.
    #[no_mangle]
    pub(crate) extern "C" fn luo_rs_set_leak(n: u32) {
        LEAK.store(n, Relaxed);
    }

    /// Called by the `luo_rs_release_delay_ms=` glue.
    #[no_mangle]
    pub(crate) extern "C" fn luo_rs_set_release_delay(ms: u32) {
        RELEASE_DELAY.store(ms, Relaxed);
    }

    /// Called by the `luo_rs_fail_after_serialize=` glue.
    #[no_mangle]
    pub(crate) extern "C" fn luo_rs_set_fail_after_serialize(n: u32) {
        FAIL_AFTER_SERIALIZE.store(n, Relaxed);
    }

    /// Called by the `luo_rs_damage=` glue with the parameter's value.
    ///
    /// # Safety
    ///
    /// `value` is a NUL-terminated string.
    #[no_mangle]
    pub(crate) unsafe extern "C" fn luo_rs_set_damage(value: *const kernel::ffi::c_char) {
        // SAFETY: By the caller's guarantee.
        let v = unsafe { CStr::from_char_ptr(value) }.to_bytes();
        let mut kind = [0u8; 16];
        let n = v.len().min(kind.len() - 1);
        kind[..n].copy_from_slice(&v[..n]);
        DAMAGE.populate(kind);
    }

    /// Called by `CREATE_SESSION`: leaks one allocation while `luo_rs_leak=` asks for it.
    pub(crate) fn create_session() {
        let n = LEAK.load(Relaxed);
        if n == 0 {
            return;
        }
        LEAK.store(n - 1, Relaxed);
        if let Ok(b) = KBox::new([0x6cu8; 120], GFP_KERNEL) {
            let leaked: &'static mut [u8; 120] = KBox::leak(b);
            pr_warn!(
                "fault injection: leaked {} bytes at {:#x} in CREATE_SESSION\n",
                leaked.len(),
                leaked.as_ptr() as usize
            );
        }
    }

    /// The field to damage at reboot, if any.
    pub(crate) fn damage_kind() -> &'static [u8] {
        match DAMAGE.as_ref() {
            Some(k) => {
                let n = k.iter().position(|&b| b == 0).unwrap_or(k.len());
                &k[..n]
            }
            None => &[],
        }
    }

    /// A reboot attempt starts.
    pub(crate) fn reboot_starts() {
        FROZEN.store(0, Relaxed);
    }

    /// Called before each file's freeze; fails once, at the chosen file.
    pub(crate) fn freeze() -> Result {
        let n = FROZEN.load(Relaxed) + 1;
        FROZEN.store(n, Relaxed);
        if n == FAIL_FREEZE.load(Relaxed) {
            FAIL_FREEZE.store(0, Relaxed);
            pr_warn!("fault injection: failing the freeze of file {}\n", n);
            return Err(EAGAIN);
        }
        Ok(())
    }

    /// Called by the close of an outgoing session between leaving the tables and
    /// unpreserving its files.
    pub(crate) fn release() {
        let ms = RELEASE_DELAY.load(Relaxed);
        if ms > 0 {
            pr_info!("fault injection: the close of a session sleeps {} ms\n", ms);
            fsleep(Delta::from_millis(i64::from(ms)));
        }
    }

    /// Called after a successful serialization by the kernel of live update number `num`:
    /// `ECANCELED` once if `luo_rs_fail_after_serialize=` names it.
    pub(crate) fn after_serialize(num: u64) -> Result {
        let n = FAIL_AFTER_SERIALIZE.load(Relaxed);
        if n != 0 && u64::from(n) == num {
            FAIL_AFTER_SERIALIZE.store(0, Relaxed);
            pr_warn!("fault injection: reboot reports failure after serializing\n");
            return Err(ECANCELED);
        }
        Ok(())
    }
}

#[cfg(not(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT))]
mod on {
    use kernel::prelude::*;

    #[inline(always)]
    pub(crate) fn create_session() {}

    #[inline(always)]
    pub(crate) fn damage_kind() -> &'static [u8] {
        &[]
    }

    #[inline(always)]
    pub(crate) fn reboot_starts() {}

    #[inline(always)]
    pub(crate) fn freeze() -> Result {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn release() {}

    #[inline(always)]
    pub(crate) fn after_serialize(_num: u64) -> Result {
        Ok(())
    }
}

pub(crate) use on::*;
