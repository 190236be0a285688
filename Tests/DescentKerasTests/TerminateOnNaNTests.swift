import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Synchronization
import Testing

/// Keras' `TerminateOnNaN`, `fit`'s batch-level stop, batch arithmetic for any batch size, and the
/// progress bar with non-finite metrics.
@Suite(.serialized) struct TerminateOnNaNTests {
    /// 32 samples of a linear regression, with SGD at a learning rate that diverges within a few batches.
    func divergingModel() throws -> (Sequential, Tensor, Tensor) {
        GlobalRandom.setSeed(3)
        let x = try Tensor.randomNormal(shape: [32, 3], seed: 4), y = try Tensor.randomNormal(shape: [32, 1], seed: 5)
        let model = try Sequential([try Dense(4), try Dense(1)])
        model.compile(optimizer: try SGD(learningRate: 1e30), loss: MeanSquaredError())
        return (model, x, y)
    }

    @Test func stopsAfterTheBatchWhereTheLossBecameNaNAsKeras() throws {
        let (model, x, y) = try divergingModel()
        let messages = Mutex<[String]>([])
        let stopper = TerminateOnNaN(output: { text in messages.withLock { $0.append(text) } })
        let batches = Mutex<[(Int, Int, Double)]>([])
        let epochEnds = Mutex<[(Int, Logs)]>([])
        var epoch = 0
        let recorder = LambdaCallback(
            onEpochBegin: { e, _ in epoch = e },
            onEpochEnd: { e, logs, _ in epochEnds.withLock { $0.append((e, logs)) } },
            onTrainBatchEnd: { b, logs, _ in batches.withLock { $0.append((epoch, b, logs["loss"]!)) } })
        let history = try model.fit(x, y, batchSize: 4, epochs: 5, verbose: .silent, callbacks: [stopper, recorder],
                                    validationData: (x, y), shuffle: false)
        let seen = batches.withLock { $0 }
        let last = try #require(seen.last)
        // Training stopped right after the first batch whose running loss is not finite ...
        #expect(!last.2.isFinite)
        #expect(seen.dropLast().allSatisfy { $0.2.isFinite })
        #expect(last.1 < 7, "stopped at batch \(last.1) of 8: the epoch did not run on")
        let terminated = try #require(stopper.terminated)
        #expect(terminated.epoch == last.0 && terminated.batch == last.1)
        #expect(messages.withLock { $0 } == ["Batch \(last.1): Invalid loss, terminating training\n"])
        // ... and, as in tf-keras, the epoch still ended (validation, onEpochEnd, History) and fit stopped.
        let ends = epochEnds.withLock { $0 }
        #expect(ends.map(\.0) == Array(0...last.0))
        #expect(ends.last?.1["val_loss"] != nil)
        #expect(history.epochs == Array(0...last.0))
        #expect(history["loss"].last.map { !$0.isFinite } == true)
    }

    @Test func theStoppedEpochIsFinishedAndPrintedOnce() throws {
        let (model, x, y) = try divergingModel()
        var text = ""
        try model.fit(x, y, batchSize: 4, epochs: 5, verbose: .progressBar,
                      callbacks: [TerminateOnNaN(output: { text += $0 })], shuffle: false, output: { text += $0 })
        // One epoch line, finished as Keras' ProgbarLogger does (at the epoch's target, 8/8), with nan.
        #expect(text.hasPrefix("Epoch 1/5 - Batch "), "\(text)")
        #expect(text.contains(": Invalid loss, terminating training\n8/8 - "), "\(text)")
        #expect(text.components(separatedBy: "Epoch ").count == 2, "\(text)")
        #expect(!text.contains("-nan"), "\(text)")
    }

    @Test func finiteLossesDoNotStop() throws {
        GlobalRandom.setSeed(3)
        let x = try Tensor.randomNormal(shape: [16, 3], seed: 4), y = try Tensor.randomNormal(shape: [16, 1], seed: 5)
        let model = try Sequential([try Dense(1)])
        model.compile(optimizer: try SGD(learningRate: 0.01), loss: MeanSquaredError())
        let stopper = TerminateOnNaN(output: { _ in Issue.record("unexpected message") })
        let history = try model.fit(x, y, batchSize: 4, epochs: 3, verbose: .silent, callbacks: [stopper])
        #expect(history.epochs == [0, 1, 2])
        #expect(stopper.terminated == nil)
    }

    @Test func anyBatchSizeWorksWithoutOverflow() throws {
        // The old loop computed (n + batchSize - 1) and (step + 1) * batchSize: Int overflow traps.
        GlobalRandom.setSeed(1)
        let x = try Tensor.randomNormal(shape: [10, 3], seed: 4), y = try Tensor.randomNormal(shape: [10, 1], seed: 5)
        let model = try Sequential([try Dense(1)])
        model.compile(optimizer: try SGD(learningRate: 0.01), loss: MeanSquaredError())
        let batchCount = Mutex(0)
        let counter = LambdaCallback(onTrainBatchEnd: { _, _, _ in batchCount.withLock { $0 += 1 } })
        for size in [Int.max, Int.max - 1, Int.max / 2 + 1, 11, 10] {
            batchCount.withLock { $0 = 0 }
            try model.fit(x, y, batchSize: size, epochs: 1, verbose: .silent, callbacks: [counter], validationData: (x, y))
            #expect(batchCount.withLock { $0 } == 1, "batch size \(size) gives one batch, as Keras")
            #expect(try model.evaluate(x, y, batchSize: size, verbose: .silent).count == 1)
            #expect(try model.predict(x, batchSize: size).shape == [10, 1])
        }
        batchCount.withLock { $0 = 0 }
        try model.fit(x, y, batchSize: 3, epochs: 1, verbose: .silent, callbacks: [counter])
        #expect(batchCount.withLock { $0 } == 4)  // 3 + 3 + 3 + 1
        #expect(try model.predict(x, batchSize: 3) == model.predict(x, batchSize: 10))
    }

    @Test func progressBarFormatsNonFiniteMetrics() {
        var text = ""
        let bar = ProgressBar(total: 3, interactive: true, write: { text += $0 }, clock: { 0 })
        bar.update(step: 1, metrics: [("loss", .nan), ("accuracy", .infinity)])
        bar.finish(metrics: [("loss", .nan), ("val_loss", -.infinity)])
        #expect(text.contains("loss: nan"))
        #expect(text.contains("accuracy: inf"))
        #expect(text.contains("val_loss: -inf"))
        // printf's "-nan" for a NaN with the sign bit set (0 * -inf, inf - inf) is written as numpy does.
        #expect(ProgressBar.formatMetrics([("loss", -Double.nan)]) == " - loss: nan")
        // A broken clock (NaN elapsed time) must not trap in the ETA or step-time formatting.
        var other = ""
        var calls = 0
        let odd = ProgressBar(total: 2, interactive: true, write: { other += $0 },
                              clock: { calls += 1; return calls == 1 ? 0 : .nan })
        odd.update(step: 1, metrics: [("loss", 1)])
        odd.finish(metrics: [("loss", 1)])
        #expect(other.contains("?"))
    }
}
