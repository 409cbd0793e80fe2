# SPDX-License-Identifier: GPL-2.0
#
# VM helpers shared by run.sh and bench.sh (sourced once CPIO names a
# gen_init_cpio). Sourcing installs the trap that kills a running VM when the
# script ends or is interrupted.

# The QEMU settings of every VM: TCG, 2 CPUs, VM_MEM of memory, the kernel
# log on the first serial port and the test output on the second.
VM_MEM=${VM_MEM:-1G}
VM_APPEND=${VM_APPEND:-console=ttyS0 ignore_loglevel liveupdate=on panic=-1 oops=panic}

QEMU_PID=
cleanup() {
	[ -n "$QEMU_PID" ] && kill -KILL "$QEMU_PID" 2>/dev/null
	QEMU_PID=
}
trap 'cleanup; echo "# interrupted" >&2; exit 130' INT TERM
trap cleanup EXIT

# mkcpio OUT ENTRY... where ENTRY is "path:file" (a file) or "path/" (a dir)
mkcpio() {
	local out=$1 e x
	shift
	{
		echo "dir /dev 0755 0 0"
		echo "nod /dev/console 0600 0 0 c 5 1"
		for x in proc sys tmp; do echo "dir /$x 0755 0 0"; done
		for e in "$@"; do
			echo "file ${e%%:*} ${e#*:} 0755 0 0"
		done
	} >"$out.list"
	"$CPIO" "$out.list" >"$out" || die "gen_init_cpio failed for $out"
}

# boot DIR KERNEL INITRD CMDLINE TIMEOUT [IDLE]: runs one VM to completion.
# Returns 0 when QEMU exited by itself, 124 on timeout: TIMEOUT seconds in
# all, or IDLE seconds (default TIMEOUT) in which neither serial log grew.
# With VM_ICOUNT=1 the guest clock advances one nanosecond per guest
# instruction (-icount shift=0,sleep=off): guest-timed intervals are then
# instruction counts, deterministic and free of TCG's translation cost.
# VM_PLUGIN, if set, is a QEMU -plugin argument (bench.sh -p).
boot() {
	local d=$1 kernel=$2 initrd=$3 extra=$4 tmo=$5 idle=${6:-$5} rc size last=-1 quiet=0
	qemu-system-x86_64 -accel tcg ${VM_ICOUNT:+-icount shift=0,sleep=off} \
		${VM_PLUGIN:+-plugin "$VM_PLUGIN"} \
		-m "$VM_MEM" -smp 2 -no-reboot \
		-nographic -nodefaults -display none \
		-serial file:"$d/kernel.log" -serial file:"$d/output.log" \
		-kernel "$kernel" -initrd "$initrd" \
		-append "$VM_APPEND $extra" \
		</dev/null >"$d/qemu.log" 2>&1 &
	QEMU_PID=$!
	local waited=0
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		if [ $((waited % 10)) = 0 ]; then
			size=$(cat "$d/kernel.log" "$d/output.log" 2>/dev/null | wc -c)
			if [ "$size" = "$last" ]; then
				quiet=$((quiet + 1))
			else
				quiet=0
				last=$size
			fi
		fi
		if [ "$waited" -ge "$((tmo * 10))" ] || [ "$quiet" -ge "$idle" ]; then
			kill -KILL "$QEMU_PID" 2>/dev/null
			wait "$QEMU_PID" 2>/dev/null
			QEMU_PID=
			return 124
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$QEMU_PID"
	rc=$?
	QEMU_PID=
	return "$rc"
}

