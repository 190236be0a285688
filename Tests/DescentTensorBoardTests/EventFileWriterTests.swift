#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

@testable import DescentTensorBoard

func temporaryDirectory(_ name: String) -> String {
    let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("descent-tb-\(name)-\(UUID().uuidString)")
    return dir
}

@Suite struct EventFileWriterTests {
    @Test func createsTheDirectoryAndANamedFileStartingWithTheFileVersion() throws {
        let dir = (temporaryDirectory("name") as NSString).appendingPathComponent("nested/train")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let writer = try EventFileWriter(logDir: dir, wallTime: 1_700_000_000.25)
        let other = try EventFileWriter(logDir: dir, wallTime: 1_700_000_000.5)
        let name = (writer.path as NSString).lastPathComponent
        // events.out.tfevents.<10-digit seconds>.<host>.<pid>.<n>.v2
        let fields = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        #expect(name.hasPrefix("events.out.tfevents.1700000000."))
        #expect(fields.last == "v2")
        #expect(fields[fields.count - 3] == String(ProcessInfo.processInfo.processIdentifier))
        let n = try #require(Int(fields[fields.count - 2])), m = try #require(Int(((other.path as NSString).lastPathComponent)
            .split(separator: ".").dropLast().last.map(String.init) ?? ""))
        #expect(m > n)
        #expect(writer.path != other.path)
        // Record 0 is on disk at once.
        let events = try EventFileReader.events(atPath: writer.path)
        #expect(events.count == 1)
        #expect(events[0].fileVersion == "brain.Event:2")
        #expect(events[0].wallTime == 1_700_000_000.25)
        #expect(events[0].step == 0)
        #expect(try EventFileReader.eventFiles(in: dir).sorted() == [writer.path, other.path].sorted())
        try writer.close()
        try other.close()
    }

    @Test func scalarsDecodeBackWithTagsStepsAndValues() throws {
        let dir = temporaryDirectory("scalars")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try EventFileWriter(logDir: dir)
        try writer.writeScalar(tag: "epoch_loss", value: 0.75, step: 0)
        try writer.writeScalar(tag: "epoch_accuracy", value: 0.5, step: 0)
        try writer.writeScalar(tag: "epoch_loss", value: 0.1, step: 1)
        // Pending until flushed.
        #expect(try EventFileReader.events(atPath: writer.path).count == 1)
        try writer.flush()
        let events = try EventFileReader.events(atPath: writer.path)
        #expect(events.count == 4)
        let scalars = EventFileReader.scalars(events)
        #expect(scalars["epoch_loss"]?.map(\.step) == [0, 1])
        #expect(scalars["epoch_loss"]?.map(\.value) == [0.75, Float(0.1)])
        #expect(scalars["epoch_accuracy"]?.map(\.value) == [0.5])
        let value = events[1].summary.value[0]
        #expect(value.tag == "epoch_loss")
        #expect(value.metadata.pluginData.pluginName == "scalars")
        #expect(value.metadata.pluginData.content.isEmpty)
        #expect(value.tensor.dtype == .dtFloat)
        #expect(value.tensor.hasTensorShape && value.tensor.tensorShape.dim.isEmpty)
        #expect([UInt8](value.tensor.tensorContent) == [0x00, 0x00, 0x40, 0x3F])  // 0.75f little-endian
        try writer.close()
        #expect(writer.isClosed)
        #expect(throws: TensorBoardError.closed(path: writer.path)) { try writer.writeScalar(tag: "x", value: 1, step: 2) }
        try writer.close()  // twice: nothing
    }

    /// Descent's scalar events are TensorFlow's bytes: re-encoding each event of a real tf_keras file
    /// (same wall time, step, tag and value) gives its record exactly.
    @Test func scalarEventsAreTensorFlowsBytes() throws {
        let file = try TensorBoardFixtures.bytes("tf_keras_epoch_validation.tfevents")
        let records = try TFRecord.records(in: file)
        let events = try EventFileReader.events(in: file)
        let dir = temporaryDirectory("bytes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try EventFileWriter(logDir: dir, wallTime: events[0].wallTime, sourceWriter: events[0].sourceMetadata.writer)
        #expect(events[0].sourceMetadata.writer == "tensorflow.core.util.events_writer")
        for event in events.dropFirst() {
            let value = try #require(event.summary.value.first)
            let scalar = try #require(EventFileReader.scalars([event])[value.tag]?.first)
            try writer.writeScalar(tag: value.tag, value: Double(scalar.value), step: event.step, wallTime: event.wallTime)
        }
        try writer.close()
        let ours = try TensorBoardFixtures.bytesAt(writer.path)
        #expect(events.count == 9)
        #expect(try TFRecord.records(in: ours) == records)
        #expect(ours == file)
    }

    @Test func summaryBytesMatchTheFixture() throws {
        // The serialized Summary of tf_keras' first epoch_loss (train, "epoch" case).
        let events = try #require(TensorBoardFixtures.reference().cases["epoch"]?.runs["train"]?.events)
        var checked = 0
        for event in events {
            guard let hex = event.summary_hex, let first = event.values?.first, let value = first.values?.first else { continue }
            let tag = first.tag
            var summary = Tensorboard_Summary()
            var tensor = Tensorboard_TensorProto()
            tensor.dtype = .dtFloat
            tensor.tensorShape = Tensorboard_TensorShapeProto()
            tensor.tensorContent = Data(TFRecord.littleEndianBytes(Float(value).bitPattern))
            summary.value = [EventFileWriter.value(tag: tag, tensor: tensor, plugin: "scalars")]
            let bytes: [UInt8] = try summary.serializedBytes()
            #expect(bytes.map { String(format: "%02x", $0) }.joined() == hex, "\(tag)")
            checked += 1
        }
        #expect(checked == 4)
    }

    @Test func histogramsDecodeAsADoubleKBy3Tensor() throws {
        let dir = temporaryDirectory("histogram")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try EventFileWriter(logDir: dir)
        let values: [Double] = [-1, 0, 0.5, 2, 3]
        try writer.writeHistogram(tag: "dense/kernel_0/histogram", values: values, step: 4, bucketCount: 4)
        try writer.close()
        let events = try EventFileReader.events(atPath: writer.path)
        #expect(events.count == 2)
        #expect(events[1].step == 4)
        let value = events[1].summary.value[0]
        #expect(value.tag == "dense/kernel_0/histogram")
        #expect(value.metadata.pluginData.pluginName == "histograms")
        #expect(value.tensor.dtype == .dtDouble)
        #expect(value.tensor.tensorShape.dim.map(\.size) == [4, 3])
        let content = [UInt8](value.tensor.tensorContent)
        #expect(content.count == 4 * 3 * 8)
        let decoded = stride(from: 0, to: content.count, by: 8).map { Double(bitPattern: littleEndian(content[$0..<$0 + 8])) }
        let expected = try HistogramBuckets.buckets(values, bucketCount: 4).flatMap { [$0.left, $0.right, $0.count] }
        #expect(decoded == expected)
        #expect(decoded == [-1, 0, 1, 0, 1, 2, 1, 2, 0, 2, 3, 2])
        #expect(throws: TensorBoardError.self) { try EventFileWriter(logDir: dir).writeHistogram(tag: "t", values: [1], step: 0, bucketCount: -1) }
    }

    @Test func stringSummary() throws {
        let dir = temporaryDirectory("string")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try EventFileWriter(logDir: dir)
        try writer.writeString(tag: "keras", text: "{\"a\": 1}", step: 0, plugin: "graph_keras_model", pluginContent: Data("1".utf8))
        try writer.close()
        let value = try EventFileReader.events(atPath: writer.path)[1].summary.value[0]
        #expect(value.tensor.dtype == .dtString)
        #expect(value.tensor.stringVal == [Data("{\"a\": 1}".utf8)])
        #expect(value.metadata.pluginData.content == Data("1".utf8))
    }

    @Test func unwritableDirectoryThrowsNamingThePath() throws {
        let dir = temporaryDirectory("blocked")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A regular file where the log directory's parent should be (fails even as root).
        let blocker = (dir as NSString).appendingPathComponent("file")
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data([1])))
        let logDir = (blocker as NSString).appendingPathComponent("logs/train")
        let error = #expect(throws: TensorBoardError.self) { try EventFileWriter(logDir: logDir) }
        guard case .cannotCreateDirectory(let path, _)? = error else {
            Issue.record("expected cannotCreateDirectory, got \(String(describing: error))")
            return
        }
        #expect(path == logDir)
        #expect("\(error!)".contains(logDir))
    }

    /// A write that fails (here: the file descriptor replaced by /dev/full, "No space left on device")
    /// throws naming the file, and keeps the events for a later flush.
    @Test func failedWritesThrowNamingTheFile() throws {
        let dir = temporaryDirectory("full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try EventFileWriter(logDir: dir)
        try writer.writeScalar(tag: "epoch_loss", value: 1, step: 0)
        let full = open("/dev/full", O_WRONLY)
        try #require(full >= 0)
        let saved = dup(writer.descriptor)
        #expect(dup2(full, writer.descriptor) >= 0)
        close(full)
        let error = #expect(throws: TensorBoardError.self) { try writer.flush() }
        guard case .writeFailed(let path, let message)? = error else {
            Issue.record("expected writeFailed, got \(String(describing: error))")
            return
        }
        #expect(path == writer.path)
        #expect(message.contains("space"), "\(message)")
        // Put the file back: the pending event is written by the next flush.
        #expect(dup2(saved, writer.descriptor) >= 0)
        close(saved)
        try writer.close()
        #expect(EventFileReader.scalars(try EventFileReader.events(atPath: writer.path))["epoch_loss"]?.map(\.value) == [1])
    }

    @Test func readingErrorsNameThePath() throws {
        #expect(throws: TensorBoardError.cannotReadFile(path: "/nonexistent/x", message: "no such file or not readable")) {
            try EventFileReader.events(atPath: "/nonexistent/x")
        }
        // Framing that is right around bytes that are not an Event.
        let error = #expect(throws: TensorBoardError.self) { try EventFileReader.events(in: TFRecord.frame([0xFF, 0xFF]), source: "bad") }
        #expect(error.map { "\($0)" }?.contains("bad") == true)
    }
}

extension TensorBoardFixtures {
    static func bytesAt(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
}
