import DescentAutodiff
@testable import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// The model surface of issue 13: a Model subclass with its own call and trainStep, nested models,
/// compile with strings and objects mixed, Input / inputShape building at once, summary.
@Suite struct ModelTests {
    /// A subclassed model, as Keras' "customizing what happens in fit" writes it.
    final class CustomModel: Model {
        let hidden: Dense
        let output: Dense
        var customSteps = 0

        init() throws {
            hidden = try Dense(8, activation: .relu, kernelInitializer: .glorotUniform(seed: 1))
            output = try Dense(3, kernelInitializer: .glorotUniform(seed: 2))
            super.init(name: nil)
        }

        override func call(_ x: Tensor, training: Bool) throws -> Tensor { try output(hidden(x, training: training), training: training) }

        override func trainStep(_ data: Batch) throws -> Logs {
            customSteps += 1
            let tape = GradientTape()
            let (loss, yPred) = try tape.record { () throws -> (Tensor, Tensor) in
                let yPred = try self(data.x, training: true)
                return (try computeLoss(x: data.x, y: data.y, yPred: yPred, sampleWeight: data.sampleWeight), yPred)
            }
            let grads = try tape.gradient(of: loss, wrt: trainableWeights)
            try optimizer!.applyGradients(Array(zip(grads, trainableWeights)))
            try updateMetrics(yTrue: data.y, yPred: yPred)
            var logs = metricResults()
            logs["custom"] = Double(customSteps)
            return logs
        }
    }

    static func data() throws -> (Tensor, Tensor) {
        var g = SeededGenerator(seed: 3)
        let x = try Tensor.randomNormal(shape: [24, 4], using: &g)
        let labels = try x.withUnsafeBufferPointer(as: Float.self) { p in (0..<24).map { Int64(p[$0 * 4] > 0 ? (p[$0 * 4 + 1] > 0 ? 2 : 1) : 0) } }
        return (x, try Tensor(labels))
    }

    @Test func subclassedModelFindsItsLayersAndItsTrainStepDrivesFit() throws {
        let model = try CustomModel()
        #expect(model.name.hasPrefix("custom_model"))
        #expect(model.layers.map { $0 === model.hidden || $0 === model.output } == [true, true])
        try model.build(inputShape: [1, 4])
        #expect(model.trainableWeights.map(\.shape) == [[4, 8], [8], [8, 3], [3]])
        #expect(model.summary().contains("Trainable params: 67"))
        try model.compile(optimizer: try Adam(learningRate: 0.03), loss: try SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        let (x, y) = try Self.data()
        let history = try model.fit(x, y, batchSize: 8, epochs: 30, verbose: .silent)
        #expect(model.customSteps == 90)
        #expect(history["custom"].last == 90)
        #expect(history["loss"].last! < history["loss"].first!)
        #expect(history["accuracy"].last! > 0.8)
        // The default testStep still works for the subclass.
        let scores = try model.evaluate(x, y, verbose: .silent)
        #expect(Set(scores.keys) == ["loss", "accuracy"])
    }

    @Test func aModelWithoutCallSaysSo() throws {
        final class Empty: Model {}
        let model = Empty()
        #expect(throws: TrainingError.self) { _ = try model(try Tensor(shape: [1, 2], scalars: [Float(1), 2])) }
    }

    @Test func defaultTrainStepMatchesTheOverriddenOneWithTheSameRule() throws {
        // A subclass whose trainStep calls super trains exactly as a Sequential of the same layers.
        final class Wrapper: Model {
            let inner: Sequential
            init(_ inner: Sequential) { self.inner = inner; super.init(name: nil) }
            override func call(_ x: Tensor, training: Bool) throws -> Tensor { try inner(x, training: training) }
            override func trainStep(_ data: Batch) throws -> Logs { try super.trainStep(data) }
        }
        let (x, y) = try Self.data()
        func layers() throws -> [Layer] {
            [try Dense(5, activation: .tanh, kernelInitializer: .glorotUniform(seed: 7)), try Dense(3, kernelInitializer: .glorotUniform(seed: 8))]
        }
        let plain = try Sequential(try layers(), inputShape: [4])
        let wrapped = Wrapper(try Sequential(try layers(), inputShape: [4]))
        for m in [plain, wrapped] as [Model] {
            try m.compile(optimizer: try SGD(learningRate: 0.1), loss: try SparseCategoricalCrossentropy(fromLogits: true),
                          metrics: [try SparseCategoricalAccuracy()])
            try m.fit(x, y, batchSize: 6, epochs: 3, verbose: .silent, shuffle: false)
        }
        #expect(plain.getWeights().map(\.doubles) == wrapped.getWeights().map(\.doubles))
    }

    @Test func sequentialModelsNest() throws {
        let (x, y) = try Self.data()
        let body = try Sequential([Dense(6, activation: .relu, kernelInitializer: .glorotUniform(seed: 4)), Dense(3, kernelInitializer: .glorotUniform(seed: 5))],
                                  name: "body")
        let model = try Sequential([Input(shape: [4]), body, Softmaxless()])
        #expect(model.isBuilt && body.isBuilt)
        #expect(model.weights.count == 4 && model.trainableWeights.count == 4)
        let summary = model.summary()
        #expect(summary.contains("body (Sequential)") && summary.contains("(None, 3)"), "\(summary)")
        model.compile(optimizer: try Adam(learningRate: 0.05), loss: try SparseCategoricalCrossentropy(fromLogits: true))
        let history = try model.fit(x, y, batchSize: 8, epochs: 10, verbose: .silent)
        #expect(history["loss"].last! < history["loss"].first!)
        // Freezing the inner model freezes its weights.
        body.trainable = false
        #expect(model.trainableWeights.isEmpty && model.nonTrainableWeights.count == 4)
        // The nested model's weights round-trip through a weights file.
        let path = KerasFileFixtures.temporary("nested.weights.h5")
        try model.saveWeights(toFile: path)
        let saved = model.getWeights().map(\.doubles)
        try model.setWeights(model.getWeights().map { try $0 * 0.0 })
        try model.loadWeights(fromFile: path)
        #expect(model.getWeights().map(\.doubles) == saved)
    }

    @Test(arguments: ["nested.keras", "nested.h5"])
    func nestedSequentialModelFilesRoundTrip(_ file: String) throws {
        let (x, y) = try Self.data()
        let inner = try Sequential([Dense(5, activation: .tanh, kernelInitializer: .glorotUniform(seed: 4)), Dense(3)], name: "inner")
        let model = try Sequential([Input(shape: [4]), Dense(6, activation: .relu), inner])
        model.compile(optimizer: try Adam(learningRate: 0.01), loss: try SparseCategoricalCrossentropy(fromLogits: true))
        try model.fit(x, y, batchSize: 8, epochs: 2, verbose: .silent)
        let path = KerasFileFixtures.temporary(file)
        try model.save(toFile: path)
        let loaded = try loadModel(fromFile: path)
        #expect(loaded.layers.count == 2)
        let loadedInner = try #require(loaded.layers[1] as? Sequential)
        #expect(loadedInner.name == "inner" && loadedInner.layers.count == 2)
        #expect(try loaded.predict(x).doubles == model.predict(x).doubles)
        #expect(loaded.optimizer!.getWeights().map(\.doubles) == model.optimizer!.getWeights().map(\.doubles))
        // Both continue identically.
        try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, shuffle: false)
        try loaded.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, shuffle: false)
        #expect(loaded.getWeights().map(\.doubles) == model.getWeights().map(\.doubles))
    }

    /// An identity layer (stands for a layer after a nested model).
    final class Softmaxless: Layer {
        init() { super.init(name: nil) }
    }

    @Test func compileTakesStringsAndObjectsMixed() throws {
        let model = try Sequential([Dense(3)], inputShape: [4])
        try model.compile(optimizer: "adam", loss: try SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        #expect(model.optimizer is Adam)
        #expect(model.metricsNames == ["loss", "accuracy"])
        try model.compile(optimizer: try SGD(learningRate: 0.5), loss: "sparse_categorical_crossentropy",
                          metrics: [try SparseCategoricalAccuracy(name: "acc_object"), "accuracy"])
        #expect(model.metricsNames == ["loss", "acc_object", "accuracy"])
        let (x, y) = try Self.data()
        let history = try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent)
        #expect(Set(history.history.keys) == ["loss", "acc_object", "accuracy"])
        #expect(history["acc_object"] == history["accuracy"])
        do {
            try model.compile(optimizer: "adam", loss: "mse", metrics: ["no_such_metric"])
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("no_such_metric"))
        }
        #expect(throws: (any Error).self) { try model.compile(optimizer: "no_such_optimizer", loss: "mse") }
    }

    @Test func inputShapeBuildsAtOnceAndSummaryShowsShapes() throws {
        let model = try Sequential([Input(shape: [784]), Dense(128, activation: .relu), Dropout(0.2), Dense(10)], name: "mnist")
        #expect(model.isBuilt)
        #expect(model.inputShape == [1, 784])
        let summary = model.summary()
        #expect(summary.contains("(None, 128)") && summary.contains("(None, 10)") && !summary.contains("unbuilt"), "\(summary)")
        #expect(summary.contains("Total params: 101770"))
        let other = try Sequential([Dense(4)], inputShape: [2, 3])
        #expect(other.layers[0].builtInputShape == [1, 2, 3])
        do {
            _ = try Sequential([Dense(4), Input(shape: [3])])
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("must be the first layer"))
        }
        #expect(throws: KerasError.self) { try Input(shape: [0, 3]) }
        // Adding to a built model builds the new layer.
        try other.add(try Dense(2))
        #expect(other.layers[1].builtInputShape == [1, 2, 4])
    }

    @Test func trainOnBatchAndTestOnBatchReportThatBatch() throws {
        let (x, y) = try Self.data()
        let model = try Sequential([Dense(3, kernelInitializer: .glorotUniform(seed: 9))], inputShape: [4])
        try model.compile(optimizer: try SGD(learningRate: 0.1), loss: try SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        let before = try model.testOnBatch(x, y)
        let expected = try model.evaluate(x, y, batchSize: 24, verbose: .silent)
        #expect(abs(before["loss"]! - expected["loss"]!) < 1e-7)
        let logs = try model.trainOnBatch(x, y)
        #expect(abs(logs["loss"]! - before["loss"]!) < 1e-6)
        let after = try model.testOnBatch(x, y)
        #expect(after["loss"]! < before["loss"]!)
    }
}
