# A process with N generated modules' worth of globals (default 5000; 0 for none) and a
# two-thread deadlock: one lock is a global of the last generated module (found late in
# sys.modules), the other a local no global reaches (so the name search walks everything
# it may). Prints "READY" once both threads are stuck. Usage: names_modules.py [N]
import importlib
import os
import sys
import tempfile
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
MODULE = '''
import threading
COUNT = {i}
NAME = "module {i}"
TABLE = {{"a": 1, "b": [1, 2, 3], "c": ("x", "y")}}
ITEMS = [1, 2.5, "three", None, (4, 5)]


class Thing{i}:
    LIMIT = 10

    def __init__(self):
        self.value = {i}
        self.label = "thing"
        self.parts = [1, 2, 3]
        self.table = {{"k": "v"}}

    def method(self):
        return self.value


thing = Thing{i}()
other = Thing{i}()


def helper(x):
    return x + COUNT
'''

here = tempfile.mkdtemp(prefix="gridlock-names-")
for i in range(N):
    with open(os.path.join(here, "gen_%05d.py" % i), "w") as f:
        f.write(MODULE.format(i=i))
sys.path.insert(0, here)
for i in range(N):
    importlib.import_module("gen_%05d" % i)
last = sys.modules["gen_%05d" % (N - 1)] if N else sys.modules[__name__]
last.late_lock = threading.Lock()
both = threading.Barrier(2)


def first(own):
    with own:
        both.wait()
        with last.late_lock:
            pass


def second(own):
    with last.late_lock:
        both.wait()
        with own:
            pass


def start():
    hidden = threading.Lock()
    threading.Thread(target=first, args=(hidden,), daemon=True).start()
    threading.Thread(target=second, args=(hidden,), daemon=True).start()


start()
time.sleep(0.3)
print("READY", len(sys.modules), flush=True)
while True:
    time.sleep(3600)
