#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh [-i IMPLS] [-t REGEX] [-T SECONDS] [-k]
#
# Runs the suite in QEMU (TCG) and streams KTAP, one line per test named
# <impl>/<test> as soon as it ends, each followed by a "# progress:" line,
# the plan after the last result, ending with "N passed, N failed, N
# skipped, N expected failures".
#
#   -i IMPLS   comma-separated build variants to test (default: c,rust);
#              interoperation tests (c-to-rust/..., rust-to-c/...) run when
#              both c and rust are listed; c-7.2 and rust-minrustc add the
#              tests of run_versions.sh (no suite runs on them)
#   -t REGEX   only tests whose full name matches REGEX (grep -E)
#   -T SECONDS timeout of one boot (default 120)
#   -k         keep passing tests' logs too (failing ones are always kept)
#
# A test passes only if its own success marker appears and the kernel log of
# every boot is free of BUG/WARNING/Oops/panic/KASAN/UBSAN/lockdep reports.
# Tests listed in xfail.txt that fail are reported "not ok ... # TODO" and
# counted apart; a listed test that passes is a failure (remove it from the
# list). The pieces: programs.sh (compiling), results.sh (jobs, KTAP),
# checks.sh (kernel log and uAPI checks), fields.sh (HARNESS: lines),
# lint.sh, run_versions.sh.
set -uo pipefail
. "$(dirname "$0")/common.sh"

IMPLS=c,rust
FILTER=.
BOOT_TIMEOUT=120
KEEP=0
while getopts 'i:t:T:kh' opt; do
	case $opt in
	i) IMPLS=$OPTARG ;;
	t) FILTER=$OPTARG ;;
	T) BOOT_TIMEOUT=$OPTARG ;;
	k) KEEP=1 ;;
	*) sed -n '4,17s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done

src=$(luo_src_dir) || die "no kernel source; run: $LUO_TESTS/lu setup"
sel="$src/tools/testing/selftests/liveupdate"
XFAIL="$LUO_TESTS/xfail.txt"
RUN_DIR="$LUO_CACHE/runs/$(date +%Y%m%d-%H%M%S)-$$"
BIN="$RUN_DIR/bin"
mkdir -p "$BIN" "$RUN_DIR/jobs"
# Keep the logs of the last ten runs and lints, newest first by time (a name
# sort put every lint-* after this run, which was then deleted as it started).
# Whole lines, and no symbolic link followed.
ls -1dt "$LUO_CACHE"/runs/*/ 2>/dev/null | grep -vxF "$RUN_DIR/" | tail -n +10 |
	while IFS= read -r d; do
		[ -L "${d%/}" ] || rm -rf -- "$d"
	done


IFS=, read -r -a variants <<<"$IMPLS"
declare -A KDIR
impls=()
for i in "${variants[@]}"; do
	KDIR[$i]=$(luo_build_dir "$i")
	case "$i" in
	# Kernels of run_versions.sh's tests only; a missing minimum-rustc
	# kernel is that test's failure.
	c-7.2) ;;
	rust-minrustc) continue ;;
	*) impls+=("$i") ;;
	esac
	[ -e "${KDIR[$i]}/arch/x86/boot/bzImage" ] ||
		die "no kernel for '$i' in ${KDIR[$i]}; run: $LUO_TESTS/harness/build.sh $i"
done
any="${KDIR[${impls[0]:-${variants[0]}}]}"
hdr="$any/hdr/include"
CPIO="$any/usr/gen_init_cpio"
. "$LUO_HARNESS/vm.sh"
. "$LUO_HARNESS/results.sh"
. "$LUO_HARNESS/checks.sh"
. "$LUO_HARNESS/fields.sh"
. "$LUO_HARNESS/lint.sh"
. "$LUO_HARNESS/programs.sh"

# Debug kernels (lockdep, kmemleak) are several times slower under TCG.
timeout_for() { # impl (VMs running side by side share the CPUs)
	local t=$((BOOT_TIMEOUT * (PARALLEL > 1 ? PARALLEL : 1)))
	case "$1" in
	*-debug|*-kcsan) echo $((t * 4)) ;;
	*) echo "$t" ;;
	esac
}

# Kernel parameters of a variant. KASAN makes the kernel's early memblock
# allocations so large that KHO's default scratch (200% of them, twice) does
# not fit in the VM; the next kernel needs about 250 MiB of scratch for them.
cmdline_for() { # impl
	case "$1" in
	*-debug) echo "kho_scratch=64M,192M,64M" ;;
	esac
}

# ------------------------------------------------------------------- tests --
wanted() { grep -qE -- "$FILTER" <<<"$1"; }

# A single-boot kselftest-harness program, one result per case.
run_single() { # impl program source
	local impl=$1 prog=$2 srcf=$3 d="$RUN_DIR/$1/$2" cases c rc problem line
	cases=$(sed -n -E 's/^TEST(_F)?(_TIMEOUT)?\(([a-z0-9_]+, *)?([a-zA-Z0-9_]+)(, *[0-9]+)?\).*/\4/p' "$srcf")
	local any_wanted=0
	for c in $cases; do wanted "$impl/$prog.$c" && any_wanted=1; done
	[ "$any_wanted" = 1 ] || return 0
	mkdir -p "$d"
	mkcpio "$d/initrd" "/init:$BIN/init" "/test_binary:$BIN/$prog"
	boot "$d" "${KDIR[$impl]}/arch/x86/boot/bzImage" "$d/initrd" \
		"luo_harness=single $(harness_cmdline "$prog") $(cmdline_for "$impl")" \
		"$(timeout_for "$impl")"
	rc=$?
	problem=$(boot_problem "$d" "$rc" "$prog")
	local failed=0
	for c in $cases; do
		wanted "$impl/$prog.$c" || continue
		line=$(tr -d '\r' <"$d/output.log" | grep -E "^(not )?ok [0-9]+ ([a-z0-9_]+\.)?$c( |$)" | tail -n 1)
		if [ -n "$problem" ]; then
			record "$impl/$prog.$c" fail "$problem"; failed=1
		elif [ -z "$line" ]; then
			record "$impl/$prog.$c" fail "no result for this case"; failed=1
		elif [[ "$line" == "not ok"* ]]; then
			record "$impl/$prog.$c" fail "${line#*# }"; failed=1
		elif [[ "$line" == *"# SKIP"* ]]; then
			record "$impl/$prog.$c" skip "${line#*# SKIP}"; failed=1
		else
			# The case's own diagnostics (fuzz seed and call count, fault counts).
			record "$impl/$prog.$c" pass "$(tr -d '\r' <"$d/output.log" |
				sed -n "/^#  RUN .*\.$c \.\.\.\$/,/^# .* OK  .*\.$c\$/p" |
				grep -E '^# ' | grep -vE '^# +(RUN|OK) ' | head -n 4)"
		fi
	done
	logdir "$impl/$prog" "$d"
	[ "$prog" = liveupdate ] && [[ "$impl" == rust* ]] && report_kunit "$impl" "$d" "$problem"
	[ "$failed" = 0 ] && [ "$KEEP" = 0 ] && rm -rf "$d"
}

# A two-kernel test: stage 1 on kernel A, kexec into kernel B for every later
# stage (HARNESS stages=, default 2); the last stage's result counts.
run_kexec() { # name test kernelA kernelB [variant]
	local name=$1 t=$2 ka=$3 kb=$4 v=${5:-} d="$RUN_DIR/$1" rc problem out
	local stages mod ko="" last k initrd extra impl=${1%%/*}
	wanted "$name" || return 0
	if [ ! -x "$BIN/$t" ]; then
		record "$name" fail "no program $t: ${US_BUILD_ERR:-not built}"
		return
	fi
	stages=$(hf "$t" stages "$v" "$impl")
	stages=${stages:-2}
	mod=$(hf "$t" module "$v")
	mkdir -p "$d"
	if [ -n "$mod" ]; then
		ko=$(module_for "${impl%%-to-*}" "$mod") || { record "$name" fail "test module $mod did not build"; return; }
		ko="/$mod.ko:$ko"
	fi
	# One initramfs for every stage: init writes it again (the files of
	# /initrd.list) for the next kexec, so it does not grow with the stages.
	local files=() f
	for f in $(hf "$t" files "$v"); do
		files+=("/$f:$BIN/$f")
	done
	printf '%s\n' /init /test_binary /kernel ${ko:+/$mod.ko} "${files[@]%%:*}" /initrd.list \
		>"$d/initrd.list"
	mkcpio "$d/initrd1" "/init:$BIN/init" "/test_binary:$BIN/$t" $ko "${files[@]}" \
		"/kernel:$kb" "/initrd.list:$d/initrd.list"
	extra="$(harness_cmdline "$t" "$v")"
	[ "$stages" = 2 ] || extra="$extra luo_stages=$stages"
	# A boot that goes quiet for one stage's time is stuck (a one-stage
	# test has one stage's time).
	boot "$d" "$ka" "$d/initrd1" "luo_harness=kexec $extra $(cmdline_for "$impl")" \
		"$(( $(timeout_for "$impl") * (stages > 1 ? stages - 1 : 1) ))" "$(timeout_for "$impl")"
	rc=$?
	problem=$(boot_problem "$d" "$rc" "$t")
	out=$(tr -d '\r' <"$d/output.log")
	last=$stages
	if [ -z "$problem" ]; then
		# A test may kexec by itself; reaching the last stage is what counts.
		# (grep -q ends its pipe early: under pipefail, read logs through <(...).)
		if ! grep -q "LUO-HARNESS: stage $last starting" <<<"$out"; then
			problem="stage $last not reached: $(grep -E 'LUO-HARNESS: (stage [0-9]+ exit=[1-9]|.*failed)' <<<"$out" | head -n 1)"
		elif ! grep -q "LUO-HARNESS: stage $last exit=0" <<<"$out"; then
			problem="stage $last did not succeed: $(grep -E "LUO-HARNESS: (stage $last exit|reboot)" <<<"$out" | tail -n 1)"
		elif ! grep -q "TEST PASSED" <<<"$out"; then
			problem="no 'TEST PASSED' from stage $last"
		elif [ -n "$(hf "$t" log "$v")" ] &&
		     ! grep -qF "$(hf "$t" log "$v")" <(tr -d '\r' <"$d/kernel.log"); then
			problem="no '$(hf "$t" log "$v")' in the kernel log"
		elif [ "$(hf "$t" flb "$v")" != no ]; then
			problem=$(flb_problem "$d/kernel.log")
		fi
	fi
	logdir "$name" "$d"
	if [ -n "$problem" ]; then
		record "$name" fail "$problem"
	else
		# Our own tests' diagnostics: their lines that start with "# " (seeds).
		if [ -n "${HF_FILE[$t]:-}" ]; then
			record "$name" pass "$(grep -E '^# ' <<<"$out" | head -n 20)"
		else
			record "$name" pass
		fi
		[ "$KEEP" = 0 ] && rm -rf "$d"
	fi
}

. "$LUO_HARNESS/run_versions.sh"

# The report streams from here on; the previous run of the same tests says
# how many there are and how long they take.
REPORT_HISTORY="$LUO_CACHE/runs/history-$(printf '%s|%s' "$IMPLS" "$FILTER" | md5sum | cut -c1-12)"
report_begin
# Interrupted: the jobs' VMs go with them; what finished is reported.
trap 'kill $(jobs -p) 2>/dev/null; wait; collect_done all; echo "# interrupted"
      REPORT_HISTORY=; report_end; exit 130' INT TERM
check_uapi
check_lint
check_userspace
# The reporting itself, fed canned results.
if wanted harness/report; then
	if out=$("$LUO_HARNESS/report_test.sh" 2>&1); then
		record harness/report pass
	else
		record harness/report fail "$(head -n 1 <<<"$out")"
	fi
fi
bz() { echo "${KDIR[$1]}/arch/x86/boot/bzImage"; }
prepare_versions
# Test modules, built once per kernel before jobs use them.
for impl in "${impls[@]}"; do
	for t in $OWN_KEXEC; do
		for m in $(printf '%s\n' "${!HF[@]}" | grep "^$t|module" | cut -d'|' -f2); do
			harness_allows "$t" "$impl" && module_for "$impl" "${HF[$t|$m]}" >/dev/null || true
		done
	done
done
for impl in "${impls[@]}"; do
	job run_single "$impl" liveupdate "$sel/liveupdate.c"
	for t in $OWN_SINGLE; do
		harness_allows "$t" "$impl" || continue
		job run_single "$impl" "$t" "$LUO_TESTS/tests/single/$t.c"
	done
	for t in $KEXEC_TESTS $OWN_KEXEC; do
		variants=$(hf "$t" variants | tr , ' ')
		if [ -z "$variants" ]; then
			harness_allows "$t" "$impl" &&
				job run_kexec "$impl/$t" "$t" "$(bz "$impl")" "$(bz "$impl")"
			continue
		fi
		for v in $variants; do
			harness_allows "$t" "$impl" "$v" &&
				job run_kexec "$impl/$t.$v" "$t" "$(bz "$impl")" "$(bz "$impl")" "$v"
		done
	done
done
if [ -n "${KDIR[c]:-}" ] && [ -n "${KDIR[rust]:-}" ]; then
	for t in $KEXEC_TESTS $OWN_KEXEC; do
		vs=$(hf "$t" variants | tr , ' ')
		for v in ${vs:--}; do
			[ "$v" != - ] || v=
			n=$t${v:+.$v}
			harness_allows "$t" c-to-rust "$v" &&
				job run_kexec "c-to-rust/$n" "$t" "$(bz c)" "$(bz rust)" "$v"
			harness_allows "$t" rust-to-c "$v" &&
				job run_kexec "rust-to-c/$n" "$t" "$(bz rust)" "$(bz c)" "$v"
		done
	done
fi
run_versions
collect_jobs
report_end

