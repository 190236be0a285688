import DescentAutodiff
import DescentHDF5
@_spi(DescentInternals) import DescentOptimizers
import DescentTensor
import Foundation
import ZIPFoundation
import CDescentZlib

// Keras 3's layouts (Tests/Fixtures/keras_files/LAYOUTS.md):
//
//   x.weights.h5 (also `model.weights.h5` inside a .keras zip):
//     /layers/<layer>/vars       attr name = "<layer>" (vlen UTF-8); datasets 0, 1, ... (every layer has
//                                the group, a Dropout an empty one)
//     /vars                      attr name = "<model>" (the model's own variables: none)
//     /optimizer/vars            attr name = "<optimizer>"; 0 = iterations (int64), 1 = learning_rate
//                                (float32; absent with a schedule), then the slots in Keras 3's order
//   m.keras: a zip, every member STORED: metadata.json, config.json, model.weights.h5.

enum Keras3Files {
    static let kerasVersion = "3.15.1"

    /// The legacy slot names in the order Keras 3's class of the same name creates its variables (one
    /// inner list per `add_optimizer_variables` call: its variables come per model variable, in the
    /// list's order), for the classes whose variables map one to one onto the seed's slots; `nil` for
    /// the others (their state waits for Keras 3's optimizers in Descent).
    static func keras3SlotGroups(_ optimizer: Optimizer) -> [[String]]? {
        switch type(of: optimizer).kerasClassName {
        case "Adam": return [["m", "v"]] + (optimizer.slotNames.contains("vhat") ? [["vhat"]] : [])
        case "SGD": return optimizer.slotNames.contains("momentum") ? [["momentum"]] : []
        default: return nil
        }
    }

    /// The optimizer's variables in Keras 3's `optimizer.variables` order, or `nil` (see above).
    static func keras3Variables(_ optimizer: Optimizer, model: Sequential) throws -> [Variable]? {
        guard let groups = keras3SlotGroups(optimizer) else { return nil }
        var list = [optimizer.iterations]
        if case .number(let lr) = optimizer.learningRate {
            list.append(Variable(Tensor(Float(lr)), name: "\(optimizer.name)/learning_rate", trainable: false))
        }
        for group in groups {
            for v in model.trainableWeights {
                for slot in group { list.append(try optimizer.slot(for: v, named: slot)) }
            }
        }
        return list
    }

    /// The keys of the layers under `/layers`: Keras 3 does not use the layers' names (they differ
    /// between two instances of one model) but the snake-cased class name, numbered from the second of
    /// a class on (`dense`, `dense_1`, `dropout`, `dense_2`).
    static func layerKeys(_ model: Sequential) -> [String] {
        var used: [String: Int] = [:]
        return model.layers.map { layer in
            let base = KerasNaming.snakeCase(type(of: layer).kerasClassName)
            if let n = used[base] {
                used[base] = n + 1
                return "\(base)_\(n + 1)"
            }
            used[base] = 0
            return base
        }
    }

    /// Writes the Keras 3 weights layout of `model` (and its optimizer's state when it maps, see above).
    static func weightsTree(of model: Sequential, includeOptimizer: Bool) throws -> HDF5Group {
        let root = HDF5Group()
        let layers = root.addGroup("layers")
        for (layer, key) in zip(model.layers, layerKeys(model)) {
            let vars = layers.addGroup(key).addGroup("vars")
            vars.setAttribute("name", .string(layer.name))
            for (i, w) in layer.weights.enumerated() { vars.addDataset(String(i), w.untrackedValue) }
        }
        root.addGroup("vars").setAttribute("name", .string(model.name))
        if includeOptimizer, let optimizer = model.optimizer, !optimizer.weights.isEmpty,
           let variables = try keras3Variables(optimizer, model: model) {
            let vars = root.addGroup("optimizer").addGroup("vars")
            vars.setAttribute("name", .string(KerasNaming.snakeCase(type(of: optimizer).kerasClassName)))
            for (i, v) in variables.enumerated() { vars.addDataset(String(i), v.untrackedValue) }
        }
        return root
    }

    /// Reads the Keras 3 weights of `model`, checked against it: the values in ``Sequential/weights``
    /// order. Layers are matched by ``layerKeys(_:)``, as Keras 3 does.
    static func readWeights(_ file: HDF5File, for model: Sequential) throws -> [Tensor] {
        guard try file.kind(of: "/layers") == .group else {
            throw HDF5Error(file: file.name, path: "/layers", message: "is missing: not a Keras 3 weights file")
        }
        var values: [Tensor] = []
        for (layer, key) in zip(model.layers, layerKeys(model)) {
            let path = "/layers/\(key)/vars"
            if try layer.weights.isEmpty && file.kind(of: path) == nil { continue }
            guard try file.kind(of: path) == .group else {
                throw HDF5Error(file: file.name, path: path, message: "is missing: the file has no weights for layer '\(layer.name)'")
            }
            let names = try file.memberNames(ofGroup: path)
            guard names.count == layer.weights.count else {
                throw HDF5Error(file: file.name, path: path, message: "holds \(names.count) weights for layer '\(layer.name)', which has \(layer.weights.count)")
            }
            for (i, w) in layer.weights.enumerated() { values.append(try TFKerasHDF5.readValue(file, "\(path)/\(i)", for: w)) }
        }
        return values
    }

    /// Reads `/optimizer/vars` into `optimizer` (built for `model`) when its layout maps; returns the
    /// learning rate the file holds, or `nil` when the file has no optimizer state.
    static func readOptimizer(_ file: HDF5File, into optimizer: Optimizer, model: Sequential) throws -> [(Variable, Tensor)]? {
        guard try file.kind(of: "/optimizer/vars") == .group else { return nil }
        try optimizer.build(model.trainableWeights)
        guard let variables = try keras3Variables(optimizer, model: model) else {
            // As Keras 3 does when it cannot match an optimizer's variables: a warning, a fresh state.
            FileHandle.standardError.write(Data(("warning: \(file.name): the \(type(of: optimizer).kerasClassName) optimizer's state is not restored "
                + "(Descent maps Keras 3 optimizer variables for Adam and SGD only); it starts fresh\n").utf8))
            return nil
        }
        let names = try file.memberNames(ofGroup: "/optimizer/vars")
        guard names.count == variables.count else {
            throw HDF5Error(file: file.name, path: "/optimizer/vars",
                            message: "holds \(names.count) optimizer variables, but Keras 3's \(type(of: optimizer).kerasClassName) for this model has \(variables.count)")
        }
        return try variables.enumerated().map { i, v in (v, try TFKerasHDF5.readValue(file, "/optimizer/vars/\(i)", for: v)) }
    }

    // MARK: The .keras zip

    /// Writes a `.keras` archive atomically: `metadata.json`, `config.json`, `model.weights.h5`, stored
    /// without compression as Keras writes them.
    static func writeArchive(_ model: Sequential, to path: String, includeOptimizer: Bool) throws {
        var config = try model.kerasModelConfig(.keras3)
        config["compile_config"] = .object(includeOptimizer ? try model.keras3CompileConfig() : JSONObject())
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        let metadata: JSONObject = ["keras_version": .string(kerasVersion), "date_saved": .string(formatter.string(from: Date()))]
        let weights = try weightsTree(of: model, includeOptimizer: includeOptimizer)
        try AtomicFile.write(to: path, viaTemporaryFile: { temporary in
            let h5 = temporary + ".weights.h5"
            defer { unlink(h5) }
            // A scratch file inside the temporary archive's folder: no atomic replace or fsync needed.
            try weights.write(toScratchFile: h5)
            // The temporary file exists (empty); ZIPFoundation creates the archive anew.
            unlink(temporary)
            do {
                let archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create)
                for (name, text) in [("metadata.json", JSONValue.object(metadata).serialized), ("config.json", JSONValue.object(config).serialized)] {
                    let bytes = Data(text.utf8)
                    try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(bytes.count), compressionMethod: .none) { position, size in
                        bytes.subdata(in: Int(position)..<Int(position) + size)
                    }
                }
                // Streamed through our own descriptor (ZIPFoundation's file-URL variant goes through
                // FileManager calls that leak their path buffers on Linux).
                let fd = open(h5, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw ModelFileError(file: path, path: "model.weights.h5", message: "cannot reopen the weights written") }
                defer { close(fd) }
                var info = stat()
                fstat(fd, &info)
                try archive.addEntry(with: "model.weights.h5", type: .file, uncompressedSize: Int64(info.st_size), compressionMethod: .none,
                                     bufferSize: 8 << 20) { position, size in
                    var chunk = Data(count: size)
                    let got = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, off_t(position)) }
                    guard got == size else { throw ModelFileError(file: path, path: "model.weights.h5", message: "short read while archiving") }
                    return chunk
                }
            } catch let error as HDF5Error {
                throw error
            } catch {
                throw ModelFileError(file: path, path: "/", message: "cannot write the zip archive: \(error)")
            }
        })
    }

    /// The members of a `.keras` archive: the two JSON documents, and the weights extracted to a
    /// temporary file (removed by the caller).
    static func readArchive(_ path: String) throws -> (config: JSONValue, weightsPath: String) {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw ModelFileError(file: path, path: "/", message: "not a readable zip archive (a .keras file is one): \(error)")
        }
        func entry(_ name: String) throws -> Entry {
            guard let e = archive[name] else { throw ModelFileError(file: path, path: name, message: "is missing from the archive") }
            return e
        }
        func extractJSON(_ name: String) throws -> JSONValue {
            let e = try entry(name)
            guard e.uncompressedSize <= 64 << 20 else { throw ModelFileError(file: path, path: name, message: "is larger than 64 MiB") }
            var bytes = Data()
            do {
                _ = try archive.extract(e, skipCRC32: false) { bytes.append($0) }
            } catch {
                throw ModelFileError(file: path, path: name, message: "cannot be extracted (damaged archive?): \(error)")
            }
            do {
                return try JSONValue(parsing: [UInt8](bytes))
            } catch {
                throw ModelFileError(file: path, path: name, message: "\(error)")
            }
        }
        _ = try extractJSON("metadata.json")
        let config = try extractJSON("config.json")
        let weights = try entry("model.weights.h5")
        let folder = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let target = "\(folder)/descent-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).weights.h5"
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ModelFileError(file: path, path: "model.weights.h5", message: "cannot create a temporary file in \(folder)") }
        do {
            defer { close(fd) }
            // The CRC is checked here with zlib's crc32 (ZIPFoundation's own, on Linux, goes a byte at a time).
            var crc = crc32(0, nil, 0)
            _ = try archive.extract(weights, bufferSize: 8 << 20, skipCRC32: true) { chunk in
                let written = chunk.withUnsafeBytes { raw -> Int in
                    crc = crc32(crc, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt32(raw.count))
                    return write(fd, raw.baseAddress, raw.count)
                }
                guard written == chunk.count else { throw ModelFileError(file: path, path: "model.weights.h5", message: "cannot write the temporary copy") }
            }
            guard UInt32(truncatingIfNeeded: crc) == weights.checksum else {
                throw ModelFileError(file: path, path: "model.weights.h5", message: "its CRC-32 does not match the archive's (damaged file)")
            }
        } catch {
            unlink(target)
            throw ModelFileError(file: path, path: "model.weights.h5", message: "cannot be extracted (damaged archive?): \(error)")
        }
        return (config, target)
    }
}
