import ArgumentParser
import Descent
import Foundation

/// `descent write-keras-check-files DIR` (hidden, for `scripts/check_keras_files.py`): trains a small
/// model for two epochs and writes it in every Keras format Descent writes (`model.h5`, `weights.h5`,
/// `model.keras`, `model.weights.h5`) with `expected.json`, the predictions and optimizer state the
/// real tf_keras and Keras 3 must find in them.
struct WriteKerasCheckFilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-keras-check-files",
        abstract: "Test helper: write a trained model in every Keras format, with the numbers Python must read back.",
        shouldDisplay: false)

    @Argument(help: "The folder to write into (created if needed).")
    var folder: String
    @Option(help: "The optimizer: adam or sgd (SGD with Nesterov momentum).")
    var optimizer: String = "adam"
    @Option(help: "The model: mlp (Dense, Dropout, Dense), nested (a Sequential inside a Sequential) or cnn (Conv2D, pooling, BatchNormalization on 8x8 images).")
    var model: String = "mlp"

    func validate() throws {
        guard ["adam", "sgd"].contains(optimizer) else { throw ValidationError("--optimizer must be adam or sgd, got \(optimizer)") }
        guard ["mlp", "nested", "cnn"].contains(model) else { throw ValidationError("--model must be mlp, nested or cnn, got \(model)") }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        GlobalRandom.setSeed(1)
        let x = try Tensor.randomNormal(shape: self.model == "cnn" ? [16, 8, 8, 1] : [16, 8], seed: 2)
        let y = try Tensor((0..<16).map { Int64($0 % 3) })
        let model: Sequential
        switch self.model {
        case "nested":
            model = try Sequential([Dense(6, activation: .relu), Sequential([Dense(5, activation: .tanh), Dense(3)], name: "inner")])
        case "cnn":
            model = try Sequential([Input(shape: [8, 8, 1]), Conv2D(4, kernelSize: 3, padding: .same, activation: .relu), MaxPooling2D(poolSize: 2),
                                    BatchNormalization(), Conv2D(6, kernelSize: 3), GlobalAveragePooling2D(), Dense(3)])
        default:
            model = try Sequential([Dense(6, activation: .relu), Dropout(0.25, seed: 3), Dense(3)])
        }
        let opt: Optimizer = optimizer == "adam" ? try Adam(learningRate: 0.01) : try SGD(learningRate: 0.05, momentum: 0.9, nesterov: true)
        model.compile(optimizer: opt, loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [try Metrics.get("sparse_categorical_accuracy")])
        try model.fit(x, y, batchSize: 8, epochs: 2, verbose: .silent, shuffle: false)
        try model.save(toFile: folder + "/model.h5")
        try model.saveWeights(toFile: folder + "/weights.h5")
        try model.save(toFile: folder + "/model.keras")
        try model.saveWeights(toFile: folder + "/model.weights.h5")
        func rows(_ t: Tensor) -> JSONValue {
            let values = t.doubles
            func nest(_ shape: ArraySlice<Int>, _ offset: Int) -> JSONValue {
                guard let first = shape.first else { return .double(values[offset]) }
                let stride = shape.dropFirst().reduce(1, *)
                return .array((0..<first).map { nest(shape.dropFirst(), offset + $0 * stride) })
            }
            return nest(t.shape[...], 0)
        }
        let expected: JSONObject = [
            "x": rows(x), "x_dtype": "float32", "predictions": rows(try model.predict(x)),
            "optimizer_class": .string(type(of: opt).kerasClassName),
            "optimizer_weight_names": .array(opt.weights.map { .string($0.name + ":0") }),
            "optimizer_weights": .array(opt.getWeights().map { .array($0.doubles.map { .double($0) }) }),
            "learning_rate": .double(Double(Float(optimizer == "adam" ? 0.01 : 0.05))),
        ]
        try AtomicFile.write(JSONValue.object(expected).serialized, to: folder + "/expected.json")
    }
}
