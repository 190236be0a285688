import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Synchronization
import Testing

/// The digits split shared by the training tests (loaded once).
enum DigitsData {
    static let split: (train: Dataset, test: Dataset) = try! Digits.load()
}

private func accuracy(_ model: Sequential, _ data: Dataset) throws -> Double {
    let predicted = try model.predict(data.x).argmax(axis: -1)
    return try predicted.equal(data.y).cast(to: .float32).mean().item()
}

@Suite(.serialized) struct TrainingTests {
    @Test func digitsSplitIsTheDocumentedOne() throws {
        let (train, test) = DigitsData.split
        #expect(train.x.shape == [1437, 64] && train.y.shape == [1437])
        #expect(test.x.shape == [360, 64] && test.y.shape == [360])
        #expect(try train.x.max().item() == 1 && train.x.doubles.min() == 0)
        #expect(try train.y.scalars(as: Int64.self).prefix(5) == [0, 1, 2, 3, 4])
    }

    /// The seed's custom loop: a tape, gradients, clipping, applyGradients.
    @Test func customTrainingLoopReachesTheAccuracyBar() throws {
        GlobalRandom.setSeed(0)
        let (train, test) = DigitsData.split
        let model = try Sequential([Dense(128, activation: .relu), Dense(64, activation: .relu), Dense(10)])
        let optimizer = try Adam(learningRate: 0.001)
        let lossFunction = SparseCategoricalCrossentropy(fromLogits: true)
        var generator = SeededGenerator(seed: 1)
        for _ in 0..<15 {
            var order = Array(0..<train.count)
            order.shuffle(using: &generator)
            for start in stride(from: 0, to: train.count, by: 32) {
                let batch = Array(order[start..<min(train.count, start + 32)])
                let x = try train.x.gather(batch), y = try train.y.gather(batch)
                let tape = GradientTape()
                let loss = try tape.record { try lossFunction(y, try model(x, training: true)) }
                let variables = model.trainableWeights
                let grads = try tape.gradient(of: loss, wrt: variables)
                let clipped = try GradientClipping.clipByGlobalNorm(grads.compactMap { $0 }, 5)
                try optimizer.applyGradients(Array(zip(clipped.map { Optional($0) }, variables)))
            }
        }
        #expect(try accuracy(model, test) >= 0.9)
    }

    @Test func fitReachesTheAccuracyBarAndRecordsHistory() throws {
        GlobalRandom.setSeed(0)
        let (train, test) = DigitsData.split
        let model = try Sequential([Dense(128, activation: .relu), Dense(64, activation: .relu), Dense(10)])
        model.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [try SparseCategoricalAccuracy(name: "accuracy")])
        let output = Mutex("")
        let history = try model.fit(train.x, train.y, batchSize: 32, epochs: 15, validationData: (test.x, test.y), seed: 0,
                                    output: { text in output.withLock { $0 += text } })
        #expect(history.epochs == Array(0..<15))
        #expect(Set(history.history.keys) == ["loss", "accuracy", "val_loss", "val_accuracy"])
        #expect(history["loss"].last! < history["loss"].first!)
        let scores = try model.evaluate(test.x, test.y, verbose: .silent)
        #expect(model.metricsNames == ["loss", "accuracy"])
        #expect(Set(scores.keys) == ["loss", "accuracy"])
        #expect(scores["accuracy"]! >= 0.9)
        #expect(abs(scores["accuracy"]! - history["val_accuracy"].last!) < 1e-6)
        // Not a terminal: one plain line per epoch.
        let lines = output.withLock { $0 }.split(separator: "\n")
        #expect(lines.count == 15)
        #expect(lines[2].hasPrefix("Epoch 3/15 - 45/45 - "))
        #expect(lines[2].contains(" - loss: ") && lines[2].contains(" - val_accuracy: "))
    }

    /// The seed's "pass var_list as a closure": the model has no variables before its first call.
    @Test func minimizeWithAVarListClosureBeforeTheModelExists() throws {
        GlobalRandom.setSeed(3)
        let model = try Sequential([Dense(4, activation: .relu), Dense(2, activation: .sigmoid)])
        #expect(model.trainableWeights.isEmpty)
        let x = try Tensor.randomNormal(shape: [8, 3], seed: 1), y = try Tensor.randomUniform(shape: [8, 2], seed: 2)
        let optimizer = try SGD(learningRate: 0.1)
        let loss = { try Losses.mse(y, try model(x)).mean() }
        let before = try loss().item()
        for _ in 0..<20 { try optimizer.minimize(loss, varList: { model.trainableWeights }) }
        #expect(model.trainableWeights.count == 4)
        #expect(try loss().item() < before)
    }

    @Test func embeddingTrainsThroughTheSparsePath() throws {
        GlobalRandom.setSeed(5)
        let embedding = try Embedding(inputDim: 10, outputDim: 3)
        let model = try Sequential([embedding, Flatten(), Dense(1)])
        model.compile(optimizer: try Adagrad(learningRate: 0.1), loss: MeanSquaredError())
        let x = Tensor([1, 3, 3, 7] as [Int64]), y = try Tensor(shape: [4, 1], scalars: [1, -1, -1, 2] as [Float])
        let xs = try x.reshaped(to: [4, 1])
        _ = try model(xs)
        let table = try #require(embedding.embeddings)
        let before = table.untrackedValue
        let tape = GradientTape()
        let value = try tape.record { try MeanSquaredError()(y, try model(xs)) }
        let grad = try tape.gradient(of: value, wrt: table)
        #expect(grad?.indexedSlices != nil)
        try model.fit(xs, y, batchSize: 4, epochs: 3, verbose: .silent)
        let after = table.untrackedValue
        for row in 0..<10 {
            let changed = try (0..<3).contains { try before.element(at: [row, $0]) != after.element(at: [row, $0]) }
            #expect(changed == [1, 3, 7].contains(row), "row \(row)")
        }
    }

    @Test func compileWithKerasNames() throws {
        GlobalRandom.setSeed(4)
        let model = try Sequential([Dense(3)])
        try model.compile(optimizer: "sgd", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"])
        let x = try Tensor.randomNormal(shape: [6, 2], seed: 1), y = Tensor([0, 1, 2, 0, 1, 2] as [Int64])
        let history = try model.fit(x, y, epochs: 1, verbose: .silent)
        #expect(history.history.keys.sorted() == ["accuracy", "loss"])
        #expect(model.optimizer is SGD)
        #expect(throws: (any Error).self) { try model.compile(optimizer: "sgd", loss: "hinge_of_doom") }
    }

    @Test func validationSplitHoldsOutTheLastSamples() throws {
        GlobalRandom.setSeed(6)
        let x = try Tensor.randomNormal(shape: [10, 2], seed: 1), y = try Tensor.randomNormal(shape: [10, 1], seed: 2)
        let model = try Sequential([Dense(1)])
        model.compile(optimizer: try SGD(), loss: MeanSquaredError())
        let steps = Mutex(0)
        let counter = LambdaCallback(onTrainBatchEnd: { _, _, _ in steps.withLock { $0 += 1 } })
        let history = try model.fit(x, y, batchSize: 4, epochs: 1, verbose: .silent, callbacks: [counter], validationSplit: 0.2)
        #expect(steps.withLock { $0 } == 2)  // 8 training samples in batches of 4
        let expected = try #require(try model.evaluate(try x.slice(rows: 8..<10), try y.slice(rows: 8..<10), verbose: .silent)["loss"])
        #expect(abs(history["val_loss"][0] - expected) < 1e-6)
    }

    @Test func initializersFollowKeras() throws {
        let glorot = try Initializer.glorotUniform(seed: 1).makeValue(shape: [64, 128]).doubles
        let limit = (6.0 / (64 + 128)).squareRoot()
        #expect(glorot.allSatisfy { abs($0) <= limit })
        #expect(glorot.max()! > limit * 0.95)
        let he = try Initializer.heNormal(seed: 2).makeValue(shape: [200, 300]).doubles
        let std = (he.map { $0 * $0 }.reduce(0, +) / Double(he.count)).squareRoot()
        #expect(abs(std - (2.0 / 200).squareRoot()) < 0.005)
        #expect(try Initializer.glorotUniform(seed: 3).makeValue(shape: [3, 3]) == Initializer.glorotUniform(seed: 3).makeValue(shape: [3, 3]))
        #expect(try Initializer.zeros.makeValue(shape: [2]).doubles == [0, 0])
        #expect(try Initializer.constant(2.5).makeValue(shape: [2], dtype: .float64).doubles == [2.5, 2.5])
        #expect(Initializer(kerasName: "he_normal") == .heNormal(seed: nil))
        #expect(Initializer(kerasName: "orthogonal_magic") == nil)
        GlobalRandom.setSeed(9)
        let a = try Dense(3)
        _ = try a(try Tensor.zeros(shape: [1, 2]))
        GlobalRandom.setSeed(9)
        let b = try Dense(3)
        _ = try b(try Tensor.zeros(shape: [1, 2]))
        #expect(a.kernel!.untrackedValue == b.kernel!.untrackedValue)
    }

    @Test func dropoutOnlyInTraining() throws {
        let layer = try Dropout(0.5, seed: 1)
        let x = try Tensor.ones(shape: [1000])
        #expect(try layer(x, training: false) == x)
        let dropped = try layer(x, training: true).doubles
        #expect(Set(dropped) == [0, 2])
        #expect(abs(Double(dropped.filter { $0 == 0 }.count) - 500) < 60)
    }

    @Test func regularizersAddToTheLoss() throws {
        let dense = try Dense(2, kernelInitializer: .ones, kernelRegularizer: .l2(0.5))
        let model = try Sequential([dense])
        _ = try model(try Tensor.zeros(shape: [1, 3]))
        // 0.5 · Σ 1² over a 3×2 kernel.
        #expect(try model.regularizationLosses().map { try $0.item() } == [3])
    }

    @Test func summaryListsLayersAndParameters() throws {
        let model = try Sequential([Dense(128, activation: .relu, name: "hidden"), Dense(10, name: "logits")], name: "mlp")
        try model.build(inputShape: [1, 64])
        let text = model.summary()
        #expect(text.contains("Model: \"mlp\""))
        #expect(text.contains("hidden (Dense)") && text.contains("(None, 128)") && text.contains("8320"))
        #expect(text.contains("Total params: 9610"))
    }

    @Test func callbacks() throws {
        GlobalRandom.setSeed(1)
        let x = try Tensor.randomNormal(shape: [64, 4], seed: 3)
        let y = try (x.sum(axis: 1, keepDims: true) * 0.5)
        let model = try Sequential([Dense(8, activation: .relu), Dense(1)])
        model.compile(optimizer: try SGD(learningRate: 0.05), loss: MeanSquaredError())
        let rates = Mutex<[Double]>([])
        let scheduler = LearningRateScheduler { epoch, lr in epoch == 0 ? lr : lr / 2 }
        let recorder = LambdaCallback(onEpochEnd: { _, _, model in
            rates.withLock { $0.append(model.optimizer!.learningRate.numericValue!) }
        })
        let stopper = EarlyStopping(monitor: "loss", patience: 0, mode: .max)  // "max" of a falling loss stops at once
        let history = try model.fit(x, y, batchSize: 16, epochs: 10, verbose: .silent, callbacks: [scheduler, recorder, stopper])
        #expect(history.epochs == [0, 1])
        #expect(stopper.stoppedEpoch == 1)
        #expect(rates.withLock { $0 }.map { Float($0) } == [0.05, 0.025])
        let missing = EarlyStopping(monitor: "val_loss")
        #expect(throws: TrainingError.self) { try model.fit(x, y, epochs: 1, verbose: .silent, callbacks: [missing]) }
    }

    @Test func checkpointsSaveAndLoadWeights() throws {
        GlobalRandom.setSeed(2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("descent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let x = try Tensor.randomNormal(shape: [32, 3], seed: 4), y = try Tensor.randomNormal(shape: [32, 1], seed: 5)
        let model = try Sequential([Dense(4), Dense(1)])
        model.compile(optimizer: try Adam(), loss: MeanSquaredError())
        let checkpoint = ModelCheckpoint(filePath: directory.appendingPathComponent("w-{epoch}.weights.h5").path, monitor: "loss",
                                         saveWeightsOnly: true)
        try model.fit(x, y, epochs: 2, verbose: .silent, callbacks: [checkpoint])
        #expect(checkpoint.savedFiles.map { URL(fileURLWithPath: $0).lastPathComponent } == ["w-1.weights.h5", "w-2.weights.h5"])
        let copy = try Sequential([Dense(4), Dense(1)])
        try copy.build(inputShape: [1, 3])
        try copy.loadWeights(fromFile: checkpoint.savedFiles[1])
        #expect(try copy.predict(x) == model.predict(x))
        let wrong = try Sequential([Dense(5), Dense(1)])
        try wrong.build(inputShape: [1, 3])
        let error = #expect(throws: (any Error).self) { try wrong.loadWeights(fromFile: checkpoint.savedFiles[1]) }
        #expect("\(String(describing: error))".contains("[3, 5]"))
        #expect(throws: (any Error).self) { try copy.loadWeights(fromFile: directory.appendingPathComponent("none").path) }
    }

    @Test func callerMistakesAreThrown() throws {
        let model = try Sequential([Dense(2)])
        let x = try Tensor.zeros(shape: [4, 3]), y = try Tensor.zeros(shape: [5, 2])
        #expect(throws: TrainingError.self) { try model.fit(x, y, verbose: .silent) }  // not compiled
        model.compile(optimizer: try SGD(), loss: MeanSquaredError())
        let shapes = #expect(throws: TrainingError.self) { try model.fit(x, y, verbose: .silent) }
        #expect(shapes?.description.contains("[4, 3]") == true && shapes?.description.contains("[5, 2]") == true)
        #expect(throws: TrainingError.self) { try model.fit(x, try Tensor.zeros(shape: [4, 2]), batchSize: 0, verbose: .silent) }
        #expect(throws: TrainingError.self) { try model.fit(x, try Tensor.zeros(shape: [4, 2]), verbose: .silent, validationSplit: 1) }
        _ = try model(x)
        let features = #expect(throws: TensorError.self) { try model(try Tensor.zeros(shape: [4, 7])) }
        #expect(features?.description.contains("[4, 7]") == true)
    }
}

@Suite struct ProgressBarTests {
    @Test func terminalBarRedrawsInPlace() {
        let text = Mutex("")
        let time = Mutex(0.0)
        let bar = ProgressBar(total: 45, interactive: true, write: { s in text.withLock { $0 += s } },
                              clock: { time.withLock { $0 } })
        time.withLock { $0 = 0.5 }
        bar.update(step: 12, metrics: [("loss", 0.23456), ("accuracy", 0.93)])
        #expect(text.withLock { $0 } == "\r12/45 [=======>......................] - ETA: 1s - loss: 0.2346 - accuracy: 0.9300")
        time.withLock { $0 = 1.0 }
        bar.finish(metrics: [("loss", 0.2), ("val_loss", 0.00012)])
        #expect(text.withLock { $0 }.hasSuffix("\r45/45 [==============================] - 1s 22ms/step - loss: 0.2000 - val_loss: 1.2000e-04\n"))
    }

    @Test func plainOutputWritesOneLine() {
        let text = Mutex("")
        let bar = ProgressBar(total: 3, interactive: false, write: { s in text.withLock { $0 += s } }, clock: { 0 })
        bar.update(step: 1, metrics: [("loss", 1)])
        bar.finish(metrics: [("loss", 1)])
        #expect(text.withLock { $0 } == "3/3 - 0s 0us/step - loss: 1.0000\n")
    }
}

@Suite struct SVGChartTests {
    @Test func svgIsValidXMLWithOnePolylinePerCurve() throws {
        let svg = SVGChart.render([
            ChartPanel(title: "Loss", yLabel: "loss", series: [ChartSeries(name: "train", values: [2, 1, 0.5]),
                                                               ChartSeries(name: "val <&>", values: [2.5, 1.5, 1], dashed: true)]),
            ChartPanel(title: "Accuracy", yLabel: "accuracy", series: [ChartSeries(name: "train", values: [0.5, 0.8, 0.9])]),
        ], title: "Run")
        let document = try XMLDocument(xmlString: svg)
        let polylines = try document.nodes(forXPath: "//*[local-name()='polyline']")
        #expect(polylines.count == 3)
        #expect(svg.contains("val &lt;&amp;&gt;"))
        let first = try #require((polylines[0] as? XMLElement)?.attributes?.first { $0.name == "points" }?.stringValue)
        #expect(first.split(separator: " ").count == 3)
        #expect(try document.nodes(forXPath: "//*[local-name()='text']").count > 10)  // ticks, labels, legend
    }
}
