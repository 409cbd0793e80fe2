// SPDX-License-Identifier: GPL-2.0

//! Sessions, named groups of preserved files, and the live update state that holds them
//! ([`Luo`]).
//!
//! Outgoing sessions are created with `LIVEUPDATE_IOCTL_CREATE_SESSION`, receive files with
//! `LIVEUPDATE_SESSION_PRESERVE_FD` and are serialized at reboot; closing one unpreserves its
//! files. Incoming sessions come from the previous kernel and are taken with
//! `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`; their files come back with
//! `LIVEUPDATE_SESSION_RETRIEVE_FD` and are released with `LIVEUPDATE_SESSION_FINISH` (or by
//! closing the session). The ioctls are in `ioctl`, reboot's serialization in `reboot`.
//!
//! Outgoing sessions are kept in creation order (the serialization order) and indexed by name,
//! so creating, looking up and removing one costs O(log n), never a list walk.

use core::pin::Pin;

use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    str::BStr,
    sync::{
        atomic::Atomic,
        Arc,
        Mutex,
        MutexGuard, //
    },
};

use crate::{
    abi::{
        Name,
        SessionSer,
        MAX_SESSIONS, //
    },
    fault,
    file::{
        Core,
        FileSet,
        InHandler,
        InHandlers, //
    },
    gate::Gate,
    kho,
    ser::{
        self,
        HandOver,
        InSession, //
    },
    small::SmallVec,
};

/// The state of live update in this kernel. It exists only when live update is enabled.
#[pin_data]
pub(crate) struct Luo {
    /// Every session, and the outgoing hand-over.
    #[pin]
    pub(crate) sessions: Mutex<Sessions>,
    /// What every session's files share: handlers, FLBs, preserved ids.
    #[pin]
    pub(crate) core: Core,
    /// `/dev/liveupdate` is open (it is single-open).
    pub(crate) device_open: Atomic<bool>,
    /// The validated hand-over of the previous kernel (its FLB records are in `core`); empty
    /// if there was none, or an invalid one. Built where it stays: it is large, and a copy of
    /// it is a cost of every boot.
    handover: HandOver,
    /// The incoming sessions: those built from `handover` and not closed yet, how far the
    /// build went, and whether the hand-over's pages went back.
    #[pin]
    incoming: Mutex<Incoming>,
    /// Reboot's exclusion of ioctls and closes.
    #[pin]
    pub(crate) gate: Gate,
    /// This kernel's live update number: the previous kernel's plus one.
    pub(crate) liveupdate_num: u64,
}

/// The incoming sessions, how far they were built, and whether the hand-over's pages went
/// back.
struct Incoming {
    /// The sessions not closed yet, each at the index of its entry in the hand-over's
    /// sessions (sorted by name: a lookup is a binary search there). `None` for one that was
    /// closed, or not built (yet, or for want of a handler).
    sessions: SmallVec<Option<Arc<Session>>, 1>,
    /// How many of `sessions` are `Some`.
    live: usize,
    /// How many of the hand-over's sessions were taken: built, or dropped for want of a
    /// handler. A build that ran out of memory resumes at the next one; a session dropped
    /// before stays dropped for this boot, as it does once the build succeeds.
    taken: usize,
    /// Every session was taken (or there was no hand-over).
    built: bool,
    /// The hand-over's pages were given back (or are being): the sessions they described are
    /// gone.
    released: bool,
}

impl Incoming {
    fn new() -> Self {
        Self {
            sessions: SmallVec::new(),
            live: 0,
            taken: 0,
            built: false,
            released: false,
        }
    }

    /// Whether the hand-over's pages are to be given back now, by the caller, once: the
    /// build is done and no incoming session is left.
    fn release_now(&mut self) -> bool {
        let now = self.built && self.live == 0 && !self.released;
        self.released |= now;
        now
    }
}

impl Luo {
    /// The state of a kernel that has no hand-over (yet: see [`Luo::receive`]).
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            sessions <- new_mutex!(Sessions::new(), "luo::sessions"),
            core <- Core::new(),
            device_open: Atomic::new(false),
            handover: HandOver::new(),
            incoming <- new_mutex!(Incoming::new(), "luo::incoming"),
            gate <- Gate::new(),
            liveupdate_num: 1,
        })
    }

    /// Takes the previous kernel's hand-over, which `read` fills in place (it returns whether
    /// the hand-over is valid; what it read of an invalid one is dropped). Called once, before
    /// anybody else can see the state.
    pub(crate) fn receive(self: Pin<&mut Self>, read: impl FnOnce(&mut HandOver) -> bool) {
        let this = self.project();
        let h = this.handover;
        if !read(h) {
            *h = HandOver::new();
            return;
        }
        // The parser checked that the previous number has a successor.
        *this.liveupdate_num = h.liveupdate_num.saturating_add(1);
        // The FLB page is the FLB records': they give it back (`Flbs::settle`).
        this.core.project().flbs.receive(h.flb_page);
    }

    /// The incoming session `name`, if it was built and not closed.
    pub(crate) fn incoming_session(&self, name: &Name) -> Option<Arc<Session>> {
        let i = self.handover.position(name)?;
        self.incoming.lock().sessions.get(i)?.clone()
    }

    /// Takes `session`, an incoming session that was closed, out of the incoming sessions,
    /// and gives the hand-over's pages back if it was the last.
    fn forget_incoming(&self, session: &Session) {
        let mut incoming = self.incoming.lock();
        let i = self.handover.position(&session.name);
        if let Some(slot) = i.and_then(|i| incoming.sessions.get_mut(i)) {
            if slot.take().is_some() {
                incoming.live -= 1;
            }
        }
        self.release_if_done(incoming);
    }

    /// Gives the hand-over's pages back, after dropping `incoming`, if the build is done and
    /// no incoming session is left ([`Incoming::release_now`] decides under the lock).
    fn release_if_done(&self, mut incoming: MutexGuard<'_, Incoming>) {
        if incoming.release_now() {
            drop(incoming);
            self.release_pages();
        }
    }

    /// Gives the hand-over's pages back to the allocator, once ([`Incoming::release_now`]
    /// said so), without a lock held: no incoming session is left, and the sessions' handlers
    /// have taken their own pages by then, so a page our records shared with one by mistake
    /// is theirs, and is skipped.
    fn release_pages(&self) {
        self.core.flbs.settle();
        let h = &self.handover;
        for &pa in h.pages.iter().filter(|&&pa| pa != h.flb_page) {
            kho::release(pa);
        }
    }

    /// Builds the incoming sessions on first use (every handler has registered by the first
    /// open of `/dev/liveupdate`). A failure (out of memory) is returned to the opener and the
    /// build is resumed at the next open: sessions already built are kept, a partly built one
    /// was dropped whole (dropping incoming records calls no handler), none is lost to a
    /// transient failure.
    pub(crate) fn build_incoming(&'static self) -> Result {
        let mut incoming = self.incoming.lock();
        if incoming.built {
            return Ok(());
        }
        self.add_incoming(&self.handover, &mut incoming)
            .inspect_err(|e| {
                pr_err!(
                    "failed to set up the incoming sessions (retried at the next open): {:?}\n",
                    e
                )
            })?;
        incoming.built = true;
        // Until now no incoming session could be retrieved, so none went: there is none if
        // the hand-over had none, or if every one was dropped for want of a handler.
        self.release_if_done(incoming);
        Ok(())
    }

    /// Adds the sessions of `h` that an earlier build did not take (`incoming.taken` of them
    /// were built or dropped), each in its slot.
    fn add_incoming(&'static self, h: &'static HandOver, incoming: &mut Incoming) -> Result {
        // One slot per session of the hand-over (inline for one): nothing is allocated per
        // session for the table.
        if let Some(more) = h.sessions.len().checked_sub(incoming.sessions.len()) {
            incoming.sessions.extend_default(more, GFP_KERNEL)?;
        }
        for s in h.sessions.get(incoming.taken..).unwrap_or_default() {
            let session = self.new_incoming(h, s)?;
            if let Some(slot) = incoming.sessions.get_mut(incoming.taken) {
                if session.is_some() {
                    incoming.live += 1;
                }
                *slot = session;
            }
            incoming.taken += 1;
        }
        Ok(())
    }

    /// Turns one session of the hand-over into an incoming session; `None` (logged) if one of
    /// its files has no registered handler. Any other error (out of memory) is returned.
    fn new_incoming(
        &'static self,
        h: &'static HandOver,
        s: &'static InSession,
    ) -> Result<Option<Arc<Session>>> {
        let records = h.files(s);
        // One handler lookup per handler name the session's files use (mostly one), taken
        // from the names the parser noted for the session: nothing is done per file here.
        let mut handlers = InHandlers::None;
        let mut names = s.compats();
        while names != 0 {
            // `compat < 64`, the bit's index.
            let compat = names.trailing_zeros();
            names &= names - 1;
            // The parser noted only names of `compats`.
            let Some(compatible) = h.compats.get(compat as usize) else {
                pr_err!(
                    "session [{}] dropped: a file has no handler name\n",
                    BStr::from_bytes(s.name.as_bytes())
                );
                return Ok(None);
            };
            // Only a missing handler drops the session; running out of memory fails the
            // build, which the next open retries.
            let (handler, module) = match self.core.registry.handler_for(compatible) {
                Ok(found) => found,
                Err(e) if e == ENOENT => {
                    pr_err!(
                        "session [{}] dropped: no registered handler for compatible '{}'\n",
                        BStr::from_bytes(s.name.as_bytes()),
                        BStr::from_bytes(compatible.as_bytes())
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let found = InHandler {
                compat,
                handler,
                _module: module,
            };
            handlers.push(found)?;
        }
        let files = match FileSet::incoming(records, s.compats(), h.by_token(s), handlers) {
            Ok(files) => files,
            // Not for want of memory: a file without a handler (never, see above).
            Err(e) if e == EINVAL => {
                pr_err!(
                    "session [{}] dropped: a file has no handler\n",
                    BStr::from_bytes(s.name.as_bytes())
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(Arc::pin_init(
            Session::new(self, s.name, Kind::Incoming, State::Waiting, files),
            GFP_KERNEL,
        )?))
    }
}

/// Which side of a live update a session is on. Fixed when the session is made: a session fd
/// never changes kind, so an op checked against it cannot find another kind later.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Created in this kernel, handed over at reboot.
    Outgoing,
    /// Handed over by the previous kernel.
    Incoming,
}

/// Where a session is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Outgoing, not in the tables yet (its creation has not succeeded).
    New,
    /// Outgoing, in the tables; `seq` is its place in the creation order.
    Listed {
        /// Key in [`Sessions::outgoing`].
        seq: u64,
    },
    /// Incoming, no session fd for it yet.
    Waiting,
    /// Incoming, a session fd exists for it.
    Retrieved,
    /// Closed: no longer in any table.
    Gone,
}

/// The mutable part of a session.
pub(crate) struct SessionInner {
    pub(crate) state: State,
    pub(crate) files: FileSet,
}

/// A session.
#[pin_data]
pub(crate) struct Session {
    pub(crate) luo: &'static Luo,
    pub(crate) name: Name,
    pub(crate) kind: Kind,
    #[pin]
    pub(crate) inner: Mutex<SessionInner>,
}

impl Session {
    fn new(
        luo: &'static Luo,
        name: Name,
        kind: Kind,
        state: State,
        files: impl Init<FileSet>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            luo,
            name,
            kind,
            inner <- new_mutex!(
                init!(SessionInner {
                    state,
                    files <- files,
                }),
                "luo_session::inner"
            ),
        })
    }

    /// A new outgoing session, not listed yet.
    pub(crate) fn new_outgoing(luo: &'static Luo, name: Name) -> Result<Arc<Self>> {
        Arc::pin_init(
            Self::new(luo, name, Kind::Outgoing, State::New, FileSet::new()),
            GFP_KERNEL,
        )
    }
}

/// What the next kernel will find: the published root and the FLB page.
pub(crate) struct Outgoing {
    pub(crate) root: kho::Published,
    pub(crate) flbs: kho::OutPage,
}

/// Every session of this kernel.
pub(crate) struct Sessions {
    next_seq: u64,
    /// Outgoing sessions in creation order.
    pub(crate) outgoing: RBTree<u64, Arc<Session>>,
    /// Number of outgoing sessions.
    pub(crate) n_outgoing: usize,
    /// Names of outgoing sessions.
    names: RBTree<Name, u64>,
    /// The hand-over to the next kernel (set up at late boot).
    pub(crate) out: Option<Outgoing>,
    /// KHO pages for the session chain, allocated as sessions are created: reboot only
    /// writes into them.
    pub(crate) pool: KVec<kho::OutPage>,
}

/// Tree nodes for listing one outgoing session, allocated before its creation answers.
pub(crate) struct ListNodes {
    by_seq: RBTreeNodeReservation<u64, Arc<Session>>,
    by_name: RBTreeNodeReservation<Name, u64>,
}

impl ListNodes {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            by_seq: RBTreeNodeReservation::new(GFP_KERNEL)?,
            by_name: RBTreeNodeReservation::new(GFP_KERNEL)?,
        })
    }
}

impl Sessions {
    fn new() -> Self {
        Self {
            next_seq: 0,
            outgoing: RBTree::new(),
            n_outgoing: 0,
            names: RBTree::new(),
            out: None,
            pool: KVec::new(),
        }
    }

    /// Lists a new outgoing session: `EEXIST` if its name is taken, `ENOSPC` if the hand-over
    /// cannot carry one more.
    pub(crate) fn list(&mut self, session: Arc<Session>, nodes: ListNodes) -> Result {
        if self.names.get(&session.name).is_some() {
            return Err(EEXIST);
        }
        if self.n_outgoing >= MAX_SESSIONS {
            return Err(ENOSPC);
        }
        let n = self.n_outgoing + 1;
        ser::fit_pool::<SessionSer, _>(&mut self.pool, n)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.n_outgoing += 1;
        session.inner.lock().state = State::Listed { seq };
        self.names
            .insert(nodes.by_name.into_node(session.name, seq));
        self.outgoing.insert(nodes.by_seq.into_node(seq, session));
        Ok(())
    }
}

/// The last reference to a session file went away. Inside the reboot gate, so that reboot
/// never sees a session half closed; once reboot serialized everything, the session stays as
/// it was handed over.
pub(crate) fn release(session: Arc<Session>) {
    let luo = session.luo;
    let Some(_pass) = luo.gate.enter_close() else {
        return;
    };
    match session.kind {
        Kind::Outgoing => {
            let mut sessions = luo.sessions.lock();
            let mut inner = session.inner.lock();
            let State::Listed { seq } = inner.state else {
                // Never listed: its creation failed.
                return;
            };
            sessions.outgoing.remove(&seq);
            sessions.names.remove(&session.name);
            sessions.n_outgoing -= 1;
            let n = sessions.n_outgoing;
            // Shrinking cannot fail.
            let _ = ser::fit_pool::<SessionSer, _>(&mut sessions.pool, n);
            inner.state = State::Gone;
            drop(sessions);
            fault::release();
            inner.files.unpreserve_all(&luo.core);
        }
        Kind::Incoming => {
            let mut inner = session.inner.lock();
            if inner.state != State::Retrieved {
                return;
            }
            if let Err(e) = inner.files.finish(&luo.core) {
                // Unlike the C implementation, the session is not leaked: it can be
                // retrieved (and finished) again.
                pr_warn!(
                    "Unable to finish session [{}] on release: {:?}; it can be retrieved again\n",
                    BStr::from_bytes(session.name.as_bytes()),
                    e
                );
                inner.state = State::Waiting;
                return;
            }
            inner.state = State::Gone;
            drop(inner);
            luo.forget_incoming(&session);
        }
    }
}
