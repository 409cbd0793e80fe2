# SPDX-License-Identifier: GPL-2.0
# Tests across toolchains, trees and kernel versions. Sourced by run.sh after
# its helpers (record, run_kexec, wanted, KDIR, luo_make) and lint.sh's
# clippy_run are defined.
#
#   toolchain/rustc-<version>  the rust variant built with that rustc (the
#       system's, and the kernel's minimum in rust-minrustc): .config says
#       that rustc built it, a CLIPPY=1 rebuild of our crate with that
#       toolchain prints no warning, and the demo passes on that kernel
#   userspace/rustc-<version>  the user space (tools/liveupdate) builds, every
#       target, with the kernel's minimum rustc and its cargo (Debian's, from
#       toolchain.sh), as it does with the system's (userspace/build)
#   patches/git-am  `lu patches`' series applies with git am to a pristine
#       git copy of the tree (rust-minrustc is built from that copy)
#   c-7.2-to-rust/<test>, rust-to-c-7.2/<test>  upstream's four two-kernel
#       programs from Debian's Linux 7.2 with its C LUO into our kernel
#       (upgrade) and back (rollback), FLB checks included

check_toolchain() { # variant
	local v=$1 want name why
	want=$(luo_use_toolchain "$v"; "$LUO_RUSTC" --version 2>/dev/null | awk '{ print $2 }')
	name="toolchain/rustc-${want:-$(luo_min_rustc)}"
	wanted "$name" || return 0
	if [ "$v" = rust-minrustc ] && [ -s "$LUO_CACHE/minrustc.status" ]; then
		record "$name" fail "$(cat "$LUO_CACHE/minrustc.status")"
		return
	fi
	if [ ! -e "${KDIR[$v]}/arch/x86/boot/bzImage" ]; then
		record "$name" fail "no kernel built in ${KDIR[$v]}"
		return
	fi
	if ! grep -q "^CONFIG_RUSTC_VERSION_TEXT=\"rustc $want " "${KDIR[$v]}/.config"; then
		record "$name" fail "${KDIR[$v]} was not built by rustc $want: $(grep RUSTC_VERSION_TEXT "${KDIR[$v]}/.config")"
		return
	fi
	[ -n "${CLIPPY_DONE[$v]+x}" ] || clippy_run "$v"
	why=${CLIPPY_DONE[$v]}
	if [ -n "$why" ]; then
		record "$name" fail "clippy/rustc $want: $why"
		return
	fi
	run_kexec "$name" luo_demo "$(bz "$v")" "$(bz "$v")"
}

check_userspace_toolchain() {
	local min tc name log
	min=$(luo_min_rustc)
	name="userspace/rustc-$min"
	wanted "$name" || return 0
	tc="$LUO_CACHE/toolchains/rustc-$min"
	log="$RUN_DIR/userspace-rustc-$min.log"
	if [ ! -x "$tc/bin/cargo" ]; then
		record "$name" fail "no cargo $min in $tc ($(cat "$LUO_CACHE/minrustc.status" 2>/dev/null))"
	elif ! "$tc/bin/cargo" --version 2>/dev/null | grep -q "^cargo $min "; then
		record "$name" fail "$tc/bin/cargo is not cargo $min: $("$tc/bin/cargo" --version 2>&1)"
	elif "$LUO_HARNESS/userspace.sh" check "$tc" >"$log" 2>&1; then
		record "$name" pass "# $("$tc/bin/cargo" --version)"
	else
		record "$name" fail "$(grep -m 1 -E '^error' "$log") (see $log)"
	fi
}

check_patches() {
	local name=patches/git-am st
	wanted "$name" || return 0
	st=$(cat "$LUO_CACHE/patches.status" 2>/dev/null || echo "fail: patches.sh apply did not run")
	case "$st" in
	ok*) record "$name" pass "# $st" ;;
	*) record "$name" fail "${st#fail: }" ;;
	esac
}

# The clippy rebuilds of the toolchain tests (make, not VMs): before the jobs.
prepare_versions() {
	local v
	for v in rust rust-minrustc; do
		[ -n "${KDIR[$v]:-}" ] && [ -e "${KDIR[$v]}/.config" ] && clippy_run "$v"
	done
	return 0
}

# Runs every test of this file whose kernels are in KDIR.
run_versions() {
	local t
	if [ -n "${KDIR[rust-minrustc]:-}" ]; then
		check_patches
		job check_toolchain rust-minrustc
		job check_userspace_toolchain
	fi
	[ -n "${KDIR[rust]:-}" ] && job check_toolchain rust
	if [ -n "${KDIR[c-7.2]:-}" ] && [ -n "${KDIR[rust]:-}" ]; then
		for t in $KEXEC_TESTS; do
			job run_kexec "c-7.2-to-rust/$t" "$t" "$(bz c-7.2)" "$(bz rust)"
			job run_kexec "rust-to-c-7.2/$t" "$t" "$(bz rust)" "$(bz c-7.2)"
		done
	fi
	return 0
}
