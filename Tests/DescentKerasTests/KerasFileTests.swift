import DescentAutodiff
import DescentHDF5
@_spi(DescentInternals) import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

// Keras' own model files (issue 10): files tf_keras 2.21 and Keras 3.15.1 wrote
// (Tests/Fixtures/keras_files, scripts/golden/generate_keras_files.py) load in Descent with Python's
// predictions and continue training with Python's next step; files Descent writes load back with the
// same model, weights and optimizer state; damaged files throw errors naming the file and the place.

enum KerasFileFixtures {
    static let folder = KerasFixtures.root.appendingPathComponent("keras_files")
    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
    static func load(_ name: String) throws -> JSONObject { try KerasFixtures.load("keras_files/\(name).json") }

    /// Every number in a nested array, row-major.
    static func flat(_ value: JSONValue?) -> [Double] {
        guard let value else { return [] }
        if let a = value.arrayValue { return a.flatMap { flat($0) } }
        return value.doubleValue.map { [$0] } ?? []
    }

    /// The fixture's inputs (`x`, with `x_dtype`).
    static func inputs(_ c: JSONObject) throws -> Tensor {
        let rows = c["x"]?.arrayValue ?? []
        let values = flat(c["x"])
        let shape = [rows.count, rows.first?.arrayValue?.count ?? 0]
        return try Tensor(shape: shape, scalars: values.map { Float($0) })
    }

    static func labels(_ c: JSONObject) throws -> Tensor { try Tensor(flat(c["y"]).map { Int64($0) }) }

    /// Whether `a` and `b` agree within `tolerance`, absolute and relative.
    static func close(_ a: [Double], _ b: [Double], _ tolerance: Double) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    static func temporary(_ name: String) -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-keras-files-\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent(name).path
    }
}

@Suite struct KerasFileTests {
    typealias F = KerasFileFixtures

    /// Loads `file`, checks predictions and optimizer state, takes one more step and checks it.
    func checkContinues(_ caseName: String, file: String, tolerance: Double = 1e-6) throws {
        let c = try F.load(caseName)
        let model = try loadModel(fromFile: F.path(file))
        let x = try F.inputs(c), y = try F.labels(c)
        #expect(F.close(try model.predict(x).doubles, F.flat(c["predictions"]), tolerance), "\(caseName): predictions")
        let optimizer = try #require(model.optimizer, "\(caseName): the optimizer is restored")
        #expect(optimizer.iterationCount == Int64(c["iterations"]?.intValue ?? -1))
        let saved = (c["optimizer_weights"]?.arrayValue ?? []).map { F.flat($0) }
        let keras3 = file.hasSuffix(".keras")
        let ours = keras3 ? try #require(try model.keras3OptimizerVariables()).map(\.untrackedValue.doubles) : optimizer.getWeights().map(\.doubles)
        #expect(ours.count == saved.count, "\(caseName): optimizer weight count")
        for (i, (a, b)) in zip(ours, saved).enumerated() { #expect(F.close(a, b, 1e-7), "\(caseName): optimizer weight \(i)") }
        // One more step on the rows Python used.
        let step = try #require(c["step"]?.objectValue)
        let rows = F.flat(step["x_rows"]).map { Int($0) }
        let loss = try #require(try model.trainOnBatch(try x.slice(rows: rows[0]..<rows[1]), try y.slice(rows: rows[0]..<rows[1]))["loss"])
        #expect(abs(loss - (step["step_loss"]?.doubleValue ?? .nan)) <= 1e-5, "\(caseName): step loss \(loss)")
        let expectedWeights = (step["weights_after_step"]?.arrayValue ?? []).map { F.flat($0.objectValue?["value"]) }
        for (i, (w, e)) in zip(model.getWeights(), expectedWeights).enumerated() {
            #expect(F.close(w.doubles, e, tolerance), "\(caseName): weight \(i) after the step")
        }
        let expectedSlots = (step["optimizer_weights_after_step"]?.arrayValue ?? []).map { F.flat($0) }
        let after = keras3 ? try #require(try model.keras3OptimizerVariables()).map(\.untrackedValue) : optimizer.getWeights()
        for (i, (w, e)) in zip(after, expectedSlots).enumerated() {
            #expect(F.close(w.doubles, e, tolerance), "\(caseName): optimizer weight \(i) after the step")
        }
    }

    @Test func tfKerasAdamModelContinuesTraining() throws { try checkContinues("tfkeras_adam", file: "tfkeras_adam.h5") }
    @Test func tfKerasSGDMomentumModelContinuesTraining() throws { try checkContinues("tfkeras_sgd_momentum", file: "tfkeras_sgd_momentum.h5") }
    @Test func tfKerasEmbeddingModelContinuesTraining() throws { try checkContinues("tfkeras_embedding", file: "tfkeras_embedding.h5") }
    @Test func keras3AdamModelContinuesTraining() throws { try checkContinues("keras3_adam", file: "keras3_adam.keras") }

    /// Keras 3 optimizers saved by Python Keras continue in Descent as the Keras 3 class, on Keras 3's
    /// numbers: AdamW with weight decay and EMA, Lion, and a LossScaleOptimizer (its scale and counter
    /// are restored; `trainStep` scales the loss by it).
    @Test(arguments: ["keras3_adamw_ema", "keras3_lion", "keras3_loss_scale_adam"])
    func keras3OptimizerModelContinuesTraining(_ name: String) throws {
        try checkContinues(name, file: name + ".keras")
        let model = try loadModel(fromFile: F.path(name + ".keras"))
        let c = try F.load(name)
        #expect(model.optimizer is Keras3.Optimizer)
        #expect(model.optimizer.map { String(describing: type(of: $0)) } == c["optimizer_class"]?.stringValue)
    }

    @Test(arguments: ["tfkeras_adam", "tfkeras_sgd_momentum", "tfkeras_embedding", "tfkeras_dropout_nocompile", "keras3_adam", "keras3_dropout_nocompile"])
    func weightsFilesLoadIntoTheArchitecture(_ caseName: String) throws {
        let c = try F.load(caseName)
        let keras3 = caseName.hasPrefix("keras3")
        let model = try loadModel(fromFile: F.path(caseName + (keras3 ? ".keras" : ".h5")), compile: false)
        #expect(model.optimizer == nil)
        let fresh = try loadModel(fromFile: F.path(caseName + (keras3 ? ".keras" : ".h5")), compile: false)
        try fresh.setWeights(try fresh.weights.map { try Tensor.zeros(shape: $0.shape, dtype: $0.dtype) })
        try fresh.loadWeights(fromFile: F.path(caseName + (keras3 ? ".weights.h5" : "_weights.h5")))
        let x = try F.inputs(c)
        #expect(F.close(try fresh.predict(x).doubles, F.flat(c["predictions"]), 1e-6))
        #expect(try fresh.predict(x) == model.predict(x))
    }

    @Test func uncompiledModelLoadsWithoutOptimizer() throws {
        for file in ["tfkeras_dropout_nocompile.h5", "tfkeras_dropout_nocompile_compiled_noopt.h5", "keras3_dropout_nocompile.keras"] {
            let model = try loadModel(fromFile: F.path(file))
            #expect(model.optimizer == nil, "\(file)")
            #expect(model.layers.map { String(describing: type(of: $0)) } == ["Dense", "Dropout", "Dense"], "\(file)")
        }
    }

    /// Descent writes each format, reads it back, and continues exactly as the original model.
    @Test(arguments: ["m.h5", "m.keras"])
    func descentFilesRoundTripAndResumeExactly(_ name: String) throws {
        GlobalRandom.setSeed(11)
        let x = try Tensor.randomNormal(shape: [24, 5], seed: 3)
        let y = try Tensor((0..<24).map { Int64($0 % 3) })
        let model = try Sequential([Dense(7, activation: .relu, kernelRegularizer: .l2(0.01)), Dense(3)])
        model.compile(optimizer: try Adam(learningRate: 0.02), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [try Metrics.get("sparse_categorical_accuracy")])
        try model.fit(x, y, batchSize: 8, epochs: 2, verbose: .silent, shuffle: false)
        let path = F.temporary(name)
        try model.save(toFile: path)
        let loaded = try loadModel(fromFile: path)
        #expect(try loaded.predict(x) == model.predict(x))
        #expect(loaded.optimizer?.getWeights() == model.optimizer?.getWeights())
        try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, shuffle: false)
        let history = try loaded.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, shuffle: false)
        #expect(loaded.metrics.map(\.name) == ["sparse_categorical_accuracy"])
        #expect(history["sparse_categorical_accuracy"].count == 1)
        #expect(loaded.getWeights() == model.getWeights())
        #expect(loaded.optimizer?.getWeights() == model.optimizer?.getWeights())
        // The weights alone, in both layouts.
        for weights in ["w.weights.h5", "w.h5"] {
            let wpath = F.temporary(name + "." + weights)  // the two cases run in parallel: one file each
            try model.saveWeights(toFile: wpath)
            try loaded.setWeights(try loaded.weights.map { try Tensor.zeros(shape: $0.shape, dtype: $0.dtype) })
            try loaded.loadWeights(fromFile: wpath)
            #expect(loaded.getWeights() == model.getWeights(), "\(weights)")
        }
    }

    /// Keras 3's load_weights restores the optimizer's variables too; so does Descent's for a compiled model.
    @Test func keras3WeightsFilesCarryTheOptimizerState() throws {
        GlobalRandom.setSeed(12)
        let x = try Tensor.randomNormal(shape: [16, 4], seed: 1), y = try Tensor((0..<16).map { Int64($0 % 2) })
        func make() throws -> Sequential {
            let m = try Sequential([Dense(5, activation: .relu), Dense(2)])
            m.compile(optimizer: try Adam(learningRate: 0.03), loss: SparseCategoricalCrossentropy(fromLogits: true))
            return m
        }
        let model = try make()
        try model.fit(x, y, batchSize: 4, epochs: 2, verbose: .silent, shuffle: false)
        let path = F.temporary("state.weights.h5")
        try model.saveWeights(toFile: path)
        let other = try make()
        try other.build(inputShape: [1, 4])
        try other.loadWeights(fromFile: path)
        #expect(other.getWeights() == model.getWeights())
        #expect(other.optimizer?.getWeights() == model.optimizer?.getWeights())
    }

    @Test func filesAreWrittenTheSameEachTime() throws {
        GlobalRandom.setSeed(5)
        let model = try Sequential([Dense(3)])
        try model.build(inputShape: [1, 2])
        let a = F.temporary("same-a.h5"), b = F.temporary("same-b.h5")
        try model.saveWeights(toFile: a)
        try model.saveWeights(toFile: b)
        #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)))
    }

    // MARK: Errors a file can cause

    @Test func mismatchedModelsAndFilesNameThePlace() throws {
        // A weights file for another architecture.
        let wrong = try Sequential([Dense(5), Dense(3)])
        try wrong.build(inputShape: [1, 8])
        let shape = #expect(throws: HDF5Error.self) { try wrong.loadWeights(fromFile: F.path("tfkeras_adam_weights.h5")) }
        #expect(shape?.description.contains("tfkeras_adam_weights.h5: /dense/dense/kernel:0: has shape [8, 6]") == true, "\(String(describing: shape))")
        let count = try Sequential([Dense(3)])
        try count.build(inputShape: [1, 8])
        let layers = #expect(throws: HDF5Error.self) { try count.loadWeights(fromFile: F.path("keras3_adam.weights.h5")) }
        #expect(layers?.description.contains("/layers/") == true || layers?.description.contains("holds") == true, "\(String(describing: layers))")
        // A model file that is a weights file.
        let notModel = #expect(throws: ModelFileError.self) { try loadModel(fromFile: F.path("tfkeras_adam_weights.h5")) }
        #expect(notModel?.description.contains("has no 'model_config'") == true)
        #expect(throws: ModelFileError.self) { try loadModel(fromFile: F.temporary("model.txt")) }
        let weightsOnly = #expect(throws: ModelFileError.self) { try count.save(toFile: F.temporary("m.weights.h5")) }
        #expect(weightsOnly?.description.contains("use saveWeights") == true)
    }

    /// The byte that made libhdf5 1.10.8 overrun a buffer in-process: the size of the global heap object
    /// holding "Adam/dense/kernel/v:0".
    @Test func aDamagedGlobalHeapIsAnErrorNotACrash() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: F.path("tfkeras_adam.h5"))))
        bytes[4346] ^= 0xA5
        let damaged = F.temporary("damaged-heap.h5")
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let error = #expect(throws: HDF5Error.self) { _ = try loadModel(fromFile: damaged) }
        #expect(error?.description.contains("damaged") == true, "\(String(describing: error))")
    }

    @Test func unknownLayerClassIsNamed() throws {
        let root = HDF5Group()
        root.setAttribute("model_config", .string(#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4]}}, {"class_name": "Conv3D", "config": {"name": "c"}}]}}"#))
        let path = F.temporary("unknown-layer.h5")
        try root.write(to: path)
        let error = #expect(throws: ModelFileError.self) { try loadModel(fromFile: path) }
        #expect(error?.description.contains("model_config.config.layers[1]") == true, "\(String(describing: error))")
        #expect(error?.description.contains("unknown layer class 'Conv3D'") == true)
    }

    /// Every truncation of both formats throws; byte flips throw or load, and never crash (a flip in an
    /// HDF5 global heap can make libhdf5 1.10.8 overrun a buffer: `HDF5File` probes in a child process).
    @Test(arguments: ["tfkeras_adam.h5", "keras3_adam.keras"])
    func truncatedAndDamagedModelFilesThrow(_ name: String) throws {
        do {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: F.path(name))))
            let damaged = F.temporary("damaged-" + name)
            for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 31)) {
                try Data(bytes[0..<length]).write(to: URL(fileURLWithPath: damaged))
                #expect(throws: (any Error).self, "\(name) truncated to \(length)") { _ = try loadModel(fromFile: damaged) }
            }
            for offset in stride(from: 0, to: bytes.count, by: 401) {
                var copy = bytes
                copy[offset] ^= 0xA5
                try Data(copy).write(to: URL(fileURLWithPath: damaged))
                do { _ = try loadModel(fromFile: damaged) } catch is HDF5Error {} catch is ModelFileError {} catch is TrainingError {} catch is KerasError {}
            }
        }
    }
}
