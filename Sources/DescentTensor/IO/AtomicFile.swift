#if canImport(Glibc)
import Glibc
#endif

/// A file write that failed: names the path, the system call and the `errno` text.
public struct FileWriteError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file being written (the target, not the temporary file).
    public let path: String
    /// What was being done (`"create a temporary file"`, `"write"`, `"rename"`, ...).
    public let operation: String
    /// The `errno` value, or 0 for an error that is not a system call's.
    public let code: Int32
    /// `strerror(code)`, or the reason when `code` is 0.
    public let reason: String

    /// An error for `path`; `reason` defaults to `strerror(code)`.
    public init(path: String, operation: String, code: Int32, reason: String? = nil) {
        self.path = path
        self.operation = operation
        self.code = code
        self.reason = reason ?? String(cString: strerror(code))
    }

    /// `cannot write /a/b.json: rename: No such file or directory`.
    public var description: String { "cannot write \(path): \(operation): \(reason)" }
}

/// Writes files atomically: a reader (or a crash, or `kill -9` during the write) sees either the
/// complete previous content or the complete new one, never a truncated or half-written file.
///
/// The bytes go to a new temporary file in the target's folder (`.<name>.tmp-<pid>-<random>`, created
/// with `O_CREAT | O_EXCL` and mode `0o666` less the umask, as a plain `open` would), which is
/// written (retrying on `EINTR` and short writes), `fsync`ed, renamed over the target, and the folder
/// is `fsync`ed so the rename itself survives a power loss. On any error the temporary file is removed
/// and a ``FileWriteError`` naming the target is thrown; the target is left as it was.
///
/// A symbolic link at `path` is replaced by the new file (the link's target is not written), as the
/// rename replaces the directory entry.
///
/// A process killed mid-write cannot remove its temporary file: a `.<name>.tmp-*` file may then be
/// left beside the target (the target itself is intact).
///
/// ```swift
/// try AtomicFile.write("hello\n", to: "out.txt")
/// try AtomicFile.write(to: "big.json") { file in
///     for chunk in chunks { try file.write(chunk) }
/// }
/// ```
public enum AtomicFile {
    /// Replaces the file at `path` with `bytes`.
    /// - Throws: ``FileWriteError`` naming `path` (missing folder, no permission, disk full, ...).
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(bytes) }
    }

    /// Replaces the file at `path` with the UTF-8 bytes of `text`.
    /// - Throws: ``FileWriteError`` naming `path`.
    public static func write(_ text: String, to path: String) throws {
        try write(to: path) { try $0.write(text) }
    }

    /// Replaces the file at `path` with what `body` writes to the ``AtomicFileWriter`` it is given, in
    /// chunks (so a large file is never held in memory whole). The target is replaced only if `body`
    /// returns normally; an error `body` throws is rethrown after the temporary file is removed.
    /// - Throws: ``FileWriteError`` naming `path`, or the error `body` throws.
    public static func write(to path: String, _ body: (AtomicFileWriter) throws -> Void) throws {
        let (directory, name) = try split(path)
        let (fd, temporary) = try createTemporary(directory: directory, name: name, target: path)
        let writer = AtomicFileWriter(descriptor: fd, path: path)
        var closed = false
        do {
            try body(writer)
            try writer.flush()
            try retryingEINTR(path, "fsync") { fsync(fd) }
            closed = true
            if close(fd) != 0 { throw FileWriteError(path: path, operation: "close", code: errno) }
            try retryingEINTR(path, "rename") { rename(temporary, path) }
        } catch {
            if !closed { close(fd) }
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory, target: path)
    }

    /// The folder (`"."` for a bare name) and file name of `path`.
    static func split(_ path: String) throws -> (directory: String, name: String) {
        guard !path.isEmpty else { throw FileWriteError(path: path, operation: "open", code: 0, reason: "the path is empty") }
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let name = String(path[path.index(after: slash)...])
        guard !name.isEmpty, name != ".", name != ".." else {
            throw FileWriteError(path: path, operation: "open", code: EISDIR)
        }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, name)
    }

    private static func createTemporary(directory: String, name: String, target: String) throws -> (Int32, String) {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<16 {
            let suffix = String(generator.next() & 0xFFFF_FFFF_FFFF, radix: 36)
            let temporary = (directory == "." ? "" : directory == "/" ? "/" : directory + "/")
                + ".\(name).tmp-\(getpid())-\(suffix)"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 { return (fd, temporary) }
            let code = errno
            if code == EEXIST || code == EINTR { continue }
            throw FileWriteError(path: target, operation: "create a temporary file in \(directory)", code: code)
        }
        throw FileWriteError(path: target, operation: "create a temporary file in \(directory)", code: EEXIST)
    }

    private static func syncDirectory(_ directory: String, target: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileWriteError(path: target, operation: "open the folder \(directory)", code: errno) }
        defer { close(fd) }
        while fsync(fd) != 0 {
            let code = errno
            if code == EINTR { continue }
            // Some file systems cannot sync a folder; the rename has happened, so the write stands.
            if code == EINVAL || code == ENOTSUP { return }
            throw FileWriteError(path: target, operation: "fsync the folder \(directory)", code: code)
        }
    }

    static func retryingEINTR(_ path: String, _ operation: String, _ call: () -> Int32) throws {
        while call() != 0 {
            let code = errno
            if code != EINTR { throw FileWriteError(path: path, operation: operation, code: code) }
        }
    }
}

/// The sink ``AtomicFile/write(to:_:)`` hands to its closure: buffered writes to the temporary file.
///
/// Only valid inside that closure (the file is closed when it returns).
public final class AtomicFileWriter {
    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    /// Bytes buffered before a `write(2)`.
    static let bufferSize = 1 << 20

    init(descriptor: Int32, path: String) {
        fd = descriptor
        self.path = path
        buffer.reserveCapacity(AtomicFileWriter.bufferSize)
    }

    /// Appends `bytes`.
    /// - Throws: ``FileWriteError`` naming the target (disk full, I/O error).
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends the UTF-8 bytes of `text`.
    /// - Throws: ``FileWriteError`` naming the target.
    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Appends the bytes of `raw`.
    /// - Throws: ``FileWriteError`` naming the target.
    public func write(_ raw: UnsafeRawBufferPointer) throws {
        if buffer.count + raw.count > AtomicFileWriter.bufferSize { try flush() }
        if raw.count >= AtomicFileWriter.bufferSize {
            try writeAll(raw)
        } else {
            buffer.append(contentsOf: raw)
        }
    }

    /// Writes the buffered bytes to the file.
    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// `write(2)` until every byte is written, retrying on `EINTR` and continuing after short writes.
    private func writeAll(_ raw: UnsafeRawBufferPointer) throws {
        guard var base = raw.baseAddress else { return }
        var remaining = raw.count
        while remaining > 0 {
            let written = Glibc.write(fd, base, remaining)
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileWriteError(path: path, operation: "write", code: code)
            }
            if written == 0 { throw FileWriteError(path: path, operation: "write", code: EIO) }
            remaining -= written
            base += written
        }
    }
}
