#!/usr/bin/env bash
# Descent's fuzz harness (see README.md).
#
#   Fuzz/run.sh build                 build every fuzz target (instrumented for libFuzzer and ASan)
#   Fuzz/run.sh TARGET [SECONDS]      build, then fuzz TARGET for SECONDS (default: $FUZZ_SECONDS or 60)
#   Fuzz/run.sh all [SECONDS]         build, then fuzz every target in turn for SECONDS each
#
# New corpus entries go to Fuzz/.build-fuzz/corpus/TARGET (scratch, not the committed Fuzz/Corpus);
# crash, timeout and out-of-memory reproducers to Fuzz/artifacts/ (git-ignored). Exits non-zero when any
# target found something, naming the reproducer. Extra libFuzzer flags: FUZZ_FLAGS="-jobs=... ...".
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(FuzzJSON FuzzOptimizerConfig FuzzReplay FuzzWeightsFile FuzzDigitsFile FuzzKerasH5 FuzzKerasArchive FuzzEventFile)
SWIFT=${SWIFT:-swift}
# debug (-Onone) or release (-O); see README.md for the measured rates.
SCRATCH=.build-fuzz
# Coverage for libFuzzer needs the explicit -sanitize-coverage list: -sanitize=fuzzer alone gives
# libFuzzer no feedback here (see README.md).
SANITIZE=(-Xswiftc -sanitize=fuzzer,address
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
# Limits: an input over 4096 bytes is needed to reach deep nesting; a run over 10 s is a hang; over
# 2 GB resident (or one allocation over 2 GB) is a memory finding.
LIBFUZZER_FLAGS=(-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
source ./env.sh

build() {
    echo "== building the fuzz targets ($CONFIG)"
    "$SWIFT" build -c "$CONFIG" --scratch-path "$SCRATCH" "${SANITIZE[@]}" 2>&1 \
        | grep -v "Cannot export local symbol" || { echo "error: the fuzz build failed" >&2; exit 1; }
    # (grep hides gold's harmless warnings about ASan's local symbols; pipefail keeps swift's status.)
}

binary() { echo "$SCRATCH/$CONFIG/$1"; }

# Extra libFuzzer flags per target. The Keras-file targets decode HDF5 metadata in a forked child (see
# Sources/CDescentHDF5/metadata.h), which inherits libFuzzer's malloc hook: a huge allocation that a damaged
# file asks of libhdf5 there would be dumped as an "oom" finding by the child, although the child is already
# contained (its crash is an HDF5Error here). So the per-allocation limit is lifted for them; this
# process's resident size is still limited by -rss_limit_mb.
extra_flags() {
    case "$1" in
        FuzzKerasH5|FuzzKerasArchive) echo "-malloc_limit_mb=65536" ;;
        *) echo "" ;;
    esac
}

dictionary() {
    case "$1" in
        FuzzDigitsFile) echo digits.dict ;;
        FuzzEventFile) echo tensorboard.dict ;;
        FuzzKerasH5|FuzzKerasArchive) echo keras.dict ;;
        *) echo json.dict ;;
    esac
}

# fuzz TARGET SECONDS: returns non-zero on a finding.
fuzz() {
    local target=$1 seconds=$2
    local corpus="$SCRATCH/corpus/$target" log="$SCRATCH/logs/$target.log"
    mkdir -p "$corpus" "$SCRATCH/logs" artifacts
    local before
    before=$(ls artifacts | grep -c "^$target-" || true)
    echo "== $target: fuzzing for $seconds s (log: Fuzz/$log)"
    local status=0
    # The scratch corpus comes first: libFuzzer writes new entries to the first directory.
    # shellcheck disable=SC2086
    "$(binary "$target")" "${LIBFUZZER_FLAGS[@]}" $(extra_flags "$target") -max_total_time="$seconds" -dict="$(dictionary "$target")" \
        -artifact_prefix="artifacts/$target-" ${FUZZ_FLAGS:-} "$corpus" "Corpus/$target" >"$log" 2>&1 || status=$?
    grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb" "$log" \
        | sed "s/^/   /" || true
    local after
    after=$(ls artifacts | grep -c "^$target-" || true)
    if [ "$status" -ne 0 ] || [ "$after" -ne "$before" ]; then
        echo "   FINDING in $target (libFuzzer status $status):"
        grep -E "^==[0-9]+==ERROR|^SUMMARY|FUZZ PROPERTY VIOLATED|Fatal error|^Test unit written to" "$log" \
            | head -8 | sed "s/^/   /"
        return 1
    fi
    echo "   clean"
}

command=${1:-all}
seconds=${2:-${FUZZ_SECONDS:-60}}
case "$command" in
    build) build; exit 0 ;;
    all) selected=("${TARGETS[@]}") ;;
    *)
        if [[ " ${TARGETS[*]} " != *" $command "* ]]; then
            echo "usage: Fuzz/run.sh build | all [SECONDS] | TARGET [SECONDS]; targets: ${TARGETS[*]}" >&2
            exit 2
        fi
        selected=("$command") ;;
esac

build
findings=()
for target in "${selected[@]}"; do
    fuzz "$target" "$seconds" || findings+=("$target")
done
if [ ${#findings[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${findings[*]} (reproducers in Fuzz/artifacts/; replay one with" \
        "Fuzz/$SCRATCH/$CONFIG/TARGET FILE)" >&2
    exit 1
fi
echo "fuzzing: every target ran $seconds s clean"
