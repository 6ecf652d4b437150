"""CPU-bound multi-threaded CPython workload for tests/bench/record_overhead.sh.

    cpu_workload.py THREADS ITERS     fixed work: each thread runs ITERS loop iterations,
                                      then the process prints "ELAPSED <seconds>" and exits
    cpu_workload.py THREADS forever   the same threads, looping until killed

Prints "READY <pid>" once every thread exists, then waits for SIGUSR1 before any thread
starts working, so a sampler can attach first and the time it takes to attach is not
timed. The wall time is measured from the signal to the last thread's end.

The work is a pure-Python loop, in chunks of 10,000 iterations; after each chunk the
thread takes one of four shared locks to add to a shared counter (so a sampler sees
locks held now and then, as in real code, at a negligible cost to the loop).
"""
import os
import signal
import sys
import threading
import time

CHUNK = 10_000


def main():
    nthreads = int(sys.argv[1])
    forever = sys.argv[2] == "forever"
    iters = 0 if forever else int(sys.argv[2])

    # Block SIGUSR1 before any thread exists (threads inherit the mask), so that only the
    # main thread's sigwait receives it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    go = threading.Event()
    locks = [threading.Lock() for _ in range(4)]
    counts = [0] * 4

    def loop(n):
        x = 0
        for i in range(n):
            x += i * i % 7
        return x

    def worker(k):
        go.wait()
        lock = locks[k % len(locks)]
        done = 0
        while forever or done < iters:
            n = CHUNK if forever else min(CHUNK, iters - done)
            loop(n)
            done += n
            with lock:
                counts[k % len(locks)] += 1

    threads = [
        threading.Thread(target=worker, args=(k,), name="cpu-%d" % k, daemon=True)
        for k in range(nthreads)
    ]
    for t in threads:
        t.start()
    print("READY", os.getpid(), flush=True)
    signal.sigwait({signal.SIGUSR1})
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    print("ELAPSED %.6f" % (time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
