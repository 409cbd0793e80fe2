#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# integrate.sh [apply|show|undo] [TREE]
#
# Wires this repository into a Linux 7.3 tree (default: the one `lu` uses;
# see luo_src_dir), or shows or undoes what it changed there.
#
#   apply  (default) adds our files and applies patches/*.patch. Idempotent:
#          a second run changes nothing and touches no file whose content is
#          unchanged, so make rebuilds only what changed.
#   show   prints, for each file we add or patch, its state in the tree
#   undo   removes our files and reverses our patches: the tree is as it was
#
# What we add: kernel/liveupdate/rust_luo/ (Kconfig, Makefile, *.rs and the C
# glue of the repository's root) and rust/helpers/liveupdate.c (our
# rust_helpers.c). What we patch: patches/*.patch, edits of upstream files
# (bindings, helpers list, the Kconfig choice, the benchmark hooks). The same
# files make the git series of `lu patches`.
set -euo pipefail
. "$(dirname "$0")/common.sh"

action=apply
case "${1:-}" in
apply|show|undo) action=$1; shift ;;
esac
src=${1:-$(luo_src_dir)} || die "no kernel source; run: $LUO_TESTS/lu setup"
[ -e "$src/Makefile" ] && [ -d "$src/kernel/liveupdate" ] ||
	die "$src is not a Linux tree with kernel/liveupdate/ (Linux 7.3 is needed)"
dst="$src/$LUO_TREE_SUBDIR"
helper="$src/rust/helpers/liveupdate.c"

# patch(1) quietly and strictly (no fuzz) in the tree, whatever repository
# (if any) the tree lives in.
tree_patch() { # patch-file options...
	local p=$1
	shift
	patch -d "$src" -p1 -s -f --fuzz=0 --no-backup-if-mismatch "$@" <"$p" >/dev/null 2>&1
}

patch_state() { # patch-file: prints applied, absent or conflict
	if tree_patch "$1" -R --dry-run; then
		echo applied
	elif tree_patch "$1" --dry-run; then
		echo absent
	else
		echo conflict
	fi
}

patch_files() { # patch-file: the files it touches
	sed -n 's|^+++ b/||p' "$1"
}

case "$action" in
apply)
	luo_sync_sources "$dst"
	cmp -s "$LUO_REPO/rust_helpers.c" "$helper" 2>/dev/null ||
		cp "$LUO_REPO/rust_helpers.c" "$helper"
	for p in "$LUO_PATCHES"/*.patch; do
		case "$(patch_state "$p")" in
		applied) ;;
		absent) tree_patch "$p" || die "$(basename "$p") failed to apply to $src" ;;
		conflict) if luo_restore_pristine "$src" $(patch_files "$p"); then
				tree_patch "$p" || die "$(basename "$p") failed to apply to $src"
			else
				die "$(basename "$p") neither applies to $src nor is applied there: is it Linux 7.3? ($(patch_files "$p" | tr '\n' ' '))"
			fi ;;
		esac
	done ;;
show)
	echo "tree: $src"
	if [ ! -d "$dst" ]; then
		echo "  $LUO_TREE_SUBDIR/: absent"
	elif [ -n "$(luo_sync_sources "$dst" --dry-run --itemize-changes)" ]; then
		echo "  $LUO_TREE_SUBDIR/: added, differs from $LUO_REPO"
	else
		echo "  $LUO_TREE_SUBDIR/: added, same as $LUO_REPO"
	fi
	if [ ! -e "$helper" ]; then
		echo "  rust/helpers/liveupdate.c: absent"
	elif cmp -s "$LUO_REPO/rust_helpers.c" "$helper"; then
		echo "  rust/helpers/liveupdate.c: added, same as rust_helpers.c"
	else
		echo "  rust/helpers/liveupdate.c: added, differs from rust_helpers.c"
	fi
	for p in "$LUO_PATCHES"/*.patch; do
		st=$(patch_state "$p")
		for f in $(patch_files "$p"); do
			echo "  $f: $st (patches/$(basename "$p"))"
		done
	done ;;
undo)
	for p in $(ls -1r "$LUO_PATCHES"/*.patch); do
		case "$(patch_state "$p")" in
		applied) tree_patch "$p" -R || die "could not reverse $(basename "$p") in $src" ;;
		absent) ;;
		*) luo_restore_pristine "$src" $(patch_files "$p") ||
			die "$(basename "$p"): $src has other changes in $(patch_files "$p" | tr '\n' ' '); not touched" ;;
		esac
	done
	rm -rf "$dst"
	rm -f "$helper"
	msg "undone: $src is as it was before integration" ;;
esac
