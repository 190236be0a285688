import DescentAutodiff
import DescentHDF5
@_spi(DescentInternals) import DescentOptimizers
@_spi(DescentInternals) import DescentTensor
import Foundation

/// An error in a model file outside HDF5 itself: the zip archive of a `.keras` file, a JSON document
/// inside it, or a config that does not describe a model Descent can build. Names the file, the place
/// inside it (a zip member, an HDF5 attribute) and what was expected.
public struct ModelFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file.
    public let file: String
    /// The place inside it (`"config.json"`, `"/ attribute 'model_config'"`, `"/"`).
    public let path: String
    /// What was expected and what was found.
    public let message: String

    /// An error about `path` inside `file`.
    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String { path == "/" ? "\(file): \(message)" : "\(file): \(path): \(message)" }
}

/// The model file formats, chosen by the file name's extension as Keras does.
public enum ModelFileFormat: Sendable, Equatable {
    /// Keras 3's `.keras` zip (`metadata.json`, `config.json`, `model.weights.h5`).
    case keras
    /// tf_keras' HDF5 full model (`.h5`, `.hdf5`): architecture, compile configuration, weights and the
    /// optimizer's state.
    case hdf5

    /// The format of `path`: `.keras` or `.h5`/`.hdf5`.
    /// - Throws: ``ModelFileError`` for any other extension.
    public init(path: String) throws {
        let lower = path.lowercased()
        if lower.hasSuffix(".weights.h5") {
            throw ModelFileError(file: path, path: "/", message: "a .weights.h5 file holds weights only: use saveWeights(toFile:) / loadWeights(fromFile:), or name the model .keras or .h5")
        }
        if lower.hasSuffix(".keras") { self = .keras; return }
        if lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") { self = .hdf5; return }
        throw ModelFileError(file: path, path: "/", message: "unknown model file extension: use .keras (Keras 3) or .h5 (tf_keras HDF5)")
    }
}

extension Sequential {
    // MARK: Whole models

    /// Saves the model (Keras' `model.save`), atomically: the format follows the extension.
    /// - `.h5` / `.hdf5`: tf_keras' HDF5 model: `model_config`, `training_config` (loss, metrics, the
    ///   optimizer's config), `/model_weights` and `/optimizer_weights` (iterations and slots in
    ///   TensorFlow's order and names). tf_keras 2.21's `load_model` reads it with its optimizer state.
    /// - `.keras`: Keras 3's zip: `config.json` (architecture, `compile_config` with the optimizer as its
    ///   Keras 3 class), `model.weights.h5`; Adam's and SGD's state too (`/optimizer/vars`, Keras 3's
    ///   order). Keras 3.15's `load_model` reads it.
    ///
    /// - Parameter includeOptimizer: write the compile configuration and the optimizer's state (Keras'
    ///   `include_optimizer`).
    /// - Throws: ``ModelFileError`` or `HDF5Error` naming the file; ``KerasError`` when the model is
    ///   not built or a layer has no Keras config.
    public func save(toFile path: String, includeOptimizer: Bool = true) throws {
        switch try ModelFileFormat(path: path) {
        case .hdf5:
            let root = HDF5Group()
            root.setAttribute("keras_version", .string(TFKerasHDF5.kerasVersion))
            root.setAttribute("backend", .string("tensorflow"))
            root.setAttribute("model_config", .string(JSONValue.object(try kerasModelConfig(.tfKeras)).serialized, .ascii))
            if includeOptimizer, let training = try tfKerasTrainingConfig() {
                root.setAttribute("training_config", .string(JSONValue.object(training).serialized, .ascii))
            }
            TFKerasHDF5.writeWeights(of: self, into: root.addGroup("model_weights"))
            if includeOptimizer, let optimizer, !optimizer.weights.isEmpty { TFKerasHDF5.writeOptimizer(optimizer, into: root) }
            try root.write(to: path)
        case .keras:
            try Keras3Files.writeArchive(self, to: path, includeOptimizer: includeOptimizer)
        }
    }

    /// Loads a model saved by Descent, tf_keras (`.h5`) or Keras 3 (`.keras`), Keras' `load_model`:
    /// the architecture, the weights, and with `compile` the loss, metrics and optimizer with its state,
    /// so that training continues where it stopped.
    /// - Throws: ``ModelFileError``, `HDF5Error` or ``KerasError`` naming the file and the place inside
    ///   it: an unknown layer class, a missing dataset, a shape that differs, a damaged file.
    public static func load(fromFile path: String, compile: Bool = true) throws -> Sequential {
        switch try ModelFileFormat(path: path) {
        case .hdf5:
            let file = try HDF5File(readingFrom: path)
            guard let configText = try file.attribute("model_config", of: "/")?.singleString else {
                throw ModelFileError(file: path, path: "/", message: "has no 'model_config' attribute: a weights file, not a model (use loadWeights)")
            }
            let model = try withContext(path, "/ attribute 'model_config'") {
                try Sequential.fromKerasModelConfig(try JSONValue(parsing: configText), field: "model_config", weightsWillBeLoaded: true)
            }
            guard model.builtInputShape != nil || model.layers.isEmpty else {
                throw ModelFileError(file: path, path: "/ attribute 'model_config'", message: "gives no input shape, so the weights cannot be created")
            }
            let values = try TFKerasHDF5.readWeights(file, at: "/model_weights", for: model)
            var optimizerValues: [Tensor]?
            if compile, let trainingText = try file.attribute("training_config", of: "/")?.singleString {
                try withContext(path, "/ attribute 'training_config'") {
                    guard let config = try JSONValue(parsing: trainingText).objectValue else {
                        throw KerasError.invalidConfig(kind: "training_config", message: "expected an object")
                    }
                    try model.compile(fromConfig: config, format: .tfKeras, field: "training_config")
                }
                if let optimizer = model.optimizer {
                    optimizerValues = try TFKerasHDF5.readOptimizerWeights(file, for: optimizer, model: model)
                }
            }
            try model.setWeights(values)
            if let optimizerValues, let optimizer = model.optimizer { try optimizer.setWeights(optimizerValues) }
            return model
        case .keras:
            let (config, metadata, weightsPath) = try Keras3Files.readArchive(path)
            let legacyFamily = metadata.objectValue?[KerasOptimizerFormats.familyMetadataKey]?.stringValue == "legacy"
            defer { unlink(weightsPath) }
            let model = try withContext(path, "config.json") { try Sequential.fromKerasModelConfig(config, field: "config.json", weightsWillBeLoaded: true) }
            guard model.builtInputShape != nil || model.layers.isEmpty else {
                throw ModelFileError(file: path, path: "config.json", message: "gives no input shape, so the weights cannot be created")
            }
            let file = try HDF5File(readingFrom: weightsPath, displayName: "\(path)/model.weights.h5")
            let values = try Keras3Files.readWeights(file, for: model)
            var optimizerState: [(Variable, Tensor)]?
            if compile, let compileConfig = config.objectValue?["compile_config"]?.objectValue, !compileConfig.keys.isEmpty {
                try withContext(path, "config.json compile_config") {
                    try KerasOptimizerFormats.$readsLegacyFamily.withValue(legacyFamily) {
                        try model.compile(fromConfig: compileConfig, format: .keras3, field: "compile_config")
                    }
                }
                if let optimizer = model.optimizer { optimizerState = try Keras3Files.readOptimizer(file, into: optimizer, model: model) }
            }
            try model.setWeights(values)
            if let optimizerState, let optimizer = model.optimizer { try assignKeras3State(optimizerState, to: optimizer) }
            return model
        }
    }

}

extension Model {
    /// The optimizer's variables in Keras 3's `optimizer.variables` order (iterations, learning rate,
    /// then the slots as Keras 3's class creates them), as `.keras` files hold them; `nil` when the
    /// model has no optimizer or its class has no one-to-one Keras 3 layout (only Adam and SGD have).
    @_spi(DescentInternals)
    public func keras3OptimizerVariables() throws -> [Variable]? {
        guard let optimizer else { return nil }
        return try Keras3Files.keras3Variables(optimizer, model: self)
    }

    /// Assigns Keras 3 optimizer variables read by `Keras3Files.readOptimizer` (the learning rate as the
    /// optimizer's number).
    static func assignKeras3State(_ state: [(Variable, Tensor)], to optimizer: Optimizer) throws {
        for (variable, value) in state {
            // A legacy optimizer's learning rate is a number (the variable was made for the file); a Keras 3
            // optimizer's is its own variable.
            if !(optimizer is Keras3.Optimizer), variable.name.hasSuffix("/learning_rate") {
                optimizer.learningRate = .number(try value.item())
            } else {
                try variable.assign(value)
            }
        }
    }

    /// Runs `body`, turning a config error into a ``ModelFileError`` naming the file and `place`.
    static func withContext<R>(_ file: String, _ place: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as KerasError {
            throw ModelFileError(file: file, path: place, message: "\(error)")
        } catch let error as JSONError {
            throw ModelFileError(file: file, path: place, message: "\(error)")
        } catch let error as OptimizerError {
            throw ModelFileError(file: file, path: place, message: "\(error)")
        }
    }

    // MARK: Weights

    /// Saves the weights (Keras' `save_weights`), atomically, in the layout the extension names:
    /// `.weights.h5` is Keras 3's (`/layers/<layer>/vars/<i>`, and, as Keras 3 writes, the optimizer's
    /// variables at `/optimizer/vars` for Adam and SGD), `.h5` / `.hdf5` tf_keras' (`layer_names`,
    /// `/<layer>/<layer>/kernel:0`). Both Kerases read both.
    /// - Throws: ``ModelFileError`` for another extension (the JSON format of Descent 0.1 is read
    ///   only), `HDF5Error` or `FileWriteError` naming the file.
    public func saveWeights(toFile path: String) throws {
        let lower = path.lowercased()
        if lower.hasSuffix(".weights.h5") {
            // Keras 3's save_weights writes the optimizer's variables too.
            try Keras3Files.weightsTree(of: self, includeOptimizer: true).write(to: path)
        } else if lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") {
            let root = HDF5Group()
            TFKerasHDF5.writeWeights(of: self, into: root)
            try root.write(to: path)
        } else {
            throw ModelFileError(file: path, path: "/", message: "unknown weights file extension: use .weights.h5 (Keras 3) or .h5 (tf_keras)")
        }
    }

    /// Loads weights saved by ``saveWeights(toFile:)``, tf_keras or Keras 3 (`load_weights`): any of
    /// the two HDF5 layouts (found from the file's contents), a full `.h5` model's `/model_weights`, or
    /// a `.keras` file's weights. The model must be built. Everything is checked before any weight is
    /// assigned.
    ///
    /// A `.json` file in Descent 0.1's format is still read, with a deprecation warning on standard error.
    /// - Throws: `HDF5Error`, ``ModelFileError`` or ``TrainingError`` naming the file and the place.
    public func loadWeights(fromFile path: String) throws {
        if path.lowercased().hasSuffix(".json") {
            Model.warnJSONWeightsDeprecated()
            return try loadJSONWeights(fromFile: path)
        }
        if path.lowercased().hasSuffix(".keras") {
            let (_, _, weightsPath) = try Keras3Files.readArchive(path)
            defer { unlink(weightsPath) }
            let file = try HDF5File(readingFrom: weightsPath, displayName: "\(path)/model.weights.h5")
            return try setWeights(try Keras3Files.readWeights(file, for: self))
        }
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            // A FIFO or /dev/stdin: only the JSON reader reads streams.
            Model.warnJSONWeightsDeprecated()
            return try loadJSONWeights(fromFile: path)
        }
        let file: HDF5File
        do {
            file = try HDF5File(readingFrom: path)
        } catch let error as HDF5Error where error.message.hasPrefix("not an HDF5 file") {
            // Descent 0.1's JSON format under another name.
            Model.warnJSONWeightsDeprecated()
            return try loadJSONWeights(fromFile: path)
        }
        if try file.kind(of: "/layers") == .group {
            // As Keras 3's load_weights: the optimizer's variables too, when the model is compiled.
            let values = try Keras3Files.readWeights(file, for: self)
            let state = try optimizer.flatMap { try Keras3Files.readOptimizer(file, into: $0, model: self) }
            try setWeights(values)
            if let state, let optimizer { try Model.assignKeras3State(state, to: optimizer) }
        } else if try file.kind(of: "/model_weights") == .group {
            try setWeights(try TFKerasHDF5.readWeights(file, at: "/model_weights", for: self))
        } else {
            try setWeights(try TFKerasHDF5.readWeights(file, at: "/", for: self))
        }
    }

    private static let warnedJSON = SanitizerVisibleMutex(false)

    static func warnJSONWeightsDeprecated() {
        let first = warnedJSON.withLock { warned in
            defer { warned = true }
            return !warned
        }
        if first {
            FileHandle.standardError.write(Data(
                "warning: Descent's JSON weights format is deprecated and will not be read by the next release; save as .weights.h5 or .h5\n".utf8))
        }
    }
}

/// Loads a model file (Keras' `keras.models.load_model`): see ``Sequential/load(fromFile:compile:)``.
public func loadModel(fromFile path: String, compile: Bool = true) throws -> Sequential {
    try Sequential.load(fromFile: path, compile: compile)
}
