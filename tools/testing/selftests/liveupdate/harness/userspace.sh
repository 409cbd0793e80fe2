#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# userspace.sh COMMAND   (lu userspace COMMAND): the Cargo workspace of the
# LUO's user space, tools/liveupdate/ (the liveupdate library, luo-proto,
# luod, luoctl, the programs of the luod tests), built with Debian's cargo
# and rustc, the toolchain the kernel is built with, from Cargo.lock.
#
#   build [TOOLCHAIN [LOG]]  static release binaries (+crt-static on the
#                      gnu target), for the VMs' initramfs; prints their
#                      directory. TOOLCHAIN: a directory of toolchain.sh
#                      (bin/cargo, bin/rustc) instead of /usr/bin's ("" for
#                      those); LOG: where cargo's output goes (progress is
#                      printed every 30 s)
#   check TOOLCHAIN    a debug build of every target with that toolchain
#                      (toolchain.sh's directory: the kernel's minimum rustc)
#   test               cargo test: the unit and doc tests, no kernel needed
#   fmt                rustfmt --check
#   clippy             clippy -D warnings on every target
#   sizes              the size of each binary of the last build
#
# Crates come from crates.io into $LUO_CACHE/cargo-home; builds go to
# $LUO_CACHE/userspace, never into the clone.
set -euo pipefail
. "$(dirname "$0")/common.sh"

LUO_WS="$LUO_REPO/tools/liveupdate"
US_TARGET=x86_64-unknown-linux-gnu
US_BINS="luod luoctl luo-guest luod_two_updates luod_restart luod_bad_input"

# cargo of a toolchain (empty: the system's) in the workspace, with the
# matching rustc, rustdoc and clippy first in PATH (rustup's come first in
# the user's PATH).
us_cargo() { # toolchain args...
	local tc=$1 bin=/usr/bin dir
	shift
	[ -z "$tc" ] || bin="$tc/bin"
	dir="$LUO_CACHE/userspace/${tc:+$(basename "$tc")-}target"
	(
		cd "$LUO_WS"
		export PATH="$bin:/usr/bin:/bin" CARGO_HOME="$LUO_CACHE/cargo-home" \
			CARGO_TARGET_DIR="$dir" RUSTC="$bin/rustc" RUSTDOC="$bin/rustdoc"
		unset RUSTFLAGS CARGO_BUILD_TARGET RUSTC_WRAPPER
		"$bin/cargo" "$@"
	)
}

us_bindir() { # toolchain
	local tc=${1:-}
	echo "$LUO_CACHE/userspace/${tc:+$(basename "$tc")-}target/$US_TARGET/release"
}

us_build() { # [toolchain] [log]
	local tc=${1:-} log=${2:-/dev/stderr} d b
	[ "$log" = /dev/stderr ] || : >"$log"
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
		luo_progress "building the user space" "$log" cargo_status \
		us_cargo "$tc" build --release --locked --target "$US_TARGET" --bins ||
		die "cargo build failed${2:+ (see $log)}"
	d=$(us_bindir "$tc")
	for b in $US_BINS; do
		[ -x "$d/$b" ] || die "cargo built no $b in $d"
		# A dynamic binary would not run in the VM's initramfs.
		if file -L "$d/$b" 2>/dev/null | grep -q 'dynamically linked'; then
			die "$d/$b is not static"
		fi
	done
	echo "$d"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
build) us_build "${1:-}" "${2:-}" ;;
check) us_cargo "${1:?usage: userspace.sh check TOOLCHAIN}" build --locked --workspace --all-targets ;;
test) us_cargo "" test --locked --workspace ;;
fmt) us_cargo "" fmt --all --check ;;
clippy) us_cargo "" clippy --locked --workspace --all-targets -- -D warnings ;;
sizes)
	d=$(us_bindir)
	for b in $US_BINS; do
		printf '%-18s %8d bytes\n' "$b" "$(stat -c %s "$d/$b")"
	done ;;
*) sed -n '4,23s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac
