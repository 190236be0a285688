import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// Every crash reproducer the fuzz harness found (`Fuzz/Regressions/<target>/`, see its README) runs
/// through the same entry point as its fuzz target, in the ordinary test build: each must be rejected
/// with a thrown error (status 1 for replay), never crash. They crashed or were silently accepted on
/// `ef17940`; a new reproducer committed there is picked up here without editing this file.
@Suite struct FuzzRegressionTests {
    /// The repository's `Fuzz/Regressions` folder (this file is `Tests/DescentKerasTests/...`).
    static let regressions = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Regressions")

    /// The reproducers of one target, as (file name, bytes).
    static func reproducers(_ target: String) throws -> [(String, [UInt8])] {
        let folder = regressions.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { name in
            (name, [UInt8](try Data(contentsOf: folder.appendingPathComponent(name))))
        }
    }

    @Test func everyTargetHasReproducers() throws {
        for target in ["FuzzJSON", "FuzzOptimizerConfig", "FuzzReplay", "FuzzWeightsFile", "FuzzKerasH5"] {
            #expect(try !Self.reproducers(target).isEmpty, "\(target)")
        }
    }

    @Test func jsonReproducersAreErrors() throws {
        for (name, bytes) in try Self.reproducers("FuzzJSON") {
            #expect(throws: JSONError.self, "\(name)") { try JSONValue(parsing: bytes) }
        }
    }

    @Test func optimizerConfigReproducersAreErrors() throws {
        for (name, bytes) in try Self.reproducers("FuzzOptimizerConfig") {
            #expect(throws: (any Error).self, "\(name)") { try Optimizer.deserialize(jsonBytes: bytes) }
        }
    }

    @Test func replayReproducersFailWithOneErrorLine() throws {
        for (name, bytes) in try Self.reproducers("FuzzReplay") {
            let result = Replay.command(path: "-", readStandardInput: { bytes }, readFile: { _ in [] })
            #expect(result.status == 1, "\(name): \(result.stdout)")
            #expect(result.stdout.isEmpty, "\(name)")
            #expect(result.stderr.hasPrefix("error: ") && result.stderr.filter { $0 == "\n" }.count == 1,
                    "\(name): \(result.stderr)")
        }
    }

    @Test func weightsFileReproducersAreErrorsThatChangeNothing() throws {
        let model = try Sequential([try Dense(3, activation: .relu), try Dense(2)], name: "fuzz_model")
        try model.build(inputShape: [1, 4])
        let before = model.weights.map(\.untrackedValue)
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("descent-fuzz-regressions-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, bytes) in try Self.reproducers("FuzzWeightsFile") {
            let path = folder.appendingPathComponent(name).path
            try AtomicFile.write(bytes, to: path)
            #expect(throws: (any Error).self, "\(name)") { try model.loadWeights(fromFile: path) }
            #expect(model.weights.map(\.untrackedValue) == before, "\(name) changed the weights")
        }
    }

    /// HDF5 files that sent libhdf5 into an endless loop (or worse) while decoding their metadata: each is
    /// an error after the metadata time limit (3 s here, through DESCENT_HDF5_METADATA_TIMEOUT_MS), and
    /// this process is unharmed.
    @Test func kerasH5ReproducersAreErrors() throws {
        setenv("DESCENT_HDF5_METADATA_TIMEOUT_MS", "3000", 1)
        defer { unsetenv("DESCENT_HDF5_METADATA_TIMEOUT_MS") }
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("descent-fuzz-h5-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, bytes) in try Self.reproducers("FuzzKerasH5") {
            let path = folder.appendingPathComponent(name).path
            try AtomicFile.write(bytes, to: path)
            #expect(throws: (any Error).self, "\(name)") { _ = try loadModel(fromFile: path) }
        }
    }
}
