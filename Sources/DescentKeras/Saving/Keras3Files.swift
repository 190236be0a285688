import DescentAutodiff
import DescentHDF5
@_spi(DescentInternals) import DescentOptimizers
import DescentTensor
import Foundation
import CDescentMinizip
import CDescentZlib

// Keras 3's layouts (Tests/Fixtures/keras_files/LAYOUTS.md):
//
//   x.weights.h5 (also `model.weights.h5` inside a .keras zip):
//     /layers/<layer>/vars       attr name = "<layer>" (vlen UTF-8); datasets 0, 1, ... (every layer has
//                                the group, a Dropout an empty one)
//     /vars                      attr name = "<model>" (the model's own variables: none)
//     /optimizer/vars            attr name = "<optimizer>"; 0 = iterations (int64), 1 = learning_rate
//                                (float32; absent with a schedule), then the slots in Keras 3's order
//   m.keras: a zip (minizip), every member STORED: metadata.json, config.json, model.weights.h5.

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
    static func keras3Variables(_ optimizer: Optimizer, model: Model) throws -> [Variable]? {
        // A Keras 3 optimizer's variables are Keras 3's `optimizer.variables`, in its order.
        if optimizer is Keras3.Optimizer { return optimizer.weights }
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
    static func layerKeys(_ model: Model) -> [String] { layerKeys(model.layers) }

    static func layerKeys(_ layers: [Layer]) -> [String] {
        var used: [String: Int] = [:]
        return layers.map { layer in
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
    static func weightsTree(of model: Model, includeOptimizer: Bool) throws -> HDF5Group {
        let root = HDF5Group()
        addLayers(model.layers, to: root.addGroup("layers"))
        root.addGroup("vars").setAttribute("name", .string(model.name))
        if includeOptimizer, let optimizer = model.optimizer, !optimizer.weights.isEmpty,
           let variables = try keras3Variables(optimizer, model: model) {
            let group = root.addGroup("optimizer")
            if let keras3 = optimizer as? Keras3.Optimizer {
                addKeras3Optimizer(keras3, to: group)
            } else {
                let vars = group.addGroup("vars")
                vars.setAttribute("name", .string(KerasNaming.snakeCase(type(of: optimizer).kerasClassName)))
                for (i, v) in variables.enumerated() { vars.addDataset(String(i), v.untrackedValue) }
            }
        }
        return root
    }

    /// Each layer's group: `<key>/vars` with the layer's own weights and, for a nested model, its layers
    /// under `<key>/layers/` again (Keras 3's layout for a model inside a model).
    static func addLayers(_ layers: [Layer], to group: HDF5Group) {
        for (layer, key) in zip(layers, layerKeys(layers)) {
            let layerGroup = group.addGroup(key)
            let vars = layerGroup.addGroup("vars")
            vars.setAttribute("name", .string(layer.name))
            let own = layer is Model ? layer.ownWeights : layer.weights
            for (i, w) in own.enumerated() { vars.addDataset(String(i), w.untrackedValue) }
            if let model = layer as? Model { addLayers(model.layers, to: layerGroup.addGroup("layers")) }
        }
    }

    /// A Keras 3 optimizer as Keras 3 saves it: `vars` (named after the optimizer) with every variable of
    /// `optimizer.variables`, and the inner optimizers again under their attribute's path, each with its
    /// own variables: `inner_optimizer/` (LossScaleOptimizer), `optimizers/<name>/` (MultiOptimizer).
    static func addKeras3Optimizer(_ optimizer: Keras3.Optimizer, to group: HDF5Group) {
        let vars = group.addGroup("vars")
        vars.setAttribute("name", .string(optimizer.name))
        for (i, v) in optimizer.weights.enumerated() { vars.addDataset(String(i), v.untrackedValue) }
        if let lossScale = optimizer as? Keras3.LossScaleOptimizer {
            addKeras3Optimizer(lossScale.innerOptimizer, to: group.addGroup("inner_optimizer"))
        } else if let multi = optimizer as? Keras3.MultiOptimizer {
            let inner = group.addGroup("optimizers")
            for opt in multi.optimizers { addKeras3Optimizer(opt, to: inner.addGroup(opt.name)) }
        }
    }

    /// Reads the Keras 3 weights of `model`, checked against it: the values in ``Sequential/weights``
    /// order. Layers are matched by ``layerKeys(_:)``, as Keras 3 does.
    static func readWeights(_ file: HDF5File, for model: Model) throws -> [Tensor] {
        guard try file.kind(of: "/layers") == .group else {
            throw HDF5Error(file: file.name, path: "/layers", message: "is missing: not a Keras 3 weights file")
        }
        var values: [Tensor] = []
        try readLayers(model.layers, file, at: "/layers", into: &values)
        return values
    }

    /// The values of `layers`' weights (own first, then a nested model's layers, as ``Layer/weights``
    /// orders them) under `path`.
    private static func readLayers(_ layers: [Layer], _ file: HDF5File, at root: String, into values: inout [Tensor]) throws {
        for (layer, key) in zip(layers, layerKeys(layers)) {
            let path = "\(root)/\(key)/vars"
            let own = layer is Model ? layer.ownWeights : layer.weights
            if try own.isEmpty && file.kind(of: path) == nil {
                if let model = layer as? Model { try readLayers(model.layers, file, at: "\(root)/\(key)/layers", into: &values) }
                continue
            }
            guard try file.kind(of: path) == .group else {
                throw HDF5Error(file: file.name, path: path, message: "is missing: the file has no weights for layer '\(layer.name)'")
            }
            let names = try file.memberNames(ofGroup: path)
            guard names.count == own.count else {
                throw HDF5Error(file: file.name, path: path, message: "holds \(names.count) weights for layer '\(layer.name)', which has \(own.count)")
            }
            for (i, w) in own.enumerated() { values.append(try TFKerasHDF5.readValue(file, "\(path)/\(i)", for: w)) }
            if let model = layer as? Model { try readLayers(model.layers, file, at: "\(root)/\(key)/layers", into: &values) }
        }
    }

    /// Reads `/optimizer/vars` into `optimizer` (built for `model`) when its layout maps; returns the
    /// learning rate the file holds, or `nil` when the file has no optimizer state.
    static func readOptimizer(_ file: HDF5File, into optimizer: Optimizer, model: Model) throws -> [(Variable, Tensor)]? {
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
    /// without compression as Keras writes them (minizip; the JSON members dated 1980-01-01 as Keras'
    /// `zf.open(name, "w")` does, the weights with the current time).
    static func writeArchive(_ model: Sequential, to path: String, includeOptimizer: Bool) throws {
        var config = try model.kerasModelConfig(.keras3)
        config["compile_config"] = .object(includeOptimizer ? try model.keras3CompileConfig() : JSONObject())
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        var metadata: JSONObject = ["keras_version": .string(kerasVersion), "date_saved": .string(formatter.string(from: Date()))]
        // A legacy (OptimizerV2) optimizer is written as its Keras 3 counterpart; this key (which Keras
        // does not read) brings it back as the legacy class, so a Descent model resumes on its own numbers.
        if includeOptimizer, let optimizer = model.optimizer, !(optimizer is Keras3.Optimizer) {
            metadata[KerasOptimizerFormats.familyMetadataKey] = "legacy"
        }
        let weights = try weightsTree(of: model, includeOptimizer: includeOptimizer)
        func failure(_ what: String) -> ModelFileError { ModelFileError(file: path, path: "/", message: "cannot write the zip archive: \(what)") }
        try AtomicFile.write(to: path, viaTemporaryFile: { temporary in
            // A scratch file beside the temporary archive: no atomic replace or fsync needed.
            let h5 = temporary + ".weights.h5"
            defer { unlink(h5) }
            try weights.write(toScratchFile: h5)
            guard let zip = zipOpen64(temporary, APPEND_STATUS_CREATE) else { throw failure("zipOpen64 failed") }
            var open = true
            defer { if open { zipClose(zip, nil) } }
            func member(_ name: String, date: DateComponents, large: Bool, _ write: () throws -> Void) throws {
                let status = descent_zip_open_stored(zip, name, UInt32(date.year ?? 1980), UInt32(date.month ?? 1), UInt32(date.day ?? 1),
                                                     UInt32(date.hour ?? 0), UInt32(date.minute ?? 0), UInt32(date.second ?? 0), large ? 1 : 0)
                guard status == ZIP_OK else { throw failure("cannot add \(name) (\(status))") }
                try write()
                guard zipCloseFileInZip(zip) == ZIP_OK else { throw failure("cannot finish \(name)") }
            }
            func append(_ pointer: UnsafeRawPointer?, _ count: Int, _ name: String) throws {
                guard count > 0 else { return }
                guard zipWriteInFileInZip(zip, pointer, UInt32(count)) == ZIP_OK else { throw failure("cannot write \(name) (disk full?)") }
            }
            let epoch = DateComponents(year: 1980, month: 1, day: 1, hour: 0, minute: 0, second: 0)
            for (name, text) in [("metadata.json", JSONValue.object(metadata).serialized), ("config.json", JSONValue.object(config).serialized)] {
                try member(name, date: epoch, large: false) {
                    var bytes = Array(text.utf8)
                    try bytes.withUnsafeMutableBytes { try append($0.baseAddress, $0.count, name) }
                }
            }
            let fd = Glibc.open(h5, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw failure("cannot reopen the weights written") }
            defer { close(fd) }
            var info = stat()
            fstat(fd, &info)
            let now = Calendar(identifier: .gregorian).dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date())
            try member("model.weights.h5", date: now, large: info.st_size >= 0xFFFF_FFFF) {
                let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 4096)
                defer { chunk.deallocate() }
                while true {
                    let n = read(fd, chunk.baseAddress, chunk.count)
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw failure("cannot read the weights written") }
                    if n == 0 { break }
                    try append(chunk.baseAddress, n, "model.weights.h5")
                }
            }
            open = false
            guard zipClose(zip, nil) == ZIP_OK else { throw failure("cannot finish the archive (disk full?)") }
        })
    }

    /// The members of a `.keras` archive: the configuration (`config.json`; `metadata.json` must parse
    /// too), and the weights extracted to a temporary file (removed by the caller). Every member's
    /// CRC-32 is checked (minizip, with zlib's crc32).
    static func readArchive(_ path: String) throws -> (config: JSONValue, metadata: JSONValue, weightsPath: String) {
        guard let zip = unzOpen64(path) else {
            throw ModelFileError(file: path, path: "/", message: "not a readable zip archive (a .keras file is one)")
        }
        defer { unzClose(zip) }
        /// Streams member `name` to `sink`, at most `limit` bytes; `direct` reads a stored member from the
        /// archive file itself in large chunks.
        func extract(_ name: String, limit: UInt64, direct: Bool = false, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            func bad(_ why: String) -> ModelFileError { ModelFileError(file: path, path: name, message: why) }
            guard unzLocateFile(zip, name, 1) == UNZ_OK else { throw bad("is missing from the archive") }
            var info = unz_file_info64()
            guard unzGetCurrentFileInfo64(zip, &info, nil, 0, nil, 0, nil, 0) == UNZ_OK else { throw bad("has a damaged directory entry") }
            guard info.uncompressed_size <= limit else { throw bad("is larger than \(limit >> 20) MiB") }
            guard unzOpenCurrentFile(zip) == UNZ_OK else { throw bad("cannot be opened (damaged archive?)") }
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 16)
            defer { chunk.deallocate() }
            if direct && info.compression_method == 0 && info.compressed_size == info.uncompressed_size {
                // The stored weights member: read straight from the archive at the member's
                // offset in big chunks, checking the CRC with zlib (minizip copies stored bytes one at a time).
                let offset = unzGetCurrentFileZStreamPos64(zip)
                unzCloseCurrentFile(zip)
                let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0, offset > 0 else { if fd >= 0 { close(fd) }; throw bad("cannot be read") }
                defer { close(fd) }
                var crc = crc32(0, nil, 0)
                var done: UInt64 = 0
                while done < info.uncompressed_size {
                    let want = Int(min(UInt64(chunk.count), info.uncompressed_size - done))
                    let n = pread(fd, chunk.baseAddress, want, off_t(offset) + off_t(done))
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw bad("is truncated (the archive ends inside it)") }
                    crc = crc32(crc, chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt32(n))
                    try sink(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
                    done += UInt64(n)
                }
                guard UInt64(crc) == UInt64(info.crc) else { throw bad("its CRC-32 does not match the archive's (damaged file)") }
                return
            }
            var total: UInt64 = 0
            do {
                while true {
                    let n = unzReadCurrentFile(zip, chunk.baseAddress, UInt32(chunk.count))
                    guard n >= 0 else { throw bad("cannot be read (damaged archive? minizip error \(n))") }
                    if n == 0 { break }
                    total += UInt64(n)
                    guard total <= info.uncompressed_size else { throw bad("holds more bytes than its directory entry says") }
                    try sink(UnsafeRawBufferPointer(rebasing: chunk[0..<Int(n)]))
                }
            } catch {
                unzCloseCurrentFile(zip)
                throw error
            }
            let closed = unzCloseCurrentFile(zip)
            guard closed != UNZ_CRCERROR else { throw bad("its CRC-32 does not match the archive's (damaged file)") }
            guard closed == UNZ_OK, total == info.uncompressed_size else { throw bad("is truncated or damaged") }
        }
        func extractJSON(_ name: String) throws -> JSONValue {
            var bytes: [UInt8] = []
            try extract(name, limit: 64 << 20) { bytes.append(contentsOf: $0) }
            do { return try JSONValue(parsing: bytes) } catch { throw ModelFileError(file: path, path: name, message: "\(error)") }
        }
        let metadata = try extractJSON("metadata.json")
        let config = try extractJSON("config.json")
        let folder = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let target = "\(folder)/descent-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).weights.h5"
        let fd = Glibc.open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ModelFileError(file: path, path: "model.weights.h5", message: "cannot create a temporary file in \(folder)") }
        do {
            defer { close(fd) }
            try extract("model.weights.h5", limit: UInt64.max, direct: true) { chunk in
                guard write(fd, chunk.baseAddress, chunk.count) == chunk.count else {
                    throw ModelFileError(file: path, path: "model.weights.h5", message: "cannot write the temporary copy in \(folder) (disk full?)")
                }
            }
        } catch {
            unlink(target)
            throw error
        }
        return (config, metadata, target)
    }
}
