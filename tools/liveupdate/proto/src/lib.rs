// SPDX-License-Identifier: GPL-2.0

//! luod's protocol, after Google's luo-agent: newline-delimited JSON over a
//! Unix stream socket, with file descriptors passed by `SCM_RIGHTS` on the
//! message that names them.
//!
//! A client subscribes under an id of its own choosing. When a live update is
//! prepared, luod creates one LUO session per subscriber and sends it as a
//! [`Reply::StartPreservation`] event; the client preserves its files in it
//! and answers [`Request::Ready`]. After the kexec the client sends
//! [`Request::Claim`] and gets its session back ([`Reply::Session`]), then
//! retrieves its files and finishes the session itself.
//!
//! Every message is one JSON object on one line: a request at most
//! [`MAX_MESSAGE`] bytes with its newline, a reply at most [`MAX_REPLY`], tagged by its `"msg"` field, e.g.
//! `{"msg":"SUBSCRIBE","id":"vm1"}`. Unknown fields are refused. Every
//! request gets exactly one reply, [`Reply::Error`] (with an errno) when it
//! had no effect; [`Reply::Progress`] and [`Reply::StartPreservation`] are
//! events, sent without a request.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// The socket luod listens on by default (luo-agent's).
pub const SOCKET_PATH: &str = "/run/luod/liveupdate.sock";
/// The longest message, its newline included.
pub const MAX_MESSAGE: usize = 4096;
/// The longest client id. Ids are made of ASCII letters, digits, `.`, `_`
/// and `-`, so that a session name can be derived from one.
pub const MAX_ID: usize = 40;
/// The name of luod's own session, which carries its client table.
pub const LUOD_SESSION: &str = "luod";
/// The token of the client table's memfd in luod's own session.
pub const TABLE_TOKEN: u64 = 1;

/// Checks a client id: 1 to [`MAX_ID`] bytes of `[A-Za-z0-9._-]`.
pub fn check_id(id: &str) -> Result<(), Errno> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Errno::INVAL)
    }
}

/// The name of the session of client `id` owned by `uid`: derived from both,
/// so that a luod that lost its table (it was restarted) finds a client's
/// session again, and only for the uid that subscribed it.
///
/// ```
/// assert_eq!(luo_proto::session_name(1000, "vm1"), "luod:1000:vm1");
/// ```
pub fn session_name(uid: u32, id: &str) -> String {
    format!("luod:{uid}:{id}")
}

/// A request, from a client or from luoctl.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "msg", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Request {
    /// Take part in the next live update as `id`. With `held: true` the
    /// message carries the session this client got from an earlier luod
    /// (which was restarted), and luod adopts it.
    Subscribe {
        id: String,
        #[serde(default, skip_serializing_if = "is_false")]
        held: bool,
    },
    /// Leave the next live update.
    Unsubscribe { id: String },
    /// Everything of `id` is preserved in its session.
    Ready { id: String },
    /// After the kexec: the session of `id`. Root may name the `uid` of a
    /// session luod has no table entry for.
    Claim {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
    },
    /// The clients luod knows, and their state. (Messages without fields
    /// are struct variants: serde refuses unknown fields only there.)
    List {},
    /// luod's state.
    Status {},
    /// Root only: start preservation, wait up to `timeout_ms` for every
    /// subscriber's READY, and store luod's table in its own session.
    Prepare { timeout_ms: u64 },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A client as luod sees it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientInfo {
    /// The client's id.
    pub id: String,
    /// The uid that subscribed it (SO_PEERCRED).
    pub uid: u32,
    /// Its session's name.
    pub session: String,
    /// `subscribed`, `preserving` (START_PRESERVATION sent), `ready`, or,
    /// after a kexec, `incoming` (its session waits for CLAIM).
    pub state: String,
    /// Whether its connection is open.
    pub connected: bool,
}

/// luod's state.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusInfo {
    /// luod's pid.
    pub pid: u32,
    /// The socket it listens on.
    pub socket: String,
    /// Clients subscribed to the next live update.
    pub subscribed: usize,
    /// Of those, how many answered READY.
    pub ready: usize,
    /// Sessions of the previous kernel not yet claimed.
    pub incoming: usize,
    /// Whether luod's table came from the previous kernel.
    pub table_restored: bool,
    /// Whether the last PREPARE completed and nothing changed since.
    pub prepared: bool,
}

/// A reply or an event of luod.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "msg", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Reply {
    /// The request succeeded.
    Ok,
    /// The request failed and had no effect.
    Error { errno: i32, error: String },
    /// Event: preserve your files in this session (its fd is attached), then
    /// answer READY.
    StartPreservation { id: String, session: String },
    /// CLAIM's answer: the session (its fd is attached).
    Session { id: String, session: String },
    /// LIST's answer.
    List { clients: Vec<ClientInfo> },
    /// STATUS's answer.
    Status(StatusInfo),
    /// Event during PREPARE: `ready` of `total` subscribers answered.
    Progress {
        ready: usize,
        total: usize,
        waiting: Vec<String>,
    },
    /// PREPARE's answer: every subscriber is ready and luod's table is
    /// preserved; reboot(LINUX_REBOOT_CMD_KEXEC) may follow.
    Prepared { sessions: usize },
}

impl Reply {
    /// An error reply.
    pub fn error(errno: Errno, error: impl Into<String>) -> Self {
        Reply::Error {
            errno: errno.raw_os_error(),
            error: error.into(),
        }
    }

    /// Whether this message carries a file descriptor.
    pub fn carries_fd(&self) -> bool {
        matches!(
            self,
            Reply::StartPreservation { .. } | Reply::Session { .. }
        )
    }
}

impl Request {
    /// Whether this message carries a file descriptor.
    pub fn carries_fd(&self) -> bool {
        matches!(self, Request::Subscribe { held: true, .. })
    }
}

/// Why a message could not be read.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the connection.
    Closed,
    /// A line longer than [`MAX_MESSAGE`]; it was skipped.
    TooLong,
    /// A line that is not a message of this protocol; it was skipped.
    Malformed(String),
    /// The message should carry a file descriptor and does not.
    MissingFd,
    /// The socket failed.
    Io(io::Error),
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Closed => f.write_str("connection closed"),
            RecvError::TooLong => write!(f, "message longer than {MAX_MESSAGE} bytes"),
            RecvError::Malformed(e) => write!(f, "malformed message: {e}"),
            RecvError::MissingFd => f.write_str("message without its file descriptor"),
            RecvError::Io(e) => e.fmt(f),
        }
    }
}

impl RecvError {
    /// The errno of an error reply to this.
    pub fn errno(&self) -> Errno {
        match self {
            RecvError::TooLong => Errno::MSGSIZE,
            RecvError::Malformed(_) => Errno::INVAL,
            RecvError::MissingFd => Errno::BADF,
            RecvError::Closed => Errno::PIPE,
            RecvError::Io(e) => Errno::from_io_error(e).unwrap_or(Errno::IO),
        }
    }
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        RecvError::Io(e)
    }
}

/// The most descriptors one read takes; more are closed by the kernel.
const MAX_FDS: usize = 4;

/// One end of a connection: sends and receives whole messages with their
/// descriptors.
///
/// Linux ends a read of a Unix stream socket right after the bytes that
/// brought descriptors, so the descriptors of a read belong to the line that
/// holds the read's last byte. A message that carries a descriptor gets the
/// first of its line's; every other descriptor is closed, and at most
/// `2 * MAX_FDS` wait for a line to end.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Descriptors received, each group with the end in `buf` of the read
    /// that brought it.
    fds: VecDeque<(usize, Vec<OwnedFd>)>,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
    /// The longest line read, its newline included.
    max: usize,
}

/// A line read and the descriptors that came with it.
type Line = (Vec<u8>, Vec<OwnedFd>);

/// The longest reply a client reads (a LIST of many clients).
pub const MAX_REPLY: usize = 1 << 20;

impl Conn {
    /// A connection over `stream` that reads lines of at most
    /// [`MAX_MESSAGE`] bytes (luod's side).
    pub fn new(stream: UnixStream) -> Self {
        Self::with_limit(stream, MAX_MESSAGE)
    }

    /// A connection over `stream` that reads lines of at most `max` bytes.
    pub fn with_limit(stream: UnixStream, max: usize) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            fds: VecDeque::new(),
            skipping: false,
            max,
        }
    }

    /// Connects to luod at `path` (a client's side: replies of up to
    /// [`MAX_REPLY`] bytes).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::with_limit(UnixStream::connect(path)?, MAX_REPLY))
    }

    /// The stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends `msg` as one line, with `fd` attached if given.
    pub fn send<T: Serialize>(&self, msg: &T, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        send_on(&self.stream, msg, fd)
    }

    /// Receives one message of type `T`, with the descriptor it carries if
    /// `carries_fd` says it carries one.
    pub fn recv<T, F>(&mut self, carries_fd: F) -> Result<(T, Option<OwnedFd>), RecvError>
    where
        T: for<'de> Deserialize<'de>,
        F: Fn(&T) -> bool,
    {
        loop {
            if let Some((line, fds)) = self.take_line()? {
                let msg = serde_json::from_slice::<T>(&line)
                    .map_err(|e| RecvError::Malformed(e.to_string()))?;
                if !carries_fd(&msg) {
                    return Ok((msg, None));
                }
                return match fds.into_iter().next() {
                    Some(fd) => Ok((msg, Some(fd))),
                    None => Err(RecvError::MissingFd),
                };
            }
            self.fill()?;
        }
    }

    /// The next whole line of the buffer and its descriptors, if any; a line
    /// over the limit is dropped and reported once.
    fn take_line(&mut self) -> Result<Option<Line>, RecvError> {
        loop {
            let Some(n) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() >= self.max {
                    self.buf.clear();
                    self.fds.clear();
                    if !std::mem::replace(&mut self.skipping, true) {
                        return Err(RecvError::TooLong);
                    }
                }
                return Ok(None);
            };
            let len = n + 1;
            let line: Vec<u8> = self.buf.drain(..len).collect();
            // The groups whose read ended in this line: the last is its own.
            let mut mine = Vec::new();
            while self.fds.front().is_some_and(|(end, _)| *end <= len) {
                mine = self.fds.pop_front().map(|(_, f)| f).unwrap_or_default();
            }
            for (end, _) in self.fds.iter_mut() {
                *end -= len;
            }
            if std::mem::take(&mut self.skipping) {
                // The tail of a line already reported as too long.
                continue;
            }
            if len > self.max {
                return Err(RecvError::TooLong);
            }
            return Ok(Some((line, mine)));
        }
    }

    /// Reads more bytes and the descriptors that came with them.
    fn fill(&mut self) -> Result<(), RecvError> {
        let mut data = [0u8; MAX_MESSAGE];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            match rustix::net::recvmsg(
                &self.stream,
                &mut [IoSliceMut::new(&mut data)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r.bytes,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(RecvError::Io(e.into())),
            }
        };
        let mut fds = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        if n == 0 {
            return Err(RecvError::Closed);
        }
        self.buf.extend_from_slice(&data[..n]);
        if !fds.is_empty() {
            self.fds.push_back((self.buf.len(), fds));
            while self.fds.iter().map(|(_, f)| f.len()).sum::<usize>() > 2 * MAX_FDS {
                self.fds.pop_front();
            }
        }
        Ok(())
    }
}

/// Sends `msg` as one line on `stream`, with `fd` attached if given.
pub fn send_on<T: Serialize>(
    stream: &UnixStream,
    msg: &T,
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    let fds;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if let Some(fd) = fd {
        fds = [fd];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    let mut sent = 0;
    while sent < line.len() {
        let r = if sent == 0 {
            rustix::net::sendmsg(
                stream,
                &[IoSlice::new(&line)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
        } else {
            rustix::net::send(stream, &line[sent..], SendFlags::NOSIGNAL)
        };
        match r {
            Ok(n) => sent += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends `req` and waits for its reply, skipping events.
pub fn call(conn: &mut Conn, req: &Request) -> io::Result<(Reply, Option<OwnedFd>)> {
    conn.send(req, None)?;
    loop {
        match conn.recv::<Reply, _>(Reply::carries_fd) {
            Ok((Reply::Progress { .. }, _)) => continue,
            Ok(r) => return Ok(r),
            Err(RecvError::Io(e)) => return Err(e),
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
}

/// Turns an error reply into an `io::Error` with its errno and text.
pub fn reply_error(errno: i32, error: &str) -> io::Error {
    let e = io::Error::from_raw_os_error(errno);
    io::Error::new(e.kind(), format!("{error} ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn messages_are_one_json_object_tagged_by_msg() {
        let m = Request::Subscribe {
            id: "vm1".into(),
            held: false,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"msg":"SUBSCRIBE","id":"vm1"}"#
        );
        let p: Reply =
            serde_json::from_str(r#"{"msg":"START_PRESERVATION","id":"a","session":"s"}"#).unwrap();
        assert!(p.carries_fd());
        let st = Reply::Status(StatusInfo {
            pid: 1,
            socket: "s".into(),
            subscribed: 2,
            ready: 1,
            incoming: 0,
            table_restored: true,
            prepared: false,
        });
        let text = serde_json::to_string(&st).unwrap();
        assert!(text.starts_with(r#"{"msg":"STATUS","pid":1,"#), "{text}");
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), st);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"msg":"PREPARE","timeout_ms":5}"#).unwrap(),
            Request::Prepare { timeout_ms: 5 }
        );
    }

    #[test]
    fn unknown_fields_and_messages_are_refused() {
        for bad in [
            r#"{"msg":"SUBSCRIBE","id":"a","x":1}"#,
            r#"{"msg":"REBOOT"}"#,
            r#"{"id":"a"}"#,
            r#"["SUBSCRIBE"]"#,
            r#"{"msg":"CLAIM","id":7}"#,
            r#"{"msg":"LIST","all":true}"#,
            r#"{"msg":"STATUS","x":null}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("vm-1.a_b").is_ok());
        for bad in ["", "a b", "a:b", "é", &"x".repeat(MAX_ID + 1)] {
            assert_eq!(check_id(bad), Err(Errno::INVAL), "{bad:?}");
        }
        assert!(check_id(&"x".repeat(MAX_ID)).is_ok());
        // The longest name fits a LUO session name.
        assert!(session_name(u32::MAX, &"x".repeat(MAX_ID)).len() <= 63);
    }

    #[test]
    fn a_descriptor_travels_with_its_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, mut b) = (Conn::new(a), Conn::new(b));
        let memfd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&memfd, 123).unwrap();
        a.send(&Reply::Ok, None).unwrap();
        let ev = Reply::Session {
            id: "a".into(),
            session: "s".into(),
        };
        a.send(&ev, Some(memfd.as_fd())).unwrap();
        let (r, fd) = b.recv::<Reply, _>(Reply::carries_fd).unwrap();
        assert_eq!((r, fd.is_none()), (Reply::Ok, true));
        let (r, fd) = b.recv::<Reply, _>(Reply::carries_fd).unwrap();
        assert_eq!(r, ev);
        assert_eq!(rustix::fs::fstat(fd.unwrap()).unwrap().st_size, 123);
    }

    #[test]
    fn an_unasked_descriptor_is_dropped_and_a_missing_one_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, mut b) = (Conn::new(a), Conn::new(b));
        let memfd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        a.send(&Request::List {}, Some(memfd.as_fd())).unwrap();
        let (r, fd) = b.recv::<Request, _>(Request::carries_fd).unwrap();
        assert_eq!((r, fd.is_none()), (Request::List {}, true));
        assert!(b.fds.is_empty() && b.buf.is_empty());
        let held = Request::Subscribe {
            id: "a".into(),
            held: true,
        };
        a.send(&held, None).unwrap();
        assert!(matches!(
            b.recv::<Request, _>(Request::carries_fd),
            Err(RecvError::MissingFd)
        ));
    }

    /// Sends raw bytes with `fd` attached.
    fn send_raw(s: &UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) {
        let fds = [fd];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(s, &[IoSlice::new(bytes)], &mut control, SendFlags::empty()).unwrap();
    }

    #[test]
    fn a_descriptor_belongs_to_the_line_its_read_ended_in() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = Conn::new(b);
        let memfd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        // A held SUBSCRIBE without its fd, then a LIST with one: the LIST's
        // fd is not the SUBSCRIBE's, even when one read brings both.
        let held = br#"{"msg":"SUBSCRIBE","id":"a","held":true}"#;
        send_on(&a, &serde_json::from_slice::<Request>(held).unwrap(), None).unwrap();
        send_raw(&a, b"{\"msg\":\"LIST\"}\n", memfd.as_fd());
        assert!(matches!(
            b.recv::<Request, _>(Request::carries_fd),
            Err(RecvError::MissingFd)
        ));
        let (r, fd) = b.recv::<Request, _>(Request::carries_fd).unwrap();
        assert_eq!((r, fd.is_none()), (Request::List {}, true));
        // Descriptors sent with lines that never end in their own read do
        // not pile up.
        for _ in 0..100 {
            send_raw(&a, b"\n{", memfd.as_fd());
            assert!(matches!(
                b.recv::<Request, _>(Request::carries_fd),
                Err(RecvError::Malformed(_))
            ));
            let pending: usize = b.fds.iter().map(|(_, f)| f.len()).sum();
            assert!(pending <= 2 * MAX_FDS, "{pending} descriptors wait");
        }
    }

    #[test]
    fn an_oversized_line_is_refused_once_and_the_next_line_read() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut b = Conn::new(b);
        let big = vec![b'x'; 3 * MAX_MESSAGE];
        let writer = std::thread::spawn(move || {
            a.write_all(&big).unwrap();
            a.write_all(b"\n{\"msg\":\"LIST\"}\n").unwrap();
            a
        });
        assert!(matches!(
            b.recv::<Request, _>(Request::carries_fd),
            Err(RecvError::TooLong)
        ));
        assert_eq!(
            b.recv::<Request, _>(Request::carries_fd).unwrap().0,
            Request::List {}
        );
        let mut a = writer.join().unwrap();
        a.write_all(b"{\"msg\":\"LIST\"} junk\n").unwrap();
        assert!(matches!(
            b.recv::<Request, _>(Request::carries_fd),
            Err(RecvError::Malformed(_))
        ));
        drop(a);
        assert!(matches!(
            b.recv::<Request, _>(Request::carries_fd),
            Err(RecvError::Closed)
        ));
    }
}
