import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Foundation

// The JSON weights format of Descent 0.1 (`saveJSONWeights` / `loadJSONWeights`), replaced by Keras'
// HDF5 layouts (`saveWeights` / `loadWeights`, ModelFiles.swift); `loadWeights` still reads it, with a
// deprecation warning, for one release:
//
//     {"format": "descent-weights", "version": 1, "weights": [
//         {"name": "dense/kernel", "shape": [64, 32], "dtype": "float32", "values": [0.1, ...]}, ...]}
//
// `values` are the elements in row-major order, written as Python's `json.dumps` writes floats
// (non-finite weights, e.g. after a diverged run, as `NaN`, `Infinity`, `-Infinity`, which
// `json.loads` reads back); `int64` weights as integers.
//
// Reading is strict, since anything lenient would load wrong weights silently. Every rule, checked for
// every entry before any weight is assigned (all or nothing), with errors naming the file and the JSON
// path (`w.json: weights[2].values[7]: expected a number, got null`):
// - the top level has exactly `format` ("descent-weights"), `version` (1) and `weights` (an array);
// - one entry per model weight, matched by position as Keras' `load_weights` of an HDF5 file does, and
//   each entry has exactly the keys `name`, `shape`, `dtype`, `values`;
// - `name` is a string whose part after the layer (`kernel`, `bias`) equals the model weight's: the
//   layer prefix itself (`dense` vs `dense_2`) differs between models built in one process;
// - `shape` is an array of non-negative integers equal to the model weight's shape (Keras errors on a
//   shape mismatch too); its element count is computed with overflow checks;
// - `dtype` is `float32`, `float64` or `int64`; a float file weight loads into either float dtype
//   (cast, as Keras' assignment does), `int64` only into `int64`;
// - `values` holds exactly that many numbers; for a `float32` weight (in the file or in the model)
//   every finite value must be within float32's range (it would become infinite otherwise); `int64`
//   values must be integers within int64's range.

extension Model {
    /// Writes the weights as JSON (format above) atomically: the file at `path` is replaced only once the
    /// new one is complete and synced, so a crash or kill during the save leaves the previous file whole.
    /// The document is streamed in chunks, not built in memory.
    /// - Throws: `FileWriteError` naming `path`.
    @_spi(DescentInternals)
    public func saveJSONWeights(toFile path: String) throws {
        let ws = weights
        try AtomicFile.write(to: path) { file in
            try file.write(#"{"format": "descent-weights", "version": 1, "weights": ["#)
            for (i, w) in ws.enumerated() {
                let value = w.untrackedValue
                var head = i == 0 ? "{" : ", {"
                head += #""name": "# + JSONValue.string(w.name).serialized
                head += #", "shape": ["# + value.shape.map(String.init).joined(separator: ", ") + "]"
                head += #", "dtype": "# + JSONValue.string(value.dtype.rawValue).serialized + #", "values": ["#
                try file.write(head)
                switch value.dtype {
                case .float32:
                    try value.withUnsafeBufferPointer(as: Float.self) { try writeNumbers($0, to: file) { weightText(Double($0)) } }
                case .float64:
                    try value.withUnsafeBufferPointer(as: Double.self) { try writeNumbers($0, to: file, weightText) }
                case .int64:
                    try value.withUnsafeBufferPointer(as: Int64.self) { try writeNumbers($0, to: file) { String($0) } }
                }
                try file.write("]}")
            }
            try file.write("]}")
        }
    }

    /// Reads weights written by ``saveWeights(toFile:)`` into this (built) model; see the format rules
    /// above. Nothing is assigned unless the whole file is valid.
    /// - Throws: ``TrainingError/badWeightsFile(_:)`` naming the file and the JSON path of the problem.
    @_spi(DescentInternals)
    public func loadJSONWeights(fromFile path: String) throws {
        func bad(_ place: String, _ what: String) -> TrainingError {
            .badWeightsFile("\(path): \(place.isEmpty ? "" : place + ": ")\(what)")
        }
        // Bytes through `FileBytes` (any readable file: a FIFO, `/dev/stdin`), then the strict byte parser,
        // so that invalid UTF-8 is reported with its line and column like any other JSON error.
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path: path) } catch let error as FileReadError {
            throw TrainingError.badWeightsFile("cannot read weights file \(path): \(error.reason)")
        }
        let document: JSONValue
        do { document = try JSONValue(parsing: bytes) } catch {
            throw bad("", "not a Descent weights file (\(error))")
        }
        guard let top = document.objectValue else { throw bad("", "expected a JSON object, got \(document.typeName)") }
        try checkKeys(top, ["format", "version", "weights"], at: "", bad)
        guard top["format"] == "descent-weights" else {
            throw bad("format", "expected \"descent-weights\", got \(top["format"]!.serialized)")
        }
        guard top["version"] == .int(1) else {
            throw bad("version", "expected 1 (the only version), got \(top["version"]!.serialized)")
        }
        guard let entries = top["weights"]!.arrayValue else {
            throw bad("weights", "expected an array, got \(top["weights"]!.typeName)")
        }
        let ws = weights
        guard entries.count == ws.count else {
            throw bad("weights", "holds \(entries.count) weights, model '\(name)' has \(ws.count) (build the model first)")
        }
        var values: [Tensor] = []
        values.reserveCapacity(ws.count)
        for (i, (w, entry)) in zip(ws, entries).enumerated() {
            values.append(try readEntry(entry, at: "weights[\(i)]", for: w, bad))
        }
        try setWeights(values)
    }

    private func checkKeys(_ object: JSONObject, _ keys: [String], at place: String,
                           _ bad: (String, String) -> TrainingError) throws {
        let prefix = place.isEmpty ? "" : place + "."
        if let extra = object.keys.first(where: { !keys.contains($0) }) {
            throw bad(place, "unexpected key \"\(extra)\" (expected exactly \(keys.joined(separator: ", ")))")
        }
        if let missing = keys.first(where: { object[$0] == nil }) { throw bad(prefix + missing, "missing") }
    }

    private func readEntry(_ entry: JSONValue, at place: String, for w: Variable,
                           _ bad: (String, String) -> TrainingError) throws -> Tensor {
        guard let object = entry.objectValue else { throw bad(place, "expected an object, got \(entry.typeName)") }
        try checkKeys(object, ["name", "shape", "dtype", "values"], at: place, bad)
        guard let name = object["name"]!.stringValue else {
            throw bad(place + ".name", "expected a string, got \(object["name"]!.typeName)")
        }
        guard Model.layerRelativeName(name) == Model.layerRelativeName(w.name) else {
            throw bad(place + ".name", "weight '\(name)' does not match the model's weight '\(w.name)' at this position")
        }
        guard let shapeItems = object["shape"]!.arrayValue else {
            throw bad(place + ".shape", "expected an array, got \(object["shape"]!.typeName)")
        }
        var shape: [Int] = [], count = 1
        for (j, item) in shapeItems.enumerated() {
            guard case .int(let d) = item, d >= 0 else {
                throw bad(place + ".shape[\(j)]", "expected a non-negative integer, got \(item.serialized)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw bad(place + ".shape", "\(shapeItems.map(\.serialized)) has too many elements") }
            shape.append(d)
            count = product
        }
        guard shape == w.shape else {
            throw bad(place + ".shape", "weight '\(name)' has shape \(shape), model weight '\(w.name)' has \(w.shape)")
        }
        guard let dtypeName = object["dtype"]!.stringValue else {
            throw bad(place + ".dtype", "expected a string, got \(object["dtype"]!.typeName)")
        }
        guard let fileType = DType(rawValue: dtypeName) else {
            throw bad(place + ".dtype", "unknown dtype \"\(dtypeName)\" (expected float32, float64 or int64)")
        }
        guard fileType == w.dtype || (fileType.isFloatingPoint && w.dtype.isFloatingPoint) else {
            throw bad(place + ".dtype", "weight '\(name)' is \(fileType), model weight '\(w.name)' is \(w.dtype)")
        }
        guard let items = object["values"]!.arrayValue else {
            throw bad(place + ".values", "expected an array, got \(object["values"]!.typeName)")
        }
        guard items.count == count else {
            throw bad(place + ".values", "holds \(items.count) numbers, shape \(shape) needs \(count)")
        }
        if w.dtype == .int64 {
            var numbers: [Int64] = []
            numbers.reserveCapacity(count)
            for (j, item) in items.enumerated() {
                switch item {
                case .int(let v): numbers.append(Int64(v))
                case .double(let d) where d == d.rounded() && abs(d) < 0x1p63: numbers.append(Int64(d))
                default: throw bad(place + ".values[\(j)]", "expected an integer, got \(item.serialized)")
                }
            }
            return try Tensor(shape: shape, scalars: numbers)
        }
        let float32 = fileType == .float32 || w.dtype == .float32
        var numbers: [Double] = []
        numbers.reserveCapacity(count)
        for (j, item) in items.enumerated() {
            guard let d = item.doubleValue else {  // nil for anything but .int and .double
                throw bad(place + ".values[\(j)]", "expected a number, got \(item.serialized)")
            }
            if float32 && d.isFinite && Float(d).isInfinite {
                throw bad(place + ".values[\(j)]", "\(item.serialized) is outside the float32 range")
            }
            numbers.append(d)
        }
        return try Tensor(shape: shape, scalars: numbers).cast(to: w.dtype)
    }

    /// `"kernel"` for `"dense_2/kernel"`: the name within its layer.
    static func layerRelativeName(_ name: String) -> Substring {
        guard let slash = name.firstIndex(of: "/") else { return name[...] }
        return name[name.index(after: slash)...]
    }
}

/// A float weight as Python's `json.dumps` writes it (`NaN`, `Infinity` for non-finite values; for
/// finite ones Swift's `description` is Python's `repr`, shortest round-trip digits).
private func weightText(_ d: Double) -> String { d.isFinite ? d.description : JSONValue.double(d).serialized }

/// Writes `buffer` as comma-separated numbers, in chunks of about 64 KiB.
private func writeNumbers<T>(_ buffer: UnsafeBufferPointer<T>, to file: AtomicFileWriter,
                             _ text: (T) -> String) throws {
    var chunk = ""
    chunk.reserveCapacity(1 << 16 + 64)
    for (i, v) in buffer.enumerated() {
        if i > 0 { chunk += ", " }
        chunk += text(v)
        if chunk.utf8.count >= 1 << 16 {
            try file.write(chunk)
            chunk.removeAll(keepingCapacity: true)
        }
    }
    try file.write(chunk)
}
