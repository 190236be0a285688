// Writing TensorBoard event files (TensorFlow's `EventsWriter` / `tf.summary.create_file_writer`).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SwiftProtobuf
import Synchronization

// The POSIX calls, under names the writer's own `write` and `close` methods do not shadow.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }

/// Writes one TensorBoard event file, as TF 2's `tf.summary.create_file_writer(logDir)` does.
///
/// The file is `logDir/events.out.tfevents.<unix seconds, 10 digits>.<host>.<pid>.<n>.v2`, where `n`
/// counts the files this process opened (as TensorFlow's file id counter: 0, 1, 2, ...), so that two
/// writers of one second never share a name. `logDir` is created (with its parents) if missing. The
/// first record is an `Event` with `wall_time`, `file_version = "brain.Event:2"` and `source_metadata`
/// (as TensorFlow's, with Descent's writer name); every later one
/// an `Event` with `wall_time`, `step` and a `summary` of one value (TFRecord framing, ``TFRecord``).
///
/// **Not atomic.** An event file is a stream, as in TensorFlow: records are appended to the file as
/// they are flushed, and a reader (TensorBoard) may read it while it grows; a crash leaves the records
/// flushed so far (a torn last record is one TensorBoard skips). Events are buffered in memory until
/// ``flush()`` (or until 1 MiB is pending, or ``close()``); a failed write throws
/// ``TensorBoardError/writeFailed(path:message:)`` naming the file and keeps the unwritten events.
///
/// Not thread-safe: use one writer from one thread at a time.
public final class EventFileWriter {
    /// The event file's path.
    public let path: String
    /// The directory the file is in.
    public let logDir: String
    /// The open file (`-1` once closed); internal for the tests of failed writes.
    private(set) var descriptor: Int32
    private var pending: [UInt8] = []
    private static let autoFlushBytes = 1 << 20
    private static let fileCounter = Atomic<Int>(0)
    /// The `source_metadata.writer` Descent's files carry.
    public static let defaultSourceWriter = "descent.tensorboard.event_file_writer"

    /// Creates `logDir` if needed and the event file in it, and writes (and flushes) the file-version
    /// record.
    /// - Parameters:
    ///   - filenameSuffix: ends the file name (TF 2's `filename_suffix`, `".v2"`).
    ///   - wallTime: the first record's time (seconds since 1970; now by default).
    ///   - sourceWriter: the first record's `source_metadata.writer`, which names the program that wrote
    ///     the file (TensorFlow's is `"tensorflow.core.util.events_writer"`); `nil` leaves it out.
    /// - Throws: ``TensorBoardError`` naming the directory or file when either cannot be created.
    public init(logDir: String, filenameSuffix: String = ".v2", wallTime: Double? = nil,
                sourceWriter: String? = EventFileWriter.defaultSourceWriter) throws {
        self.logDir = logDir
        do {
            try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true)
        } catch {
            throw TensorBoardError.cannotCreateDirectory(path: logDir, message: Self.reason(error))
        }
        let time = wallTime ?? Date().timeIntervalSince1970
        let id = Self.fileCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        let seconds = String(Int64(time.rounded(.down)))
        let padded = String(repeating: "0", count: Swift.max(0, 10 - seconds.count)) + seconds
        let name = "events.out.tfevents.\(padded).\(Self.hostName()).\(getpid()).\(id)\(filenameSuffix)"
        path = (logDir as NSString).appendingPathComponent(name)
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TensorBoardError.cannotOpenFile(path: path, message: String(cString: strerror(errno)))
        }
        var event = Tensorboard_Event()
        event.wallTime = time
        event.fileVersion = "brain.Event:2"
        if let sourceWriter { event.sourceMetadata.writer = sourceWriter }
        try write(event)
        try flush()
    }

    deinit {
        if descriptor >= 0 {
            try? flush()
            _ = posixClose(descriptor)
        }
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { descriptor < 0 }

    // MARK: - Events

    /// Appends `event` (its wall time and step as given) to the pending records.
    public func write(_ event: Tensorboard_Event) throws {
        guard descriptor >= 0 else { throw TensorBoardError.closed(path: path) }
        let data: [UInt8]
        do {
            data = try event.serializedBytes()
        } catch {
            throw TensorBoardError.writeFailed(path: path, message: "cannot serialize the event: \(error)")
        }
        TFRecord.append(data, to: &pending)
        if pending.count >= Self.autoFlushBytes { try flush() }
    }

    /// Appends an event holding one summary value at `step`.
    public func write(_ value: Tensorboard_Summary.Value, step: Int64, wallTime: Double? = nil) throws {
        var event = Tensorboard_Event()
        event.wallTime = wallTime ?? Date().timeIntervalSince1970
        event.step = step
        event.summary.value = [value]
        try write(event)
    }

    /// Writes a TF 2 scalar summary, as `tf.summary.scalar(tag, value, step)`: a `DT_FLOAT` scalar
    /// tensor (its 4 little-endian bytes in `tensor_content`, an empty `tensor_shape`) with plugin
    /// `"scalars"` (no content: `ScalarPluginData` version 0). TensorBoard lists it under "tensors"
    /// (``EventFileReader``, or `EventAccumulator.Tensors`); its dashboard shows it as a scalar.
    /// - Parameter value: stored as `Float` (as TensorFlow casts it).
    public func writeScalar(tag: String, value: Double, step: Int64, wallTime: Double? = nil) throws {
        var tensor = Tensorboard_TensorProto()
        tensor.dtype = .dtFloat
        tensor.tensorShape = Tensorboard_TensorShapeProto()
        tensor.tensorContent = Data(TFRecord.littleEndianBytes(Float(value).bitPattern))
        try write(Self.value(tag: tag, tensor: tensor, plugin: "scalars"), step: step, wallTime: wallTime)
    }

    /// Writes a TF 2 histogram summary of `values`, as `tf.summary.histogram(tag, values, step)`: the
    /// ``HistogramBuckets/buckets(_:bucketCount:)`` as a `DT_DOUBLE` tensor of shape `[k, 3]` (rows
    /// `(left, right, count)`, in `tensor_content`) with plugin `"histograms"` (no content).
    public func writeHistogram(tag: String, values: some Collection<Double>, step: Int64,
                               bucketCount: Int = HistogramBuckets.defaultBucketCount, wallTime: Double? = nil) throws {
        let buckets = try HistogramBuckets.buckets(values, bucketCount: bucketCount)
        var tensor = Tensorboard_TensorProto()
        tensor.dtype = .dtDouble
        var shape = Tensorboard_TensorShapeProto()
        shape.dim = [Int64(buckets.count), 3].map { size in
            var d = Tensorboard_TensorShapeProto.Dim()
            d.size = size
            return d
        }
        tensor.tensorShape = shape
        var bytes: [UInt8] = []
        bytes.reserveCapacity(buckets.count * 24)
        for b in buckets {
            for x in [b.left, b.right, b.count] { bytes += TFRecord.littleEndianBytes(x.bitPattern) }
        }
        tensor.tensorContent = Data(bytes)
        try write(Self.value(tag: tag, tensor: tensor, plugin: "histograms"), step: step, wallTime: wallTime)
    }

    /// Writes a string scalar summary: a `DT_STRING` scalar tensor holding `text` in `string_val`, with
    /// the given plugin name and content (tf_keras' model graph is `plugin "graph_keras_model"`,
    /// content `"1"`, the model's JSON).
    public func writeString(tag: String, text: String, step: Int64, plugin: String, pluginContent: Data = Data(),
                            wallTime: Double? = nil) throws {
        var tensor = Tensorboard_TensorProto()
        tensor.dtype = .dtString
        tensor.tensorShape = Tensorboard_TensorShapeProto()
        tensor.stringVal = [Data(text.utf8)]
        try write(Self.value(tag: tag, tensor: tensor, plugin: plugin, content: pluginContent), step: step, wallTime: wallTime)
    }

    static func value(tag: String, tensor: Tensorboard_TensorProto, plugin: String, content: Data = Data()) -> Tensorboard_Summary.Value {
        var value = Tensorboard_Summary.Value()
        value.tag = tag
        value.tensor = tensor
        value.metadata.pluginData.pluginName = plugin
        value.metadata.pluginData.content = content
        return value
    }

    // MARK: - Flushing

    /// Writes the pending records to the file (to the operating system, as TensorFlow's `Flush`; not
    /// `fsync`).
    /// - Throws: ``TensorBoardError/writeFailed(path:message:)``; the records not written stay pending.
    public func flush() throws {
        guard descriptor >= 0 else {
            if pending.isEmpty { return }
            throw TensorBoardError.closed(path: path)
        }
        var written = 0
        defer { pending.removeFirst(written) }
        try pending.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = posixWrite(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TensorBoardError.writeFailed(path: path, message: String(cString: strerror(errno)))
                }
                if n == 0 { throw TensorBoardError.writeFailed(path: path, message: "no byte written") }
                written += n
            }
        }
    }

    /// Flushes and closes the file; later writes throw ``TensorBoardError/closed(path:)``. Closing twice
    /// does nothing.
    public func close() throws {
        guard descriptor >= 0 else { return }
        try flush()
        let result = posixClose(descriptor)
        descriptor = -1
        if result != 0 { throw TensorBoardError.writeFailed(path: path, message: String(cString: strerror(errno))) }
    }

    // MARK: - Names

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }
}
