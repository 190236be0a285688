import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

// BackupAndRestore and fit(initialEpoch:) (issue 10): a run interrupted at any batch and resumed with
// the same backup folder ends bit-identical to an uninterrupted run: weights, optimizer state, and the
// random states of shuffling and Dropout.

private struct Interrupted: Error {}

@Suite struct BackupAndRestoreTests {
    static let x = try! Tensor.randomNormal(shape: [40, 6], seed: 21)
    static let y = try! Tensor((0..<40).map { Int64(($0 * 7) % 3) })

    /// A fresh model (as a new process builds it), compiled.
    static func model() throws -> Sequential {
        // Explicit seeds: the global generator is shared with the tests that run in parallel, so drawing
        // from it here made the reference and the resumed runs start from different weights at times.
        GlobalRandom.setSeed(4)
        let m = try Sequential([Dense(12, activation: .relu, kernelInitializer: .glorotUniform(seed: 41)), Dropout(0.3, seed: 42),
                                Dense(3, kernelInitializer: .glorotUniform(seed: 43))])
        m.compile(optimizer: try Adam(learningRate: 0.05), loss: SparseCategoricalCrossentropy(fromLogits: true),
                  metrics: [try Metrics.get("sparse_categorical_accuracy")])
        return m
    }

    static func folder() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("descent-backup-\(UUID().uuidString)")
        return url.path
    }

    /// Trains 4 epochs of 5 batches; with `stopAt`, the run throws after that many batches and is resumed
    /// (as often as needed) by new fits with new callbacks and a new model.
    static func train(stopAt: [Int], saveFreq: BackupAndRestore.SaveFrequency) throws -> (weights: [Tensor], optimizer: [Tensor], losses: [Double]) {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var remaining = stopAt
        var losses: [Double] = []
        while true {
            let model = try model()
            let stop = remaining.first
            var batches = 0
            let interrupt = LambdaCallback(onTrainBatchEnd: { _, _, _ in
                batches += 1
                if let stop, batches == stop { throw Interrupted() }
            })
            let early = EarlyStopping(monitor: "loss", patience: 10, restoreBestWeights: true)
            do {
                let history = try model.fit(x, y, batchSize: 8, epochs: 4, verbose: .silent,
                                            callbacks: [early, interrupt, try BackupAndRestore(backupDir: dir, saveFreq: saveFreq)], seed: 9)
                losses += history["loss"]
                #expect(!FileManager.default.fileExists(atPath: dir + "/backup.h5"), "a finished run deletes its backup")
                return (model.getWeights(), model.optimizer!.getWeights(), losses)
            } catch is Interrupted {
                remaining.removeFirst()
            }
        }
    }

    @Test(arguments: [[3], [5], [7, 2], [1, 1, 1], [12, 6]])
    func resumedRunsAreBitIdenticalEveryFewSteps(_ stops: [Int]) throws {
        let reference = try Self.train(stopAt: [], saveFreq: .steps(2))
        let resumed = try Self.train(stopAt: stops, saveFreq: .steps(2))
        #expect(resumed.weights == reference.weights, "stops \(stops): weights")
        #expect(resumed.optimizer == reference.optimizer, "stops \(stops): optimizer state")
    }

    @Test(arguments: [[6], [11, 5]])
    func resumedRunsAreBitIdenticalPerEpoch(_ stops: [Int]) throws {
        let reference = try Self.train(stopAt: [], saveFreq: .epoch)
        let resumed = try Self.train(stopAt: stops, saveFreq: .epoch)
        #expect(resumed.weights == reference.weights)
        #expect(resumed.optimizer == reference.optimizer)
    }

    @Test func initialEpochStartsTheNumbering() throws {
        let model = try Self.model()
        var seen: [Int] = []
        let history = try model.fit(Self.x, Self.y, batchSize: 8, epochs: 5, verbose: .silent,
                                    callbacks: [LambdaCallback(onEpochBegin: { e, _ in seen.append(e) })], initialEpoch: 3)
        #expect(seen == [3, 4])
        #expect(history.epochs == [3, 4])
        #expect(model.optimizer?.iterationCount == 10)
        #expect(throws: TrainingError.self) { try model.fit(Self.x, Self.y, epochs: 2, verbose: .silent, initialEpoch: -1) }
    }

    @Test func aBackupForAnotherModelIsRefused() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Self.model()
        var batches = 0
        let interrupt = LambdaCallback(onTrainBatchEnd: { _, _, _ in batches += 1; if batches == 3 { throw Interrupted() } })
        #expect(throws: Interrupted.self) {
            try model.fit(Self.x, Self.y, batchSize: 8, epochs: 2, verbose: .silent,
                          callbacks: [interrupt, try BackupAndRestore(backupDir: dir, saveFreq: .steps(1))])
        }
        let other = try Sequential([Dense(5), Dense(3)])
        other.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let error = #expect(throws: (any Error).self) {
            try other.fit(Self.x, Self.y, batchSize: 8, epochs: 2, verbose: .silent, callbacks: [try BackupAndRestore(backupDir: dir)])
        }
        #expect("\(String(describing: error))".contains("backup.h5"), "\(String(describing: error))")
        #expect(throws: TrainingError.self) { try BackupAndRestore(backupDir: dir, saveFreq: .steps(0)) }
    }
}
