#!/usr/bin/env bash
# Groups crash reproducers by where they crash: runs each file once through its target's fuzz binary
# (already built by run.sh) and prints, per distinct crash site, the kind, the first frame in Descent's
# sources, how many files hit it, and the smallest file.
# Usage: Fuzz/triage.sh [FILE...]   (default: every file in Fuzz/artifacts/, named TARGET-kind-hash)
set -uo pipefail
cd "$(dirname "$0")"
source ./env.sh
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(artifacts/*)
declare -A count smallest size
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    target=$(basename "$f" | cut -d- -f1)
    output=$(".build-fuzz/$CONFIG/$target" -timeout=10 -rss_limit_mb=2048 "$f" 2>&1)
    kind=$(echo "$output" | grep -oE "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-z-]+( [a-z-]+)?|FUZZ PROPERTY VIOLATED|Fatal error: [^:]*" | head -1)
    failure=$(echo "$output" | grep -oE "Swift runtime failure: [^/]*" | head -1 | sed 's/ *$//')
    [ -z "$failure" ] || kind="$kind ($failure)"
    [ -n "$kind" ] || kind="no crash now"
    site=$(echo "$output" | grep -E "^    #[0-9]+ .* in .* /.*/Sources/[^ ]*:[0-9]+" | grep -v "runtime failure" | head -1 \
        | sed -E 's/.* in ([^ ]+) (.*)$/\2/; s#.*/Sources/##')
    key="$target | $kind | ${site:-?}"
    count[$key]=$(( ${count[$key]:-0} + 1 ))
    s=$(stat -c %s "$f")
    if [ -z "${size[$key]:-}" ] || [ "$s" -lt "${size[$key]}" ]; then size[$key]=$s; smallest[$key]=$f; fi
done
for key in "${!count[@]}"; do
    echo "$key | ${count[$key]} file(s) | smallest: ${smallest[$key]} (${size[$key]} bytes)"
done | sort
