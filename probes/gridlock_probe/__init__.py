"""gridlock's opt-in in-target probe: exact owners of the synchronisation primitives.

Once installed, every threading.Lock / RLock created from then on is a thin wrapper that
records, on each successful acquire, the owner thread (or asyncio task), the acquisition site
and a sequence number; Semaphore / BoundedSemaphore, and asyncio Lock / Semaphore, get the same
bookkeeping by patching their (pure Python) methods in place. Condition, Event, Barrier and
queue.Queue are built on those locks, so their internal locks are recorded too.

The record is plain Python data in this module's globals, which gridlock reads from outside
through /proc/PID/mem (no code runs in the target on gridlock's behalf, no syscall per acquire):

    _held   {id(lock or semaphore): entry, or [entry, ...] for semaphores}
    _edges  {(serial_a, serial_b): (id_a, id_b, owner, func_a, file_a, line_a, func_b, file_b, line_b)}
            "owner held a when it took b", each pair once, for the whole run
    entry = (owner_thread_ident, function, file, line, seq, serial, key[, id(task)])

Only ints, strs and tuples, so gridlock's readers parse them without running code. The
bookkeeping never changes what the primitives do: it runs after the real operation decided the
outcome, and any error inside it is swallowed.
"""

import itertools
import os
import sys
import threading
import _thread

__all__ = ["install", "installed"]

VERSION = 1

_held = {}
_edges = {}
# Per owner (thread ident, or id(task) for asyncio) the entries it holds, oldest first.
_stacks = {}
_MAX_EDGES = 100000

_installed = False
_get_ident = _thread.get_ident
_getframe = sys._getframe
_seq = itertools.count(1).__next__
_serial = itertools.count(1).__next__

# Frames in these files are the primitives' own code: the site is the first frame outside them.
_internal = {__file__, threading.__file__}

_orig_lock = threading.Lock
_orig_rlock = threading.RLock


def _outer(f):
    while f is not None and f.f_code.co_filename in _internal:
        f = f.f_back
    return f


def _record(key, ser, f, owner, task):
    """Publish that `owner` took the primitive `key` at frame `f` (single-owner primitives)."""
    if f.f_code.co_filename in _internal:
        f = _outer(f)
    if f is None:
        func, file, line = "?", "?", 0
    else:
        co = f.f_code
        func, file, line = co.co_name, co.co_filename, f.f_lineno
    if task is None:
        entry = (owner, func, file, line, _seq(), ser, key)
    else:
        entry = (_get_ident(), func, file, line, _seq(), ser, key, task)
    stack = _stacks.get(owner)
    if stack is None:
        stack = _stacks[owner] = []
    elif stack:
        for a in stack:
            if a[6] != key:
                ek = (a[5], ser)
                if ek not in _edges and len(_edges) < _MAX_EDGES:
                    _edges[ek] = (a[6], key, entry[0], a[1], a[2], a[3], func, file, line)
    stack.append(entry)
    return entry


def _unstack(entry, owner):
    stack = _stacks.get(owner)
    if stack:
        if stack[-1] is entry:
            stack.pop()
        else:
            try:
                stack.remove(entry)
            except ValueError:
                pass


def _owner_of(entry):
    # asyncio entries carry the task (0: no task) after the key; the task owns them.
    return entry[7] if len(entry) > 7 and entry[7] else entry[0]


def _forget(key, ser):
    entry = _held.get(key)
    if entry is not None and entry[5] == ser:
        del _held[key]
        _unstack(entry, _owner_of(entry))


class _GridlockProbeLock(object):
    """threading.Lock with an owner. Looks like the real lock to isinstance() checks."""

    def __init__(self):
        self._lock = lock = _orig_lock()
        self._key = id(lock)
        self._ser = _serial()

    def acquire(self, blocking=True, timeout=-1):
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            try:
                me = _get_ident()
                _held[self._key] = _record(self._key, self._ser, _getframe(1), me, None)
            except Exception:
                pass
        return ok

    __enter__ = acquire

    def release(self):
        # Forget first: once released, another thread may take it and record its own entry.
        try:
            _forget(self._key, self._ser)
        except Exception:
            pass
        self._lock.release()

    def __exit__(self, t, v, tb):
        try:
            _forget(self._key, self._ser)
        except Exception:
            pass
        self._lock.release()

    def locked(self):
        return self._lock.locked()

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        try:
            _forget(self._key, self._ser)
        except Exception:
            pass

    def __repr__(self):
        return repr(self._lock)

    def __del__(self):
        try:
            _forget(self._key, self._ser)
        except Exception:
            pass

    # isinstance(lock, _thread.LockType) keeps working.
    @property
    def __class__(self):
        return self._lock.__class__

    # The old aliases CPython's lock still has.
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked


class _GridlockProbeRLock(object):
    """threading.RLock with a recorded owner site; the owner ident is also in the C RLock."""

    def __init__(self, *args, **kwargs):
        self._lock = lock = _orig_rlock(*args, **kwargs)
        self._key = id(lock)
        self._ser = _serial()
        self._depth = 0

    def acquire(self, blocking=True, timeout=-1):
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            try:
                self._depth += 1
                if self._depth == 1:
                    me = _get_ident()
                    _held[self._key] = _record(self._key, self._ser, _getframe(1), me, None)
            except Exception:
                pass
        return ok

    __enter__ = acquire

    def _drop(self):
        entry = _held.get(self._key)
        # Only the owner's release changes the bookkeeping (others raise in the real release).
        if entry is not None and entry[0] == _get_ident() and entry[5] == self._ser:
            self._depth -= 1
            if self._depth <= 0:
                self._depth = 0
                del _held[self._key]
                _unstack(entry, entry[0])

    def release(self):
        try:
            self._drop()
        except Exception:
            pass
        self._lock.release()

    def __exit__(self, t, v, tb):
        try:
            self._drop()
        except Exception:
            pass
        self._lock.release()

    # Condition uses these to release an RLock fully around wait() and take it back.
    def _release_save(self):
        saved = (self._depth, _held.get(self._key))
        try:
            entry = saved[1]
            if entry is not None and entry[5] == self._ser:
                self._depth = 0
                del _held[self._key]
                _unstack(entry, entry[0])
        except Exception:
            pass
        return (self._lock._release_save(), saved)

    def _acquire_restore(self, state):
        inner, saved = state
        self._lock._acquire_restore(inner)
        try:
            self._depth = saved[0]
            entry = saved[1]
            if entry is not None:
                me = _get_ident()
                _held[self._key] = _record(self._key, self._ser, _getframe(1), me, None)
        except Exception:
            pass

    def _is_owned(self):
        return self._lock._is_owned()

    def _recursion_count(self):
        return self._lock._recursion_count()

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        try:
            self._depth = 0
            _forget(self._key, self._ser)
        except Exception:
            pass

    def __repr__(self):
        return repr(self._lock)

    def __del__(self):
        try:
            _forget(self._key, self._ser)
        except Exception:
            pass

    @property
    def __class__(self):
        return self._lock.__class__


class _LockMeta(type):
    """3.13: threading.Lock is a class; locks made before install stay instances of it."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, _orig_lock) or type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, _orig_lock) or type.__subclasscheck__(cls, sub)


def _lock_factory():
    return _GridlockProbeLock()


def _rlock_factory(*args, **kwargs):
    return _GridlockProbeRLock(*args, **kwargs)


# They stand in for threading's own names (threading's __all__ test checks __module__).
_lock_factory.__name__ = _lock_factory.__qualname__ = "Lock"
_rlock_factory.__name__ = _rlock_factory.__qualname__ = "RLock"
_lock_factory.__module__ = _rlock_factory.__module__ = "threading"


# --- semaphores: several holders, any thread may release -----------------------------------

_sem_serials = {}


def _sem_serial(sem):
    ser = _sem_serials.get(id(sem))
    if ser is None:
        if len(_sem_serials) > 100000:
            _sem_serials.clear()
        ser = _sem_serials[id(sem)] = _serial()
    return ser


def _record_permit(sem, f, owner, task):
    key = id(sem)
    entry = _record(key, _sem_serial(sem), f, owner, task)
    permits = _held.get(key)
    if permits is None:
        _held[key] = [entry]
    else:
        permits.append(entry)


def _forget_permits(sem, n, owner):
    permits = _held.get(id(sem))
    if not permits:
        return
    for _ in range(n):
        if not permits:
            break
        # The releaser's own permit if it has one, else the oldest.
        pick = permits[0]
        for e in permits:
            if _owner_of(e) == owner:
                pick = e
                break
        permits.remove(pick)
        _unstack(pick, _owner_of(pick))
    if not permits:
        _held.pop(id(sem), None)


def _patch_semaphores():
    Semaphore = threading.Semaphore
    orig_acquire = Semaphore.acquire
    orig_release = Semaphore.release
    orig_brelease = threading.BoundedSemaphore.release

    def acquire(self, blocking=True, timeout=None):
        ok = orig_acquire(self, blocking, timeout)
        if ok:
            try:
                _record_permit(self, _getframe(1), _get_ident(), None)
            except Exception:
                pass
        return ok

    def make_release(orig):
        def release(self, *args, **kwargs):
            orig(self, *args, **kwargs)
            try:
                n = args[0] if args else kwargs.get("n", 1)
                _forget_permits(self, n, _get_ident())
            except Exception:
                pass

        release.__doc__ = orig.__doc__
        release.__name__ = orig.__name__
        release.__qualname__ = orig.__qualname__
        return release

    acquire.__doc__ = orig_acquire.__doc__
    acquire.__qualname__ = orig_acquire.__qualname__
    Semaphore.acquire = acquire
    Semaphore.__enter__ = acquire
    Semaphore.release = make_release(orig_release)
    threading.BoundedSemaphore.release = make_release(orig_brelease)


# --- asyncio: the owner is the task ---------------------------------------------------------


def _patch_asyncio(alocks):
    global _asyncio_patched
    if _asyncio_patched:
        return
    _asyncio_patched = True
    _internal.add(alocks.__file__)

    def task_id():
        # asyncio.tasks may still be importing when asyncio.locks is patched: look it up late.
        try:
            t = sys.modules["asyncio"].current_task()
        except Exception:
            return 0
        return id(t) if t is not None else 0

    Lock = alocks.Lock
    orig_lacquire = Lock.acquire
    orig_lrelease = Lock.release

    async def lock_acquire(self):
        f = _getframe(1)
        r = await orig_lacquire(self)
        try:
            task = task_id()
            key = id(self)
            _held[key] = _record(key, _sem_serial(self), f, task or _get_ident(), task)
        except Exception:
            pass
        return r

    def lock_release(self):
        orig_lrelease(self)
        try:
            entry = _held.pop(id(self), None)
            if entry is not None:
                _unstack(entry, _owner_of(entry))
        except Exception:
            pass

    Sem = alocks.Semaphore
    orig_sacquire = Sem.acquire
    orig_srelease = Sem.release

    async def sem_acquire(self):
        f = _getframe(1)
        r = await orig_sacquire(self)
        try:
            task = task_id()
            _record_permit(self, f, task or _get_ident(), task)
        except Exception:
            pass
        return r

    def sem_release(self):
        orig_srelease(self)
        try:
            _forget_permits(self, 1, task_id() or _get_ident())
        except Exception:
            pass

    for new, orig in ((lock_acquire, orig_lacquire), (lock_release, orig_lrelease),
                      (sem_acquire, orig_sacquire), (sem_release, orig_srelease)):
        new.__doc__ = orig.__doc__
        new.__qualname__ = orig.__qualname__
    Lock.acquire = lock_acquire
    Lock.release = lock_release
    Sem.acquire = sem_acquire
    Sem.release = sem_release


_asyncio_patched = False


# --- fork -----------------------------------------------------------------------------------


def _after_fork_in_child():
    # Only the forking thread survives. Locks other threads held stay locked in the child
    # (CPython does not release them), so their entries stay true: keep them; drop the
    # per-thread order stacks of threads that no longer exist.
    me = _get_ident()
    for owner in list(_stacks):
        if owner != me:
            _stacks.pop(owner, None)


# --- installing -----------------------------------------------------------------------------


def installed():
    return _installed


def install():
    """Start recording. Idempotent; locks created before this keep no probe record."""
    global _installed
    if _installed:
        return
    _installed = True
    import queue

    _internal.add(queue.__file__)
    if sys.version_info >= (3, 13):
        # threading.Lock is the lock class here: keep it a class.
        threading.Lock = _LockMeta("_GridlockProbeLock", (_GridlockProbeLock,), {})
    else:
        threading.Lock = _lock_factory
    threading.RLock = _rlock_factory
    _patch_semaphores()
    if "asyncio.locks" in sys.modules:
        _patch_asyncio(sys.modules["asyncio.locks"])
    else:
        _watch_asyncio_import()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _watch_asyncio_import():
    """Patch asyncio.locks right after the program imports it (a meta path finder that
    only observes: it never finds anything itself)."""
    import importlib.abc

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "asyncio.locks":
                spec = _find_with_others(self, name, path, target)
                if spec is not None and spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
            return None

    sys.meta_path.insert(0, Finder())


def _find_with_others(me, name, path, target):
    for finder in sys.meta_path:
        if finder is me or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(name, path, target)
        if spec is not None:
            return spec
    return None


class _PatchingLoader(object):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            _patch_asyncio(module)
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self._loader, name)
