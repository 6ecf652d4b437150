# Put first on PYTHONPATH by `gridlock run --probe`: installs gridlock's probe in every Python
# process of the run (children inherit the environment), then runs the sitecustomize module
# this file shadows, if there is one.
import os
import sys


def _gridlock_boot():
    if os.environ.get("GRIDLOCK_PROBE") == "1":
        try:
            import gridlock_probe

            gridlock_probe.install()
        except Exception:
            pass
    here = os.path.abspath(__file__)

    def ours(folder):
        # The same file under another name (gridlock also puts it on the path through
        # /proc/PID/root) is still this one.
        mine = os.path.join(os.path.abspath(folder or "."), "sitecustomize.py")
        try:
            return mine == here or os.path.samefile(mine, here)
        except OSError:
            return False

    try:
        import importlib.machinery
        import importlib.util

        path = [p for p in sys.path if not ours(p)]
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    except Exception:
        spec = None
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


_gridlock_boot()
del _gridlock_boot
