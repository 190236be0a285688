import ArgumentParser
import Descent
import Foundation

/// `descent write-test-weights` (hidden, for the test suite): saves the weights of a one-layer model,
/// every weight set to `--value`, with `Sequential.saveWeights`.
///
/// `Tests/DescentCLITests/AtomicSaveTests.swift` runs it on a large model and kills it with SIGKILL
/// during the save, to check that the target file is always the complete old or the complete new
/// file. It prints `saving` (flushed) just before the save starts and `saved` after it returns.
struct WriteTestWeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-test-weights",
        abstract: "Test helper: save a Dense(units) model on 999 inputs (1000 × units parameters) with every weight = value.",
        shouldDisplay: false)

    @Option(help: "The weights file to write.")
    var path: String
    @Option(parsing: .unconditional, help: "Units of the Dense layer (1 to 100000).")
    var units: Int = 1000
    @Option(parsing: .unconditional, help: "The value of every weight.")
    var value: Double = 0.5

    func validate() throws {
        guard units >= 1, units <= 100_000 else { throw ValidationError("--units must be between 1 and 100000, got \(units)") }
        try requireWritableFile(path, "--path")
    }

    func run() throws {
        let model = try Sequential([try Dense(units)])
        try model.build(inputShape: [1, 999])
        try model.setWeights(try model.weights.map { try Tensor(repeating: value, shape: $0.shape) })
        FileHandle.standardOutput.write(Data("saving\n".utf8))
        try model.saveWeights(toFile: path)  // the format follows the extension (.h5, .weights.h5)
        FileHandle.standardOutput.write(Data("saved\n".utf8))
    }
}
