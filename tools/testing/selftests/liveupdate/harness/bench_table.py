#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# bench_table.py RAW RUNS QEMU CPU NPROC MEM SOURCE [NOTES]
#
# Turns bench.sh's raw lines ("<run> <impl> <scenario> <key> k=v ...") into
# the markdown table: per row the median over the runs (min-max) for C and
# for Rust, and the ratio Rust/C of the medians. NOTES (bench_notes.txt)
# holds "section<TAB>row<TAB>note" lines: the note column of that row.
import collections
import statistics
import os
import sys

raw, runs, qemu, cpu, nproc, mem, source = sys.argv[1:8]
notes = {}
if len(sys.argv) > 8:
    for line in open(sys.argv[8]):
        if line.startswith("#") or line.count("\t") < 2:
            continue
        sec, lab, note = line.rstrip("\n").split("\t", 2)
        notes[(sec, lab)] = note
section = ""


def note_for(label):
    return notes.get((section, label), "")

# vals[(impl, scenario, metric)] = [one value per run]
vals = collections.defaultdict(list)
tsc = collections.defaultdict(dict)
early = {}
for line in open(raw):
    f = line.split()
    if len(f) < 4:
        continue
    run, impl, sc, key = f[:4]
    kv = dict(x.split("=", 1) for x in f[4:] if "=" in x)
    if key == "tsc":
        tsc[(run, impl, sc)].update(kv)
    elif key == "early_init":
        early[(run, impl, sc)] = int(kv["cycles"])
    elif key == "reboot":
        vals[(impl, sc, "reboot_ns")].append(int(kv["ns"]))
    elif key == "first_open":
        vals[(impl, sc, "first_open_ns")].append(int(kv["ns"]))
    elif key == "retrieve_all":
        vals[(impl, sc, "retrieve_all_ns")].append(int(kv["ns"]))
    elif key.startswith("scale_"):
        if "median" in kv:
            vals[(impl, sc, key + ":" + kv["N"])].append(int(kv["median"]))
        else:
            vals[(impl, sc, key + ":" + kv["N"])].append(None)
    elif "median" in kv:
        vals[(impl, sc, key + ":median")].append(int(kv["median"]))
        vals[(impl, sc, key + ":p99")].append(int(kv["p99"]))

for (run, impl, sc), t in tsc.items():
    if "stage1" in t and "stage2" in t and "mhz" in t:
        ticks = int(t["stage2"]) - int(t["stage1"])
        vals[(impl, sc, "cycle_ns")].append(int(ticks * 1000 / float(t["mhz"])))
    if "mhz" in t and (run, impl, sc) in early:
        ns = int(early[(run, impl, sc)] * 1000 / float(t["mhz"]))
        vals[(impl, sc, "initcall_early_ns")].append(ns)


def agg(impl, sc, metric):
    v = vals.get((impl, sc, metric), [])
    if not v or None in v:
        return None
    return statistics.median(v), min(v), max(v)


def us(ns, digits=1):
    return f"{ns / 1000:.{digits}f}"


def cell(a, unit_div=1000, digits=1):
    if a is None:
        return "n/a"
    m, lo, hi = a
    d = lambda x: f"{x / unit_div:.{digits}f}"
    return f"{d(m)} ({d(lo)}–{d(hi)})"


def ratio(c, r):
    if c is None or r is None or c[0] == 0:
        return "n/a"
    return f"{r[0] / c[0]:.2f}"


# The machine-readable rows (LUO_BENCH_JSON): section, row, measure, c, rust, unit.
JSON_ROWS = []
JSON_SECTION = {"hot": "ioctl", "p99": "ioctl", "scale": "scaling", "reboot": "reboot",
                "boot": "next-boot", "retrieve": "retrieve-all", "cycle": "cycle"}


def emit(label, c, r, unit_div=1000):
    """One JSON row: medians, in µs (TCG) or guest instructions (icount)."""
    if ICOUNT:
        conv, unit = (lambda a: None if a is None else a[0]), "insns"
    else:
        conv, unit = (lambda a: None if a is None else round(a[0] / 1000, 3)), "us"
    if section == "p99":
        label += " p99"
    JSON_ROWS.append({"section": JSON_SECTION.get(section, section), "row": label,
                      "measure": "icount" if ICOUNT else "tcg",
                      "c": conv(c), "rust": conv(r), "unit": unit})


def parts(sc):
    """kexec:S:F[:M]: sessions, files per session, MiB per file (0: one page)."""
    p = sc.split(":")[1:]
    return p[0], p[1], (p[2] if len(p) > 2 else "0")


def shape(sc):
    s, f, m = parts(sc)
    return f"{s}x{f}" + (f"+{m}MiB" if m != "0" else "")


def row(label, c, r, unit_div=1000, digits=1, note="", key=None):
    emit(key or label, c, r, unit_div)
    note = " ".join(x for x in (note, note_for(label)) if x)
    print(f"| {label} | {cell(c, unit_div, digits)} | {cell(r, unit_div, digits)} | "
          f"{ratio(c, r)} | {note} |")


scen = sorted({k[1] for k in vals if k[1].startswith("kexec:")},
              key=lambda s: tuple(int(x) for x in parts(s)[::-1][:1] + parts(s)[:2]))
scale = sorted({k[1] for k in vals if k[1].startswith("scale:")})


def label(sc):
    s, f, m = parts(sc)
    size = f" of {int(m) // 1024} GiB" if m != "0" and int(m) % 1024 == 0 else \
        (f" of {m} MiB" if m != "0" else "")
    return (f"{s} session{'s' if s != '1' else ''} × {f} file{'s' if f != '1' else ''}"
            f"{size}")


ICOUNT = os.environ.get("LUO_BENCH_MEASURE") == "icount"

if os.environ.get("LUO_BENCH_TITLE", "1") == "1":
    print("# The Rust LUO against the C LUO: benchmark")
    print()
if ICOUNT:
    print("**Measure: icount** (`-icount shift=0,sleep=off`): every time below is guest "
          "instructions (1 ns = 1 instruction; the TSC rows count in the same clock), "
          "deterministic and free of TCG's translation cost.")
    print()
print("Produced by `tools/testing/selftests/liveupdate/lu bench -o "
      "Documentation/liveupdate-rust-bench.md` (harness/bench.sh); the notes column comes "
      "from harness/bench_notes.txt. Timings come from QEMU TCG (no KVM here) and are "
      "noisy: compare the ratios. See Documentation/liveupdate-rust.rst, \"Performance\", "
      "for what is measured and why some rows are above 1.")
print()
print(f"Runs: {runs}, interleaved (odd runs C first, even runs Rust first). "
      f"Each cell: median over the runs (min–max); ratio = Rust median / C median.")
print()
print(f"Host: {cpu}, {nproc} cores. QEMU: {qemu}, `-accel tcg -smp 2 -m {mem}`. "
      f"Kernel: {source}, c-bench and rust-bench configurations (selftest fragments, "
      f"CONFIG_RUST=y, CONFIG_LIVEUPDATE_BENCH=y; they differ only in the LUO choice).")
print()

hot = "kexec:2000:1"
print("### ioctl hot paths (µs per call; 2,000 sessions of one file; 1,000 closes)")
print()
HOT_OPS = ["create_session", "get_name", "preserve_fd", "close_session_1file",
           "retrieve_session", "retrieve_fd", "finish"]
for stat, sec in (("median", "hot"), ("p99", "p99")):
    section = sec
    print(f"| operation | C {stat} | Rust {stat} | Rust/C | |")
    print("|---|---|---|---|---|")
    for op in HOT_OPS:
        row("close (1 file)" if op == "close_session_1file" else op.upper(),
            agg("c", hot, f"{op}:{stat}"), agg("rust", hot, f"{op}:{stat}"), digits=2)
    print()

section = "scale"
for sc in scale:
    n_max = int(sc.split(":")[1])
    print(f"### Scaling (µs per call: median of calls N/2+1..N)")
    print()
    print("| operation, N | C | Rust | Rust/C | |")
    print("|---|---|---|---|---|")
    for op, name in [("scale_create_session", "CREATE_SESSION of the N-th session"),
                     ("scale_preserve_fd", "PRESERVE_FD of the N-th file, one session")]:
        n = 10
        while n <= n_max:
            c = agg("c", sc, f"{op}:{n}")
            r = agg("rust", sc, f"{op}:{n}")
            note = ""
            if c is None and vals.get(("c", sc, f"{op}:{n}")):
                note = "C did not reach N within its time budget"
            row(f"{name}, N={n:,}", c, r, digits=2, note=note)
            n *= 10
    print()

section = "reboot"
print("### Reboot path: liveupdate_reboot() (µs, measured in kernel_kexec())")
print()
print("| hand-over | C | Rust | Rust/C | |")
print("|---|---|---|---|---|")
for sc in scen:
    row(label(sc), agg("c", sc, "reboot_ns"), agg("rust", sc, "reboot_ns"), key=shape(sc))
print()

section = "boot"
print("### Next kernel: early initcall and first open of /dev/liveupdate (µs)")
print()
print("| hand-over | step | C | Rust | Rust/C | |")
print("|---|---|---|---|---|---|")
for sc in scen:
    c_e, r_e = agg("c", sc, "initcall_early_ns"), agg("rust", sc, "initcall_early_ns")
    c_o, r_o = agg("c", sc, "first_open_ns"), agg("rust", sc, "first_open_ns")
    print(f"| {label(sc)} | early initcall | {cell(c_e)} | {cell(r_e)} | "
          f"{ratio(c_e, r_e)} | {note_for(label(sc) + ' / early initcall')} |")
    print(f"| | first open | {cell(c_o)} | {cell(r_o)} | {ratio(c_o, r_o)} | "
          f"{note_for(label(sc) + ' / first open')} |")
    tot = {}
    for impl in ("c", "rust"):
        e = vals.get((impl, sc, "initcall_early_ns"), [])
        o = vals.get((impl, sc, "first_open_ns"), [])
        s = [a + b for a, b in zip(e, o)]
        tot[impl] = (statistics.median(s), min(s), max(s)) if s else None
    print(f"| | **sum** | {cell(tot['c'])} | {cell(tot['rust'])} | "
          f"{ratio(tot['c'], tot['rust'])} | {note_for(label(sc) + ' / sum')} |")
    emit(shape(sc), tot["c"], tot["rust"])
print()

section = "retrieve"
print("### Retrieve-all: every session and file back, first RETRIEVE_SESSION to last "
      "RETRIEVE_FD (µs, guest clock)")
print()
print("| hand-over | C | Rust | Rust/C | |")
print("|---|---|---|---|---|")
for sc in scen:
    row(label(sc), agg("c", sc, "retrieve_all_ns"), agg("rust", sc, "retrieve_all_ns"),
        key=shape(sc))
print()

section = "cycle"
print("### Whole cycle: reboot(KEXEC) to the stage-2 program (ms, guest TSC)")
print()
print("| hand-over | C | Rust | Rust/C | |")
print("|---|---|---|---|---|")
for sc in scen:
    row(label(sc), agg("c", sc, "cycle_ns"), agg("rust", sc, "cycle_ns"),
        unit_div=1000000, digits=0, key=shape(sc))
print()

# The steps of each hand-over, medians, for the blackout chart (LUO_BENCH_PARTS).
if os.environ.get("LUO_BENCH_PARTS"):
    import json
    steps = {"reboot": "reboot_ns", "early": "initcall_early_ns", "open": "first_open_ns",
             "retrieve_all": "retrieve_all_ns"}
    out_parts = {"measure": "icount" if ICOUNT else "tcg", "shapes": {}}
    for sc in scen:
        out_parts["shapes"][shape(sc)] = {
            impl: {k: (None if agg(impl, sc, m) is None else agg(impl, sc, m)[0])
                   for k, m in steps.items()} for impl in ("c", "rust")}
    with open(os.environ["LUO_BENCH_PARTS"], "w") as out:
        json.dump(out_parts, out, indent=1)
        out.write("\n")

if os.environ.get("LUO_BENCH_JSON"):
    import json
    with open(os.environ["LUO_BENCH_JSON"], "w") as out:
        json.dump(JSON_ROWS, out, indent=1)
        out.write("\n")
