import ArgumentParser
import Descent
import Foundation

/// Options shared by `train` and `compare`.
struct ModelOptions: ParsableArguments {
    @Option(help: "Epochs.")
    var epochs: Int = 20
    @Option(help: "Batch size.")
    var batchSize: Int = 32
    @Option(help: "Seed for weights and shuffling.")
    var seed: UInt64 = 0
    @Option(help: "Hidden layer sizes, comma-separated (ReLU).")
    var hidden: String = "128,64"

    func hiddenSizes() throws -> [Int] {
        let parts = hidden.split(separator: ",", omittingEmptySubsequences: false)
        let sizes = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !hidden.isEmpty, sizes.count == parts.count, sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--hidden expects positive integers separated by commas, like 128,64; got '\(hidden)'")
        }
        return sizes
    }

    func check() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        _ = try hiddenSizes()
    }

    /// The digits MLP: 64 → hidden (ReLU) … → 10 logits.
    func makeModel() throws -> Sequential {
        GlobalRandom.setSeed(seed)
        let model = try Sequential(hiddenSizes().map { try Dense($0, activation: .relu) } + [Dense(10)])
        try model.build(inputShape: [1, 64])
        return model
    }
}

/// Reads `--optimizer`: a built-in name, a Keras JSON config, or a file holding one.
func parseOptimizer(_ text: String, learningRate: Double?) throws -> Optimizer {
    var source = text
    if !text.trimmingCharacters(in: .whitespaces).hasPrefix("{"), FileManager.default.fileExists(atPath: text) {
        source = try String(contentsOfFile: text, encoding: .utf8)
    }
    let optimizer: Optimizer
    do { optimizer = try Optimizer.deserialize(json: source) } catch {
        throw ValidationError("--optimizer: \(error)")
    }
    if let learningRate {
        guard learningRate > 0 else { throw ValidationError("--learning-rate must be positive, got \(learningRate)") }
        optimizer.learningRate = .number(learningRate)
    }
    return optimizer
}

/// The result of one training run.
struct TrainingRun {
    var history: History
    var seconds: Double
    var testLoss: Double
    var testAccuracy: Double
}

func trainDigits(model: Sequential, optimizer: Optimizer, options: ModelOptions, verbose: Verbosity) throws -> TrainingRun {
    let data = try Digits.load()
    model.compile(optimizer: optimizer, loss: SparseCategoricalCrossentropy(fromLogits: true),
                  metrics: [try SparseCategoricalAccuracy(name: "accuracy")])
    let start = monotonicSeconds()
    let history = try model.fit(data.train.x, data.train.y, batchSize: options.batchSize, epochs: options.epochs,
                                verbose: verbose, validationData: (data.test.x, data.test.y), seed: options.seed)
    let seconds = monotonicSeconds() - start
    let scores = try model.evaluate(data.test.x, data.test.y, batchSize: options.batchSize)
    return TrainingRun(history: history, seconds: seconds, testLoss: scores[0].1, testAccuracy: scores[1].1)
}

/// `descent train`: the main job, an MLP on the bundled digits.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an MLP on the bundled UCI digits (1437 train / 360 test images) with Keras' loop.")

    @OptionGroup var model: ModelOptions
    @Option(help: "A built-in optimizer (sgd, adam, adagrad, adadelta, adamax, ftrl, nadam, rmsprop), a Keras JSON config, or a file with one.")
    var optimizer: String = #"{"class_name": "Adam", "config": {"learning_rate": 0.001}}"#
    @Option(help: "Override the optimizer's learning rate.")
    var learningRate: Double?
    @Option(help: "Write loss and accuracy curves (train and validation) to this SVG file.")
    var plot: String?
    @Flag(help: "Print a final JSON line with the per-epoch metrics and test scores.")
    var json = false
    @Flag(help: "Print nothing during training.")
    var quiet = false

    func run() throws {
        try model.check()
        let optimizer = try parseOptimizer(optimizer, learningRate: learningRate)
        let network = try model.makeModel()
        if !quiet && !json { print(network.summary()) }
        let result = try trainDigits(model: network, optimizer: optimizer, options: model, verbose: quiet ? .silent : .progressBar)
        if !quiet {
            print(String(format: "Test loss: %.4f - test accuracy: %.4f (%d epochs in %.2fs)",
                         result.testLoss, result.testAccuracy, result.history.epochs.count, result.seconds))
        }
        if let plot {
            let h = result.history
            let svg = SVGChart.render([
                ChartPanel(title: "Loss", yLabel: "sparse categorical cross-entropy", series: [
                    ChartSeries(name: "train", values: h["loss"]), ChartSeries(name: "validation", values: h["val_loss"], dashed: true)]),
                ChartPanel(title: "Accuracy", yLabel: "accuracy", series: [
                    ChartSeries(name: "train", values: h["accuracy"]), ChartSeries(name: "validation", values: h["val_accuracy"], dashed: true)]),
            ], title: "Digits MLP \(model.hidden) — \(type(of: optimizer).kerasClassName)")
            try Data(svg.utf8).write(to: URL(fileURLWithPath: plot))
            if !quiet { print("Wrote \(plot)") }
        }
        if json {
            let h = result.history
            let doc: JSONValue = [
                "epochs": .int(h.epochs.count), "seconds": .double(result.seconds),
                "loss": .array(h["loss"].map { .double($0) }), "accuracy": .array(h["accuracy"].map { .double($0) }),
                "val_loss": .array(h["val_loss"].map { .double($0) }), "val_accuracy": .array(h["val_accuracy"].map { .double($0) }),
                "test_loss": .double(result.testLoss), "test_accuracy": .double(result.testAccuracy),
            ]
            print(doc.serialized)
        }
    }
}

/// `descent compare`: every built-in optimizer on the same model.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train the digits MLP with every built-in optimizer; write their loss curves as SVG and print a table.")

    @OptionGroup var model: ModelOptions
    @Option(help: "Learning rate for every optimizer (default: each one's Keras default).")
    var learningRate: Double?
    @Option(help: "The SVG file for the loss curves.")
    var plot: String = "compare.svg"

    func run() throws {
        try model.check()
        let names = ["SGD", "Adam", "Adagrad", "Adadelta", "Adamax", "Ftrl", "Nadam", "RMSprop"]
        var rows: [(String, TrainingRun)] = []
        for name in names {
            let optimizer = try parseOptimizer(name, learningRate: learningRate)
            let run = try trainDigits(model: try model.makeModel(), optimizer: optimizer, options: model, verbose: .silent)
            let padded = name + String(repeating: " ", count: max(0, 9 - name.count))
            print(padded + String(format: " test accuracy %.4f  loss %.4f  %.2fs", run.testAccuracy, run.testLoss, run.seconds))
            rows.append((name, run))
        }
        let lrText = learningRate.map { "learning rate \($0)" } ?? "Keras default learning rates"
        let svg = SVGChart.render([
            ChartPanel(title: "Training loss", yLabel: "loss", series: rows.map { ChartSeries(name: $0.0, values: $0.1.history["loss"]) }),
            ChartPanel(title: "Validation accuracy", yLabel: "accuracy",
                       series: rows.map { ChartSeries(name: $0.0, values: $0.1.history["val_accuracy"]) }),
        ], title: "Digits MLP \(model.hidden), \(model.epochs) epochs, \(lrText)")
        try Data(svg.utf8).write(to: URL(fileURLWithPath: plot))
        print("\n| optimizer | test accuracy | test loss | fit seconds |\n|---|---|---|---|")
        for (name, run) in rows {
            print(String(format: "| %@ | %.4f | %.4f | %.2f |", name as NSString, run.testAccuracy, run.testLoss, run.seconds))
        }
        print("\nWrote \(plot)")
    }
}
