@testable import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// `fit` and `evaluate` options against tf_keras 2.21 runs (Tests/Fixtures/training/fit_options.json,
/// scripts/golden/generate_fit_options.py): sample and class weights, stepsPerEpoch's batch stream,
/// validation with weights, validationFreq; each run's history and final weights.
@Suite struct FitOptionTests {
    typealias F = KerasFileFixtures

    static func fixture() throws -> JSONObject { try KerasFixtures.load("training/fit_options.json") }

    static func model(_ f: JSONObject, oneHot: Bool = false) throws -> Sequential {
        let model = try Sequential([Input(shape: [4]), Dense(3)])
        try model.setWeights([try Tensor(shape: [4, 3], scalars: F.flat(f["kernel"]).map { Float($0) }),
                              try Tensor(shape: [3], scalars: F.flat(f["bias"]).map { Float($0) })])
        let loss: any LossIdentifier = oneHot ? try CategoricalCrossentropy(fromLogits: true) : try SparseCategoricalCrossentropy(fromLogits: true)
        try model.compile(optimizer: try SGD(learningRate: 0.1), loss: loss, metrics: ["accuracy"])
        return model
    }

    static func data(_ f: JSONObject) throws -> (x: Tensor, y: Tensor, oneHot: Tensor, weights: Tensor) {
        let x = try Tensor(shape: [10, 4], scalars: F.flat(f["x"]).map { Float($0) })
        let labels = F.flat(f["y"]).map { Int($0) }
        let oneHot = try Tensor(shape: [10, 3], scalars: labels.flatMap { l in (0..<3).map { Float($0 == l ? 1 : 0) } })
        return (x, try Tensor(labels.map { Int64($0) }), oneHot, try Tensor(F.flat(f["sample_weight"]).map { Float($0) }))
    }

    @Test func fitOptionsMatchTfKeras() throws {
        let f = try Self.fixture()
        let (x, y, oneHot, weights) = try Self.data(f)
        let cases = try #require(f["cases"]?.arrayValue)
        #expect(cases.count == 9)
        for item in cases {
            let c = try #require(item.objectValue)
            let name = try #require(c["name"]?.stringValue)
            let o = try #require(c["options"]?.objectValue)
            let useOneHot = o["one_hot"]?.boolValue ?? false
            let model = try Self.model(f, oneHot: useOneHot)
            let classWeight = o["class_weight"]?.objectValue.map { d in
                Dictionary(uniqueKeysWithValues: d.map { (Int($0.key)!, $0.value.doubleValue!) })
            }
            let history = try model.fit(
                x, useOneHot ? oneHot : y, batchSize: o["batch_size"]?.intValue ?? 32, epochs: o["epochs"]?.intValue ?? 1,
                verbose: .silent, validationSplit: o["validation_split"]?.doubleValue ?? 0, shuffle: false,
                sampleWeight: (o["sample_weight"]?.boolValue ?? false) ? weights : nil, classWeight: classWeight,
                stepsPerEpoch: o["steps_per_epoch"]?.intValue, validationFreq: o["validation_freq"]?.intValue ?? 1)
            let expectedEpochs = F.flat(c["epochs"]).map { Int($0) }
            #expect(history.epochs == expectedEpochs, "\(name): epochs")
            let expected = try #require(c["history"]?.objectValue)
            #expect(Set(history.history.keys) == Set(expected.keys), "\(name): keys")
            for (key, values) in expected {
                #expect(F.close(history[key], F.flat(values), 1e-5), "\(name): \(key) \(history[key]) vs \(F.flat(values))")
            }
            let expectedWeights = (c["weights"]?.arrayValue ?? []).map { F.flat($0) }
            for (w, e) in zip(model.getWeights(), expectedWeights) {
                #expect(F.close(w.doubles, e, 1e-5), "\(name): weights")
            }
        }
    }

    @Test func evaluateReturnsADictionaryWeightedAsTfKeras() throws {
        let f = try Self.fixture()
        let (x, y, _, weights) = try Self.data(f)
        let model = try Self.model(f)
        let expected = try #require(f["evaluate"]?.objectValue)
        var printed = ""
        let plain = try model.evaluate(x, y, batchSize: 4, verbose: .progressBar, output: { printed += $0 })
        #expect(model.metricsNames == ["loss", "accuracy"])
        for (k, v) in try #require(expected["plain"]?.objectValue) { #expect(abs(plain[k]! - v.doubleValue!) < 1e-6, "\(k)") }
        let weighted = try model.evaluate(x, y, batchSize: 4, sampleWeight: weights, verbose: .silent)
        for (k, v) in try #require(expected["weighted"]?.objectValue) { #expect(abs(weighted[k]! - v.doubleValue!) < 1e-6, "\(k)") }
        // verbose: Keras' finished progress line, once.
        #expect(printed.hasPrefix("3/3 - "), "\(printed)")
        #expect(printed.contains(" - loss: 0.8210 - accuracy: 0.6000"), "\(printed)")
        #expect(printed.hasSuffix("\n") && printed.filter { $0 == "\n" }.count == 1)
    }

    @Test func weightErrorsNameWhatIsExpected() throws {
        let f = try Self.fixture()
        let (x, y, _, _) = try Self.data(f)
        let model = try Self.model(f)
        let before = model.getWeights().map(\.doubles)
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        #expect(message { try model.fit(x, y, verbose: .silent, sampleWeight: try Tensor([Float(1), 2])) }
            == "fit: sampleWeight has shape [2], expected [10] (one weight per sample)")
        #expect(message { try model.fit(x, y, verbose: .silent, classWeight: [0: 1, 2: 1]) }
            == "fit: classWeight must have the keys 0 to one less than the number of classes, got [0, 2]")
        #expect(message { try model.fit(x, y, verbose: .silent, classWeight: [0: 1, 1: 1]) }
            == "fit: label 2 of sample 2 has no class weight (classWeight has classes 0..<2)")
        #expect(message { try model.fit(x, y, verbose: .silent, stepsPerEpoch: 0) } == "fit: stepsPerEpoch must be positive, got 0")
        #expect(message { try model.fit(x, y, verbose: .silent, validationFreq: 0) } == "fit: validationFreq must be positive, got 0")
        #expect(message { try model.evaluate(x, y, sampleWeight: try Tensor(repeating: 1, shape: [10, 2]), verbose: .silent) }
            == "evaluate: sampleWeight has shape [10, 2], expected [10] (one weight per sample)")
        #expect(model.getWeights().map(\.doubles) == before, "a refused fit changed the weights")
    }

    @Test func stepsPerEpochResumesExactlyFromABackup() throws {
        // A run killed after epoch 1 (stopped by a callback) and resumed from its backup ends as the
        // uninterrupted run: the backup keeps the stream's place inside a pass.
        let f = try Self.fixture()
        let (x, y, _, _) = try Self.data(f)
        let folder = F.temporary("steps-backup-\(UInt64.random(in: 0..<UInt64.max))")
        let uninterrupted = try Self.model(f)
        try uninterrupted.fit(x, y, batchSize: 4, epochs: 4, verbose: .silent, stepsPerEpoch: 2, seed: 5)
        let first = try Self.model(f)
        let stopper = LambdaCallback(onEpochEnd: { epoch, _, model in if epoch == 1 { model.stopTraining = true } })
        try first.fit(x, y, batchSize: 4, epochs: 4, verbose: .silent, callbacks: [stopper, try BackupAndRestore(backupDir: folder, deleteCheckpoint: false)],
                      stepsPerEpoch: 2, seed: 5)
        let resumed = try Self.model(f)
        let history = try resumed.fit(x, y, batchSize: 4, epochs: 4, verbose: .silent, callbacks: [try BackupAndRestore(backupDir: folder)],
                                      stepsPerEpoch: 2, seed: 5)
        #expect(history.epochs == [2, 3])
        #expect(resumed.getWeights().map(\.doubles) == uninterrupted.getWeights().map(\.doubles))
    }
}

/// Confusion metrics compiled by name run through `fit` and `evaluate` (their state, not a mean).
@Suite struct CompiledConfusionMetricTests {
    @Test func aucPrecisionRecallInFitAndEvaluate() throws {
        var g = SeededGenerator(seed: 21)
        let x = try Tensor.randomNormal(shape: [40, 3], using: &g)
        let labels = try x.withUnsafeBufferPointer(as: Float.self) { p in (0..<40).map { Float(p[$0 * 3] + 0.3 * p[$0 * 3 + 1] > 0 ? 1 : 0) } }
        let y = try Tensor(shape: [40, 1], scalars: labels)
        let model = try Sequential([Dense(1, activation: .sigmoid, kernelInitializer: .glorotUniform(seed: 2))], inputShape: [3])
        // A zero learning rate: the predictions do not change, so the epoch's metrics are those of the data.
        try model.compile(optimizer: try SGD(learningRate: 0), loss: "binary_crossentropy", metrics: ["accuracy", "auc", "precision", "recall"])
        #expect(model.metricsNames == ["loss", "accuracy", "auc", "precision", "recall"])
        let history = try model.fit(x, y, batchSize: 8, epochs: 1, verbose: .silent, shuffle: false)
        let predictions = try model.predict(x)
        let auc = try AUC(), precision = try Precision(), recall = try Recall()
        for m in [auc, precision, recall] as [any TrainingMetric] { try m.update(yTrue: y, yPred: predictions) }
        #expect(abs(history["auc"][0] - auc.resultValue()) < 1e-6)
        #expect(abs(history["precision"][0] - precision.resultValue()) < 1e-6)
        #expect(abs(history["recall"][0] - recall.resultValue()) < 1e-6)
        let scores = try model.evaluate(x, y, batchSize: 16, verbose: .silent)
        #expect(abs(scores["auc"]! - auc.resultValue()) < 1e-6)
        #expect(auc.resultValue() > 0.1 && auc.resultValue() < 0.9)  // not a degenerate case
    }
}
