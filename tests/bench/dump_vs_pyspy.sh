#!/usr/bin/env bash
# gridlock dump vs py-spy dump on a 300-thread CPython process with one hidden two-thread
# deadlock. Runs both N times, interleaved (alternating which goes first), prints each
# median wall time and the median of the per-round ratios gridlock/py-spy, and checks that
# gridlock's deadlock finding names exactly the two deadlocked threads.
#
#   tests/bench/dump_vs_pyspy.sh            # N=15, CPython 3.12 from pyenv (else python3)
#   N=30 PYTHON=/usr/bin/python3.11 tests/bench/dump_vs_pyspy.sh
#
# Exits 1 if the check fails; wall times are reported, never asserted.
set -euo pipefail

N=${N:-15}
source "$(dirname "$0")/lib.sh"

start_deadlock_300
echo "target: pid $target, $("$PYTHON" -V 2>&1), $threads threads, deadlocked: $dl1 $dl2"
echo "gridlock: $GRIDLOCK ($("$GRIDLOCK" --version))"
echo "py-spy:   $PYSPY ($("$PYSPY" --version))"

run_gridlock() { timed gridlock 3 "$GRIDLOCK" dump --window 0 "$target"; }
run_pyspy() { timed pyspy "" "$PYSPY" dump --pid "$target"; }
compare_interleaved "gridlock dump --window 0" "py-spy dump"

"$GRIDLOCK" dump --window 0 --json "$target" >"$tmp/doc.json" || [[ $? == 3 ]]
check_deadlock "$tmp/doc.json"
