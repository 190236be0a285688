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
/// What is at `path` decides how it is written (checked with `lstat` first):
/// - nothing, or a regular file: the atomic replacement above. An existing file keeps its permission
///   bits (the temporary file is `fchmod`ed to the old mode before the rename).
/// - a symbolic link (or a chain of them): the link is kept and the file it points to is replaced
///   atomically, as most editors do (a dangling link creates its target).
/// - a character or block device, a FIFO or a socket (`/dev/null`, `/dev/stdout`, a named pipe): the
///   bytes are written through it directly, as a shell redirection would. Such a write is **not**
///   atomic — there is no file to replace — and the device is never replaced by a regular file.
/// - a folder: a ``FileWriteError`` naming the path.
///
/// The temporary name's `<name>` part is shortened when needed so that the whole name fits in
/// `NAME_MAX` (255 bytes) even for a target whose own name is close to that limit.
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
        _ = try split(path)
        let (resolved, existing) = try resolve(path)
        if let existing, (existing.st_mode & S_IFMT) != S_IFREG {
            try writeThrough(resolved, target: path, body)
            return
        }
        try replace(resolved, existing: existing, target: path) { fd, _ in
            let writer = AtomicFileWriter(descriptor: fd, path: path)
            try body(writer)
            try writer.flush()
        }
    }

    /// Replaces the file at `path` with the file `body` writes at the path it is given, for writers that
    /// need a path rather than a stream of bytes (libhdf5, a zip library). `body` gets a new, empty
    /// temporary file in the target's folder and may truncate and rewrite it (it must not delete or
    /// rename it); once it returns, the file is synced and renamed over the target, as
    /// ``write(to:_:)`` does. An error `body` throws is rethrown after the temporary file is removed.
    ///
    /// When the target is a device, FIFO or socket, `body` writes a temporary file in `$TMPDIR` (or
    /// `/tmp`) whose bytes are then copied through to the target (not atomic, as for ``write(to:_:)``).
    /// - Throws: ``FileWriteError`` naming `path`, or the error `body` throws.
    public static func write(to path: String, viaTemporaryFile body: (String) throws -> Void) throws {
        _ = try split(path)
        let (resolved, existing) = try resolve(path)
        if let existing, (existing.st_mode & S_IFMT) != S_IFREG {
            let folder = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
            let (fd, temporary) = try createTemporary(directory: folder, name: "descent-copy", target: path)
            close(fd)
            defer { unlink(temporary) }
            try body(temporary)
            let bytes = try FileBytes.read(path: temporary, maximumBytes: Int.max)
            try writeThrough(resolved, target: path) { try $0.write(bytes) }
            return
        }
        // `body` rewrites the same inode through its own descriptor; syncing ours syncs the file.
        try replace(resolved, existing: existing, target: path) { _, temporary in try body(temporary) }
    }

    /// The atomic replacement both writers share: a temporary file beside `resolved` (with `existing`'s
    /// permission bits), filled by `fill(descriptor, temporaryPath)`, then fsync, close, rename over
    /// `resolved` and fsync of the folder; on any error the temporary file is removed.
    private static func replace(_ resolved: String, existing: stat?, target path: String,
                                _ fill: (Int32, String) throws -> Void) throws {
        let (directory, name) = try split(resolved)
        let (fd, temporary) = try createTemporary(directory: directory, name: name, target: path)
        var closed = false
        do {
            if let existing {
                try retryingEINTR(path, "fchmod the temporary file") { fchmod(fd, existing.st_mode & 0o7777) }
            }
            try fill(fd, temporary)
            try retryingEINTR(path, "fsync") { fsync(fd) }
            closed = true
            if close(fd) != 0 { throw FileWriteError(path: path, operation: "close", code: errno) }
            try retryingEINTR(path, "rename") { rename(temporary, resolved) }
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

    /// Follows symbolic links from `path` (at most 40, as the kernel does) to the path to write, with
    /// `lstat`'s answer for it (`nil` when nothing is there yet); a folder is an error.
    static func resolve(_ path: String) throws -> (path: String, status: stat?) {
        var linkInfo = stat()
        if lstat(path, &linkInfo) == 0, (linkInfo.st_mode & S_IFMT) == S_IFLNK {
            // A link to something that exists: let the kernel follow it (this also covers the "magic"
            // links of /proc, such as /dev/stdout -> /proc/self/fd/1 -> pipe:[1234]).
            var info = stat()
            if stat(path, &info) == 0 {
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    throw FileWriteError(path: path, operation: "open", code: EISDIR, reason: "it is a link to a folder")
                case S_IFREG:
                    guard let real = realpath(path, nil) else {
                        throw FileWriteError(path: path, operation: "realpath", code: errno)
                    }
                    defer { free(real) }
                    return (String(cString: real), info)
                default:
                    return (path, info)  // written through, following the link
                }
            }
            if errno != ENOENT { throw FileWriteError(path: path, operation: "stat", code: errno) }
            // A dangling link: follow it by hand to the path to create.
        }
        var current = path
        for _ in 0..<40 {
            var info = stat()
            if lstat(current, &info) != 0 {
                let code = errno
                if code == ENOENT { return (current, nil) }
                throw FileWriteError(path: path, operation: "lstat \(current)", code: code)
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(current, &buffer, buffer.count - 1)
                guard n >= 0 else { throw FileWriteError(path: path, operation: "readlink \(current)", code: errno) }
                let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("/") {
                    current = target
                } else if let slash = current.lastIndex(of: "/") {
                    current = String(current[...slash]) + target
                } else {
                    current = target
                }
            case S_IFDIR:
                throw FileWriteError(path: path, operation: "open", code: EISDIR,
                                     reason: current == path ? "it is a folder" : "it is a link to the folder \(current)")
            default:
                return (current, info)
            }
        }
        throw FileWriteError(path: path, operation: "resolve symbolic links", code: ELOOP)
    }

    /// Writes `body`'s bytes straight into the device, FIFO or socket at `resolved` (not atomic).
    private static func writeThrough(_ resolved: String, target: String, _ body: (AtomicFileWriter) throws -> Void) throws {
        var fd: Int32
        repeat { fd = open(resolved, O_WRONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw FileWriteError(path: target, operation: "open", code: errno) }
        let writer = AtomicFileWriter(descriptor: fd, path: target)
        do {
            try body(writer)
            try writer.flush()
        } catch {
            close(fd)
            throw error
        }
        if close(fd) != 0 && errno != EINTR { throw FileWriteError(path: target, operation: "close", code: errno) }
    }

    /// `.<name>.tmp-<pid>-<suffix>` with `<name>` shortened (whole Unicode scalars) to fit `NAME_MAX`.
    static func temporaryName(for name: String, pid: Int32, suffix: String) -> String {
        let tail = ".tmp-\(pid)-\(suffix)"
        let room = 255 - 1 - tail.utf8.count
        var kept = String.UnicodeScalarView()
        var used = 0
        for scalar in name.unicodeScalars {
            let size = String(scalar).utf8.count
            if used + size > room { break }
            kept.append(scalar)
            used += size
        }
        return "." + String(kept) + tail
    }

    private static func createTemporary(directory: String, name: String, target: String) throws -> (Int32, String) {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<16 {
            let suffix = String(generator.next() & 0xFFFF_FFFF_FFFF, radix: 36)
            let temporary = (directory == "." ? "" : directory == "/" ? "/" : directory + "/")
                + temporaryName(for: name, pid: getpid(), suffix: suffix)
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
