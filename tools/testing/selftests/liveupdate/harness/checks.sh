# SPDX-License-Identifier: GPL-2.0
# What makes a boot or a test fail besides its own verdict: splats in the
# kernel log, a timeout, a uAPI header that differs from the tree's, the Rust
# LUO's KUnit results, lib/tests/liveupdate.c's FLB lines. Sourced by run.sh.

# Kernel log lines that fail a test whatever its own verdict.
SPLAT='BUG:|WARNING:|Oops|Kernel panic|KASAN|UBSAN|INFO: possible|DEBUG_LOCKS_WARN_ON|turning off the locking correctness validator|general protection fault|kernel BUG|Call Trace:'

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

