#!/usr/bin/env bash
# `make sanitize`: the test suite under ThreadSanitizer, then under AddressSanitizer. Fails on any report.
#
# - TSan (scratch path .build-tsan): `halt_on_error=1` stops the run at the first report, and the log is
#   also searched for "WARNING: ThreadSanitizer" in case a report escapes the exit status.
# - ASan (scratch path .build-asan) with DESCENT_BUFFER_CACHE=0, so that every tensor buffer goes back to
#   `free` and ASan sees each use after free and overflow (a recycled buffer would hide them). ASan aborts
#   by itself on a report; the log is searched for "ERROR: AddressSanitizer" and "ERROR: LeakSanitizer"
#   as well. Leak detection is on (`detect_leaks=1`) with scripts/lsan.supp, which suppresses only leaks
#   outside Descent, by library name: XCTest's harness, FoundationXML/libxml2 (the SVG test), Foundation's
#   Process.run (the CLI tests start `descent` with it) and
#   swift-argument-parser when `descent` exits on a bad option. Without the suppressions LeakSanitizer
#   reports those and, in the `descent` processes the CLI tests start, turns the expected exit status 2
#   into 1. A leak in Descent's own code is reported and fails the run.
#
# Each build is separate from `.build` and takes several minutes the first time.
set -uo pipefail
SWIFT="${SWIFT:-swift}"
cd "$(dirname "$0")/.."

run() {  # run <name> <report pattern> <command...>
    local name="$1" pattern="$2"
    shift 2
    local log=".build-$name/sanitize.log"
    mkdir -p ".build-$name"
    echo "== $name: $*"
    "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    local reports
    reports=$(grep -c "$pattern" "$log")
    echo "== $name: exit status $status, $reports report(s) matching \"$pattern\" (log: $log)"
    if [ "$status" -ne 0 ] || [ "$reports" -ne 0 ]; then
        echo "== $name: FAILED"
        exit 1
    fi
}

run tsan "WARNING: ThreadSanitizer" \
    env TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" \
    "$SWIFT" test --sanitize=thread --scratch-path .build-tsan
run asan "ERROR: AddressSanitizer\|ERROR: LeakSanitizer" \
    env DESCENT_BUFFER_CACHE=0 ASAN_OPTIONS="detect_leaks=1 ${ASAN_OPTIONS:-}" \
    LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp print_suppressions=0 ${LSAN_OPTIONS:-}" \
    "$SWIFT" test --sanitize=address --scratch-path .build-asan
echo "== sanitize: no reports"
