# SPDX-License-Identifier: GPL-2.0
# The test programs, compiled against the tree's headers into $BIN: the init
# of the VMs, upstream's selftests (built as upstream builds them) and this
# project's own tests (tests/kexec/: two kernels, tests/single/: one), whose
# names go to OWN_KEXEC and OWN_SINGLE; the test modules (tests/modules/),
# built for a kernel on first use. Sourced by run.sh.
NOLIBC_CFLAGS=(-static -nostdinc -nostdlib -fno-asynchronous-unwind-tables
	       -fno-ident -fno-stack-protector -I "$hdr"
	       -I "$src/tools/include/nolibc")
cc_or_die() {
	"$@" 2>"$RUN_DIR/cc.log" || { cat "$RUN_DIR/cc.log" >&2; die "compile failed: $*"; }
}
cc_or_die gcc -Os -s -Wall -Werror "${NOLIBC_CFLAGS[@]}" -o "$BIN/init" "$LUO_HARNESS/init.c"
cc_or_die gcc -static -O2 -Wall -I "$hdr" -I "$sel/lib/include" \
	-o "$BIN/liveupdate" "$sel/liveupdate.c" "$sel/lib/lu_utils.c"
KEXEC_TESTS="luo_kexec_simple luo_multi_session luo_stress_files luo_stress_sessions"
for t in $KEXEC_TESTS; do
	# Built exactly as upstream's vmtest.sh builds them.
	cc_or_die gcc -O2 "${NOLIBC_CFLAGS[@]}" -I "$sel/lib/include" \
		-o "$BIN/$t" "$sel/$t.c" "$sel/lib/lu_utils.c"
done
# This project's own tests: tests/kexec/ (two kernels), tests/single/ (one).
OWN_KEXEC="" OWN_SINGLE=""
for t in "$LUO_TESTS"/tests/kexec/*.c "$LUO_TESTS"/tests/single/*.c; do
	[ -e "$t" ] || continue
	n=$(basename "$t" .c)
	cc_or_die gcc -static -O2 -Wall -Werror -I "$hdr" -I "$sel/lib/include" -I "$sel/.." \
		-o "$BIN/$n" "$t" "$sel/lib/lu_utils.c"
	case "$t" in
	*/kexec/*) OWN_KEXEC="$OWN_KEXEC $n" ;;
	*) OWN_SINGLE="$OWN_SINGLE $n" ;;
	esac
done

# The user space (tools/liveupdate, userspace.sh): static binaries of luod,
# luoctl and the luod tests' programs. A build failure fails those tests
# (run_kexec finds no program) and userspace/build.
US_TESTS=""
for t in "$LUO_REPO"/tools/liveupdate/vmtests/src/bin/luod_*.rs; do
	[ -e "$t" ] && US_TESTS="$US_TESTS $(basename "$t" .rs)"
done
OWN_KEXEC="$OWN_KEXEC$US_TESTS"
US_BUILD_ERR=""
if [ -n "$US_TESTS" ]; then
	if us_dir=$("$LUO_HARNESS/userspace.sh" build "" "$RUN_DIR/userspace-build.log"); then
		for b in luod luoctl luo-guest $US_TESTS; do
			cp "$us_dir/$b" "$BIN/$b"
		done
	else
		US_BUILD_ERR="$(grep -m 1 -E '^(error|warning)' "$RUN_DIR/userspace-build.log" ||
			tail -n 1 "$RUN_DIR/userspace-build.log") (see $RUN_DIR/userspace-build.log)"
	fi
fi

# The test module NAME built for a variant's kernel (tests/modules/), once.
declare -A MODULE_KO
module_for() { # variant name: prints the .ko
	local v=$1 m=$2 d="$RUN_DIR/modules/$1"
	if [ -z "${MODULE_KO[$v/$m]:-}" ]; then
		mkdir -p "$d"
		cp "$LUO_TESTS"/tests/modules/* "$LUO_REPO/luo_test.h" "$d/"
		( luo_use_toolchain "$v"
		  luo_make "$(luo_variant_src "$v")" "${KDIR[$v]}" M="$d" modules ) >"$d/build.log" 2>&1 ||
			{ echo "module $m failed to build for $v (see $d/build.log)" >&2; return 1; }
		MODULE_KO[$v/$m]="$d/$m.ko"
	fi
	echo "${MODULE_KO[$v/$m]}"
}
