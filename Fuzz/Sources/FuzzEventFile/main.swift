// libFuzzer drives the target (see Package.swift for why it is not libFuzzer's own `main`).
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

exit(FuzzSupport.runLibFuzzer { data, size in fuzzOneInput(data, size) })
