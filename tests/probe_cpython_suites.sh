#!/bin/sh
# CPython's own lock and threading tests, with and without gridlock's probe, for each
# interpreter given (default: pyenv's 3.11 and 3.13). Prints each run's pass/fail/skip counts
# and the test ids whose outcome differs. Slow (minutes): run by hand or via
# `cargo test --test probe_suites -- --ignored`.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
versions=${*:-"3.11 3.13"}
status=0
for v in $versions; do
    dir=$(ls -d "$root"/versions/"$v"* 2>/dev/null | head -1)
    py="$dir/bin/python3"
    [ -x "$py" ] || { echo "skip $v: no interpreter"; continue; }
    out=$(mktemp -d)
    for mode in plain probe; do
        if [ $mode = probe ]; then pre="-m gridlock_probe -m"; else pre="-m"; fi
        # -v prints one "test ... ok|FAIL|ERROR|skipped" line per test: the outcome set.
        PYTHONPATH="$here/probes" "$py" $pre unittest -v \
            test.test_threading test.test_thread test.test_queue test.test_asyncio.test_locks \
            >"$out/$mode.log" 2>&1
        grep -E '^[a-zA-Z_0-9]+ \(.*\) \.\.\. ' "$out/$mode.log" | grep -vE '\.\.\. $' \
            | sed -E 's/ \.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success).*/ \1/' \
            | sort >"$out/$mode.outcomes"
        echo "$v $mode: $(tail -3 "$out/$mode.log" | tr '\n' ' ')"
    done
    if diff "$out/plain.outcomes" "$out/probe.outcomes" >"$out/diff"; then
        echo "$v: same outcome for all $(wc -l <"$out/plain.outcomes") tests"
    else
        echo "$v: outcomes differ:"; cat "$out/diff"; status=1
    fi
done
exit $status
