#!/usr/bin/env bash
# How soon `gridlock run` reports a deadlock under pytest-xdist (issue 22, part 1): runs the
# xdist suite in tests/bench/xdist_suite (third test deadlocks, stamping the time it formed)
# RUNS times under `gridlock run -- python -m pytest -n WORKERS` and prints the median and
# worst time from the stamp to gridlock's exit 3. Usage: xdist_report.sh [RUNS] [WORKERS].
# PYTHON: an interpreter with pytest and pytest-xdist (default: the first that has both);
# GRIDLOCK: the binary (default: target/release/gridlock, else target/debug/gridlock). It
# asserts no time: a run that does not exit 3 is counted and printed as a failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-50}
workers=${2:-2}

if [[ -z ${PYTHON:-} ]]; then
    for p in python3 "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.*/bin/python3; do
        if "$p" -c "import pytest, xdist" 2>/dev/null; then
            PYTHON=$("$p" -c "import sys; print(sys.executable)"); break
        fi
    done
fi
[[ -n ${PYTHON:-} ]] || { echo "no interpreter with pytest and pytest-xdist" >&2; exit 1; }
if [[ -z ${GRIDLOCK:-} ]]; then
    GRIDLOCK=$root/target/release/gridlock
    [[ -x $GRIDLOCK ]] || GRIDLOCK=$root/target/debug/gridlock
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
delays=()
failed=0
for ((i = 1; i <= runs; i++)); do
    rm -f "$tmp/stamp"
    set +e
    STAMP=$tmp/stamp timeout 120 "$GRIDLOCK" run -- "$PYTHON" -m pytest -q -p no:cacheprovider \
        -n "$workers" "$here/xdist_suite" >"$tmp/out" 2>&1
    code=$?
    set -e
    end=$(date +%s.%N)
    if [[ $code -ne 3 || ! -s $tmp/stamp ]]; then
        failed=$((failed + 1))
        echo "run $i: exit $code (no report)" >&2
        continue
    fi
    d=$(echo "$end - $(cat "$tmp/stamp")" | bc -l)
    delays+=("$d")
    printf 'run %d: %.2f s\n' "$i" "$d" >&2
done
printf '%s\n' "${delays[@]}" | sort -g >"$tmp/sorted"
n=$(wc -l <"$tmp/sorted")
if [[ $n -gt 0 ]]; then
    median=$(awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}' "$tmp/sorted")
    worst=$(tail -n1 "$tmp/sorted")
    printf 'xdist -n %s, %d runs (%d without exit 3): deadlock formed -> exit 3: median %.2f s, worst %.2f s\n' \
        "$workers" "$runs" "$failed" "$median" "$worst"
else
    echo "no run reported the deadlock ($failed failures)"
fi
