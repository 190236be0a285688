import DescentTensor
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `AtomicFile` on targets that are not plain files (devices, symbolic links, folders), the mode of a
/// replaced file, names near `NAME_MAX`; `FileBytes` reading any kind of file, with its size cap.
@Suite struct FileTargetTests {
    func makeFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-target-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    func fileType(_ path: String, followingLinks: Bool = false) -> mode_t? {
        var info = stat()
        let status = followingLinks ? stat(path, &info) : lstat(path, &info)
        return status == 0 ? info.st_mode & S_IFMT : nil
    }

    /// Before the fix, this renamed a regular file over `/dev/null` (the tests run as root): the check
    /// before the write keeps a broken machine from being broken further.
    @Test func aDeviceIsWrittenThroughNotReplaced() throws {
        try #require(fileType("/dev/null") == S_IFCHR, "/dev/null is not a character device on this machine")
        try AtomicFile.write("x", to: "/dev/null")
        try AtomicFile.write(to: "/dev/null") { try $0.write(Array(repeating: 7, count: 3 << 20)) }
        #expect(fileType("/dev/null") == S_IFCHR)
        // No temporary file left in /dev.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/dev").filter { $0.hasPrefix(".null.tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test func aFIFOIsWrittenThrough() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("pipe").path
        try #require(mkfifo(fifo, 0o600) == 0)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)  // so that the writer's open does not block
        try #require(reader >= 0)
        defer { close(reader) }
        try AtomicFile.write("through the pipe", to: fifo)
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(reader, &buffer, buffer.count)
        #expect(n == 16 && String(decoding: buffer[0..<max(n, 0)], as: UTF8.self) == "through the pipe")
        #expect(fileType(fifo) == S_IFIFO)
    }

    @Test func aSymbolicLinkIsKeptAndItsTargetReplaced() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sub = folder.appendingPathComponent("sub").path
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        let real = sub + "/real.txt"
        try AtomicFile.write("old", to: real)
        let link = folder.appendingPathComponent("link.txt").path
        try #require(symlink("sub/real.txt", link) == 0)  // relative to the link's folder
        try AtomicFile.write("new", to: link)
        #expect(fileType(link) == S_IFLNK)
        #expect(try String(contentsOfFile: real, encoding: .utf8) == "new")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sub) == ["real.txt"])
        // A dangling link creates the file it names.
        let dangling = folder.appendingPathComponent("dangling").path
        try #require(symlink(folder.appendingPathComponent("created.txt").path, dangling) == 0)
        try AtomicFile.write("made", to: dangling)
        #expect(fileType(dangling) == S_IFLNK)
        #expect(try String(contentsOfFile: folder.appendingPathComponent("created.txt").path, encoding: .utf8) == "made")
        // A link to a folder is an error naming the path.
        let toFolder = folder.appendingPathComponent("to-sub").path
        try #require(symlink(sub, toFolder) == 0)
        let error = #expect(throws: FileWriteError.self) { try AtomicFile.write("x", to: toFolder) }
        #expect(error?.path == toFolder)
        #expect(error?.description.contains("folder") == true)
    }

    @Test func aLinkToADeviceOrAPipeIsWrittenThrough() throws {
        try #require(fileType("/dev/null") == S_IFCHR, "/dev/null is not a character device on this machine")
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let link = folder.appendingPathComponent("null").path
        try #require(symlink("/dev/null", link) == 0)
        try AtomicFile.write("x", to: link)
        #expect(fileType(link) == S_IFLNK)
        #expect(fileType("/dev/null") == S_IFCHR)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["null"])
        // /proc/self/fd/N of a pipe is a link to "pipe:[inode]", which only the kernel can follow.
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        try AtomicFile.write("via proc", to: "/proc/self/fd/\(ends[1])")
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(ends[0], &buffer, buffer.count)
        #expect(n == 8 && String(decoding: buffer[0..<max(n, 0)], as: UTF8.self) == "via proc")
    }

    @Test func aFolderIsAnErrorNamingIt() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = #expect(throws: FileWriteError.self) { try AtomicFile.write("x", to: folder.path) }
        #expect(error?.description == "cannot write \(folder.path): open: it is a folder")
    }

    @Test func aReplacedFileKeepsItsPermissionBits() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("secret.json").path
        try AtomicFile.write("old", to: path)
        try #require(chmod(path, 0o600) == 0)
        try AtomicFile.write("new", to: path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new")
    }

    @Test func aNameNearNAME_MAXGetsAShortenedTemporaryName() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = String(repeating: "n", count: 246) + ".txt"  // 250 bytes
        let path = folder.appendingPathComponent(name).path
        try AtomicFile.write("long", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "long")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [name])
        // Multi-byte names are shortened by whole scalars.
        let wide = String(repeating: "é", count: 125)  // 250 bytes
        try AtomicFile.write("wide", to: folder.appendingPathComponent(wide).path)
        #expect(try String(contentsOfFile: folder.appendingPathComponent(wide).path, encoding: .utf8) == "wide")
    }

    @Test func fileBytesReadsAnyFileWithASizeCap() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("a.bin").path
        try AtomicFile.write([1, 2, 3, 4, 5], to: path)
        #expect(try FileBytes.read(path: path) == [1, 2, 3, 4, 5])
        let regular = #expect(throws: FileReadError.self) { try FileBytes.read(path: path, maximumBytes: 4) }
        #expect(regular?.description == "cannot read \(path): is larger than 4 bytes")
        // An endless device fails at the cap instead of growing until the process is killed.
        let endless = #expect(throws: FileReadError.self) { try FileBytes.read(path: "/dev/zero", maximumBytes: 1000) }
        #expect(endless?.description == "cannot read /dev/zero: is larger than 1000 bytes")
        let missing = #expect(throws: FileReadError.self) { try FileBytes.read(path: folder.path + "/nope") }
        #expect(missing?.description == "cannot read \(folder.path)/nope: No such file or directory")
        let directory = #expect(throws: FileReadError.self) { try FileBytes.read(path: folder.path) }
        #expect(directory?.code == EISDIR)
        #expect(try FileBytes.read(path: "/dev/null").isEmpty)
    }
}
