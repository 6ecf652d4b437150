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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3 2>/dev/null | head -n1 || true)
    [[ -x $PYTHON ]] || PYTHON=$(python3 -c 'import sys; print(sys.executable)')
fi
command -v gcore >/dev/null || { echo "gcore not found: apt-get install gdb" >&2; exit 1; }

if [[ -z ${GRIDLOCK:-} ]]; then
    echo "building gridlock (release)..." >&2
    (cd "$root" && cargo build --release --quiet)
    GRIDLOCK=$root/target/release/gridlock
fi

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
disown "$target"
for _ in $(seq 300); do
    grep -q '^READY' "$tmp/out" && break
    kill -0 "$target" 2>/dev/null || { echo "target died" >&2; exit 1; }
    sleep 0.1
done
read -r _ dl1 dl2 < <(grep '^READY' "$tmp/out") || { echo "target never got READY" >&2; exit 1; }
threads=$(ls "/proc/$target/task" | wc -l)
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

now_ns() { date +%s%N; }
run_gridlock() {
    local t0 t1 rc=0
    t0=$(now_ns)
    "$GRIDLOCK" dump --core "$core" >"$tmp/gridlock.txt" 2>&1 || rc=$?
    t1=$(now_ns)
    [[ $rc == 3 ]] || { echo "gridlock exited $rc (want 3):" >&2; cat "$tmp/gridlock.txt" >&2; exit 1; }
    echo $(((t1 - t0) / 1000))
}
run_pyspy() {
    local t0 t1
    t0=$(now_ns)
    "$PYSPY" dump --core "$core" >"$tmp/pyspy.txt" 2>&1 || { cat "$tmp/pyspy.txt" >&2; exit 1; }
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
stats() { awk "{print \$$1 / 1000}" "$tmp/times" | sort -g | awk '{v[NR]=$1} END {printf "min %.1f, max %.1f", v[1], v[NR]}'; }
printf 'rounds: %d\n' "$N"
printf 'gridlock dump --core   median %8.1f ms  (%s)\n' "$(awk '{print $1 / 1000}' "$tmp/times" | median)" "$(stats 1)"
printf 'py-spy dump --core     median %8.1f ms  (%s)\n' "$(awk '{print $2 / 1000}' "$tmp/times" | median)" "$(stats 2)"
printf 'median ratio gridlock/py-spy: %.2f\n' "$(awk '{print $1 / $2}' "$tmp/times" | median)"
grep -q "Thread" "$tmp/pyspy.txt" || { echo "py-spy printed no thread:" >&2; cat "$tmp/pyspy.txt" >&2; exit 1; }

"$GRIDLOCK" dump --core "$core" --json >"$tmp/doc.json" || [[ $? == 3 ]]
python3 - "$tmp/doc.json" "$dl1" "$dl2" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
want = sorted(sys.argv[2:4])
names = {t["id"]: t["name"] for t in doc["threads"]}
deadlocks = [f for f in doc["findings"] if f["kind"] == "deadlock"]
assert len(deadlocks) == 1, "want one deadlock, got %d: %s" % (len(deadlocks), [f["summary"] for f in doc["findings"]])
got = sorted(names.get(t, t) for t in deadlocks[0]["threads"])
assert got == want, "deadlock names %s, want %s" % (got, want)
print("check: ok, the deadlock from the core names only %s and %s (%d threads in the document)"
      % (want[0], want[1], len(doc["threads"])))
PY
