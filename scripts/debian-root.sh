#!/usr/bin/env bash
# The Debian unstable root that holds the newest CPython builds (python3.13, 3.14, 3.15), which
# need a newer glibc than the host's: tests start them as `chroot ROOT python3.X FILE`.
#
# Idempotent: makes the root if it is missing (debootstrap, ~30 s, ~370 MB, from Debian's
# registry), accepts one that already holds the three interpreters, and mounts `proc` at
# ROOT/proc and a tmpfs at ROOT/dev/shm (multiprocessing) when they are not mounted.
# Where debootstrap or chroot cannot run here it prints a note and exits 0: the tests that
# need the root then skip with their own note.
#
#   scripts/debian-root.sh            make or check the root, mount what it needs
#   scripts/debian-root.sh --testsuites  also install CPython's own test packages
#                                     (libpython3.X-testsuite: ~11 MB download, ~70 MB, ~30 s)
#                                     for tests/probe_cpython_suites.sh sid-3.14 sid-3.15
#   scripts/debian-root.sh --remove   unmount and delete it (for a root made to try this script)
#
# The root lives at ${GRIDLOCK_DEBIAN_ROOT:-/var/tmp/gridlock-sid}, never inside a repository
# (a recursive copy of the repository would descend into the root's mounted /proc).
set -euo pipefail

ROOT="${GRIDLOCK_DEBIAN_ROOT:-/var/tmp/gridlock-sid}"
PYTHONS=(python3.13 python3.14 python3.15)

note() { echo "debian-root: $*" >&2; }
skip() {
    note "skipped: $*"
    exit 0
}

case "$ROOT" in
/*) ;;
*)
    note "GRIDLOCK_DEBIAN_ROOT must be an absolute path, not '$ROOT'"
    exit 2
    ;;
esac
ROOT="${ROOT%/}"
if [ -z "$ROOT" ]; then
    note "GRIDLOCK_DEBIAN_ROOT must not be /"
    exit 2
fi

# The first existing folder at or above PATH.
existing_parent() {
    local p="$1"
    while [ ! -d "$p" ]; do p="$(dirname "$p")"; done
    printf '%s\n' "$p"
}

inside_repository() {
    command -v git >/dev/null 2>&1 &&
        git -C "$(existing_parent "$1")" rev-parse --show-toplevel >/dev/null 2>&1
}

# Unmount everything mounted at or below $1, deepest first.
unmount_below() {
    local dir
    dir="$(realpath -m "$1")"
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
        sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# `rm` that never crosses into a mounted filesystem (a leftover /proc or /sys mount).
remove_tree() {
    unmount_below "$1"
    rm -rf --one-file-system "$1"
}

if [ "${1:-}" = "--remove" ]; then
    if [ "$(id -u)" != 0 ]; then
        note "--remove needs root (to unmount)"
        exit 1
    fi
    remove_tree "$ROOT"
    remove_tree "$ROOT.partial"
    note "removed $ROOT"
    exit 0
fi
TESTSUITES=0
if [ "${1:-}" = "--testsuites" ]; then
    TESTSUITES=1
    shift
fi
if [ $# -gt 0 ]; then
    note "usage: $0 [--testsuites | --remove]"
    exit 2
fi

complete() {
    local py
    for py in "${PYTHONS[@]}"; do
        [ -x "$1/usr/bin/$py" ] || return 1
    done
}

[ "$(id -u)" = 0 ] || skip "making and entering a chroot needs root"
command -v chroot >/dev/null 2>&1 || skip "no chroot command here"
if inside_repository "$ROOT"; then
    note "refusing to make the root inside a git repository: $ROOT (set GRIDLOCK_DEBIAN_ROOT to a path outside it)"
    exit 2
fi

if ! complete "$ROOT"; then
    if [ -e "$ROOT" ] && [ -n "$(ls -A "$ROOT" 2>/dev/null)" ]; then
        note "$ROOT exists but lacks ${PYTHONS[*]}: remove it (scripts/debian-root.sh --remove) or point GRIDLOCK_DEBIAN_ROOT elsewhere"
        exit 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || skip "no debootstrap and no apt-get to install it"
        note "installing debootstrap"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1; then
            apt-get update -q >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 ||
                skip "could not install debootstrap with apt-get"
        fi
    fi
    # Built beside the final place and moved there whole, so an interrupted run never leaves
    # a half-made root that looks complete.
    partial="$ROOT.partial"
    remove_tree "$partial"
    mkdir -p "$(dirname "$ROOT")"
    note "making the Debian unstable root at $ROOT (debootstrap, about 30 s)"
    log="$(mktemp)"
    if ! debootstrap --variant=minbase --include="$(
        IFS=,
        echo "${PYTHONS[*]}"
    )" sid "$partial" >"$log" 2>&1; then
        tail -n 5 "$log" >&2
        rm -f "$log"
        remove_tree "$partial"
        skip "debootstrap could not make the root (no access to Debian's registry?)"
    fi
    rm -f "$log"
    unmount_below "$partial"
    if [ -e "$ROOT" ]; then rmdir "$ROOT"; fi
    mv "$partial" "$ROOT"
    complete "$ROOT" || {
        note "debootstrap finished but ${PYTHONS[*]} are missing from $ROOT"
        exit 1
    }
fi

mkdir -p "$ROOT/proc" "$ROOT/dev/shm"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc" ||
    skip "could not mount proc at $ROOT/proc"
mountpoint -q "$ROOT/dev/shm" || mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm" ||
    skip "could not mount a tmpfs at $ROOT/dev/shm"

for py in "${PYTHONS[@]}"; do
    version="$(chroot "$ROOT" "/usr/bin/$py" -c 'import platform; print(platform.python_version())' 2>/dev/null)" ||
        skip "chroot into $ROOT cannot run $py here"
    note "$py $version"
done
if [ "$TESTSUITES" = 1 ]; then
    missing=()
    for py in "${PYTHONS[@]}"; do
        [ -f "$ROOT/usr/lib/$py/test/test_threading.py" ] || missing+=("lib$py-testsuite")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        note "installing ${missing[*]} (about 30 s)"
        chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
            chroot "$ROOT" apt-get update -q >/dev/null 2>&1 || true
            chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
                skip "could not install ${missing[*]} in $ROOT"
        }
    fi
fi
echo "$ROOT"
