// SPDX-License-Identifier: GPL-2.0

//! Preserved files, and the state every session's files share ([`Core`]).
//!
//! A session's files live in a [`FileSet`]: a vector in preservation order (the order of
//! serialization, freeze and finish, reversed for unpreserve and finish) plus a token index.
//! Every preserved (or retrieved, not yet finished) file is also recorded by its handler's id
//! in [`Core`], so the same object cannot be preserved twice, in any session.

use kernel::{
    fs::File,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    str::BStr,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    types::ScopeGuard,
};

use crate::{
    abi::{
        FileSer,
        MAX_FILES, //
    },
    cabi::{
        self,
        FileArgs,
        Handler,
        ModuleRef, //
    },
    fault,
    flb::{
        self,
        FlbState,
        Flbs,
        Pinned, //
    },
    kho,
    registry::Registry,
    ser::{
        self,
        Chain,
        InFlb,
        OutMem, //
    },
};

/// What the files of every session share: the registry, the FLBs and the ids of the preserved
/// objects.
#[pin_data]
pub(crate) struct Core {
    /// File handlers and FLBs.
    #[pin]
    pub(crate) registry: Registry,
    /// FLB states and the previous kernel's FLB records.
    #[pin]
    pub(crate) flbs: Flbs,
    /// Ids of the objects behind preserved (and retrieved, not yet finished) files.
    #[pin]
    preserved: Mutex<RBTree<usize, ()>>,
}

impl Core {
    pub(crate) fn new(incoming_flbs: Option<KVec<InFlb>>) -> impl PinInit<Self> {
        pin_init!(Self {
            registry <- Registry::new(),
            flbs <- Flbs::new(incoming_flbs),
            preserved <- new_mutex!(RBTree::new(), "luo::preserved"),
        })
    }

    /// Removes a file's id from the set of preserved objects.
    fn forget_id(&self, id: usize) {
        self.preserved.lock().remove(&id);
    }

    /// Records `id` as preserved; `EBUSY` if it already is.
    fn claim_id(&self, id: usize, node: RBTreeNodeReservation<usize, ()>) -> Result {
        let mut ids = self.preserved.lock();
        if ids.get(&id).is_some() {
            return Err(EBUSY);
        }
        ids.insert(node.into_node(id, ()));
        Ok(())
    }
}

/// One preserved file of a session.
pub(crate) struct PreservedFile {
    handler: Handler,
    _module: ModuleRef,
    token: u64,
    /// The file: always for outgoing files, once retrieved for incoming ones.
    file: Option<ARef<File>>,
    /// The handler's serialized data.
    data: u64,
    /// The handler's private pointer (outgoing only).
    private: usize,
    /// Key in the preserved ids of [`Core`] while this file holds one.
    id: Option<usize>,
    /// 0: not retrieved yet; 1: retrieved; negative: the (sticky) retrieve error.
    retrieve_status: i32,
    /// Outgoing files: the FLBs this file holds an outgoing reference on, in the order they
    /// were taken. Incoming files hold none: at finish they drop a reference on the FLBs
    /// linked to their handler then, as in C (an FLB whose module is gone is not touched).
    flbs: KVec<Arc<FlbState>>,
}

impl PreservedFile {
    fn args(&self) -> FileArgs<'_> {
        FileArgs {
            file: self.file.as_deref(),
            data: self.data,
            private: self.private,
            retrieve_status: self.retrieve_status,
        }
    }
}

/// The files of one session.
pub(crate) struct FileSet {
    files: KVVec<PreservedFile>,
    /// Token to index in `files`, for an outgoing set (files come and go).
    tokens: RBTree<u64, usize>,
    /// For an incoming set: `(token, index in files)` sorted by token, the hand-over parser's
    /// (no allocation per file or per session); empty for a small set, which is scanned.
    by_token: &'static [(u64, u32)],
    /// The set was handed over by the previous kernel.
    incoming: bool,
    /// KHO pages for the file chain of an outgoing set, allocated as files are preserved:
    /// reboot only writes into them. After a successful reboot they hold the chain handed to
    /// the next kernel; the session is frozen then, and its set is never changed or dropped.
    pool: KVec<kho::OutPage>,
}

impl FileSet {
    pub(crate) fn new() -> Self {
        Self {
            files: KVVec::new(),
            tokens: RBTree::new(),
            by_token: &[],
            incoming: false,
            pool: KVec::new(),
        }
    }

    /// An incoming set of `n` files with unique tokens, indexed by `by_token` (sorted, see
    /// `ser::InSession`; empty for a small set); the files are added in order with
    /// [`Self::push_incoming`].
    pub(crate) fn incoming(n: usize, by_token: &'static [(u64, u32)]) -> Result<Self> {
        Ok(Self {
            files: KVVec::with_capacity(n, GFP_KERNEL)?,
            tokens: RBTree::new(),
            by_token,
            incoming: true,
            pool: KVec::new(),
        })
    }

    /// The index of the file of `token`.
    fn index(&self, token: u64) -> Option<usize> {
        if !self.incoming {
            return self.tokens.get(&token).copied();
        }
        if self.by_token.is_empty() {
            return self.files.iter().position(|f| f.token == token);
        }
        let i = self.by_token.binary_search_by_key(&token, |e| e.0).ok()?;
        Some(self.by_token[i].1 as usize).filter(|&i| i < self.files.len())
    }

    /// The pages reserved for the file chain (reboot writes the chain into them).
    pub(crate) fn take_pool(&mut self) -> KVec<kho::OutPage> {
        core::mem::take(&mut self.pool)
    }

    /// Gives back the pages of a chain (written, or zeroed after a failed attempt).
    pub(crate) fn restore_pool(&mut self, pages: KVec<kho::OutPage>) {
        self.pool = pages;
    }

    /// Zeroes the pool's pages after a failed reboot had written a chain into them.
    pub(crate) fn zero_pool(&mut self) {
        for p in self.pool.iter_mut() {
            p.bytes().fill(0);
        }
    }

    /// The handler's data of the first file, if any (for fault injection).
    pub(crate) fn first_data(&self) -> Option<u64> {
        self.files.first().map(|f| f.data)
    }

    /// `LIVEUPDATE_SESSION_PRESERVE_FD`.
    pub(crate) fn preserve(&mut self, core: &Core, token: u64, fd: i32) -> Result {
        if self.index(token).is_some() {
            return Err(EEXIST);
        }
        if self.files.len() >= MAX_FILES {
            return Err(ENOSPC);
        }
        // Everything that can fail for memory is allocated before anything is done.
        self.files.reserve(1, GFP_KERNEL)?;
        let token_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let id_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        ser::fit_pool::<FileSer, _>(&mut self.pool, self.files.len() + 1)?;

        let preserved = (|| {
            let file = cabi::fget(fd)?;
            let (handler, module) = core.registry.find_handler(&file)?;
            let flbs = core.registry.linked(&handler, false)?;
            let id = handler.id(&file);
            core.claim_id(id, id_node)?;
            let id_guard = ScopeGuard::new(|| core.forget_id(id));
            let flbs = flb::file_preserve(flbs)?;
            let flb_guard = ScopeGuard::new(|| flb::file_unpreserve(&flbs));
            let (data, private) = handler.preserve(&file)?;
            flb_guard.dismiss();
            id_guard.dismiss();
            Ok((file, handler, module, flbs, id, data, private))
        })();
        let (file, handler, module, flbs, id, data, private) = match preserved {
            Ok(p) => p,
            Err(e) => {
                // Give back the page reserved for this file; shrinking cannot fail.
                let _ = ser::fit_pool::<FileSer, _>(&mut self.pool, self.files.len());
                return Err(e);
            }
        };

        let index = self.files.len();
        let pushed = self.files.push(
            PreservedFile {
                handler,
                _module: module,
                token,
                file: Some(file),
                data,
                private,
                id: Some(id),
                retrieve_status: 0,
                flbs,
            },
            GFP_KERNEL,
        );
        // Cannot fail: capacity was reserved above.
        if pushed.is_err() {
            return Err(ENOMEM);
        }
        self.tokens.insert(token_node.into_node(token, index));
        Ok(())
    }

    /// Unpreserves every file, last preserved first (closing an outgoing session).
    pub(crate) fn unpreserve_all(&mut self, core: &Core) {
        while let Some(f) = self.files.pop() {
            f.handler.unpreserve(&f.args());
            flb::file_unpreserve(&f.flbs);
            if let Some(id) = f.id {
                core.forget_id(id);
            }
        }
        self.tokens = RBTree::new();
        self.by_token = &[];
        self.pool = KVec::new();
    }

    /// `LIVEUPDATE_SESSION_RETRIEVE_FD`: the file of `token`, re-created on first use. A failed
    /// retrieve fails the same way every time.
    pub(crate) fn retrieve(&mut self, core: &Core, token: u64) -> Result<ARef<File>> {
        let index = self.index(token).ok_or(ENOENT)?;
        let id_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let f = &mut self.files[index];
        match f.retrieve_status {
            s if s < 0 => return Err(Error::from_errno(s)),
            s if s > 0 => return f.file.clone().ok_or(EINVAL),
            _ => {}
        }
        let file = match f.handler.retrieve(f.data) {
            Ok(file) => file,
            Err(e) => {
                f.retrieve_status = e.to_errno();
                return Err(e);
            }
        };
        let id = f.handler.id(&file);
        // A retrieved object cannot be preserved again until it is finished.
        if core.claim_id(id, id_node).is_ok() {
            f.id = Some(id);
        } else {
            pr_warn!("retrieved file of token {:#x} is already in use\n", token);
        }
        f.retrieve_status = 1;
        f.file = Some(file.clone());
        Ok(file)
    }

    /// `LIVEUPDATE_SESSION_FINISH`: asks every file whether it can finish, then finishes them
    /// all, last first. Idempotent.
    pub(crate) fn finish(&mut self, core: &Core) -> Result {
        if self.files.iter().any(|f| !f.handler.can_finish(&f.args())) {
            return Err(EBUSY);
        }
        let mut flbs = FinishFlbs::new();
        for f in self.files.iter() {
            flbs.add(core, &f.handler)?;
        }
        while let Some(f) = self.files.pop() {
            f.handler.finish(&f.args());
            flbs.file_finish(core, &f.handler);
            if let Some(id) = f.id {
                core.forget_id(id);
            }
        }
        self.tokens = RBTree::new();
        self.by_token = &[];
        Ok(())
    }

    /// Freezes every file, first preserved first, and records it in `chain`. On failure the
    /// files frozen so far are unfrozen again.
    pub(crate) fn freeze<P: OutMem>(&mut self, chain: &mut Chain<P, FileSer>) -> Result {
        for i in 0..self.files.len() {
            let f = &mut self.files[i];
            let frozen = fault::freeze().and_then(|()| f.handler.freeze(&f.args()));
            let res = match frozen {
                Ok(data) => {
                    f.data = data;
                    // A file that froze but cannot be recorded is unfrozen with the rest.
                    chain
                        .push_file(f.handler.compatible(), data, f.token)
                        .map_err(|e| (e, i + 1))
                }
                Err(e) => {
                    pr_warn!(
                        "Freeze failed for token[{:#x}] handler[{}] err[{:?}]\n",
                        f.token,
                        BStr::from_bytes(f.handler.compatible()),
                        e
                    );
                    Err((e, i))
                }
            };
            if let Err((e, frozen)) = res {
                for f in self.files[..frozen].iter() {
                    f.handler.unfreeze(&f.args());
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Unfreezes every file, first preserved first (a later part of the reboot failed).
    pub(crate) fn unfreeze(&mut self) {
        for f in self.files.iter() {
            f.handler.unfreeze(&f.args());
        }
    }

    /// Adds the next file handed over by the previous kernel (deserialization), in the order
    /// of the token index the set was made with.
    pub(crate) fn push_incoming(
        &mut self,
        handler: Handler,
        module: ModuleRef,
        token: u64,
        data: u64,
    ) -> Result {
        self.files.push(
            PreservedFile {
                handler,
                _module: module,
                token,
                file: None,
                data,
                private: 0,
                id: None,
                retrieve_status: 0,
                flbs: KVec::new(),
            },
            GFP_KERNEL,
        )?;
        Ok(())
    }
}

/// The FLBs of the handlers of a set of incoming files, taken before any file finishes so
/// that finishing allocates nothing (FINISH is all or nothing).
struct FinishFlbs(KVec<(usize, Pinned)>);

impl FinishFlbs {
    fn new() -> Self {
        Self(KVec::new())
    }

    /// Takes the FLBs now linked to `handler`, once per handler. A handler that is no longer
    /// registered has none.
    fn add(&mut self, core: &Core, handler: &Handler) -> Result {
        if self.0.iter().any(|(h, _)| *h == handler.addr()) {
            return Ok(());
        }
        let flbs = match core.registry.linked(handler, true) {
            Ok(flbs) => flbs,
            Err(e) if e == ENOENT => KVec::new(),
            Err(e) => return Err(e),
        };
        self.0.push((handler.addr(), flbs), GFP_KERNEL)?;
        Ok(())
    }

    /// Drops a finished file's incoming reference on each FLB linked to its handler, in
    /// reverse order, as C does at finish.
    fn file_finish(&self, core: &Core, handler: &Handler) {
        if let Some((_, flbs)) = self.0.iter().find(|(h, _)| *h == handler.addr()) {
            for (s, _) in flbs.iter().rev() {
                s.put_incoming(&core.flbs);
            }
        }
    }
}
