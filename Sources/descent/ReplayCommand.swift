import ArgumentParser
import Descent
import Foundation

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

    func run() throws {
        let result = Replay.command(
            path: input,
            readStandardInput: {
                let data = FileHandle.standardInput.readDataToEndOfFile()
                return String(decoding: data, as: UTF8.self)
            },
            readFile: { try String(contentsOfFile: $0, encoding: .utf8) })
        FileHandle.standardOutput.write(Data(result.stdout.utf8))
        FileHandle.standardError.write(Data(result.stderr.utf8))
        if result.status != 0 { throw ExitCode(result.status) }
    }
}
