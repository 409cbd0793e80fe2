# SPDX-License-Identifier: GPL-2.0
# Results: record() and logdir() (to files inside a job), parallel jobs, and
# the KTAP report, streamed: each result is printed as soon as it is known
# (a job's when the job ends), with a progress line after it, and the plan
# comes last ("1..N" after the last result, as TAP allows). Sourced by run.sh
# and lint.sh; harness/report_test.sh feeds it canned results.
declare -a R_NAME=() R_STATUS=() R_MSG=()
declare -A LOGDIR
# Inside a job (RESULTS names its file) results and log directories go to
# that file; the main shell reads it back when the job has ended.
RESULTS=
record() { # name pass|fail|skip message
	if [ -n "$RESULTS" ]; then
		printf 'R\t%s\t%s\t%s\n' "$1" "$2" "$(printf '%s' "${3:-}" | base64 -w0)" >>"$RESULTS"
		return
	fi
	R_NAME+=("$1"); R_STATUS+=("$2"); R_MSG+=("${3:-}")
	report_emit
}
logdir() { # key dir
	if [ -n "$RESULTS" ]; then
		printf 'L\t%s\t%s\n' "$1" "$2" >>"$RESULTS"
		return
	fi
	LOGDIR[$1]=$2
}

# Tests run as jobs, PARALLEL at once (VMs of their own; default: one per CPU),
# each in a subshell that kills its VM if it is interrupted and marks its file
# done ("D") when it ends.
PARALLEL=${PARALLEL:-$(nproc)}
JOB_N=0
JOB_COLLECTED=0
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
		collect_done
	done
	: >"$f"
	( RESULTS=$f
	  trap cleanup EXIT
	  trap 'cleanup; exit 130' INT TERM
	  "$@"
	  printf 'D\n' >>"$f" ) &
}
# Reads back the files of the jobs that ended, in the order they ended as far
# as polling can tell, and prints their results. With "all" (every job has
# ended), also the files of jobs that ended without their mark.
declare -A JOB_DONE
collect_done() { # [all]
	local f kind a b c
	for f in "$RUN_DIR"/jobs/*; do
		[ -e "$f" ] && [ -z "${JOB_DONE[$f]:-}" ] || continue
		[ "${1:-}" = all ] || [ "$(tail -n 1 "$f" 2>/dev/null)" = D ] || continue
		JOB_DONE[$f]=1
		# Log directories first: a failure's line shows its logs.
		while IFS=$'\t' read -r kind a b c; do
			[ "$kind" = L ] && LOGDIR[$a]=$b
		done <"$f"
		while IFS=$'\t' read -r kind a b c; do
			[ "$kind" = R ] || continue
			R_NAME+=("$a"); R_STATUS+=("$b"); R_MSG+=("$(base64 -d <<<"$c")")
		done <"$f"
	done
	report_emit
}
collect_jobs() {
	while [ -n "$(jobs -rp)" ]; do
		wait -n || true
		collect_done
	done
	wait
	collect_done all
}

# Prints diagnostics of a failed boot.
show_logs() { # dir
	local d=$1
	echo "# kernel log: $d/kernel.log (last 40 lines)"
	tail -n 40 "$d/kernel.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
	echo "# test output: $d/output.log (last 15 lines)"
	tail -n 15 "$d/output.log" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
}


# The KTAP report, streamed. A skip is "ok N name # SKIP reason"; a failure
# listed in xfail.txt is "not ok N name # TODO reason" and counted apart (a
# listed test that passes is a failure: remove it from the list). After each
# result: "# progress: DONE/TOTAL, P passed, F failed, ELAPSED, about LEFT
# left", TOTAL and LEFT from the previous run of the same tests (kept in
# $REPORT_HISTORY; "?" before there is one).
declare -A XF SHOWN
REPORT_BEGUN=0 REPORT_SHOWN=0 R_PASS=0 R_FAIL=0 R_SKIP=0 R_TODO=0
REPORT_T0=$SECONDS REPORT_PREV_N="" REPORT_PREV_S=""
REPORT_HISTORY=${REPORT_HISTORY:-}
report_begin() {
	local x
	if [ -e "${XFAIL:-/dev/null}" ]; then
		while read -r x _; do
			case "$x" in ''|'#'*) continue ;; esac
			XF[$x]=1
		done <"$XFAIL"
	fi
	if [ -n "$REPORT_HISTORY" ] && [ -s "$REPORT_HISTORY" ]; then
		read -r REPORT_PREV_N REPORT_PREV_S <"$REPORT_HISTORY" || true
	fi
	REPORT_T0=$SECONDS
	echo "KTAP version 1"
	REPORT_BEGUN=1
}
hms() { # seconds
	if [ "$1" -ge 3600 ]; then
		printf '%dh%02dm' $(($1 / 3600)) $(($1 % 3600 / 60))
	elif [ "$1" -ge 60 ]; then
		printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
	else
		printf '%ds' "$1"
	fi
}
report_progress() {
	local done=$REPORT_SHOWN el=$((SECONDS - REPORT_T0)) total="?" left="?"
	if [ -n "$REPORT_PREV_N" ]; then
		total=$REPORT_PREV_N
		[ "$done" -le "$total" ] || total=$done
		left=$(hms $((REPORT_PREV_S > el ? REPORT_PREV_S - el : 0)))
	fi
	echo "# progress: $done/$total, $R_PASS passed, $R_FAIL failed, $(hms "$el"), about $left left"
}
# Prints result n (0-based) as KTAP result number n+1.
report_line() { # n
	local n=$1 name st why num variant ld
	name=${R_NAME[$n]} st=${R_STATUS[$n]} why=${R_MSG[$n]}
	num=$((n + 1))
	# A debug variant shares its implementation's entries: c/T covers c-debug/T.
	variant=${name%%/*}
	if [ -n "${XF[$name]:-}" ] ||
	   { [[ "$variant" == *-debug ]] && [ -n "${XF[${variant%-debug}/${name#*/}]:-}" ]; }; then
		if [ "$st" = pass ]; then
			echo "not ok $num $name # passes but is listed in xfail.txt: remove it"
			R_FAIL=$((R_FAIL + 1))
		else
			echo "not ok $num $name # TODO expected failure: $why"
			R_TODO=$((R_TODO + 1))
		fi
		return
	fi
	case "$st" in
	pass)
		echo "ok $num $name"
		[ -z "$why" ] || sed 's/^# */#   /' <<<"$why"
		R_PASS=$((R_PASS + 1)) ;;
	skip)
		echo "ok $num $name # SKIP ${why# }"
		R_SKIP=$((R_SKIP + 1)) ;;
	*)
		echo "not ok $num $name # $st: $why"
		R_FAIL=$((R_FAIL + 1))
		ld=${LOGDIR[$name]:-${LOGDIR[${name%.*}]:-}}
		if [ -n "$ld" ] && [ -z "${SHOWN[$ld]:-}" ]; then
			show_logs "$ld"
			SHOWN[$ld]=1
		fi ;;
	esac
}
# Prints every result not printed yet (once the report has begun).
report_emit() {
	[ "$REPORT_BEGUN" = 1 ] || return 0
	while [ "$REPORT_SHOWN" -lt "${#R_NAME[@]}" ]; do
		report_line "$REPORT_SHOWN"
		REPORT_SHOWN=$((REPORT_SHOWN + 1))
		report_progress
	done
}
# The plan, the logs' place and the summary; keeps this run's count and time
# for the next one's progress. Returns non-zero if anything failed.
report_end() {
	[ "$REPORT_BEGUN" = 1 ] || report_begin
	report_emit
	echo "1..$REPORT_SHOWN"
	echo "# logs: $RUN_DIR"
	echo "$R_PASS passed, $R_FAIL failed, $R_SKIP skipped, $R_TODO expected failures"
	[ -z "$REPORT_HISTORY" ] || echo "$REPORT_SHOWN $((SECONDS - REPORT_T0))" >"$REPORT_HISTORY"
	[ "$R_FAIL" = 0 ]
}
# The whole report at once (lint.sh run by itself).
report() {
	[ "$REPORT_BEGUN" = 1 ] || report_begin
	report_end
}
