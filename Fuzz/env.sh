# Sourced by run.sh, replay-regressions.sh and triage.sh (from the Fuzz/ folder): the build
# configuration and the environment every fuzz binary runs in.
CONFIG=${FUZZ_CONFIG:-release}
# Swift's own crash backtracer would run inside ASan and fault there; libFuzzer and ASan report instead.
export SWIFT_BACKTRACE=enable=no
# ASan's fake stack (detect_stack_use_after_return, on by default) moves frames to the heap: deep
# recursion then neither overflows the real stack as it would without ASan, nor runs in linear time.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0}
# Leaks outside Descent (the toolchain's Foundation), listed with the reason in lsan.supp.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/lsan.supp}
# A damaged HDF5 file can send libhdf5 into an endless loop in the child that decodes its metadata: give
# up on it after 2 s (the default is 10 s), well inside libFuzzer's 10 s timeout.
export DESCENT_HDF5_METADATA_TIMEOUT_MS=${DESCENT_HDF5_METADATA_TIMEOUT_MS:-2000}
