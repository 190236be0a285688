import CFuzzerDriver
import Descent
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Shared pieces of the fuzz targets.
public enum FuzzSupport {
    /// Runs libFuzzer on `testOneInput` with this process's command line (libFuzzer's flags, corpus
    /// directories or single input files) and returns libFuzzer's exit status.
    public static func runLibFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
    }

    /// The fuzzer's input as bytes.
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
    }

    /// The input as text, the way the readers see a file: invalid UTF-8 repaired (U+FFFD).
    public static func text(_ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: data, count: data == nil ? 0 : size), as: UTF8.self)
    }

    /// Turns off optimizer warnings (missing gradients and so on) the first time it is read: they are
    /// expected, and writing them slows a run down.
    public static let silenceWarningsOnce: Void = Optimizer.setWarningHandler { _ in }

    /// A harness-checked property failed: prints what and aborts, so libFuzzer saves the input as a crash.
    public static func fail(_ message: String) -> Never {
        let line = "FUZZ PROPERTY VIOLATED: " + message + "\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        abort()
    }

    /// Where scratch files go: `$TMPDIR`, else `/dev/shm` (memory, no disk writes) when it exists, else `/tmp`.
    static let scratchDirectory: String = {
        if let directory = ProcessInfo.processInfo.environment["TMPDIR"], !directory.isEmpty { return directory }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue {
            return "/dev/shm"
        }
        return "/tmp"
    }()

    /// A path for this process's scratch file `name` (one fuzzer process runs one input at a time, so
    /// one path per process and name is enough).
    public static func scratchPath(_ name: String) -> String {
        "\(scratchDirectory)/descent-fuzz-\(getpid())-\(name)"
    }

    /// Writes `bytes` to `path`, replacing it. Plain POSIX writes: `Data.write` syncs to disk, which
    /// made it most of a run's time. A failure here is the harness's, not Descent's.
    public static func writeFile(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fail("cannot open the scratch file \(path): errno \(errno)") }
        defer { close(fd) }
        var written = 0
        bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
                guard n > 0 else { fail("cannot write the scratch file \(path): errno \(errno)") }
                written += n
            }
        }
    }

    /// Removes a scratch file (after a run that did not crash: a crash leaves its input behind).
    public static func removeFile(_ path: String) {
        unlink(path)
    }

    /// An integer from the environment, or `fallback`.
    public static func environmentInt(_ name: String, default fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }

    /// Structural equality in which NaN equals NaN (`JSONValue ==` follows IEEE: NaN != NaN), and
    /// `-0.0` equals `0.0` as `==` has it. Iterative (a work list, not recursion), so a deeply nested
    /// document the parser accepts cannot overflow the harness's own stack.
    public static func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
        var pending: [(JSONValue, JSONValue)] = [(a, b)]
        while let (x, y) = pending.popLast() {
            switch (x, y) {
            case (.double(let p), .double(let q)):
                guard p == q || (p.isNaN && q.isNaN) else { return false }
            case (.array(let xs), .array(let ys)):
                guard xs.count == ys.count else { return false }
                pending.append(contentsOf: zip(xs, ys))
            case (.object(let xo), .object(let yo)):
                guard xo.entries.count == yo.entries.count else { return false }
                for (e, f) in zip(xo.entries, yo.entries) {
                    guard e.key == f.key else { return false }
                    pending.append((e.value, f.value))
                }
            case (.array, _), (.object, _), (_, .array), (_, .object): return false
            default:
                // Scalars only here, so `==` does not recurse.
                guard x == y else { return false }
            }
        }
        return true
    }
}
