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

/// A ``FileReadError`` reduced to its reason: `Replay.command` already says "cannot read <path>: ".
struct ReadError: Error, CustomStringConvertible {
    let description: String
}

/// Every byte of the file at `path` (a regular file, a pipe, `/dev/stdin`, a FIFO alike), at most
/// ``FileBytes/defaultMaximumBytes``; a failure is described by its reason only (`No such file or directory`).
func readAllBytes(path: String) throws -> [UInt8] {
    do { return try FileBytes.read(path: path) } catch let error as FileReadError { throw ReadError(description: error.reason) }
}

/// Every byte readable from `fd` until end of file, at most ``FileBytes/defaultMaximumBytes``.
func readAllBytes(fileDescriptor fd: Int32) throws -> [UInt8] {
    do { return try FileBytes.read(fileDescriptor: fd, name: "standard input") } catch let error as FileReadError {
        throw ReadError(description: error.reason)
    }
}
