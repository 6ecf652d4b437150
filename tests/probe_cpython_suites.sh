#!/bin/sh
# CPython's own lock and threading tests, with and without gridlock's probe, for each
# interpreter given (default: pyenv's 3.11 and 3.13, Debian unstable's 3.14 and 3.15 in the
# Debian root when it has their test packages): see probe_cpython_suites.py. Slow
# (minutes): run by hand or via `cargo test --test probe_suites -- --ignored`.
exec python3 "$(dirname "$0")/probe_cpython_suites.py" "$@"
