import Descent
import Foundation
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): the `.keras` reader (zip, JSON members, HDF5 weights) on a file of arbitrary
/// bytes: `loadModel(fromFile:)` of a `.keras` model, and `loadWeights(fromFile:)` into a fixed model.
///
/// Any thrown error is fine; a crash is a finding (libhdf5 decodes the metadata in a child process, so a
/// damaged heap must give an error). Checked:
/// - a `loadWeights` that throws changes no weight;
/// - a model that loads predicts, and saving and loading it again gives the same predictions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = FuzzSupport.scratchPath("model.keras")
    FuzzSupport.writeFile(FuzzSupport.bytes(data, size), to: path)
    defer { FuzzSupport.removeFile(path) }
    checkWeights(path)
    guard let model = try? loadModel(fromFile: path), let input = model.builtInputShape else { return 0 }
    guard input.dropFirst().reduce(1, *) <= 4096, model.weights.reduce(0, { $0 + $1.scalarCount }) <= 1 << 20 else { return 0 }
    guard let x = try? Tensor.zeros(shape: [2] + input.dropFirst()), let before = try? model.predict(x) else { return 0 }
    let again = FuzzSupport.scratchPath("again.keras")
    defer { FuzzSupport.removeFile(again) }
    do {
        try model.save(toFile: again)
        let reloaded = try loadModel(fromFile: again)
        let after = try reloaded.predict(x)
        guard sameNumbers(before.doubles, after.doubles) else { FuzzSupport.fail("save then load changed the predictions") }
    } catch {
        // A model with an unsaveable part (e.g. an optimizer config Keras 3 cannot hold) may refuse to save.
    }
    return 0
}

private func checkWeights(_ path: String) {
    guard let model = try? Sequential([Dense(6, activation: .relu), Dropout(0.5), Dense(3)]) else { return }
    guard (try? model.build(inputShape: [1, 8])) != nil else { return }
    let before = model.getWeights()
    do {
        try model.loadWeights(fromFile: path)
    } catch {
        if model.getWeights() != before { FuzzSupport.fail("loadWeights threw (\(error)) but changed the weights") }
    }
}

/// Equal element by element, NaN equal to NaN.
private func sameNumbers(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
}
