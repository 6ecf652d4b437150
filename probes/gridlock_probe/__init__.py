"""gridlock's opt-in in-target probe: exact owners of the synchronisation primitives.

Once installed, every threading.Lock and RLock created from then on is a thin wrapper that
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

Only ints, strs, tuples and lists, so gridlock's readers parse them without running code.

The bookkeeping never changes what the primitives do: it runs after the real operation decided
the outcome (or, for a release, before it, so the next owner's record is not clobbered), any
error inside it is swallowed, and the wrappers look like the types they stand in for (names,
isinstance, no instantiation or subclassing where the C type allows none, same methods). It
takes no lock of its own: every update is a single dict or list operation, atomic under the
GIL, so concurrent acquires and releases never lose or leak an entry.
"""

import itertools
import os
import sys
import threading
import _thread
from _weakref import ref as _ref

__all__ = ["install", "installed"]

VERSION = 1

_held = {}
_edges = {}
_MAX_EDGES = 100000

# What each owner holds, oldest first (for the order edges). A thread's list lives in a
# thread-local, so it dies with the thread and a later thread given the same ident starts
# empty; _stacks maps the owner (thread ident, or id(task) for asyncio) to the list so that a
# release by another thread finds it. A task's list is dropped with the task (_task_refs).
_stacks = {}
_tls = _thread._local()
_task_refs = {}
# id(semaphore or asyncio lock) -> _prim()'s record, from its first use until it is collected:
# ids are reused, serials are not.
_prims = {}

_installed = False
_get_ident = _thread.get_ident
_getframe = sys._getframe
_seq = itertools.count(1).__next__
_serial = itertools.count(1).__next__

# Frames in these files are the primitives' own code: the site is the first frame outside them.
_internal = {
    __file__,
    threading.__file__,
    os.path.join(os.path.dirname(threading.__file__), "queue.py"),
}

_orig_allocate = _thread.allocate_lock
_LockType = _thread.LockType
_RLockType = _thread.RLock
_orig_crlock = getattr(threading, "_CRLock", None)


# --- the record -----------------------------------------------------------------------------


def _record(key, ser, f, task):
    """The entry for the primitive `key` just taken at frame `f` (or the first frame above it
    outside the primitives' code) by this thread or by asyncio `task`: pushed on the owner's
    stack, with an order edge from everything else the owner holds."""
    while f is not None and f.f_code.co_filename in _internal:
        f = f.f_back
    if f is None:
        func, file, line = "?", "?", 0
    else:
        co = f.f_code
        func, file, line = co.co_name, co.co_filename, f.f_lineno or 0
    ident = _get_ident()
    if task is None:
        try:
            stack = _tls.stack
        except AttributeError:
            stack = _tls.stack = []
            _stacks[ident] = stack
        entry = (ident, func, file, line, _seq(), ser, key)
    else:
        stack = _task_stack(task)
        entry = (ident, func, file, line, _seq(), ser, key, id(task))
    for a in stack:
        if a[6] != key:
            ek = (a[5], ser)
            if ek not in _edges and len(_edges) < _MAX_EDGES:
                _edges[ek] = (a[6], key, ident, a[1], a[2], a[3], func, file, line)
    stack.append(entry)
    return entry


def _task_stack(task):
    k = id(task)
    r = _task_refs.get(k)
    if r is not None and r() is task:
        stack = _stacks.get(k)
        if stack is not None:
            return stack

    def gone(ref, k=k):
        try:
            if _task_refs.get(k) is ref:
                del _task_refs[k]
                _stacks.pop(k, None)
        except Exception:
            pass

    stack = _stacks[k] = []
    _task_refs[k] = _ref(task, gone)
    return stack


def _unstack(entry):
    # The owner: the task (id) if the entry names one, else the thread.
    stack = _stacks.get(entry[7] if len(entry) > 7 else entry[0])
    if stack:
        try:
            stack.remove(entry)
        except ValueError:
            pass


def _publish(key, entry):
    """`entry` is the holder of the single-owner primitive `key` now. A previous entry still
    there is stale (its release raced with its record): it goes, from its owner's stack too."""
    old = _held.pop(key, None)
    _held[key] = entry
    if old is not None and old is not entry:
        _unstack(old)


def _drop(key):
    """The single-owner primitive `key` is released (pop: exactly one remover per entry)."""
    entry = _held.pop(key, None)
    if entry is not None:
        _unstack(entry)


# --- threading.Lock and RLock: wrappers around the real C locks -----------------------------


class _Mirror(type):
    """Metaclass of the wrappers: locks made before install are instances too (of the
    wrapper classes themselves, not of user subclasses)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, _reals.get(cls, ())) or type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, _reals.get(cls, ())) or type.__subclasscheck__(cls, sub)


class _Sealed(_Mirror):
    """Like the C lock type before 3.13: it cannot be instantiated from Python."""

    def __call__(cls, *args, **kwargs):
        raise TypeError("cannot create '%s.%s' instances" % (cls.__module__, cls.__name__))


_reals = {}


def _like(new, orig):
    new.__name__ = orig.__name__
    new.__qualname__ = orig.__qualname__
    new.__module__ = getattr(orig, "__module__", None) or "_thread"
    new.__doc__ = orig.__doc__
    return new


def _looks_like(cls, real):
    """Give a wrapper class the real type's module, qualname and doc (repr, __all__ checks),
    and exactly the real type's public and private methods (hasattr checks)."""
    _reals[cls] = real
    for name in list(vars(cls)):
        if not name.startswith("__") and not hasattr(real, name):
            delattr(cls, name)
    cls.__module__ = real.__module__
    cls.__qualname__ = real.__qualname__
    cls.__doc__ = real.__doc__
    return cls


def _setup(w, lock):
    w._lock = lock
    w._key = id(lock)
    w._ser = _serial()


class _Wrapper(object):
    """What the Lock and RLock wrappers share. `_lock` is the real lock (gridlock's readers
    unwrap through it), `_key` its id, `_ser` the wrapper's serial. Their methods are the real
    type's and no others: helpers live in the module."""

    # isinstance(lock, _thread.LockType / _thread.RLock) keeps working.
    @property
    def __class__(self):
        return self._lock.__class__

    def __repr__(self):
        return repr(self._lock)

    # Pickling and copying fail as they do for the real lock.
    def __reduce_ex__(self, protocol):
        return self._lock.__reduce_ex__(protocol)

    def __reduce__(self):
        return self._lock.__reduce__()

    # Every use of the module's globals in the wrappers' methods is inside try: they are
    # None once interpreter teardown has cleared this module.
    def __del__(self):
        try:
            _drop(self._key)
        except Exception:
            pass


class _GridlockProbeLock(_Wrapper, metaclass=_Sealed if sys.version_info < (3, 13) else _Mirror):
    """threading.Lock with an owner."""

    def __init__(self):
        _setup(self, _orig_allocate())

    # The C lock type accepts no subclasses.
    def __init_subclass__(cls, **kwargs):
        raise TypeError("type '%s.%s' is not an acceptable base type"
                        % (cls.__base__.__module__, cls.__base__.__qualname__))

    def acquire(self, blocking=True, timeout=-1):
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            try:
                _publish(self._key, _record(self._key, self._ser, _getframe(1), None))
            except Exception:
                pass
        return ok

    __enter__ = acquire

    def release(self):
        # Forget first: once released, another thread may take it and record its own entry.
        try:
            _drop(self._key)
        except Exception:
            pass
        self._lock.release()

    def __exit__(self, *exc):
        # release(), inline: `with` is the common path.
        try:
            _drop(self._key)
        except Exception:
            pass
        self._lock.release()

    def locked(self):
        return self._lock.locked()

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        try:
            _drop(self._key)
        except Exception:
            pass

    # The old aliases CPython's lock still has.
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked


_looks_like(_GridlockProbeLock, _LockType)


def _new_lock():
    w = object.__new__(_GridlockProbeLock)
    _setup(w, _orig_allocate())
    return w


_like(_new_lock, _orig_allocate)


class _GridlockProbeRLock(_Wrapper, metaclass=_Mirror):
    """threading.RLock with a recorded owner site (installed as threading._CRLock, so
    threading.RLock itself stays the original function). Subclassable, like the C RLock.
    `_depth` is the owner's recursion level; only the owner changes it."""

    def __init__(self, *args, **kwargs):
        _setup(self, _orig_crlock(*args, **kwargs))
        self._depth = 0

    def acquire(self, blocking=True, timeout=-1):
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            try:
                self._depth += 1
                if self._depth == 1:
                    _publish(self._key, _record(self._key, self._ser, _getframe(1), None))
            except Exception:
                pass
        return ok

    __enter__ = acquire

    def release(self):
        try:
            # Only the owner's release counts (anyone else's raises in the real release).
            if self._depth and self._lock._is_owned():
                self._depth -= 1
                if not self._depth:
                    _drop(self._key)
        except Exception:
            pass
        self._lock.release()

    # __class__ here is the compiler's cell for this class (not the property): like the C
    # RLock, __exit__ runs its own release, not a subclass's (nor a global, None at teardown).
    def __exit__(self, *exc):
        __class__.release(self)

    # Condition uses these to release an RLock fully around wait() and take it back.
    def _release_save(self):
        depth = self._depth
        try:
            if self._lock._is_owned():
                self._depth = 0
                _drop(self._key)
        except Exception:
            pass
        return (self._lock._release_save(), depth)

    def _acquire_restore(self, state):
        inner, depth = state
        self._lock._acquire_restore(inner)
        self._depth = depth
        try:
            _publish(self._key, _record(self._key, self._ser, _getframe(1), None))
        except Exception:
            pass

    def _is_owned(self):
        return self._lock._is_owned()

    def _recursion_count(self):
        return self._lock._recursion_count()

    # 3.14+: Condition reads `lock.locked`, which the C RLock has there.
    if hasattr(_RLockType, "locked"):

        def locked(self):
            return self._lock.locked()

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        self._depth = 0
        try:
            _drop(self._key)
        except Exception:
            pass


_looks_like(_GridlockProbeRLock, _RLockType)


# --- semaphores and asyncio locks: patched in place -----------------------------------------


def _prim(obj, permits):
    """(serial, weakref, permit list, credit list) of a semaphore, or (serial, weakref, None,
    None) of an asyncio lock: made on first use, dropped with the object (and its entries)."""
    key = id(obj)
    info = _prims.get(key)
    if info is not None:
        if info[1]() is obj:
            return info
        _prims.pop(key, None)

    def gone(ref, key=key):
        try:
            info = _prims.get(key)
            if info is not None and info[1] is ref:
                del _prims[key]
                held = _held.pop(key, None)
                for e in held if isinstance(held, list) else (held,) if held else ():
                    _unstack(e)
        except Exception:
            pass

    new = (_serial(), _ref(obj, gone)) + (([], []) if permits else (None, None))
    info = _prims.setdefault(key, new)  # atomic: two first uses agree on one record
    if info is new and permits:
        _held[key] = new[2]
    return info


# A semaphore's permits are those below its initial value. A release that finds no recorded
# permit to give back raises the value above it: it leaves a credit, and the acquire that takes
# the value back down consumes the credit instead of recording a holder. So a Semaphore(0) used
# as a counter or a signal (queue.SimpleQueue's pure Python version) never has holders, and
# the record never outgrows the initial value. Permits and credits (counts) are lists: every
# update is one atomic append, pop or remove, so concurrent updates lose nothing (at worst a
# credit being split is missed by an acquire at that instant, which then records a holder).


def _take_permit(sem, f, task):
    info = _prim(sem, True)
    try:
        n = info[3].pop()
    except IndexError:
        info[2].append(_record(id(sem), info[0], f, task))
        return
    if n > 1:
        info[3].append(n - 1)


def _give_permits(sem, n, owner):
    """`owner` released n permits: give back its own first (the latest), then the oldest."""
    info = _prim(sem, True)
    permits = info[2]
    while n > 0:
        pick = None
        for e in permits:
            if (e[7] if len(e) > 7 else e[0]) == owner:
                pick = e
        if pick is None:
            try:
                pick = permits[0]
            except IndexError:
                info[3].append(n)
                return
        try:
            permits.remove(pick)
        except ValueError:
            continue  # another releaser gave it back first: pick again
        _unstack(pick)
        n -= 1


def _patch_semaphores():
    Semaphore = threading.Semaphore
    orig_acquire = Semaphore.acquire

    def acquire(self, blocking=True, timeout=None):
        ok = orig_acquire(self, blocking, timeout)
        if ok:
            try:
                _take_permit(self, _getframe(1), None)
            except Exception:
                pass
        return ok

    def make_release(orig):
        # Same signature as the original: release(self) before 3.9, release(self, n=1) after.
        if orig.__code__.co_argcount == 1:
            def release(self):
                orig(self)
                try:
                    _give_permits(self, 1, _get_ident())
                except Exception:
                    pass
        else:
            def release(self, n=1):
                orig(self, n)
                try:
                    _give_permits(self, n, _get_ident())
                except Exception:
                    pass
        return _like(release, orig)

    Semaphore.acquire = Semaphore.__enter__ = _like(acquire, orig_acquire)
    Semaphore.release = make_release(Semaphore.release)
    threading.BoundedSemaphore.release = make_release(threading.BoundedSemaphore.release)


def _current_task():
    # asyncio.tasks may still be importing when asyncio.locks is patched: look it up late.
    try:
        return sys.modules["asyncio"].current_task()
    except Exception:
        return None


def _patch_asyncio(alocks):
    global _asyncio_patched
    if _asyncio_patched:
        return
    _asyncio_patched = True
    _internal.add(alocks.__file__)
    Lock, Sem = alocks.Lock, alocks.Semaphore
    orig_lacquire, orig_lrelease = Lock.acquire, Lock.release
    orig_sacquire, orig_srelease = Sem.acquire, Sem.release

    async def lock_acquire(self):
        f = _getframe(1)
        r = await orig_lacquire(self)
        try:
            _publish(id(self), _record(id(self), _prim(self, False)[0], f, _current_task()))
        except Exception:
            pass
        return r

    def lock_release(self):
        orig_lrelease(self)
        try:
            _drop(id(self))
        except Exception:
            pass

    async def sem_acquire(self):
        f = _getframe(1)
        r = await orig_sacquire(self)
        try:
            _take_permit(self, f, _current_task())
        except Exception:
            pass
        return r

    def sem_release(self):
        orig_srelease(self)
        try:
            task = _current_task()
            _give_permits(self, 1, id(task) if task is not None else _get_ident())
        except Exception:
            pass

    Lock.acquire = _like(lock_acquire, orig_lacquire)
    Lock.release = _like(lock_release, orig_lrelease)
    Sem.acquire = _like(sem_acquire, orig_sacquire)
    Sem.release = _like(sem_release, orig_srelease)


_asyncio_patched = False


# --- fork -----------------------------------------------------------------------------------


def _after_fork_in_child():
    # Only the forking thread survives. Locks other threads held stay locked in the child
    # (CPython does not release them), so their entries stay true: keep them; drop the
    # order stacks of threads that no longer exist.
    try:
        mine = _tls.stack
    except AttributeError:
        mine = None
    for owner, stack in list(_stacks.items()):
        if owner not in _task_refs and stack is not mine:
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
    # 3.13: threading.Lock is the lock class, and stays a class.
    threading.Lock = _GridlockProbeLock if isinstance(threading.Lock, type) else _new_lock
    # threading.RLock() creates its C lock through this name at each call.
    if _orig_crlock is not None:
        threading._CRLock = _GridlockProbeRLock
    _patch_semaphores()
    if "asyncio.locks" in sys.modules:
        _patch_asyncio(sys.modules["asyncio.locks"])
    else:
        sys.meta_path.insert(0, _AsyncioWatch())
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


class _AsyncioWatch(object):
    """Patches asyncio.locks right after the program imports it: a meta path finder that only
    observes (it never finds anything itself) and leaves sys.meta_path once it is done."""

    def find_spec(self, name, path=None, target=None):
        if name != "asyncio.locks":
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, self)
        return spec


class _PatchingLoader(object):
    def __init__(self, loader, watch):
        self._loader = loader
        self._watch = watch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            _patch_asyncio(module)
            # Leave no trace: the module's loader is the real one, the watch is gone.
            module.__loader__ = module.__spec__.loader = self._loader
            sys.meta_path.remove(self._watch)
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self._loader, name)
