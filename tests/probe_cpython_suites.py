"""CPython's own lock and threading test modules, with and without gridlock's probe.

    python3 tests/probe_cpython_suites.py [VERSION ...]   (default: 3.11 3.13 sid-3.14 sid-3.15)

VERSION is a pyenv version prefix (3.11) or sid-3.13/sid-3.14/sid-3.15: Debian unstable's build
in the Debian root (scripts/debian-root.sh --testsuites installs its test package). For each
interpreter asked for, runs test_threading, test_thread, test_queue and
test_asyncio.test_locks from its own standard library once without and once with the probe
(`python -m gridlock_probe`), each in a fresh interpreter, and compares the outcome of every
test (ok, FAIL, ERROR, skipped, xfail, xpass). A test whose outcome differs is run again on its
own, RERUNS times in each mode, alternating. It is put down as flaky, and tolerated, only if
the runs without the probe disagree among themselves and every outcome seen with the probe was
also seen without it; any other difference fails (exit status 1). Slow (minutes).

The same file, run by the interpreter under test, is the runner:

    python [-m gridlock_probe] tests/probe_cpython_suites.py --run OUT NAME ...

writes "<test id> <outcome> <seconds>" lines to OUT, from unittest's result hooks (tests print
between a test's name and its verdict, so the verbose text is not parsed). A run that exceeds
RUN_TIMEOUT is killed; the tests it did not finish count as "missing".
"""
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

MODULES = ["test.test_threading", "test.test_thread", "test.test_queue",
           "test.test_asyncio.test_locks"]
RERUNS = 2
RUN_TIMEOUT = 1200
HERE = os.path.dirname(os.path.abspath(__file__))
PROBES = os.path.join(os.path.dirname(HERE), "probes")

# --- the runner (any CPython 3.8+) ----------------------------------------------------------

RANK = {"ok": 0, "skipped": 1, "xfail": 2, "xpass": 3, "FAIL": 4, "ERROR": 5}


class Recording(unittest.TextTestResult):
    """Keeps each test's outcome (a failing subtest makes the test FAIL; ERROR wins over FAIL)
    and duration."""

    outcomes = {}
    out = None  # file object: each test's line as soon as it is done (a run that times out
    # still tells what it got through)

    def _set(self, test, outcome):
        # setUpClass/tearDownModule errors arrive as an _ErrorHolder: recorded under its id.
        tid = test.id()
        old = self.outcomes.get(tid)
        if old is None or RANK[outcome] > RANK[old[0]]:
            self.outcomes[tid] = [outcome, old[1] if old else 0.0]

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        entry = self.outcomes.get(test.id())
        if entry is not None:
            entry[1] = time.monotonic() - self._t0
            self.out.write("%s %s %.3f\n" % (test.id(), entry[0], entry[1]))
            self.out.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "ERROR")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._set(test, "FAIL" if issubclass(err[0], test.failureException) else "ERROR")


def run_tests(out, names):
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=Recording)
    with open(out, "w") as Recording.out:
        runner.run(suite)
    # Again, complete: class and module fixture errors have no stopTest.
    with open(out, "w") as f:
        for tid, (outcome, secs) in sorted(Recording.outcomes.items()):
            f.write("%s %s %.3f\n" % (tid, outcome, secs))


# --- the comparison -------------------------------------------------------------------------


class Python:
    """One interpreter to compare: the command that starts it and, for Debian unstable's builds
    (`sid-3.14`), the root it runs in under chroot (scripts/debian-root.sh --testsuites)."""

    def __init__(self, cmd, label, root=None):
        self.cmd, self.label, self.root = cmd, label, root

    def inside(self, path):
        """Where the interpreter sees a host path that lies in its root."""
        if self.root is None:
            return path
        return "/" + os.path.relpath(path, self.root)

    def mirror(self, files):
        """Copy host files into the root at their own absolute paths."""
        import shutil
        for f in files if self.root else ():
            dst = os.path.join(self.root, f.lstrip("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(f, dst)


def interpreter(version):
    if version.startswith("sid-"):
        root = os.environ.get("GRIDLOCK_DEBIAN_ROOT", "/var/tmp/gridlock-sid")
        exe = "/usr/bin/python" + version[4:]
        if not os.access(os.path.join(root, exe.lstrip("/")), os.X_OK):
            return None
        if not os.path.exists(os.path.join(root, "usr/lib/python%s/test/test_threading.py"
                                           % version[4:])):
            print("skip %s: no test package in %s (scripts/debian-root.sh --testsuites)"
                  % (version, root))
            return None
        py = Python(["chroot", root, exe], version, root)
        py.mirror([os.path.abspath(__file__)] + sorted(
            glob.glob(os.path.join(PROBES, "gridlock_probe", "*.py"))))
        return py
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    root = root or os.path.expanduser("~/.pyenv")
    for d in sorted(glob.glob(os.path.join(root, "versions", version + "*"))):
        py = os.path.join(d, "bin", "python3")
        if os.access(py, os.X_OK):
            return Python([py], os.path.basename(d))
    return None


def default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(py, probe, names, tmp, tag):
    """{test id: (outcome, seconds)} of one run in a fresh interpreter."""
    out = os.path.join(tmp, tag + ".out")
    cmd = py.cmd + (["-m", "gridlock_probe"] if probe else []) + [
        os.path.abspath(__file__), "--run", py.inside(out)] + names
    env = dict(os.environ, PYTHONPATH=PROBES)
    with open(os.path.join(tmp, tag + ".log"), "w") as log:
        # SIGINT at its default, as in a terminal: a shell's background job ignores it, and
        # then test_threading's interrupt_main tests fail, or hang (3.13's gh-102056 test).
        # Its own session, so that a run past the timeout goes with all its children.
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 preexec_fn=default_sigint, start_new_session=True)
        try:
            child.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    res = {}
    if os.path.exists(out):
        with open(out) as f:
            for line in f:
                tid, outcome, secs = line.split()
                res[tid] = (outcome, float(secs))
    return res


def counts(res):
    by = {}
    for outcome, _ in res.values():
        by[outcome] = by.get(outcome, 0) + 1
    return ", ".join("%d %s" % (n, o) for o, n in sorted(by.items(), key=lambda x: RANK[x[0]]))


def compare(version, tmp):
    """Prints the comparison for one interpreter; returns False if the probe changed an outcome."""
    py = interpreter(version)
    if py is None:
        print("skip %s: no interpreter" % version)
        return True
    label = py.label
    if py.root is not None:
        # The runner writes its results where it can: in the root.
        tmp = tempfile.mkdtemp(prefix="probe-suites-", dir=os.path.join(py.root, "var/tmp"))
        print("%s: logs in %s" % (label, tmp))
    plain = run(py, False, MODULES, tmp, label + "-plain")
    probe = run(py, True, MODULES, tmp, label + "-probe")
    for mode, res in (("plain", plain), ("probe", probe)):
        print("%s %s: %d tests (%s) in %.0f s"
              % (label, mode, len(res), counts(res), sum(s for _, s in res.values())))
    if not plain or not probe:
        print("%s: a run recorded nothing (see the logs in %s)" % (label, tmp))
        return False
    outcome = lambda res, t: res.get(t, ("missing", 0))[0]
    differ = sorted(t for t in set(plain) | set(probe) if outcome(plain, t) != outcome(probe, t))
    slower = sorted(((probe[t][1] - plain[t][1], t) for t in set(plain) & set(probe)),
                    reverse=True)[:3]
    print("%s: slowest with the probe: %s" % (label, ", ".join(
        "%s +%.1f s (%.1f -> %.1f)" % (t.rsplit(".", 2)[-2] + "." + t.rsplit(".", 1)[-1],
                                       d, plain[t][1], probe[t][1]) for d, t in slower)))
    if not differ:
        print("%s: same outcome for all %d tests" % (label, len(plain)))
        return True
    seen = {t: ({outcome(plain, t)}, {outcome(probe, t)}) for t in differ}
    for i in range(RERUNS):
        for probe_mode in (False, True):
            res = run(py, probe_mode, differ, tmp, "%s-rerun%d-%s"
                      % (label, i, "probe" if probe_mode else "plain"))
            for t in differ:
                seen[t][probe_mode].add(outcome(res, t))
    ok = True
    for t in differ:
        without, with_probe = seen[t]
        flaky = len(without) > 1 and with_probe <= without
        print("%s: %s %s: without the probe %s, with it %s" % (
            label, "flaky (tolerated)" if flaky else "DIFFERS", t,
            "/".join(sorted(without)), "/".join(sorted(with_probe))))
        ok = ok and flaky
    print("%s: %s" % (label, "same outcomes, but for demonstrated flakiness" if ok
                      else "outcomes differ"))
    return ok


def main():
    if sys.argv[1:2] == ["--run"]:
        run_tests(sys.argv[2], sys.argv[3:])
        return 0
    tmp = tempfile.mkdtemp(prefix="probe-suites-")
    print("logs in %s" % tmp)
    ok = True
    for version in sys.argv[1:] or ["3.11", "3.13", "sid-3.14", "sid-3.15"]:
        ok = compare(version, tmp) and ok
        sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
