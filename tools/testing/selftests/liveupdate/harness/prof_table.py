#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Per-function instruction counts of the next kernel's boot-path windows, C next to Rust.

prof_table.py SCENARIO C_VMLINUX C_PROF C_EARLY RUST_VMLINUX RUST_PROF RUST_EARLY [MEASURE]

Each PROF file is what harness/prof.c wrote for one VM: windows opened at the early
initcall (symbol *_EARLY), at misc_open and at liveupdate_reboot, closed at their returns.
The tables are for liveupdate_reboot() (its last window) and for the kernel that received
the hand-over: its early initcall (the last window opened there) and the first open of a
misc device after it. Each table also gives the blocks QEMU translated in the window and, if
harness/prof.c listed them (PROF.tb: "WINDOW ADDRESS INSTRUCTIONS" per translated block), a
second table of where those blocks are, function by function, and how many code pages they
span: what TCG pays for code run for the first time. MEASURE (icount, the default, or tcg)
is the clock the guests ran on. Prints markdown.
"""

import bisect
import os
import subprocess
import sys


def symbols(vmlinux):
    """Function start addresses and (demangled) names, sorted."""
    out = subprocess.run(["nm", "-n", "-C", vmlinux], capture_output=True, text=True,
                         check=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith("__pfx_"):
            addrs.append(int(parts[0], 16))
            names.append(parts[2])
    return addrs, names


def windows(path):
    """[(start address, {pc: count}, (blocks, instructions translated), [(pc, instructions) of
    each block translated])] in the order the windows closed (window N is the N-th)."""
    result = []
    for line in open(path, encoding="ascii"):
        if line.startswith("#"):
            fields = line.split()
            at = fields.index("translated")
            result.append((int(fields[fields.index("start") + 1], 16), {},
                           (int(fields[at + 1]), int(fields[at + 2])), []))
        elif result:
            pc, n = line.split()
            result[-1][1][int(pc, 16)] = int(n)
    if os.path.exists(path + ".tb"):
        for line in open(path + ".tb", encoding="ascii"):
            w, pc, n = line.split()
            if int(w) < len(result):
                result[int(w)][3].append((int(pc, 16), int(n)))
    return result


def boot_windows(vmlinux, prof, early):
    """(per-function counts, translated) of the last liveupdate_reboot(), of the last early
    initcall and of the first open after it."""
    addrs, names = symbols(vmlinux)
    early_at = addrs[names.index(early)]
    reboot_at = addrs[names.index("liveupdate_reboot")]
    found = windows(prof)
    last = max((i for i, w in enumerate(found) if w[0] == early_at), default=None)
    if last is None:
        sys.exit(f"prof_table: no early initcall window in {prof}")
    reboots = [w for w in found[:last] if w[0] == reboot_at]
    if not reboots:
        sys.exit(f"prof_table: no liveupdate_reboot window in {prof}")
    picked = [reboots[-1], found[last]]
    after = [w for w in found[last + 1:] if w[0] not in (early_at, reboot_at)]
    picked.append(after[0] if after else (0, {}, (0, 0), []))

    def name_of(pc):
        i = bisect.bisect_right(addrs, pc) - 1
        return names[i] if i >= 0 else "?"

    per_function = []
    for _, counts, translated, blocks in picked:
        funcs, tbs = {}, {}
        for pc, n in counts.items():
            name = name_of(pc)
            funcs[name] = funcs.get(name, 0) + n
        for pc, _ in blocks:
            name = name_of(pc)
            tbs[name] = tbs.get(name, 0) + 1
        pages = len({pc >> 12 for pc, _ in blocks})
        per_function.append((funcs, translated, (tbs, pages) if blocks else None))
    return per_function


# Names of the timer interrupt's path (entry, tick, scheduler tick, timekeeping, softirqs), by
# substring: blocks there are translated in whichever window the first such interrupt falls,
# whatever that window's own code is. A heuristic for the 7.3 kernel, for the reader.
INTERRUPT_PATH = ("irqentry_", "irq_enter", "irq_exit", "handle_irq", "sysvec_", "_interrupt",
                  "irq_event", "tick", "timer", "timekeeping", "error_entry", "update_load_avg",
                  "update_curr", "sched_clock_irq", "ntp_", "calc_global_load", "account_process",
                  "apic_mem_eoi", "update_wall_time", "update_vsyscall", "update_process_times",
                  "preempt_schedule_irq", "rcu_segcblist", "do_timer", "idle_cpu",
                  "sched_balance_trigger", "arch_scale_freq", "softirq")


def interrupt_blocks(by_function):
    """How many of the blocks of `by_function` are in the timer interrupt's path."""
    return sum(n for f, n in by_function.items()
               if "liveupdate" not in f and "luo" not in f
               and any(p in f for p in INTERRUPT_PATH))


def short(name):
    """A function's name without the crate hashes and generic arguments' paths."""
    name = name.replace("liveupdate::", "").replace("kernel::", "k::")
    return name if len(name) <= 90 else name[:87] + "..."


def rows(c, rust, limit):
    """A markdown table of `c` and `rust` (counts by function), the `limit` functions where
    they differ most first, the rest summed."""
    print("| function | C | Rust | Rust − C |")
    print("|---|---:|---:|---:|")
    functions = sorted(set(c) | set(rust), key=lambda f: (-abs(rust.get(f, 0) - c.get(f, 0)), f))
    rest_c = rest_r = 0
    for i, f in enumerate(functions):
        a, b = c.get(f, 0), rust.get(f, 0)
        if i < limit and a != b:
            print(f"| `{short(f)}` | {a:,} | {b:,} | {b - a:+,} |")
        else:
            rest_c, rest_r = rest_c + a, rest_r + b
    print(f"| (the others) | {rest_c:,} | {rest_r:,} | {rest_r - rest_c:+,} |\n")


def table(title, c_window, rust_window, limit=40):
    (c, (c_blocks, c_insns), c_tbs), (rust, (r_blocks, r_insns), r_tbs) = c_window, rust_window
    print(f"### {title}\n")
    total_c, total_r = sum(c.values()), sum(rust.values())
    print(f"Instructions: C {total_c:,}, Rust {total_r:,}, Rust − C {total_r - total_c:+,}. "
          f"Translated by QEMU meanwhile (code run for the first time: TCG's cost, not "
          f"icount's): C {c_blocks:,} blocks of {c_insns:,} instructions, Rust {r_blocks:,} "
          f"of {r_insns:,}.\n")
    rows(c, rust, limit)
    if c_tbs and r_tbs:
        # Where the blocks QEMU translated are, function by function.
        (c_by_function, c_pages), (r_by_function, r_pages) = c_tbs, r_tbs
        print(f"Translated blocks by function (they start in {c_pages} distinct code pages in "
              f"C, {r_pages} in Rust). Of these, C {interrupt_blocks(c_by_function):,} and Rust "
              f"{interrupt_blocks(r_by_function):,} are on the timer interrupt's path (by name): "
              f"translated in whichever window its first run falls, not that window's own "
              f"cost.\n")
        rows(c_by_function, r_by_function, 25)


def main():
    if len(sys.argv) not in (8, 9):
        sys.exit(__doc__)
    scenario = sys.argv[1]
    measure = sys.argv[8] if len(sys.argv) == 9 else "icount"
    if measure not in ("icount", "tcg"):
        sys.exit(__doc__)
    c = boot_windows(*sys.argv[2:5])
    rust = boot_windows(*sys.argv[5:8])
    print(f"## {scenario}: guest instructions per function ({measure})\n")
    if measure == "tcg":
        print("The guests ran on TCG's own clock: timer interrupts landed where they do in the "
              "tcg rows, and which window pays for an interrupt path's first run varies from "
              "run to run.\n")
    table("liveupdate_reboot()", c[0], rust[0])
    table("Next kernel: early initcall (with the benchmark's own timing line)", c[1], rust[1])
    table("Next kernel: first open of /dev/liveupdate (misc_open)", c[2], rust[2])


if __name__ == "__main__":
    main()
