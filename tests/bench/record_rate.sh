#!/usr/bin/env bash
# record's top rate, side by side: `gridlock record --rate 10000 --duration 5s --json` of one
# `cpu_workload.py 20 forever` target (21 threads), by each gridlock binary given, in
# interleaved rounds (the order rotates each round). Per binary: the achieved snapshots/s
# (window.snapshots / window.seconds) and gridlock's CPU time per snapshot (user + sys from
# /usr/bin/time, divided by the snapshots), medians over the rounds, with the load average.
# CPU per snapshot is the figure to compare on a loaded machine; the rate depends on how much
# of a core gridlock gets. With GRIDLOCK_COST_SPLIT=1 each binary that knows it also prints
# its per-snapshot cost split (see README.md) on its last round.
#
#   tests/bench/record_rate.sh                                   # target/release/gridlock
#   N=5 tests/bench/record_rate.sh /tmp/base-gridlock target/release/gridlock
#   PYTHON=/usr/bin/python3.11 SECS=3 tests/bench/record_rate.sh A B
#
# Times and rates are printed, never asserted. Exits 1 if a run fails (an exit status other
# than 0 or 3, or no JSON document).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
N=${N:-3}
SECS=${SECS:-5}
if (($# == 0)); then
    set -- "$root/target/release/gridlock"
fi
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.11*/bin/python3 2>/dev/null | head -n1 || true)
    [[ -x $PYTHON ]] || PYTHON=$(python3 -c 'import sys; print(sys.executable)')
fi
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d)
target=
cleanup() {
    [[ -n $target ]] && kill -9 "$target" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

"$PYTHON" "$here/cpu_workload.py" 20 forever >"$tmp/target.out" 2>&1 &
target=$!
for _ in $(seq 300); do
    grep -q '^READY' "$tmp/target.out" && break
    kill -0 "$target" 2>/dev/null || { echo "target died:" >&2; cat "$tmp/target.out" >&2; exit 1; }
    sleep 0.05
done
kill -USR1 "$target"
sleep 0.5
echo "python:   $PYTHON ($("$PYTHON" -V 2>&1)), target pid $target, $(ls "/proc/$target/task" | wc -l) OS threads"
echo "machine:  $(nproc) CPUs, load average $(loadavg) at start"

failed=0
nbin=$#
bins=("$@")
for round in $(seq "$N"); do
    for j in $(seq 0 $((nbin - 1))); do
        b=$(((j + round - 1) % nbin))
        bin=${bins[$b]}
        out=$tmp/$b.$round.json
        split=()
        if [[ $round == "$N" && -n ${GRIDLOCK_COST_SPLIT:-} ]]; then split=(env GRIDLOCK_COST_SPLIT=1); fi
        rc=0
        "$TIME" -f '%e %U %S' -o "$out.time" "${split[@]}" "$bin" record --rate 10000 --duration "${SECS}s" --json "$target" >"$out" 2>"$out.err" || rc=$?
        if [[ $rc != 0 && $rc != 3 ]] || ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; then
            echo "   $bin, round $round: exit status $rc: $(head -c 400 "$out.err")" >&2
            failed=1
            continue
        fi
        read -r snaps secs < <(python3 -c 'import json, sys; w = json.load(open(sys.argv[1]))["window"]; print(w["snapshots"], w["seconds"])' "$out")
        read -r _ user sys < <(tail -n1 "$out.time")
        awk -v n="$snaps" -v s="$secs" -v u="$user" -v y="$sys" -v l="$(loadavg)" -v b="$bin" -v r="$round" \
            'BEGIN {printf "   round %d %-40s %6d snapshots in %.2f s = %7.1f/s, CPU %.3f ms/snapshot (load %s)\n", r, b, n, s, n / s, 1000 * (u + y) / n, l}'
        echo "$snaps $secs $user $sys" >>"$tmp/$b.rows"
        if ((${#split[@]})) && grep -q '^cost split' "$out.err"; then sed 's/^/      /' "$out.err"; fi
    done
done
echo
printf '   %-40s %8s %12s %16s\n' binary rounds "snapshots/s" "CPU ms/snapshot"
for b in $(seq 0 $((nbin - 1))); do
    f=$tmp/$b.rows
    [[ -s $f ]] || { printf '   %-40s %8d\n' "${bins[$b]}" 0; continue; }
    rate=$(awk '{printf "%.1f\n", $1 / $2}' "$f" | median)
    cpu=$(awk '{printf "%.4f\n", 1000 * ($3 + $4) / $1}' "$f" | median)
    printf '   %-40s %8d %12s %16s\n' "${bins[$b]}" "$(wc -l <"$f")" "$rate" "$cpu"
done
echo "   (medians; load average $(loadavg) at end)"
exit "$failed"
