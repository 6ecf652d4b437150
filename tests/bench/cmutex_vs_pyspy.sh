#!/usr/bin/env bash
# gridlock dump vs py-spy dump on a CPython process whose 300 threads each block in one C
# mutex (glibc pthread_mutex_lock through ctypes.CDLL) held by the main thread
# (cmutex_300.py): every wait is read below Python. Runs both N times, interleaved, prints each
# median wall time and the median per-round ratio gridlock/py-spy, and checks that gridlock
# shows all 300 threads in native_lock_wait on one pthread_mutex held by MainThread.
#
#   tests/bench/cmutex_vs_pyspy.sh            # N=15, CPython 3.12 from pyenv (else python3)
#   N=7 GRIDLOCK=target/debug/gridlock tests/bench/cmutex_vs_pyspy.sh
#
# Exits 1 if the check fails; wall times are reported, never asserted.
set -euo pipefail

N=${N:-15}
source "$(dirname "$0")/lib.sh"

"$PYTHON" "$here/cmutex_300.py" >"$tmp/out" &
target=$!
disown "$target" # killed in lib.sh's cleanup
for _ in $(seq 300); do
    grep -q '^READY' "$tmp/out" && break
    kill -0 "$target" 2>/dev/null || { echo "target died" >&2; exit 1; }
    sleep 0.1
done
grep -q '^READY' "$tmp/out" || { echo "target never got READY" >&2; exit 1; }
threads=$(ls "/proc/$target/task" | wc -l)
echo "target: pid $target, $("$PYTHON" -V 2>&1), $threads threads"
echo "gridlock: $GRIDLOCK ($("$GRIDLOCK" --version))"
echo "py-spy:   $PYSPY ($("$PYSPY" --version))"

# Every thread is blocked (the main thread in Event.wait, holding the mutex): a stall, exit 3.
run_gridlock() { timed gridlock 3 "$GRIDLOCK" dump --window 0 "$target"; }
run_pyspy() { timed pyspy "" "$PYSPY" dump --pid "$target"; }
compare_interleaved "gridlock dump --window 0" "py-spy dump"

"$GRIDLOCK" dump --window 0 --json "$target" >"$tmp/doc.json" || true
python3 - "$tmp/doc.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
waiting = [t for t in doc["threads"] if t["state"] == "native_lock_wait"]
mutexes = [l for l in doc["locks"] if l["kind"] == "pthread_mutex"]
assert len(waiting) == 300, "want 300 threads in native_lock_wait, got %d" % len(waiting)
assert len(mutexes) == 1 and len(mutexes[0]["waiters"]) == 300, mutexes
main = next(t for t in doc["threads"] if t["name"] == "MainThread")
assert [h["thread"] for h in mutexes[0]["holders"]] == [main["id"]], mutexes[0]["holders"]
print("check: ok, 300 threads in native_lock_wait on one pthread_mutex held by MainThread (pthread_owner)")
PY
