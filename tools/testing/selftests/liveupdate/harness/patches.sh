#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# patches.sh export DIR   writes the integration as a `git format-patch`
#                         series (cover letter + one patch per patches/*.patch)
#                         that applies with `git am` to a clean Linux 7.3 tree
# patches.sh apply        applies that series with `git am` to a pristine git
#                         copy of the tree `lu` uses ($LUO_CACHE/git/<tree>),
#                         from which the rust-minrustc variant is built
#
# The series: patches/0001 (bindings) with rust/helpers/liveupdate.c, patches/
# 0002 (Kconfig choice, Makefile) with kernel/liveupdate/rust_luo/, then the
# remaining patches/*.patch as they are. Commit messages are the patch files'
# headers; author and Signed-off-by are the git identity of whoever exports;
# the date is that of the repository's HEAD, so the same sources give the same
# series.
set -euo pipefail
. "$(dirname "$0")/common.sh"

src=$(luo_src_dir) || die "no kernel source; run: $LUO_TESTS/lu setup"

git_id() {
	local name email
	name=$(git -C "$LUO_REPO" config user.name 2>/dev/null || true)
	email=$(git -C "$LUO_REPO" config user.email 2>/dev/null || true)
	export GIT_AUTHOR_NAME=${name:-Rust LUO developers} GIT_COMMITTER_NAME=${name:-Rust LUO developers}
	export GIT_AUTHOR_EMAIL=${email:-rust-luo@localhost} GIT_COMMITTER_EMAIL=${email:-rust-luo@localhost}
	local date
	date=$(git -C "$LUO_REPO" log -1 --format=%cI 2>/dev/null || echo 2026-01-01T00:00:00Z)
	export GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date
}

# The files of the tree a patch touches.
touched() { sed -n 's|^+++ b/||p' "$1"; }

# The generated files that go with a patch of patches/.
add_files() { # repo patch-file
	case "$(basename "$2")" in
	0001-*)
		mkdir -p "$1/rust/helpers"
		cp "$LUO_REPO/rust_helpers.c" "$1/rust/helpers/liveupdate.c" ;;
	0002-*)
		luo_sync_sources "$1/$LUO_TREE_SUBDIR" ;;
	esac
}

# export DIR: builds a small repository holding only the files the series
# touches (their pristine content: the tree's, with our patches reversed if
# they are applied) and formats one commit per patch.
export_series() { # dir
	local out=$1 repo p f
	git_id
	repo=$(mktemp -d)
	for p in "$LUO_PATCHES"/*.patch; do
		for f in $(touched "$p"); do
			mkdir -p "$repo/$(dirname "$f")"
			cp "$src/$f" "$repo/$f"
		done
	done
	for p in $(ls -1r "$LUO_PATCHES"/*.patch); do
		if patch -d "$repo" -p1 -s -f --fuzz=0 -R --dry-run <"$p" >/dev/null 2>&1; then
			patch -d "$repo" -p1 -s -f --fuzz=0 -R --no-backup-if-mismatch <"$p" >/dev/null
		fi
	done
	git -C "$repo" init -q -b luo
	git -C "$repo" add -A
	git -C "$repo" commit -q -m "Linux 7.3 (the files the series touches)"
	git -C "$repo" tag luo-base
	for p in "$LUO_PATCHES"/*.patch; do
		add_files "$repo" "$p"
		patch -d "$repo" -p1 -s -f --fuzz=0 --no-backup-if-mismatch <"$p" >/dev/null ||
			die "$(basename "$p") does not apply to the pristine files of $src"
		git -C "$repo" add -A
		sed '/^diff --git /,$d' "$p" | git -C "$repo" commit -q -s -F -
	done
	git -C "$repo" config branch.luo.description "liveupdate: a Rust Live Update Orchestrator

A drop-in replacement, in Rust, for the Live Update Orchestrator of
kernel/liveupdate/luo_*.c, chosen by a Kconfig choice under
CONFIG_LIVEUPDATE. It keeps the uAPI (include/uapi/linux/liveupdate.h),
the in-kernel API (include/linux/liveupdate.h; mm/memfd_luo.c and
lib/tests/liveupdate.c are unchanged) and the serialized hand-over
(include/linux/kho/abi/luo.h, \"luo-v5\") byte for byte, so a kernel
running the C LUO can live-update into the Rust one and back."
	mkdir -p "$out"
	rm -f "$out"/*.patch
	git -C "$repo" format-patch -q --cover-letter --cover-from-description=subject \
		-o "$out" luo-base..luo
	rm -rf "$repo"
	ls -1 "$out"/*.patch
}

# apply: the pristine git copy, reset to its base and given the series with
# git am when the series changed. Files whose content the new series does not
# change keep their time stamps, so make rebuilds only what changed.
apply_series() {
	local copy series sum f keep
	copy="$LUO_CACHE/git/$(luo_tree_id)"
	if ! git -C "$copy" rev-parse -q --verify luo-base >/dev/null 2>&1; then
		msg "making a pristine git copy of $src in $copy (a few minutes, once)"
		rm -rf "$copy" "$copy.tmp"
		mkdir -p "$copy.tmp"
		rsync -a --exclude=/.git "$src/" "$copy.tmp/"
		"$LUO_HARNESS/integrate.sh" undo "$copy.tmp" >/dev/null
		git -C "$copy.tmp" init -q -b luo
		git -C "$copy.tmp" config gc.auto 0
		git -C "$copy.tmp" add -f -A .
		git -C "$copy.tmp" -c user.name=luo -c user.email=luo@localhost \
			commit -q -m "$(make -s -C "$copy.tmp" kernelversion 2>/dev/null), pristine"
		git -C "$copy.tmp" tag luo-base
		mv "$copy.tmp" "$copy"
	fi
	series="$copy/.git/luo-series"
	export_series "$series.new" >/dev/null
	sum=$(cat "$series.new"/*.patch | sed '/^From [0-9a-f]\{40\} /d' | sha256sum | cut -c1-16)
	if [ "$(cat "$copy/.git/luo-series.sum" 2>/dev/null)" = "$sum" ]; then
		rm -rf "$series.new"
		echo "ok $(ls "$series"/0*.patch | grep -vc 0000-) patches applied (unchanged)"
		return 0
	fi
	keep=$(mktemp -d)
	for f in $(cat "$series"/*.patch "$series.new"/*.patch 2>/dev/null | sed -n 's|^+++ b/||p' | sort -u); do
		if [ -e "$copy/$f" ]; then
			mkdir -p "$keep/$(dirname "$f")"
			cp -p "$copy/$f" "$keep/$f"
		fi
	done
	rm -rf "$series" "$copy/.git/luo-series.sum"
	mv "$series.new" "$series"
	git -C "$copy" am --abort >/dev/null 2>&1 || true
	git -C "$copy" checkout -q -f -B luo luo-base
	git -C "$copy" clean -q -f -d -x "$LUO_TREE_SUBDIR" rust/helpers
	if ! out=$(git_id; git -C "$copy" am -q $(ls -1 "$series"/0*.patch | grep -v /0000-) 2>&1); then
		git -C "$copy" am --abort >/dev/null 2>&1 || true
		rm -rf "$keep"
		echo "fail: git am: $(grep -m 1 -E 'error|failed|does not apply' <<<"$out")"
		return 1
	fi
	for f in $(cd "$keep" && find . -type f); do
		if cmp -s "$keep/$f" "$copy/$f"; then
			touch -r "$keep/$f" "$copy/$f"
		fi
	done
	rm -rf "$keep"
	echo "$sum" >"$copy/.git/luo-series.sum"
	echo "ok $(ls "$series"/0*.patch | grep -vc 0000-) patches applied with git am to $(git -C "$copy" log -1 --format=%s luo-base)"
}

case "${1:-}" in
export) export_series "${2:?usage: patches.sh export DIR}" ;;
apply) apply_series ;;
*) sed -n '4,9s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac
