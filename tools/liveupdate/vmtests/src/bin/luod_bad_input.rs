// SPDX-License-Identifier: GPL-2.0

//! Hostile input to luod: malformed JSON, oversized messages, unknown
//! messages and fields, unknown ids, descriptors nobody asked for, a held
//! session that is no session, another uid's id (each uid names its own
//! clients), CLAIM and PREPARE for root by a user, and the limits. Each gets an
//! error reply with the expected errno, and nothing changes: the client
//! table, luod's descriptors, and the session of a well-behaved client that
//! then goes through a live update.
//!
//! Stage 2: a CLAIM of root's session by another uid is refused and takes
//! nothing; root's client then claims it intact.
//!
//! HARNESS: stages=2 impls=rust files="luod luoctl luo-guest"

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

use luo_proto::{Conn, Reply, Request};
use luo_vmtests::{check, fail, kexec_to, list, stage, start_luod, Proc, SOCKET};
use rustix::io::Errno;

const OTHER_UID: u32 = 1000;

/// Sends raw bytes (with `fd` attached if given) and reads one reply.
fn raw(conn: &mut Conn, bytes: &[u8], fd: Option<std::os::fd::BorrowedFd<'_>>) -> Reply {
    match fd {
        Some(fd) => {
            let msg: serde_json::Value = serde_json::from_slice(bytes).expect("test JSON");
            conn.send(&msg, Some(fd)).expect("send");
        }
        None => {
            let mut s = conn.stream();
            s.write_all(bytes).expect("send");
        }
    }
    conn.recv::<Reply, _>(Reply::carries_fd)
        .unwrap_or_else(|e| fail(format_args!("no reply: {e}")))
        .0
}

/// Expects an error reply with `errno`.
fn expect_err(what: &str, reply: Reply, errno: Errno) {
    match reply {
        Reply::Error { errno: e, error } if e == errno.raw_os_error() => {
            println!("ok: {what}: {error}");
        }
        other => fail(format_args!(
            "{what}: expected errno {}, got {other:?}",
            errno.raw_os_error()
        )),
    }
}

fn req(conn: &mut Conn, r: &Request) -> Reply {
    luo_proto::call(conn, r)
        .unwrap_or_else(|e| fail(format_args!("{r:?}: {e}")))
        .0
}

/// Runs this program again with `part` as uid and gid [`OTHER_UID`]; it must
/// succeed.
fn run_as_other_user(part: &str) {
    let st = Command::new("/test_binary")
        .arg(part)
        .uid(OTHER_UID)
        .gid(OTHER_UID)
        .status()
        .expect("spawn");
    check(
        st.success(),
        format_args!("the part {part} as uid {OTHER_UID} failed: {st}"),
    );
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The part run as another uid, in a child. Each uid names its clients on
/// its own: none of this reaches root's vm1, and CLAIM or PREPARE for root
/// is refused.
fn as_other_user() {
    let mut c = Conn::connect(SOCKET)
        .unwrap_or_else(|e| fail(format_args!("uid {OTHER_UID} cannot connect: {e}")));
    let vm1 = || "vm1".to_owned();
    expect_err(
        "READY of root's id",
        req(&mut c, &Request::Ready { id: vm1() }),
        Errno::NOENT,
    );
    expect_err(
        "UNSUBSCRIBE of root's id",
        req(&mut c, &Request::Unsubscribe { id: vm1() }),
        Errno::NOENT,
    );
    expect_err(
        "CLAIM naming uid 0",
        req(
            &mut c,
            &Request::Claim {
                id: vm1(),
                uid: Some(0),
            },
        ),
        Errno::PERM,
    );
    expect_err(
        "PREPARE by a user",
        req(&mut c, &Request::Prepare { timeout_ms: 1 }),
        Errno::PERM,
    );
    match req(&mut c, &Request::List {}) {
        Reply::List { clients } if clients.is_empty() => {
            println!("ok: a user sees none of root's clients")
        }
        other => fail(format_args!("LIST as a user: {other:?}")),
    }
    // Its own vm1 is another client, with another session name.
    let r = req(
        &mut c,
        &Request::Subscribe {
            id: vm1(),
            held: false,
        },
    );
    check(
        r == Reply::Ok,
        format_args!("a user's SUBSCRIBE vm1: {r:?}"),
    );
    match req(&mut c, &Request::List {}) {
        Reply::List { clients } if clients.len() == 1 && clients[0].session == "luod:1000:vm1" => {
            println!("ok: a user's vm1 is its own: {}", clients[0].session)
        }
        other => fail(format_args!("LIST as a user: {other:?}")),
    }
    check(
        req(
            &mut c,
            &Request::Subscribe {
                id: "u2".into(),
                held: false,
            },
        ) == Reply::Ok,
        "SUBSCRIBE u2",
    );
    expect_err(
        "a third client of one uid",
        req(
            &mut c,
            &Request::Subscribe {
                id: "u3".into(),
                held: false,
            },
        ),
        Errno::MFILE,
    );
    for id in ["vm1", "u2"] {
        check(
            req(&mut c, &Request::Unsubscribe { id: id.into() }) == Reply::Ok,
            "UNSUBSCRIBE",
        );
    }
    // Connections of one uid are limited (4 here, this one included).
    let held: Vec<Conn> = (0..3)
        .map(|_| Conn::connect(SOCKET).expect("connect"))
        .collect();
    let mut over = Conn::connect(SOCKET).expect("connect");
    match over.recv::<Reply, _>(Reply::carries_fd) {
        Ok((Reply::Error { errno, error }, _)) if errno == Errno::AGAIN.raw_os_error() => {
            println!("ok: a fifth connection of one uid: {error}")
        }
        other => fail(format_args!("a fifth connection of one uid: {other:?}")),
    }
    drop(held);
    println!("AS-USER PASSED");
}

fn main() {
    if std::env::args().any(|a| a == "as-user") {
        as_other_user();
        return;
    }
    if std::env::args().any(|a| a == "claim-as-user") {
        claim_as_other_user();
        return;
    }
    if stage() == 2 {
        stage2();
        return;
    }
    let luod = start_luod(&[
        "--group",
        &OTHER_UID.to_string(),
        "--max-per-uid",
        "2",
        "--max-clients",
        "4",
        "--max-connections-per-uid",
        "4",
    ]);
    let pid = luod.child.id();
    let mut guest = Proc::spawn(
        "guest",
        Command::new("/luo-guest").args(["start", "vm1", "4"]),
    );
    guest.wait_for("GUEST vm1: subscribed", 120);
    let before = list();
    let fds_before = open_fds(pid);
    let mut c = Conn::connect(SOCKET).expect("connect");

    let mut big = b"{\"msg\":\"SUBSCRIBE\",\"id\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend(b"\"}\n");
    let raw_cases: [(&str, &[u8], Errno); 8] = [
        (
            "malformed JSON",
            b"{\"msg\": \"SUBSCRIBE\", \"id\":\n",
            Errno::INVAL,
        ),
        ("not an object", b"[1,2,3]\n", Errno::INVAL),
        ("binary junk", b"\xff\xfe\x00\x01\n", Errno::INVAL),
        ("a 64 KiB message", &big, Errno::MSGSIZE),
        (
            "an unknown message",
            b"{\"msg\":\"REBOOT\"}\n",
            Errno::INVAL,
        ),
        (
            "an unknown field",
            b"{\"msg\":\"LIST\",\"all\":true}\n",
            Errno::INVAL,
        ),
        (
            "a wrong type",
            b"{\"msg\":\"READY\",\"id\":7}\n",
            Errno::INVAL,
        ),
        (
            "a held session without its fd",
            b"{\"msg\":\"SUBSCRIBE\",\"id\":\"x1\",\"held\":true}\n",
            Errno::BADF,
        ),
    ];
    for (what, bytes, errno) in raw_cases {
        expect_err(what, raw(&mut c, bytes, None), errno);
    }
    let subscribe = |id: String| Request::Subscribe { id, held: false };
    let nobody = || "nobody".to_owned();
    let req_cases = [
        ("an invalid id", subscribe("../etc".into()), Errno::INVAL),
        ("an id too long", subscribe("x".repeat(41)), Errno::INVAL),
        (
            "READY of an unknown id",
            Request::Ready { id: nobody() },
            Errno::NOENT,
        ),
        (
            "UNSUBSCRIBE of an unknown id",
            Request::Unsubscribe { id: nobody() },
            Errno::NOENT,
        ),
        (
            "CLAIM of an unknown id",
            Request::Claim {
                id: nobody(),
                uid: None,
            },
            Errno::NOENT,
        ),
        (
            "READY before START_PRESERVATION",
            Request::Ready { id: "vm1".into() },
            Errno::INVAL,
        ),
    ];
    for (what, r, errno) in req_cases {
        expect_err(what, req(&mut c, &r), errno);
    }
    let memfd =
        rustix::fs::memfd_create("not-a-session", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
    let r = raw(
        &mut c,
        br#"{"msg":"SUBSCRIBE","id":"x1","held":true}"#,
        Some(memfd.as_fd()),
    );
    check(
        matches!(r, Reply::Error { .. }),
        format_args!("a memfd adopted as a session: {r:?}"),
    );
    println!("ok: a memfd is no session: {r:?}");
    // Descriptors nobody asked for are closed, not kept.
    for _ in 0..50 {
        check(
            raw(&mut c, br#"{"msg":"STATUS"}"#, Some(memfd.as_fd())) != Reply::Ok,
            "STATUS",
        );
    }
    // The connection still works after all that.
    check(
        matches!(req(&mut c, &Request::Status {}), Reply::Status(_)),
        "STATUS after bad input",
    );

    // Another uid, through the socket's group.
    run_as_other_user("as-user");

    // The total limit (4 clients here, vm1 included).
    for id in ["r1", "r2", "r3"] {
        let r = req(
            &mut c,
            &Request::Subscribe {
                id: id.into(),
                held: false,
            },
        );
        check(r == Reply::Ok, format_args!("SUBSCRIBE {id}: {r:?}"));
    }
    expect_err(
        "a fifth client",
        req(
            &mut c,
            &Request::Subscribe {
                id: "r4".into(),
                held: false,
            },
        ),
        Errno::NOSPC,
    );
    for id in ["r1", "r2", "r3"] {
        check(
            req(&mut c, &Request::Unsubscribe { id: id.into() }) == Reply::Ok,
            "UNSUBSCRIBE",
        );
    }

    // A client that hangs up mid-message leaves nothing behind.
    {
        let mut s = UnixStream::connect(SOCKET).expect("connect");
        s.write_all(b"{\"msg\":\"SUBSCRIBE\",\"id\":\"half")
            .expect("write");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let after = list();
    check(
        after == before,
        format_args!("the client table changed: {before:?} -> {after:?}"),
    );
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let fds_after = open_fds(pid);
    check(
        fds_after <= fds_before,
        format_args!("luod holds {fds_after} fds, {fds_before} before"),
    );
    println!("ok: the table is unchanged and luod holds {fds_after} fds ({fds_before} before)");

    // And the well-behaved client still goes through a live update.
    let _ = &guest;
    kexec_to(2)
}

/// Stage 2: another uid's CLAIM of root's session from the previous kernel
/// is refused and takes nothing; then root's guest claims it intact.
fn stage2() {
    let _luod = start_luod(&["--group", &OTHER_UID.to_string()]);
    let before = list();
    check(
        before.len() == 1 && before[0].id == "vm1" && before[0].state == "incoming",
        format_args!("the table does not hold vm1 incoming: {before:?}"),
    );
    run_as_other_user("claim-as-user");
    let after = list();
    check(
        after == before,
        format_args!("a refused CLAIM changed the table: {before:?} -> {after:?}"),
    );
    let mut guest = Proc::spawn(
        "guest",
        Command::new("/luo-guest").args(["claim", "vm1", "4", "2"]),
    );
    guest.wait_for("GUEST vm1: counter carried on", 120);
    println!("TEST PASSED");
}

/// Stage 2, as another uid: root's vm1 is not this uid's, and naming uid 0
/// is refused.
fn claim_as_other_user() {
    let mut c = Conn::connect(SOCKET)
        .unwrap_or_else(|e| fail(format_args!("uid {OTHER_UID} cannot connect: {e}")));
    expect_err(
        "CLAIM of root's vm1 by a user (its own vm1 has no session)",
        req(
            &mut c,
            &Request::Claim {
                id: "vm1".into(),
                uid: None,
            },
        ),
        Errno::NOENT,
    );
    expect_err(
        "CLAIM of root's vm1 naming uid 0",
        req(
            &mut c,
            &Request::Claim {
                id: "vm1".into(),
                uid: Some(0),
            },
        ),
        Errno::PERM,
    );
    match req(&mut c, &Request::List {}) {
        Reply::List { clients } if clients.is_empty() => {
            println!("ok: a user sees none of root's incoming sessions")
        }
        other => fail(format_args!("LIST as a user: {other:?}")),
    }
    println!("AS-USER PASSED");
}
