#!/usr/bin/env bash
# `make sanitize`: the test suite under ThreadSanitizer, then under AddressSanitizer. Fails on any report.
#
# - TSan (scratch path .build-tsan): `halt_on_error=1` stops the run at the first report, and the log is
#   also searched for "WARNING: ThreadSanitizer" in case a report escapes the exit status.
# - ASan (scratch path .build-asan) with DESCENT_BUFFER_CACHE=0, so that every tensor buffer goes back to
#   `free` and ASan sees each use after free and overflow (a recycled buffer would hide them). ASan aborts
#   by itself on a report; the log is searched for "ERROR: AddressSanitizer" as well. Leak detection is
#   off (`detect_leaks=0`): with it on, LeakSanitizer reports leaks only outside Descent (XCTest's
#   harness, FoundationXML/libxml2 in the SVG test, swift-argument-parser when `descent` exits on a bad
#   option, which also turns the CLI tests' expected exit status 2 into 1).
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
run asan "ERROR: AddressSanitizer" \
    env DESCENT_BUFFER_CACHE=0 ASAN_OPTIONS="detect_leaks=0 ${ASAN_OPTIONS:-}" \
    "$SWIFT" test --sanitize=address --scratch-path .build-asan
echo "== sanitize: no reports"
