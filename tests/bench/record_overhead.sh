#!/usr/bin/env bash
# gridlock record: overhead on the target, highest sustained sample rate, memory over time.
#
# 1. Slowdown: cpu_workload.py (8 threads, a fixed amount of pure-Python work, its own wall
#    time measured from a start signal sent once the sampler is attached) alone vs under
#    `gridlock record --rate 100`, `--rate 1000`, and `py-spy record --nonblocking --rate 100`,
#    as interleaved pairs (alternating which of the pair runs first); median ratio per sampler.
# 2. Highest sustained rate: `gridlock record --rate 10000 --duration 5s --json` of a 20-thread
#    busy target, achieved snapshots/s = window.snapshots / window.seconds.
# 3. Memory: a 60 s `gridlock record --rate 100` of thread_churn.py (threads that take two
#    locks and exit, replaced continuously); gridlock's VmRSS every 5 s, its exit status.
#
#   tests/bench/record_overhead.sh            # PAIRS=7, CPython 3.11 from pyenv (else python3)
#   QUICK=1 tests/bench/record_overhead.sh    # less work per run, a 15 s memory check
#   PAIRS=15 ITERS=8000000 CHURN_SECS=120 PYTHON=/usr/bin/python3.11 tests/bench/record_overhead.sh
#   PARTS=1 MODES=g100 GRIDLOCK=target/release/gridlock tests/bench/record_overhead.sh   # --rate 100 only
#
# Times and rates are printed, never asserted. Exits 1 only if gridlock fails (an exit status
# other than 0 or 3, or 1 for a workload run whose target it saw exit, or no JSON document); the benchmark still runs to the end, lists every
# failure, and leaves a failed run out of the rates (its workload time still counts, unless
# gridlock stopped before the workload ended).
set -euo pipefail

if [[ -n ${QUICK:-} && ${QUICK:-0} != 0 ]]; then
    ITERS=${ITERS:-2000000}
    CHURN_SECS=${CHURN_SECS:-15}
else
    ITERS=${ITERS:-5000000}
    CHURN_SECS=${CHURN_SECS:-60}
fi
PAIRS=${PAIRS:-7}
MAXRATE_RUNS=${MAXRATE_RUNS:-3}
SETTLE=${SETTLE:-0.5} # seconds between starting a sampler and starting the work (both arms)
PARTS=${PARTS:-1 2 3} # which of the three measurements to run

# The interpreter (CPython 3.11 from pyenv here, else python3), the release build (or
# GRIDLOCK=PATH), py-spy and $tmp come from lib.sh, as for the other benches.
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.11*/bin/python3 2>/dev/null | head -n1 || true)
fi
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
TIME=$(command -v /usr/bin/time || true) # for the samplers' CPU time, when available

pids=()
# lib.sh's cleanup, and every process started here.
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg OUT CMD...: start CMD in the background with stdout to OUT, remember its pid in $bg.
start_bg() {
    local out=$1
    shift
    "$@" >"$out" 2>"$out.err" &
    bg=$!
    pids+=("$bg")
    disown "$bg" # reaped with wait_pid; killed in cleanup without a "Killed" notice
}
# wait_pid PID: wait for a disowned process to end (it is not our job any more).
wait_pid() { while kill -0 "$1" 2>/dev/null; do sleep 0.02; done; }
# wait_ready OUT PID: wait for the fixture's READY line.
wait_ready() {
    local _
    for _ in $(seq 300); do
        grep -q '^READY' "$1" && return 0
        kill -0 "$2" 2>/dev/null || { echo "target died:" >&2; cat "$1" "$1.err" >&2; exit 1; }
        sleep 0.05
    done
    echo "target never got READY" >&2
    exit 1
}
# A sampler's exit status and CPU time come from /usr/bin/time's -o file (the status is
# also written by the wrapper below when there is no /usr/bin/time).
sampler() { # sampler OUT CMD...
    local out=$1
    shift
    if [[ -n $TIME ]]; then
        start_bg "$out" "$TIME" -q -f '%x %e %U %S' -o "$out.time" "$@"
    else
        start_bg "$out" bash -c '"$@"; echo "$? 0 0 0" >"'"$out.time"'"' _ "$@"
    fi
}
# gridlock_ok OUT WHAT [exits]: whether that gridlock run succeeded (exit status 0 or 3 and a
# JSON document; with `exits`, whose target ends before --duration, also record's exit status 1
# for a target that exited during the recording); a failure is added to $tmp/failures, to be
# listed at the end, and makes the exit status 1.
: >"${tmp:?}/failures"
gridlock_ok() {
    local rc
    rc=$(awk '{print $1}' "$1.time" 2>/dev/null || true)
    if [[ ${3:-} == exits && $rc == 1 ]] && grep -q 'exited during the recording' "$1.err"; then
        rc=0
    fi
    if [[ $rc != 0 && $rc != 3 ]]; then
        printf '%s: exit status %s: %s\n' "$2" "${rc:-unknown}" "$(tr '\n' ' ' <"$1.err")" >>"$tmp/failures"
        echo "   gridlock failed ($2, exit status ${rc:-unknown}): $(cat "$1.err")" >&2
        return 1
    fi
    if ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; then
        printf '%s: no JSON document: %s\n' "$2" "$(tr '\n' ' ' <"$1.err")" >>"$tmp/failures"
        return 1
    fi
}
window() { # window JSON: "snapshots seconds"
    python3 -c 'import json, sys; w = json.load(open(sys.argv[1]))["window"]; print(w["snapshots"], w["seconds"])' "$1"
}
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

echo "python:   $PYTHON ($("$PYTHON" -V 2>&1))"
echo "gridlock: $GRIDLOCK ($("$GRIDLOCK" --version))"
echo "py-spy:   $PYSPY ($("$PYSPY" --version))"
echo "machine:  $(nproc) CPUs, load average $(loadavg) at start"
echo

# ---------------------------------------------------------------------------------------------
# 1. Slowdown of an 8-thread CPU-bound workload.
# run_workload MODE WHAT: one run of the fixed workload; sets $result to "elapsed snapshots
# seconds cpu" (the last three "-" when unknown; cpu = the sampler's user+sys seconds), or to ""
# when gridlock stopped before the workload ended (the run does not count). Not run in a $(...)
# subshell, so that cleanup knows every pid it starts.
run_workload() {
    local mode=$1 what=$2 w out=$tmp/w.out sout=$tmp/s.out elapsed snaps=- secs=- cpu=- early=0
    start_bg "$out" "$PYTHON" "$here/cpu_workload.py" 8 "$ITERS"
    w=$bg
    wait_ready "$out" "$w"
    rm -f "$sout" "$sout.time"
    case $mode in
    alone) ;;
    g100 | g1000)
        sampler "$sout" "$GRIDLOCK" record --duration 3600s --rate "${mode#g}" --json "$w" ;;
    pyspy)
        sampler "$sout" "$PYSPY" record --nonblocking --rate 100 --format raw -o "$tmp/pyspy.raw" --pid "$w" ;;
    esac
    sleep "$SETTLE"
    kill -USR1 "$w"
    while kill -0 "$w" 2>/dev/null; do
        # The sampler ended before the work did (not merely while the target was exiting).
        [[ $mode != alone && -s $sout.time ]] && ! grep -q '^ELAPSED' "$out" && early=1
        sleep 0.02
    done
    elapsed=$(awk '/^ELAPSED/ {print $2}' "$out")
    [[ -n $elapsed ]] || { echo "workload printed no ELAPSED:" >&2; cat "$out" "$out.err" >&2; exit 1; }
    if [[ $mode != alone ]]; then
        for _ in $(seq 600); do [[ -s $sout.time ]] && break; sleep 0.05; done # the sampler sees the exit
        if [[ $mode == pyspy ]]; then
            [[ -s $sout.time && $(awk '{print $1}' "$sout.time") == 0 ]] ||
                { echo "   warning: py-spy failed ($what): $(cat "$sout.err")" >&2; early=1; }
        elif gridlock_ok "$sout" "$what" exits; then
            read -r snaps secs < <(window "$sout")
        fi
        cpu=$(awk '{print $3 + $4}' "$sout.time" 2>/dev/null || echo -)
    fi
    result="$elapsed $snaps $secs $cpu"
    if ((early)); then
        echo "   ($what: the sampler stopped before the work ended; pair left out)" >&2
        result=
    fi
}

if [[ " $PARTS " == *" 1 "* ]]; then
echo "1. slowdown: cpu_workload.py, 8 threads x $ITERS iterations, $PAIRS interleaved pairs per sampler"
read -r -a modes <<<"${MODES:-g100 g1000 pyspy}" # which samplers part 1 compares
label() {
    case $1 in
    g100) echo "gridlock record --rate 100" ;;
    g1000) echo "gridlock record --rate 1000" ;;
    pyspy) echo "py-spy record --nonblocking --rate 100" ;;
    esac
}
for m in "${modes[@]}"; do : >"$tmp/pairs.$m"; done
for i in $(seq "$PAIRS"); do
    for m in "${modes[@]}"; do
        what="$(label "$m"), pair $i"
        if ((i % 2)); then
            run_workload alone "$what"; a=$result; run_workload "$m" "$what"; u=$result
        else
            run_workload "$m" "$what"; u=$result; run_workload alone "$what"; a=$result
        fi
        [[ -n $u ]] && echo "$a $u" >>"$tmp/pairs.$m" # alone: elapsed - - -; under: elapsed snaps secs cpu
    done
    echo "   pair $i/$PAIRS done (load average $(loadavg))" >&2
done

printf '   %-40s %5s %9s %9s %8s %8s %8s %10s %9s\n' sampler pairs "alone s" "under s" median min max samples/s "sampler"
printf '   %-40s %5s %9s %9s %8s %8s %8s %10s %9s\n' "" "" "(median)" "(median)" ratio ratio ratio "(median)" "CPU %"
for m in "${modes[@]}"; do
    f=$tmp/pairs.$m
    n=$(wc -l <"$f")
    ((n)) || { printf '   %-40s %5d (no pair completed)\n' "$(label "$m")" 0; continue; }
    alone=$(awk '{print $1}' "$f" | median)
    under=$(awk '{print $5}' "$f" | median)
    ratio=$(awk '{print $5 / $1}' "$f" | median)
    rmin=$(awk '{print $5 / $1}' "$f" | sort -g | head -n1)
    rmax=$(awk '{print $5 / $1}' "$f" | sort -g | tail -n1)
    rate=-
    [[ $m == pyspy ]] || rate=$(awk '$7 != "-" && $7 > 0 {printf "%.1f\n", $6 / $7}' "$f" | median)
    cpu=$(awk '$8 != "-" {printf "%.1f\n", 100 * $8 / $5}' "$f" | median)
    printf '   %-40s %5d %9.3f %9.3f %8.3f %8.3f %8.3f %10s %9s\n' "$(label "$m")" "$n" "$alone" "$under" "$ratio" "$rmin" "$rmax" "$rate" "$cpu"
done
echo "   ratio: under / alone, per pair (slowdown = ratio - 1); samples/s: window.snapshots / window.seconds"
echo "   (runs that failed have none); sampler CPU: its user+sys time over the workload's wall time."
echo
fi

# ---------------------------------------------------------------------------------------------
# 2. Highest sustained sample rate on a 20-thread target.
if [[ " $PARTS " == *" 2 "* ]]; then
echo "2. highest sustained rate: gridlock record --rate 10000 --duration 5s --json, 20 busy threads"
start_bg "$tmp/t20.out" "$PYTHON" "$here/cpu_workload.py" 20 forever
t20=$bg
wait_ready "$tmp/t20.out" "$t20"
kill -USR1 "$t20"
sleep 0.5
echo "   target: pid $t20, $(ls "/proc/$t20/task" | wc -l) OS threads"
: >"$tmp/rates"
for i in $(seq "$MAXRATE_RUNS"); do
    rm -f "$tmp/max.json.time"
    sampler "$tmp/max.json" "$GRIDLOCK" record --rate 10000 --duration 5s --json "$t20"
    wait_pid "$bg"
    for _ in $(seq 100); do [[ -s $tmp/max.json.time ]] && break; sleep 0.05; done
    gridlock_ok "$tmp/max.json" "rate 10000, run $i" || continue
    read -r snaps secs < <(window "$tmp/max.json")
    read -r _ wall user sys <"$tmp/max.json.time"
    r=$(awk -v n="$snaps" -v s="$secs" 'BEGIN {printf "%.1f", n / s}')
    echo "$r" >>"$tmp/rates"
    printf '   run %d: %6d snapshots in %.3f s = %8s snapshots/s (%.2f ms each; gridlock CPU %.2f s user + %.2f s sys in %.2f s; load %s)\n' \
        "$i" "$snaps" "$secs" "$r" "$(awk -v r="$r" 'BEGIN {print 1000 / r}')" "$user" "$sys" "$wall" "$(loadavg)"
done
printf '   median: %s snapshots/s\n' "$(median <"$tmp/rates")"
kill -9 "$t20" 2>/dev/null || true
echo
fi

# ---------------------------------------------------------------------------------------------
# 3. Memory over a long record of a target whose threads come and go.
if [[ " $PARTS " == *" 3 "* ]]; then
echo "3. memory: gridlock record --duration ${CHURN_SECS}s --rate 100 --json of thread_churn.py"
start_bg "$tmp/churn.out" "$PYTHON" "$here/thread_churn.py"
churn=$bg
wait_ready "$tmp/churn.out" "$churn"
# Not disowned: `wait` gives its exit status.
"$GRIDLOCK" record --duration "${CHURN_SECS}s" --rate 100 --json "$churn" >"$tmp/churn.json" 2>"$tmp/churn.json.err" &
g=$!
pids+=("$g")
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
started() { awk '/^STARTED/ {n = $2} END {print n + 0}' "$tmp/churn.out"; }
printf '   %6s %12s %24s\n' "t (s)" "VmRSS (kB)" "threads started so far"
t0=$(date +%s%N)
series=()
sample_rss() {
    local v
    v=$(rss "$g")
    [[ -n $v ]] || return 0
    printf '   %6s %12s %24s\n' "$1" "$v" "$(started)"
    series+=("$v")
}
sleep 1
sample_rss 1
next=5
while kill -0 "$g" 2>/dev/null; do
    now=$((($(date +%s%N) - t0) / 1000000000))
    if ((now >= next)); then
        sample_rss "$now"
        next=$((next + 5))
    fi
    sleep 0.1
done
rc=0
wait "$g" || rc=$?
kill -9 "$churn" 2>/dev/null || true
echo "$rc" >"$tmp/churn.json.time"
if gridlock_ok "$tmp/churn.json" "memory check"; then
    read -r snaps secs < <(window "$tmp/churn.json")
    kinds=$(python3 -c 'import json, sys; print(", ".join(sorted({f["kind"] for f in json.load(open(sys.argv[1]))["findings"]})) or "none")' "$tmp/churn.json")
    printf '   gridlock: exit status %d, %d snapshots in %.1f s (%.1f/s), findings: %s\n' "$rc" "$snaps" "$secs" \
        "$(awk -v n="$snaps" -v s="$secs" 'BEGIN {print n / s}')" "$kinds"
fi
if [[ -s $tmp/churn.json.err ]]; then echo "   gridlock's stderr:"; sed 's/^/     /' "$tmp/churn.json.err"; else echo "   gridlock's stderr: empty"; fi
if ((${#series[@]})); then
    printf '   VmRSS: first %s kB, last %s kB, max %s kB (last - first: %+d kB)\n' "${series[0]}" "${series[-1]}" \
        "$(printf '%s\n' "${series[@]}" | sort -n | tail -n1)" "$((series[-1] - series[0]))"
fi
echo
fi
echo "load average at end: $(loadavg)"

# ---------------------------------------------------------------------------------------------
if [[ -s $tmp/failures ]]; then
    echo
    echo "gridlock failed in $(wc -l <"$tmp/failures") run(s):"
    sed 's/^/   /' "$tmp/failures"
    exit 1
fi
