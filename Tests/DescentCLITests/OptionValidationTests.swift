import Foundation
import Testing

/// Every option of every subcommand is range-checked with a message naming it, and exits with status 2
/// (issue 9, item 6); a diverging run stops as Keras' TerminateOnNaN and exits 1 with valid JSON (item 13).
@Suite(.serialized) struct OptionValidationTests {
    @Test(arguments: [
        // Negative numbers are values, not option names ("Missing value for '--epochs'" before).
        (["train", "--epochs", "-1"], "--epochs must be positive, got -1"),
        (["train", "--batch-size", "-3"], "--batch-size must be positive, got -3"),
        (["compare", "--epochs", "-2"], "--epochs must be positive, got -2"),
        (["train", "--hidden", "4611686018427387904"], "at most 1000000 units, got 4611686018427387904"),
        (["train", "--hidden", "100000000000"], "at most 1000000 units"),
        (["train", "--hidden", "1000000,1000000"], "of memory; this machine has"),
        (["train", "--hidden", String(repeating: "1,", count: 101) + "1"], "at most 100 hidden layers"),
        (["train", "--learning-rate", "inf"], "--learning-rate must be a finite number > 0, got inf"),
        (["train", "--learning-rate", "nan"], "--learning-rate must be a finite number > 0, got nan"),
        (["train", "--learning-rate", "-0.5"], "--learning-rate must be a finite number > 0, got -0.5"),
        (["compare", "--learning-rate", "-1"], "--learning-rate must be a finite number > 0, got -1"),
        (["train", "--plot", "/nonexistent-descent/x.svg"], "the folder /nonexistent-descent does not exist"),
        (["compare", "--plot", "/nonexistent-descent/x.svg"], "/nonexistent-descent does not exist"),
        (["train", "--seed", "-1"], "-1"),
        (["example", "--steps", "-1"], "--steps must be >= 0, got -1"),
        (["example", "--learning-rate", "inf"], "--learning-rate must be a finite number > 0"),
        (["bench", "optimizer", "--params", "-5"], "--params must be positive, got -5"),
        (["bench", "optimizer", "--params", "9223372036854775807"], "of memory"),
        (["bench", "optimizer", "--threads", "100000000000"], "--threads must be between 1 and 1024"),
        (["bench", "optimizer", "--optimizer", "adamm"], "--optimizer"),
        (["bench", "bandwidth", "--elements", "0"], "--elements must be positive, got 0"),
        (["bench", "bandwidth", "--elements", "4611686018427387904"], "of memory"),
        (["bench", "sparse", "--rows", "9223372036854775807"], "of memory"),
        (["bench", "sparse", "--dim", "-1"], "--dim must be positive, got -1"),
        (["bench", "matmul", "--m", "4611686018427387904", "--k", "4611686018427387904"], "of memory"),
        (["bench", "matmul", "--iterations", "-1"], "--iterations must be positive, got -1"),
        (["bench", "train", "--epochs", "-1"], "--epochs must be at least 2"),
        (["bench", "train", "--threads", "0"], "--threads must be between 1 and 1024, got 0"),
    ])
    func badOptionsSayWhatIsWrongAndExitWithStatus2(_ arguments: [String], _ message: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.hasPrefix("error: "), "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// A batch larger than the data is one batch per epoch, as in Keras (it overflowed `Sequential`).
    @Test func aHugeBatchSizeIsOneBatch() throws {
        let result = try CLI.run(["train", "--batch-size", "9223372036854775807", "--epochs", "1", "--hidden", "8", "--json", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(json["epochs"] as? Int == 1)
    }

    /// `--learning-rate 1e30` diverges: TerminateOnNaN stops training, the command exits 1 naming the
    /// epoch and batch, and the JSON line is valid JSON (non-finite numbers as null).
    @Test func aDivergingRunStopsAndExits1WithValidJSON() throws {
        let result = try CLI.run(["train", "--optimizer", "sgd", "--learning-rate", "1e30", "--epochs", "3", "--hidden", "16", "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("Invalid loss, terminating training"), "\(result.stderr)")
        let error = try #require(result.stderr.split(separator: "\n").last)
        #expect(error.hasPrefix("error: the loss became "), "\(error)")
        #expect(error.contains("at epoch 1 (of 3), batch "), "\(error)")
        #expect(error.contains("(of 45) (learning rate 1e+30)"), "\(error)")
        let line = try #require(result.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        #expect(json["epochs"] as? Int == 1)
        #expect((json["loss"] as? [Any])?.last is NSNull)
        #expect(json["test_loss"] is NSNull)
        let terminated = try #require(json["terminated_on_nan"] as? [String: Any])
        #expect(terminated["epoch"] as? Int == 0)
        #expect(terminated["loss"] is NSNull)
    }
}
