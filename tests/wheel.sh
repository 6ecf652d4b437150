#!/usr/bin/env bash
# Does the wheel work the way Python users install it? Builds `py-gridlock` (maturin, manylinux2014
# through zig), installs it into a fresh venv, and with only the venv's bin and /usr/bin:/bin on
# PATH (no Rust toolchain) runs the README's demo through the installed `gridlock` (exit 3, a
# DEADLOCK reported) and `python -m gridlock_probe -c ...` from the venv (the probe installed and
# recording). Run by .ci/run after scripts/test; a release build, about 2-5 min on 2 cores.
# Usage: tests/wheel.sh [WHEEL]  (an already built wheel skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

work=$(mktemp -d /tmp/gridlock-wheel.XXXXXX)
target_pid=
cleanup() {
    if [ -n "$target_pid" ]; then kill -9 "$target_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "tests/wheel.sh: FAILED: $*" >&2
    echo "wheel: 0 passed, 1 failed"
    exit 1
}

if [ $# -ge 1 ]; then
    wheel=$1
else
    python3 -c 'import maturin, ziglang' >/dev/null 2>&1 || python3 -m pip install -q maturin ziglang >/dev/null
    python3 -m maturin build --quiet --release --zig --compatibility manylinux2014 -o "$work/wheels" >"$work/build.log" 2>&1 ||
        { tail -30 "$work/build.log" >&2; fail "maturin build"; }
    wheel=$(ls "$work"/wheels/py_gridlock-*.whl)
fi
echo "tests/wheel.sh: testing $(basename "$wheel")"
case "$(basename "$wheel")" in
    *manylinux2014_x86_64*) ;;
    *) fail "the wheel is not tagged manylinux2014_x86_64: $(basename "$wheel")" ;;
esac

# A fresh venv from the interpreter's real path (not a pyenv shim), the wheel installed from file.
python=$(python3 -c 'import sys; print(sys.executable)')
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel" >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; fail "pip install"; }

# From here on only the venv and the system: no cargo, no rustc, no ~/.cargo/bin.
export PATH="$work/venv/bin:/usr/bin:/bin"
cd "$work"
if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then
    fail "a Rust toolchain is still on PATH ($PATH)"
fi
[ "$(command -v gridlock)" = "$work/venv/bin/gridlock" ] || fail "gridlock is not the venv's: $(command -v gridlock || echo none)"
gridlock --version | grep -q "CPython builds it reads: 3.8" || fail "gridlock --version names no CPython builds"

# The README's demo, through the installed command.
python "$repo/examples/bank_transfer.py" >/dev/null &
target_pid=$!
disown "$target_pid" # killed below: no "Killed" notice from bash
sleep 2
set +e
gridlock dump "$target_pid" >"$work/dump.txt" 2>&1
status=$?
set -e
kill -9 "$target_pid" 2>/dev/null || true
target_pid=
[ "$status" -eq 3 ] || { cat "$work/dump.txt" >&2; fail "gridlock dump exited $status, not 3"; }
grep -q '^DEADLOCK ' "$work/dump.txt" || { cat "$work/dump.txt" >&2; fail "no DEADLOCK in the report"; }
grep -q 'teller-1' "$work/dump.txt" && grep -q 'teller-2' "$work/dump.txt" || fail "the report does not name both tellers"

# The probe, imported from the venv's site-packages (cwd is a temp folder: no repository copy).
out=$(python -m gridlock_probe -c '
import threading, gridlock_probe
assert gridlock_probe.installed(), "not installed"
lock = threading.Lock()
lock.acquire()
print(len(gridlock_probe._held), gridlock_probe.__file__)
') || fail "python -m gridlock_probe -c failed"
case "$out" in
    "1 $work/venv/lib/python3."*"/site-packages/gridlock_probe/__init__.py") ;;
    *) fail "python -m gridlock_probe: expected one held lock recorded by the venv's probe, got: $out" ;;
esac

echo "wheel: 2 passed, 0 failed"
