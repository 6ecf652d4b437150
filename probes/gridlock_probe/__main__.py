"""python -m gridlock_probe script.py [args] | -m module [args] | -c code [args]

Installs the probe, then runs the program as `python` would have."""
import runpy
import sys

import gridlock_probe

USAGE = "usage: python -m gridlock_probe (script.py | -m module | -c code) [args ...]\n"


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 2
    gridlock_probe.install()
    if args[0] == "-m" and len(args) > 1:
        sys.argv = [args[1]] + args[2:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    elif args[0] == "-c" and len(args) > 1:
        sys.argv = ["-c"] + args[2:]
        code = compile(args[1], "<string>", "exec")
        globs = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(code, globs)
    else:
        sys.argv = args
        # The script's folder comes first on sys.path, as with `python script.py`.
        import os
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
