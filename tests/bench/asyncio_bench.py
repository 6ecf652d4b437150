#!/usr/bin/env python3
"""asyncio benchmarks for gridlock, printing numbers (never asserting on wall time).

1. Detection latency: `gridlock run --fail-on loop_block --rate R -- python asyncio_target.py
   block`; the target prints when it starts blocking; latency is the `last_seen` of the
   loop_block finding minus (block start + threshold), i.e. from crossing the threshold to the
   finding in run's live state.
2. Reading 10,000 tasks: `gridlock record --rate 1000` on a loop with N parked tasks (then on
   a trio run with N parked tasks, where the interpreter imports trio); the
   time per snapshot is the window over the number of snapshots (wall), and gridlock's CPU
   time (user + sys, from wait4) over the number of snapshots, which a loaded machine
   inflates less than the wall time.

Usage: tests/bench/asyncio_bench.py [PYTHON] (default: pyenv's 3.12, else python3)
Environment: N (rounds, default 5), TASKS (default 10000), RATE (run's rate, default 10),
GRIDLOCK (another gridlock binary to measure; then nothing is built), ONLY=tasks (skip the
latency part).
"""
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GRIDLOCK = os.environ.get("GRIDLOCK") or os.path.join(ROOT, "target", "release", "gridlock")
TARGET = os.path.join(HERE, "asyncio_target.py")


def python():
    if len(sys.argv) > 1:
        return sys.argv[1]
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3")))
    return found[-1] if found else "python3"


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def latency(py, rounds, rate):
    out = []
    for _ in range(rounds):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            report = f.name
        p = subprocess.run(
            [GRIDLOCK, "run", "--fail-on", "loop_block", "--rate", str(rate), "--timeout",
             "30s", "--report", report, "--", py, TARGET, "block"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        start = next(float(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("BLOCK"))
        doc = json.load(open(report))
        os.unlink(report)
        f = next(f for f in doc["findings"] if f["kind"] == "loop_block")
        out.append((parse_ts(f["last_seen"]) - (start + 0.1)) * 1000)
    return out


def read_tasks(py, n, rounds, mode="tasks"):
    p = subprocess.Popen([py, TARGET, mode, str(n)], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("READY"), line
        per, cpu = [], []
        for _ in range(rounds):
            with tempfile.TemporaryFile() as out:
                r = subprocess.Popen([GRIDLOCK, "record", str(p.pid), "--duration", "2s",
                                      "--rate", "1000", "--json"], stdout=out)
                _, status, usage = os.wait4(r.pid, 0)
                r.returncode = os.waitstatus_to_exitcode(status)
                assert r.returncode == 0, r.returncode
                out.seek(0)
                doc = json.loads(out.read())
            assert len(doc["tasks"]) >= n, len(doc["tasks"])
            snaps = doc["window"]["snapshots"]
            per.append(doc["window"]["seconds"] * 1000 / max(1, snaps - 1))
            cpu.append((usage.ru_utime + usage.ru_stime) * 1000 / max(1, snaps))
        return per, cpu
    finally:
        p.kill()
        p.wait()


def main():
    if not os.environ.get("GRIDLOCK"):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    py = python()
    rounds = int(os.environ.get("N", "5"))
    n = int(os.environ.get("TASKS", "10000"))
    rate = float(os.environ.get("RATE", "10"))
    print(f"python: {py}, gridlock: {GRIDLOCK}, load average: {os.getloadavg()[0]:.1f}")
    if os.environ.get("ONLY") != "tasks":
        lat = latency(py, rounds, rate)
        print(f"loop_block detection latency at {rate:g} Hz over {rounds} runs: "
              f"median {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms (goal < 200 ms)")
    per, cpu = read_tasks(py, n, max(1, rounds // 2))
    print(f"snapshot of a loop with {n} tasks (all read, with await stacks): "
          f"median {statistics.median(per):.1f} ms, max {max(per):.1f} ms wall; "
          f"CPU median {statistics.median(cpu):.1f} ms (goal < 50 ms)")
    # The same number of trio tasks, side by side, where the interpreter has trio.
    if subprocess.run([py, "-c", "import trio"], capture_output=True).returncode != 0:
        print("trio: not importable by this interpreter, skipped")
        return
    tper, tcpu = read_tasks(py, n, max(1, rounds // 2), "trio_tasks")
    print(f"snapshot of a trio run with {n} tasks (all read, with await stacks): "
          f"median {statistics.median(tper):.1f} ms, max {max(tper):.1f} ms wall; "
          f"CPU median {statistics.median(tcpu):.1f} ms; trio/asyncio CPU "
          f"{statistics.median(tcpu) / statistics.median(cpu):.2f} (goal <= 1)")


if __name__ == "__main__":
    main()
