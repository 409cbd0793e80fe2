// SPDX-License-Identifier: GPL-2.0

//! What the harness's luod tests share. Each test is a program run by the
//! harness's init as `/test_binary -s STAGE` in every stage of a multi-kernel
//! run (tools/testing/selftests/liveupdate/harness/init.c), with `/luod`,
//! `/luoctl` and `/luo-guest` beside it in the initramfs. A stage that is not
//! the last ends in `luoctl kexec`; the last prints "TEST PASSED".

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use luo_proto::{ClientInfo, Conn, StatusInfo};

/// luod's socket in the VM.
pub const SOCKET: &str = luo_proto::SOCKET_PATH;

/// Prints a failure and exits: the harness sees a non-zero stage.
pub fn fail(msg: impl std::fmt::Display) -> ! {
    println!("FAIL: {msg}");
    std::process::exit(1);
}

/// Asserts `cond`, failing with `msg`.
pub fn check(cond: bool, msg: impl std::fmt::Display) {
    if !cond {
        fail(msg);
    }
}

/// The stage of `-s N` on the command line (1 without one).
pub fn stage() -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "-s")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// This kernel's command line with `luo_stage=` set to `next`.
pub fn next_cmdline(next: u32) -> String {
    let line = std::fs::read_to_string("/proc/cmdline")
        .unwrap_or_else(|e| fail(format_args!("/proc/cmdline: {e}")));
    let mut words: Vec<String> = line
        .split_whitespace()
        .filter(|w| !w.starts_with("luo_stage="))
        .map(str::to_owned)
        .collect();
    words.push(format!("luo_stage={next}"));
    words.join(" ")
}

/// A program of the test that runs beside it: its output lines come through
/// a channel (and are echoed), so the test can wait for one.
pub struct Proc {
    pub name: String,
    pub child: Child,
    lines: Receiver<String>,
}

impl Proc {
    /// Starts `cmd` with its stdout piped (stderr goes to the console).
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(format_args!("cannot start {name}: {e}")));
        let out: ChildStdout = child.stdout.take().expect("piped");
        let (tx, rx) = channel();
        let prefix = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                println!("{prefix}: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            lines: rx,
        }
    }

    /// Waits up to `secs` for a line that starts with `want`; fails on a
    /// line that starts with "FAIL" or when the program ends first.
    pub fn wait_for(&mut self, want: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(want) => return line,
                Ok(line) if line.starts_with("FAIL") => fail(format_args!("{}: {line}", self.name)),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    fail(format_args!("{}: no {want:?} within {secs} s", self.name))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let st = self.child.wait().ok();
                    fail(format_args!("{} ended ({st:?}) before {want:?}", self.name))
                }
            }
        }
    }
}

/// Starts luod with `args` and waits until its socket answers.
pub fn start_luod(args: &[&str]) -> Proc {
    let mut p = Proc::spawn("luod", Command::new("/luod").args(args));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Conn::connect(SOCKET).is_err() {
        if let Ok(Some(st)) = p.child.try_wait() {
            fail(format_args!("luod exited: {st}"));
        }
        check(
            Instant::now() < deadline,
            "luod's socket did not appear within 30 s",
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

/// Runs `luoctl ARGS`, echoing its output; its exit status and stdout.
pub fn luoctl(args: &[&str]) -> (ExitStatus, String) {
    println!("$ luoctl {}", args.join(" "));
    let out = Command::new("/luoctl")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| fail(format_args!("cannot run luoctl: {e}")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for l in text.lines() {
        println!("luoctl: {l}");
    }
    (out.status, text)
}

/// Runs `luoctl ARGS`, which must succeed.
pub fn luoctl_ok(args: &[&str]) -> String {
    let (st, out) = luoctl(args);
    check(
        st.success(),
        format_args!("luoctl {} failed: {st}", args.join(" ")),
    );
    out
}

/// `luoctl status --json`.
pub fn status() -> StatusInfo {
    let out = luoctl_ok(&["status", "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| fail(format_args!("status: {e}")))
}

/// `luoctl list --json`.
pub fn list() -> Vec<ClientInfo> {
    let out = luoctl_ok(&["list", "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| fail(format_args!("list: {e}")))
}

/// Loads the next stage's kernel and initramfs (written by init) through
/// `luoctl load`, then `luoctl kexec`, which does not return on success.
pub fn kexec_to(next: u32) -> ! {
    let cmdline = next_cmdline(next);
    luoctl_ok(&[
        "load",
        "/kernel",
        "--initrd",
        "/tmp/next.img",
        "--cmdline",
        &cmdline,
    ]);
    let (st, _) = luoctl(&["kexec", "--timeout", "120"]);
    fail(format_args!("luoctl kexec returned: {st}"))
}
