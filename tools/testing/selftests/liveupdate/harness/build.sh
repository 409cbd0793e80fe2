#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh VARIANT...   (c, rust, c-debug, rust-debug, c-bench, rust-bench,
#                        c-7.2, rust-minrustc)
#
# Configures one build directory per variant from the 7.3 selftest fragments
# (config + config.x86_64) plus CONFIG_RUST=y and the implementation choice,
# plus config.harness (and config.rust for Rust) for the test variants,
# config.debug for -debug variants (built with clang: see config.debug) and
# config.bench alone for -bench variants; checks every requested option
# survived olddefconfig, and builds bzImage, the uAPI headers and
# usr/gen_init_cpio. Prints the build directory of each variant.
#
# c-7.2 is Debian's Linux 7.2 with its C LUO, built from the same 7.3
# fragments (no Rust, no choice: 7.2 has neither). rust-minrustc is the rust
# variant built with the kernel's minimum rustc (toolchain.sh) from the git
# copy that `lu patches`' series was applied to (patches.sh). Every build log
# starts with the versions of the tools used.
set -euo pipefail
. "$(dirname "$0")/common.sh"

sel="$(luo_src_dir)/tools/testing/selftests/liveupdate"
[ -d "$sel" ] || die "no kernel source; run: $LUO_TESTS/lu setup"
INTEGRATED=0

VARIANTS="c, rust, c-debug, rust-debug, c-bench, rust-bench, c-7.2, rust-minrustc, rust-kcsan"

# The build steps (kbuild's "  CC      file.o" lines) a log shows so far.
build_steps() { # log
	grep -cE '^  [A-Z][A-Z0-9_]* ' "$1" || true
}
# Progress of a build: its steps so far, and their share of the variant's
# last full build (at most 99 % until it ends).
build_status() { # log
	local n pct
	n=$(build_steps "$1")
	if [ -n "${BUILD_STEPS_LAST:-}" ] && [ "$BUILD_STEPS_LAST" -gt 0 ]; then
		pct=$((n * 100 / BUILD_STEPS_LAST))
		[ "$pct" -le 99 ] || pct=99
		echo "$n build steps, about $pct % of the last full build's $BUILD_STEPS_LAST"
	else
		echo "$n build steps"
	fi
}

build_one() {
	local variant=$1 impl=${1%%-*} bdir frag log src
	case "$impl" in
	c) impl=C ;;
	rust) impl=RUST ;;
	*) die "unknown variant '$1' ($VARIANTS)" ;;
	esac
	case "$variant" in
	c|rust|*-debug|*-bench|c-7.2|rust-minrustc|rust-kcsan) ;;
	*) die "unknown variant '$1' ($VARIANTS)" ;;
	esac
	src=$(luo_variant_src "$variant")
	case "$variant" in
	c-7.2) ;;
	rust-minrustc)
		[ -e "$src/$LUO_TREE_SUBDIR/Kconfig" ] ||
			die "no patched git copy in $src; run: $LUO_HARNESS/patches.sh apply" ;;
	*)
		[ "$INTEGRATED" = 1 ] || "$LUO_HARNESS/integrate.sh" apply "$src"
		INTEGRATED=1 ;;
	esac
	luo_use_toolchain "$variant"
	bdir=$(luo_build_dir "$variant")
	mkdir -p "$bdir"
	frag="$bdir/luo.config.new"
	{
		cat "$sel/config.x86_64" "$sel/config"
		if [ "$variant" != c-7.2 ]; then
			echo "CONFIG_RUST=y"
			echo "CONFIG_LIVEUPDATE_IMPL_$impl=y"
		fi
		case "$variant" in
		*-bench) cat "$LUO_HARNESS/config.bench" ;;
		*)
			cat "$LUO_HARNESS/config.harness"
			[ "$impl" = RUST ] && cat "$LUO_HARNESS/config.rust"
			;;
		esac
		case "$variant" in
		*-debug) cat "$LUO_HARNESS/config.debug" ;;
		*-kcsan) cat "$LUO_HARNESS/config.kcsan" ;;
		esac
	} >"$frag"
	log="$bdir/build.log"
	if ! cmp -s "$frag" "$bdir/luo.config" || [ ! -e "$bdir/.config" ]; then
		msg "configuring $variant in $bdir"
		cp "$frag" "$bdir/.config"
		luo_tool_versions "$variant" | sed 's/^/# /' >"$log"
		luo_make "$src" "$bdir" olddefconfig >>"$log" 2>&1 ||
			{ tail -n 20 "$log" >&2; die "olddefconfig failed for $variant (log: $log)"; }
		local opt
		while read -r opt; do
			case "$opt" in ''|'#'*) continue ;; esac
			if [[ "$opt" == *=n ]]; then
				! grep -q "^${opt%=n}=" "$bdir/.config" && continue
			else
				grep -qx -- "$opt" "$bdir/.config" && continue
			fi
			[ "$opt" = CONFIG_RUST=y ] &&
				luo_make "$src" "$bdir" rustavailable >&2 || true
			die "$variant: $opt did not survive olddefconfig (see $bdir/.config)"
		done <"$frag"
		mv "$frag" "$bdir/luo.config"
	else
		rm -f "$frag"
	fi
	msg "building $variant (log: $log)"
	local t0=$SECONDS
	luo_tool_versions "$variant" | sed 's/^/# /' >"$log"
	BUILD_STEPS_LAST=$(cat "$bdir/.luo-build-steps" 2>/dev/null || true)
	if ! luo_progress "building $variant" "$log" build_status luo_make "$src" "$bdir" bzImage; then
		echo "build of $variant failed; first error:" >&2
		grep -m 1 -B 2 -A 12 -E '(error(\[E[0-9]+\])?:|Error [0-9]+)' "$log" >&2 || tail -n 40 "$log" >&2
		die "kernel build failed (log: $log)"
	fi
	luo_make "$src" "$bdir" headers_install INSTALL_HDR_PATH="$bdir/hdr" >>"$log" 2>&1 ||
		die "headers_install failed (log: $log)"
	# Module.symvers, for the test modules the runner builds (tests/modules/).
	case "$variant" in
	*-bench) ;;
	*) luo_progress "building $variant's modules" "$log" build_status luo_make "$src" "$bdir" modules ||
		die "make modules failed (log: $log)" ;;
	esac
	# The most steps a build of this variant took: a full build's.
	local steps
	steps=$(build_steps "$log")
	[ "$steps" -le "${BUILD_STEPS_LAST:-0}" ] || echo "$steps" >"$bdir/.luo-build-steps"
	[ -x "$bdir/usr/gen_init_cpio" ] || luo_make "$src" "$bdir" usr/gen_init_cpio >>"$log" 2>&1 ||
		die "gen_init_cpio failed (log: $log)"
	msg "built $variant in $((SECONDS - t0)) s"
	echo "$bdir"
}

[ $# -gt 0 ] || set -- c rust
for v in "$@"; do
	build_one "$v"
done
