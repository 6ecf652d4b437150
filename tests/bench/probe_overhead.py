"""Overhead of gridlock's probe: run with probes/ on PYTHONPATH.

    python tests/bench/probe_overhead.py [rounds]

Each measurement runs in a fresh interpreter (with and without the probe, interleaved) and
the median of the rounds is printed:
  uncontended  acquire/release pairs per second of one Lock, one thread
  realistic    8 threads, each doing ~20 us of Python work per acquisition of a shared Lock
"""
import os
import statistics
import subprocess
import sys
import time

PAIRS = 200_000
THREADS = 8
PER_THREAD = 400


def uncontended():
    import threading
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = time.perf_counter()
    for _ in range(PAIRS):
        with lock:
            pass
    return PAIRS / (time.perf_counter() - t0)


def work():
    # About 20 us of pure Python on this machine.
    s = 0
    for i in range(200):
        s += i * i
    return s


def realistic():
    import threading
    lock = threading.Lock()
    shared = [0]

    def worker():
        for _ in range(PER_THREAD):
            work()
            with lock:
                shared[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def child(probe, what):
    if probe:
        import gridlock_probe
        gridlock_probe.install()
    print(globals()[what]())


def measure(probe, what):
    out = subprocess.run([sys.executable, __file__, "--child", str(int(probe)), what],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    t0 = time.perf_counter()
    for _ in range(2000):
        work()
    per_work = (time.perf_counter() - t0) / 2000 * 1e6
    res = {}
    for what in ("uncontended", "realistic"):
        for probe in (False, True):
            res[(what, probe)] = []
        for _ in range(rounds):
            for probe in (False, True):
                res[(what, probe)].append(measure(probe, what))
    med = {k: statistics.median(v) for k, v in res.items()}
    v = sys.version.split()[0]
    print("CPython %s, median of %d interleaved rounds (work() takes %.1f us here)"
          % (v, rounds, per_work))
    print("  uncontended acquire/release pairs/s: without %.0f, with probe %.0f (%.1fx slower)"
          % (med[("uncontended", False)], med[("uncontended", True)],
             med[("uncontended", False)] / med[("uncontended", True)]))
    ratio = med[("realistic", True)] / med[("realistic", False)]
    print("  realistic (8 threads x %d acquisitions, ~20 us work each): without %.3f s, "
          "with probe %.3f s (%.2fx; goal <= 1.5x)"
          % (PER_THREAD, med[("realistic", False)], med[("realistic", True)], ratio))
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2] == "1", sys.argv[3])
    else:
        sys.exit(main())
