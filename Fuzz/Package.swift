// swift-tools-version: 6.1
// Descent's fuzz harness: libFuzzer targets for every parser of untrusted input (see README.md).
//
// A separate package, so the root package's `swift build` / `make test` never builds it. It must be built
// with the sanitizer flags of `run.sh` (`-sanitize=fuzzer,address` plus the coverage options).
//
// Each target defines `LLVMFuzzerTestOneInput` (its test function) and a `main.swift` that hands it to
// libFuzzer's `LLVMFuzzerRunDriver`: SwiftPM links every executable on Linux with
// `--defsym main=<Module>_main`, so an executable target needs top-level code, while libFuzzer's own
// `main` (also linked, and needing `LLVMFuzzerTestOneInput`) is overridden. Both run the same function.
import PackageDescription

/// The fuzz targets; each is an executable target `Sources/<name>/` (`main.swift` and the test function).
let fuzzTargets = ["FuzzJSON", "FuzzOptimizerConfig", "FuzzReplay", "FuzzWeightsFile", "FuzzDigitsFile", "FuzzKerasH5", "FuzzKerasArchive", "FuzzEventFile"]

let package = Package(
    name: "DescentFuzz",
    products: fuzzTargets.map { .executable(name: $0, targets: [$0]) },
    dependencies: [
        // The root package (Descent), by path.
        .package(name: "Descent", path: ".."),
    ],
    targets: [
        // The declaration of libFuzzer's LLVMFuzzerRunDriver.
        .target(name: "CFuzzerDriver"),
        // What the targets share: the driver call, scratch files, NaN-aware JSON comparison.
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver", .product(name: "Descent", package: "Descent")]),
    ] + fuzzTargets.map { name in
        .executableTarget(
            name: name,
            dependencies: ["FuzzSupport", .product(name: "Descent", package: "Descent")]
        )
    }
)
