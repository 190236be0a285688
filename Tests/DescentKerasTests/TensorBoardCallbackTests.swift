import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import DescentTensorBoard
import Foundation
import Testing

/// Keras' `TensorBoard` callback: the event files `fit` leaves, compared with what tf_keras 2.21 writes
/// (Tests/Fixtures/tensorboard/tf_keras_reference.json, scripts/golden/generate_tensorboard_reference.py).
@Suite(.serialized) struct TensorBoardCallbackTests {
    func temporaryLogDir(_ name: String) -> String {
        (NSTemporaryDirectory() as NSString).appendingPathComponent("descent-tb-keras-\(name)-\(UUID().uuidString)")
    }

    /// The fixture's model and data: Dense(3, relu, "dense") → Dense(2, softmax, "dense_1"), 16 samples of
    /// 4 features, labels `x[:, 0] > 0`.
    func model(learningRate: Hyperparameter = 0.1) throws -> (Sequential, Tensor, Tensor) {
        GlobalRandom.setSeed(7)
        let x = try Tensor.randomNormal(shape: [16, 4], seed: 11)
        let labels = stride(from: 0, to: 64, by: 4).map { x.doubles[$0] > 0 ? Int64(1) : 0 }
        let y = Tensor(labels)
        let model = try Sequential([try Dense(3, activation: .relu, name: "dense"), try Dense(2, activation: .softmax, name: "dense_1")])
        model.compile(optimizer: try SGD(learningRate: learningRate), loss: SparseCategoricalCrossentropy(),
                      metrics: [try Metrics.compiled("accuracy", yTrueShape: [1], yPredShape: [1, 2])])
        return (model, x, y)
    }

    func floats(_ values: [Double]) -> [Float] { values.map { Float($0) } }

    func events(_ dir: String) throws -> [Tensorboard_Event] {
        let files = try EventFileReader.eventFiles(in: dir)
        try #require(files.count == 1, "\(dir): \(files)")
        return try EventFileReader.events(atPath: files[0])
    }

    @Test func fitWritesEpochLossAndAccuracyToTrainAndValidation() throws {
        let dir = temporaryLogDir("fit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, x, y) = try model()
        let history = try model.fit(x, y, batchSize: 4, epochs: 2, verbose: .silent, callbacks: [TensorBoard(logDir: dir)],
                                    validationSplit: 0.25, shuffle: false)
        let train = EventFileReader.scalars(try events((dir as NSString).appendingPathComponent("train")))
        let validation = EventFileReader.scalars(try events((dir as NSString).appendingPathComponent("validation")))
        #expect(train["epoch_loss"]?.map(\.step) == [0, 1])
        #expect(train["epoch_loss"]?.map(\.value) == floats(history["loss"]))
        #expect(train["epoch_accuracy"]?.map(\.value) == floats(history["accuracy"]))
        #expect(validation["epoch_loss"]?.map(\.value) == floats(history["val_loss"]))
        #expect(validation["epoch_accuracy"]?.map(\.step) == [0, 1])
        #expect(validation["epoch_accuracy"]?.map(\.value) == floats(history["val_accuracy"]))
        // tf_keras' evaluation at the optimizer's iterations: 3 batches per epoch.
        #expect(validation["evaluation_loss_vs_iterations"]?.map(\.step) == [3, 6])
        #expect(validation["evaluation_loss_vs_iterations"]?.map(\.value) == floats(history["val_loss"]))
        #expect(train["epoch_learning_rate"] == nil, "a constant learning rate is not logged (as tf_keras)")
        #expect(Set(train.keys) == ["epoch_loss", "epoch_accuracy"])
    }

    /// One event as the fixture describes it: step, tag, plugin, dtype, shape (or the file version).
    func shape(of event: Tensorboard_Event) -> String {
        if case .fileVersion(let v)? = event.what { return "\(event.step) file_version \(v)" }
        guard case .summary(let s)? = event.what else { return "\(event.step) other" }
        return s.value.map { v in
            let dtype: String = switch v.tensor.dtype {
            case .dtFloat: "DT_FLOAT"
            case .dtDouble: "DT_DOUBLE"
            case .dtString: "DT_STRING"
            default: "\(v.tensor.dtype)"
            }
            return "\(event.step) \(v.tag) \(v.metadata.pluginData.pluginName) \(dtype) \(v.tensor.tensorShape.dim.map(\.size))"
        }.joined(separator: "; ")
    }

    func shape(ofFixtureEvent e: JSONValue) -> String {
        let o = e.objectValue!
        let step = o["step"]?.intValue ?? -1
        if let v = o["file_version"]?.stringValue { return "\(step) file_version \(v)" }
        return (o["values"]?.arrayValue ?? []).map { value in
            let v = value.objectValue!
            let shape = (v["shape"]?.arrayValue ?? []).map { Int64($0.intValue!) }
            return "\(step) \(v["tag"]!.stringValue!) \(v["plugin_name"]!.stringValue!) \(v["dtype"]!.stringValue!) \(shape)"
        }.joined(separator: "; ")
    }

    /// Every event tf_keras writes in four configurations, in order, with the same step, tag, plugin,
    /// dtype and shape (tf_keras' batch summaries come from its verbose=1 run; see the callback's notes).
    @Test(arguments: ["epoch", "batch_histograms", "every_2_batches", "lr_schedule"])
    func eventsMatchTFKeras(_ name: String) throws {
        let fixture = try KerasFixtures.load("tensorboard/tf_keras_reference.json")
        let c = try #require(fixture["cases"]?.objectValue?[name]?.objectValue)
        let callbackArgs = c["callback"]?.objectValue ?? [:]
        let updateFreq: TensorBoard.UpdateFrequency = switch callbackArgs["update_freq"] {
        case .string("batch")?: .batch
        case .int(let n)?: .everyBatches(n)
        default: .epoch
        }
        let callback = TensorBoard(logDir: temporaryLogDir(name), histogramFreq: callbackArgs["histogram_freq"]?.intValue ?? 0,
                                   writeGraph: callbackArgs["write_graph"]?.boolValue ?? true, updateFreq: updateFreq)
        defer { try? FileManager.default.removeItem(atPath: callback.logDir) }
        let schedule = c["learning_rate_schedule"]?.boolValue == true
        let (model, x, y) = try model(learningRate: schedule
            ? .schedule(ExponentialDecay(initialLearningRate: 0.1, decaySteps: 1, decayRate: 0.5)) : 0.1)
        let epochs = c["fit"]?.objectValue?["epochs"]?.intValue ?? 2
        try model.fit(x, y, batchSize: 4, epochs: epochs, verbose: .silent, callbacks: [callback], validationSplit: 0.25, shuffle: false)
        let runs = try #require(c["runs"]?.objectValue)
        #expect(runs.keys.sorted() == ["train", "validation"])
        for run in runs.keys {
            let expected = (runs[run]?.objectValue?["events"]?.arrayValue ?? []).map(shape(ofFixtureEvent:))
            let ours = try events((callback.logDir as NSString).appendingPathComponent(run)).map(shape(of:))
            #expect(ours == expected, "\(name)/\(run)")
        }
        if schedule {
            // tf_keras: the schedule at the iterations after the epoch (3 and 6 steps), in float32.
            let train = EventFileReader.scalars(try events((callback.logDir as NSString).appendingPathComponent("train")))
            #expect(train["epoch_learning_rate"]?.map(\.value) == [0.0125, 0.0015625])
        }
    }

    /// Everything at once: graph, batch scalars, histograms, validation. With `DESCENT_TENSORBOARD_LOG_DIR`
    /// set, the logs are written there and kept, for `scripts/check_tensorboard_events.py DIR`.
    @Test func writesAFullLogDir() throws {
        let kept = ProcessInfo.processInfo.environment["DESCENT_TENSORBOARD_LOG_DIR"]
        let dir = kept ?? temporaryLogDir("full")
        defer { if kept == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let (model, x, y) = try model()
        try model.fit(x, y, batchSize: 4, epochs: 3, verbose: .silent,
                      callbacks: [TensorBoard(logDir: dir, histogramFreq: 1, updateFreq: .batch)], validationSplit: 0.25, shuffle: false)
        let train = try events((dir as NSString).appendingPathComponent("train"))
        let scalars = EventFileReader.scalars(train)
        #expect(scalars["batch_loss"]?.map(\.step) == Array(1...9))
        #expect(scalars["epoch_accuracy"]?.map(\.step) == [0, 1, 2])
        let histograms = train.flatMap(\.summary.value).filter { $0.metadata.pluginData.pluginName == "histograms" }
        #expect(histograms.map(\.tag) == Array(repeating: ["dense/kernel_0/histogram", "dense/bias_0/histogram",
                                                             "dense_1/kernel_0/histogram", "dense_1/bias_0/histogram"], count: 3).flatMap { $0 })
        // Each histogram counts every element of its weight (kernel 4x3 = 12, ...).
        let totals = histograms.prefix(4).map { v in
            stride(from: 16, to: v.tensor.tensorContent.count, by: 24).map { offset in
                Double(bitPattern: v.tensor.tensorContent[offset..<offset + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            }.reduce(0, +)
        }
        #expect(totals == [12, 3, 6, 2])
    }

    @Test func graphIsTheModelsTFKerasJSON() throws {
        let dir = temporaryLogDir("graph")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, x, y) = try model()
        try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, callbacks: [TensorBoard(logDir: dir)])
        let events = try events((dir as NSString).appendingPathComponent("train"))
        let graph = try #require(events.dropFirst().first?.summary.value.first)
        #expect(graph.tag == "keras")
        #expect(graph.metadata.pluginData.pluginName == "graph_keras_model")
        #expect(graph.metadata.pluginData.content == Data("1".utf8))
        let text = String(decoding: try #require(graph.tensor.stringVal.first), as: UTF8.self)
        let json = try #require(try JSONValue(parsing: text).objectValue)
        #expect(json["class_name"] == "Sequential")
        #expect(json["keras_version"] == "2.21.0")
        #expect(json["backend"] == "tensorflow")
        // tf_keras' to_json of the fixture's model: InputLayer + 2 Dense, each in serialize_keras_object's form.
        let layerValues = try #require(json["config"]?.objectValue?["layers"]?.arrayValue)
        let layers = layerValues.compactMap(\.objectValue)
        #expect(layers.map { $0.keys } == [["module", "class_name", "config", "registered_name"],
                                           ["module", "class_name", "config", "registered_name", "build_config"],
                                           ["module", "class_name", "config", "registered_name", "build_config"]])
        #expect(layers.map { $0["class_name"] } == ["InputLayer", "Dense", "Dense"])
        #expect(layers.map { $0["module"] } == ["keras.layers", "keras.layers", "keras.layers"])
        #expect(layers[2]["build_config"] == .object(["input_shape": [.null, 3]]))
        #expect(layers[1]["config"]?.objectValue?["units"] == 3)
        // No validation data: no validation folder.
        #expect(!FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("validation")))
    }

    @Test func onlyTheChiefWrites() throws {
        let root = temporaryLogDir("replicas")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Each replica is given its own folder, so that a write by replica 1 would show.
        let dirs = try onReplicas(2) { strategy -> String in
            try strategy.scope {
                let model = try InProcessReplicaTests.model()
                let (x, y) = try DistributedFitTests.data(seed: 8)
                let dir = (root as NSString).appendingPathComponent("r\(strategy.replicaID)")
                try model.fit(x, y, batchSize: 10, epochs: 2, verbose: .silent,
                              callbacks: [TensorBoard(logDir: dir, histogramFreq: 1, updateFreq: .batch)], validationSplit: 0.2, seed: 1)
                return dir
            }
        }
        let chief = EventFileReader.scalars(try events((dirs[0] as NSString).appendingPathComponent("train")))
        #expect(chief["epoch_loss"]?.map(\.step) == [0, 1])
        #expect(FileManager.default.fileExists(atPath: (dirs[0] as NSString).appendingPathComponent("validation")))
        #expect(!FileManager.default.fileExists(atPath: dirs[1]), "replica 1 wrote \(dirs[1])")
    }

    @Test func everyFitStartsNewFiles() throws {
        let dir = temporaryLogDir("refit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, x, y) = try model()
        let callback = TensorBoard(logDir: dir, writeGraph: false)
        try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, callbacks: [callback])
        let first = try #require(callback.trainWriter)
        #expect(first.isClosed)
        try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, callbacks: [callback])
        let files = try EventFileReader.eventFiles(in: (dir as NSString).appendingPathComponent("train"))
        #expect(files.count == 2)
        for file in files {
            #expect(EventFileReader.scalars(try EventFileReader.events(atPath: file))["epoch_loss"]?.map(\.step) == [0])
        }
    }

    @Test func badArgumentsAndUnwritableFoldersThrowNamingThem() throws {
        let (model, x, y) = try model()
        let negative = #expect(throws: TrainingError.self) {
            try model.fit(x, y, epochs: 1, verbose: .silent, callbacks: [TensorBoard(logDir: temporaryLogDir("x"), histogramFreq: -1)])
        }
        #expect(negative.map { "\($0)" }?.contains("histogramFreq") == true)
        let zero = #expect(throws: TrainingError.self) {
            try model.fit(x, y, epochs: 1, verbose: .silent, callbacks: [TensorBoard(logDir: temporaryLogDir("x"), updateFreq: .everyBatches(0))])
        }
        #expect(zero.map { "\($0)" }?.contains("updateFreq") == true)
        // A log folder under a regular file cannot be created (even as root).
        let blocker = temporaryLogDir("blocker")
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data([0])))
        defer { try? FileManager.default.removeItem(atPath: blocker) }
        let logDir = (blocker as NSString).appendingPathComponent("logs")
        let error = #expect(throws: TensorBoardError.self) {
            try model.fit(x, y, epochs: 1, verbose: .silent, callbacks: [TensorBoard(logDir: logDir)])
        }
        #expect(error.map { "\($0)" }?.contains(logDir) == true)
    }
}
