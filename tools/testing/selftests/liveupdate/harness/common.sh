# SPDX-License-Identifier: GPL-2.0
# Shared settings of the Rust LUO harness. Sourced, never run.

# The repository root (the kernel directory of the Rust LUO).
LUO_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../../.." && pwd)
LUO_TESTS="$LUO_REPO/tools/testing/selftests/liveupdate"
LUO_HARNESS="$LUO_TESTS/harness"
# Our edits of upstream files, applied by integrate.sh, exported by `lu patches`.
LUO_PATCHES="$LUO_REPO/patches"

# Everything downloaded or built lives here, outside the clone.
LUO_CACHE="${LUO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-luo}"

# The kernel source packages and the suites they are fetched from, in order.
# linux-source-7.2 is the older kernel of the cross-version tests (c-7.2).
LUO_SRC_PKG="${LUO_SRC_PKG:-linux-source-7.3}"
LUO_OLD_SRC_PKG="${LUO_OLD_SRC_PKG:-linux-source-7.2}"
LUO_SRC_SUITES="${LUO_SRC_SUITES:-trixie-backports experimental}"
LUO_BINDGEN_VERSION=0.72.1

# A Linux 7.3 tree of the user's own (`lu --tree DIR` or LUO_TREE=DIR): used
# instead of the downloaded one; builds still go to $LUO_CACHE/build.
LUO_TREE="${LUO_TREE:-}"

# Where the repo's kernel sources go inside the kernel tree.
LUO_TREE_SUBDIR=kernel/liveupdate/rust_luo

# The Debian toolchain, passed explicitly: rustup's tools come first in PATH.
# A variant built with another rustc (rust-minrustc) overrides the first three
# with a Debian rustc unpacked into the cache (toolchain.sh).
LUO_SYS_RUSTC=/usr/bin/rustc
LUO_SYS_CLIPPY_DRIVER=/usr/bin/clippy-driver
LUO_SYS_RUSTFMT=/usr/bin/rustfmt
LUO_RUSTC=$LUO_SYS_RUSTC
LUO_CLIPPY_DRIVER=$LUO_SYS_CLIPPY_DRIVER
LUO_RUSTFMT=$LUO_SYS_RUSTFMT
LUO_BINDGEN="$LUO_CACHE/bindgen/bin/bindgen"
LUO_LIBCLANG_PATH=/usr/lib/llvm-19/lib
LUO_LLVM_SUFFIX=-19

JOBS="${JOBS:-$(nproc)}"

msg() { printf '# %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# luo_progress WHAT LOG STATUS CMD...: runs CMD with its output appended to
# LOG and, every 30 s while it runs, prints "# WHAT: <STATUS LOG>, <elapsed>"
# (STATUS is a function that reads LOG; luo_no_status says nothing), so that
# no long step is silent. Returns CMD's status.
luo_progress() {
	local what=$1 log=$2 status=$3 pid t0=$SECONDS next=30 st el
	shift 3
	"$@" >>"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		el=$((SECONDS - t0))
		if [ "$el" -ge "$next" ]; then
			st=$("$status" "$log" 2>/dev/null) || st=""
			msg "$what: ${st:+$st, }$((el / 60))m$(printf '%02d' $((el % 60)))s"
			next=$((next + 30))
		fi
	done
	wait "$pid"
}
luo_no_status() { :; }
# Progress of a cargo build: crates compiled so far.
cargo_status() { # log
	echo "$(grep -c '^ *Compiling ' "$1") crates compiled"
}

# The unpacked tree of a source package in the cache: the newest of its series.
luo_cached_src() { # [series, default 7.3]
	local d
	d=$(ls -1d "$LUO_CACHE"/src/linux-"${1:-7.3}".*/ 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -e "$d/.luo-unpacked" ] || return 1
	printf '%s\n' "${d%/}"
}

# The Linux 7.3 tree the harness builds: the user's (LUO_TREE) or the cache's.
luo_src_dir() {
	if [ -n "$LUO_TREE" ]; then
		[ -e "$LUO_TREE/Makefile" ] || return 1
		(cd "$LUO_TREE" && pwd)
		return 0
	fi
	luo_cached_src 7.3
}

# The tree a variant is built from: c-7.2 from the 7.2 source, rust-minrustc
# from the git copy that `lu patches`' series was applied to (patches.sh),
# every other variant from luo_src_dir.
luo_variant_src() { # variant
	case "$1" in
	c-7.2) luo_cached_src 7.2 || die "no 7.2 source in $LUO_CACHE/src; run: $LUO_TESTS/lu setup --old" ;;
	rust-minrustc) printf '%s/git/%s\n' "$LUO_CACHE" "$(luo_tree_id)" ;;
	*) luo_src_dir || die "no kernel source in $LUO_CACHE/src; run: $LUO_TESTS/lu setup" ;;
	esac
}

# A name for the 7.3 tree, unique per tree: the cache's tree by its version,
# a user's tree by its path.
luo_tree_id() {
	local src
	src=$(luo_src_dir) || die "no kernel source; run: $LUO_TESTS/lu setup"
	if [ -n "$LUO_TREE" ]; then
		printf 'tree-%s-%s\n' "$(basename "$src")" "$(printf '%s' "$src" | md5sum | cut -c1-8)"
	else
		basename "$src"
	fi
}

# Build directory of one variant.
luo_build_dir() {
	local id
	case "$1" in
	c-7.2) id=$(basename "$(luo_variant_src c-7.2)") ;;
	*) id=$(luo_tree_id) ;;
	esac
	printf '%s/build/%s/%s\n' "$LUO_CACHE" "$id" "$1"
}

# The rustc version a variant is built with: the kernel's minimum for
# rust-minrustc (scripts/min-tool-version.sh), else the system's.
luo_min_rustc() {
	"$(luo_src_dir)/scripts/min-tool-version.sh" rustc
}

# Sets LUO_RUSTC, LUO_CLIPPY_DRIVER and LUO_RUSTFMT for a variant.
luo_use_toolchain() { # variant
	local tc
	LUO_RUSTC=$LUO_SYS_RUSTC
	LUO_CLIPPY_DRIVER=$LUO_SYS_CLIPPY_DRIVER
	LUO_RUSTFMT=$LUO_SYS_RUSTFMT
	case "$1" in
	rust-minrustc)
		tc="$LUO_CACHE/toolchains/rustc-$(luo_min_rustc)"
		[ -e "$tc/.complete" ] || die "no rustc $(luo_min_rustc) in $tc; run: $LUO_HARNESS/toolchain.sh $(luo_min_rustc)"
		LUO_RUSTC="$tc/bin/rustc"
		LUO_CLIPPY_DRIVER="$tc/bin/clippy-driver"
		LUO_RUSTFMT="$tc/bin/rustfmt" ;;
	esac
}

# Puts the cache's downloaded tree's own copies of FILES back (from the source
# package), so that a tree integrated by an older harness can be patched.
# Fails for any other tree (a user's tree is never overwritten).
luo_restore_pristine() { # tree file...
	local tree=$1 deb pkg tmp f
	shift
	[ -e "$tree/.luo-unpacked" ] || return 1
	pkg=$(cat "$tree/.luo-unpacked")
	[ -n "$pkg" ] || pkg=linux-source-$(basename "$tree" | sed 's/^linux-\([0-9]*\.[0-9]*\).*/\1/')
	deb=$(ls -1t "$LUO_CACHE"/dl/"${pkg}"_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || return 1
	msg "restoring $* from $(basename "$deb")"
	tmp=$(mktemp -d)
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$pkg.tar.xz" |
		tar -xJ -C "$tmp" --strip-components=1 --wildcards "${@/#/*/}" || { rm -rf "$tmp"; return 1; }
	for f in "$@"; do
		cp "$tmp/$f" "$tree/$f"
	done
	rm -rf "$tmp"
}

# Copies the repository's kernel sources into DST (kernel/liveupdate/rust_luo/
# of a tree): Kconfig, Makefile, *.rs and the C glue (every *.c and *.h of the
# root but rust_helpers.c, which goes to rust/helpers/); nothing else stays.
luo_sync_sources() { # dst [rsync options...]
	local dst=$1
	shift
	mkdir -p "$dst"
	rsync -r --checksum --delete --delete-excluded "$@" \
		--include='/Kconfig' --include='/Makefile' --include='/*.rs' \
		--exclude='/rust_helpers.c' --include='/*.c' --include='/*.h' \
		--exclude='*' "$LUO_REPO/" "$dst/"
}

# make, with the toolchain this project needs. C goes through ccache (in the
# cache): the variants of one tree differ in few options, and most files
# preprocess the same in all of them, so a cold `lu test` compiles most C once.
luo_make() {
	local src=$1 bdir=$2 cc=(CC="ccache gcc") llvm=()
	shift 2
	# Debug variants are built with clang: KASAN and Rust need CC_IS_CLANG
	# (the KCSAN variant too, like the debug ones).
	case "$bdir" in
	*-debug|*-kcsan)
		llvm=(LLVM="$LUO_LLVM_SUFFIX")
		cc=(CC="ccache clang$LUO_LLVM_SUFFIX") ;;
	esac
	command -v ccache >/dev/null || cc=()
	CCACHE_DIR="$LUO_CACHE/ccache" CCACHE_MAXSIZE=8G CCACHE_NOHASHDIR=1 \
	make -C "$src" O="$bdir" ARCH=x86_64 -j"$JOBS" "${llvm[@]}" "${cc[@]}" \
		RUSTC="$LUO_RUSTC" BINDGEN="$LUO_BINDGEN" \
		RUSTFMT="$LUO_RUSTFMT" CLIPPY_DRIVER="$LUO_CLIPPY_DRIVER" \
		LIBCLANG_PATH="$LUO_LIBCLANG_PATH" "$@"
}

# The versions of the tools a build of VARIANT uses, one line each.
luo_tool_versions() { # variant
	local cc
	luo_use_toolchain "$1"
	echo "rustc: $("$LUO_RUSTC" --version 2>&1 | head -n 1) ($LUO_RUSTC)"
	echo "clippy: $("$LUO_CLIPPY_DRIVER" --version 2>&1 | head -n 1) ($LUO_CLIPPY_DRIVER)"
	echo "bindgen: $("$LUO_BINDGEN" --version 2>&1 | head -n 1) ($LUO_BINDGEN)"
	echo "libclang: $(dpkg-query -W -f '${Version}' libclang1-19 2>/dev/null) ($LUO_LIBCLANG_PATH)"
	case "$1" in
	*-debug|*-kcsan) cc="clang$LUO_LLVM_SUFFIX" ;;
	*) cc=gcc ;;
	esac
	echo "cc: $("$cc" --version 2>&1 | head -n 1) ($(command -v "$cc"), through $(ccache --version 2>/dev/null | head -n 1))"
	echo "qemu: $(qemu-system-x86_64 --version 2>&1 | head -n 1)"
}
