#if canImport(Glibc)
import Glibc
#endif

/// A file read that failed: names the path and the `errno` text, or that the file is too large.
public struct FileReadError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file being read (`"standard input"` or `"file descriptor N"` for a descriptor).
    public let path: String
    /// The `errno` value, or 0 for an error that is not a system call's (the size cap).
    public let code: Int32
    /// `strerror(code)`, or the reason when `code` is 0 (`is larger than 1073741824 bytes`).
    public let reason: String

    /// An error for `path`; `reason` defaults to `strerror(code)`.
    public init(path: String, code: Int32, reason: String? = nil) {
        self.path = path
        self.code = code
        self.reason = reason ?? String(cString: strerror(code))
    }

    /// `cannot read /a/b.json: No such file or directory`.
    public var description: String { "cannot read \(path): \(reason)" }
}

/// Reads whole files into memory with `open(2)`/`read(2)`, so that every kind of readable file works
/// alike: a regular file, a pipe, a FIFO, `/dev/stdin`, a character device. (Foundation's readers
/// reject some of these with a misleading "permission" error.)
///
/// Every read has a size cap (``defaultMaximumBytes``, 1 GiB, unless the caller gives another): an
/// endless source such as `/dev/zero` fails with "is larger than N bytes" instead of growing until the
/// process is killed. 1 GiB is far above any JSON document, weights file or data set Descent reads
/// (the bundled digits file is 57 KB) and well below the memory of the machines it runs on.
public enum FileBytes {
    /// The size cap when none is given: 1 GiB.
    public static let defaultMaximumBytes = 1 << 30

    /// Every byte of the file at `path`, at most `maximumBytes`.
    /// - Throws: ``FileReadError`` naming `path` (missing, no permission, a folder, I/O error, or larger
    ///   than `maximumBytes`).
    public static func read(path: String, maximumBytes: Int = defaultMaximumBytes) throws -> [UInt8] {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw FileReadError(path: path, code: errno) }
        defer { close(fd) }
        return try read(fileDescriptor: fd, name: path, maximumBytes: maximumBytes)
    }

    /// Every byte readable from `fd` until end of file, at most `maximumBytes`; `name` is the name the
    /// errors use (a path, or `"standard input"`). The descriptor is not closed.
    /// - Throws: ``FileReadError`` naming `name`.
    public static func read(fileDescriptor fd: Int32, name: String, maximumBytes: Int = defaultMaximumBytes) throws -> [UInt8] {
        precondition(maximumBytes >= 0, "maximumBytes must not be negative")
        func tooLarge() -> FileReadError {
            FileReadError(path: name, code: 0, reason: "is larger than \(maximumBytes) bytes")
        }
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(fd, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { throw FileReadError(path: name, code: EISDIR) }
            if (info.st_mode & S_IFMT) == S_IFREG {
                if info.st_size > maximumBytes { throw tooLarge() }
                bytes.reserveCapacity(Int(info.st_size))
            }
        }
        let chunkSize = 1 << 16
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileReadError(path: name, code: code)
            }
            if n == 0 { return bytes }
            if n > maximumBytes - bytes.count { throw tooLarge() }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }
}
