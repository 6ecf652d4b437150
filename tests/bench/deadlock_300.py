# 300 threads (MainThread + 299 workers): 297 workers idle (half wait on an Event, half sleep),
# two of them, at indices picked by a seed, deadlock on two locks taken in opposite order.
# Prints "READY <name> <name>" once the two are stuck. Usage: deadlock_300.py [SEED]
import random
import sys
import threading
import time

THREADS = 300
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
workers = THREADS - 1
a_idx, b_idx = sorted(rng.sample(range(workers), 2))
lock_a, lock_b = threading.Lock(), threading.Lock()
both_hold = threading.Barrier(3)
never = threading.Event()


def idle(i):
    if i % 2:
        never.wait()
    else:
        while True:
            time.sleep(3600)


def move(first, second):
    with first:
        both_hold.wait()
        with second:
            pass


threads = []
for i in range(workers):
    name = "worker-%d" % i
    if i == a_idx:
        t = threading.Thread(target=move, args=(lock_a, lock_b), name=name, daemon=True)
    elif i == b_idx:
        t = threading.Thread(target=move, args=(lock_b, lock_a), name=name, daemon=True)
    else:
        t = threading.Thread(target=idle, args=(i,), name=name, daemon=True)
    threads.append(t)
    t.start()

both_hold.wait()
time.sleep(0.3)  # both now block on the other's lock
assert threading.active_count() == THREADS, threading.active_count()
print("READY worker-%d worker-%d" % (a_idx, b_idx), flush=True)
while True:
    time.sleep(3600)
