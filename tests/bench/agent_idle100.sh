#!/usr/bin/env bash
# gridlock watch's own CPU share with 100 idle Python processes on the host, sampled at 1 Hz:
# once within the default budget (--max-cpu 5), once unbudgeted (--max-cpu 100), each measured
# over MEASURE seconds after a warm-up (from /proc/AGENT/stat's utime+stime).
# Usage: tests/bench/agent_idle100.sh [PYTHON] [MEASURE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-python3}
MEASURE=${2:-60}
BIN=${GRIDLOCK:-target/release/gridlock}
[ -x "$BIN" ] || cargo build --release -q
TICK=$(getconf CLK_TCK)
PORT=$((20000 + RANDOM % 20000))

# 100 idle children (each sleeps for 1000 s), forked 50 a second by one parent.
"$PY" tests/fixtures/churn.py 50 2 1000 > /dev/null &
SPAWNER=$!
AGENT=
cleanup() {
    [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null
    pkill -KILL -P "$SPAWNER" 2>/dev/null || true
    kill -KILL "$SPAWNER" 2>/dev/null || true
}
trap cleanup EXIT
sleep 4
echo "children: $(pgrep -c -P "$SPAWNER")"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for budget in 5 100; do
    "$BIN" watch --ppid "$SPAWNER" --rate 1 --max-cpu "$budget" --metrics "127.0.0.1:$PORT" 2>/dev/null &
    AGENT=$!
    sleep 10
    before=$(cpu_ticks "$AGENT")
    sleep "$MEASURE"
    after=$(cpu_ticks "$AGENT")
    metrics=$(curl -s "127.0.0.1:$PORT/metrics")
    targets=$(echo "$metrics" | awk '/^gridlock_targets /{print $2}')
    rate=$(echo "$metrics" | awk '/^gridlock_sample_rate_hz /{print $2}')
    scan=$(echo "$metrics" | awk '/^gridlock_scan_seconds /{print $2}')
    rss=$(awk '/VmRSS/{print $2}' "/proc/$AGENT/status")
    share=$(echo "scale=2; 100 * ($after - $before) / $TICK / $MEASURE" | bc)
    echo "--max-cpu $budget: ${share}% of a core over ${MEASURE}s; targets $targets; rate ${rate} Hz; last pass ${scan} s; RSS ${rss} KiB"
    kill "$AGENT"; wait "$AGENT" 2>/dev/null || true
    AGENT=
done
