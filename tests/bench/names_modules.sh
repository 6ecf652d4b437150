#!/usr/bin/env bash
# The cost of the lock-name search: `gridlock dump --window 0` of names_modules.py with 5,000
# generated modules' worth of globals, against the same deadlock with none. The deadlock's
# hidden lock is reached by no global, so the search walks all it may (to its bounds).
#
#   tests/bench/names_modules.sh                 # N=9 rounds, MODULES=5000, pyenv's 3.12
#   N=15 MODULES=2000 PYTHON=/usr/bin/python3.11 tests/bench/names_modules.sh
#
# Prints median wall times, the note of a search that stopped early, and the lock names.
set -euo pipefail
N=${N:-9}
MODULES=${MODULES:-5000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3 2>/dev/null | head -n1 || true)
    [[ -x $PYTHON ]] || PYTHON=$(python3 -c 'import sys; print(sys.executable)')
fi
GRIDLOCK=${GRIDLOCK:-}
if [[ -z $GRIDLOCK ]]; then
    echo "building gridlock (release)..." >&2
    (cd "$root" && cargo build --release --quiet)
    GRIDLOCK=$root/target/release/gridlock
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp" /tmp/gridlock-names-*
}
trap cleanup EXIT

start() { # $1: modules; sets $started to the pid (no subshell: cleanup must see it)
    "$PYTHON" "$here/names_modules.py" "$1" >"$tmp/out.$1" 2>&1 </dev/null &
    local pid=$!
    disown "$pid"
    pids+=("$pid")
    for _ in $(seq 1200); do
        grep -q '^READY' "$tmp/out.$1" && break
        sleep 0.1
    done
    grep -q '^READY' "$tmp/out.$1" || { echo "target never got READY" >&2; exit 1; }
    started=$pid
}
start "$MODULES"
big=$started
start 0
small=$started
echo "targets: $("$PYTHON" -V 2>&1); $MODULES modules (pid $big, $(cut -d' ' -f2 "$tmp/out.$MODULES") in sys.modules), none (pid $small)"

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: >"$tmp/big" ; : >"$tmp/small"
for _ in $(seq "$N"); do
    for which in big small; do
        pid=${!which}
        t0=$(now_ns)
        "$GRIDLOCK" dump "$pid" --window 0 --json >"$tmp/doc.$which" || [[ $? == 3 ]]
        echo $(( ($(now_ns) - t0) / 1000 )) >>"$tmp/$which"
    done
done
echo "dump --window 0, median of $N: $MODULES modules $(median <"$tmp/big") us, none $(median <"$tmp/small") us"
python3 - "$tmp/doc.big" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for n in d["processes"][0].get("notes", []):
    if n.startswith("lock names:"):
        print("note:", n)
for l in d["locks"]:
    print("lock", l["address"], "name:", l["name"], "locals:", sorted({n["name"] for n in l["names"] if n["how"] == "local"}))
PY
