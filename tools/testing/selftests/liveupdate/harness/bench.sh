#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh [-r RUNS] [-o FILE] [-s SCENARIOS] [-N SCALE_MAX] [-m MEASURES] [-p]
#          [-R DIR]
#
# The benchmark: the C and the Rust LUO side by side. Builds c-bench and
# rust-bench (config.bench: the selftest fragments plus the reboot-time hook,
# nothing else), then RUNS times (default 3), alternating which
# implementation goes first, boots each with the same QEMU settings and runs
# tests/bench/luo_bench.c in the guest:
#
#   kexec:S:F  S sessions of F one-page memfds, across a real kexec into the
#              same kernel: ioctl times, liveupdate_reboot() time and the next
#              kernel's early initcall (kernel log, CONFIG_LIVEUPDATE_BENCH),
#              its first open of /dev/liveupdate, whole cycle (TSC)
#   kexec:S:F:M  the same with memfds of M MiB, a word written in every page
#              (the default list has kexec:1:1:1024: one 1 GiB memfd, the
#              LUO's share of a cycle next to memfd's own work)
#   scale:N    the time of the n-th CREATE_SESSION and PRESERVE_FD up to N
#
# -m MEASURES (default tcg,icount): tcg is the emulated CPU's time; icount runs
# the guests with -icount shift=0,sleep=off, where every time is guest
# instructions (1 ns = 1 instruction), deterministic: one run is enough.
#
# -p profiles instead: one icount run of the kexec scenarios with a QEMU plugin
# (harness/prof.c) that counts every instruction executed in liveupdate_reboot()
# and in the next kernel's early initcall and first open of /dev/liveupdate, and
# the blocks QEMU translated meanwhile (TCG's cost of code run for the first
# time), and tables per scenario of where they go, function by function, C
# next to Rust: the instructions executed and the blocks translated, with the
# code pages those span (harness/prof_table.py; the guests boot with nokaslr so
# that addresses are the vmlinux's). With -m tcg the profiled run keeps TCG's
# own clock instead: timer interrupts then land where they do in the tcg rows,
# so the blocks translated show which window pays for an interrupt path's
# first run (it varies from run to run).
#
# Writes the raw numbers to $LUO_CACHE/bench/<date>/raw-<measure>.txt, the
# markdown tables to FILE (default: stdout) and, with -o FILE.md, the same
# rows as JSON to FILE.json and two SVG charts (harness/bench_charts.py,
# Debian's matplotlib) to FILE-scaling.svg and FILE-blackout.svg, linked
# from FILE.md. -R DIR renders tables, JSON and charts again from the raw
# numbers of an earlier run's directory, with no run. Not a pass/fail test.
set -uo pipefail
. "$(dirname "$0")/common.sh"

RUNS=3
OUT=
SCENARIOS="kexec:1:1 kexec:100:1 kexec:2000:1 kexec:1:500 kexec:1:5000 kexec:1:1:1024"
SCALE_MAX=100000
MEASURES=tcg,icount
MEASURES_SET=
PROFILE=
RENDER=
while getopts 'r:o:s:N:m:pR:h' opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	s) SCENARIOS=$OPTARG ;;
	N) SCALE_MAX=$OPTARG ;;
	m) MEASURES=$OPTARG MEASURES_SET=1 ;;
	p) PROFILE=1 ;;
	R) RENDER=$OPTARG ;;
	*) sed -n '4,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
for m in ${MEASURES//,/ }; do
	case "$m" in
	tcg|icount) ;;
	*) die "-m: tcg, icount or both (tcg,icount)" ;;
	esac
done

[ -z "$PROFILE" ] || [ -z "$RENDER" ] || die "-p and -R: -p runs the guests, -R renders an earlier run"

src=$(luo_src_dir) || die "no kernel source; run: $LUO_TESTS/lu setup"
[ -n "$RENDER" ] || "$LUO_HARNESS/build.sh" c-bench rust-bench >/dev/null || die "build failed"
declare -A KDIR=([c]=$(luo_build_dir c-bench) [rust]=$(luo_build_dir rust-bench))
hdr="${KDIR[rust]}/hdr/include"
CPIO="${KDIR[rust]}/usr/gen_init_cpio"

DIR="$LUO_CACHE/bench/$(date +%Y%m%d-%H%M%S)"
if [ -n "$RENDER" ]; then
	DIR=$(cd "$RENDER" && pwd) || die "-R: no directory $RENDER"
	MEASURES=$(for m in tcg icount; do [ -s "$DIR/raw-$m.txt" ] && echo "$m"; done | paste -sd,)
	[ -n "$MEASURES" ] || die "-R: no raw-tcg.txt or raw-icount.txt in $DIR"
fi
BIN="$DIR/bin"
mkdir -p "$BIN"
# Quiet console (loglevel=6 keeps the KERN_NOTICE benchmark lines), 2 GiB so
# that 100,000 files fit.
VM_MEM=2G
VM_APPEND="console=ttyS0 loglevel=6 liveupdate=on panic=-1 oops=panic"
. "$LUO_HARNESS/vm.sh"

# The functions whose instructions -p counts: the early initcall (with the
# benchmark's timing, the same on both) and misc_open, which calls the open.
declare -A EARLY=([c]=liveupdate_early_init_bench [rust]=luo_early_init)
declare -A WINDOWS=()
# window_addrs VMLINUX FUNC: "ENTRY RET:RET..." (returns are jumps to the
# return thunk in these kernels)
window_addrs() {
	local at size
	read -r at size < <(nm -S "$1" | awk -v f="$2" '$4 == f && $2 ~ /^[0-9a-f]+$/ { print $1, $2; exit }')
	[ -n "$at" ] || die "no function $2 in $1"
	objdump -d --no-show-raw-insn --start-address="0x$at" \
		--stop-address="$(printf '0x%x' $((0x$at + 0x$size)))" "$1" |
		awk -v at="$at" '/\tret|jmp +[0-9a-f]+ <(__pi_)?__x86_return_thunk>/ {
			sub(":", "", $1); r = r (r ? ":" : "") $1 }
			END { if (!r) exit 1; print at, r }'
}
if [ -n "$PROFILE" ]; then
	[ -n "$MEASURES_SET" ] || MEASURES=icount
	case $MEASURES in
	tcg|icount) ;;
	*) die "-p: one measure, -m icount (the default) or -m tcg" ;;
	esac
	RUNS=1
	VM_APPEND="nokaslr $VM_APPEND"
	gcc -O2 -Wall -Werror -shared -fPIC -fvisibility=hidden -o "$BIN/prof.so" \
		"$LUO_HARNESS/prof.c" || die "cannot build the profiling plugin"
	for impl in c rust; do
		vmlinux="${KDIR[$impl]}/vmlinux"
		read -r e_at e_rets < <(window_addrs "$vmlinux" "${EARLY[$impl]}") ||
			die "no returns found in ${EARLY[$impl]}"
		read -r o_at o_rets < <(window_addrs "$vmlinux" misc_open) ||
			die "no returns found in misc_open"
		read -r r_at r_rets < <(window_addrs "$vmlinux" liveupdate_reboot) ||
			die "no returns found in liveupdate_reboot"
		WINDOWS[$impl]="start=$e_at:$o_at:$r_at,stop=$e_rets:$o_rets:$r_rets"
	done
fi

gcc -Os -s -Wall -Werror -static -nostdinc -nostdlib -fno-asynchronous-unwind-tables \
	-fno-ident -fno-stack-protector -I "$hdr" -I "$src/tools/include/nolibc" \
	-o "$BIN/init" "$LUO_HARNESS/init.c" || die "cannot build init"
gcc -static -O2 -Wall -Werror -I "$hdr" -o "$BIN/luo_bench" \
	"$LUO_TESTS/tests/bench/luo_bench.c" || die "cannot build luo_bench"

# One VM: prints "run impl scenario key value..." lines to $RAW.
one() { # run impl scenario
	local run=$1 impl=$2 sc=$3 d="$DIR/$MEASURE/$1/$2/${3//:/_}" kern rc extra
	kern="${KDIR[$impl]}/arch/x86/boot/bzImage"
	mkdir -p "$d"
	case "$sc" in
	kexec:*)
		extra="luo_harness=kexec luo_bench=$sc"
		[ "$sc" = kexec:2000:1 ] && extra="$extra luo_bench_close=1000"
		# The files init packs again for the next stage (not initrd.list:
		# mkcpio writes its own list there).
		printf '%s\n' /init /test_binary /kernel /initrd.list >"$d/next.list"
		mkcpio "$d/initrd" "/init:$BIN/init" "/test_binary:$BIN/luo_bench" \
			"/kernel:$kern" "/initrd.list:$d/next.list"
		;;
	scale:*)
		extra="luo_harness=single luo_bench=$sc"
		mkcpio "$d/initrd" "/init:$BIN/init" "/test_binary:$BIN/luo_bench"
		;;
	esac
	VM_PLUGIN=
	if [ -n "$PROFILE" ]; then
		VM_PLUGIN="$BIN/prof.so,${WINDOWS[$impl]},out=$d/prof.txt"
	fi
	boot "$d" "$kern" "$d/initrd" "$extra" 600
	rc=$?
	if [ "$rc" != 0 ] || ! grep -q "BENCH TEST PASSED" <(tr -d '\r' <"$d/output.log"); then
		msg "run $run $impl $sc failed (rc $rc); logs in $d"
		tr -d '\r' <"$d/output.log" | grep -E 'BENCH FAIL|LUO-HARNESS' | tail -n 3 >&2
		return 1
	fi
	{
		tr -d '\r' <"$d/output.log" | sed -n 's/^BENCH \([a-z_0-9]*\) \(.*\)/\1 \2/p' |
			grep -v '^TEST' | sed "s|^|$run $impl $sc |"
		tr -d '\r' <"$d/kernel.log" |
			sed -n 's/.*liveupdate-bench: reboot \([0-9]*\) ns err 0.*/reboot ns=\1/p' |
			sed "s|^|$run $impl $sc |"
		# The early initcall of the kernel that received the hand-over (the last boot).
		tr -d '\r' <"$d/kernel.log" |
			sed -n 's/.*liveupdate-bench: early_init \([0-9]*\) cycles.*/early_init cycles=\1/p' |
			tail -n 1 | sed "s|^|$run $impl $sc |"
	} >>"$RAW"
	msg "run $run: $impl $sc done"
}

table() { # measure runs first
	LUO_BENCH_MEASURE=$1 LUO_BENCH_TITLE=$3 LUO_BENCH_JSON="$DIR/rows-$1.json" \
	LUO_BENCH_PARTS="$DIR/parts-$1.json" \
	python3 "$LUO_HARNESS/bench_table.py" "$DIR/raw-$1.txt" "$2" \
		"$(qemu-system-x86_64 --version | head -n 1)" \
		"$(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
		"$(nproc)" "$VM_MEM" "$(luo_src_dir | xargs basename)" \
		"$LUO_HARNESS/bench_notes.txt"
}

# prof_tables: the -p tables of every kexec scenario, to $DIR/prof.md.
prof_tables() {
	local sc d
	: >"$DIR/prof.md"
	for sc in $SCENARIOS; do
		[[ "$sc" == kexec:* ]] || continue
		d="$DIR/$MEASURE/1/%s/${sc//:/_}/prof.txt"
		# shellcheck disable=SC2059
		python3 "$LUO_HARNESS/prof_table.py" "$sc" \
			"${KDIR[c]}/vmlinux" "$(printf "$d" c)" "${EARLY[c]}" \
			"${KDIR[rust]}/vmlinux" "$(printf "$d" rust)" "${EARLY[rust]}" \
			"$MEASURE" >>"$DIR/prof.md" || return 1
	done
}

first=1
: >"$DIR/table.md"
all="$SCENARIOS scale:$SCALE_MAX"
[ -z "$PROFILE" ] || all=$SCENARIOS
for MEASURE in ${MEASURES//,/ }; do
	runs=$RUNS
	VM_ICOUNT=
	if [ "$MEASURE" = icount ]; then
		runs=1
		VM_ICOUNT=1
	fi
	RAW="$DIR/raw-$MEASURE.txt"
	t0=$SECONDS
	if [ -n "$RENDER" ]; then
		runs=$(awk '{ print $1 }' "$RAW" | sort -u | wc -l)
		table "$MEASURE" "$runs" "$first" >>"$DIR/table.md" || die "table failed"
		first=0
		continue
	fi
	for run in $(seq 1 "$runs"); do
		if [ $((run % 2)) = 1 ]; then order="c rust"; else order="rust c"; fi
		for sc in $all; do
			[ -z "$PROFILE" ] || [[ "$sc" == kexec:* ]] || continue
			for impl in $order; do
				one "$run" "$impl" "$sc" || die "benchmark run failed"
			done
		done
	done
	msg "$MEASURE runs done in $((SECONDS - t0)) s; raw numbers: $RAW"
	if [ -n "$PROFILE" ]; then
		prof_tables || die "profile tables failed"
		if [ -n "$OUT" ]; then
			cp "$DIR/prof.md" "$OUT"
			msg "profile written to $OUT"
		else
			cat "$DIR/prof.md"
		fi
		exit 0
	fi
	table "$MEASURE" "$runs" "$first" >>"$DIR/table.md" || die "table failed"
	first=0
done
python3 -c 'import json, sys; print(json.dumps([r for f in sys.argv[1:] for r in json.load(open(f))], indent=1))' \
	"$DIR"/rows-*.json >"$DIR/bench.json" || die "JSON failed"
# The charts (with -o FILE.md: beside it, linked from it).
parts="$DIR/parts-icount.json"
[ -s "$parts" ] || parts="$DIR/parts-tcg.json"
/usr/bin/python3 "$LUO_HARNESS/bench_charts.py" "$DIR/bench.json" "$parts" "$DIR/chart" \
	>/dev/null || die "charts failed (is python3-matplotlib installed? lu bench installs it)"
if [ -n "$OUT" ] && [[ "$OUT" == *.md ]]; then
	base=$(basename "${OUT%.md}")
	{
		echo "### Charts"
		echo
		echo "![Per-call cost against N: CREATE_SESSION and PRESERVE_FD, C and Rust]($base-scaling.svg)"
		echo
		echo "![Blackout by step per hand-over: reboot, early initcall, first open, retrieve-all]($base-blackout.svg)"
		echo
	} >>"$DIR/table.md"
	cp "$DIR/chart-scaling.svg" "${OUT%.md}-scaling.svg" &&
		cp "$DIR/chart-blackout.svg" "${OUT%.md}-blackout.svg" || die "cannot write the charts beside $OUT"
fi
if [ -n "$OUT" ]; then
	cp "$DIR/table.md" "$OUT" || die "cannot write $OUT"
	[[ "$OUT" != *.md ]] || cp "$DIR/bench.json" "${OUT%.md}.json" || die "cannot write ${OUT%.md}.json"
	msg "table written to $OUT (with -o FILE.md, the rows as JSON in FILE.json and the charts in FILE-scaling.svg and FILE-blackout.svg)"
else
	cat "$DIR/table.md"
fi
