// SPDX-License-Identifier: GPL-2.0

//! Two live updates in a row, driven only by luoctl and luod: a guest keeps
//! 256 MiB of "guest memory" and a counter through stage 1 -> 2 -> 3, and
//! checks every byte and that the counter carried on. luoctl kexec first
//! refuses with no kernel loaded.
//!
//! HARNESS: stages=3 impls=rust,c,c-to-rust files="luod luoctl luo-guest"

use luo_vmtests::{check, kexec_to, list, luoctl, luoctl_ok, stage, start_luod, status, Proc};
use std::process::Command;

const LAST: u32 = 3;
const MIB: &str = "256";

fn main() {
    let s = stage();
    println!("# luod_two_updates stage {s}");
    let _luod = start_luod(&[]);
    let mut guest;
    if s == 1 {
        let st = status();
        check(
            !st.table_restored && st.incoming == 0,
            "a fresh luod found a table",
        );
        guest = Proc::spawn(
            "guest",
            Command::new("/luo-guest").args(["start", "vm1", MIB]),
        );
        guest.wait_for("GUEST vm1: subscribed", 300);
        // No kernel loaded: luoctl kexec refuses and says why.
        luoctl_ok(&["unload"]);
        let (st, _) = luoctl(&["kexec"]);
        check(
            !st.success(),
            "luoctl kexec with no kernel loaded succeeded",
        );
    } else {
        let st = status();
        check(st.table_restored, "luod did not restore its table");
        let clients = list();
        check(
            clients.len() == 1 && clients[0].id == "vm1" && clients[0].state == "incoming",
            format_args!("the table does not hold vm1 incoming: {clients:?}"),
        );
        let generation = s.to_string();
        let mut args = vec!["claim", "vm1", MIB, &generation];
        if s < LAST {
            args.push("--subscribe");
        }
        guest = Proc::spawn("guest", Command::new("/luo-guest").args(&args));
        guest.wait_for("GUEST vm1: claimed", 300);
        guest.wait_for("GUEST vm1: counter carried on", 60);
        if s == LAST {
            let st = status();
            check(st.incoming == 0, "a session is still unclaimed");
            println!("TEST PASSED");
            std::process::exit(0);
        }
        guest.wait_for("GUEST vm1: subscribed", 60);
    }
    let st = status();
    check(
        st.subscribed == 1 && st.ready == 0,
        format_args!("unexpected status {st:?}"),
    );
    kexec_to(s + 1)
}
