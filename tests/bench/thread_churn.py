"""A CPython process that starts and ends threads continuously, for the memory check in
tests/bench/record_overhead.sh.

    thread_churn.py

Prints "READY <pid>", then "STARTED <threads started so far>" every second. Until killed,
keeps about 8 short-lived threads alive at a time; each takes two of eight shared locks
(always in index order, so there is no lock-order inversion to find), updates shared state
under them, works a little, and exits. A new thread replaces each one that ends, so thread
ids, names and stacks keep changing (on the order of a thousand new threads a second).
"""
import os
import random
import threading
import time

LOCKS = [threading.Lock() for _ in range(8)]
TOTALS = {}


def short_lived(seq):
    a, b = sorted(random.sample(range(len(LOCKS)), 2))
    with LOCKS[a]:
        with LOCKS[b]:
            TOTALS[(a, b)] = TOTALS.get((a, b), 0) + 1
            x = 0
            for i in range(2000):
                x += i % 3
    if seq % 50 == 0:
        time.sleep(0.01)  # some threads are seen sleeping, not only running


def main():
    print("READY", os.getpid(), flush=True)
    seq = 0
    live = []
    reported = time.monotonic()
    while True:
        if time.monotonic() - reported >= 1:
            print("STARTED", seq, flush=True)  # threads started so far
            reported = time.monotonic()
        live = [t for t in live if t.is_alive()]
        while len(live) < 8:
            seq += 1
            t = threading.Thread(target=short_lived, args=(seq,), name="churn-%d" % seq)
            t.start()
            live.append(t)
        time.sleep(0.001)


if __name__ == "__main__":
    main()
