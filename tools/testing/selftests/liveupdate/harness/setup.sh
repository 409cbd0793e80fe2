#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# setup.sh [--old]
#
# Idempotent set-up: the Linux 7.3 source from Debian (fetched through a
# private apt configuration, never through the system's sources) unpacked
# once per version into $LUO_CACHE (--old: Debian's linux-source-7.2 too, the
# older kernel of the cross-version tests), then Debian's toolchain and
# bindgen-cli, checked against the versions that tree needs
# (scripts/min-tool-version.sh). A tool that is missing or too old is
# installed or upgraded after the package lists are refreshed; if it is still
# too old, set-up stops and names the version found and the one needed.
# With LUO_TREE (a tree of the user's own) no 7.3 source is fetched.
set -euo pipefail
. "$(dirname "$0")/common.sh"

OLD=0 BENCH=0
for a in "$@"; do
	case "$a" in
	--old) OLD=1 ;;      # the 7.2 source too
	--bench) BENCH=1 ;;  # what lu bench needs beyond the suite: matplotlib
	esac
done

# command:package, what must be present after set-up. The Rust packages are
# handled together (rust_packages): they must be one version.
TOOLS="
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
patch:patch
git:git
ccache:ccache
qemu-system-x86_64:qemu-system-x86
/bin/busybox:busybox-static
gcc:gcc
make:make
/usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
timeout:coreutils
"
RUST_PKGS="rustc-web rust-web-src rust-web-clippy rustfmt-web cargo-web"
# QEMU: -icount sleep=off, kexec_file_load'ed kernels and two serial ports
# are all older than this.
QEMU_MIN=6.2

have() {
	case "$1" in
	/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}

# The installed version of a package, empty if it is not installed (a removed
# package whose configuration files remain still has a version in dpkg).
pkg_version() {
	dpkg-query -W -f '${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null |
		awk '$1 == "ii" { print $2 }' || true
}
# The upstream part of a Debian version: 1:19.1.7-3~deb12u1 -> 19.1.7
upstream() { sed -E 's/^[0-9]+://; s/[+~-].*//' <<<"$1"; }
version_ge() { dpkg --compare-versions "$1" ge "$2"; }

need_root() {
	[ "$(id -u)" = 0 ] || die "$1 (run as root, or: sudo apt-get install $2)"
}

# Progress of apt-get install: packages unpacked and set up so far.
apt_status() { # log
	echo "$(grep -c '^Unpacking ' "$1") unpacked, $(grep -c '^Setting up ' "$1") set up"
}

APT_REFRESHED=0
# Installs or upgrades packages (name or name=version), after refreshing the
# package lists once per set-up: a stale list would install old versions.
apt_install() {
	need_root "packages to install or upgrade: $*" "$*"
	if [ "$APT_REFRESHED" = 0 ]; then
		msg "refreshing the package lists (apt-get update)"
		apt-get update >"$LUO_CACHE/apt-update.log" 2>&1 || {
			tail -n 15 "$LUO_CACHE/apt-update.log" | sed 's/^/apt: /' >&2
			die "apt-get update failed: the Debian registry is unreachable (see $LUO_CACHE/apt-update.log)"
		}
		APT_REFRESHED=1
	fi
	msg "installing from Debian: $*"
	: >"$LUO_CACHE/apt-install.log"
	luo_progress "installing from Debian" "$LUO_CACHE/apt-install.log" apt_status \
		env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" || {
		tail -n 15 "$LUO_CACHE/apt-install.log" | sed 's/^/apt: /' >&2
		die "apt-get install $* failed (see $LUO_CACHE/apt-install.log)"
	}
}

install_base() {
	local missing="" t
	for t in dpkg-deb:dpkg xz:xz-utils tar:tar; do
		have "${t%%:*}" || missing="$missing ${t#*:}"
	done
	[ -z "$missing" ] || apt_install $missing
}

install_tools() {
	local missing="" t
	for t in $TOOLS; do
		have "${t%%:*}" || missing="$missing ${t#*:}"
	done
	[ -z "$missing" ] || apt_install $missing
	for t in $TOOLS; do
		have "${t%%:*}" || die "${t%%:*} still missing after installing ${t#*:}"
	done
}

# rustc-web and its siblings: one Debian version, rustc at least the tree's
# minimum (a rust-src of another version than rustc fails the kernel build in
# confusing ways). A complete, matching set is left as it is; anything else
# (a sibling missing or of another version, rustc too old) is resolved by
# installing all of them from the refreshed lists, never by pinning a version:
# after a refresh the old version may no longer be installable.
rust_packages() { # min-version
	local min=$1 v p v_p why=""
	v=$(pkg_version rustc-web)
	if [ -z "$v" ]; then
		why="rustc-web is not installed"
	elif ! version_ge "$(upstream "$v")" "$min"; then
		why="rustc-web $v is older than the kernel's minimum rustc $min"
	else
		for p in $RUST_PKGS; do
			v_p=$(pkg_version "$p")
			[ "$v_p" = "$v" ] ||
				why="${why:+$why, }$p ${v_p:-(missing)}"
		done
		[ -z "$why" ] || why="rustc-web is $v but $why"
	fi
	if [ -n "$why" ]; then
		msg "$why: installing $RUST_PKGS"
		apt_install $RUST_PKGS
	fi
	v=$(pkg_version rustc-web)
	version_ge "$(upstream "$v")" "$min" ||
		die "rustc-web $v is installed, the kernel needs rustc $min or newer (Debian bookworm-security has it)"
	for p in $RUST_PKGS; do
		[ "$(pkg_version "$p")" = "$v" ] ||
			die "$p $(pkg_version "$p") does not match rustc-web $v: apt-get install $RUST_PKGS"
	done
}

install_bindgen() { # min-version
	local got
	got=$("$LUO_BINDGEN" --version 2>/dev/null | awk '{ print $2 }') || true
	if [ "$got" = "$LUO_BINDGEN_VERSION" ]; then
		return 0
	fi
	command -v cargo >/dev/null || die "cargo not found: bindgen-cli is installed with 'cargo install' (install rustup or Debian's cargo)"
	msg "installing bindgen-cli $LUO_BINDGEN_VERSION (about 90 s; log: $LUO_CACHE/bindgen-install.log)"
	: >"$LUO_CACHE/bindgen-install.log"
	luo_progress "installing bindgen-cli" "$LUO_CACHE/bindgen-install.log" cargo_status \
		cargo install --locked bindgen-cli --version "$LUO_BINDGEN_VERSION" \
		--root "$LUO_CACHE/bindgen" ||
		die "cargo install bindgen-cli failed: crates.io unreachable? (see $LUO_CACHE/bindgen-install.log)"
	version_ge "$LUO_BINDGEN_VERSION" "$1" ||
		die "bindgen $LUO_BINDGEN_VERSION is older than the kernel's minimum $1"
}

# Every tool the build uses, checked against the tree's minimums.
check_versions() { # tree
	local tree=$1 v
	tree_min() { "$tree/scripts/min-tool-version.sh" "$1"; }
	v=$(gcc -dumpfullversion)
	version_ge "$v" "$(tree_min gcc)" || die "gcc $v is installed, the kernel needs $(tree_min gcc) or newer"
	v=$(upstream "$(pkg_version libclang1-19)")
	version_ge "$v" "$(tree_min llvm)" || die "libclang/clang $v is installed, the kernel needs LLVM $(tree_min llvm) or newer"
	v=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([0-9.]*\).*/\1/p')
	version_ge "$v" "$QEMU_MIN" || die "QEMU $v is installed, the harness needs $QEMU_MIN or newer"
	v=$("$LUO_RUSTC" --version | awk '{ print $2 }')
	version_ge "$v" "$(tree_min rustc)" || die "$LUO_RUSTC is rustc $v, the kernel needs $(tree_min rustc) or newer"
}

# Progress of a download into $LUO_CACHE/dl: the bytes there so far.
download_status() { # log
	echo "$(du -sm "$LUO_CACHE/dl" | cut -f1) MB in $LUO_CACHE/dl"
}
# Progress of an unpacking: the size of the tree so far.
unpack_status() { # log
	echo "$(du -sm "$UNPACK_DIR" 2>/dev/null | cut -f1) MB unpacked"
}

fetch_source() { # package
	local pkg=$1 series=${1#linux-source-}
	if [ -z "${LUO_REFRESH:-}" ] && luo_cached_src "$series" >/dev/null; then
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
		    -o Dir::State::Lists="$apt/lists" -o APT::Get::List-Cleanup=0
		    -o APT::Sandbox::User=root)
	msg "fetching $pkg from Debian ($LUO_SRC_SUITES; about 170 MB)"
	apt-get "${opts[@]}" update >"$LUO_CACHE/apt-src-update.log" 2>&1 ||
		die "could not read the Debian suites $LUO_SRC_SUITES (see $LUO_CACHE/apt-src-update.log)"
	: >"$LUO_CACHE/apt-src-download.log"
	(cd "$LUO_CACHE/dl" && luo_progress "fetching $pkg" "$LUO_CACHE/apt-src-download.log" \
		download_status apt-get "${opts[@]}" download "$pkg") ||
		die "$pkg is in none of $LUO_SRC_SUITES (see $LUO_CACHE/apt-src-download.log)"
	local deb ver dir
	deb=$(ls -1t "$LUO_CACHE"/dl/"$pkg"_*.deb | head -n 1)
	ver=$(dpkg-deb -f "$deb" Version)
	dir="$LUO_CACHE/src/linux-${ver//[~+:]/-}"
	if [ ! -e "$dir/.luo-unpacked" ]; then
		msg "unpacking $(basename "$deb") into $dir (about a minute)"
		rm -rf "$dir" "$dir.tmp"
		mkdir -p "$dir.tmp"
		UNPACK_DIR="$dir.tmp"
		luo_progress "unpacking $pkg" "$LUO_CACHE/unpack.log" unpack_status \
			sh -c 'dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/src/$2.tar.xz" |
			       tar -xJ -C "$3" --strip-components=1' sh "$deb" "$pkg" "$dir.tmp" ||
			die "unpacking $deb failed (see $LUO_CACHE/unpack.log)"
		mv "$dir.tmp" "$dir"
		echo "$pkg" >"$dir/.luo-unpacked"
	fi
	# Keep one .deb per package: the unpacked tree is what builds use.
	find "$LUO_CACHE/dl" -name "${pkg}_*.deb" ! -samefile "$deb" -delete
}

mkdir -p "$LUO_CACHE"
install_base
if [ -z "$LUO_TREE" ]; then
	fetch_source "$LUO_SRC_PKG"
fi
[ "$OLD" = 0 ] || fetch_source "$LUO_OLD_SRC_PKG"
tree=$(luo_src_dir) || die "no kernel tree (LUO_TREE=$LUO_TREE has no Makefile)"
install_tools
rust_packages "$("$tree/scripts/min-tool-version.sh" rustc)"
# The benchmark's charts: Debian's matplotlib, for Debian's python3.
if [ "$BENCH" = 1 ] && ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
	apt_install python3-matplotlib
fi
install_bindgen "$("$tree/scripts/min-tool-version.sh" bindgen)"
check_versions "$tree"
msg "kernel source: $tree ($(make -s -C "$tree" kernelversion 2>/dev/null))"
msg "rustc: $("$LUO_RUSTC" --version)"
