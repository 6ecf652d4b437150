"""The run-under-xdist shape for tests/bench/xdist_report.sh: the third test deadlocks (two
threads, two locks, opposite orders: tests/fixtures/mp_child_deadlock.py's movers) and writes
the time the deadlock formed to $STAMP, while the other tests keep a second worker busy for a
while."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures"))
from mp_child_deadlock import start_movers  # noqa: E402


@pytest.mark.parametrize("n", range(2))
def test_warm(n):
    time.sleep(0.5)


def test_third_deadlocks():
    workers, barrier = start_movers(("mover-ab", "mover-ba"), parties=3)
    barrier.wait()
    # Both movers hold their first lock and are about to take the other's: formed.
    with open(os.environ["STAMP"], "w") as f:
        f.write("%.6f\n" % time.time())
    for w in workers:
        w.join()


@pytest.mark.parametrize("n", range(20))
def test_busy(n):
    time.sleep(0.2)
