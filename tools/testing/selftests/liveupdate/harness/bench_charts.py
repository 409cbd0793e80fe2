#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# bench_charts.py ROWS PARTS OUT-PREFIX
#
# The benchmark's charts, as SVG, drawn with Debian's matplotlib
# (python3-matplotlib, installed by set-up for lu bench):
#   OUT-PREFIX-scaling.svg   per-call µs (TCG medians) against N, log-log, for
#                            CREATE_SESSION and PRESERVE_FD, C and Rust;
#   OUT-PREFIX-blackout.svg  per hand-over shape, one stacked bar per
#                            implementation: reboot, early initcall, first
#                            open, retrieve-all, in guest instructions
#                            (icount), each shape on its own scale.
# ROWS is bench.sh's JSON (bench.json), PARTS bench_table.py's per-step
# medians (LUO_BENCH_PARTS) of the icount run (or of the TCG one without it).
# Prints the files it wrote.
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

rows_path, parts_path, prefix = sys.argv[1:4]
rows = json.load(open(rows_path))
parts = json.load(open(parts_path))
plt.rcParams.update({"font.size": 10, "svg.fonttype": "none", "figure.dpi": 100})
COLORS = {"c": "#1f77b4", "rust": "#d95f02"}
written = []

# Scaling: per-call cost against N.
measure = "tcg" if any(r["section"] == "scaling" and r["measure"] == "tcg" for r in rows) \
    else "icount"
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=False)
for ax, (op, title) in zip(axes, [("CREATE_SESSION", "CREATE_SESSION of the N-th session"),
                                   ("PRESERVE_FD", "PRESERVE_FD of the N-th file")]):
    pts = {"c": [], "rust": []}
    for r in rows:
        if r["section"] != "scaling" or r["measure"] != measure or not r["row"].startswith(op):
            continue
        n = int(re.search(r"N=([\d,]+)", r["row"]).group(1).replace(",", ""))
        for impl in pts:
            if r[impl] is not None:
                pts[impl].append((n, r[impl]))
    for impl, label in (("c", "C"), ("rust", "Rust")):
        p = sorted(pts[impl])
        if p:
            ax.plot([x for x, _ in p], [y for _, y in p], marker="o", color=COLORS[impl],
                    label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("N (calls so far)")
    ax.set_ylabel("µs per call" if measure == "tcg" else "instructions per call")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
fig.suptitle("Per-call cost against N (median of calls N/2+1..N, "
             + ("QEMU TCG" if measure == "tcg" else "icount") + ")", fontsize=10)
fig.tight_layout()
out = f"{prefix}-scaling.svg"
fig.savefig(out, format="svg", metadata={"Date": None})
written.append(out)
plt.close(fig)

# Blackout: the steps from reboot to every fd back, per shape.
STEPS = [("reboot", "reboot"), ("early", "early initcall"), ("open", "first open"),
         ("retrieve_all", "retrieve-all")]
STEP_COLORS = ["#4c72b0", "#55a868", "#c44e52", "#8172b2"]
shapes = list(parts["shapes"])
fig, axes = plt.subplots(1, len(shapes), figsize=(1.6 * len(shapes) + 1, 3.6))
if len(shapes) == 1:
    axes = [axes]
unit = "instructions" if parts["measure"] == "icount" else "µs"
div = 1 if parts["measure"] == "icount" else 1000
for ax, shape in zip(axes, shapes):
    for i, impl in enumerate(("c", "rust")):
        bottom = 0
        for (key, _), color in zip(STEPS, STEP_COLORS):
            v = (parts["shapes"][shape][impl].get(key) or 0) / div
            ax.bar(i, v, bottom=bottom, color=color, width=0.7)
            bottom += v
    ax.set_xticks([0, 1], ["C", "Rust"])
    s, rest = shape.split("x", 1)
    f, _, mib = rest.partition("+")
    ax.set_title(f"{s} × {f}" + (f"\n{mib}" if mib else ""), fontsize=9)
    # 35k, 1.5M: no offset text over the title.
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.tick_params(axis="y", labelsize=8)
axes[0].set_ylabel(f"{unit} (each shape its own scale)")
fig.legend([plt.Rectangle((0, 0), 1, 1, color=c) for c in STEP_COLORS],
           [name for _, name in STEPS], loc="lower center", ncol=4, frameon=False)
fig.suptitle("Blackout by step, sessions x files per hand-over ("
             + ("icount: guest instructions" if parts["measure"] == "icount" else "QEMU TCG")
             + ")", fontsize=10)
fig.tight_layout(rect=(0, 0.08, 1, 1))
out = f"{prefix}-blackout.svg"
fig.savefig(out, format="svg", metadata={"Date": None})
written.append(out)
plt.close(fig)
print("\n".join(written))
