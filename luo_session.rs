// SPDX-License-Identifier: GPL-2.0

//! Sessions: named groups of preserved files, each one an anonymous-inode file.
//!
//! Outgoing sessions are created with `LIVEUPDATE_IOCTL_CREATE_SESSION`, receive files with
//! `LIVEUPDATE_SESSION_PRESERVE_FD` and are serialized at reboot; closing one unpreserves its
//! files. Incoming sessions come from the previous kernel and are taken with
//! `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`; their files come back with
//! `LIVEUPDATE_SESSION_RETRIEVE_FD` and are released with `LIVEUPDATE_SESSION_FINISH` (or by
//! closing the session).
//!
//! Outgoing sessions are kept in creation order (the serialization order) and indexed by name,
//! so creating, looking up and removing one costs O(log n), never a list walk.

use kernel::{
    bindings,
    fs::file::FileDescriptorReservation,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    str::BStr,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    ffi,
    kho,
    luo_fault,
    luo_file::{
        self,
        FileSet, //
    },
    luo_ioctl::{
        self,
        always,
        layout,
        luo_cmd,
        Op,
        UCmd, //
    },
    luo_ser::{
        self,
        Chain,
        HandOver,
        InSession, //
    },
    Luo, //
};

/// Length of the name field, NUL included.
pub(crate) const NAME_LEN: usize = layout::NAME_LEN;

/// The length of a non-empty string that a NUL ends within the first `max` bytes of `raw`;
/// `EINVAL` otherwise.
pub(crate) fn terminated_len(raw: &[u8], max: usize) -> Result<usize> {
    match raw.iter().take(max).position(|&b| b == 0) {
        Some(len) if len > 0 => Ok(len),
        _ => Err(EINVAL),
    }
}

/// A session name.
///
/// # Invariants
///
/// 1 to `NAME_LEN - 1` non-NUL bytes followed by zeroes up to `NAME_LEN`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SessionName([u8; NAME_LEN]);

impl SessionName {
    /// Validates a name field: a NUL must end it within the field, and it must not be empty.
    /// Bytes after the NUL are ignored.
    pub(crate) fn new(raw: &[u8]) -> Result<Self> {
        let len = terminated_len(raw, NAME_LEN)?;
        let mut name = [0u8; NAME_LEN];
        name[..len].copy_from_slice(&raw[..len]);
        // INVARIANT: `len` is in `1..NAME_LEN` and the rest is zero.
        Ok(Self(name))
    }

    /// The name without its NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        &self.0[..len]
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
    pub(crate) name: SessionName,
    pub(crate) kind: Kind,
    #[pin]
    pub(crate) inner: Mutex<SessionInner>,
}

impl Session {
    fn new(
        luo: &'static Luo,
        name: SessionName,
        kind: Kind,
        state: State,
        files: FileSet,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            luo,
            name,
            kind,
            inner <- new_mutex!(SessionInner { state, files }, "luo_session::inner"),
        })
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
    n_outgoing: usize,
    /// Names of outgoing sessions.
    names: RBTree<SessionName, u64>,
    /// Incoming sessions that were not closed yet.
    pub(crate) incoming: RBTree<SessionName, Arc<Session>>,
    /// The hand-over to the next kernel (set up at late boot).
    pub(crate) out: Option<Outgoing>,
    /// KHO pages for the session chain, allocated as sessions are created: reboot only
    /// writes into them.
    pool: KVec<kho::OutPage>,
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Self {
            next_seq: 0,
            outgoing: RBTree::new(),
            n_outgoing: 0,
            names: RBTree::new(),
            incoming: RBTree::new(),
            out: None,
            pool: KVec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /dev/liveupdate ioctls.

fn create_session(luo: &&'static Luo, cmd: &mut UCmd) -> Result<isize> {
    luo_fault::create_session();
    let luo: &'static Luo = luo;
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let name = SessionName::new(cmd.bytes(layout::CREATE_NAME, NAME_LEN))?;
    let session = Arc::pin_init(
        Session::new(luo, name, Kind::Outgoing, State::New, FileSet::new()),
        GFP_KERNEL,
    )?;
    // The file owns the session; closing it before the session is listed does nothing.
    let file = ffi::session_getfile(name.as_bytes(), session.clone())?;
    let by_seq = RBTreeNodeReservation::new(GFP_KERNEL)?;
    let by_name = RBTreeNodeReservation::new(GFP_KERNEL)?;
    // Answer first: a session whose creation fails with EFAULT was never visible.
    cmd.set_i32(layout::CREATE_FD, fd.reserved_fd() as i32);
    cmd.respond()?;
    {
        let _pass = luo.gate.enter()?;
        let mut sessions = luo.sessions.lock();
        if sessions.names.get(&name).is_some() {
            return Err(EEXIST);
        }
        if sessions.n_outgoing >= luo_ser::MAX_SESSIONS {
            return Err(ENOSPC);
        }
        let n = sessions.n_outgoing + 1;
        luo_ser::fit_pool(&mut sessions.pool, n, luo_ser::SESSION_SER)?;
        let seq = sessions.next_seq;
        sessions.next_seq += 1;
        sessions.n_outgoing += 1;
        session.inner.lock().state = State::Listed { seq };
        sessions.outgoing.insert(by_seq.into_node(seq, session));
        sessions.names.insert(by_name.into_node(name, seq));
    }
    fd.fd_install(file);
    Ok(0)
}

fn retrieve_session(luo: &&'static Luo, cmd: &mut UCmd) -> Result<isize> {
    let luo: &'static Luo = luo;
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    // A name that is not a valid session name names no session.
    let name =
        SessionName::new(cmd.bytes(layout::RETRIEVE_SESSION_NAME, NAME_LEN)).map_err(|_| ENOENT)?;
    let session = luo
        .sessions
        .lock()
        .incoming
        .get(&name)
        .cloned()
        .ok_or(ENOENT)?;
    // Already retrieved is EINVAL before EFAULT, as in C; the check that counts is the one
    // below, under the same lock as the effect.
    if session.inner.lock().state == State::Retrieved {
        return Err(EINVAL);
    }
    // Answer first: if user memory faults, nothing has happened.
    cmd.set_i32(layout::RETRIEVE_SESSION_FD, fd.reserved_fd() as i32);
    cmd.respond()?;
    let pass = luo.gate.enter()?;
    let mut inner = session.inner.lock();
    match inner.state {
        State::Waiting => {}
        State::Retrieved => return Err(EINVAL),
        _ => return Err(ENOENT),
    }
    let file = ffi::session_getfile(name.as_bytes(), session.clone())?;
    inner.state = State::Retrieved;
    drop(inner);
    drop(pass);
    fd.fd_install(file);
    Ok(0)
}

/// The op table of `/dev/liveupdate`.
static DEVICE_OPS: [Op<&'static Luo>; 2] = luo_ioctl::checked_table(
    [
        Op {
            cmd: luo_cmd(bindings::LIVEUPDATE_CMD_CREATE_SESSION),
            layout: layout::CREATE_SESSION,
            allowed: always,
            exec: create_session,
        },
        Op {
            cmd: luo_cmd(bindings::LIVEUPDATE_CMD_RETRIEVE_SESSION),
            layout: layout::RETRIEVE_SESSION,
            allowed: always,
            exec: retrieve_session,
        },
    ],
    bindings::LIVEUPDATE_CMD_BASE,
);

/// An ioctl on `/dev/liveupdate`.
pub(crate) fn device_ioctl(luo: &'static Luo, cmd: u32, arg: usize) -> Result<isize> {
    luo_ioctl::dispatch(&DEVICE_OPS, bindings::LIVEUPDATE_CMD_BASE, &luo, cmd, arg)
}

// ---------------------------------------------------------------------------------------------
// Session fd ioctls.

fn outgoing_only(s: &Arc<Session>) -> Result {
    match s.kind {
        Kind::Outgoing => Ok(()),
        Kind::Incoming => Err(EINVAL),
    }
}

fn incoming_only(s: &Arc<Session>) -> Result {
    match s.kind {
        Kind::Incoming => Ok(()),
        Kind::Outgoing => Err(EINVAL),
    }
}

fn preserve_fd(s: &Arc<Session>, cmd: &mut UCmd) -> Result<isize> {
    let token = cmd.u64_at(layout::PRESERVE_FD_TOKEN);
    let fd = cmd.i32_at(layout::PRESERVE_FD_FD);
    // The answer is the request itself: send it first, so EFAULT means nothing happened.
    cmd.respond()?;
    let _pass = s.luo.gate.enter()?;
    let mut inner = s.inner.lock();
    // An outgoing session with an fd is listed until the fd is closed.
    if !matches!(inner.state, State::Listed { .. }) {
        return Err(EINVAL);
    }
    inner.files.preserve(s.luo, token, fd)?;
    Ok(0)
}

fn retrieve_fd(s: &Arc<Session>, cmd: &mut UCmd) -> Result<isize> {
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let token = cmd.u64_at(layout::RETRIEVE_FD_TOKEN);
    cmd.set_i32(layout::RETRIEVE_FD_FD, fd.reserved_fd() as i32);
    cmd.respond()?;
    let pass = s.luo.gate.enter()?;
    let file = s.inner.lock().files.retrieve(s.luo, token)?;
    drop(pass);
    fd.fd_install(file);
    Ok(0)
}

/// `LIVEUPDATE_SESSION_FINISH`: finishes every file (all or nothing: `EBUSY` if one cannot
/// finish yet). The session stays, empty and incoming, until its fd is closed, as in C; its
/// name is free for an outgoing session all along.
fn finish(s: &Arc<Session>, cmd: &mut UCmd) -> Result<isize> {
    if cmd.u32_at(layout::FINISH_RESERVED) != 0 {
        return Err(EINVAL);
    }
    cmd.respond()?;
    let _pass = s.luo.gate.enter()?;
    s.inner.lock().files.finish(s.luo)?;
    Ok(0)
}

fn get_name(s: &Arc<Session>, cmd: &mut UCmd) -> Result<isize> {
    if cmd.u32_at(layout::GET_NAME_RESERVED) != 0 {
        return Err(EINVAL);
    }
    cmd.set_bytes(layout::GET_NAME_NAME, NAME_LEN, s.name.as_bytes());
    cmd.respond()?;
    Ok(0)
}

/// The op table of session fds.
static SESSION_OPS: [Op<Arc<Session>>; 4] = luo_ioctl::checked_table(
    [
        Op {
            cmd: luo_cmd(bindings::LIVEUPDATE_CMD_SESSION_PRESERVE_FD),
            layout: layout::PRESERVE_FD,
            allowed: outgoing_only,
            exec: preserve_fd,
        },
        Op {
            cmd: luo_cmd(bindings::LIVEUPDATE_CMD_SESSION_RETRIEVE_FD),
            layout: layout::RETRIEVE_FD,
            allowed: incoming_only,
            exec: retrieve_fd,
        },
        Op {
            cmd: luo_cmd(bindings::LIVEUPDATE_CMD_SESSION_FINISH),
            layout: layout::FINISH,
            allowed: incoming_only,
            exec: finish,
        },
        Op {
            cmd: luo_cmd(bindings::LIVEUPDATE_CMD_SESSION_GET_NAME),
            layout: layout::GET_NAME,
            allowed: always,
            exec: get_name,
        },
    ],
    bindings::LIVEUPDATE_CMD_SESSION_BASE,
);

/// An ioctl on a session fd.
pub(crate) fn ioctl(session: &Arc<Session>, cmd: u32, arg: usize) -> Result<isize> {
    luo_ioctl::dispatch(
        &SESSION_OPS,
        bindings::LIVEUPDATE_CMD_SESSION_BASE,
        session,
        cmd,
        arg,
    )
}

// ---------------------------------------------------------------------------------------------
// Closing a session fd.

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
            let _ = luo_ser::fit_pool(&mut sessions.pool, n, luo_ser::SESSION_SER);
            inner.state = State::Gone;
            drop(sessions);
            luo_fault::release();
            inner.files.unpreserve_all(luo);
        }
        Kind::Incoming => {
            let mut inner = session.inner.lock();
            if inner.state != State::Retrieved {
                return;
            }
            if let Err(e) = inner.files.finish(luo) {
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
            luo.sessions.lock().incoming.remove(&session.name);
            luo.release_handover_pages();
        }
    }
}

#[cfg(CONFIG_LIVEUPDATE_RUST_KUNIT_TEST)]
#[kernel::macros::kunit_tests(liveupdate_rust_session)]
mod tests {
    use super::*;

    fn field(s: &[u8]) -> [u8; NAME_LEN] {
        let mut f = [0u8; NAME_LEN];
        f[..s.len()].copy_from_slice(s);
        f
    }

    #[test]
    fn names_need_a_nul_and_a_byte() {
        assert!(SessionName::new(&field(b"")).is_err());
        assert!(SessionName::new(&[b'X'; NAME_LEN]).is_err());
        assert!(SessionName::new(&field(&[b'a'; 63])).is_ok());
        assert_eq!(SessionName::new(&field(b"abc")).unwrap().as_bytes(), b"abc");
    }

    #[test]
    fn bytes_after_the_nul_are_ignored() {
        let mut f = field(b"abc");
        f[10] = b'z';
        assert!(SessionName::new(&f).unwrap() == SessionName::new(&field(b"abc")).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Crossing kexec.

/// Sets up what the next kernel will find: the root ("luo-v5", the next update number, no
/// sessions yet) published as the "LUO" KHO subtree, and an empty FLB page.
pub(crate) fn setup_outgoing(luo: &Luo, liveupdate_num: u64) -> Result {
    let mut flbs = kho::OutPage::new()?;
    luo_ser::init_flb_page(flbs.bytes());
    let mut root = kho::OutPage::new()?;
    luo_ser::write_root(root.bytes(), liveupdate_num, flbs.pa());
    let root = kho::Published::new(root, luo_ser::ROOT)?;
    luo.sessions.lock().out = Some(Outgoing { root, flbs });
    Ok(())
}

/// Undoes the freeze of `done` (in reverse) after a later part of the reboot failed; the
/// pages their file chains were written to are zeroed for the next attempt.
fn unfreeze_all(done: &mut KVVec<&Arc<Session>>) {
    while let Some(s) = done.pop() {
        let mut inner = s.inner.lock();
        inner.files.unfreeze();
        inner.files.zero_pool();
    }
}

/// `liveupdate_reboot()`: closes the reboot gate (waiting for ioctls and closes in flight to
/// finish), freezes every outgoing session's files in preservation order and writes sessions,
/// files and FLBs for the next kernel. All or nothing: on failure everything frozen is
/// unfrozen, nothing is published, the gate opens again and the error goes back to
/// reboot(2). On success the gate stays shut: every later ioctl gets `EBUSY`, and a session
/// closed before the kexec stays as it was handed over.
///
/// The chains are written into the pages reserved as sessions were created and files were
/// preserved, and stay there: nothing is allocated here unless those ran short (the list of
/// frozen sessions aside), and nothing is freed.
pub(crate) fn serialize(luo: &Luo) -> Result {
    let Some(closed) = luo.gate.close() else {
        return Ok(());
    };
    serialize_closed(luo)?;
    closed.serialized();
    luo_fault::after_serialize(luo.liveupdate_num)
}

/// [`serialize`] with the gate closed: nothing else changes sessions or files meanwhile.
fn serialize_closed(luo: &Luo) -> Result {
    let mut guard = luo.sessions.lock();
    let Sessions {
        outgoing,
        n_outgoing,
        pool,
        out,
        ..
    } = &mut *guard;
    let Some(out) = out.as_mut() else {
        return Ok(());
    };
    luo_fault::reboot_starts();
    // The registered FLBs, copied: their records are written at the end, without the registry
    // lock (FLB locks are never taken under it).
    let flbs = {
        let reg = luo.registry.lock();
        let mut v = KVec::with_capacity(reg.flbs.len(), GFP_KERNEL)?;
        for e in reg.flbs.iter() {
            v.push(e.state.clone(), GFP_KERNEL)?;
        }
        v
    };
    let mut done = KVVec::with_capacity(*n_outgoing, GFP_KERNEL)?;
    let mut chain = Chain::with_pages(luo_ser::SESSION_SER, core::mem::take(pool));
    for s in outgoing.values() {
        let mut inner = s.inner.lock();
        let mut files = Chain::with_pages(luo_ser::FILE_SER, inner.files.take_pool());
        let res = inner.files.freeze(&mut files).and_then(|()| {
            chain
                .push_session(s.name.as_bytes(), &files)
                .inspect_err(|_| inner.files.unfreeze())
        });
        let res = match res {
            Ok(()) => {
                inner.files.restore_pool(files.into_written());
                // Cannot fail: capacity for every session was reserved above.
                done.push(s, GFP_KERNEL).map_err(|e| {
                    inner.files.unfreeze();
                    inner.files.zero_pool();
                    Error::from(e)
                })
            }
            Err(e) => {
                inner.files.restore_pool(files.into_pages());
                Err(e)
            }
        };
        drop(inner);
        if let Err(e) = res {
            unfreeze_all(&mut done);
            *pool = chain.into_pages();
            pr_err!(
                "live update refused: session [{}] could not be serialized: {:?}\n",
                BStr::from_bytes(s.name.as_bytes()),
                e
            );
            return Err(e);
        }
    }

    // Nothing can fail from here on.
    let mut n_flbs = 0;
    let page = out.flbs.bytes();
    for state in flbs.iter() {
        if let Some((data, count)) = state.outgoing_record() {
            luo_ser::write_flb(page, n_flbs, state.name(), data, count);
            n_flbs += 1;
        }
    }
    luo_ser::set_flb_count(page, n_flbs);
    luo_ser::set_root_sessions(out.root.bytes(), chain.head());
    let kind = luo_fault::damage_kind();
    if !kind.is_empty() {
        let data = outgoing
            .values()
            .next()
            .and_then(|s| s.inner.lock().files.first_data());
        luo_ser::damage(
            kind,
            out.root.bytes(),
            chain.first_block(),
            out.flbs.bytes(),
            data,
        );
    }
    *pool = chain.into_written();
    Ok(())
}

/// Turns one session of the hand-over into an incoming session; `None` (logged) if one of
/// its files has no registered handler. Any other error (out of memory) is returned.
fn incoming_session(luo: &'static Luo, s: &InSession) -> Result<Option<Arc<Session>>> {
    let mut files = FileSet::new();
    for f in s.files.iter() {
        // Only a missing handler drops the session; running out of memory fails the build,
        // which the next open retries.
        let (handler, module) = match luo_file::handler_for(luo, f.compatible.as_bytes()) {
            Ok(found) => found,
            Err(e) if e == ENOENT => {
                pr_err!(
                    "session [{}] dropped: no registered handler for compatible '{}'\n",
                    BStr::from_bytes(s.name.as_bytes()),
                    BStr::from_bytes(f.compatible.as_bytes())
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        files.push_incoming(handler, module, f.token, f.data)?;
    }
    Ok(Some(Arc::pin_init(
        Session::new(luo, s.name, Kind::Incoming, State::Waiting, files),
        GFP_KERNEL,
    )?))
}

/// Builds the incoming sessions from the hand-over at the first open of `/dev/liveupdate`
/// (every handler has registered by then). After a failure it is called again: the sessions
/// built by the earlier call are skipped, a partly built one was dropped whole (dropping
/// incoming records calls no handler).
pub(crate) fn build_incoming(luo: &'static Luo, handover: &HandOver) -> Result {
    for s in handover.sessions.iter() {
        if luo.sessions.lock().incoming.get(&s.name).is_some() {
            continue;
        }
        if let Some(session) = incoming_session(luo, s)? {
            let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
            luo.sessions
                .lock()
                .incoming
                .insert(node.into_node(session.name, session));
        }
    }
    Ok(())
}
