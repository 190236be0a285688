#!/usr/bin/env bash
# Runs every committed reproducer Fuzz/Regressions/TARGET/* once through TARGET's fuzz binary (libFuzzer
# runs a single input when given a file), after building. Exits non-zero if any of them still crashes,
# hangs (10 s) or runs out of memory, listing which. Usage: Fuzz/replay-regressions.sh [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"
source ./env.sh

./run.sh build || exit 1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for d in Regressions/*/; do targets+=("$(basename "$d")"); done
fi
failed=() count=0
for target in "${targets[@]}"; do
    for input in Regressions/"$target"/*; do
        [ -f "$input" ] || continue
        case "$input" in *.md) continue ;; esac
        count=$((count + 1))
        extra=""
        case "$target" in FuzzKerasH5|FuzzKerasArchive) extra="-malloc_limit_mb=65536" ;; esac  # see run.sh extra_flags
        # shellcheck disable=SC2086
        if output=$(".build-fuzz/$CONFIG/$target" -timeout=10 -rss_limit_mb=2048 $extra "$input" 2>&1); then
            echo "ok      $input"
        else
            echo "FAILED  $input"
            # The error, the Swift runtime failure's kind, and the first frame in Descent's or the harness's code.
            echo "$output" | grep -E "^==[0-9]+== ?ERROR|FUZZ PROPERTY VIOLATED|Fatal error" | head -2 | sed "s/^/        /"
            echo "$output" | grep -oE "Swift runtime failure: [^/]*" | head -1 | sed "s/^/        /"
            echo "$output" | grep -E "^    #[0-9]+ .* /.*/Sources/[^ ]*:[0-9]+" | grep -v "runtime failure" | head -1 \
                | sed -E 's#.*/(Sources|Fuzz/Sources)/#        at #'
            echo "        (replay: Fuzz/.build-fuzz/$CONFIG/$target $input)"
            failed+=("$input")
        fi
    done
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "${#failed[@]} of $count reproducers still fail" >&2
    exit 1
fi
echo "all $count reproducers pass"
