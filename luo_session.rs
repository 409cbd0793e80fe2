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

/// Which side of a live update a session is on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Created in this kernel; `seq` is its place in the creation order.
    Outgoing {
        /// Key in [`Sessions::outgoing`].
        seq: u64,
    },
    /// Handed over by the previous kernel.
    Incoming {
        /// Whether a session fd exists for it.
        retrieved: bool,
    },
    /// Closed: no longer in any table.
    Gone,
}

/// The mutable part of a session.
pub(crate) struct SessionInner {
    pub(crate) dir: Direction,
    pub(crate) files: FileSet,
    /// Set while the session is frozen for reboot (for good after a successful reboot).
    pub(crate) frozen: bool,
}

/// A session.
#[pin_data]
pub(crate) struct Session {
    pub(crate) luo: &'static Luo,
    pub(crate) name: SessionName,
    #[pin]
    pub(crate) inner: Mutex<SessionInner>,
}

impl Session {
    fn new(luo: &'static Luo, name: SessionName, dir: Direction) -> impl PinInit<Self> {
        pin_init!(Self {
            luo,
            name,
            inner <- new_mutex!(
                SessionInner {
                    dir,
                    files: FileSet::new(),
                    frozen: false,
                },
                "luo_session::inner"
            ),
        })
    }

    /// Creates an incoming session (used by the deserializer).
    fn new_incoming(luo: &'static Luo, name: SessionName, files: FileSet) -> Result<Arc<Self>> {
        let s = Arc::pin_init(
            Self::new(luo, name, Direction::Incoming { retrieved: false }),
            GFP_KERNEL,
        )?;
        s.inner.lock().files = files;
        Ok(s)
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
    /// Set once reboot serialized the sessions: nothing may change any more.
    pub(crate) frozen: bool,
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
            frozen: false,
            out: None,
            pool: KVec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /dev/liveupdate ioctls.

fn create_session(luo: &&'static Luo, cmd: &mut UCmd) -> Result<isize> {
    crate::luo_fault::create_session();
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let name = SessionName::new(cmd.bytes(layout::CREATE_NAME, NAME_LEN))?;
    let luo: &'static Luo = luo;
    let session = Arc::pin_init(
        Session::new(luo, name, Direction::Outgoing { seq: 0 }),
        GFP_KERNEL,
    )?;
    let by_seq = RBTreeNodeReservation::new(GFP_KERNEL)?;
    let by_name = RBTreeNodeReservation::new(GFP_KERNEL)?;
    {
        let mut sessions = luo.sessions.lock();
        if sessions.frozen {
            return Err(EBUSY);
        }
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
        session.inner.lock().dir = Direction::Outgoing { seq };
        sessions
            .outgoing
            .insert(by_seq.into_node(seq, session.clone()));
        sessions.names.insert(by_name.into_node(name, seq));
    }
    // From here on, dropping the file (on error) removes the session again.
    let file = ffi::session_getfile(name.as_bytes(), session.clone()).inspect_err(|_| {
        remove_outgoing(&session);
    })?;
    cmd.set_i32(layout::CREATE_FD, fd.reserved_fd() as i32);
    cmd.respond()?;
    fd.fd_install(file);
    Ok(0)
}

fn retrieve_session(luo: &&'static Luo, cmd: &mut UCmd) -> Result<isize> {
    let luo: &'static Luo = luo;
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    // A name that is not a valid session name names no session.
    let name =
        SessionName::new(cmd.bytes(layout::RETRIEVE_SESSION_NAME, NAME_LEN)).map_err(|_| ENOENT)?;
    let session = {
        let sessions = luo.sessions.lock();
        if sessions.frozen {
            return Err(EBUSY);
        }
        sessions.incoming.get(&name).cloned().ok_or(ENOENT)?
    };
    let mut inner = session.inner.lock();
    match inner.dir {
        Direction::Incoming { retrieved: false } => {}
        Direction::Incoming { retrieved: true } => return Err(EINVAL),
        _ => return Err(ENOENT),
    }
    // Answer first: if user memory faults, nothing has happened.
    cmd.set_i32(layout::RETRIEVE_SESSION_FD, fd.reserved_fd() as i32);
    cmd.respond()?;
    let file = ffi::session_getfile(name.as_bytes(), session.clone())?;
    inner.dir = Direction::Incoming { retrieved: true };
    drop(inner);
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
    match s.inner.lock().dir {
        Direction::Outgoing { .. } => Ok(()),
        _ => Err(EINVAL),
    }
}

fn incoming_only(s: &Arc<Session>) -> Result {
    match s.inner.lock().dir {
        Direction::Incoming { .. } => Ok(()),
        _ => Err(EINVAL),
    }
}

fn preserve_fd(s: &Arc<Session>, cmd: &mut UCmd) -> Result<isize> {
    let token = cmd.u64_at(layout::PRESERVE_FD_TOKEN);
    let fd = cmd.i32_at(layout::PRESERVE_FD_FD);
    // The answer is the request itself: send it first, so EFAULT means nothing happened.
    cmd.respond()?;
    let mut inner = s.inner.lock();
    if inner.frozen {
        return Err(EBUSY);
    }
    if !matches!(inner.dir, Direction::Outgoing { .. }) {
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
    let file = s.inner.lock().files.retrieve(s.luo, token)?;
    fd.fd_install(file);
    Ok(0)
}

fn finish(s: &Arc<Session>, cmd: &mut UCmd) -> Result<isize> {
    if cmd.u32_at(layout::FINISH_RESERVED) != 0 {
        return Err(EINVAL);
    }
    cmd.respond()?;
    // What the reuse needs comes first: out of memory fails FINISH before it has an effect.
    let nodes = (
        RBTreeNodeReservation::new(GFP_KERNEL)?,
        RBTreeNodeReservation::new(GFP_KERNEL)?,
    );
    let spare = {
        let sessions = s.luo.sessions.lock();
        luo_ser::pages_for(sessions.n_outgoing + 1, luo_ser::SESSION_SER) > sessions.pool.len()
    };
    let spare = if spare {
        Some(kho::OutPage::new()?)
    } else {
        None
    };
    {
        let mut inner = s.inner.lock();
        if inner.frozen {
            return Err(EBUSY);
        }
        inner.files.finish(s.luo)?;
    }
    reuse_as_outgoing(s, nodes, spare);
    Ok(0)
}

/// A finished incoming session becomes an empty outgoing session, which can be given files
/// for the next live update, unless an outgoing session already has its name (then it stays
/// an empty incoming session until it is closed).
fn reuse_as_outgoing(
    s: &Arc<Session>,
    (by_seq, by_name): (
        RBTreeNodeReservation<u64, Arc<Session>>,
        RBTreeNodeReservation<SessionName, u64>,
    ),
    spare: Option<kho::OutPage>,
) {
    let mut sessions = s.luo.sessions.lock();
    if sessions.frozen
        || sessions.names.get(&s.name).is_some()
        || sessions.n_outgoing >= luo_ser::MAX_SESSIONS
    {
        return;
    }
    let mut inner = s.inner.lock();
    if inner.dir != (Direction::Incoming { retrieved: true }) || inner.files.len() != 0 {
        return;
    }
    let n = sessions.n_outgoing + 1;
    if luo_ser::pages_for(n, luo_ser::SESSION_SER) > sessions.pool.len() {
        // The spare page, else one allocated now (the count changed since FINISH looked).
        let page = match spare {
            Some(p) => p,
            None => match kho::OutPage::new() {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        if sessions.pool.push(page, GFP_KERNEL).is_err() {
            return;
        }
    }
    sessions.incoming.remove(&s.name);
    let seq = sessions.next_seq;
    sessions.next_seq += 1;
    sessions.n_outgoing += 1;
    sessions.outgoing.insert(by_seq.into_node(seq, s.clone()));
    sessions.names.insert(by_name.into_node(s.name, seq));
    inner.dir = Direction::Outgoing { seq };
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

/// Removes an outgoing session from the tables. Returns false if reboot froze it.
fn remove_outgoing(session: &Arc<Session>) -> bool {
    let mut sessions = session.luo.sessions.lock();
    if sessions.frozen {
        return false;
    }
    let mut inner = session.inner.lock();
    if let Direction::Outgoing { seq } = inner.dir {
        sessions.outgoing.remove(&seq);
        sessions.names.remove(&session.name);
        sessions.n_outgoing -= 1;
        let n = sessions.n_outgoing;
        // Shrinking cannot fail.
        let _ = luo_ser::fit_pool(&mut sessions.pool, n, luo_ser::SESSION_SER);
        inner.dir = Direction::Gone;
    }
    true
}

/// The last reference to a session file went away.
pub(crate) fn release(session: Arc<Session>) {
    let dir = session.inner.lock().dir;
    match dir {
        Direction::Outgoing { .. } => {
            // After a successful reboot serialization the session stays as it was, preserved.
            if remove_outgoing(&session) {
                crate::luo_fault::release();
                session.inner.lock().files.unpreserve_all(session.luo);
            }
        }
        Direction::Incoming { .. } => {
            let mut inner = session.inner.lock();
            if let Err(e) = inner.files.finish(session.luo) {
                // Unlike the C implementation, the session is not leaked: it can be
                // retrieved (and finished) again.
                pr_warn!(
                    "Unable to finish session [{}] on release: {:?}; it can be retrieved again\n",
                    BStr::from_bytes(session.name.as_bytes()),
                    e
                );
                inner.dir = Direction::Incoming { retrieved: false };
                return;
            }
            inner.dir = Direction::Gone;
            drop(inner);
            session.luo.sessions.lock().incoming.remove(&session.name);
        }
        Direction::Gone => {}
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
        inner.frozen = false;
    }
}

/// `liveupdate_reboot()`: freezes every outgoing session's files in preservation order and
/// writes sessions, files and FLBs for the next kernel. All or nothing: on failure everything
/// frozen is unfrozen, nothing is published, and the error goes back to reboot(2). On
/// success, no session can change any more.
///
/// The chains are written into the pages reserved as sessions were created and files were
/// preserved, and stay there: nothing is allocated here unless those ran short (the list of
/// frozen sessions aside), and nothing is freed.
pub(crate) fn serialize(luo: &Luo) -> Result {
    let mut guard = luo.sessions.lock();
    let Sessions {
        outgoing,
        n_outgoing,
        pool,
        out,
        frozen,
        ..
    } = &mut *guard;
    if *frozen {
        return Ok(());
    }
    let Some(out) = out.as_mut() else {
        return Ok(());
    };
    crate::luo_fault::reboot_starts();
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
                inner.frozen = true;
                // Cannot fail: capacity for every session was reserved above.
                done.push(s, GFP_KERNEL).map_err(|e| {
                    inner.files.unfreeze();
                    inner.files.zero_pool();
                    inner.frozen = false;
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
    {
        let reg = luo.registry.lock();
        let page = out.flbs.bytes();
        for e in reg.flbs.iter() {
            if let Some((data, count)) = e.state.outgoing_record() {
                luo_ser::write_flb(page, n_flbs, e.state.flb.compatible(), data, count);
                n_flbs += 1;
            }
        }
        luo_ser::set_flb_count(page, n_flbs);
    }
    luo_ser::set_root_sessions(out.root.bytes(), chain.head());
    let kind = crate::luo_fault::damage_kind();
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
    *frozen = true;
    drop(done);
    drop(guard);
    crate::luo_fault::after_serialize(luo.liveupdate_num)
}

/// Turns one session of the hand-over into an incoming session; `None` (logged) if one of
/// its files has no registered handler. Any other error (out of memory) is returned.
fn incoming_session(luo: &'static Luo, s: &InSession) -> Result<Option<Arc<Session>>> {
    let mut files = FileSet::new();
    for f in s.files.iter() {
        // Only a missing handler drops the session; running out of memory fails the build,
        // which the next open retries.
        let (handler, module, flbs) = match luo_file::handler_for(luo, f.compatible.as_bytes()) {
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
        files.push_incoming(handler, module, f.token, f.data, flbs)?;
    }
    Ok(Some(Session::new_incoming(luo, s.name, files)?))
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
