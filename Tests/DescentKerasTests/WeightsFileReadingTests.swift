@_spi(DescentInternals) import DescentKeras
import DescentTensor
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `loadWeights(fromFile:)` reads any kind of file (a FIFO as `/dev/stdin` is) through `FileBytes`, and
/// reports invalid UTF-8 with the file, line and column of the JSON parser.
@Suite struct WeightsFileReadingTests {
    func makeModel() throws -> Sequential {
        let model = try Sequential([try Dense(2)])
        try model.build(inputShape: [1, 3])
        return model
    }

    func makeFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-weights-read-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func loadsFromAFIFO() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let saved = try makeModel()
        let file = folder.appendingPathComponent("w.json").path
        try saved.saveJSONWeights(toFile: file)
        let bytes = try FileBytes.read(path: file)
        let fifo = folder.appendingPathComponent("pipe").path
        try #require(mkfifo(fifo, 0o600) == 0)
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            guard fd >= 0 else { return }
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        writer.start()
        let model = try makeModel()
        var failure: String?
        do { try model.loadWeights(fromFile: fifo) } catch { failure = "\(error)" }
        // If the loader never opened the FIFO, unblock the writer thread.
        let unblock = open(fifo, O_RDONLY | O_NONBLOCK)
        if unblock >= 0 { close(unblock) }
        #expect(failure == nil)
        #expect(model.getWeights() == saved.getWeights())
    }

    @Test func invalidUTF8NamesTheFileLineAndColumn() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("w.json").path
        try AtomicFile.write(Array(#"{"format": "descent-weights", "#.utf8) + [0x0A, 0x22, 0xC3, 0x28, 0x22] + Array(": 1}".utf8), to: path)
        let model = try makeModel()
        let error = #expect(throws: TrainingError.self) { try model.loadWeights(fromFile: path) }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.hasPrefix(path + ": "), "\(message)")
        #expect(message.contains("line 2"), "\(message)")
        #expect(message.contains("UTF-8"), "\(message)")
    }

    @Test func anUnreadableFileNamesIt() throws {
        let model = try makeModel()
        let error = #expect(throws: TrainingError.self) { try model.loadWeights(fromFile: "/nonexistent/w.json") }
        #expect(error.map { "\($0)" } == "cannot read weights file /nonexistent/w.json: No such file or directory")
    }
}
