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
        Chain,
        InFile,
        SMALL_SESSION, //
    },
    small::SmallVec,
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
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            registry <- Registry::new(),
            flbs <- Flbs::new(),
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

/// One preserved file of an outgoing session.
pub(crate) struct PreservedFile {
    handler: Handler,
    _module: ModuleRef,
    token: u64,
    file: ARef<File>,
    /// The handler's serialized data.
    data: u64,
    /// The handler's private pointer.
    private: usize,
    /// Key in the preserved ids of [`Core`].
    id: usize,
    /// The FLBs this file holds an outgoing reference on, in the order they were taken.
    flbs: KVec<Arc<FlbState>>,
}

impl PreservedFile {
    /// Unpreserves the file: its handler's preservation, its FLB references, its id.
    fn undo(self, core: &Core) {
        self.handler.unpreserve(&self.args());
        flb::file_unpreserve(&self.flbs);
        core.forget_id(self.id);
    }

    fn args(&self) -> FileArgs<'_> {
        FileArgs {
            file: Some(&*self.file),
            data: self.data,
            private: self.private,
            retrieve_status: 0,
        }
    }
}

/// What changes for a file handed over by the previous kernel; its record (handler, data,
/// token) stays in the parsed hand-over, which lives as long as the kernel. At finish it drops
/// a reference on the FLBs linked to its handler then, as in C (an FLB whose module is gone
/// is not touched).
#[derive(Clone, Default)]
struct InState {
    /// The file, once retrieved.
    file: Option<ARef<File>>,
    /// Key in the preserved ids of [`Core`] while this file holds one.
    id: Option<usize>,
    /// 0: not retrieved yet; 1: retrieved; negative: the (sticky) retrieve error.
    retrieve_status: i32,
}

/// The handler of the incoming files whose compatible string is `compat` (an index in the
/// hand-over's names), with a reference on its module while the set needs it.
pub(crate) struct InHandler {
    pub(crate) compat: u32,
    pub(crate) handler: Handler,
    pub(crate) _module: ModuleRef,
}

/// The handlers of a set of incoming files, one per compatible string. A session's files
/// mostly share one, which is held inline: no allocation for it per session.
#[derive(Default)]
pub(crate) enum InHandlers {
    #[default]
    None,
    One(InHandler),
    Many(KVec<InHandler>),
}

impl InHandlers {
    /// Adds `h`. If memory runs out, the table is left empty (its module references
    /// dropped): the caller drops the whole set then.
    pub(crate) fn push(&mut self, h: InHandler) -> Result {
        *self = match core::mem::take(self) {
            Self::None => Self::One(h),
            Self::One(first) => {
                let mut v = KVec::with_capacity(2, GFP_KERNEL)?;
                v.push(first, GFP_KERNEL)?;
                v.push(h, GFP_KERNEL)?;
                Self::Many(v)
            }
            Self::Many(mut v) => {
                v.push(h, GFP_KERNEL)?;
                Self::Many(v)
            }
        };
        Ok(())
    }
}

impl core::ops::Deref for InHandlers {
    type Target = [InHandler];

    fn deref(&self) -> &[InHandler] {
        match self {
            Self::None => &[],
            Self::One(h) => core::slice::from_ref(h),
            Self::Many(v) => v,
        }
    }
}

/// The files of one session.
///
/// # Invariants
///
/// An incoming set has one entry in `state` per record in `records`, and a handler in
/// `handlers` for the compatible string of each. An outgoing set's `chain` holds an entry per
/// file of `files`, in their order, with the file's `data`.
pub(crate) struct FileSet {
    /// An outgoing set's files.
    files: KVVec<PreservedFile>,
    /// Token to index in `files`, for an outgoing set (files come and go).
    tokens: RBTree<u64, usize>,
    /// An incoming set's files as the parsed hand-over records them (empty once finished).
    records: &'static [InFile],
    /// What changed for each of `records` since (one file, the common case, inline).
    state: SmallVec<InState, 1>,
    /// The handlers of `records`, one per compatible string (a session's files mostly share
    /// one).
    handlers: InHandlers,
    /// For an incoming set: `(token, index in records)` sorted by token, the hand-over
    /// parser's (no allocation per file or per session); empty for a small set, which is
    /// scanned, and for a larger one whose records are in rising token order, which is
    /// searched in place.
    by_token: &'static [(u64, u32)],
    /// The set was handed over by the previous kernel.
    incoming: bool,
    /// The file chain of an outgoing set, in KHO pages: written as files are preserved, so
    /// that reboot only stores what a freeze changed. After a successful reboot it is what
    /// the next kernel reads; the session is frozen then, and its set is never changed or
    /// dropped.
    chain: Chain<kho::OutPage, FileSer>,
}

impl FileSet {
    /// An empty outgoing set.
    pub(crate) fn new() -> impl Init<Self> {
        init!(Self {
            files: KVVec::new(),
            tokens: RBTree::new(),
            records: &[],
            state: SmallVec::new(),
            handlers: InHandlers::None,
            by_token: &[],
            incoming: false,
            chain: Chain::new(),
        })
    }

    /// An incoming set: the files of `records`, with unique tokens, indexed by `by_token`
    /// (sorted, see `ser::InSession`; empty for a small set and for records in rising token
    /// order), whose handlers are `handlers`. `names` has the bit of every record's `compat`
    /// (the parser's `InSession::compats`).
    /// Nothing is done per file: a file is only looked at when it is retrieved or finished.
    /// Returned as an initializer: the set is written where it stays.
    pub(crate) fn incoming(
        records: &'static [InFile],
        names: u64,
        by_token: &'static [(u64, u32)],
        handlers: InHandlers,
    ) -> Result<impl Init<Self>> {
        // A handler for every name, so for every record (each has its bit in `names`). A
        // `compat` of 64 or more covers nothing: no file has one (the parser's bound).
        let covered = handlers
            .iter()
            .fold(0u64, |m, h| m | 1u64.checked_shl(h.compat).unwrap_or(0));
        if names & !covered != 0 {
            return Err(EINVAL);
        }
        let mut state = SmallVec::new();
        state.extend_default(records.len(), GFP_KERNEL)?;
        // INVARIANT: One state per record, and a handler for each: `names` has the bit of each
        // record's name, and every bit has a handler, checked above.
        Ok(init!(Self {
            files: KVVec::new(),
            tokens: RBTree::new(),
            records,
            state,
            handlers,
            by_token,
            incoming: true,
            chain: Chain::new(),
        }))
    }

    /// The handler of an incoming file.
    fn handler_of(&self, record: &InFile) -> Result<Handler> {
        self.handlers
            .iter()
            .find(|h| h.compat == record.compat)
            .map(|h| h.handler)
            .ok_or(EINVAL)
    }

    /// The arguments for a handler's callback on incoming file `i`.
    fn in_args(&self, i: usize) -> FileArgs<'_> {
        let st = &self.state[i];
        FileArgs {
            file: st.file.as_deref(),
            data: self.records[i].data,
            private: 0,
            retrieve_status: st.retrieve_status,
        }
    }

    /// The index of the file of `token`.
    fn index(&self, token: u64) -> Option<usize> {
        if !self.incoming {
            return self.tokens.get(&token).copied();
        }
        if self.by_token.is_empty() {
            if self.records.len() <= SMALL_SESSION {
                return self.records.iter().position(|f| f.token == token);
            }
            return self.records.binary_search_by_key(&token, |f| f.token).ok();
        }
        let i = self.by_token.binary_search_by_key(&token, |e| e.0).ok()?;
        Some(self.by_token[i].1 as usize).filter(|&i| i < self.records.len())
    }

    /// Where the file chain starts (0 for no file) and how many files it holds.
    pub(crate) fn file_chain(&self) -> (u64, usize) {
        (self.chain.head(), self.chain.len())
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
        self.chain.reserve()?;

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
                // Give back the page reserved for this file.
                self.chain.trim();
                return Err(e);
            }
        };

        let f = PreservedFile {
            handler,
            _module: module,
            token,
            file,
            data,
            private,
            id,
            flbs,
        };
        // Neither can fail: the vector's capacity and the chain's page were reserved above.
        // Should one fail anyway, the file is unpreserved whole and the two stay in step.
        let index = self.files.len();
        if let Err(e) = self.files.push_within_capacity(f) {
            e.0.undo(core);
            return Err(ENOMEM);
        }
        // INVARIANT: The file's entry, with its data, follows the entries of the files before it.
        if let Err(e) = self.chain.push_file(handler.compatible(), data, token) {
            if let Some(f) = self.files.pop() {
                f.undo(core);
            }
            self.chain.trim();
            return Err(e);
        }
        self.tokens.insert(token_node.into_node(token, index));
        Ok(())
    }

    /// Unpreserves every file, last preserved first (closing an outgoing session).
    pub(crate) fn unpreserve_all(&mut self, core: &Core) {
        while let Some(f) = self.files.pop() {
            f.undo(core);
        }
        self.tokens = RBTree::new();
        self.chain = Chain::new();
    }

    /// `LIVEUPDATE_SESSION_RETRIEVE_FD` (incoming sets): the file of `token`, re-created on
    /// first use. A failed retrieve fails the same way every time.
    pub(crate) fn retrieve(&mut self, core: &Core, token: u64) -> Result<ARef<File>> {
        if !self.incoming {
            return Err(EINVAL);
        }
        let index = self.index(token).ok_or(ENOENT)?;
        let id_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let record = self.records.get(index).ok_or(ENOENT)?;
        let handler = self.handler_of(record)?;
        let st = self.state.get_mut(index).ok_or(ENOENT)?;
        match st.retrieve_status {
            s if s < 0 => return Err(Error::from_errno(s)),
            s if s > 0 => return st.file.clone().ok_or(EINVAL),
            _ => {}
        }
        let file = match handler.retrieve(record.data) {
            Ok(file) => file,
            Err(e) => {
                st.retrieve_status = e.to_errno();
                return Err(e);
            }
        };
        let id = handler.id(&file);
        // A retrieved object cannot be preserved again until it is finished.
        if core.claim_id(id, id_node).is_ok() {
            st.id = Some(id);
        } else {
            pr_warn!("retrieved file of token {:#x} is already in use\n", token);
        }
        st.retrieve_status = 1;
        st.file = Some(file.clone());
        Ok(file)
    }

    /// `LIVEUPDATE_SESSION_FINISH` (incoming sets): asks every file whether it can finish,
    /// then finishes them all, last first. Idempotent.
    pub(crate) fn finish(&mut self, core: &Core) -> Result {
        if !self.incoming {
            return Err(EINVAL);
        }
        for (i, r) in self.records.iter().enumerate() {
            if !self.handler_of(r)?.can_finish(&self.in_args(i)) {
                return Err(EBUSY);
            }
        }
        let mut flbs = FinishFlbs::new();
        for h in self.handlers.iter() {
            flbs.add(core, &h.handler)?;
        }
        for i in (0..self.records.len()).rev() {
            // Cannot fail: every record's handler was found above, and `handlers` has not
            // changed since.
            let handler = self.handler_of(&self.records[i])?;
            handler.finish(&self.in_args(i));
            flbs.file_finish(core, &handler);
            let st = core::mem::take(&mut self.state[i]);
            if let Some(id) = st.id {
                core.forget_id(id);
            }
            // The file's reference goes now, as each file is finished in C.
            drop(st);
        }
        // INVARIANT: No record, no state, no handler.
        self.records = &[];
        self.state = SmallVec::new();
        self.handlers = InHandlers::None;
        self.by_token = &[];
        Ok(())
    }

    /// Freezes every file, first preserved first, and stores the data each handler returns
    /// into the file's entry if it changed. On failure the files frozen so far are unfrozen
    /// again.
    pub(crate) fn freeze(&mut self) -> Result {
        for i in 0..self.files.len() {
            let f = &mut self.files[i];
            let frozen = fault::freeze().and_then(|()| f.handler.freeze(&f.args()));
            let res = match frozen {
                // The file's entry holds `f.data`: unchanged data (memfd's) leaves the entry's
                // page, one of its own per session, untouched.
                Ok(data) if data == f.data => Ok(()),
                Ok(data) => {
                    f.data = data;
                    // The chain holds an entry per file; a file without one (never) is
                    // unfrozen with the rest.
                    match self.chain.entry_mut(i) {
                        Some(e) => {
                            // INVARIANT: The entry gets the file's new data.
                            e.data = data;
                            Ok(())
                        }
                        None => Err((EINVAL, i + 1)),
                    }
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
        // A file's finish may be its FLBs' first use: their records are read now, when
        // running out of memory still fails the whole FINISH.
        if !flbs.is_empty() {
            core.flbs.read_records()?;
        }
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
