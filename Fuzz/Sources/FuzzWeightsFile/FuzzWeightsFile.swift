import Descent
@_spi(DescentInternals) import DescentKeras
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): `Sequential.loadWeights(fromFile:)` on a file
/// holding arbitrary bytes, into a small built model (Dense 4→3 ReLU, Dense 3→2: weights `[4, 3]`, `[3]`,
/// `[3, 2]`, `[2]`).
///
/// Any thrown error is fine. Checked properties:
/// - a load that throws leaves every weight as it was (no half-applied load);
/// - a load that succeeds read a well-formed file (``malformation(_:)``): nothing in it was silently
///   skipped or guessed;
/// - after a load that succeeds, `saveWeights(toFile:)` then `loadWeights(fromFile:)` gives the same
///   weights (NaN equal to NaN).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = FuzzSupport.scratchPath("weights.json")
    FuzzSupport.writeFile(FuzzSupport.bytes(data, size), to: path)
    defer { FuzzSupport.removeFile(path) }
    let before = model.getWeights()
    do { try model.loadJSONWeights(fromFile: path) } catch {
        guard sameValues(model.getWeights(), before) else {
            FuzzSupport.fail("loadWeights threw (\(error)) but changed the weights")
        }
        return 0
    }
    if let problem = malformation(FuzzSupport.text(data, size)) {
        FuzzSupport.fail("loadWeights accepted a malformed weights file: \(problem)")
    }
    let loaded = model.getWeights()
    let savedPath = FuzzSupport.scratchPath("weights-saved.json")
    defer { FuzzSupport.removeFile(savedPath) }
    do {
        try model.saveJSONWeights(toFile: savedPath)
        try model.setWeights(before)
        try model.loadJSONWeights(fromFile: savedPath)
    } catch {
        FuzzSupport.fail("save/load of loaded weights threw: \(error)")
    }
    guard sameValues(model.getWeights(), loaded) else {
        FuzzSupport.fail("saveWeights then loadWeights changed the weights")
    }
    return 0
}

/// The model every input is loaded into, built once.
///
/// `nonisolated(unsafe)`: libFuzzer calls `LLVMFuzzerTestOneInput` on one thread only (this harness is
/// not run with `-fork`/`-jobs` threads sharing a process), so the model is never used concurrently.
nonisolated(unsafe) let model: Sequential = {
    do {
        let m = try Sequential([try Dense(3, activation: .relu), try Dense(2)], name: "fuzz_model")
        try m.build(inputShape: [1, 4])
        return m
    } catch { FuzzSupport.fail("cannot build the harness model: \(error)") }
}()

/// Whether two weight lists have the same shapes, dtypes and values (NaN equal to NaN).
func sameValues(_ a: [Tensor], _ b: [Tensor]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { x, y in
        x.shape == y.shape && x.dtype == y.dtype
            && zip(x.doubles, y.doubles).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
}

/// What is wrong with a weights document that `loadWeights` should have rejected, or `nil`: the format
/// `saveWeights` writes is `{"format": "descent-weights", "version": 1, "weights": [...]}`, one entry per
/// model weight with a string `name`, an integer `shape` equal to the weight's and a `values` list of
/// exactly that many numbers.
func malformation(_ text: String) -> String? {
    guard let document = (try? JSONValue(parsing: text))?.objectValue else { return "not a JSON object" }
    guard document["version"] == .int(1) else { return "version \(document["version"]?.serialized ?? "missing") is not 1" }
    guard let entries = document["weights"]?.arrayValue else { return "no weights list" }
    for (i, (entry, weight)) in zip(entries, model.weights).enumerated() {
        guard let o = entry.objectValue else { return "weights[\(i)] is not an object" }
        guard o["name"]?.stringValue != nil else { return "weights[\(i)].name is not a string" }
        guard let shape = o["shape"]?.arrayValue, shape.allSatisfy({ $0.intValue != nil }),
            shape.compactMap(\.intValue) == weight.shape
        else { return "weights[\(i)].shape \(o["shape"]?.serialized ?? "missing") is not \(weight.shape)" }
        guard let values = o["values"]?.arrayValue, values.allSatisfy({ $0.doubleValue != nil }),
            values.count == weight.scalarCount
        else { return "weights[\(i)].values is not a list of \(weight.scalarCount) numbers" }
    }
    return nil
}
