import DescentTensor
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `AtomicFile`: content, errors naming the path, no temporary files left, mode from the umask.
/// (The kill-during-write test runs the `descent` executable: Tests/DescentCLITests/AtomicSaveTests.swift.)
@Suite struct AtomicFileTests {
    /// A fresh folder, removed by the caller.
    func makeFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    func contents(_ folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    @Test func writesAndReplacesWithoutLeavingTemporaryFiles() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("out.txt").path
        try AtomicFile.write("first\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\n")
        try AtomicFile.write(Array("second".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        #expect(try contents(folder) == ["out.txt"])
    }

    @Test func streamsLargeContentInChunks() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("big.bin").path
        // More than the writer's buffer, in pieces smaller and larger than it.
        let piece = [UInt8](repeating: 7, count: 3 << 20)
        try AtomicFile.write(to: path) { file in
            try file.write("head")
            try file.write(piece)
            for _ in 0..<1000 { try file.write([1, 2, 3]) }
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(data.count == 4 + piece.count + 3000)
        #expect(data.prefix(4) == Data("head".utf8))
        #expect(data.suffix(3) == Data([1, 2, 3]))
        #expect(try contents(folder) == ["big.bin"])
    }

    @Test func missingFolderThrowsNamingThePath() throws {
        let path = "/nonexistent-descent-folder/sub/w.json"
        let error = #expect(throws: FileWriteError.self) { try AtomicFile.write("x", to: path) }
        #expect(error?.path == path)
        #expect(error?.code == ENOENT)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("No such file or directory") == true)
    }

    @Test func readOnlyFolderThrowsAndKeepsTheOldFile() throws {
        guard getuid() != 0 else { return }  // root writes anywhere
        let folder = try makeFolder()
        defer {
            chmod(folder.path, 0o755)
            try? FileManager.default.removeItem(at: folder)
        }
        let path = folder.appendingPathComponent("w.json").path
        try AtomicFile.write("old", to: path)
        #expect(chmod(folder.path, 0o555) == 0)
        let error = #expect(throws: FileWriteError.self) { try AtomicFile.write("new", to: path) }
        #expect(error?.code == EACCES)
        #expect(error?.description.contains(path) == true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(try contents(folder) == ["w.json"])
    }

    @Test func aThrowingBodyLeavesTheOldFileAndNoTemporaryFile() throws {
        struct Stop: Error {}
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("w.json").path
        try AtomicFile.write("old", to: path)
        #expect(throws: Stop.self) {
            try AtomicFile.write(to: path) { file in
                try file.write([UInt8](repeating: 1, count: 5 << 20))
                throw Stop()
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(try contents(folder) == ["w.json"])
    }

    @Test func aFolderAsTargetThrows() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = #expect(throws: FileWriteError.self) { try AtomicFile.write("x", to: folder.path + "/") }
        #expect(error?.path == folder.path + "/")
        // An existing folder at the target: the rename fails, nothing is left behind.
        #expect(throws: FileWriteError.self) { try AtomicFile.write("x", to: folder.path) }
        #expect(try contents(folder).isEmpty)
    }

    @Test func modeIsThatOfAPlainOpen() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("m.txt").path
        let mask = umask(0o022)
        defer { umask(mask) }
        try AtomicFile.write("x", to: path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o644)
    }
}
