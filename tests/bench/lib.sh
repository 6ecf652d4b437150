# Shared by the benches (dump_vs_pyspy.sh, core_vs_pyspy.sh, record_overhead.sh), sourced
# after `set -euo pipefail`: pick the interpreter, build gridlock, find py-spy, start the
# 300-thread deadlocked target, time two commands interleaved, print medians, and check that
# gridlock's deadlock finding names exactly the two deadlocked threads. It times nothing by
# itself and asserts no wall time.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# PYTHON: CPython 3.12 from pyenv, else python3.
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3 2>/dev/null | head -n1 || true)
    [[ -x $PYTHON ]] || PYTHON=$(python3 -c 'import sys; print(sys.executable)')
fi

# GRIDLOCK: the release build, unless given.
if [[ -z ${GRIDLOCK:-} ]]; then
    echo "building gridlock (release)..." >&2
    (cd "$root" && cargo build --release --quiet)
    GRIDLOCK=$root/target/release/gridlock
fi

# PYSPY: from PATH (resolving a pyenv shim, whose bash start-up would be timed too), else pip.
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

# Start deadlock_300.py and wait for READY: sets target (its pid), dl1 and dl2 (the two
# deadlocked threads' names) and threads (how many it has).
start_deadlock_300() {
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
}

now_ns() { date +%s%N; }

# Microseconds one run of the command after $1 and $2 takes: its output goes to
# $tmp/$1.txt and its exit code must be $2 (empty: 0).
timed() {
    local out=$1 want=$2 t0 t1 rc=0
    shift 2
    t0=$(now_ns)
    "$@" >"$tmp/$out.txt" 2>&1 || rc=$?
    t1=$(now_ns)
    [[ $rc == "${want:-0}" ]] || { echo "$1 exited $rc (want ${want:-0}):" >&2; cat "$tmp/$out.txt" >&2; exit 1; }
    echo $(((t1 - t0) / 1000))
}

# N rounds of run_gridlock and run_pyspy (defined by the caller), alternating which goes
# first; then each median with min and max, labelled $1 and $2, and the median ratio.
compare_interleaved() {
    : >"$tmp/times"
    local g p i
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
    printf 'rounds: %d (load average: %s)\n' "$N" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%-26s median %8.1f ms  (%s)\n' "$1" "$(awk '{print $1 / 1000}' "$tmp/times" | median)" "$(stats 1)"
    printf '%-26s median %8.1f ms  (%s)\n' "$2" "$(awk '{print $2 / 1000}' "$tmp/times" | median)" "$(stats 2)"
    printf 'median ratio gridlock/py-spy: %.2f\n' "$(awk '{print $1 / $2}' "$tmp/times" | median)"
}

# The document in $1 has one deadlock, naming exactly $dl1 and $dl2.
check_deadlock() {
    python3 - "$1" "$dl1" "$dl2" <<'PY'
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
}
