#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent set-up: Debian toolchain, bindgen-cli, and the Linux 7.3 source
# from Debian (fetched through a private apt configuration, never through the
# system's sources), unpacked once per version into $LUO_CACHE.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# command  package  (what must be present after set-up)
TOOLS="
/usr/bin/rustc:rustc-web
/usr/lib/rustlib/src/rust/library:rust-web-src
/usr/bin/clippy-driver:rust-web-clippy
/usr/bin/rustfmt:rustfmt-web
/usr/lib/llvm-19/lib/libclang.so:libclang-19-dev
clang-19:clang-19
ld.lld-19:lld-19
llvm-ar-19:llvm-19
flex:flex
bison:bison
bc:bc
/usr/include/gelf.h:libelf-dev
/usr/include/openssl/ssl.h:libssl-dev
cpio:cpio
rsync:rsync
qemu-system-x86_64:qemu-system-x86
/bin/busybox:busybox-static
gcc:gcc
make:make
/usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
timeout:coreutils
dpkg-deb:dpkg
xz:xz-utils
"

have() {
	case "$1" in
	/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}

install_tools() {
	local missing="" t
	for t in $TOOLS; do
		have "${t%%:*}" || missing="$missing ${t#*:}"
	done
	[ -z "$missing" ] && return 0
	msg "installing from Debian:$missing"
	if [ "$(id -u)" != 0 ]; then
		die "missing packages:$missing (run as root, or: sudo apt-get install$missing)"
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
			>"$LUO_CACHE/apt-install.log" 2>&1; then
		apt-get update >"$LUO_CACHE/apt-update.log" 2>&1 ||
			die "apt-get update failed: the Debian registry is unreachable (see $LUO_CACHE/apt-update.log)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
			>"$LUO_CACHE/apt-install.log" 2>&1 ||
			die "apt-get install$missing failed (see $LUO_CACHE/apt-install.log)"
	fi
	for t in $TOOLS; do
		have "${t%%:*}" || die "${t%%:*} still missing after installing ${t#*:}"
	done
}

install_bindgen() {
	if [ -x "$LUO_BINDGEN" ] &&
	   "$LUO_BINDGEN" --version 2>/dev/null | grep -q "$LUO_BINDGEN_VERSION"; then
		return 0
	fi
	command -v cargo >/dev/null || die "cargo not found: bindgen-cli is installed with 'cargo install' (install rustup or Debian's cargo)"
	msg "installing bindgen-cli $LUO_BINDGEN_VERSION (about 90 s)"
	cargo install --locked bindgen-cli --version "$LUO_BINDGEN_VERSION" \
		--root "$LUO_CACHE/bindgen" >"$LUO_CACHE/bindgen-install.log" 2>&1 ||
		die "cargo install bindgen-cli failed: crates.io unreachable? (see $LUO_CACHE/bindgen-install.log)"
}

fetch_source() {
	if [ -z "${LUO_REFRESH:-}" ] && luo_src_dir >/dev/null; then
		return 0
	fi
	local apt="$LUO_CACHE/apt" suite
	mkdir -p "$apt/lists/partial" "$LUO_CACHE/dl" "$LUO_CACHE/src"
	: >"$apt/sources.list"
	for suite in $LUO_SRC_SUITES; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
			>>"$apt/sources.list"
	done
	local opts=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=-
		    -o Dir::State::Lists="$apt/lists" -o APT::Get::List-Cleanup=0)
	msg "fetching $LUO_SRC_PKG from Debian ($LUO_SRC_SUITES)"
	apt-get "${opts[@]}" update >"$LUO_CACHE/apt-src-update.log" 2>&1 ||
		die "could not read the Debian suites $LUO_SRC_SUITES (see $LUO_CACHE/apt-src-update.log)"
	(cd "$LUO_CACHE/dl" && apt-get "${opts[@]}" download "$LUO_SRC_PKG" \
		>"$LUO_CACHE/apt-src-download.log" 2>&1) ||
		die "$LUO_SRC_PKG is in none of $LUO_SRC_SUITES (see $LUO_CACHE/apt-src-download.log)"
	local deb ver dir
	deb=$(ls -1t "$LUO_CACHE"/dl/"$LUO_SRC_PKG"_*.deb | head -n 1)
	ver=$(dpkg-deb -f "$deb" Version)
	dir="$LUO_CACHE/src/linux-${ver//[~+:]/-}"
	if [ ! -e "$dir/.luo-unpacked" ]; then
		msg "unpacking $(basename "$deb") into $dir"
		rm -rf "$dir" "$dir.tmp"
		mkdir -p "$dir.tmp"
		dpkg-deb --fsys-tarfile "$deb" |
			tar -xO "./usr/src/$LUO_SRC_PKG.tar.xz" |
			tar -xJ -C "$dir.tmp" --strip-components=1
		mv "$dir.tmp" "$dir"
		touch "$dir/.luo-unpacked"
	fi
	# Keep one .deb: the unpacked tree is what builds use.
	find "$LUO_CACHE/dl" -name "${LUO_SRC_PKG}_*.deb" ! -samefile "$deb" -delete
}

mkdir -p "$LUO_CACHE"
install_tools
install_bindgen
fetch_source
msg "kernel source: $(luo_src_dir)"
