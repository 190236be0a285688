import ArgumentParser
import Descent
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `descent replay`: runs a Keras-serialized optimizer over given variables and gradients (see
/// `Replay` in DescentOptimizers) and prints one JSON document.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay optimizer steps from a JSON document and print the trajectory as JSON.",
        discussion: """
            Input: {"optimizer": <Keras-serialized optimizer>, "variables": [{"name", "shape", "dtype", "value", \
            "constraint"}], "steps": [{"gradients": [null | {"dense": [...]} | {"indices", "values", "dense_shape"}]}]}.
            Output: {"steps": [{"variables": [...]}], "iterations", "weights", "weight_names", "config"}.
            Malformed input exits with status 1 and a one-line error on standard error.
            """)

    @Argument(help: "The input JSON file, or - for standard input.")
    var input: String

    @Option(help: "The most numbers the output's steps may hold (steps x total variable elements); a larger document is an error before any step runs.")
    var maxOutputNumbers: Int = Replay.defaultMaxOutputNumbers

    func validate() throws {
        guard maxOutputNumbers >= 0 else {
            throw ValidationError("--max-output-numbers must be 0 or more, got \(maxOutputNumbers)")
        }
    }

    func run() throws {
        let result = Replay.command(
            path: input,
            readStandardInput: { try readAllBytes(fileDescriptor: STDIN_FILENO) },
            readFile: { try readAllBytes(path: $0) },
            maxOutputNumbers: maxOutputNumbers)
        FileHandle.standardOutput.write(Data(result.stdout.utf8))
        FileHandle.standardError.write(Data(result.stderr.utf8))
        if result.status != 0 { throw ExitCode(result.status) }
    }
}

/// A failed `open` or `read`, described as the C library does (`No such file or directory`).
struct ReadError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
}

/// Every byte of the file at `path`: a regular file, a pipe, `/dev/stdin`, a FIFO alike.
func readAllBytes(path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ReadError(code: errno) }
    defer { close(fd) }
    return try readAllBytes(fileDescriptor: fd)
}

/// Every byte readable from `fd` until end of file.
func readAllBytes(fileDescriptor fd: Int32) throws -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ReadError(code: errno)
        }
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}
