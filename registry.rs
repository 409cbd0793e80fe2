// SPDX-License-Identifier: GPL-2.0

//! The registry: file handlers in registration order (which decides `can_preserve` priority),
//! the FLBs linked to each, and the registered FLBs with their number of links.
//!
//! Handlers and FLBs leave the registry with a reference on their module
//! ([`ModuleRef`]): what is taken from it stays valid after the registry's lock is dropped,
//! so no callback ever runs under that lock.

use kernel::{
    fs::File,
    new_mutex,
    prelude::*,
    str::BStr,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    abi::{
        Compat,
        MAX_FLBS, //
    },
    cabi::{
        Flb,
        Handler,
        ModuleRef, //
    },
    flb::{
        FlbState,
        Flbs,
        Pinned, //
    },
};

/// A registered file handler and the FLBs linked to it.
struct HandlerEntry {
    handler: Handler,
    flbs: KVec<Arc<FlbState>>,
}

/// A registered FLB and the number of handlers it is linked to.
struct FlbEntry {
    state: Arc<FlbState>,
    users: u32,
}

/// The registry's tables.
struct Tables {
    handlers: KVec<HandlerEntry>,
    /// Registered FLBs, in registration order.
    flbs: KVec<FlbEntry>,
}

impl Tables {
    /// The handler registered with this compatible string.
    fn by_compatible(&self, compatible: &[u8]) -> Option<&HandlerEntry> {
        self.handlers
            .iter()
            .find(|e| e.handler.compatible() == compatible)
    }

    /// The index of the handler at `addr`.
    fn position(&self, addr: usize) -> Option<usize> {
        self.handlers.iter().position(|e| e.handler.addr() == addr)
    }

    /// Drops one handler's link to an FLB; the FLB leaves the global list with its last user.
    fn unlink(&mut self, state: &Arc<FlbState>) {
        let Some(i) = self.flbs.iter().position(|e| Arc::ptr_eq(&e.state, state)) else {
            return;
        };
        self.flbs[i].users -= 1;
        if self.flbs[i].users == 0 {
            let _ = self.flbs.remove(i);
        }
    }
}

/// File handlers and FLBs.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    tables: Mutex<Tables>,
}

impl Registry {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            tables <- new_mutex!(
                Tables {
                    handlers: KVec::new(),
                    flbs: KVec::new(),
                },
                "luo::registry"
            ),
        })
    }

    /// Registers a file handler (`liveupdate_register_file_handler()`).
    pub(crate) fn register_handler(&self, handler: Handler) -> Result {
        {
            let mut t = self.tables.lock();
            if t.by_compatible(handler.compatible()).is_some()
                || t.position(handler.addr()).is_some()
            {
                pr_err!(
                    "File handler registration failed: Compatible string '{}' already registered.\n",
                    BStr::from_bytes(handler.compatible())
                );
                return Err(EEXIST);
            }
            t.handlers.push(
                HandlerEntry {
                    handler,
                    flbs: KVec::new(),
                },
                GFP_KERNEL,
            )?;
        }
        handler.test_register();
        Ok(())
    }

    /// Unregisters the file handler at `addr` and unlinks its FLBs.
    pub(crate) fn unregister_handler(&self, addr: usize) {
        let mut t = self.tables.lock();
        let Some(i) = t.position(addr) else {
            return;
        };
        if let Ok(entry) = t.handlers.remove(i) {
            for flb in entry.flbs.iter() {
                t.unlink(flb);
            }
        }
    }

    /// Registers `flb` with the handler at `fh` (`liveupdate_register_flb()`).
    pub(crate) fn register_flb(&self, flbs: &Flbs, fh: usize, flb: Flb) -> Result {
        let mut t = self.tables.lock();
        let Some(hi) = t.position(fh) else {
            pr_warn!("cannot register an FLB with a file handler that is not registered\n");
            return Err(EINVAL);
        };
        if t.handlers[hi]
            .flbs
            .iter()
            .any(|s| s.flb.addr() == flb.addr())
        {
            return Err(EEXIST);
        }
        t.handlers[hi].flbs.reserve(1, GFP_KERNEL)?;
        let state = match t.flbs.iter_mut().find(|e| e.state.flb.addr() == flb.addr()) {
            Some(e) => {
                e.users += 1;
                e.state.clone()
            }
            None => {
                if t.flbs.len() >= MAX_FLBS {
                    return Err(ENOSPC);
                }
                if t.flbs
                    .iter()
                    .any(|e| e.state.flb.compatible() == flb.compatible())
                {
                    return Err(EEXIST);
                }
                // An FLB asked for its incoming object before registration keeps its state.
                let state = flbs.known_state(flb)?;
                t.flbs.push(
                    FlbEntry {
                        state: state.clone(),
                        users: 1,
                    },
                    GFP_KERNEL,
                )?;
                state
            }
        };
        // Cannot fail: capacity was reserved above.
        t.handlers[hi].flbs.push(state, GFP_KERNEL)?;
        Ok(())
    }

    /// Unregisters the FLB at `flb` from the handler at `fh`.
    pub(crate) fn unregister_flb(&self, fh: usize, flb: usize) {
        let mut t = self.tables.lock();
        let found = t.position(fh).and_then(|hi| {
            let fi = t.handlers[hi]
                .flbs
                .iter()
                .position(|s| s.flb.addr() == flb)?;
            Some((hi, fi))
        });
        let Some((hi, fi)) = found else {
            pr_warn!("Failed to unregister FLB: not found in file handler\n");
            return;
        };
        if let Ok(state) = t.handlers[hi].flbs.remove(fi) {
            t.unlink(&state);
        }
    }

    /// Calls `f` on every registered FLB, in registration order, under the registry's lock
    /// (reboot writes their records with it): `f` may take no lock.
    pub(crate) fn for_each_flb(&self, mut f: impl FnMut(&FlbState)) {
        let t = self.tables.lock();
        for e in t.flbs.iter() {
            f(&e.state);
        }
    }

    /// The FLBs linked to a registered handler. `ENOENT` if the handler is not registered; an
    /// FLB whose module is going away fails the whole call with `ENODEV`, or with `skip_going`
    /// is left out.
    pub(crate) fn linked(&self, handler: &Handler, skip_going: bool) -> Result<Pinned> {
        let t = self.tables.lock();
        let hi = t.position(handler.addr()).ok_or(ENOENT)?;
        let entry = &t.handlers[hi];
        let mut v = KVec::with_capacity(entry.flbs.len(), GFP_KERNEL)?;
        for s in entry.flbs.iter() {
            match s.flb.module_get() {
                Ok(module) => v.push((s.clone(), module), GFP_KERNEL)?,
                Err(_) if skip_going => {}
                Err(e) => return Err(e),
            }
        }
        Ok(v)
    }

    /// The registered handler for `compatible` and a reference on its module. The names are
    /// compared in place, a word at a time.
    pub(crate) fn handler_for(&self, compatible: &Compat) -> Result<(Handler, ModuleRef)> {
        let t = self.tables.lock();
        let entry = t
            .handlers
            .iter()
            .find(|e| Compat::same_str(compatible.field(), e.handler.compatible_field()))
            .ok_or(ENOENT)?;
        let module = entry.handler.module_get(ENOENT)?;
        Ok((entry.handler, module))
    }

    /// The registered handler for `compatible`, for the test modules' lookup (no reference is
    /// taken: the caller's module owns an FLB linked to it).
    #[cfg(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT)]
    pub(crate) fn find(&self, compatible: &[u8]) -> Option<Handler> {
        self.tables
            .lock()
            .by_compatible(compatible)
            .map(|e| e.handler)
    }

    /// The first registered handler that can preserve `file`, and a reference on its module.
    ///
    /// `can_preserve` runs without the registry lock (a handler may call the FLB API from it):
    /// the handlers are taken from the registry with a reference on each one's module, which
    /// keeps it valid after the lock is dropped.
    pub(crate) fn find_handler(&self, file: &File) -> Result<(Handler, ModuleRef)> {
        let handlers = {
            let t = self.tables.lock();
            let mut v = KVec::with_capacity(t.handlers.len(), GFP_KERNEL)?;
            for e in t.handlers.iter() {
                // A handler whose module is going away preserves nothing.
                if let Ok(module) = e.handler.module_get(ENOENT) {
                    v.push((e.handler, module), GFP_KERNEL)?;
                }
            }
            v
        };
        handlers
            .into_iter()
            .find(|(h, _)| h.can_preserve(file))
            .ok_or(ENOENT)
    }
}
