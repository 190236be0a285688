import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `saveWeights` is atomic (issue 9, item 11): the hidden `descent write-test-weights` saves a large
/// model and is killed with SIGKILL at random moments of the save; the target file must always be the
/// complete old or the complete new file (the old `Data.write(to:)` truncated it first: a kill left it
/// empty or half-written).
@Suite(.serialized) struct AtomicSaveTests {
    /// 1000 × 400 parameters: about 2.4 MB of JSON.
    static let units = "10000"

    /// Runs the helper to completion; returns the seconds the save took.
    @discardableResult
    func save(_ path: String, value: String) throws -> Double {
        let start = Date()
        let result = try CLI.run(["write-test-weights", "--path", path, "--units", Self.units, "--value", value])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "saving\nsaved\n")
        return Date().timeIntervalSince(start)
    }

    @Test func aKilledSaveLeavesTheOldOrTheNewFileWhole() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let refA = folder.appendingPathComponent("a.h5").path, refB = folder.appendingPathComponent("b.h5").path
        let target = folder.appendingPathComponent("w.h5").path
        let duration = try save(refA, value: "0.25")
        try save(refB, value: "0.75")
        let a = try Data(contentsOf: URL(fileURLWithPath: refA)), b = try Data(contentsOf: URL(fileURLWithPath: refB))
        #expect(a.count > 1_000_000 && a != b)
        try a.write(to: URL(fileURLWithPath: target))

        var killed = 0
        var generator = SystemRandomNumberGenerator()
        for round in 0..<12 {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["write-test-weights", "--path", target, "--units", Self.units,
                                 "--value", round % 2 == 0 ? "0.75" : "0.25"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait until the save has started, then kill at a random point of it.
            var seen = Data()
            while !String(decoding: seen, as: UTF8.self).contains("saving") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen.append(chunk)
            }
            // The HDF5 save itself takes ~50 ms here (40 MB, then fsync): kill within its first 40 ms.
            usleep(UInt32(Double.random(in: 0...min(duration * 0.8, 0.04), using: &generator) * 1e6))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killed += 1 }
            let now = try Data(contentsOf: URL(fileURLWithPath: target))
            #expect(now == a || now == b, "round \(round): \(now.count) bytes, neither the old nor the new file")
        }
        #expect(killed > 0, "no save was interrupted")
        // Only the target, the references and temporary files of killed saves are in the folder.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(names.allSatisfy { ["a.h5", "b.h5", "w.h5"].contains($0) || $0.hasPrefix(".w.h5.tmp-") }, "\(names)")
    }
}
