@testable import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// EarlyStopping against tf_keras 2.21's decisions (Tests/Fixtures/callbacks/early_stopping.json,
/// scripts/golden/generate_callbacks.py): the epochs that run, the stopped and best epochs, and the weights
/// left after training ends (each epoch's weights are `[epoch]`, so restored weights name their epoch).
@Suite struct EarlyStoppingTests {
    @Test func decisionsMatchTfKeras() throws {
        let fixture = try KerasFixtures.load("callbacks/early_stopping.json")
        let cases = try #require(fixture["cases"]?.arrayValue)
        #expect(cases.count >= 10)
        for item in cases {
            let c = try #require(item.objectValue)
            let name = try #require(c["name"]?.stringValue)
            let options = try #require(c["options"]?.objectValue)
            let monitor = try #require(c["monitor"]?.stringValue)
            let values = try #require(c["values"]?.arrayValue).map { try #require($0.doubleValue) }
            let mode: MonitorMode = options["mode"]?.stringValue.flatMap(MonitorMode.init(rawValue:)) ?? .auto
            let stopper = EarlyStopping(
                monitor: monitor, minDelta: options["min_delta"]?.doubleValue ?? 0,
                patience: Int(options["patience"]?.doubleValue ?? 0), mode: mode,
                baseline: options["baseline"]?.doubleValue,
                restoreBestWeights: options["restore_best_weights"]?.boolValue ?? false,
                startFromEpoch: Int(options["start_from_epoch"]?.doubleValue ?? 0))
            let model = try Sequential([Dense(1, useBias: false)])
            try model.build(inputShape: [1, 1])
            try stopper.onTrainBegin(model: model)
            var ran: [Int] = []
            for (epoch, value) in values.enumerated() {
                try model.setWeights([try Tensor(shape: [1, 1], scalars: [Float(epoch)])])
                try stopper.onEpochEnd(epoch, logs: [monitor: value], model: model)
                ran.append(epoch)
                if model.stopTraining { break }
            }
            try stopper.onTrainEnd(model: model)
            let expectedEpochs = try #require(c["epochs"]?.arrayValue).map { Int(try #require($0.doubleValue)) }
            #expect(ran == expectedEpochs, "\(name): epochs")
            let stopped = Int(try #require(c["stopped_epoch"]?.doubleValue))
            #expect((stopper.stoppedEpoch ?? 0) == stopped, "\(name): stopped epoch")
            #expect(stopper.bestEpoch == Int(try #require(c["best_epoch"]?.doubleValue)), "\(name): best epoch")
            #expect(Double(model.getWeights()[0].doubles[0]) == (try #require(c["final_weight"]?.doubleValue)), "\(name): weights at the end")
        }
    }
}

/// The one-hot-labels-to-a-sparse-loss mix-up is named as such (issue 13).
@Suite struct SparseLabelShapeTests {
    @Test func oneHotLabelsToTheSparseLossSayWhatToUse() throws {
        let logits = try Tensor.randomNormal(shape: [32, 10], seed: 3)
        let oneHot = try Tensor.zeros(shape: [32, 10])
        do {
            _ = try SparseCategoricalCrossentropy(fromLogits: true).call(oneHot, logits)
            Issue.record("one-hot labels were accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("sparse labels need shape [32], got one-hot [32, 10]"), "\(text)")
            #expect(text.contains("CategoricalCrossentropy"), "\(text)")
        }
        // Through fit, the tutorial's path.
        let model = try Sequential([Dense(10)])
        model.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = try Tensor.randomNormal(shape: [32, 4], seed: 5)
        #expect { try model.fit(x, oneHot, batchSize: 32, epochs: 1, verbose: .silent) } throws: { error in
            "\(error)".contains("got one-hot [32, 10]")
        }
        // Sparse labels still work, as do [batch, 1] labels.
        _ = try SparseCategoricalCrossentropy(fromLogits: true).call(try Tensor.zeros(shape: [32]), logits)
        _ = try SparseCategoricalCrossentropy(fromLogits: true).call(try Tensor.zeros(shape: [32, 1]), logits)
    }
}
