"""The run-under-xdist shape for tests/bench/xdist_report.sh: the third test deadlocks (two
threads, two locks, opposite orders) and writes the time the deadlock formed to $STAMP, while
the other tests keep a second worker busy for a while."""
import os
import threading
import time

import pytest


@pytest.mark.parametrize("n", range(2))
def test_warm(n):
    time.sleep(0.5)


def test_third_deadlocks():
    a, b = threading.Lock(), threading.Lock()
    barrier = threading.Barrier(3)

    def move(first, second):
        with first:
            barrier.wait()
            with second:
                pass

    workers = [
        threading.Thread(target=move, args=(a, b), name="mover-ab"),
        threading.Thread(target=move, args=(b, a), name="mover-ba"),
    ]
    for w in workers:
        w.start()
    barrier.wait()
    # Both movers hold their first lock and are about to take the other's: formed.
    with open(os.environ["STAMP"], "w") as f:
        f.write("%.6f\n" % time.time())
    for w in workers:
        w.join()


@pytest.mark.parametrize("n", range(20))
def test_busy(n):
    time.sleep(0.2)
