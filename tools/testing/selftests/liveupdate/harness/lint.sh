#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lint.sh (lu lint): rustfmt, checkpatch and clippy on our sources, as KTAP
# (lint/rustfmt, lint/checkpatch, lint/clippy), and the user space's checks
# (userspace/build, userspace/cargo_test, userspace/rustfmt,
# userspace/clippy). clippy is a CLIPPY=1 rebuild of our crate in the rust
# variant's build directory (build it first: lu build rust). Sourced by
# run.sh, which runs the same checks in lu test.

declare -A CLIPPY_DONE
# CLIPPY=1 rebuild of our crate in a variant's build directory, with that
# variant's toolchain, once; its first problem (empty when clean) is then
# CLIPPY_DONE[variant]. Run in the main shell (the cache lives there).
clippy_run() { # variant
	local v=$1 log="$RUN_DIR/clippy-$1.log" f tree
	if [ -z "${CLIPPY_DONE[$v]+x}" ]; then
		tree=$(luo_variant_src "$v")
		(
			luo_use_toolchain "$v"
			touch "$tree/$LUO_TREE_SUBDIR/liveupdate.rs"
			luo_make "$tree" "${KDIR[$v]}" CLIPPY=1 "$LUO_TREE_SUBDIR/" >"$log" 2>&1
		)
		f=$(grep -m 1 -E '^(warning|error)' "$log")
		if [ -n "$f" ]; then
			CLIPPY_DONE[$v]="$f (see $log)"
		elif ! grep -q "CLIPPY.*liveupdate.o" "$log"; then
			CLIPPY_DONE[$v]="our crate was not rebuilt (see $log)"
		else
			CLIPPY_DONE[$v]=
		fi
	fi
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

# One `userspace.sh COMMAND` as the test NAME; its failure is the log's first
# line matching FIRST.
us_check() { # name command first
	local log="$RUN_DIR/userspace-$2.log"
	wanted "$1" || return 0
	if "$LUO_HARNESS/userspace.sh" "$2" >"$log" 2>&1; then
		record "$1" pass
	else
		record "$1" fail "$(grep -m 1 -E "$3" "$log") (see $log)"
	fi
}

# The user space (tools/liveupdate, userspace.sh): its build, unit tests
# (cargo test), rustfmt and clippy, each its own test.
check_userspace() {
	local log
	if wanted userspace/build; then
		if [ -n "${US_BUILD_ERR:-}" ]; then
			record userspace/build fail "$US_BUILD_ERR"
		else
			record userspace/build pass "$("$LUO_HARNESS/userspace.sh" sizes | sed 's/^/# /')"
		fi
	fi
	if wanted userspace/cargo_test; then
		log="$RUN_DIR/userspace-test.log"
		if "$LUO_HARNESS/userspace.sh" test >"$log" 2>&1; then
			record userspace/cargo_test pass "# $(grep -E '^test result:' "$log" |
				awk '{ p += $4; f += $6 } END { print p " passed, " f " failed in " NR " test binaries" }')"
		else
			record userspace/cargo_test fail "$(grep -m 1 -E '(^error|FAILED|panicked)' "$log") (see $log)"
		fi
	fi
	us_check userspace/rustfmt fmt '^Diff in'
	us_check userspace/clippy clippy '^(warning|error)'
}

# Run by itself: the checks alone, reported like the suite.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -uo pipefail
	. "$(dirname "$0")/common.sh"
	. "$LUO_HARNESS/results.sh"
	src=$(luo_src_dir) || die "no kernel source; run: $LUO_TESTS/lu setup"
	XFAIL=/dev/null FILTER=.
	RUN_DIR="$LUO_CACHE/runs/lint-$(date +%Y%m%d-%H%M%S)-$$"
	mkdir -p "$RUN_DIR"
	declare -A KDIR
	wanted() { grep -qE -- "$FILTER" <<<"$1"; }
	if [ -e "$(luo_build_dir rust)/arch/x86/boot/bzImage" ]; then
		KDIR[rust]=$(luo_build_dir rust)
	else
		record lint/clippy skip "no rust kernel built (lu build rust)"
	fi
	"$LUO_HARNESS/integrate.sh" apply >/dev/null
	check_lint
	check_userspace
	report
fi
