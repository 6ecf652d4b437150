#!/usr/bin/env bash
# gridlock's own CPU while `gridlock top` watches a 300-thread target (deadlock_300.py) at its
# default rate, in a real terminal (tmux). Prints the share of one core over DURATION seconds
# (default 20) and the header line (rate, samples, whether the rate was lowered).
#
#     tests/bench/top_cpu.sh                       # pyenv's CPython 3.12, else python3
#     DURATION=30 PYTHON=/usr/bin/python3.11 tests/bench/top_cpu.sh
#     BIN=target/debug/gridlock tests/bench/top_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-20}
PYTHON=${PYTHON:-$(ls -d "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/3.12*/bin/python3 2>/dev/null | head -1)}
PYTHON=${PYTHON:-$(command -v python3)}
command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)"; exit 1; }
# BIN=target/debug/gridlock measures another build instead of building release.
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=$PWD/target/release/gridlock; fi
OUT=$(mktemp)
"$PYTHON" tests/bench/deadlock_300.py >"$OUT" &
PY=$!
SOCK=gridlock-bench-$$
cleanup() { tmux -L "$SOCK" kill-server 2>/dev/null || true; kill "$PY" 2>/dev/null || true; rm -f "$OUT"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q READY "$OUT" && break; sleep 0.2; done
grep -q READY "$OUT" || { echo "target did not start"; exit 1; }
tmux -L "$SOCK" -f /dev/null new-session -d -s top -x 120 -y 40 "$BIN top $PY"
sleep 2
GL=$(pgrep -P "$(tmux -L "$SOCK" display-message -p -t top '#{pane_pid}')" gridlock || tmux -L "$SOCK" display-message -p -t top '#{pane_pid}')
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks "$GL"); S0=$(date +%s.%N)
sleep "$DURATION"
T1=$(ticks "$GL"); S1=$(date +%s.%N)
echo "target: $("$PYTHON" -V) with 300 threads (pid $PY); gridlock top pid $GL"
echo "gridlock CPU over $DURATION s: $(echo "($T1 - $T0) / $HZ / ($S1 - $S0) * 100" | bc -l | xargs printf '%.1f')% of one core (goal < 10%)"
echo "header: $(tmux -L "$SOCK" capture-pane -p -t top | sed -n 2p | sed 's/  */ /g')"
