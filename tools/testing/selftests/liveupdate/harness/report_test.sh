#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# report_test.sh: the runner's reporting (results.sh) fed canned results,
# checked line by line. Prints what it found wrong, nothing when all is
# right, and exits non-zero on a problem. run.sh runs it as harness/report.
#
# The script: with two jobs at once, a slow job's pass and a fast job's
# failure (with logs), then a skip, a failure listed in xfail.txt, a listed
# test that passes, a diagnostic under a pass, and a result recorded by the
# main shell before any job. Checked: results stream in the order they end
# (the fast failure before the slow pass), each followed by its progress
# line; a failure shows its logs at once; TODO and SKIP; the plan at the end;
# the summary; the history the next run reads.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cleanup() { :; }
wrong=0
bad() { echo "report_test: $*"; wrong=1; }

RUN_DIR=$t/run XFAIL=$t/xfail REPORT_HISTORY=$t/history PARALLEL=2
mkdir -p "$RUN_DIR/jobs" "$t/logs"
printf 'x/listed reason\nx/listed-passes reason\n' >"$XFAIL"
echo "a kernel log line" >"$t/logs/kernel.log"
echo "an output line" >"$t/logs/output.log"
echo "7 300" >"$REPORT_HISTORY"
. "$here/results.sh"

slow() { sleep 1; record x/slow pass "# a diagnostic"; }
fast() { logdir x/fast "$t/logs"; record x/fast fail "it broke"; }
out=$(
	report_begin
	record x/first pass
	job slow
	job fast
	job record x/skipped skip "no such thing"
	job record x/listed fail "known"
	job record x/listed-passes pass
	collect_jobs
	report_end
	echo "status=$?"
)

lines=$(grep -E '^(not )?ok ' <<<"$out" | sed -E 's/^((not )?ok) [0-9]+ ([^ ]+).*/\1 \3/')
want="ok x/first
not ok x/fast
ok x/skipped
not ok x/listed
not ok x/listed-passes
ok x/slow"
# The last four finish in any order among themselves, but after x/fast's
# start and before x/slow: check the fixed points and the set.
[ "$(head -n 2 <<<"$lines")" = "$(head -n 2 <<<"$want")" ] ||
	bad "first two results not 'x/first' then the fast failure: $(head -n 2 <<<"$lines" | tr '\n' ';')"
[ "$(tail -n 1 <<<"$lines")" = "ok x/slow" ] || bad "the slow job's pass is not last"
[ "$(sort <<<"$lines")" = "$(sort <<<"$want")" ] || bad "results differ: $(tr '\n' ';' <<<"$lines")"
# Numbers count up from 1 in print order.
[ "$(grep -E '^(not )?ok ' <<<"$out" | sed -E 's/^(not )?ok ([0-9]+) .*/\2/' | tr '\n' ' ')" = "1 2 3 4 5 6 " ] ||
	bad "numbers are not 1..6 in order"
grep -qx 'KTAP version 1' <<<"$(head -n 1 <<<"$out")" || bad "no KTAP version line first"
# Each result is followed by its progress line (after its diagnostics/logs).
n_prog=$(grep -c '^# progress: ' <<<"$out")
[ "$n_prog" = 6 ] || bad "$n_prog progress lines, not 6"
grep -q '^# progress: 1/7, 1 passed, 0 failed, [0-9]*s, about [0-9ms]* left$' <<<"$out" ||
	bad "first progress line malformed: $(grep -m 1 '^# progress' <<<"$out")"
grep -q '^# progress: 6/7, 2 passed, 2 failed, ' <<<"$out" || bad "last progress line counts wrong"
# A failure's logs come right under its line, before the next result.
sed -n '/^not ok 2 x\/fast/,/^# progress/p' <<<"$out" | grep -q '^#   a kernel log line$' ||
	bad "the failure's kernel log is not shown under it"
grep -q '^not ok 2 x/fast # fail: it broke$' <<<"$out" || bad "failure line wrong"
grep -qE '^ok [0-9]+ x/skipped # SKIP no such thing$' <<<"$out" || bad "SKIP line wrong"
grep -qE '^not ok [0-9]+ x/listed # TODO expected failure: known$' <<<"$out" || bad "TODO line wrong"
grep -qE '^not ok [0-9]+ x/listed-passes # passes but is listed in xfail.txt: remove it$' <<<"$out" ||
	bad "a listed pass is not a failure"
sed -n '/^ok [0-9]* x\/slow/,$p' <<<"$out" | sed -n 2p | grep -q '^#   a diagnostic$' ||
	bad "the pass's diagnostic is not under it"
# The plan comes after the last result; the summary last.
[ "$(grep -E '^(1\.\.|(not )?ok )' <<<"$out" | tail -n 1)" = "1..6" ] || bad "no plan 1..6 after the last result"
grep -qx '2 passed, 2 failed, 1 skipped, 1 expected failures' <<<"$out" ||
	bad "summary wrong: $(grep passed, <<<"$out" | tail -n 1)"
grep -qx 'status=1' <<<"$out" || bad "report_end did not fail"
read -r n s <"$REPORT_HISTORY"
[ "$n" = 6 ] && [ "$s" -ge 1 ] || bad "history not written: $n $s"
[ "$wrong" = 0 ] || { echo "$out" | sed 's/^/report_test: | /'; exit 1; }
