#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh [-i IMPLS] [-t REGEX] [-T SECONDS] [-k]
#
# Runs the suite in QEMU (TCG) and prints KTAP, one line per test named
# <impl>/<test>, ending with "N passed, N failed, N skipped".
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
# not counted as failures; a listed test that passes is a failure (remove it
# from the list).
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
	*) sed -n '4,20s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done

src=$(luo_src_dir) || die "no kernel source; run: $LUO_TESTS/lu setup"
sel="$src/tools/testing/selftests/liveupdate"
XFAIL="$LUO_TESTS/xfail.txt"
RUN_DIR="$LUO_CACHE/runs/$(date +%Y%m%d-%H%M%S)-$$"
BIN="$RUN_DIR/bin"
mkdir -p "$BIN" "$RUN_DIR/jobs"
# Keep the logs of the last ten runs.
ls -1d "$LUO_CACHE"/runs/*/ 2>/dev/null | sort | head -n -10 | xargs -r rm -rf

# Kernel log lines that fail a test whatever its own verdict.
SPLAT='BUG:|WARNING:|Oops|Kernel panic|KASAN|UBSAN|INFO: possible|DEBUG_LOCKS_WARN_ON|turning off the locking correctness validator|general protection fault|kernel BUG|Call Trace:'

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

# ---------------------------------------------------------------- programs --
NOLIBC_CFLAGS=(-static -nostdinc -nostdlib -fno-asynchronous-unwind-tables
	       -fno-ident -fno-stack-protector -I "$hdr"
	       -I "$src/tools/include/nolibc")
cc_or_die() {
	"$@" 2>"$RUN_DIR/cc.log" || { cat "$RUN_DIR/cc.log" >&2; die "compile failed: $*"; }
}
cc_or_die gcc -Os -s -Wall -Werror "${NOLIBC_CFLAGS[@]}" -o "$BIN/init" "$LUO_HARNESS/init.c"
cc_or_die gcc -static -O2 -Wall -I "$hdr" -I "$sel/lib/include" \
	-o "$BIN/liveupdate" "$sel/liveupdate.c" "$sel/lib/lu_utils.c"
KEXEC_TESTS="luo_kexec_simple luo_multi_session luo_stress_files luo_stress_sessions"
for t in $KEXEC_TESTS; do
	# Built exactly as upstream's vmtest.sh builds them.
	cc_or_die gcc -O2 "${NOLIBC_CFLAGS[@]}" -I "$sel/lib/include" \
		-o "$BIN/$t" "$sel/$t.c" "$sel/lib/lu_utils.c"
done
# This project's own tests: tests/kexec/ (two kernels), tests/single/ (one).
OWN_KEXEC="" OWN_SINGLE=""
for t in "$LUO_TESTS"/tests/kexec/*.c "$LUO_TESTS"/tests/single/*.c; do
	[ -e "$t" ] || continue
	n=$(basename "$t" .c)
	cc_or_die gcc -static -O2 -Wall -Werror -I "$hdr" -I "$sel/lib/include" -I "$sel/.." \
		-o "$BIN/$n" "$t" "$sel/lib/lu_utils.c"
	case "$t" in
	*/kexec/*) OWN_KEXEC="$OWN_KEXEC $n" ;;
	*) OWN_SINGLE="$OWN_SINGLE $n" ;;
	esac
done

# ------------------------------------------------------------------ results --
declare -a R_NAME R_STATUS R_MSG
declare -A LOGDIR
# Inside a job (RESULTS names its file) results and log directories go to
# that file; the main shell reads them back in job order (collect_jobs).
RESULTS=
record() { # name pass|fail|skip message
	if [ -n "$RESULTS" ]; then
		printf 'R\t%s\t%s\t%s\n' "$1" "$2" "$(printf '%s' "${3:-}" | base64 -w0)" >>"$RESULTS"
		return
	fi
	R_NAME+=("$1"); R_STATUS+=("$2"); R_MSG+=("${3:-}")
}
logdir() { # key dir
	if [ -n "$RESULTS" ]; then
		printf 'L\t%s\t%s\n' "$1" "$2" >>"$RESULTS"
		return
	fi
	LOGDIR[$1]=$2
}

# Tests run as jobs, PARALLEL at once (VMs of their own; default: one per CPU),
# each in a subshell that kills its VM if it is interrupted.
PARALLEL=${PARALLEL:-$(nproc)}
JOB_N=0
job() { # function args...
	local f
	JOB_N=$((JOB_N + 1))
	f=$(printf '%s/jobs/%05d' "$RUN_DIR" "$JOB_N")
	if [ "$PARALLEL" -le 1 ]; then
		"$@"
		return
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do
		wait -n || true
	done
	: >"$f"
	( RESULTS=$f
	  trap cleanup EXIT
	  trap 'cleanup; exit 130' INT TERM
	  "$@" ) &
}
collect_jobs() {
	local f kind a b c
	wait
	for f in "$RUN_DIR"/jobs/*; do
		[ -e "$f" ] || continue
		while IFS=$'\t' read -r kind a b c; do
			case "$kind" in
			R) R_NAME+=("$a"); R_STATUS+=("$b"); R_MSG+=("$(base64 -d <<<"$c")") ;;
			L) LOGDIR[$a]=$b ;;
			esac
		done <"$f"
	done
}

# Prints diagnostics of a failed boot.
show_logs() { # dir
	local d=$1
	echo "# kernel log: $d/kernel.log (last 40 lines)"
	tail -n 40 "$d/kernel.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
	echo "# test output: $d/output.log (last 15 lines)"
	tail -n 15 "$d/output.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
}

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

# Checks a finished boot; prints the reason it failed, if any.
boot_problem() { # dir rc [test]
	local d=$1 rc=$2 t=${3:-} splat strip=cat
	if [ "$rc" = 124 ]; then
		echo "VM timed out"
		return
	fi
	# Tests that make allocations fail on purpose (HARNESS: warn_alloc=ok) see
	# the allocator's own failure reports, stack dump included; only those
	# reports are skipped.
	if [ -n "$t" ] && [ "$(hf "$t" warn_alloc)" = ok ]; then
		strip=strip_warn_alloc
	fi
	splat=$(tr -d '\r' <"$d/kernel.log" | $strip | grep -m 1 -E "$SPLAT")
	if [ -n "$splat" ]; then
		echo "kernel log: ${splat:0:160}"
		return
	fi
	[ "$rc" = 0 ] || echo "qemu exited with $rc: $(head -c 200 "$d/qemu.log")"
}

# Drops warn_alloc() reports ("vmalloc error: ..." or "... page allocation
# failure: ...", up to the end of their stack dump) from a kernel log.
strip_warn_alloc() {
	awk '/(vmalloc error: |page allocation failure: )/ { skip = 1; next }
	     skip && /^ <\/TASK>/ { skip = 0; next }
	     !skip'
}

# ------------------------------------------------------------------- tests --
# The repository's uAPI header must be ABI-identical to the tree's, for 64-bit
# and 32-bit (compat) user space alike.
check_uapi() {
	local name=uapi/liveupdate.h-identical why="" m
	wanted "$name" || return 0
	for m in -m64 -m32; do
		if ! gcc $m -S -I "$hdr" -o "$RUN_DIR/uapi_tree$m.s" "$LUO_HARNESS/uapi_dump.c" ||
		   ! gcc $m -S -I "$LUO_REPO/uapi" -I "$hdr" -o "$RUN_DIR/uapi_ours$m.s" \
			"$LUO_HARNESS/uapi_dump.c"; then
			why="cannot compile uapi_dump.c ($m)"
			break
		fi
		grep -E '^\s+\.(quad|long)' "$RUN_DIR/uapi_tree$m.s" >"$RUN_DIR/uapi_tree$m.txt"
		grep -E '^\s+\.(quad|long)' "$RUN_DIR/uapi_ours$m.s" >"$RUN_DIR/uapi_ours$m.txt"
		if [ "$(wc -l <"$RUN_DIR/uapi_tree$m.txt")" -lt 50 ]; then
			why="no facts found in the $m assembly"
			break
		fi
		if ! cmp -s "$RUN_DIR/uapi_tree$m.txt" "$RUN_DIR/uapi_ours$m.txt"; then
			why="differs from the tree's header for $m (see $RUN_DIR/uapi_*$m.txt)"
			break
		fi
	done
	if [ -n "$why" ]; then record "$name" fail "$why"; else record "$name" pass; fi
}

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

# The Rust LUO's KUnit suites (liveupdate_rust_*) run at every boot; their KTAP
# is read from the kernel log of the liveupdate program's boot.
report_kunit() { # impl dir boot-problem
	local impl=$1 d=$2 problem=$3 n=0 name st
	wanted "$impl/kunit." || return 0
	while read -r name st; do
		n=$((n + 1))
		logdir "$impl/kunit.${name%.*}" "$d"
		if [ -n "$problem" ]; then
			record "$impl/kunit.$name" fail "$problem"
		elif [ "$st" = ok ]; then
			record "$impl/kunit.$name" pass
		else
			record "$impl/kunit.$name" fail "KUnit case failed (see kernel log)"
		fi
	done < <(tr -d '\r' <"$d/kernel.log" | awk '
		/# Subtest: liveupdate_rust_/ { suite = $NF; next }
		suite != "" && /^[ \t]+(not )?ok [0-9]+ / {
			st = ($1 == "not") ? "fail" : "ok"
			c = ($1 == "not") ? $4 : $3
			print suite "." c, st
			next
		}
		suite != "" && /^(not )?ok [0-9]+ / { suite = "" }')
	[ "$n" -gt 0 ] || record "$impl/kunit" fail "no liveupdate_rust_* KUnit suite in the kernel log"
}

# lib/tests/liveupdate.c's three FLBs must cross every two-kernel test: preserved
# in stage 1, found with the right data in stage 2 and finished there.
flb_problem() { # kernel.log
	local log i what
	log=$(tr -d '\r' <"$1")
	if grep -q "liveupdate test: .*ERROR" <<<"$log"; then
		grep -m 1 "liveupdate test: .*ERROR" <<<"$log"
		return
	fi
	for i in 0 1 2; do
		for what in "preserve was triggered" "found flb data from the previous boot" \
			    "finish was triggered"; do
			grep -q "liveupdate-test-flb-v$i: $what" <<<"$log" ||
				{ echo "FLB liveupdate-test-flb-v$i: no '$what' in the kernel log"; return; }
		done
	done
}

# The test module NAME built for a variant's kernel (tests/modules/), once.
declare -A MODULE_KO
module_for() { # variant name: prints the .ko
	local v=$1 m=$2 d="$RUN_DIR/modules/$1"
	if [ -z "${MODULE_KO[$v/$m]:-}" ]; then
		mkdir -p "$d"
		cp "$LUO_TESTS"/tests/modules/* "$LUO_REPO/luo_test.h" "$d/"
		( luo_use_toolchain "$v"
		  luo_make "$(luo_variant_src "$v")" "${KDIR[$v]}" M="$d" modules ) >"$d/build.log" 2>&1 ||
			{ echo "module $m failed to build for $v (see $d/build.log)" >&2; return 1; }
		MODULE_KO[$v/$m]="$d/$m.ko"
	fi
	echo "${MODULE_KO[$v/$m]}"
}

# A two-kernel test: stage 1 on kernel A, kexec into kernel B for every later
# stage (HARNESS stages=, default 2); the last stage's result counts.
run_kexec() { # name test kernelA kernelB [variant]
	local name=$1 t=$2 ka=$3 kb=$4 v=${5:-} d="$RUN_DIR/$1" rc problem out
	local stages mod ko="" last k initrd extra impl=${1%%/*}
	wanted "$name" || return 0
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
	printf '%s\n' /init /test_binary /kernel ${ko:+/$mod.ko} /initrd.list >"$d/initrd.list"
	mkcpio "$d/initrd1" "/init:$BIN/init" "/test_binary:$BIN/$t" $ko \
		"/kernel:$kb" "/initrd.list:$d/initrd.list"
	extra="$(harness_cmdline "$t" "$v")"
	[ "$stages" = 2 ] || extra="$extra luo_stages=$stages"
	# A boot that goes quiet for one stage's time is stuck.
	boot "$d" "$ka" "$d/initrd1" "luo_harness=kexec $extra $(cmdline_for "$impl")" \
		"$(( $(timeout_for "$impl") * (stages - 1) ))" "$(timeout_for "$impl")"
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

# Own tests describe how they run in a comment line "HARNESS: key=value ..."
# (a value with spaces in double quotes), parsed once into HF[<test>|<key>]:
#   impls=a,b       implementations (and variants: c-to-rust, ...) it runs on;
#                   a -debug variant runs what its implementation runs
#   variants=x,y    run once per variant, named <test>.<variant>; %v in
#                   cmdline= is replaced by the variant's name
#   cmdline=...     added to the kernel command line
#   stages=N        stages of a two-kernel test (default 2)
#   module=NAME     tests/modules/NAME.ko, built for the kernel, in /NAME.ko
#   warn_alloc=ok   allocation-failure reports allowed in the kernel log
#   log="text"      a line the kernel log must contain
#   flb=no          no FLB check
# key.<variant>=value sets key for one variant only (impls., cmdline., stages.,
# module.), key@<impl>=value for one implementation (a -debug variant first
# looks for its own name, then its implementation's).
declare -A HF HF_FILE
harness_parse() { # test file
	local t=$1 line key
	HF_FILE[$t]=$2
	line=$(sed -n 's/.*HARNESS: //p' "$2" | tr '\n' ' ')
	while [[ $line =~ ^[[:space:]]*([a-z_]+(\.[a-z0-9_]+)?(@[a-z0-9.-]+)?)=(\"([^\"]*)\"|([^[:space:]\"]*))(.*)$ ]]; do
		key=${BASH_REMATCH[1]}
		HF[$t|$key]=${BASH_REMATCH[5]}${BASH_REMATCH[6]}
		line=${BASH_REMATCH[7]}
	done
}
for f in "$LUO_TESTS"/tests/kexec/*.c "$LUO_TESTS"/tests/single/*.c; do
	[ -e "$f" ] && harness_parse "$(basename "$f" .c)" "$f"
done
# The implementation a checking variant (-debug, -kcsan) is built from.
base_impl() { # impl
	case "$1" in
	*-debug) echo "${1%-debug}" ;;
	*-kcsan) echo "${1%-kcsan}" ;;
	*) echo "$1" ;;
	esac
}
# A HARNESS field of a test, for one of its variants and one implementation
# if given (the most specific setting wins), empty if unset.
hf() { # test key [variant] [impl]
	local k v=${3:-} i=${4:-} b
	b=$(base_impl "$i")
	for k in ${v:+$2.$v@$i} ${v:+$2.$v@$b} ${i:+$2@$i} ${i:+$2@$b} ${v:+$2.$v} $2; do
		case "$k" in *@) continue ;; esac
		if [ -n "${HF[$1|$k]+x}" ]; then
			printf '%s' "${HF[$1|$k]}"
			return
		fi
	done
}
harness_allows() { # test impl-or-mode [variant]
	local impls
	impls=$(hf "$1" impls "${3:-}")
	# A -debug (or -kcsan) variant runs what its implementation runs.
	[ -z "$impls" ] || [[ ",$impls," == *",$2,"* ]] || [[ ",$impls," == *",$(base_impl "$2"),"* ]]
}
harness_cmdline() { # test [variant]
	local c
	c=$(hf "$1" cmdline "${2:-}")
	printf '%s' "${c//%v/${2:-}}"
}

# Lints of our sources: rustfmt, clippy (a CLIPPY=1 build of our directory) and
# checkpatch, each its own test.
check_lint() {
	local f out
	local rs=("$LUO_REPO"/*.rs)
	local c=("$LUO_REPO"/*.c "$LUO_REPO"/*.h "$LUO_REPO"/uapi/linux/*.h "$LUO_TESTS"/tests/modules/*.c)
	if wanted lint/rustfmt; then
		if out=$("$LUO_RUSTFMT" --edition 2021 --config-path "$src/.rustfmt.toml" \
				--check "${rs[@]}" 2>&1); then
			record lint/rustfmt pass
		else
			record lint/rustfmt fail "$(grep -m 1 '^Diff in' <<<"$out")"
		fi
	fi
	if wanted lint/checkpatch; then
		out=$("$src/scripts/checkpatch.pl" --no-tree --terse -f "${c[@]}" "${rs[@]}" 2>&1 |
			grep -E '(WARNING|ERROR|CHECK):' | head -n 1)
		if [ -z "$out" ]; then record lint/checkpatch pass; else record lint/checkpatch fail "$out"; fi
	fi
	if wanted lint/clippy && [ -n "${KDIR[rust]:-}" ]; then
		clippy_run rust
		f=${CLIPPY_DONE[rust]}
		if [ -n "$f" ]; then record lint/clippy fail "$f"; else record lint/clippy pass; fi
	fi
}

. "$LUO_HARNESS/run_versions.sh"

# Interrupted: the jobs' VMs go with them.
trap 'kill $(jobs -p) 2>/dev/null; wait; echo "# interrupted" >&2; exit 130' INT TERM
check_uapi
check_lint
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

# ------------------------------------------------------------------ report --
declare -A XF
if [ -e "$XFAIL" ]; then
	while read -r x _; do
		case "$x" in ''|'#'*) continue ;; esac
		XF[$x]=1
	done <"$XFAIL"
fi

echo "KTAP version 1"
echo "1..${#R_NAME[@]}"
pass=0 fail=0 todo=0
declare -A SHOWN
for n in "${!R_NAME[@]}"; do
	name=${R_NAME[$n]} st=${R_STATUS[$n]} why=${R_MSG[$n]}
	num=$((n + 1))
	# A debug variant shares its implementation's entries: c/T covers c-debug/T.
	variant=${name%%/*}
	if [ -n "${XF[$name]:-}" ] ||
	   { [[ "$variant" == *-debug ]] && [ -n "${XF[${variant%-debug}/${name#*/}]:-}" ]; }; then
		if [ "$st" = pass ]; then
			echo "not ok $num $name # passes but is listed in xfail.txt: remove it"
			fail=$((fail + 1))
		else
			echo "not ok $num $name # TODO expected failure: $why"
			todo=$((todo + 1))
		fi
		continue
	fi
	case "$st" in
	pass)
		echo "ok $num $name"
		[ -z "$why" ] || sed 's/^# */#   /' <<<"$why"
		pass=$((pass + 1)) ;;
	*)
		echo "not ok $num $name # $st: $why"
		fail=$((fail + 1))
		ld=${LOGDIR[$name]:-${LOGDIR[${name%.*}]:-}}
		if [ -n "$ld" ] && [ -z "${SHOWN[$ld]:-}" ]; then
			show_logs "$ld"
			SHOWN[$ld]=1
		fi ;;
	esac
done
echo "# expected failures (xfail.txt): $todo; logs: $RUN_DIR"
echo "$pass passed, $fail failed, $todo skipped"
[ "$fail" = 0 ]
