import Descent
import Foundation
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): `Digits.load(contentsOf:)`, the digits CSV
/// reader (plain or gzip-compressed), on a file holding arbitrary bytes.
///
/// Any thrown error is fine. Checked: a data set that loads has `x` of shape `[n, 64]`, `y` of shape
/// `[n]` and labels in 0...9.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = FuzzSupport.scratchPath("digits.csv")
    FuzzSupport.writeFile(FuzzSupport.bytes(data, size), to: path)
    defer { FuzzSupport.removeFile(path) }
    guard let dataset = try? Digits.load(contentsOf: URL(fileURLWithPath: path)) else { return 0 }
    let n = dataset.count
    guard dataset.x.shape == [n, 64], dataset.y.shape == [n] else {
        FuzzSupport.fail("loaded x of shape \(dataset.x.shape) and y of shape \(dataset.y.shape)")
    }
    if let bad = dataset.y.doubles.first(where: { !(0...9).contains($0) }) {
        FuzzSupport.fail("loaded the label \(bad)")
    }
    return 0
}
