# SPDX-License-Identifier: GPL-2.0
# Results: record() and logdir() (to files inside a job), parallel jobs, and
# the KTAP report. Sourced by run.sh.
declare -a R_NAME R_STATUS R_MSG
declare -A LOGDIR
# Inside a job (RESULTS names its file) results and log directories go to
# that file; the main shell reads them back in job order (collect_jobs).
RESULTS=
record() { # name pass|fail|skip message
	if [ -n "$RESULTS" ]; then
		printf 'R\t%s\t%s\t%s\n' "$1" "$2" "$(printf '%s' "${3:-}" | base64 -w0)" >>"$RESULTS"
		return
	fi
	R_NAME+=("$1"); R_STATUS+=("$2"); R_MSG+=("${3:-}")
}
logdir() { # key dir
	if [ -n "$RESULTS" ]; then
		printf 'L\t%s\t%s\n' "$1" "$2" >>"$RESULTS"
		return
	fi
	LOGDIR[$1]=$2
}

# Tests run as jobs, PARALLEL at once (VMs of their own; default: one per CPU),
# each in a subshell that kills its VM if it is interrupted.
PARALLEL=${PARALLEL:-$(nproc)}
JOB_N=0
job() { # function args...
	local f
	JOB_N=$((JOB_N + 1))
	f=$(printf '%s/jobs/%05d' "$RUN_DIR" "$JOB_N")
	if [ "$PARALLEL" -le 1 ]; then
		"$@"
		return
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do
		wait -n || true
	done
	: >"$f"
	( RESULTS=$f
	  trap cleanup EXIT
	  trap 'cleanup; exit 130' INT TERM
	  "$@" ) &
}
collect_jobs() {
	local f kind a b c
	wait
	for f in "$RUN_DIR"/jobs/*; do
		[ -e "$f" ] || continue
		while IFS=$'\t' read -r kind a b c; do
			case "$kind" in
			R) R_NAME+=("$a"); R_STATUS+=("$b"); R_MSG+=("$(base64 -d <<<"$c")") ;;
			L) LOGDIR[$a]=$b ;;
			esac
		done <"$f"
	done
}

# Prints diagnostics of a failed boot.
show_logs() { # dir
	local d=$1
	echo "# kernel log: $d/kernel.log (last 40 lines)"
	tail -n 40 "$d/kernel.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
	echo "# test output: $d/output.log (last 15 lines)"
	tail -n 15 "$d/output.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
}


# The KTAP report of every result, in the order they were recorded. A skip is
# "ok N name # SKIP reason"; a failure listed in xfail.txt is "not ok N name #
# TODO reason" and counted apart (a listed test that passes is a failure:
# remove it from the list). Returns non-zero if anything failed.
report() {
	local x n name st why num variant ld pass=0 fail=0 skip=0 todo=0
	local -A XF SHOWN
	if [ -e "$XFAIL" ]; then
		while read -r x _; do
			case "$x" in ''|'#'*) continue ;; esac
			XF[$x]=1
		done <"$XFAIL"
	fi
	echo "KTAP version 1"
	echo "1..${#R_NAME[@]}"
	for n in "${!R_NAME[@]}"; do
		name=${R_NAME[$n]} st=${R_STATUS[$n]} why=${R_MSG[$n]}
		num=$((n + 1))
		# A debug variant shares its implementation's entries: c/T covers c-debug/T.
		variant=${name%%/*}
		if [ -n "${XF[$name]:-}" ] ||
		   { [[ "$variant" == *-debug ]] && [ -n "${XF[${variant%-debug}/${name#*/}]:-}" ]; }; then
			if [ "$st" = pass ]; then
				echo "not ok $num $name # passes but is listed in xfail.txt: remove it"
				fail=$((fail + 1))
			else
				echo "not ok $num $name # TODO expected failure: $why"
				todo=$((todo + 1))
			fi
			continue
		fi
		case "$st" in
		pass)
			echo "ok $num $name"
			[ -z "$why" ] || sed 's/^# */#   /' <<<"$why"
			pass=$((pass + 1)) ;;
		skip)
			echo "ok $num $name # SKIP ${why# }"
			skip=$((skip + 1)) ;;
		*)
			echo "not ok $num $name # $st: $why"
			fail=$((fail + 1))
			ld=${LOGDIR[$name]:-${LOGDIR[${name%.*}]:-}}
			if [ -n "$ld" ] && [ -z "${SHOWN[$ld]:-}" ]; then
				show_logs "$ld"
				SHOWN[$ld]=1
			fi ;;
		esac
	done
	echo "# logs: $RUN_DIR"
	echo "$pass passed, $fail failed, $skip skipped, $todo expected failures"
	[ "$fail" = 0 ]
}
