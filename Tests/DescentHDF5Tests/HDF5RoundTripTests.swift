import DescentHDF5
import DescentTensor
import Foundation
import Testing

// The HDF5 layer on its own: a tree written and read back (datasets of every dtype and rank, every
// attribute kind), and the errors a damaged file gives: never a crash, always the file and the path.

private func temporaryPath(_ name: String) -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-hdf5-\(getpid())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.appendingPathComponent(name).path
}

private func sampleTree() throws -> HDF5Group {
    let root = HDF5Group()
    root.setAttribute("backend", .string("tensorflow", .ascii))
    root.setAttribute("model_config", .string(#"{"name": "é"}"#))
    root.setAttribute("layer_names", .fixedStrings(["dense", "dense_1"]))
    root.setAttribute("names", .strings(["a", "bé", ""]))
    root.setAttribute("empty", .fixedStrings([]))
    root.setAttribute("count", .int64(-7))
    let dense = root.addGroup("dense")
    dense.setAttribute("weight_names", .fixedStrings(["dense/kernel:0", "dense/bias:0"]))
    dense.addDataset("dense/kernel:0", try Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: 1, 2, 3, 4, 5, -6.5)))
    dense.addDataset("dense/bias:0", try Tensor(shape: [3], scalars: [Double](arrayLiteral: 0.1, 0.2, 0.3)))
    root.addGroup("opt").addDataset("iter:0", Tensor(Int64(123_456_789_012)))
    root.addGroup("empty_group")
    root.addDataset("zero", try Tensor.zeros(shape: [0, 4]))
    return root
}

@Suite struct HDF5RoundTripTests {
    @Test func treeRoundTrips() throws {
        let path = temporaryPath("round.h5")
        try sampleTree().write(to: path)
        let file = try HDF5File(readingFrom: path)
        #expect(try file.attribute("backend", of: "/") == .string("tensorflow"))
        #expect(try file.attribute("model_config", of: "/") == .string(#"{"name": "é"}"#))
        #expect(try file.attribute("layer_names", of: "/")?.stringList == ["dense", "dense_1"])
        #expect(try file.attribute("names", of: "/") == .strings(["a", "bé", ""]))
        #expect(try file.attribute("empty", of: "/")?.stringList == [])
        #expect(try file.attribute("count", of: "/") == .integers([-7], scalar: true))
        #expect(try file.attribute("missing", of: "/") == nil)
        #expect(try file.attributeNames(of: "/") == ["backend", "count", "empty", "layer_names", "model_config", "names"])
        #expect(try file.memberNames(ofGroup: "/") == ["dense", "empty_group", "opt", "zero"])
        #expect(try file.memberNames(ofGroup: "/dense") == ["dense"])
        #expect(try file.memberNames(ofGroup: "/dense/dense") == ["bias:0", "kernel:0"])
        #expect(try file.kind(of: "/dense/dense") == .group)
        #expect(try file.kind(of: "/dense/dense/kernel:0") == .dataset)
        #expect(try file.kind(of: "/nothing/here") == nil)
        let kernel = try file.readDataset(at: "/dense/dense/kernel:0")
        #expect(kernel.shape == [2, 3] && kernel.dtype == .float32)
        #expect(kernel.doubles == [1, 2, 3, 4, 5, -6.5])
        let bias = try file.readDataset(at: "/dense/dense/bias:0")
        #expect(bias.dtype == .float64 && bias.doubles == [0.1, 0.2, 0.3])
        let iterations = try file.readDataset(at: "/opt/iter:0")
        #expect(iterations.shape == [] && iterations.dtype == .int64)
        #expect(try iterations.withUnsafeBufferPointer(as: Int64.self) { $0[0] } == 123_456_789_012)
        #expect(try file.readDataset(at: "/zero").shape == [0, 4])
        #expect(try file.datasetInfo(at: "/dense/dense/kernel:0") == ([2, 3], .float32))
    }

    @Test func errorsNameFileAndPath() throws {
        let path = temporaryPath("errors.h5")
        try sampleTree().write(to: path)
        let file = try HDF5File(readingFrom: path, displayName: "shown.h5")
        #expect(throws: HDF5Error(file: "shown.h5", path: "/missing", message: "expected a dataset, but there is none")) {
            try file.readDataset(at: "/missing")
        }
        #expect(throws: HDF5Error(file: "shown.h5", path: "/dense", message: "expected a dataset, but there is none")) {
            try file.readDataset(at: "/dense")
        }
        #expect(throws: HDF5Error(file: "shown.h5", path: "/zero", message: "expected a group, but there is none")) {
            try file.memberNames(ofGroup: "/zero")
        }
    }

    @Test func writeIsAtomicAndReplaces() throws {
        let path = temporaryPath("replace.h5")
        try AtomicFile.write("old contents", to: path)
        try sampleTree().write(to: path)
        #expect(try HDF5File(readingFrom: path).kind(of: "/dense") == .group)
        let folder = (path as NSString).deletingLastPathComponent
        // Only this file's temporaries: the other tests of the suite write into the same folder in parallel.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".replace.h5.tmp-") }
        #expect(leftovers.isEmpty)
        // A failed write (the folder does not exist) leaves nothing and throws.
        #expect(throws: (any Error).self) { try sampleTree().write(to: temporaryPath("no/such/folder.h5")) }
    }

    @Test func notHDF5AndMissingFiles() throws {
        let path = temporaryPath("text.h5")
        try AtomicFile.write("this is not HDF5", to: path)
        #expect(throws: HDF5Error(file: path, path: "/", message: "not an HDF5 file (no HDF5 signature)")) {
            try HDF5File(readingFrom: path)
        }
        let error = #expect(throws: HDF5Error.self) { try HDF5File(readingFrom: temporaryPath("absent.h5")) }
        #expect(error?.description.contains("cannot open: No such file") == true)
        #expect(throws: HDF5Error.self) { try HDF5File(readingFrom: FileManager.default.temporaryDirectory.path) }
    }

    /// Every truncation of a small file throws; a sweep of byte corruptions either reads or throws
    /// ``HDF5Error``, and never crashes or hangs.
    @Test func truncatedAndCorruptedFilesThrow() throws {
        let path = temporaryPath("good.h5")
        try sampleTree().write(to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let damaged = temporaryPath("damaged.h5")
        func readAll() throws -> [Double] {
            let file = try HDF5File(readingFrom: damaged)
            _ = try file.attribute("layer_names", of: "/")
            _ = try file.memberNames(ofGroup: "/dense/dense")
            return try file.readDataset(at: "/dense/dense/kernel:0").doubles + file.readDataset(at: "/dense/dense/bias:0").doubles
        }
        let expected: [Double] = [1, 2, 3, 4, 5, -6.5, 0.1, 0.2, 0.3]
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 37)) {
            try Data(bytes[0..<length]).write(to: URL(fileURLWithPath: damaged))
            #expect(throws: HDF5Error.self, "truncated to \(length) bytes") { _ = try readAll() }
        }
        // (Every 97th byte: each load forks a child to decode the metadata, ~20 ms in this test
        // process; the fuzz target FuzzKerasModelFile covers every byte.)
        // Keras' files (libhdf5's earliest format, as h5py writes) carry no checksums, so a flipped byte
        // in the data or in a type description can read back as different numbers; what must never
        // happen is a crash, a hang or an error that is not an HDF5Error.
        var failures = 0, intact = 0
        for offset in stride(from: 0, to: bytes.count, by: 97) {
            var copy = bytes
            copy[offset] ^= 0x5A
            try Data(copy).write(to: URL(fileURLWithPath: damaged))
            do {
                if try readAll() == expected { intact += 1 }
            } catch is HDF5Error {
                failures += 1
            }
        }
        #expect(failures > 0 && intact > 0)
    }
}
