#!/usr/bin/env bash
# gridlock dump --core vs py-spy dump --core on one core of a 300-thread CPython process with
# one hidden two-thread deadlock (deadlock_300.py): gcore it once, kill it, then run both on
# the core file N times, interleaved (alternating which goes first); print each median wall
# time and the median of the per-round ratios gridlock/py-spy, and check that gridlock's
# deadlock finding from the core names exactly the two deadlocked threads.
#
#   tests/bench/core_vs_pyspy.sh            # N=9, CPython 3.12 from pyenv (else python3)
#   N=15 PYTHON=/usr/bin/python3.11 tests/bench/core_vs_pyspy.sh
#
# Needs gdb's gcore. Exits 1 if the check fails; wall times are reported, never asserted.
set -euo pipefail

N=${N:-9}
command -v gcore >/dev/null || { echo "gcore not found: apt-get install gdb" >&2; exit 1; }
source "$(dirname "$0")/lib.sh"

start_deadlock_300
# py-spy reads only the bytes a core holds: have gcore keep the file-backed pages too
# (coredump_filter 0x7f: private and shared, anonymous and file-backed, ELF headers).
echo 0x7f >"/proc/$target/coredump_filter"
gcore -o "$tmp/core" "$target" >/dev/null 2>&1
core=$tmp/core.$target
kill -9 "$target"
target=
echo "core: $(du -h "$core" | cut -f1) of a $("$PYTHON" -V 2>&1) process with $threads threads, deadlocked: $dl1 $dl2"
echo "gridlock: $GRIDLOCK ($("$GRIDLOCK" --version))"
echo "py-spy:   $PYSPY ($("$PYSPY" --version))"

run_gridlock() { timed gridlock 3 "$GRIDLOCK" dump --core "$core"; }
run_pyspy() { timed pyspy "" "$PYSPY" dump --core "$core"; }
compare_interleaved "gridlock dump --core" "py-spy dump --core"
grep -q "Thread" "$tmp/pyspy.txt" || { echo "py-spy printed no thread:" >&2; cat "$tmp/pyspy.txt" >&2; exit 1; }

"$GRIDLOCK" dump --core "$core" --json >"$tmp/doc.json" || [[ $? == 3 ]]
check_deadlock "$tmp/doc.json"
