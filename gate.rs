// SPDX-License-Identifier: GPL-2.0

//! The reboot gate: reboot's exclusion of every operation that changes live update state.
//!
//! Every ioctl effect and every close of a session enters the gate, does its work (handler
//! callbacks included, never a user-memory access) and leaves. `liveupdate_reboot()` closes
//! the gate, waits until nothing is inside, and serializes; afterwards the gate stays shut
//! (ioctls get `EBUSY`, closes leave their session as it was handed over) or, if
//! serialization failed, opens again. An operation that arrives while reboot is serializing
//! waits for the outcome, as it would block in the C implementation, instead of racing it.
//!
//! Reboot serializes holding the gate's lock (one acquisition for the whole reboot: it runs
//! once per boot, while the machine waits), so the gate's lock comes before every other lock.
//! Operations take it only with no other lock held: to enter, before anything else, and to
//! leave, after everything else was released.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        lock::mutex::MutexGuard,
        CondVar,
        Mutex, //
    },
};

/// Where reboot is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No reboot in progress.
    Open,
    /// Reboot is waiting for operations to leave, or serializing.
    Closing,
    /// Reboot serialized everything: nothing may change until the kexec.
    Serialized,
}

struct State {
    phase: Phase,
    /// Operations inside the gate.
    inside: usize,
    /// Operations and reboots waiting for a reboot in `Closing` to finish: the end of a
    /// reboot wakes them only if there are any.
    waiting: usize,
}

/// The reboot gate.
#[pin_data]
pub(crate) struct Gate {
    #[pin]
    state: Mutex<State>,
    #[pin]
    changed: CondVar,
}

/// An operation inside the gate; leaves when dropped.
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock();
        s.inside -= 1;
        if s.inside == 0 && s.phase == Phase::Closing {
            self.0.changed.notify_all();
        }
    }
}

/// A reboot that closed the gate, holding its lock; opens it again when dropped unless it
/// succeeded.
///
/// # Invariants
///
/// `state` is `gate`'s state, in phase [`Phase::Closing`] with no operation inside.
pub(crate) struct Closed<'a> {
    gate: &'a Gate,
    state: MutexGuard<'a, State>,
    serialized: bool,
}

impl Closed<'_> {
    /// Serialization succeeded: the gate stays shut.
    pub(crate) fn serialized(mut self) {
        self.serialized = true;
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.state.phase = if self.serialized {
            Phase::Serialized
        } else {
            Phase::Open
        };
        if self.state.waiting != 0 {
            self.gate.changed.notify_all();
        }
        // The guard, dropped after this, unlocks.
    }
}

impl Gate {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(
                State {
                    phase: Phase::Open,
                    inside: 0,
                    waiting: 0,
                },
                "luo_gate::state"
            ),
            changed <- new_condvar!("luo_gate::changed"),
        })
    }

    /// Waits, counted in `waiting` (so that the end of the reboot wakes it), while a reboot is
    /// closing the gate.
    fn wait_while_closing(&self, s: &mut MutexGuard<'_, State>) {
        while s.phase == Phase::Closing {
            s.waiting += 1;
            self.changed.wait(s);
            s.waiting -= 1;
        }
    }

    /// Enters the gate, waiting while reboot serializes; `None` once everything was
    /// serialized.
    fn pass(&self) -> Option<Pass<'_>> {
        let mut s = self.state.lock();
        self.wait_while_closing(&mut s);
        if s.phase == Phase::Serialized {
            return None;
        }
        s.inside += 1;
        Some(Pass(self))
    }

    /// Enters the gate for an ioctl: `EBUSY` once everything was serialized.
    pub(crate) fn enter(&self) -> Result<Pass<'_>> {
        self.pass().ok_or(EBUSY)
    }

    /// Enters the gate for a close: `None` once everything was serialized (the session then
    /// stays as it was handed over).
    pub(crate) fn enter_close(&self) -> Option<Pass<'_>> {
        self.pass()
    }

    /// Closes the gate for reboot and waits until no operation is inside. `None` if an
    /// earlier reboot already serialized everything.
    pub(crate) fn close(&self) -> Option<Closed<'_>> {
        let mut s = self.state.lock();
        // The usual case, open with nothing inside, tested once: this runs once per boot,
        // while the machine waits (see `reboot::serialize`).
        if s.phase != Phase::Open || s.inside != 0 {
            // Two reboots are serialized by the kexec lock; wait for one anyway.
            self.wait_while_closing(&mut s);
            if s.phase == Phase::Serialized {
                return None;
            }
            // Closing before waiting: operations that arrive now wait, and the last one to
            // leave wakes this reboot (see `Pass::drop`).
            s.phase = Phase::Closing;
            while s.inside > 0 {
                self.changed.wait(&mut s);
            }
        }
        s.phase = Phase::Closing;
        // INVARIANT: Closing, nobody inside, and the lock stays held.
        Some(Closed {
            gate: self,
            state: s,
            serialized: false,
        })
    }
}
