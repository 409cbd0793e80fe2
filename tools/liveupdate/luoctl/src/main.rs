// SPDX-License-Identifier: GPL-2.0

//! luoctl: drives live updates through luod, loads the next kernel, and
//! works LUO sessions directly for scripting and debugging.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use liveupdate::{Device, Session};
use luo_proto::{call, reply_error, Conn, Reply, Request};

/// Live updates with the LUO: load a kernel, prepare every luod client,
/// kexec; and session tools for scripts.
#[derive(Parser, Debug)]
#[command(name = "luoctl", version)]
struct Args {
    /// luod's socket.
    #[arg(long, global = true, default_value = luo_proto::SOCKET_PATH)]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Load the next kernel (kexec_file_load).
    Load {
        kernel: PathBuf,
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// The next kernel's command line.
        #[arg(long, conflicts_with = "reuse_cmdline")]
        cmdline: Option<String>,
        /// This kernel's command line (/proc/cmdline).
        #[arg(long)]
        reuse_cmdline: bool,
    },
    /// Unload the loaded kernel.
    Unload,
    /// Ask luod to start preservation and wait for every subscriber's READY.
    Prepare {
        /// Seconds to wait for the subscribers.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Prepare (as `prepare`), then reboot(KEXEC) into the loaded kernel.
    Kexec {
        /// Seconds to wait for the subscribers.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// The clients luod knows.
    List {
        #[arg(long)]
        json: bool,
    },
    /// luod's state and whether a kernel is loaded.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Without luod: create session NAME, preserve a copy of each FILE in a
    /// memfd under TOKEN, and hold them until standard input closes.
    Create {
        name: String,
        /// FILE=TOKEN
        files: Vec<String>,
    },
    /// Preserve a copy of each FILE under TOKEN in an inherited session fd.
    Preserve {
        #[arg(long)]
        session_fd: RawFd,
        /// FILE=TOKEN
        files: Vec<String>,
    },
    /// Without luod, in the next kernel: retrieve session NAME and write the
    /// file of each TOKEN to PATH.
    Retrieve {
        name: String,
        /// TOKEN=PATH
        files: Vec<String>,
        /// Finish the session afterwards.
        #[arg(long)]
        finish: bool,
    },
    /// Without luod, in the next kernel: retrieve session NAME and finish it.
    Finish { name: String },
    /// The name of an inherited session fd.
    Name {
        #[arg(long)]
        session_fd: RawFd,
    },
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("luoctl: {msg}");
    std::process::exit(1);
}

fn ctx<T>(r: io::Result<T>, what: impl std::fmt::Display) -> T {
    r.unwrap_or_else(|e| fail(format_args!("{what}: {e}")))
}

fn connect(socket: &Path) -> Conn {
    Conn::connect(socket).unwrap_or_else(|e| {
        fail(format_args!(
            "cannot reach luod at {}: {e} (is luod running?)",
            socket.display()
        ))
    })
}

fn open_device() -> Device {
    Device::open().unwrap_or_else(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
            fail(format_args!(
                "{} is open by another process (luod?): {e}",
                liveupdate::DEVICE_PATH
            ))
        }
        fail(format_args!("{}: {e}", liveupdate::DEVICE_PATH))
    })
}

/// A descriptor this process inherited, checked to be open.
fn inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: F_GETFD only reads the descriptor table's flags of `fd`; any
    // number is allowed (EBADF if it is not open).
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        fail(format_args!("fd {fd} is not open"));
    }
    // SAFETY: `fd` is open (checked above) and was passed to this process
    // to use; nothing else in it owns the descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn split_pair<'a>(s: &'a str, what: &str) -> (&'a str, &'a str) {
    s.split_once('=')
        .unwrap_or_else(|| fail(format_args!("{s:?} is not {what}")))
}

fn parse_token(t: &str) -> u64 {
    t.parse()
        .unwrap_or_else(|_| fail(format_args!("{t:?} is not a token (a u64)")))
}

/// A memfd holding a copy of `path`.
fn memfd_copy(path: &str) -> OwnedFd {
    let mut src = ctx(File::open(path), path);
    let memfd = ctx(
        rustix::fs::memfd_create(
            path.rsplit('/').next().unwrap_or(path),
            rustix::fs::MemfdFlags::CLOEXEC,
        )
        .map_err(io::Error::from),
        "memfd_create",
    );
    let mut dst = File::from(memfd);
    ctx(io::copy(&mut src, &mut dst), path);
    dst.into()
}

fn preserve_files(session: &Session, files: &[String]) {
    for f in files {
        let (path, token) = split_pair(f, "FILE=TOKEN");
        let memfd = memfd_copy(path);
        ctx(
            session.preserve(memfd.as_fd(), parse_token(token)),
            format_args!("preserve {path}"),
        );
        println!("preserved {path} as token {token}");
    }
}

fn kexec_loaded() -> bool {
    std::fs::read_to_string("/sys/kernel/kexec_loaded").is_ok_and(|s| s.trim() == "1")
}

/// kexec_file_load(2).
fn kexec_file_load(
    kernel: Option<&File>,
    initrd: Option<&File>,
    cmdline: &CString,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let bytes = cmdline.as_bytes_with_nul();
    // SAFETY: the descriptors are open (or -1 where the flags say none is
    // read), and the command line is a NUL-terminated buffer of the length
    // passed, alive for the call; the syscall reads nothing else.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.map_or(-1, |f| f.as_raw_fd()),
            initrd.map_or(-1, |f| f.as_raw_fd()),
            bytes.len() as libc::c_ulong,
            bytes.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

const KEXEC_FILE_UNLOAD: libc::c_ulong = 0x1;
const KEXEC_FILE_NO_INITRAMFS: libc::c_ulong = 0x4;

fn load(kernel: &Path, initrd: Option<&Path>, cmdline: Option<String>, reuse: bool) {
    let k = ctx(File::open(kernel), kernel.display());
    let i = initrd.map(|p| ctx(File::open(p), p.display()));
    let line = match (cmdline, reuse) {
        (Some(c), _) => c,
        (None, true) => ctx(std::fs::read_to_string("/proc/cmdline"), "/proc/cmdline")
            .trim_end()
            .to_owned(),
        (None, false) => String::new(),
    };
    let c = CString::new(line.clone()).unwrap_or_else(|_| fail("the command line contains a NUL"));
    let flags = if i.is_some() {
        0
    } else {
        KEXEC_FILE_NO_INITRAMFS
    };
    ctx(
        kexec_file_load(Some(&k), i.as_ref(), &c, flags),
        "kexec_file_load",
    );
    println!(
        "loaded {} ({} initrd), command line: {line}",
        kernel.display(),
        if i.is_some() { "with" } else { "no" }
    );
}

/// PREPARE through luod, showing progress. Returns the session count.
fn prepare(socket: &Path, timeout: u64) -> usize {
    let mut conn = connect(socket);
    let req = Request::Prepare {
        timeout_ms: timeout.saturating_mul(1000),
    };
    ctx(conn.send(&req, None), "PREPARE");
    let start = Instant::now();
    let mut shown: Option<(usize, Instant)> = None;
    loop {
        let reply = match conn.recv::<Reply, _>(Reply::carries_fd) {
            Ok((r, _)) => r,
            Err(e) => fail(format_args!("luod: {e}")),
        };
        match reply {
            Reply::Progress {
                ready,
                total,
                waiting,
            } => {
                let due =
                    shown.is_none_or(|(r, t)| r != ready || t.elapsed() >= Duration::from_secs(5));
                if due {
                    println!(
                        "waiting for READY: {ready}/{total} after {:.1} s (waiting: {})",
                        start.elapsed().as_secs_f64(),
                        waiting.join(", ")
                    );
                    let _ = io::stdout().flush();
                    shown = Some((ready, Instant::now()));
                }
            }
            Reply::Prepared { sessions } => {
                println!(
                    "prepared: {sessions} sessions ready after {:.1} s",
                    start.elapsed().as_secs_f64()
                );
                return sessions;
            }
            Reply::Error { errno, error } => {
                fail(format_args!("not prepared: {}", reply_error(errno, &error)))
            }
            other => fail(format_args!("unexpected reply {other:?}")),
        }
    }
}

fn request(socket: &Path, req: Request) -> Reply {
    let mut conn = connect(socket);
    match ctx(call(&mut conn, &req), "luod") {
        (Reply::Error { errno, error }, _) => fail(reply_error(errno, &error)),
        (r, _) => r,
    }
}

fn main() {
    let args = Args::parse();
    match args.cmd {
        Cmd::Load {
            kernel,
            initrd,
            cmdline,
            reuse_cmdline,
        } => load(&kernel, initrd.as_deref(), cmdline, reuse_cmdline),
        Cmd::Unload => {
            ctx(
                kexec_file_load(None, None, &CString::default(), KEXEC_FILE_UNLOAD),
                "kexec_file_load(UNLOAD)",
            );
            println!("unloaded");
        }
        Cmd::Prepare { timeout } => {
            prepare(&args.socket, timeout);
        }
        Cmd::Kexec { timeout } => {
            if !kexec_loaded() {
                fail("refusing to kexec: no kernel is loaded (run: luoctl load KERNEL ...)");
            }
            prepare(&args.socket, timeout);
            if !kexec_loaded() {
                fail("refusing to kexec: the loaded kernel was unloaded meanwhile");
            }
            println!("reboot(KEXEC)");
            let _ = io::stdout().flush();
            rustix::fs::sync();
            let e = rustix::system::reboot(rustix::system::RebootCommand::Kexec).err();
            fail(format_args!(
                "reboot(KEXEC) failed: {}",
                e.map_or_else(|| "returned".into(), |e| e.to_string())
            ));
        }
        Cmd::List { json } => {
            let Reply::List { clients } = request(&args.socket, Request::List {}) else {
                fail("unexpected reply to LIST");
            };
            if json {
                println!("{}", serde_json::to_string(&clients).unwrap_or_default());
            } else {
                println!(
                    "{:<24} {:>6} {:<11} {:<9} SESSION",
                    "ID", "UID", "STATE", "CONNECTED"
                );
                for c in clients {
                    println!(
                        "{:<24} {:>6} {:<11} {:<9} {}",
                        c.id, c.uid, c.state, c.connected, c.session
                    );
                }
            }
        }
        Cmd::Status { json } => {
            let Reply::Status(s) = request(&args.socket, Request::Status {}) else {
                fail("unexpected reply to STATUS");
            };
            if json {
                println!("{}", serde_json::to_string(&s).unwrap_or_default());
            } else {
                println!("luod pid {} on {}", s.pid, s.socket);
                println!(
                    "subscribed {}, ready {}, incoming {}",
                    s.subscribed, s.ready, s.incoming
                );
                println!(
                    "table from the previous kernel: {}",
                    if s.table_restored { "yes" } else { "no" }
                );
                println!("prepared: {}", if s.prepared { "yes" } else { "no" });
                println!(
                    "kernel loaded for kexec: {}",
                    if kexec_loaded() { "yes" } else { "no" }
                );
            }
        }
        Cmd::Create { name, files } => {
            let dev = open_device();
            let session = ctx(
                dev.create_session(&name),
                format_args!("create session {name}"),
            );
            preserve_files(&session, &files);
            println!("holding session {name} until standard input closes");
            let _ = io::stdout().flush();
            let _ = io::stdin().read_to_end(&mut Vec::new());
        }
        Cmd::Preserve { session_fd, files } => {
            let session = ctx(
                Session::from_fd(inherited(session_fd)),
                format_args!("fd {session_fd}"),
            );
            preserve_files(&session, &files);
            // The inherited descriptor stays open: it is the caller's.
            let _ = session.into_fd().into_raw_fd();
        }
        Cmd::Retrieve {
            name,
            files,
            finish,
        } => {
            let dev = open_device();
            let session = ctx(
                dev.retrieve_session(&name),
                format_args!("retrieve session {name}"),
            );
            for f in &files {
                let (token, path) = split_pair(f, "TOKEN=PATH");
                let fd = ctx(
                    session.retrieve(parse_token(token)),
                    format_args!("retrieve token {token}"),
                );
                let mut src = File::from(fd);
                ctx(src.rewind(), path);
                let mut dst = ctx(File::create(path), path);
                ctx(io::copy(&mut src, &mut dst), path);
                println!("token {token} written to {path}");
            }
            if finish {
                ctx(session.finish(), format_args!("finish {name}"));
                println!("finished {name}");
            }
        }
        Cmd::Finish { name } => {
            let dev = open_device();
            let session = ctx(
                dev.retrieve_session(&name),
                format_args!("retrieve session {name}"),
            );
            ctx(session.finish(), format_args!("finish {name}"));
            println!("finished {name}");
        }
        Cmd::Name { session_fd } => {
            let session = ctx(
                Session::from_fd(inherited(session_fd)),
                format_args!("fd {session_fd}"),
            );
            println!("{}", ctx(session.name(), "GET_NAME"));
            let _ = session.into_fd().into_raw_fd();
        }
    }
}
