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
//! The gate's lock is a leaf: nothing else is locked while it is held.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{
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

/// A reboot that closed the gate; opens it again when dropped unless it succeeded.
pub(crate) struct Closed<'a> {
    gate: &'a Gate,
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
        let mut s = self.gate.state.lock();
        s.phase = if self.serialized {
            Phase::Serialized
        } else {
            Phase::Open
        };
        self.gate.changed.notify_all();
    }
}

impl Gate {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(State { phase: Phase::Open, inside: 0 }, "luo_gate::state"),
            changed <- new_condvar!("luo_gate::changed"),
        })
    }

    /// Enters the gate, waiting while reboot serializes; `None` once everything was
    /// serialized.
    fn pass(&self) -> Option<Pass<'_>> {
        let mut s = self.state.lock();
        while s.phase == Phase::Closing {
            self.changed.wait(&mut s);
        }
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
        // Two reboots are serialized by the kexec lock; wait for one anyway.
        while s.phase == Phase::Closing {
            self.changed.wait(&mut s);
        }
        if s.phase == Phase::Serialized {
            return None;
        }
        s.phase = Phase::Closing;
        while s.inside > 0 {
            self.changed.wait(&mut s);
        }
        Some(Closed {
            gate: self,
            serialized: false,
        })
    }
}
