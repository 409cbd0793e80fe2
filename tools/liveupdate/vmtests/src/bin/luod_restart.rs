// SPDX-License-Identifier: GPL-2.0

//! luod dies (SIGKILL) after its clients hold their session fds and before
//! the kexec. A new luod takes over: vm1 comes back with the session it
//! holds and is adopted; vm2 does not come back, and still claims its session
//! in the next kernel by the name derived from its id and uid. `luoctl kexec`
//! completes through the new luod, and both guests get everything back.
//!
//! HARNESS: stages=2 impls=rust files="luod luoctl luo-guest"

use luo_vmtests::{check, kexec_to, list, luoctl_ok, stage, start_luod, status, Proc};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let s = stage();
    println!("# luod_restart stage {s}");
    if s == 1 {
        let mut first = start_luod(&[]);
        let mut vm1 = Proc::spawn(
            "vm1",
            Command::new("/luo-guest").args(["start", "vm1", "64"]),
        );
        let mut vm2 = Proc::spawn(
            "vm2",
            Command::new("/luo-guest").args(["start", "vm2", "8", "--no-reconnect"]),
        );
        vm1.wait_for("GUEST vm1: subscribed", 300);
        vm2.wait_for("GUEST vm2: subscribed", 300);
        luoctl_ok(&["prepare", "--timeout", "120"]);
        vm1.wait_for("GUEST vm1: ready", 30);
        vm2.wait_for("GUEST vm2: ready", 30);
        println!("# killing luod (SIGKILL)");
        first.child.kill().expect("kill luod");
        let _ = first.child.wait();
        vm1.wait_for("GUEST vm1: luod connection lost", 30);
        vm2.wait_for("GUEST vm2: holding its session without luod", 30);
        let _second = start_luod(&[]);
        vm1.wait_for("GUEST vm1: subscribed with its session", 60);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let c = list();
            if c.len() == 1 && c[0].id == "vm1" && c[0].state == "ready" {
                break;
            }
            check(
                Instant::now() < deadline,
                format_args!("vm1 was not adopted: {c:?}"),
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        kexec_to(2);
    }
    let _luod = start_luod(&[]);
    let st = status();
    check(
        st.table_restored && st.incoming == 1,
        format_args!("the new luod's table should hold vm1 only: {st:?}"),
    );
    let mut vm1 = Proc::spawn(
        "vm1",
        Command::new("/luo-guest").args(["claim", "vm1", "64", "2"]),
    );
    vm1.wait_for("GUEST vm1: counter carried on", 300);
    let mut vm2 = Proc::spawn(
        "vm2",
        Command::new("/luo-guest").args(["claim", "vm2", "8", "2"]),
    );
    vm2.wait_for("GUEST vm2: counter carried on", 300);
    check(status().incoming == 0, "a session is still unclaimed");
    println!("TEST PASSED");
}
