"""Lock semantics with gridlock's probe installed (run with probes/ on PYTHONPATH): every
check compares against CPython's own behaviour; exits non-zero on the first difference."""
import _thread
import asyncio
import os
import sys
import threading
import time

import gridlock_probe

OrigLock = threading.Lock
pre_lock = threading.Lock()
pre_rlock = threading.RLock()
gridlock_probe.install()
gridlock_probe.install()  # idempotent

L = threading.Lock()
R = threading.RLock()
assert type(L).__name__.startswith("_GridlockProbe"), type(L)

# isinstance/type checks that worked before
assert isinstance(L, _thread.LockType)
assert isinstance(R, type(pre_rlock)) or sys.version_info < (3, 8)
if sys.version_info >= (3, 13):
    assert isinstance(L, threading.Lock) and isinstance(pre_lock, threading.Lock)
    assert issubclass(type(pre_lock), threading.Lock)

# blocking=False, timeouts, errors
assert L.acquire(False) is True
assert L.acquire(False) is False
t0 = time.monotonic()
assert L.acquire(timeout=0.05) is False
assert time.monotonic() - t0 >= 0.04
assert L.locked()
try:
    L.acquire(False, 1)
    raise AssertionError("no ValueError")
except ValueError:
    pass
L.release()
assert not L.locked()
try:
    L.release()
    raise AssertionError("no RuntimeError")
except RuntimeError:
    pass
with L as v:
    assert v is True
assert gridlock_probe._held == {}, gridlock_probe._held

# a plain Lock released by another thread
L.acquire()
threading.Thread(target=L.release).start()
time.sleep(0.1)
assert not L.locked() and gridlock_probe._held == {}

# reentrancy
with R:
    with R:
        assert R._is_owned()
    assert len(gridlock_probe._held) == 1
assert gridlock_probe._held == {}
try:
    R.release()
    raise AssertionError("no RuntimeError")
except RuntimeError:
    pass
other = []
R.acquire()
th = threading.Thread(target=lambda: other.append(R.acquire(timeout=0.05)))
th.start(); th.join()
assert other == [False]


def not_owner_release():
    try:
        R.release()
        other.append("released")
    except RuntimeError:
        other.append("refused")


th = threading.Thread(target=not_owner_release)
th.start(); th.join()
assert other[-1] == "refused" and len(gridlock_probe._held) == 1
R.release()
assert gridlock_probe._held == {}

# Condition wait/notify, with RLock and Lock
for lock in (None, threading.Lock()):
    c = threading.Condition(lock)
    got = []

    def waiter():
        with c:
            got.append(c.wait(5))

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.1)
    with c:
        c.notify()
    th.join()
    assert got == [True], got
    with c:
        assert c.wait(0.01) is False
    assert c.wait_for(lambda: True, 0) if c.acquire() else False
    c.release()
assert gridlock_probe._held == {}, gridlock_probe._held

# Semaphores
s = threading.BoundedSemaphore(2)
assert s.acquire() and s.acquire(False) and not s.acquire(False)
assert not s.acquire(timeout=0.02)
s.release(); s.release()
try:
    s.release()
    raise AssertionError("no ValueError")
except ValueError:
    pass
assert gridlock_probe._held == {}
s2 = threading.Semaphore(0)
threading.Thread(target=s2.release).start()
assert s2.acquire(timeout=5)
if sys.version_info >= (3, 9):
    s2.release(3)
    assert s2._value == 3

# Event, Barrier, Queue
import queue

e = threading.Event()
threading.Thread(target=e.set).start()
assert e.wait(5)
b = threading.Barrier(2)
threading.Thread(target=b.wait).start()
b.wait(5)
q = queue.Queue(1)
threading.Thread(target=lambda: q.put(1)).start()
assert q.get(timeout=5) == 1
q.put(2)
try:
    q.put(3, timeout=0.02)
    raise AssertionError("no Full")
except queue.Full:
    pass

# lock order is recorded for every acquisition
a, bb = threading.Lock(), threading.Lock()
with a:
    with bb:
        pass
assert any(v[0] == id(a._lock) and v[1] == id(bb._lock) for v in gridlock_probe._edges.values())

# an error inside the probe never reaches user code
saved = gridlock_probe._held
gridlock_probe._held = None
with threading.Lock():
    pass
gridlock_probe._held = saved

# fork: the child works and its own locks are recorded
if hasattr(os, "fork"):
    held = threading.Lock()
    held.acquire()
    pid = os.fork()
    if pid == 0:
        ok = held.locked()
        x = threading.Lock()
        with x:
            ok = ok and id(x._lock) in gridlock_probe._held
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    held.release()


# asyncio owners are tasks
async def main():
    lock = asyncio.Lock()
    sem = asyncio.Semaphore(1)
    async with lock:
        entry = gridlock_probe._held[id(lock)]
        assert entry[7] == id(asyncio.current_task()), entry
    async with sem:
        assert len(gridlock_probe._held[id(sem)]) == 1
    assert id(lock) not in gridlock_probe._held and id(sem) not in gridlock_probe._held
    await asyncio.wait_for(lock.acquire(), 1)
    lock.release()
    try:
        lock.release()
        raise AssertionError("no RuntimeError")
    except RuntimeError:
        pass


asyncio.run(main())
print("ok", sys.version.split()[0])
