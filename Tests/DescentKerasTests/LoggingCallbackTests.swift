@testable import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// ReduceLROnPlateau and CSVLogger against tf_keras 2.21 (Tests/Fixtures/callbacks/, from
/// scripts/golden/generate_callbacks.py), and the order of the callback hooks.
@Suite struct LoggingCallbackTests {
    @Test func reduceLROnPlateauMatchesTfKeras() throws {
        let fixture = try KerasFixtures.load("callbacks/reduce_lr_on_plateau.json")
        let cases = try #require(fixture["cases"]?.arrayValue)
        #expect(cases.count == 7)
        for item in cases {
            let c = try #require(item.objectValue)
            let name = try #require(c["name"]?.stringValue)
            let o = try #require(c["options"]?.objectValue)
            let monitor = try #require(c["monitor"]?.stringValue)
            let callback = try ReduceLROnPlateau(
                monitor: o["monitor"]?.stringValue ?? "val_loss", factor: o["factor"]?.doubleValue ?? 0.1,
                patience: o["patience"]?.intValue ?? 10, mode: o["mode"]?.stringValue.flatMap(MonitorMode.init(rawValue:)) ?? .auto,
                minDelta: o["min_delta"]?.doubleValue ?? 1e-4, cooldown: o["cooldown"]?.intValue ?? 0, minLR: o["min_lr"]?.doubleValue ?? 0)
            let model = try Sequential([Dense(1)], inputShape: [1])
            model.compile(optimizer: try SGD(learningRate: 0.1), loss: try MeanSquaredError())
            try callback.onTrainBegin(model: model)
            var rates: [Double] = []
            for (epoch, value) in (c["values"]?.arrayValue ?? []).enumerated() {
                try callback.onEpochEnd(epoch, logs: [monitor: value.doubleValue!, "other": 1], model: model)
                rates.append(Double(Float(model.optimizer!.learningRate.numericValue!)))
            }
            let expected = KerasFileFixtures.flat(c["learning_rates"])
            #expect(rates == expected, "\(name): \(rates) vs \(expected)")
        }
    }

    @Test func reduceLROnPlateauRefusesBadArguments() throws {
        #expect(throws: TrainingError.self) { try ReduceLROnPlateau(factor: 1) }
        #expect(throws: TrainingError.self) { try ReduceLROnPlateau(patience: -1) }
        #expect(throws: TrainingError.self) { try ReduceLROnPlateau(minLR: -1) }
        do { _ = try ReduceLROnPlateau(factor: 1.5) } catch { #expect("\(error)" == "ReduceLROnPlateau does not support a factor >= 1.0. Got 1.5") }
        // In fit: it reduces the rate the optimizer uses, and says so when verbose.
        var printed = ""
        let model = try Sequential([Dense(1)], inputShape: [1])
        model.compile(optimizer: try SGD(learningRate: 0.1), loss: try MeanSquaredError())
        let x = try Tensor(shape: [4, 1], scalars: [Float(1), 2, 3, 4]), y = x
        let plateau = try ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 0, verbose: true, minDelta: 1e9,
                                            output: { printed += $0 })
        try model.fit(x, y, batchSize: 4, epochs: 3, verbose: .silent, callbacks: [plateau])
        #expect(Float(model.optimizer!.learningRate.numericValue!) == Float(0.1) * 0.5 * 0.5)
        #expect(printed == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.05.\n\nEpoch 3: ReduceLROnPlateau reducing learning rate to 0.025.\n", "\(printed)")
    }

    @Test func csvLoggerWritesTfKerasText() throws {
        let fixture = try KerasFixtures.load("callbacks/csv_logger.json")
        let cases = try #require(fixture["cases"]?.arrayValue)
        #expect(cases.count == 5)
        let model = try Sequential([Dense(1)], inputShape: [1])
        for item in cases {
            let c = try #require(item.objectValue)
            let name = try #require(c["name"]?.stringValue)
            let path = KerasFileFixtures.temporary("log-\(name).csv")
            unlink(path)
            if let existing = c["existing"]?.stringValue { try AtomicFile.write(existing, to: path) }
            let logger = try CSVLogger(fileName: path, separator: Character(try #require(c["separator"]?.stringValue)),
                                       append: c["append"]?.boolValue ?? false)
            try logger.onTrainBegin(model: model)
            for (epoch, entry) in (c["logs"]?.arrayValue ?? []).enumerated() {
                let logs = Logs(uniqueKeysWithValues: try #require(entry.objectValue).map { ($0.key, $0.value.doubleValue ?? .nan) })
                try logger.onEpochEnd(epoch, logs: logs, model: model)
            }
            try logger.onTrainEnd(model: model)
            let text = String(decoding: try FileBytes.read(path: path), as: UTF8.self)
            #expect(text == c["text"]?.stringValue, "\(name): \(text.debugDescription)")
        }
        #expect(throws: TrainingError.self) { try CSVLogger(fileName: "") }
        #expect(throws: TrainingError.self) { try CSVLogger(fileName: "a.csv", separator: "\"") }
    }

    @Test func csvLoggerInFitNamesAnUnwritableFile() throws {
        let model = try Sequential([Dense(1)], inputShape: [1])
        model.compile(optimizer: try SGD(), loss: try MeanSquaredError())
        let x = try Tensor(shape: [2, 1], scalars: [Float(1), 2])
        let logger = try CSVLogger(fileName: "/nonexistent-folder/log.csv")
        do {
            try model.fit(x, x, verbose: .silent, callbacks: [logger])
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("/nonexistent-folder/log.csv"), "\(error)")
        }
    }

    /// Records every hook in order.
    final class Recorder: Callback {
        var events: [String] = []
        func onTrainBegin(model: Model) throws { events.append("train_begin") }
        func onEpochBegin(_ epoch: Int, model: Model) throws { events.append("epoch_begin \(epoch)") }
        func onTrainBatchBegin(_ batch: Int, model: Model) throws { events.append("batch_begin \(batch)") }
        func onTrainBatchEnd(_ batch: Int, logs: Logs, model: Model) throws { events.append("batch_end \(batch) \(logs.keys.sorted())") }
        func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws { events.append("epoch_end \(epoch) \(logs.keys.sorted())") }
        func onTrainEnd(model: Model) throws { events.append("train_end") }
        func onTestBegin(model: Model) throws { events.append("test_begin") }
        func onTestBatchBegin(_ batch: Int, model: Model) throws { events.append("test_batch_begin \(batch)") }
        func onTestBatchEnd(_ batch: Int, logs: Logs, model: Model) throws { events.append("test_batch_end \(batch)") }
        func onTestEnd(logs: Logs, model: Model) throws { events.append("test_end \(logs.keys.sorted())") }
        func onPredictBegin(model: Model) throws { events.append("predict_begin") }
        func onPredictBatchBegin(_ batch: Int, model: Model) throws { events.append("predict_batch_begin \(batch)") }
        func onPredictBatchEnd(_ batch: Int, model: Model) throws { events.append("predict_batch_end \(batch)") }
        func onPredictEnd(model: Model) throws { events.append("predict_end") }
    }

    @Test func hooksRunInKerasOrder() throws {
        let model = try Sequential([Dense(2)], inputShape: [1])
        try model.compile(optimizer: "sgd", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"])
        let x = try Tensor(shape: [6, 1], scalars: [Float(1), 2, 3, 4, 5, 6]), y = try Tensor([Int64(0), 1, 0, 1, 0, 1])
        let recorder = Recorder()
        try model.fit(x, y, batchSize: 2, epochs: 1, verbose: .silent, callbacks: [recorder], validationSplit: 1.0 / 3)
        let k = "[\"accuracy\", \"loss\"]"
        #expect(recorder.events == [
            "train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0 \(k)", "batch_begin 1", "batch_end 1 \(k)",
            "test_begin", "test_batch_begin 0", "test_batch_end 0", "test_end \(k)",
            "epoch_end 0 [\"accuracy\", \"loss\", \"val_accuracy\", \"val_loss\"]", "train_end",
        ])
        recorder.events = []
        _ = try model.evaluate(x, y, batchSize: 4, verbose: .silent, callbacks: [recorder])
        #expect(recorder.events == ["test_begin", "test_batch_begin 0", "test_batch_end 0", "test_batch_begin 1", "test_batch_end 1",
                                    "test_end \(k)"])
        recorder.events = []
        _ = try model.predict(x, batchSize: 6, callbacks: [recorder])
        #expect(recorder.events == ["predict_begin", "predict_batch_begin 0", "predict_batch_end 0", "predict_end"])
    }
}
