// SPDX-License-Identifier: GPL-2.0

//! luod: the owner of `/dev/liveupdate`. It hands one LUO session to each
//! subscribed client over a Unix socket, collects their READY, keeps its own
//! client table in a session of its own, and gives each client its session
//! back after the kexec. The protocol is luo-proto's (Documentation/
//! liveupdate-rust.rst, "luod's protocol").
//!
//! Threads: one accepts, one per connection. All state is in one
//! `Mutex<State>`; the PREPARE thread waits on a `Condvar` for READYs. No
//! lock is held across a blocking read, and every write to a client has a
//! timeout, so one stuck client cannot stop luod.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
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
    /// The most clients subscribed at once.
    #[arg(long, default_value_t = 256)]
    max_clients: usize,
    /// The most clients one uid may subscribe.
    #[arg(long, default_value_t = 16)]
    max_per_uid: usize,
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
    fn send(&self, msg: &Reply, fd: Option<std::os::fd::BorrowedFd<'_>>) -> io::Result<()> {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        luo_proto::send_on(&stream, msg, fd)
    }
}

/// A client subscribed to the next live update.
struct Client {
    uid: u32,
    state: ClientState,
    /// The session luod created for it (kept open until the kexec).
    session: Option<Session>,
    peer: Option<Arc<Peer>>,
}

/// A session of the previous kernel, waiting for its client's CLAIM.
struct Incoming {
    uid: u32,
    session: String,
}

struct State {
    device: Device,
    clients: BTreeMap<String, Client>,
    incoming: BTreeMap<String, Incoming>,
    /// luod's own session, holding the table of the last PREPARE.
    own: Option<Session>,
    prepared: bool,
    table_restored: bool,
}

struct Daemon {
    args: Args,
    state: Mutex<State>,
    ready: Condvar,
}

fn log(msg: std::fmt::Arguments<'_>) {
    eprintln!("luod: {msg}");
}

macro_rules! log {
    ($($t:tt)*) => { log(format_args!($($t)*)) };
}

impl Daemon {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one request of `uid` on `peer`; the reply and the descriptor
    /// it carries.
    fn handle(
        &self,
        req: Request,
        fd: Option<OwnedFd>,
        uid: u32,
        peer: &Arc<Peer>,
    ) -> (Reply, Option<OwnedFd>) {
        match req {
            Request::Subscribe { id, held } => (self.subscribe(&id, held, fd, uid, peer), None),
            Request::Unsubscribe { id } => (self.unsubscribe(&id, uid), None),
            Request::Ready { id } => (self.ready(&id, uid), None),
            Request::Claim { id, uid: target } => match self.claim(&id, uid, target) {
                Ok((reply, fd)) => (reply, Some(fd)),
                Err(e) => (e, None),
            },
            Request::List {} => (self.list(uid), None),
            Request::Status {} => (self.status(), None),
            Request::Prepare { timeout_ms } => (self.prepare(timeout_ms, uid, peer), None),
        }
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
                format!("invalid id {id:?}: 1 to 40 of [A-Za-z0-9._-]"),
            );
        }
        let mut st = self.lock();
        if let Some(inc) = st.incoming.get(id) {
            if inc.uid != uid {
                return Reply::error(Errno::PERM, format!("id {id} belongs to another uid"));
            }
        }
        let held = match (held, fd) {
            (true, Some(fd)) => {
                let session = Session::from_fd(fd);
                match session.name() {
                    Ok(n) if n.as_str() == session_name(uid, id) => Some(session),
                    Ok(n) => {
                        return Reply::error(
                            Errno::INVAL,
                            format!("the attached session is {n}, not {id}'s"),
                        )
                    }
                    Err(e) => {
                        return Reply::error(
                            Errno::from_io_error(&e).unwrap_or(Errno::INVAL),
                            format!("the attached descriptor is not a session: {e}"),
                        )
                    }
                }
            }
            _ => None,
        };
        if let Some(c) = st.clients.get_mut(id) {
            if c.uid != uid {
                return Reply::error(Errno::PERM, format!("id {id} belongs to another uid"));
            }
            // The same client again, on a new connection.
            c.peer = Some(peer.clone());
            if let Some(s) = held {
                if c.session.is_none() {
                    c.session = Some(s);
                    c.state = ClientState::Ready;
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
        if st.clients.values().filter(|c| c.uid == uid).count() >= self.args.max_per_uid {
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
            id.to_owned(),
            Client {
                uid,
                state,
                session: held,
                peer: Some(peer.clone()),
            },
        );
        st.prepared = false;
        Reply::Ok
    }

    /// The client `id`, if `uid` may act for it.
    fn owned<'a>(st: &'a mut State, id: &str, uid: u32) -> Result<&'a mut Client, Reply> {
        match st.clients.get_mut(id) {
            None => Err(Reply::error(Errno::NOENT, format!("no client {id:?}"))),
            Some(c) if c.uid != uid && uid != 0 => Err(Reply::error(
                Errno::PERM,
                format!("id {id} belongs to another uid"),
            )),
            Some(c) => Ok(c),
        }
    }

    fn unsubscribe(&self, id: &str, uid: u32) -> Reply {
        let mut st = self.lock();
        if let Err(e) = Self::owned(&mut st, id, uid) {
            return e;
        }
        st.clients.remove(id);
        st.prepared = false;
        self.ready.notify_all();
        log!("{id} unsubscribed");
        Reply::Ok
    }

    fn ready(&self, id: &str, uid: u32) -> Reply {
        let mut st = self.lock();
        let c = match Self::owned(&mut st, id, uid) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match c.state {
            ClientState::Subscribed => {
                Reply::error(Errno::INVAL, format!("{id} was sent no START_PRESERVATION"))
            }
            ClientState::Ready => Reply::Ok,
            ClientState::Preserving => {
                c.state = ClientState::Ready;
                log!("{id} is ready");
                self.ready.notify_all();
                Reply::Ok
            }
        }
    }

    fn claim(&self, id: &str, uid: u32, target: Option<u32>) -> Result<(Reply, OwnedFd), Reply> {
        if check_id(id).is_err() {
            return Err(Reply::error(Errno::INVAL, format!("invalid id {id:?}")));
        }
        if target.is_some_and(|t| t != uid) && uid != 0 {
            return Err(Reply::error(
                Errno::PERM,
                "only root claims another uid's session",
            ));
        }
        let mut st = self.lock();
        let (owner, name) = match st.incoming.get(id) {
            Some(inc) => {
                if inc.uid != uid && uid != 0 {
                    return Err(Reply::error(
                        Errno::PERM,
                        format!("id {id} belongs to another uid"),
                    ));
                }
                (inc.uid, inc.session.clone())
            }
            // No table entry (luod was restarted before the kexec): the name
            // the session would have, for the claimer's uid.
            None => {
                let owner = target.unwrap_or(uid);
                (owner, session_name(owner, id))
            }
        };
        match st.device.retrieve_session(&name) {
            Ok(session) => {
                st.incoming.remove(id);
                log!("{id} (uid {owner}) claimed session {name}");
                Ok((
                    Reply::Session {
                        id: id.to_owned(),
                        session: name,
                    },
                    session.into_fd(),
                ))
            }
            Err(e) => {
                let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                let why = if errno == Errno::NOENT {
                    format!("no session of the previous kernel for {id}")
                } else {
                    format!("cannot retrieve session {name}: {e}")
                };
                Err(Reply::error(errno, why))
            }
        }
    }

    fn list(&self, uid: u32) -> Reply {
        let st = self.lock();
        let mut clients: Vec<ClientInfo> = st
            .clients
            .iter()
            .filter(|(_, c)| uid == 0 || c.uid == uid)
            .map(|(id, c)| ClientInfo {
                id: id.clone(),
                uid: c.uid,
                session: session_name(c.uid, id),
                state: c.state.name().into(),
                connected: c.peer.is_some(),
            })
            .collect();
        clients.extend(
            st.incoming
                .iter()
                .filter(|(_, i)| uid == 0 || i.uid == uid)
                .map(|(id, i)| ClientInfo {
                    id: id.clone(),
                    uid: i.uid,
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

    fn prepare(&self, timeout_ms: u64, uid: u32, requester: &Arc<Peer>) -> Reply {
        if uid != 0 {
            return Reply::error(Errno::PERM, "only root prepares a live update");
        }
        let timeout =
            Duration::from_millis(timeout_ms).min(Duration::from_secs(self.args.max_timeout));
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        st.prepared = false;
        // Start preservation: one new session per subscriber not sent one.
        let ids: Vec<String> = st
            .clients
            .iter()
            .filter(|(_, c)| c.state == ClientState::Subscribed)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let st = &mut *st;
            let c = st.clients.get_mut(&id).expect("listed above");
            let name = session_name(c.uid, &id);
            let Some(peer) = c.peer.clone() else {
                continue;
            };
            let session = match st.device.create_session(&name) {
                Ok(s) => s,
                Err(e) => {
                    return Reply::error(
                        Errno::from_io_error(&e).unwrap_or(Errno::IO),
                        format!("cannot create session {name}: {e}"),
                    )
                }
            };
            let ev = Reply::StartPreservation {
                id: id.clone(),
                session: name.clone(),
            };
            if let Err(e) = peer.send(&ev, Some(session.as_fd())) {
                log!("{id}: cannot send START_PRESERVATION: {e}");
                c.peer = None;
                continue;
            }
            c.session = Some(session);
            c.state = ClientState::Preserving;
        }
        // Wait for every READY.
        loop {
            let total = st.clients.len();
            let waiting: Vec<String> = st
                .clients
                .iter()
                .filter(|(_, c)| c.state != ClientState::Ready)
                .map(|(id, _)| id.clone())
                .collect();
            if waiting.is_empty() {
                break;
            }
            let ready = total - waiting.len();
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
            // An event at least every second: luoctl shows the wait.
            let _ = requester.send(
                &Reply::Progress {
                    ready,
                    total,
                    waiting,
                },
                None,
            );
            let wait = (deadline - now).min(Duration::from_secs(1));
            st = self
                .ready
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        // luod's own session: the table of this preparation, replacing the
        // one of an earlier PREPARE (closing a session drops it).
        st.own = None;
        let table = Table {
            version: TABLE_VERSION,
            clients: st
                .clients
                .iter()
                .map(|(id, c)| TableEntry {
                    id: id.clone(),
                    uid: c.uid,
                    session: session_name(c.uid, id),
                })
                .collect(),
        };
        match store_table(&st.device, &table) {
            Ok(own) => st.own = Some(own),
            Err(e) => {
                return Reply::error(
                    Errno::from_io_error(&e).unwrap_or(Errno::IO),
                    format!("cannot preserve luod's table: {e}"),
                )
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

    /// A connection closed: its subscribers that hold no session go.
    fn disconnected(&self, peer: &Arc<Peer>) {
        let mut st = self.lock();
        st.clients.retain(|id, c| {
            if c.peer.as_ref().is_some_and(|p| p.serial == peer.serial) {
                c.peer = None;
                if c.session.is_none() {
                    log!("{id} left before preservation");
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

fn serve(daemon: Arc<Daemon>, stream: UnixStream, serial: u64) {
    let cred = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(c) => c,
        Err(e) => {
            log!("SO_PEERCRED: {e}");
            return;
        }
    };
    let uid = cred.uid.as_raw();
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
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
        let (reply, fd) = match conn.recv::<Request, _>(Request::carries_fd) {
            Ok((req, fd)) => daemon.handle(req, fd, uid, &peer),
            Err(RecvError::Closed) => break,
            Err(RecvError::Io(e)) => {
                log!("pid {}: {e}", cred.pid.as_raw_nonzero());
                break;
            }
            Err(e) => {
                log!("pid {} (uid {uid}): {e}", cred.pid.as_raw_nonzero());
                (Reply::error(e.errno(), e.to_string()), None)
            }
        };
        if let Err(e) = peer.send(&reply, fd.as_ref().map(|f| f.as_fd())) {
            log!("pid {}: reply: {e}", cred.pid.as_raw_nonzero());
            break;
        }
    }
    daemon.disconnected(&peer);
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

fn run(args: Args) -> io::Result<()> {
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
                    e.id,
                    Incoming {
                        uid: e.uid,
                        session: e.session,
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
    });
    let mut serial = 0u64;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                serial += 1;
                let d = daemon.clone();
                let s = serial;
                std::thread::spawn(move || serve(d, stream, s));
            }
            Err(e) => log!("accept: {e}"),
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
