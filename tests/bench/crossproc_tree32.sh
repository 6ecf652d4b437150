#!/bin/bash
# Time `gridlock dump --tree` on a tree of 32 workers with one cross-process deadlock, and
# check the finding names only the two processes in the cycle.
# usage: tests/bench/crossproc_tree32.sh [PYTHON] [GRIDLOCK]
set -eu
cd "$(dirname "$0")/../.."
PY=${1:-$(pyenv root)/versions/3.12.1/bin/python3}
GL=${2:-target/release/gridlock}
out=$(mktemp)
setsid "$PY" tests/bench/tree32.py > "$out" &
root=$!
trap 'kill -9 -- -$root 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.1; done
read -r _ p1 p2 < "$out"
echo "tree: $(($(pgrep -c -g $root) )) processes; cycle: $p1 $p2"
for window in 0 1s; do
  for run in 1 2 3; do
    start=$(date +%s.%N)
    "$GL" dump "$root" --tree --json --window $window > "$out.json" || true
    end=$(date +%s.%N)
    printf 'window %-3s run %d: %.3f s  ' $window $run "$(echo "$end - $start" | bc)"
    python3 -c "
import json,sys
d=json.load(open('$out.json'))
f=[f for f in d['findings'] if f['kind']=='deadlock']
print('processes sampled:', len(d['processes']), '| deadlock processes:', f[0]['processes'] if f else None, '| findings:', [x['kind'] for x in d['findings']])
assert f and sorted(f[0]['processes'])==sorted([$p1,$p2]), 'wrong cycle'
"
  done
done
rm -f "$out.json"
