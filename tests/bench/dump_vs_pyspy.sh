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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3 2>/dev/null | head -n1 || true)
    [[ -x $PYTHON ]] || PYTHON=$(python3 -c 'import sys; print(sys.executable)')
fi

echo "building gridlock (release)..." >&2
(cd "$root" && cargo build --release --quiet)
GRIDLOCK=$root/target/release/gridlock

# py-spy: from PATH (resolving a pyenv shim, whose bash start-up would be timed too), else pip.
PYSPY=$(command -v py-spy || true)
if [[ -z $PYSPY ]]; then
    echo "installing py-spy with pip..." >&2
    python3 -m pip install --quiet py-spy >&2
    PYSPY=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/py-spy
fi
if [[ $PYSPY == */shims/* ]] && command -v pyenv >/dev/null; then
    PYSPY=$(pyenv which py-spy)
fi

tmp=$(mktemp -d)
target=
cleanup() {
    if [[ -n $target ]]; then kill -9 "$target" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$PYTHON" "$here/deadlock_300.py" "${SEED:-$RANDOM}" >"$tmp/out" &
target=$!
disown "$target" # killed in cleanup; no "Killed" notice from the shell
for _ in $(seq 300); do
    grep -q '^READY' "$tmp/out" && break
    kill -0 "$target" 2>/dev/null || { echo "target died" >&2; exit 1; }
    sleep 0.1
done
read -r _ dl1 dl2 < <(grep '^READY' "$tmp/out") || { echo "target never got READY" >&2; exit 1; }
threads=$(ls "/proc/$target/task" | wc -l)
echo "target: pid $target, $("$PYTHON" -V 2>&1), $threads threads, deadlocked: $dl1 $dl2"
echo "gridlock: $GRIDLOCK ($("$GRIDLOCK" --version))"
echo "py-spy:   $PYSPY ($("$PYSPY" --version))"

now_ns() { date +%s%N; }
run_gridlock() {
    local t0 t1 rc=0
    t0=$(now_ns)
    "$GRIDLOCK" dump --window 0 "$target" >"$tmp/gridlock.txt" 2>&1 || rc=$?
    t1=$(now_ns)
    [[ $rc == 3 ]] || { echo "gridlock exited $rc (want 3):" >&2; cat "$tmp/gridlock.txt" >&2; exit 1; }
    echo $(((t1 - t0) / 1000))
}
run_pyspy() {
    local t0 t1
    t0=$(now_ns)
    "$PYSPY" dump --pid "$target" >"$tmp/pyspy.txt" 2>&1 || { cat "$tmp/pyspy.txt" >&2; exit 1; }
    t1=$(now_ns)
    echo $(((t1 - t0) / 1000))
}

: >"$tmp/times"
for i in $(seq "$N"); do
    if ((i % 2)); then
        g=$(run_gridlock); p=$(run_pyspy)
    else
        p=$(run_pyspy); g=$(run_gridlock)
    fi
    echo "$g $p" >>"$tmp/times"
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
g_med=$(awk '{print $1 / 1000}' "$tmp/times" | median)
p_med=$(awk '{print $2 / 1000}' "$tmp/times" | median)
ratio=$(awk '{print $1 / $2}' "$tmp/times" | median)
printf 'rounds: %d\n' "$N"
printf 'gridlock dump --window 0   median %8.1f ms  (min %.1f, max %.1f)\n' "$g_med" \
    "$(awk '{print $1 / 1000}' "$tmp/times" | sort -g | head -n1)" "$(awk '{print $1 / 1000}' "$tmp/times" | sort -g | tail -n1)"
printf 'py-spy dump                median %8.1f ms  (min %.1f, max %.1f)\n' "$p_med" \
    "$(awk '{print $2 / 1000}' "$tmp/times" | sort -g | head -n1)" "$(awk '{print $2 / 1000}' "$tmp/times" | sort -g | tail -n1)"
printf 'median ratio gridlock/py-spy: %.2f\n' "$ratio"

# The finding: one deadlock, naming exactly the two deadlocked threads.
"$GRIDLOCK" dump --window 0 --json "$target" >"$tmp/doc.json" || [[ $? == 3 ]]
python3 - "$tmp/doc.json" "$dl1" "$dl2" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
want = sorted(sys.argv[2:4])
names = {t["id"]: t["name"] for t in doc["threads"]}
deadlocks = [f for f in doc["findings"] if f["kind"] == "deadlock"]
assert len(deadlocks) == 1, "want one deadlock, got %d: %s" % (len(deadlocks), [f["summary"] for f in doc["findings"]])
got = sorted(names.get(t, t) for t in deadlocks[0]["threads"])
assert got == want, "deadlock names %s, want %s" % (got, want)
others = [f["kind"] for f in doc["findings"] if f["kind"] != "deadlock"]
print("check: ok, the deadlock finding names only %s and %s (%d threads in the document; other findings: %s)"
      % (want[0], want[1], len(doc["threads"]), ", ".join(others) or "none"))
PY
