// swift-tools-version: 6.1
// Descent: Keras' OptimizerV2 system in Swift.
//
// The manifest is deliberately free of `unsafeFlags` so Descent can be used as a versioned dependency.
// CPU-specific tuning (`-Xswiftc -target-cpu -Xswiftc native`) is passed on the command line by the
// Makefile's release targets instead (see BENCHMARKS.md).
import PackageDescription

let package = Package(
    name: "Descent",
    products: [
        .library(name: "Descent", targets: ["Descent"]),
        .executable(name: "descent", targets: ["descent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // Only its `SwiftProtobuf` library (the runtime of the committed generated code), never its build
        // plugin or protoc-gen-swift: scripts/generate-tensorboard-protos.sh regenerates the code.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // OpenBLAS (Debian: libopenblas-dev) for matrix multiply.
        .systemLibrary(
            name: "CDescentBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // zlib (Debian: zlib1g-dev) for the bundled gzip data set.
        .systemLibrary(
            name: "CDescentZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libhdf5 (Debian: libhdf5-dev) for Keras' `.h5` and `.weights.h5` files.
        .systemLibrary(
            name: "CDescentHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]
        ),
        // minizip (Debian: libminizip-dev, zlib's zip library) for Keras 3's `.keras` archives.
        .systemLibrary(
            name: "CDescentMinizip",
            pkgConfig: "minizip",
            providers: [.apt(["libminizip-dev"])]
        ),
        // Header-only C helpers: vector square roots that vectorize on Linux (see ARCHITECTURE.md).
        .target(name: "CDescentMath"),
        // A start-up check that gives OpenBLAS AVX2/AVX-512 kernels on CPUs it does not know (it would fall
        // back to its SSE3 "Prescott" kernels; see OpenBLASCore.c).
        .target(name: "CDescentOpenBLASCore", dependencies: ["CDescentBLAS"]),
        .target(
            name: "DescentTensor",
            dependencies: [
                "CDescentBLAS", "CDescentMath", "CDescentOpenBLASCore",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(name: "DescentAutodiff", dependencies: ["DescentTensor"]),
        // A small safe layer over libhdf5: write a tree of groups, attributes and tensors; read them back.
        .target(name: "DescentHDF5", dependencies: ["DescentTensor", "CDescentHDF5"]),
        // Distribution strategies: the default one, scopes, mirrored variables, summing gradients.
        .target(name: "DescentDistribute", dependencies: ["DescentTensor", "DescentAutodiff"]),
        // Open MPI (Debian: libopenmpi-dev) for multi-worker training.
        .systemLibrary(
            name: "CDescentMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),
        .target(name: "DescentMPI", dependencies: ["DescentDistribute", "DescentTensor", "CDescentMPI"]),
        .target(name: "DescentOptimizers", dependencies: ["DescentTensor", "DescentAutodiff", "DescentDistribute"]),
        // TensorBoard event files (TFRecord framing, crc32c, Event/Summary protos generated into Generated/
        // from the trimmed protos in Protos/).
        .target(
            name: "DescentTensorBoard",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Protos"]
        ),
        .target(
            name: "DescentKeras",
            dependencies: [
                "DescentTensor", "DescentAutodiff", "DescentDistribute", "DescentOptimizers", "DescentHDF5", "CDescentZlib",
                "CDescentMinizip", "DescentTensorBoard",
            ],
            resources: [.copy("Resources/digits.csv.gz"), .copy("Resources/DIGITS-LICENSE.md")]
        ),
        .target(
            name: "Descent",
            dependencies: [
                "DescentTensor", "DescentAutodiff", "DescentDistribute", "DescentMPI", "DescentOptimizers", "DescentKeras",
                "DescentTensorBoard",
            ]
        ),
        .executableTarget(
            name: "descent",
            dependencies: [
                "Descent", "CDescentMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DescentTensorTests", dependencies: ["DescentTensor", "DescentAutodiff"]),
        .testTarget(name: "DescentHDF5Tests", dependencies: ["DescentHDF5", "DescentTensor"]),
        .testTarget(name: "DescentTensorBoardTests", dependencies: ["DescentTensorBoard"]),
        .testTarget(name: "DescentAutodiffTests", dependencies: ["DescentAutodiff", "DescentTensor"]),
        .testTarget(name: "DescentOptimizersTests", dependencies: ["DescentOptimizers", "DescentAutodiff", "DescentTensor"]),
        .testTarget(
            name: "DescentKerasTests",
            dependencies: [
                "DescentKeras", "DescentOptimizers", "DescentAutodiff", "DescentTensor", "DescentDistribute", "DescentMPI",
                "DescentTensorBoard",
            ]
        ),
        .testTarget(
            name: "DescentDistributeTests",
            dependencies: ["DescentDistribute", "DescentMPI", "DescentOptimizers", "DescentKeras", "DescentAutodiff", "DescentTensor"]
        ),
        // Runs the built `descent` executable end to end (it is a dependency so it is built first).
        // DescentKeras: to read the weights of the models the tests' runs save.
        .testTarget(name: "DescentCLITests", dependencies: ["descent", "DescentKeras", "DescentOptimizers", "DescentTensor", "DescentTensorBoard"]),
    ]
)
