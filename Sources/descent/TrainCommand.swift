import ArgumentParser
import Descent
import Foundation

/// Options shared by `train` and `compare`.
struct ModelOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Epochs (> 0).")
    var epochs: Int = 20
    @Option(parsing: .unconditional, help: "Batch size (> 0; larger than the 1437 training images gives one batch per epoch, as Keras).")
    var batchSize: Int = 32
    @Option(parsing: .unconditional, help: "Seed for weights and shuffling.")
    var seed: UInt64 = 0
    @Option(help: "Hidden layer sizes, comma-separated (ReLU); each 1 to \(OptionLimits.maxHiddenSize), at most \(OptionLimits.maxHiddenLayers) layers.")
    var hidden: String = ModelOptions.defaultHidden
    /// The default of `--hidden`.
    static let defaultHidden = "128,64"
    @Option(parsing: .unconditional, help: "Dropout rate after each hidden layer (0 to below 1; 0: no Dropout layers).")
    var dropout: Double = 0
    @Option(name: .customLong("model"), help: "mlp (Dense layers of --hidden) or cnn (Conv2D(32), BatchNormalization, pooling, Conv2D(64), BatchNormalization, Dropout, Dense(10) on the 8x8 images).")
    var architecture: Architecture = .mlp

    /// `--model`.
    enum Architecture: String, ExpressibleByArgument, CaseIterable {
        case mlp, cnn
    }

    /// The digits: 64 features, 10 classes, 1437 training images.
    static let inputSize = 64, classes = 10, trainingImages = 1437

    func hiddenSizes() throws -> [Int] {
        let parts = hidden.split(separator: ",", omittingEmptySubsequences: false)
        let sizes = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !hidden.isEmpty, sizes.count == parts.count, sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--hidden expects positive integers separated by commas, like 128,64; got '\(hidden)'")
        }
        guard sizes.count <= OptionLimits.maxHiddenLayers else {
            throw ValidationError("--hidden: at most \(OptionLimits.maxHiddenLayers) hidden layers, got \(sizes.count)")
        }
        if let wide = sizes.first(where: { $0 > OptionLimits.maxHiddenSize }) {
            throw ValidationError("--hidden: each layer may have at most \(OptionLimits.maxHiddenSize) units, got \(wide)")
        }
        return sizes
    }

    /// Checks every option (ArgumentParser calls it before `run`), then that the model fits in memory.
    func validate() throws {
        try requirePositive(epochs, "--epochs")
        try requirePositive(batchSize, "--batch-size")
        guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if architecture == .cnn && (hidden != ModelOptions.defaultHidden || dropout != 0) {
            throw ValidationError("--model cnn has a fixed architecture: --hidden and --dropout apply to --model mlp")
        }
        let sizes = try hiddenSizes()
        // Weights of 64 → hidden … → 10 (at most 100 layers of 1e6 units: no Int overflow).
        let widths = [ModelOptions.inputSize] + sizes + [ModelOptions.classes]
        let parameters = zip(widths, widths.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 + $1.1 }
        // float32 weights, their gradients, up to three optimizer slots and a spare copy; per layer and
        // row of a batch (clamped to the data, as fit does): the product, bias sum and activation, and
        // their gradients.
        let batch = min(batchSize, ModelOptions.trainingImages)
        let bytes = 4 * (6 * Double(parameters) + 6 * Double(batch) * Double(widths.reduce(0, +)))
        try requireMemory(bytes, for: "--hidden \(hidden) (\(parameters) parameters, batch \(batch))")
    }

    /// The digits MLP: 64 → hidden (ReLU) … → 10 logits.
    /// - Throws: `ValidationError` (exit status 2) if the model cannot be built (e.g. its tensors
    ///   cannot be allocated).
    func makeModel() throws -> Sequential {
        GlobalRandom.setSeed(seed)
        if architecture == .cnn { return try DigitsCNN.model() }
        let sizes = try hiddenSizes()
        do {
            let hidden: [Layer] = try sizes.flatMap { size -> [Layer] in
                let dense = try Dense(size, activation: .relu)
                return dropout > 0 ? [dense, try Dropout(dropout)] : [dense]
            }
            let model = try Sequential(hidden + [try Dense(ModelOptions.classes)])
            try model.build(inputShape: [1, ModelOptions.inputSize])
            return model
        } catch {
            throw ValidationError("--hidden \(hidden): cannot build the model: \(error)")
        }
    }
}

/// Reads `--optimizer`: a built-in name, a Keras JSON config, or a file holding one.
func parseOptimizer(_ text: String, learningRate: Double?) throws -> Optimizer {
    var source = Array(text.utf8)
    var origin = ""
    if !text.trimmingCharacters(in: .whitespaces).hasPrefix("{"), FileManager.default.fileExists(atPath: text) {
        // As bytes, so that the file's UTF-8 is checked by the same strict parser as everything else.
        do { source = try readAllBytes(path: text) } catch { throw ValidationError("--optimizer: cannot read \(text): \(error)") }
        origin = "\(text): "
    }
    let optimizer: Optimizer
    do { optimizer = try Optimizer.deserialize(jsonBytes: source) } catch {
        throw ValidationError("--optimizer: \(origin)\(error)")
    }
    if let learningRate {
        try requireLearningRate(learningRate)
        optimizer.learningRate = .number(learningRate)
    }
    return optimizer
}

/// The result of one training run.
struct TrainingRun {
    var history: History
    var seconds: Double
    /// The test scores (NaN when training was terminated).
    var testLoss: Double
    var testAccuracy: Double
    /// Where the loss became NaN or infinite, if it did (0-based epoch and batch) and training stopped.
    var terminated: (epoch: Int, batch: Int, loss: Double)?
}

/// Trains on the digits with `TerminateOnNaN` (Keras' message goes to `nanMessage`); the test scores
/// are computed only if training was not terminated.
func trainDigits(model: Sequential, optimizer: Optimizer, options: ModelOptions, verbose: Verbosity,
                 nanMessage: ((String) -> Void)? = nil, shuffle: Bool = true, backup: BackupAndRestore? = nil,
                 extraCallbacks: [Callback] = []) throws -> TrainingRun {
    let data = try Digits.load()
    model.compile(optimizer: optimizer, loss: SparseCategoricalCrossentropy(fromLogits: true),
                  metrics: [try SparseCategoricalAccuracy(name: "accuracy")])
    let stopper = TerminateOnNaN(output: nanMessage ?? { _ in })
    let start = monotonicSeconds()
    let history = try model.fit(data.train.x, data.train.y, batchSize: options.batchSize, epochs: options.epochs,
                                verbose: verbose, callbacks: [stopper] + extraCallbacks + (backup.map { [$0] } ?? []), validationData: (data.test.x, data.test.y),
                                shuffle: shuffle, seed: options.seed)
    let seconds = monotonicSeconds() - start
    if let terminated = stopper.terminated {
        return TrainingRun(history: history, seconds: seconds, testLoss: .nan, testAccuracy: .nan, terminated: terminated)
    }
    let scores = try model.evaluate(data.test.x, data.test.y, batchSize: options.batchSize, verbose: .silent)
    return TrainingRun(history: history, seconds: seconds, testLoss: scores["loss"] ?? .nan, testAccuracy: scores["accuracy"] ?? .nan)
}

/// `error: the loss became NaN at epoch 1 (of 20), batch 3 (of 45) (learning rate 1e+30)`, 1-based as
/// the progress bar counts.
func divergenceFailure(_ terminated: (epoch: Int, batch: Int, loss: Double), options: ModelOptions,
                       optimizer: Optimizer, learningRate: Double?) -> CommandFailure {
    let batches = ModelOptions.trainingImages / options.batchSize + (ModelOptions.trainingImages % options.batchSize == 0 ? 0 : 1)
    let what = terminated.loss.isNaN ? "NaN" : terminated.loss > 0 ? "inf" : "-inf"
    // The rate as given on the command line; else the optimizer's (a float32 value: 7 digits).
    let rate = learningRate.map { "learning rate \($0)" }
        ?? optimizer.learningRate.numericValue.map { String(format: "learning rate %.7g", $0) } ?? "a learning-rate schedule"
    return CommandFailure(
        message: "the loss became \(what) at epoch \(terminated.epoch + 1) (of \(options.epochs)), batch \(terminated.batch + 1) (of \(batches)) (\(rate)); training stopped",
        status: 1)
}

/// `--strategy`: how `descent train` distributes training.
enum StrategyOption: String, ExpressibleByArgument, CaseIterable {
    /// One process, no communication (Keras' default strategy).
    case `default`
    /// `MultiWorkerMirroredStrategy`: one replica per `mpirun` rank (one replica without `mpirun`).
    case multiWorker = "multi-worker"

    /// The strategy to train under.
    func makeStrategy() -> Strategy {
        switch self {
        case .default: return Strategy.default
        case .multiWorker: return MultiWorkerMirroredStrategy()
        }
    }
}

/// `descent train`: the main job, an MLP on the bundled digits.
///
/// `mpirun -np N descent train --strategy multi-worker` trains on N processes (Keras'
/// `MultiWorkerMirroredStrategy`): `--batch-size` is the global batch, split across the workers; the
/// chief (rank 0) alone prints and writes (`--save`, `--plot`, the backup of `--backup-dir`); every
/// worker resumes from that backup.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an MLP (or, with --model cnn, a small CNN) on the bundled UCI digits (1437 train / 360 test images) with Keras' loop.",
        discussion: """
            Training stops as Keras' TerminateOnNaN does when the loss becomes NaN or infinite; the command \
            then exits with status 1, naming the epoch and batch. Invalid options exit with status 2.

            Multi-worker: `mpirun -np N descent train --strategy multi-worker [--backup-dir DIR] [--save PATH]`. \
            --batch-size is the global batch, split across the N workers; rank 0 alone prints and writes files; \
            an error or a killed worker ends the whole job.
            """)

    @OptionGroup var model: ModelOptions
    @Option(help: "A built-in optimizer (sgd, adam, adagrad, adadelta, adamax, ftrl, nadam, rmsprop; Keras 3 only: adamw, lion, lamb, muon, ...), a Keras JSON config (tf.keras legacy or Keras 3: \"module\": \"keras.optimizers\"), or a file with one.")
    var optimizer: String = TrainCommand.defaultOptimizer
    @Option(parsing: .unconditional, help: "Override the optimizer's learning rate (finite, > 0).")
    var learningRate: Double?
    @Option(help: "Write loss and accuracy curves (train and validation) to this SVG file.")
    var plot: String?
    @Flag(help: "Print a final JSON line with the per-epoch metrics and test scores (NaN and infinity as null).")
    var json = false
    @Flag(help: "Print nothing during training.")
    var quiet = false
    @Option(help: "Save the trained model here: .h5 (tf_keras HDF5, with the optimizer's state) or .keras (Keras 3).")
    var save: String?
    @Option(help: "Start from a saved model (.h5 or .keras: architecture, weights, optimizer and its state) and train on; not with --optimizer or --hidden.")
    var load: String?
    @Flag(help: "Batches in data order (Keras' shuffle=False).")
    var noShuffle = false
    @Option(help: "Back up the run in this folder after every epoch (Keras' BackupAndRestore); the same command, rerun after a kill, resumes where the last backup left off. A finished run deletes the backup.")
    var backupDir: String?
    @Option(parsing: .unconditional, help: "With --backup-dir, also back up every N batches.")
    var backupSteps: Int?
    @Option(help: "default (one process) or multi-worker (one replica per mpirun rank: mpirun -np N descent train --strategy multi-worker; --batch-size is the global batch).")
    var strategy: StrategyOption = .default
    @Flag(help: "With several workers, each keeps the optimizer's slots of 1/N of the variables (ZeRO stage 1); same numbers, less memory.")
    var shardOptimizerState = false
    @Option(help: "Write TensorBoard event files (Keras' TensorBoard callback) to DIR/train and DIR/validation: epoch_loss, epoch_accuracy, ... per epoch.")
    var tensorboard: String?

    static let defaultOptimizer = #"{"class_name": "Adam", "config": {"learning_rate": 0.001}}"#

    func validate() throws {
        try requireLearningRate(learningRate)
        if let load {
            guard optimizer == TrainCommand.defaultOptimizer, model.hidden == ModelOptions.defaultHidden, model.dropout == 0 else {
                throw ValidationError("--load \(load) takes the architecture and the optimizer from the file: --optimizer, --hidden and --dropout cannot be given with it")
            }
            guard model.architecture == .mlp else {
                throw ValidationError("--load \(load) takes the architecture from the file: --model cannot be given with it")
            }
        } else {
            _ = try parseOptimizer(optimizer, learningRate: learningRate)
        }
        if let plot { try requireWritableFile(plot, "--plot") }
        if let backupSteps {
            guard backupDir != nil else { throw ValidationError("--backup-steps needs --backup-dir") }
            try requirePositive(backupSteps, "--backup-steps")
        }
        if let save {
            do { _ = try ModelFileFormat(path: save) } catch { throw ValidationError("--save \(save): use a .h5 or .keras file name") }
            try requireWritableFile(save, "--save")
        }
    }

    /// The model and optimizer to train: built from the options, or loaded with `--load`.
    func startingPoint() throws -> (Sequential, Optimizer) {
        guard let load else { return (try model.makeModel(), try parseOptimizer(optimizer, learningRate: learningRate)) }
        let network: Sequential
        do { network = try loadModel(fromFile: load) } catch { throw CommandFailure(message: "--load: \(error)", status: 2) }
        guard let optimizer = network.optimizer else {
            throw CommandFailure(message: "--load \(load): the file has no optimizer (saved without it); train it from the start instead", status: 2)
        }
        guard network.builtInputShape?.dropFirst() == [ModelOptions.inputSize],
              (try? network.predict(Tensor.zeros(shape: [1, ModelOptions.inputSize])).shape) == [1, ModelOptions.classes] else {
            throw CommandFailure(message: "--load \(load): the model must take \(ModelOptions.inputSize) inputs and give \(ModelOptions.classes) outputs (the digits)", status: 2)
        }
        if let learningRate { optimizer.learningRate = .number(learningRate) }
        return (network, optimizer)
    }

    func run() throws {
        let distribution = strategy.makeStrategy()
        // Under the multi-worker strategy the model and optimizer are created in its scope (mirrored:
        // every worker starts from rank 0's values); the chief alone prints and writes.
        let (network, optimizer) = try distribution.scope { try startingPoint() }
        try optimizer.setShardsStateAcrossReplicas(shardOptimizerState)
        let chief = distribution.isChief, quiet = self.quiet || !chief, json = self.json && chief
        if !quiet && !json { print(network.summary()) }
        // Keras prints TerminateOnNaN's message on standard output; with --json it goes to standard error,
        // so that the JSON line stays the last line of standard output.
        let nanMessage: (String) -> Void = quiet ? { _ in } : json ? { FileHandle.standardError.write(Data($0.utf8)) } : { print($0, terminator: "") }
        let backup = try backupDir.map { try BackupAndRestore(backupDir: $0, saveFreq: backupSteps.map { .steps($0) } ?? .epoch) }
        let board = tensorboard.map { TensorBoard(logDir: $0) }
        let result = try trainDigits(model: network, optimizer: optimizer, options: model,
                                     verbose: quiet ? .silent : .progressBar, nanMessage: nanMessage, shuffle: !noShuffle, backup: backup,
                                     extraCallbacks: board.map { [$0] } ?? [])
        if let tensorboard, !quiet && !json { print("Wrote TensorBoard logs to \(tensorboard)/train and \(tensorboard)/validation") }
        // A sharded optimizer's full state is gathered by a collective: every worker reads it (it is
        // kept until the next step), then the chief alone writes the file.
        if save != nil, result.terminated == nil { _ = optimizer.weights }
        if let save, result.terminated == nil, chief {
            try network.save(toFile: save)
            if !quiet && !json { print("Saved \(save)") }
        }
        if !quiet && result.terminated == nil {
            print(String(format: "Test loss: %.4f - test accuracy: %.4f (%d epochs in %.2fs)",
                         result.testLoss, result.testAccuracy, result.history.epochs.count, result.seconds))
        }
        if let plot, chief {
            let h = result.history
            let svg = SVGChart.render([
                ChartPanel(title: "Loss", yLabel: "sparse categorical cross-entropy", series: [
                    ChartSeries(name: "train", values: h["loss"]), ChartSeries(name: "validation", values: h["val_loss"], dashed: true)]),
                ChartPanel(title: "Accuracy", yLabel: "accuracy", series: [
                    ChartSeries(name: "train", values: h["accuracy"]), ChartSeries(name: "validation", values: h["val_accuracy"], dashed: true)]),
            ], title: (model.architecture == .cnn ? "Digits CNN" : "Digits MLP \(model.hidden)") + " — \(type(of: optimizer).kerasClassName)")
            try AtomicFile.write(svg, to: plot)
            if !quiet { print("Wrote \(plot)") }
        }
        if json {
            let h = result.history
            var doc: JSONObject = [
                "epochs": .int(h.epochs.count), "seconds": jsonNumber(result.seconds),
                "loss": .array(h["loss"].map(jsonNumber)), "accuracy": .array(h["accuracy"].map(jsonNumber)),
                "val_loss": .array(h["val_loss"].map(jsonNumber)), "val_accuracy": .array(h["val_accuracy"].map(jsonNumber)),
                "test_loss": jsonNumber(result.testLoss), "test_accuracy": jsonNumber(result.testAccuracy),
            ]
            if let t = result.terminated {
                doc["terminated_on_nan"] = ["epoch": .int(t.epoch), "batch": .int(t.batch), "loss": jsonNumber(t.loss)]
            }
            print(JSONValue.object(doc).serialized)
        }
        if let terminated = result.terminated {
            throw divergenceFailure(terminated, options: model, optimizer: optimizer, learningRate: learningRate)
        }
    }
}

/// `descent compare`: every built-in optimizer on the same model.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Train the digits MLP with every built-in optimizer; write their loss curves as SVG and print a table.")

    @OptionGroup var model: ModelOptions
    @Option(parsing: .unconditional, help: "Learning rate for every optimizer (finite, > 0; default: each one's Keras default).")
    var learningRate: Double?
    @Option(help: "The SVG file for the loss curves.")
    var plot: String = "compare.svg"

    func validate() throws {
        try requireLearningRate(learningRate)
        try requireWritableFile(plot, "--plot")
    }

    func run() throws {
        let names = ["SGD", "Adam", "Adagrad", "Adadelta", "Adamax", "Ftrl", "Nadam", "RMSprop"]
        var rows: [(String, TrainingRun)] = []
        for name in names {
            let optimizer = try parseOptimizer(name, learningRate: learningRate)
            let run = try trainDigits(model: try model.makeModel(), optimizer: optimizer, options: model, verbose: .silent)
            let padded = name + String(repeating: " ", count: max(0, 9 - name.count))
            let diverged = run.terminated.map { " (loss became NaN or inf at epoch \($0.epoch + 1), batch \($0.batch + 1))" } ?? ""
            print(padded + String(format: " test accuracy %.4f  loss %.4f  %.2fs", run.testAccuracy, run.testLoss, run.seconds) + diverged)
            rows.append((name, run))
        }
        let lrText = learningRate.map { "learning rate \($0)" } ?? "Keras default learning rates"
        let svg = SVGChart.render([
            ChartPanel(title: "Training loss", yLabel: "loss", series: rows.map { ChartSeries(name: $0.0, values: $0.1.history["loss"]) }),
            ChartPanel(title: "Validation accuracy", yLabel: "accuracy",
                       series: rows.map { ChartSeries(name: $0.0, values: $0.1.history["val_accuracy"]) }),
        ], title: "Digits MLP \(model.hidden), \(model.epochs) epochs, \(lrText)")
        try AtomicFile.write(svg, to: plot)
        print("\n| optimizer | test accuracy | test loss | fit seconds |\n|---|---|---|---|")
        for (name, run) in rows {
            print(String(format: "| %@ | %.4f | %.4f | %.2f |", name as NSString, run.testAccuracy, run.testLoss, run.seconds))
        }
        print("\nWrote \(plot)")
    }
}
