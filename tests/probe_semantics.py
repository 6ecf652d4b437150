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
OrigRLock = threading.RLock
pre_lock = threading.Lock()
pre_rlock = threading.RLock()
gridlock_probe.install()
gridlock_probe.install()  # idempotent


def holds():
    """Every entry the probe publishes (a semaphore's permit list stays while it lives)."""
    out = []
    for v in gridlock_probe._held.values():
        out.extend(v if isinstance(v, list) else [v])
    return out


L = threading.Lock()
R = threading.RLock()
assert type(L).__name__.startswith("_GridlockProbe"), type(L)

# isinstance/type checks that worked before
assert isinstance(L, _thread.LockType)
assert isinstance(R, type(pre_rlock)) or sys.version_info < (3, 8)
if sys.version_info >= (3, 13):
    assert isinstance(L, threading.Lock) and isinstance(pre_lock, threading.Lock)
    assert issubclass(type(pre_lock), threading.Lock)
assert isinstance(R, threading._CRLock) and isinstance(pre_rlock, threading._CRLock)


def raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        return str(e)
    raise AssertionError("%s did not raise %s" % (fn, exc.__name__))


def public(obj):
    # Besides the real type's methods, the wrappers carry only the probe's own data.
    return {n for n in dir(obj) if not n.startswith("__")} - {"_lock", "_key", "_ser", "_depth"}


# the wrappers look like the C types (test_threading checks names, methods, instantiation)
for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
    assert getattr(threading.Lock, attr) == getattr(OrigLock, attr) or attr == "__name__", attr
assert threading.RLock is OrigRLock  # RLock() makes its C lock through threading._CRLock
assert public(L) == public(pre_lock), public(L) ^ public(pre_lock)
assert public(R) == public(pre_rlock), public(R) ^ public(pre_rlock)
assert repr(type(R)) == repr(type(pre_rlock))
raises(TypeError, threading.Lock, 1)
import copy
raises(TypeError, copy.copy, L)
raises(TypeError, copy.copy, R)
if sys.version_info < (3, 13):
    # type(lock) cannot be instantiated (the message names the type, as CPython's does)
    tp = type(L)
    msg = raises(TypeError, tp)
    assert msg == "cannot create '%s.%s' instances" % (tp.__module__, tp.__name__), msg
    raises(TypeError, type(pre_lock))
else:
    assert type(L) is threading.Lock and repr(threading.Lock) == repr(OrigLock)
    assert isinstance(threading.Lock | None, type(int | None))
try:
    class MyLock(type(L)):
        pass
    raise AssertionError("the Lock type could be subclassed")
except TypeError:
    pass


class MyRLock(threading._CRLock):  # allowed, as for the C RLock
    def __init__(self, a, *, b):
        super().__init__()


mr = MyRLock(1, b=2)
with mr:
    assert mr._is_owned()
assert holds() == []

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
assert holds() == [], gridlock_probe._held

# a plain Lock released by another thread
L.acquire()
threading.Thread(target=L.release).start()
time.sleep(0.1)
assert not L.locked() and holds() == []

# reentrancy
with R:
    with R:
        assert R._is_owned()
    assert len(holds()) == 1
assert holds() == []
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
assert other[-1] == "refused" and len(holds()) == 1
R.release()
assert holds() == []

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
assert holds() == [], gridlock_probe._held

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
assert holds() == []
s2 = threading.Semaphore(0)
threading.Thread(target=s2.release).start()
assert s2.acquire(timeout=5)
if sys.version_info >= (3, 9):
    s2.release(3)
    assert s2._value == 3

# A semaphore used as a counter by many threads at once (queue.SimpleQueue's pure Python
# version): the bookkeeping loses and leaks nothing, and a collected semaphore leaves nothing.
import gc

count = threading.Semaphore(0)
N, PER = 16, 300


def producer():
    for _ in range(PER):
        count.release()


def consumer():
    for _ in range(PER):
        while not count.acquire(False):
            time.sleep(0)


workers = [threading.Thread(target=f) for f in (producer, consumer) for _ in range(N)]
for w in workers:
    w.start()
for w in workers:
    w.join()
assert count._value == 0
# A Semaphore(0) has no permits to hold: a release above the initial value leaves a credit
# that the next acquire consumes, so consumers are not holders (at most a few, from races).
key = id(count)
assert len(gridlock_probe._held[key]) < N, len(gridlock_probe._held[key])
# Whatever was recorded, once given back nothing of this semaphore is left anywhere, or an
# update was lost in a race.
for _ in range(len(gridlock_probe._held[key])):
    count.release()
assert gridlock_probe._held[key] == []
stray = [e for st in gridlock_probe._stacks.values() for e in st if e[6] == key]
assert stray == [], len(stray)
del count
gc.collect()
if sys.version_info >= (3, 9):
    big = threading.Semaphore(0)
    big.release(10 ** 5)  # one credit of 10**5, not 10**5 of them
    assert big.acquire()
    assert gridlock_probe._held[id(big)] == [] and gridlock_probe._prims[id(big)][3] == [10 ** 5 - 1]
    # A limiter: permits below the initial value have holders.
    lim = threading.Semaphore(2)
    lim.acquire(); lim.acquire()
    assert len(gridlock_probe._held[id(lim)]) == 2
    lim.release(2)
    assert gridlock_probe._held[id(lim)] == []
    del big, lim
    gc.collect()
assert key not in gridlock_probe._held and key not in gridlock_probe._prims

# A thread that ends holding a permit: its record stays (the permit is still taken), but a later
# thread, even one given the same ident, does not inherit it in its lock order.
kept = threading.Semaphore(1)
t = threading.Thread(target=kept.acquire)
t.start(); t.join()
later_lock = threading.Lock()
t2 = threading.Thread(target=lambda: later_lock.acquire() and later_lock.release())
t2.start(); t2.join()
assert len(gridlock_probe._held[id(kept)]) == 1
kept_serial = gridlock_probe._prims[id(kept)][0]
assert not any(k[0] == kept_serial for k in gridlock_probe._edges), gridlock_probe._edges
kept.release()
assert gridlock_probe._held[id(kept)] == []

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
    assert id(lock) not in gridlock_probe._held and not gridlock_probe._held[id(sem)]
    await asyncio.wait_for(lock.acquire(), 1)
    lock.release()
    try:
        lock.release()
        raise AssertionError("no RuntimeError")
    except RuntimeError:
        pass


asyncio.run(main())

# asyncio imported after install: patched by a one-shot import watch that leaves no trace.
import subprocess

late = """
import sys, gridlock_probe
gridlock_probe.install()
finders = len(sys.meta_path)
import asyncio, asyncio.locks
assert len(sys.meta_path) == finders - 1, sys.meta_path
assert type(asyncio.locks.__loader__).__name__ != "_PatchingLoader", asyncio.locks.__loader__
assert asyncio.Lock.acquire.__module__ == "asyncio.locks"
async def main():
    lock = asyncio.Lock()
    async with lock:
        assert id(lock) in gridlock_probe._held
asyncio.run(main())
"""
subprocess.run([sys.executable, "-c", late], check=True)
print("ok", sys.version.split()[0])
