import DescentAutodiff
import DescentDistribute
import DescentHDF5
@_spi(DescentInternals) import DescentOptimizers
@_spi(DescentInternals) import DescentTensor
import Foundation

/// A callback whose state a training backup carries (``BackupAndRestore``): EarlyStopping's wait and
/// best, ModelCheckpoint's best.
public protocol BackupStateCallback: Callback {
    /// The state, as JSON values and tensors.
    func backupState() throws -> (values: JSONObject, tensors: [Tensor])
    /// Restores a state ``backupState()`` gave.
    /// - Throws: ``TrainingError`` when the state does not fit this callback.
    func restoreBackupState(_ values: JSONObject, tensors: [Tensor]) throws
}

/// Where `fit` resumes: the point a backup was saved at.
struct FitResumePoint {
    /// The epoch to run (0-based); the backup was made after `step` of its batches.
    var epoch: Int
    var step: Int
    /// The shuffle generator at the start of `epoch` (before its shuffle).
    var shuffle: SeededGenerator
    /// The epoch's running loss sum and sample count after `step` batches.
    var lossSum: Double
    var seen: Int
    /// Each metric's `total` and `count`.
    var metrics: [[Double]]
    /// The batch stream at the start of `epoch` (``BatchStream``; with `stepsPerEpoch` an epoch may start
    /// inside a pass): the batches of the current pass already taken, and the passes finished.
    var streamOffset = 0
    var streamPasses = 0
    /// The optimizer's learning rate when it is a number (callbacks such as LearningRateScheduler set it).
    var learningRate: Double?
}

/// Keras' fault-tolerant training (`tf.keras.callbacks.BackupAndRestore`): `fit` backs up the model, the
/// optimizer's state and everything that drives the rest of the run, and the next `fit` given the same
/// folder resumes where the last backup was made. A run that finishes deletes its backup.
///
/// A backup holds, in one HDF5 file written atomically (`<backupDir>/backup.h5`, so a kill at any moment
/// leaves the previous backup whole): the weights (`/model_weights`) and the optimizer's weights
/// (`/optimizer_weights`) in tf_keras' layout, and as the attribute `descent_training_state` the epoch
/// and step, the shuffle generator, every Dropout layer's generator, ``GlobalRandom``, the epoch's
/// running loss and metric states, the learning rate, and the state of every ``BackupStateCallback``
/// (EarlyStopping, ModelCheckpoint). A run killed and restarted therefore ends with weights and optimizer
/// state bit-identical to an uninterrupted run.
///
/// ```swift
/// try model.fit(x, y, epochs: 20, callbacks: [BackupAndRestore(backupDir: "backup")])
/// ```
///
/// Under a strategy with several replicas (``Model/distributionStrategy``) the chief alone writes
/// (and deletes) the file, which also holds every replica's random generators (`replica_random`, in
/// rank order, gathered at each backup); every replica restores from the same file (one host or a
/// shared filesystem), each taking its own generators, so that a killed job rerun with the same folder
/// ends bit-identical to an uninterrupted one. Replicas that find different backups stop with an error.
public final class BackupAndRestore: Callback {
    /// When backups are made.
    public enum SaveFrequency: Sendable, Equatable {
        /// After every epoch (Keras' `save_freq="epoch"`).
        case epoch
        /// After every `n` batches (Keras' `save_freq=n`), and after every epoch.
        case steps(Int)
    }

    /// The folder of the backup.
    public let backupDir: String
    /// When backups are made.
    public let saveFreq: SaveFrequency
    /// Whether a finished run deletes its backup (Keras' `delete_checkpoint`).
    public let deleteCheckpoint: Bool
    /// The backup file.
    public var backupPath: String { backupDir.hasSuffix("/") ? backupDir + "backup.h5" : backupDir + "/backup.h5" }
    /// How many backups this run made.
    public private(set) var backupsMade = 0

    /// - Throws: ``TrainingError`` for an empty folder name or a step count below 1.
    public init(backupDir: String, saveFreq: SaveFrequency = .epoch, deleteCheckpoint: Bool = true) throws {
        guard !backupDir.isEmpty else { throw TrainingError.invalidArgument("BackupAndRestore: backupDir is empty") }
        if case .steps(let n) = saveFreq, n < 1 {
            throw TrainingError.invalidArgument("BackupAndRestore: saveFreq must be .epoch or .steps(n) with n >= 1, got \(n)")
        }
        self.backupDir = backupDir
        self.saveFreq = saveFreq
        self.deleteCheckpoint = deleteCheckpoint
    }

    /// Deletes the backup of a finished run (with several replicas: the chief, which wrote it).
    public func onTrainEnd(model: Model) throws {
        if deleteCheckpoint && model.distributionStrategy.isChief { unlink(backupPath) }
    }

    // MARK: Saving

    /// After batch `step` (1-based count of batches done in `epoch`): a backup every `n` batches.
    /// `metricStates`: each metric's `(total, count)` summed over replicas (`nil`: one replica, read
    /// from the metrics).
    func batchEnded(model: Model, callbacks: [Callback], epoch: Int, step: Int, steps: Int,
                    epochStart: (generator: SeededGenerator, offset: Int, passes: Int),
                    lossSum: Double, seen: Int, metricStates: [[Double]]? = nil) throws {
        guard case .steps(let n) = saveFreq, (epoch * steps + step) % n == 0, step < steps else { return }
        try save(model: model, callbacks: callbacks, epoch: epoch, step: step, stream: epochStart, lossSum: lossSum, seen: seen,
                 metricStates: metricStates)
    }

    /// After epoch `epoch` (0-based) ended: the next run starts at `epoch + 1` at `stream`.
    func epochEnded(model: Model, callbacks: [Callback], epoch: Int, stream: (generator: SeededGenerator, offset: Int, passes: Int)) throws {
        try save(model: model, callbacks: callbacks, epoch: epoch + 1, step: 0, stream: stream, lossSum: 0, seen: 0)
    }

    static func hex(_ words: [UInt64]) -> JSONValue { .array(words.map { .string(String($0, radix: 16)) }) }

    /// The random state of this process: ``GlobalRandom`` and every Dropout layer's generator.
    private static func randomState(of model: Model) -> JSONObject {
        var dropout = JSONObject()
        for (i, layer) in model.flattenedLayers.dropFirst().enumerated() {
            if let d = layer as? Dropout { dropout[String(i)] = BackupAndRestore.hex(d.generatorState) }
        }
        return ["global_random": BackupAndRestore.hex(GlobalRandom.state), "dropout": .object(dropout)]
    }

    /// Writes a backup. With several replicas every replica calls it (it gathers each replica's random
    /// state, a collective) and the chief alone writes the file, with the weights (the same on every
    /// replica), the shared state, and every replica's generators (`replica_random`, in rank order).
    private func save(model: Model, callbacks: [Callback], epoch: Int, step: Int,
                      stream: (generator: SeededGenerator, offset: Int, passes: Int),
                      lossSum: Double, seen: Int, metricStates: [[Double]]? = nil) throws {
        let shuffle = stream.generator
        guard let optimizer = model.optimizer else { return }
        let strategy = model.distributionStrategy
        var replicaRandom: [JSONValue]?
        if strategy.numReplicasInSync > 1 {
            let mine = Array(JSONValue.object(BackupAndRestore.randomState(of: model)).serialized.utf8)
            let all = strategy.collectives.sync { strategy.communicator.allGather(bytes: mine) }
            replicaRandom = try all.map { try JSONValue(parsing: String(decoding: $0, as: UTF8.self)) }
            // A sharded optimizer's full state is gathered by a collective: every replica reads it (it is
            // kept until the next step), then the chief alone writes it.
            _ = optimizer.weights
            guard strategy.isChief else {
                backupsMade += 1
                return
            }
        }
        let root = HDF5Group()
        TFKerasHDF5.writeWeights(of: model, into: root.addGroup("model_weights"))
        TFKerasHDF5.writeOptimizer(optimizer, into: root)
        let random = BackupAndRestore.randomState(of: model)
        var state: JSONObject = ["version": 1, "epoch": .int(epoch), "step": .int(step), "shuffle": BackupAndRestore.hex(shuffle.state),
                                 "global_random": random["global_random"] ?? .null]
        state["dropout"] = random["dropout"] ?? .object([:])
        state["loss_sum"] = .double(lossSum)
        if stream.offset != 0 || stream.passes != 0 { state["stream"] = .array([.int(stream.offset), .int(stream.passes)]) }
        state["seen"] = .int(seen)
        if let metricStates {
            state["metrics"] = .array(metricStates.map { .array($0.map { .double($0) }) })
        } else {
            state["metrics"] = .array(model.metrics.map { m in .array(m.stateValues.map { .double($0) }) })
        }
        if let replicaRandom { state["replica_random"] = .array(replicaRandom) }
        state["learning_rate"] = optimizer.learningRate.numericValue.map { .double($0) } ?? .null
        let tensors = root.addGroup("descent_callback_tensors")
        var states: [JSONValue] = []
        for (i, c) in callbacks.enumerated() {
            guard let c = c as? any BackupStateCallback else { continue }
            let (values, list) = try c.backupState()
            states.append(.object(["index": .int(i), "class": .string(String(describing: type(of: c))), "state": .object(values),
                                   "tensors": .int(list.count)]))
            for (j, t) in list.enumerated() { tensors.addDataset("\(i)/\(j)", t) }
        }
        state["callbacks"] = .array(states)
        root.setAttribute("descent_training_state", .string(JSONValue.object(state).serialized))
        do {
            try FileManager.default.createDirectory(atPath: backupDir, withIntermediateDirectories: true)
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey].flatMap { $0 as? any Error }
            let reason = underlying.map { ($0 as NSError).localizedDescription } ?? "\(error)"
            throw TrainingError.invalidArgument("BackupAndRestore: cannot create the backup folder \(backupDir): \(reason)")
        }
        try root.write(to: backupPath)
        backupsMade += 1
    }

    // MARK: Restoring

    /// Restores the model, optimizer, generators and callbacks from the backup, if there is one, and
    /// says where `fit` resumes. Everything is read and checked before anything is assigned.
    /// - Throws: `HDF5Error` or ``TrainingError`` naming the backup file when it does not fit this model
    ///   and these callbacks.
    func restore(model: Model, callbacks: [Callback]) throws -> FitResumePoint? {
        guard FileManager.default.fileExists(atPath: backupPath) else { return nil }
        let file = try HDF5File(readingFrom: backupPath)
        func bad(_ why: String) -> TrainingError { TrainingError.invalidArgument("BackupAndRestore: \(backupPath): \(why)") }
        guard let text = try file.attribute("descent_training_state", of: "/")?.singleString,
              let state = try? JSONValue(parsing: text).objectValue else {
            throw bad("not a Descent backup (no descent_training_state attribute)")
        }
        guard let optimizer = model.optimizer else { throw bad("the model is not compiled") }
        let weights = try TFKerasHDF5.readWeights(file, at: "/model_weights", for: model)
        guard let optimizerWeights = try TFKerasHDF5.readOptimizerWeights(file, for: optimizer, model: model) else {
            throw bad("has no optimizer weights")
        }
        func words(_ v: JSONValue?, _ field: String) throws -> SeededGenerator {
            guard let items = v?.arrayValue, let state = Optional(items.compactMap { $0.stringValue.flatMap { UInt64($0, radix: 16) } }),
                  state.count == items.count, let g = SeededGenerator(state: state) else {
                throw bad("\(field) is not a generator state")
            }
            return g
        }
        guard let epoch = state["epoch"]?.intValue, epoch >= 0, let step = state["step"]?.intValue, step >= 0,
              let seen = state["seen"]?.intValue, let lossSum = state["loss_sum"]?.doubleValue else {
            throw bad("epoch, step, seen or loss_sum is missing")
        }
        let shuffle = try words(state["shuffle"], "shuffle")
        var stream: (Int, Int)?
        if let value = state["stream"] {
            guard let items = value.arrayValue, items.count == 2, let offset = items[0].intValue, let passes = items[1].intValue,
                  offset >= 0, passes >= 0 else { throw bad("stream is not [offset, passes]") }
            stream = (offset, passes)
        }
        // A multi-worker backup holds every replica's generators: this replica takes its own (replica r
        // of a backup made by fewer replicas takes entry r mod their count).
        var random = state
        if let replicas = state["replica_random"]?.arrayValue, !replicas.isEmpty {
            guard let mine = replicas[model.distributionStrategy.replicaID % replicas.count].objectValue else {
                throw bad("replica_random is malformed")
            }
            random = mine
        }
        let global = try words(random["global_random"], "global_random")
        var dropouts: [(Dropout, SeededGenerator)] = []
        let savedDropout = random["dropout"]?.objectValue ?? JSONObject()
        for (i, layer) in model.flattenedLayers.dropFirst().enumerated() {
            guard let d = layer as? Dropout else { continue }
            dropouts.append((d, try words(savedDropout[String(i)], "dropout[\(i)]")))
        }
        guard savedDropout.keys.count == dropouts.count else { throw bad("was made for a model with \(savedDropout.keys.count) Dropout layers") }
        let metricStates = try (state["metrics"]?.arrayValue ?? []).map { v -> [Double] in
            guard let items = v.arrayValue, items.count < 1 << 24 else { throw bad("metrics is malformed") }
            return try items.map { item in
                guard let d = item.doubleValue else { throw bad("metrics is malformed") }
                return d
            }
        }
        guard metricStates.count == model.metrics.count || step == 0 else {
            throw bad("was made with \(metricStates.count) metrics, the model has \(model.metrics.count)")
        }
        if step > 0 {
            for (saved, m) in zip(metricStates, model.metrics) where saved.count != m.stateValues.count {
                throw bad("metric '\(m.name)' has a state of \(m.stateValues.count) numbers, the backup's has \(saved.count)")
            }
        }
        // Callback states, matched by position and class.
        var restores: [(any BackupStateCallback, JSONObject, [Tensor])] = []
        let savedCallbacks = state["callbacks"]?.arrayValue ?? []
        let current = callbacks.enumerated().compactMap { i, c in (c as? any BackupStateCallback).map { (i, $0) } }
        guard savedCallbacks.count == current.count else {
            throw bad("was made with \(savedCallbacks.count) callbacks that keep state, this fit has \(current.count)")
        }
        for (saved, (i, c)) in zip(savedCallbacks, current) {
            guard let o = saved.objectValue, o["index"]?.intValue == i, o["class"]?.stringValue == String(describing: type(of: c)),
                  let values = o["state"]?.objectValue, let count = o["tensors"]?.intValue, count >= 0, count < 1 << 16 else {
                throw bad("callback \(i) (\(type(of: c))) does not match the backup's")
            }
            let tensors = try (0..<count).map { try file.readDataset(at: "/descent_callback_tensors/\(i)/\($0)") }
            restores.append((c, values, tensors))
        }
        // Everything checked: assign.
        try model.setWeights(weights)
        try optimizer.setWeights(optimizerWeights)
        try GlobalRandom.restore(state: global.state)
        for (d, g) in dropouts { try d.restoreGenerator(state: g.state) }
        for (c, values, tensors) in restores { try c.restoreBackupState(values, tensors: tensors) }
        let learningRate = state["learning_rate"]?.doubleValue
        if let learningRate { optimizer.learningRate = .number(learningRate) }
        var point = FitResumePoint(epoch: epoch, step: step, shuffle: shuffle, lossSum: lossSum, seen: seen, metrics: metricStates,
                                   learningRate: learningRate)
        if let position = stream {
            point.streamOffset = position.0
            point.streamPasses = position.1
        }
        return point
    }
}

extension EarlyStopping: BackupStateCallback {
    public func backupState() throws -> (values: JSONObject, tensors: [Tensor]) {
        (["best": bestValue.map { .double($0) } ?? .null, "wait": .int(waitCount)], bestWeightValues ?? [])
    }

    public func restoreBackupState(_ values: JSONObject, tensors: [Tensor]) throws {
        guard let wait = values["wait"]?.intValue, wait >= 0 else {
            throw TrainingError.invalidArgument("EarlyStopping: the backup's state has no valid 'wait'")
        }
        restore(best: values["best"]?.doubleValue, wait: wait, bestWeights: tensors.isEmpty ? nil : tensors)
    }
}

extension ModelCheckpoint: BackupStateCallback {
    public func backupState() throws -> (values: JSONObject, tensors: [Tensor]) {
        (["best": bestValue.map { .double($0) } ?? .null], [])
    }

    public func restoreBackupState(_ values: JSONObject, tensors: [Tensor]) throws {
        restore(best: values["best"]?.doubleValue)
    }
}
