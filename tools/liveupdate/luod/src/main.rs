// SPDX-License-Identifier: GPL-2.0

//! luod: the owner of `/dev/liveupdate`. It hands one LUO session to each
//! subscribed client over a Unix socket, collects their READY, keeps its own
//! client table in a session of its own, and gives each client its session
//! back after the kexec. The protocol is luo-proto's
//! (Documentation/liveupdate-luod.rst).
//!
//! Threads: one accepts, one per connection (counted against the limits
//! before it is made). All state is in one `Mutex<State>`; a PREPARE holds
//! `Daemon::preparing` (taken before the state's lock) and waits on a
//! `Condvar` for READYs. No lock is held across a read or a write to a
//! client, and every write has a timeout, so one stuck client cannot stop
//! luod.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;
use liveupdate::{Device, Session};
use luo_proto::{
    check_id, session_name, ClientInfo, Conn, RecvError, Reply, Request, StatusInfo, LUOD_SESSION,
    TABLE_TOKEN,
};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// The daemon that owns /dev/liveupdate and delegates sessions to clients.
#[derive(Parser, Debug)]
#[command(name = "luod", version)]
struct Args {
    /// The socket to listen on.
    #[arg(long, default_value = luo_proto::SOCKET_PATH)]
    socket: PathBuf,
    /// A group (name or number) whose members may connect: the socket is
    /// then 0660 instead of 0600.
    #[arg(long)]
    group: Option<String>,
    /// The LUO device.
    #[arg(long, default_value = liveupdate::DEVICE_PATH)]
    device: PathBuf,
    /// The most clients subscribed at once (at most 4096).
    #[arg(long, default_value_t = 256)]
    max_clients: usize,
    /// The most clients one uid other than root may subscribe.
    #[arg(long, default_value_t = 16)]
    max_per_uid: usize,
    /// The most connections open at once.
    #[arg(long, default_value_t = 128)]
    max_connections: usize,
    /// The most connections of one uid open at once.
    #[arg(long, default_value_t = 32)]
    max_connections_per_uid: usize,
    /// The longest PREPARE wait a request may ask for, in seconds.
    #[arg(long, default_value_t = 600)]
    max_timeout: u64,
}

/// The client table that crosses the kexec in luod's own session.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Table {
    version: u32,
    clients: Vec<TableEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct TableEntry {
    id: String,
    uid: u32,
    session: String,
}

const TABLE_VERSION: u32 = 1;
/// The largest table luod reads back.
const MAX_TABLE: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    Subscribed,
    Preserving,
    Ready,
}

impl ClientState {
    fn name(self) -> &'static str {
        match self {
            ClientState::Subscribed => "subscribed",
            ClientState::Preserving => "preserving",
            ClientState::Ready => "ready",
        }
    }
}

/// The writing half of a connection.
struct Peer {
    /// Tells connections apart.
    serial: u64,
    stream: Mutex<UnixStream>,
}

impl Peer {
    /// Ends the connection; its reader sees it closed.
    fn shut_down(&self) {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    /// Sends `msg`. A failed or timed-out send may have left half a line:
    /// the connection is then shut down, and its reader cleans up.
    fn send(&self, msg: &Reply, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        let r = luo_proto::send_on(&stream, msg, fd);
        if r.is_err() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        r
    }
}

/// A client is its uid and its id: each uid names its clients on its own.
type Key = (u32, String);

/// A client subscribed to the next live update.
struct Client {
    state: ClientState,
    /// The session luod created for it (kept open until the kexec).
    session: Option<Session>,
    peer: Option<Arc<Peer>>,
}

/// A session of the previous kernel, waiting for its client's CLAIM.
struct Incoming {
    session: String,
    /// Retrieved for a CLAIM whose reply did not reach the client: kept, or
    /// the kernel would drop it with its files, for the next CLAIM.
    retrieved: Option<Session>,
}

struct State {
    device: Device,
    clients: BTreeMap<Key, Client>,
    incoming: BTreeMap<Key, Incoming>,
    /// luod's own session, holding the table of the last PREPARE.
    own: Option<Session>,
    prepared: bool,
    table_restored: bool,
}

struct Daemon {
    args: Args,
    state: Mutex<State>,
    ready: Condvar,
    /// One PREPARE at a time (taken before `state`).
    preparing: Mutex<()>,
    /// Open connections per uid (their sum is the total).
    connections: Mutex<BTreeMap<u32, usize>>,
}

/// A connection counted in [`Daemon::connections`] until dropped.
struct ConnSlot {
    daemon: Arc<Daemon>,
    uid: u32,
}

impl ConnSlot {
    /// Counts a connection of `uid`, or says which limit it would pass.
    /// Root is never refused: luoctl must always get through.
    fn take(daemon: &Arc<Daemon>, uid: u32) -> Result<Self, String> {
        let mut conns = daemon.connections.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = conns.values().sum();
        let mine = conns.get(&uid).copied().unwrap_or(0);
        if uid != 0 && total >= daemon.args.max_connections {
            return Err(format!("luod has its {total} connections"));
        }
        if uid != 0 && mine >= daemon.args.max_connections_per_uid {
            return Err(format!("uid {uid} has its {mine} connections"));
        }
        *conns.entry(uid).or_insert(0) += 1;
        Ok(Self {
            daemon: daemon.clone(),
            uid,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut conns = self
            .daemon
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = conns.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                conns.remove(&self.uid);
            }
        }
    }
}

fn log(msg: std::fmt::Arguments<'_>) {
    // A closed stderr is no reason to stop.
    let _ = writeln!(io::stderr(), "luod: {msg}");
}

macro_rules! log {
    ($($t:tt)*) => { log(format_args!($($t)*)) };
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::IO)
}

/// What to do once a reply was sent.
enum After {
    Nothing,
    /// The client has its session: forget the incoming entry.
    Claimed(Key),
}

impl Daemon {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one request of `uid` on `peer`: the reply, the descriptor it
    /// carries and what to do once it was sent.
    fn handle(
        &self,
        req: Request,
        fd: Option<OwnedFd>,
        uid: u32,
        peer: &Arc<Peer>,
    ) -> (Reply, Option<OwnedFd>, After) {
        let reply = match req {
            Request::Subscribe { id, held } => self.subscribe(&id, held, fd, uid, peer),
            Request::Unsubscribe { id } => self.unsubscribe(&id, uid),
            Request::Ready { id } => self.ready(&id, uid),
            Request::Claim { id, uid: target } => {
                return match self.claim(&id, uid, target) {
                    Ok((reply, fd, key)) => (reply, Some(fd), After::Claimed(key)),
                    Err(e) => (e, None, After::Nothing),
                }
            }
            Request::List {} => self.list(uid),
            Request::Status {} => self.status(),
            Request::Prepare { timeout_ms } => self.prepare(timeout_ms, uid, peer),
        };
        (reply, None, After::Nothing)
    }

    fn subscribe(
        &self,
        id: &str,
        held: bool,
        fd: Option<OwnedFd>,
        uid: u32,
        peer: &Arc<Peer>,
    ) -> Reply {
        if check_id(id).is_err() {
            return Reply::error(
                Errno::INVAL,
                format!(
                    "invalid id {:?}: 1 to 40 of [A-Za-z0-9._-]",
                    id.escape_debug().to_string()
                ),
            );
        }
        let name = session_name(uid, id);
        let held = match (held, fd) {
            (true, Some(fd)) => match Session::from_fd(fd).and_then(|s| Ok((s.name()?, s))) {
                Ok((n, s)) if n.as_str() == name => Some(s),
                Ok((n, _)) => {
                    return Reply::error(
                        Errno::INVAL,
                        format!("the attached session is {n}, not {name}"),
                    )
                }
                Err(e) => {
                    return Reply::error(
                        errno_of(&e),
                        format!("the attached descriptor is not a session: {e}"),
                    )
                }
            },
            _ => None,
        };
        let key = (uid, id.to_owned());
        let mut st = self.lock();
        if let Some(c) = st.clients.get_mut(&key) {
            // The same client again, on a new connection (its old one may
            // not be seen closed yet). With the session it holds, it is
            // ready: it preserved what it meant to.
            c.peer = Some(peer.clone());
            if let Some(s) = held {
                if c.session.is_none() {
                    c.session = Some(s);
                }
                if c.state != ClientState::Ready {
                    c.state = ClientState::Ready;
                    self.ready.notify_all();
                }
            }
            return Reply::Ok;
        }
        if st.clients.len() >= self.args.max_clients {
            return Reply::error(
                Errno::NOSPC,
                format!("luod has its {} clients", self.args.max_clients),
            );
        }
        if uid != 0 && st.clients.keys().filter(|(u, _)| *u == uid).count() >= self.args.max_per_uid
        {
            return Reply::error(
                Errno::MFILE,
                format!("uid {uid} has its {} clients", self.args.max_per_uid),
            );
        }
        let state = if held.is_some() {
            ClientState::Ready
        } else {
            ClientState::Subscribed
        };
        log!(
            "{id} (uid {uid}) subscribed{}",
            if held.is_some() {
                " with its session"
            } else {
                ""
            }
        );
        st.clients.insert(
            key,
            Client {
                state,
                session: held,
                peer: Some(peer.clone()),
            },
        );
        st.prepared = false;
        // A PREPARE under way sends it START_PRESERVATION.
        self.ready.notify_all();
        Reply::Ok
    }

    fn no_client(id: &str) -> Reply {
        Reply::error(
            Errno::NOENT,
            format!("you have no client {:?}", id.escape_debug().to_string()),
        )
    }

    fn unsubscribe(&self, id: &str, uid: u32) -> Reply {
        let mut st = self.lock();
        if st.clients.remove(&(uid, id.to_owned())).is_none() {
            return Self::no_client(id);
        }
        st.prepared = false;
        self.ready.notify_all();
        log!("{id} (uid {uid}) unsubscribed");
        Reply::Ok
    }

    fn ready(&self, id: &str, uid: u32) -> Reply {
        let mut st = self.lock();
        let Some(c) = st.clients.get_mut(&(uid, id.to_owned())) else {
            return Self::no_client(id);
        };
        match c.state {
            ClientState::Subscribed => {
                Reply::error(Errno::INVAL, format!("{id} was sent no START_PRESERVATION"))
            }
            ClientState::Ready => Reply::Ok,
            ClientState::Preserving => {
                c.state = ClientState::Ready;
                log!("{id} (uid {uid}) is ready");
                self.ready.notify_all();
                Reply::Ok
            }
        }
    }

    /// The session of `id` for CLAIM: a copy of its descriptor to send, and
    /// the key to forget once it was sent. luod keeps its own until then.
    fn claim(
        &self,
        id: &str,
        uid: u32,
        target: Option<u32>,
    ) -> Result<(Reply, OwnedFd, Key), Reply> {
        if check_id(id).is_err() {
            return Err(Reply::error(
                Errno::INVAL,
                format!("invalid id {:?}", id.escape_debug().to_string()),
            ));
        }
        let owner = match target {
            Some(t) if t != uid && uid != 0 => {
                return Err(Reply::error(
                    Errno::PERM,
                    "only root claims another uid's session",
                ))
            }
            Some(t) => t,
            None => uid,
        };
        let key = (owner, id.to_owned());
        let mut guard = self.lock();
        let st = &mut *guard;
        // Without a table entry (luod was restarted before the kexec): the
        // name the session would have.
        let name = st
            .incoming
            .get(&key)
            .map_or_else(|| session_name(owner, id), |i| i.session.clone());
        let retrieved = st.incoming.get(&key).and_then(|i| i.retrieved.as_ref());
        let copy = match retrieved {
            Some(s) => s.as_fd().try_clone_to_owned(),
            None => match st.device.retrieve_session(&name) {
                Ok(s) => {
                    let copy = s.as_fd().try_clone_to_owned();
                    st.incoming
                        .entry(key.clone())
                        .or_insert_with(|| Incoming {
                            session: name.clone(),
                            retrieved: None,
                        })
                        .retrieved = Some(s);
                    copy
                }
                Err(e) => {
                    let errno = errno_of(&e);
                    let why = if errno == Errno::NOENT {
                        format!("no session of the previous kernel for {id}")
                    } else {
                        format!("cannot retrieve session {name}: {e}")
                    };
                    return Err(Reply::error(errno, why));
                }
            },
        };
        match copy {
            Ok(fd) => Ok((
                Reply::Session {
                    id: id.to_owned(),
                    session: name,
                },
                fd,
                key,
            )),
            Err(e) => Err(Reply::error(errno_of(&e), format!("dup: {e}"))),
        }
    }

    /// CLAIM's reply reached the client: luod's copy goes.
    fn claimed(&self, key: &Key) {
        let mut st = self.lock();
        if let Some(inc) = st.incoming.remove(key) {
            log!("{} (uid {}) claimed session {}", key.1, key.0, inc.session);
        }
    }

    fn list(&self, uid: u32) -> Reply {
        let st = self.lock();
        let mut clients: Vec<ClientInfo> = st
            .clients
            .iter()
            .filter(|((u, _), _)| uid == 0 || *u == uid)
            .map(|((u, id), c)| ClientInfo {
                id: id.clone(),
                uid: *u,
                session: session_name(*u, id),
                state: c.state.name().into(),
                connected: c.peer.is_some(),
            })
            .collect();
        clients.extend(
            st.incoming
                .iter()
                .filter(|((u, _), _)| uid == 0 || *u == uid)
                .map(|((u, id), i)| ClientInfo {
                    id: id.clone(),
                    uid: *u,
                    session: i.session.clone(),
                    state: "incoming".into(),
                    connected: false,
                }),
        );
        Reply::List { clients }
    }

    fn status(&self) -> Reply {
        let st = self.lock();
        Reply::Status(StatusInfo {
            pid: std::process::id(),
            socket: self.args.socket.display().to_string(),
            subscribed: st.clients.len(),
            ready: st
                .clients
                .values()
                .filter(|c| c.state == ClientState::Ready)
                .count(),
            incoming: st.incoming.len(),
            table_restored: st.table_restored,
            prepared: st.prepared,
        })
    }

    /// Creates a session for every subscriber that has none, under the
    /// lock; sends them with no lock held. A client whose session cannot be
    /// made or sent is dropped (it may subscribe again).
    fn start_preservation(&self) {
        let mut sends = Vec::new();
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            let mut failed = Vec::new();
            for (key, c) in st.clients.iter_mut() {
                if c.state != ClientState::Subscribed {
                    continue;
                }
                let Some(peer) = c.peer.clone() else {
                    failed.push(key.clone());
                    continue;
                };
                let name = session_name(key.0, &key.1);
                let session = match st.device.create_session(&name) {
                    Ok(s) => s,
                    Err(e) => {
                        // EEXIST: the client still holds the session of an
                        // earlier subscription; it subscribes with it.
                        log!(
                            "{} (uid {}): cannot create session {name}: {e}",
                            key.1,
                            key.0
                        );
                        failed.push(key.clone());
                        continue;
                    }
                };
                match session.as_fd().try_clone_to_owned() {
                    Ok(fd) => sends.push((key.clone(), peer, name, fd)),
                    Err(e) => {
                        log!("dup: {e}");
                        failed.push(key.clone());
                        continue;
                    }
                }
                c.session = Some(session);
                c.state = ClientState::Preserving;
            }
            for key in failed {
                // Its connection is closed too: a client still alive
                // reconnects and subscribes with the session it holds.
                if let Some(peer) = st.clients.remove(&key).and_then(|c| c.peer) {
                    peer.shut_down();
                }
            }
        }
        for (key, peer, name, fd) in sends {
            let ev = Reply::StartPreservation {
                id: key.1.clone(),
                session: name,
            };
            if let Err(e) = peer.send(&ev, Some(fd.as_fd())) {
                log!(
                    "{} (uid {}): cannot send START_PRESERVATION: {e}",
                    key.1,
                    key.0
                );
                let mut st = self.lock();
                if st.clients.get(&key).is_some_and(|c| {
                    c.state == ClientState::Preserving
                        && c.peer.as_ref().is_some_and(|p| p.serial == peer.serial)
                }) {
                    st.clients.remove(&key);
                }
            }
        }
    }

    fn prepare(&self, timeout_ms: u64, uid: u32, requester: &Arc<Peer>) -> Reply {
        if uid != 0 {
            return Reply::error(Errno::PERM, "only root prepares a live update");
        }
        let _one = self.preparing.lock().unwrap_or_else(|e| e.into_inner());
        let timeout =
            Duration::from_millis(timeout_ms).min(Duration::from_secs(self.args.max_timeout));
        let deadline = Instant::now() + timeout;
        self.lock().prepared = false;
        let mut st = loop {
            self.start_preservation();
            let st = self.lock();
            let total = st.clients.len();
            let waiting: Vec<String> = st
                .clients
                .iter()
                .filter(|(_, c)| c.state != ClientState::Ready)
                .map(|((u, id), _)| format!("{id} (uid {u})"))
                .collect();
            if waiting.is_empty() {
                // Kept: the table is written under the same lock that saw
                // every client ready (a SUBSCRIBE now would miss it).
                break st;
            }
            let now = Instant::now();
            if now >= deadline {
                log!("PREPARE timed out waiting for {}", waiting.join(", "));
                return Reply::error(
                    Errno::TIMEDOUT,
                    format!(
                        "no READY within {} ms from: {}",
                        timeout.as_millis(),
                        waiting.join(", ")
                    ),
                );
            }
            drop(st);
            // An event at least every second: luoctl shows the wait.
            let ready = total - waiting.len();
            let _ = requester.send(
                &Reply::Progress {
                    ready,
                    total,
                    waiting,
                },
                None,
            );
            let st = self.lock();
            let all_ready_or_new = st
                .clients
                .values()
                .all(|c| c.state != ClientState::Preserving);
            if !all_ready_or_new {
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1));
                drop(
                    self.ready
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
        };
        // luod's own session: the table of this preparation, replacing the
        // one of an earlier PREPARE (closing a session drops it).
        st.own = None;
        let table = Table {
            version: TABLE_VERSION,
            clients: st
                .clients
                .keys()
                .map(|(u, id)| TableEntry {
                    id: id.clone(),
                    uid: *u,
                    session: session_name(*u, id),
                })
                .collect(),
        };
        match store_table(&st.device, &table) {
            Ok(own) => st.own = Some(own),
            Err(e) => {
                return Reply::error(errno_of(&e), format!("cannot preserve luod's table: {e}"))
            }
        }
        st.prepared = true;
        log!(
            "prepared: {} sessions ready, table preserved",
            table.clients.len()
        );
        Reply::Prepared {
            sessions: table.clients.len(),
        }
    }

    /// A connection closed: its clients that did not answer READY go (with
    /// luod's copy of a session sent to them: a client that is still alive
    /// and holds it subscribes again with it); ready ones stay, and their
    /// sessions cross the kexec.
    fn disconnected(&self, peer: &Arc<Peer>) {
        let mut st = self.lock();
        st.clients.retain(|(u, id), c| {
            if c.peer.as_ref().is_some_and(|p| p.serial == peer.serial) {
                c.peer = None;
                if c.state != ClientState::Ready {
                    log!("{id} (uid {u}) left before READY");
                    return false;
                }
            }
            true
        });
        self.ready.notify_all();
    }
}

/// Writes `table` to a memfd and preserves it in a new session named
/// [`LUOD_SESSION`].
fn store_table(dev: &Device, table: &Table) -> io::Result<Session> {
    let mut text = serde_json::to_vec(table).map_err(io::Error::other)?;
    text.push(b'\n');
    let memfd = rustix::fs::memfd_create("luod-table", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(&text)?;
    let session = dev.create_session(LUOD_SESSION)?;
    session.preserve(file.as_fd(), TABLE_TOKEN)?;
    Ok(session)
}

/// Reads the previous kernel's table, if it left one, and finishes luod's
/// session of it. Every entry is checked.
fn restore_table(dev: &Device) -> io::Result<Option<Table>> {
    let session = match dev.retrieve_session(LUOD_SESSION) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut file = std::fs::File::from(session.retrieve(TABLE_TOKEN)?);
    session.finish()?;
    file.rewind()?;
    let mut text = Vec::new();
    file.take(MAX_TABLE).read_to_end(&mut text)?;
    let table: Table = serde_json::from_slice(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("table: {e}")))?;
    if table.version != TABLE_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("table version {}", table.version),
        ));
    }
    for e in &table.clients {
        if check_id(&e.id).is_err() || e.session != session_name(e.uid, &e.id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad table entry {e:?}"),
            ));
        }
    }
    Ok(Some(table))
}

/// Serves one connection of `uid` (`slot` counts it) until it closes.
fn serve(
    daemon: Arc<Daemon>,
    stream: UnixStream,
    serial: u64,
    uid: u32,
    pid: i32,
    _slot: ConnSlot,
) {
    let writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            log!("connection: {e}");
            return;
        }
    };
    let peer = Arc::new(Peer {
        serial,
        stream: Mutex::new(writer),
    });
    let mut conn = Conn::new(stream);
    loop {
        let (reply, fd, after) = match conn.recv::<Request, _>(Request::carries_fd) {
            Ok((req, fd)) => daemon.handle(req, fd, uid, &peer),
            Err(RecvError::Closed) => break,
            Err(RecvError::Io(e)) => {
                log!("pid {pid}: {e}");
                break;
            }
            Err(e) => {
                // The client's text, escaped: no forged log lines.
                log!("pid {pid} (uid {uid}): {}", e.to_string().escape_debug());
                (Reply::error(e.errno(), e.to_string()), None, After::Nothing)
            }
        };
        if let Err(e) = peer.send(&reply, fd.as_ref().map(|f| f.as_fd())) {
            log!("pid {pid}: reply: {e}");
            break;
        }
        if let After::Claimed(key) = after {
            daemon.claimed(&key);
        }
    }
    daemon.disconnected(&peer);
}

/// The uid and pid of a connection's peer (SO_PEERCRED). Not rustix's
/// `socket_peercred`: its `Pid` may not be 0, which the kernel reports for a
/// peer outside luod's pid namespace.
fn peer_cred(stream: &UnixStream) -> io::Result<(u32, i32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the socket is open for the call; `cred` and `len` are valid
    // for writes and `len` is `cred`'s size, so the kernel writes at most
    // that many bytes of plain integers.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.uid, cred.pid))
}

/// Takes a new connection: counted against the limits before a thread is
/// made for it; refused with an error reply past them.
fn accept(daemon: &Arc<Daemon>, stream: UnixStream, serial: u64) {
    let (uid, pid) = match peer_cred(&stream) {
        Ok(c) => c,
        Err(e) => {
            log!("SO_PEERCRED: {e}");
            return;
        }
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let slot = match ConnSlot::take(daemon, uid) {
        Ok(slot) => slot,
        Err(why) => {
            log!("pid {pid} (uid {uid}) refused: {why}");
            let _ = luo_proto::send_on(&stream, &Reply::error(Errno::AGAIN, why), None);
            return;
        }
    };
    let d = daemon.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("luod-{serial}"))
        .spawn(move || serve(d, stream, serial, uid, pid, slot));
    if let Err(e) = spawned {
        log!("pid {pid} (uid {uid}): no thread for its connection: {e}");
    }
}

/// The gid of a group given by name (from /etc/group) or number.
fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(n) = group.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group")?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(name, _)| *name == group)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group {group}")))
}

fn listen(args: &Args) -> io::Result<UnixListener> {
    let path = &args.socket;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another luod listens on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Bound with no access, then opened up: no window with a wider mode.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o777));
    let listener = UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = listener?;
    let mode = match &args.group {
        Some(g) => {
            let gid = group_id(g)?;
            rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// The most clients luod takes: root's LIST of them all stays under
/// luo-proto's `MAX_REPLY` (1 MiB, about 200 bytes a client).
const MAX_CLIENTS: usize = 4096;

fn run(args: Args) -> io::Result<()> {
    if args.max_clients > MAX_CLIENTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--max-clients is at most {MAX_CLIENTS}"),
        ));
    }
    let device = Device::open_path(&args.device).map_err(|e| {
        if e.raw_os_error() == Some(Errno::BUSY.raw_os_error()) {
            io::Error::new(
                e.kind(),
                format!("{} is open by another process: {e}", args.device.display()),
            )
        } else {
            io::Error::new(e.kind(), format!("{}: {e}", args.device.display()))
        }
    })?;
    let mut incoming = BTreeMap::new();
    let mut table_restored = false;
    match restore_table(&device) {
        Ok(Some(table)) => {
            log!(
                "restored the table of the previous kernel: {} sessions",
                table.clients.len()
            );
            table_restored = true;
            for e in table.clients {
                incoming.insert(
                    (e.uid, e.id),
                    Incoming {
                        session: e.session,
                        retrieved: None,
                    },
                );
            }
        }
        Ok(None) => log!("no table from a previous kernel"),
        Err(e) => log!("the previous kernel's table is refused: {e}; clients claim by id"),
    }
    let listener = listen(&args)?;
    log!("listening on {}", args.socket.display());
    let daemon = Arc::new(Daemon {
        args,
        state: Mutex::new(State {
            device,
            clients: BTreeMap::new(),
            incoming,
            own: None,
            prepared: false,
            table_restored,
        }),
        ready: Condvar::new(),
        preparing: Mutex::new(()),
        connections: Mutex::new(BTreeMap::new()),
    });
    let mut serial = 0u64;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                serial += 1;
                accept(&daemon, stream, serial);
            }
            Err(e) => {
                // EMFILE and the like: wait for connections to close.
                log!("accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        log!("{e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_a_number_or_a_name() {
        assert_eq!(group_id("1234").unwrap(), 1234);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-here").is_err());
    }

    #[test]
    fn the_table_is_json_and_refuses_unknown_fields() {
        let t = Table {
            version: 1,
            clients: vec![TableEntry {
                id: "vm1".into(),
                uid: 7,
                session: session_name(7, "vm1"),
            }],
        };
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"clients":[{"id":"vm1","uid":7,"session":"luod:7:vm1"}]}"#
        );
        assert_eq!(serde_json::from_str::<Table>(&text).unwrap(), t);
        assert!(serde_json::from_str::<Table>(r#"{"version":1,"clients":[],"x":0}"#).is_err());
    }
}
