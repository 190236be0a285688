import DescentDistribute
import DescentOptimizers
import DescentTensor
import Foundation

/// Per-epoch metric values (`"loss"`, `"accuracy"`, `"val_loss"`, ...).
public typealias Logs = [String: Double]

/// Hooks into `fit`, `evaluate` and `predict` (Keras' `Callback`). Every method has an empty default.
///
/// `fit` calls `onTrainBegin`, then per epoch `onEpochBegin`, per batch `onTrainBatchBegin` and
/// `onTrainBatchEnd` (with the running logs), the test hooks of its validation, `onEpochEnd` (with the
/// epoch's logs, validation included as `val_...`), and finally `onTrainEnd`. `evaluate` calls
/// `onTestBegin`, `onTestBatchBegin`/`onTestBatchEnd` per batch and `onTestEnd` (with its scores);
/// `predict` the predict hooks.
public protocol Callback: AnyObject {
    func onTrainBegin(model: Model) throws
    func onEpochBegin(_ epoch: Int, model: Model) throws
    func onTrainBatchBegin(_ batch: Int, model: Model) throws
    func onTrainBatchEnd(_ batch: Int, logs: Logs, model: Model) throws
    func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws
    func onTrainEnd(model: Model) throws
    func onTestBegin(model: Model) throws
    func onTestBatchBegin(_ batch: Int, model: Model) throws
    func onTestBatchEnd(_ batch: Int, logs: Logs, model: Model) throws
    func onTestEnd(logs: Logs, model: Model) throws
    func onPredictBegin(model: Model) throws
    func onPredictBatchBegin(_ batch: Int, model: Model) throws
    func onPredictBatchEnd(_ batch: Int, model: Model) throws
    func onPredictEnd(model: Model) throws
}

extension Callback {
    public func onTrainBegin(model: Model) throws {}
    public func onEpochBegin(_ epoch: Int, model: Model) throws {}
    public func onTrainBatchBegin(_ batch: Int, model: Model) throws {}
    public func onTrainBatchEnd(_ batch: Int, logs: Logs, model: Model) throws {}
    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {}
    public func onTrainEnd(model: Model) throws {}
    public func onTestBegin(model: Model) throws {}
    public func onTestBatchBegin(_ batch: Int, model: Model) throws {}
    public func onTestBatchEnd(_ batch: Int, logs: Logs, model: Model) throws {}
    public func onTestEnd(logs: Logs, model: Model) throws {}
    public func onPredictBegin(model: Model) throws {}
    public func onPredictBatchBegin(_ batch: Int, model: Model) throws {}
    public func onPredictBatchEnd(_ batch: Int, model: Model) throws {}
    public func onPredictEnd(model: Model) throws {}
}

/// The metrics of every epoch, returned by `fit` (Keras' `History`).
public final class History: Callback {
    /// The epochs run (0-based).
    public private(set) var epochs: [Int] = []
    /// Each metric's value per epoch, by name.
    public private(set) var history: [String: [Double]] = [:]

    public init() {}

    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {
        epochs.append(epoch)
        for (k, v) in logs { history[k, default: []].append(v) }
    }

    /// One metric's values, or an empty array.
    public subscript(metric: String) -> [Double] { history[metric] ?? [] }
}

/// Runs closures at the hooks (Keras' `LambdaCallback`: `on_epoch_begin`, `on_epoch_end`,
/// `on_train_begin`, `on_train_end`, `on_train_batch_begin`, `on_train_batch_end`).
public final class LambdaCallback: Callback {
    private let epochEnd: ((Int, Logs, Model) throws -> Void)?
    private let epochBegin: ((Int, Model) throws -> Void)?
    private let batchBegin: ((Int, Model) throws -> Void)?
    private let batchEnd: ((Int, Logs, Model) throws -> Void)?
    private let trainBegin: ((Model) throws -> Void)?
    private let trainEnd: ((Model) throws -> Void)?

    public init(onEpochBegin: ((Int, Model) throws -> Void)? = nil,
                onEpochEnd: ((Int, Logs, Model) throws -> Void)? = nil,
                onTrainBatchBegin: ((Int, Model) throws -> Void)? = nil,
                onTrainBatchEnd: ((Int, Logs, Model) throws -> Void)? = nil,
                onTrainBegin: ((Model) throws -> Void)? = nil,
                onTrainEnd: ((Model) throws -> Void)? = nil) {
        self.epochBegin = onEpochBegin
        self.epochEnd = onEpochEnd
        self.batchBegin = onTrainBatchBegin
        self.batchEnd = onTrainBatchEnd
        self.trainBegin = onTrainBegin
        self.trainEnd = onTrainEnd
    }

    public func onTrainBegin(model: Model) throws { try trainBegin?(model) }
    public func onTrainEnd(model: Model) throws { try trainEnd?(model) }
    public func onEpochBegin(_ epoch: Int, model: Model) throws { try epochBegin?(epoch, model) }
    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws { try epochEnd?(epoch, logs, model) }
    public func onTrainBatchBegin(_ batch: Int, model: Model) throws { try batchBegin?(batch, model) }
    public func onTrainBatchEnd(_ batch: Int, logs: Logs, model: Model) throws { try batchEnd?(batch, logs, model) }
}

/// How a monitored quantity improves.
public enum MonitorMode: String, Sendable {
    case auto, min, max
    func improves(_ current: Double, over best: Double, minDelta: Double, monitor: String) -> Bool {
        let maximize = self == .max || (self == .auto && (monitor.hasSuffix("acc") || monitor.contains("accuracy")))
        return maximize ? current - minDelta > best : current + minDelta < best
    }
}

/// Stops training when a monitored metric stops improving (Keras' `EarlyStopping`, as tf_keras 2.21 runs
/// it).
///
/// After each epoch from `startFromEpoch` on: `wait += 1`; an improvement on the best value (by more than
/// `minDelta`; `mode` `.auto` maximizes a monitor ending in `acc`, `accuracy` or `auc`) records it and, when it
/// also beats `baseline` (if given), resets `wait` to 0; otherwise training stops once `wait >= patience`
/// (never after the first epoch). With `restoreBestWeights`, the weights of the best epoch (or of the first
/// one, if none improved) are put back when training ends, whether it stopped early or not.
public final class EarlyStopping: Callback {
    public let monitor: String
    public let minDelta: Double
    public let patience: Int
    public let mode: MonitorMode
    /// A value the monitor must beat for `wait` to restart (Keras' `baseline`).
    public let baseline: Double?
    public let restoreBestWeights: Bool
    /// Epochs before which nothing is watched (Keras' `start_from_epoch`).
    public let startFromEpoch: Int
    /// The epoch training stopped at, if it stopped early.
    public private(set) var stoppedEpoch: Int?
    /// The epoch of the best value (Keras' `best_epoch`).
    public private(set) var bestEpoch = 0
    private var best: Double?
    private var wait = 0
    private var bestWeights: [Tensor]?

    public init(monitor: String = "val_loss", minDelta: Double = 0, patience: Int = 0, mode: MonitorMode = .auto,
                baseline: Double? = nil, restoreBestWeights: Bool = false, startFromEpoch: Int = 0) {
        self.monitor = monitor
        self.minDelta = abs(minDelta)
        self.patience = patience
        self.mode = mode
        self.baseline = baseline
        self.restoreBestWeights = restoreBestWeights
        self.startFromEpoch = startFromEpoch
    }

    /// Whether the monitor is maximized (tf_keras' EarlyStopping rule for `.auto`).
    private var maximizes: Bool {
        mode == .max || (mode == .auto && (monitor.hasSuffix("acc") || monitor.hasSuffix("accuracy") || monitor.hasSuffix("auc")))
    }

    /// Keras' `_is_improvement`: `current − minDelta > reference` (maximizing) or `current + minDelta <
    /// reference`.
    private func isImprovement(_ current: Double, over reference: Double) -> Bool {
        maximizes ? current - minDelta > reference : current + minDelta < reference
    }

    public func onTrainBegin(model: Model) throws {
        best = nil
        wait = 0
        stoppedEpoch = nil
        bestWeights = nil
        bestEpoch = 0
    }

    /// The best value so far (for ``BackupAndRestore``).
    var bestValue: Double? { best }
    /// Epochs counted by `wait` so far.
    var waitCount: Int { wait }
    /// The weights of the best epoch, with `restoreBestWeights`.
    var bestWeightValues: [Tensor]? { bestWeights }

    /// Restores a backed-up state.
    func restore(best: Double?, wait: Int, bestWeights: [Tensor]?) {
        self.best = best
        self.wait = wait
        self.bestWeights = bestWeights
    }

    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {
        guard let current = logs[monitor] else {
            throw TrainingError.invalidArgument(
                "EarlyStopping monitors '\(monitor)', which is not among the metrics: \(logs.keys.sorted().joined(separator: ", "))")
        }
        if epoch < startFromEpoch { return }
        if restoreBestWeights && bestWeights == nil {
            // Keras: the first epoch's weights, if no epoch ever improves.
            bestWeights = model.getWeights()
            bestEpoch = epoch
        }
        wait += 1
        // Keras starts from +inf (minimizing) or -inf (maximizing).
        if isImprovement(current, over: best ?? (maximizes ? -.infinity : .infinity)) {
            best = current
            bestEpoch = epoch
            if restoreBestWeights { bestWeights = model.getWeights() }
            if baseline.map({ isImprovement(current, over: $0) }) ?? true { wait = 0 }
            return
        }
        if wait >= patience && epoch > 0 {
            stoppedEpoch = epoch
            model.stopTraining = true
        }
    }

    public func onTrainEnd(model: Model) throws {
        if restoreBestWeights, let bestWeights { try model.setWeights(bestWeights) }
    }
}

/// Sets the optimizer's learning rate at the start of each epoch (Keras' `LearningRateScheduler`).
public final class LearningRateScheduler: Callback {
    private let schedule: (Int, Double) throws -> Double

    /// `schedule(epoch, currentLearningRate)` returns the new rate.
    public init(_ schedule: @escaping (Int, Double) throws -> Double) { self.schedule = schedule }

    public func onEpochBegin(_ epoch: Int, model: Model) throws {
        guard let optimizer = model.optimizer else { return }
        guard let current = optimizer.learningRate.numericValue else {
            throw TrainingError.invalidArgument("LearningRateScheduler needs a numeric learning rate, not a schedule or closure")
        }
        optimizer.learningRate = .number(try schedule(epoch, current))
    }
}

/// Saves the model after epochs (Keras' `ModelCheckpoint`): the whole model with its optimizer
/// (``Sequential/save(toFile:includeOptimizer:)``, `.keras` or `.h5`), or with `saveWeightsOnly` the
/// weights (``Sequential/saveWeights(toFile:)``, `.weights.h5` or `.h5`). Every file is written atomically.
///
/// `filePath` is a Python format string over the epoch (1-based, as Keras) and the epoch's logs, as
/// Keras formats it: `"w.{epoch:02d}-{val_loss:.2f}.h5"` gives `w.03-0.41.h5`
/// (``CheckpointFileName``). With `saveBestOnly`, a file is written only when `monitor` improves.
///
/// Under a strategy with several replicas (``Model/distributionStrategy``) only the chief replica
/// writes; ``savedFiles`` lists the chief's files on every replica.
public final class ModelCheckpoint: Callback {
    public let filePath: String
    public let monitor: String
    public let saveBestOnly: Bool
    public let saveWeightsOnly: Bool
    public let mode: MonitorMode
    /// The files written (with several replicas: by the chief), in order.
    public private(set) var savedFiles: [String] = []
    private var best: Double?

    /// - Parameter saveWeightsOnly: save only the weights (Keras' `save_weights_only`, default `false`:
    ///   the whole model with its optimizer state).
    public init(filePath: String, monitor: String = "val_loss", saveBestOnly: Bool = false, saveWeightsOnly: Bool = false,
                mode: MonitorMode = .auto) {
        self.filePath = filePath
        self.monitor = monitor
        self.saveBestOnly = saveBestOnly
        self.saveWeightsOnly = saveWeightsOnly
        self.mode = mode
    }

    /// The best monitored value so far (for ``BackupAndRestore``).
    var bestValue: Double? { best }
    /// Restores a backed-up best value.
    func restore(best: Double?) { self.best = best }

    /// Checks the file name template before training starts, as Keras fails early on a bad one.
    public func onTrainBegin(model: Model) throws {
        _ = try CheckpointFileName.parse(filePath)
    }

    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {
        if saveBestOnly {
            guard let current = logs[monitor] else {
                throw TrainingError.invalidArgument("ModelCheckpoint monitors '\(monitor)', which is not among the metrics")
            }
            if let best, !mode.improves(current, over: best, minDelta: 0, monitor: monitor) { return }
            best = current
        }
        let path = try CheckpointFileName.format(filePath, epoch: epoch + 1, logs: logs)
        // With several replicas only the chief writes (the weights are the same on every replica); every
        // replica records the path, so that the callbacks' states stay the same.
        // A sharded optimizer's full state is gathered by a collective: every replica reads it first.
        if model.distributionStrategy.numReplicasInSync > 1 { _ = model.optimizer?.weights }
        if model.distributionStrategy.isChief {
            if saveWeightsOnly {
                try model.saveWeights(toFile: path)
            } else if let sequential = model as? Sequential {
                try sequential.save(toFile: path)
            } else {
                throw TrainingError.invalidArgument(
                    "ModelCheckpoint: model '\(model.name)' (\(type(of: model))) is not a Sequential, whose whole-model files Descent writes: use saveWeightsOnly: true")
            }
        }
        savedFiles.append(path)
    }
}

/// Stops training as soon as the loss is NaN or infinite (Keras' `TerminateOnNaN`).
///
/// As in tf-keras: after each training batch it reads `logs["loss"]` (the epoch's running mean loss);
/// when it is NaN or ±infinity it prints `Batch <batch>: Invalid loss, terminating training` (the batch
/// 0-based) and sets ``Model/stopTraining``, so `fit` ends the epoch after that batch (validation
/// and `onEpochEnd` still run on the logs so far, as in Keras) and stops.
public final class TerminateOnNaN: Callback {
    /// Where the batch it stopped at was: the epoch and batch (both 0-based) and the loss, if it stopped.
    public private(set) var terminated: (epoch: Int, batch: Int, loss: Double)?
    private var epoch = 0
    private let write: (String) -> Void

    /// - Parameter output: where Keras' message goes (standard output by default, as Keras'
    ///   `print_msg`).
    public init(output: ((String) -> Void)? = nil) {
        self.write = output ?? { print($0, terminator: "") }
    }

    /// Forgets a previous run's termination.
    public func onTrainBegin(model: Model) throws { terminated = nil }
    /// Records the epoch, for ``terminated``.
    public func onEpochBegin(_ epoch: Int, model: Model) throws { self.epoch = epoch }

    /// Keras' `on_batch_end`: stops training if `logs["loss"]` is NaN or infinite.
    public func onTrainBatchEnd(_ batch: Int, logs: Logs, model: Model) throws {
        guard let loss = logs["loss"], loss.isNaN || loss.isInfinite else { return }
        // The logs are the same on every replica: each one stops, the chief alone prints.
        if model.distributionStrategy.isChief { write("Batch \(batch): Invalid loss, terminating training\n") }
        terminated = (epoch, batch, loss)
        model.stopTraining = true
    }
}
