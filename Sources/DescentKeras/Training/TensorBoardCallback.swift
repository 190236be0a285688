import DescentAutodiff
import DescentOptimizers
import DescentTensorBoard
import Foundation

/// Writes TensorBoard logs during `fit` (Keras' `TensorBoard` callback, as tf_keras 2.21 writes them).
///
/// Event files (``EventFileWriter``) go to `logDir/train` and `logDir/validation`, created on first use
/// (a fit without validation data writes no `validation/`); every `fit` opens new files, as Keras.
/// Every value is a TF 2 scalar summary (`DT_FLOAT`, plugin `"scalars"`), in the order of the logs
/// (`loss`, then the compiled metrics):
///
/// | when | run | tag | step |
/// | --- | --- | --- | --- |
/// | train begin, `writeGraph` | train | `keras` (the model's tf_keras JSON, plugin `graph_keras_model`) | 0 |
/// | after batch `k` (1-based over the fit) with `k % n == 0`, `updateFreq` `.batch` (`n = 1`) or `.everyBatches(n)` | train | `batch_<key>` for each batch log | `k` |
/// | epoch end, with validation | validation | `evaluation_<key>_vs_iterations` | the optimizer's `iterations` |
/// | epoch end | train | `epoch_<key>` for each non-`val_` log, and `epoch_learning_rate` when the learning rate is a schedule (its value at `iterations`) | epoch (0-based) |
/// | epoch end | validation | `epoch_<key>` for each `val_<key>` log | epoch |
/// | epoch end, `histogramFreq > 0` and `epoch % histogramFreq == 0` | train | `<weight name>_0/histogram` (tf_keras' `dense/kernel:0` with `:` → `_`) for each layer's weights: ``HistogramBuckets`` (30) | epoch |
///
/// Both files are flushed after every epoch and closed when training ends. Under a strategy with
/// several replicas only the chief writes (Keras' other workers write to a temporary folder they
/// delete: nothing is left).
///
/// Differences from tf_keras: `writeGraph` writes the Keras model summary (`keras`, the conceptual
/// graph), not the TF op graph of the train function (Descent has none); tf_keras writes batch summaries
/// only when some callback runs batch hooks (its progress bar does with `verbose=1`; with `verbose` 0 or
/// 2 and no other such callback it silently writes none), Descent always does; `write_images`,
/// `write_steps_per_second`, `profile_batch` and embeddings are not supported.
public final class TensorBoard: Callback {
    /// How often batch-level summaries are written (Keras' `update_freq`).
    public enum UpdateFrequency: Sendable, Equatable {
        /// Only epoch summaries (`"epoch"`).
        case epoch
        /// After every batch (`"batch"`, the same as `.everyBatches(1)`).
        case batch
        /// After every `n`-th batch of the fit, counted from its start (an integer `update_freq`).
        case everyBatches(Int)
    }

    /// The root folder of the logs.
    public let logDir: String
    /// Epochs between weight histograms (0: none).
    public let histogramFreq: Int
    /// Whether the model's Keras JSON is written (as the `keras` summary at step 0).
    public let writeGraph: Bool
    public let updateFreq: UpdateFrequency

    /// The train and validation event files of the current (or last) fit, once created.
    public private(set) var trainWriter: EventFileWriter?
    public private(set) var validationWriter: EventFileWriter?
    /// Batches trained in this fit (tf_keras' `model._train_counter`): the batch summaries' step.
    private var trainStep: Int64 = 0
    private var graphPending = false

    /// - Parameters:
    ///   - logDir: where `train/` and `validation/` go (Keras' `log_dir`, default `"logs"`).
    ///   - histogramFreq: write weight histograms every this many epochs (0: never); must be >= 0.
    ///   - writeGraph: write the model's Keras config (its conceptual graph in TensorBoard).
    ///   - updateFreq: when batch summaries are written; `.everyBatches(n)` needs `n > 0`.
    public init(logDir: String = "logs", histogramFreq: Int = 0, writeGraph: Bool = true, updateFreq: UpdateFrequency = .epoch) {
        self.logDir = logDir
        self.histogramFreq = histogramFreq
        self.writeGraph = writeGraph
        self.updateFreq = updateFreq
    }

    /// The batch interval, or `nil` for `.epoch`.
    private var batchInterval: Int64? {
        switch updateFreq {
        case .epoch: nil
        case .batch: 1
        case .everyBatches(let n): Int64(n)
        }
    }

    private var trainDir: String { (logDir as NSString).appendingPathComponent("train") }
    private var validationDir: String { (logDir as NSString).appendingPathComponent("validation") }

    private func train() throws -> EventFileWriter {
        if let trainWriter { return trainWriter }
        let w = try EventFileWriter(logDir: trainDir)
        trainWriter = w
        return w
    }

    private func validation() throws -> EventFileWriter {
        if let validationWriter { return validationWriter }
        let w = try EventFileWriter(logDir: validationDir)
        validationWriter = w
        return w
    }

    /// Checks the arguments, starts new event files (Keras' `set_model` and `on_train_begin`) and, with
    /// `writeGraph`, writes the model's JSON (once the model is built; an unbuilt model's is written
    /// after the first batch).
    /// - Throws: ``TrainingError/invalidArgument(_:)`` for a bad `histogramFreq` or `updateFreq`;
    ///   ``TensorBoardError`` naming the folder or file when it cannot be created.
    public func onTrainBegin(model: Model) throws {
        guard histogramFreq >= 0 else {
            throw TrainingError.invalidArgument("TensorBoard: histogramFreq must be >= 0, got \(histogramFreq)")
        }
        if case .everyBatches(let n) = updateFreq, n <= 0 {
            throw TrainingError.invalidArgument("TensorBoard: updateFreq .everyBatches(n) needs n > 0, got \(n)")
        }
        try closeWriters()
        trainWriter = nil
        validationWriter = nil
        trainStep = 0
        graphPending = writeGraph
        guard model.distributionStrategy.isChief else { return }
        if writeGraph { _ = try train() }
        try writeGraphIfReady(model)
    }

    /// tf_keras' `keras_model_summary("keras", model, step=0)`: the model's `to_json()`, if it has one
    /// (a model whose layers have no Keras config is skipped, as Keras ignores a model that fails to
    /// serialize).
    private func writeGraphIfReady(_ model: Model) throws {
        guard graphPending, model.builtInputShape != nil else { return }
        graphPending = false
        // Only a Sequential has a Keras model config (Keras also skips a subclassed model's).
        guard let sequential = model as? Sequential, let json = try? Self.modelJSON(sequential) else { return }
        try train().writeString(tag: "keras", text: json, step: 0, plugin: "graph_keras_model", pluginContent: Data("1".utf8))
    }

    /// tf_keras 2.21's `model.to_json()` of a built model: the `.h5` model config with every layer entry
    /// in `serialize_keras_object`'s form (`module`, `class_name`, `config`, `registered_name`, and a
    /// `build_config` with the layer's input shape after the `InputLayer`), then `keras_version` and
    /// `backend`.
    static func modelJSON(_ model: Sequential) throws -> String {
        var json = try model.serializedModelConfig()
        json["keras_version"] = .string(TFKerasHDF5.kerasVersion)
        json["backend"] = "tensorflow"
        return JSONValue.object(json).serialized
    }

    /// Counts the batch and writes `batch_<key>` summaries every `updateFreq` batches.
    public func onTrainBatchEnd(_ batch: Int, logs: Logs, model: Model) throws {
        trainStep += 1
        guard model.distributionStrategy.isChief else { return }
        try writeGraphIfReady(model)
        guard let interval = batchInterval, trainStep % interval == 0 else { return }
        let writer = try train()
        for key in Self.ordered(logs.keys, model) {
            try writer.writeScalar(tag: "batch_" + key, value: logs[key]!, step: trainStep)
        }
    }

    /// Writes the epoch's summaries (see the table above) and flushes both files.
    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {
        guard model.distributionStrategy.isChief else { return }
        let keys = Self.ordered(logs.keys, model)
        let trainKeys = keys.filter { !$0.hasPrefix("val_") }
        let validationKeys = keys.filter { $0.hasPrefix("val_") }
        let step = Int64(epoch)
        // Keras' on_test_end (during fit's validation, before on_epoch_end): the evaluation at `iterations`.
        if !validationKeys.isEmpty, let optimizer = model.optimizer {
            let writer = try validation()
            for key in validationKeys {
                try writer.writeScalar(tag: "evaluation_\(key.dropFirst(4))_vs_iterations", value: logs[key]!,
                                       step: optimizer.iterationCount)
            }
        }
        var trainLogs = trainKeys.map { ($0, logs[$0]!) }
        // Keras' _collect_learning_rate: a schedule's value at the current iterations.
        if let optimizer = model.optimizer, case .schedule(let schedule) = optimizer.learningRate {
            let rate = try schedule(Double(optimizer.iterationCount))
            trainLogs.removeAll { $0.0 == "learning_rate" }
            trainLogs.append(("learning_rate", rate))
        }
        if !trainLogs.isEmpty {
            let writer = try train()
            for (key, value) in trainLogs { try writer.writeScalar(tag: "epoch_" + key, value: value, step: step) }
        }
        if !validationKeys.isEmpty {
            let writer = try validation()
            for key in validationKeys { try writer.writeScalar(tag: "epoch_" + key.dropFirst(4), value: logs[key]!, step: step) }
        }
        if histogramFreq > 0 && epoch % histogramFreq == 0 {
            let writer = try train()
            for layer in model.layers {
                for weight in layer.weights {
                    try writer.writeHistogram(tag: Self.histogramTag(weight.name), values: weight.untrackedValue.doubles, step: step)
                }
            }
        }
        try trainWriter?.flush()
        try validationWriter?.flush()
    }

    /// Flushes and closes the files.
    public func onTrainEnd(model: Model) throws {
        try closeWriters()
    }

    private func closeWriters() throws {
        try trainWriter?.close()
        try validationWriter?.close()
    }

    /// tf_keras' histogram tag: the TF variable name (`dense/kernel:0`, Descent's `dense/kernel` with
    /// TF's `:0`) with `:` replaced by `_`, then `/histogram`.
    static func histogramTag(_ weightName: String) -> String {
        let name = weightName.contains(":") ? weightName : weightName + ":0"
        return name.replacingOccurrences(of: ":", with: "_") + "/histogram"
    }

    /// The log keys in Keras' order: `loss`, the compiled metrics in order, then the rest sorted; each
    /// `val_` key after the train keys in the same order.
    static func ordered(_ keys: Dictionary<String, Double>.Keys, _ model: Model) -> [String] {
        let base = model.metricsNames
        func rank(_ key: String) -> (Int, Int, String) {
            let isValidation = key.hasPrefix("val_")
            let name = isValidation ? String(key.dropFirst(4)) : key
            return (isValidation ? 1 : 0, base.firstIndex(of: name) ?? base.count, name)
        }
        return keys.sorted { rank($0) < rank($1) }
    }
}
