# SPDX-License-Identifier: GPL-2.0
# Shared settings of the Rust LUO harness. Sourced, never run.

# The repository root (the kernel directory of the Rust LUO).
LUO_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../../.." && pwd)
LUO_TESTS="$LUO_REPO/tools/testing/selftests/liveupdate"
LUO_HARNESS="$LUO_TESTS/harness"

# Everything downloaded or built lives here, outside the clone.
LUO_CACHE="${LUO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-luo}"

# The kernel source package and the suites it is fetched from, in order.
LUO_SRC_PKG="${LUO_SRC_PKG:-linux-source-7.3}"
LUO_SRC_SUITES="${LUO_SRC_SUITES:-trixie-backports experimental}"
LUO_BINDGEN_VERSION=0.72.1

# Where the repo's kernel sources go inside the downloaded tree.
LUO_TREE_SUBDIR=kernel/liveupdate/rust_luo

# The Debian toolchain, passed explicitly: rustup's tools come first in PATH.
LUO_RUSTC=/usr/bin/rustc
LUO_CLIPPY_DRIVER=/usr/bin/clippy-driver
LUO_RUSTFMT=/usr/bin/rustfmt
LUO_BINDGEN="$LUO_CACHE/bindgen/bin/bindgen"
LUO_LIBCLANG_PATH=/usr/lib/llvm-19/lib

JOBS="${JOBS:-$(nproc)}"

msg() { printf '# %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The unpacked kernel tree: the newest one in the cache.
luo_src_dir() {
	local d
	d=$(ls -1d "$LUO_CACHE"/src/linux-*/ 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -e "$d/.luo-unpacked" ] || return 1
	printf '%s\n' "${d%/}"
}

# Build directory of one variant (c, rust, c-debug, rust-debug).
luo_build_dir() {
	local src
	src=$(luo_src_dir) || die "no kernel source in $LUO_CACHE/src; run: $LUO_TESTS/lu setup"
	printf '%s/build/%s/%s\n' "$LUO_CACHE" "$(basename "$src")" "$1"
}

# make, with the toolchain this project needs.
luo_make() {
	local src=$1 bdir=$2 llvm=()
	shift 2
	# Debug variants are built with clang: KASAN and Rust need CC_IS_CLANG.
	case "$bdir" in *-debug) llvm=(LLVM=-19) ;; esac
	make -C "$src" O="$bdir" ARCH=x86_64 -j"$JOBS" "${llvm[@]}" \
		RUSTC="$LUO_RUSTC" BINDGEN="$LUO_BINDGEN" \
		RUSTFMT="$LUO_RUSTFMT" CLIPPY_DRIVER="$LUO_CLIPPY_DRIVER" \
		LIBCLANG_PATH="$LUO_LIBCLANG_PATH" "$@"
}
