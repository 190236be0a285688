import Descent
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): `JSONValue(parsing:)` on arbitrary bytes.
///
/// Any thrown ``JSONError`` is fine. Checked properties of a document that parses:
/// - its ``JSONValue/serialized`` text parses again, to an equal value (NaN equal to NaN);
/// - serializing is a fixed point: the re-parsed value serializes to the same text;
/// - the serialized text is ASCII (Python's `ensure_ascii=True`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let value = try? JSONValue(parsing: FuzzSupport.bytes(data, size)) else { return 0 }
    let serialized = value.serialized
    if let bad = serialized.unicodeScalars.first(where: { !$0.isASCII }) {
        FuzzSupport.fail("serialized text has the non-ASCII scalar U+\(String(bad.value, radix: 16)): \(serialized)")
    }
    let reparsed: JSONValue
    do { reparsed = try JSONValue(parsing: serialized) } catch {
        FuzzSupport.fail("serialized text does not parse (\(error)): \(serialized)")
    }
    guard FuzzSupport.sameJSON(value, reparsed) else {
        FuzzSupport.fail("round trip changed the value: \(serialized) -> \(reparsed.serialized)")
    }
    guard reparsed.serialized == serialized else {
        FuzzSupport.fail("serialization is not a fixed point: \(serialized) -> \(reparsed.serialized)")
    }
    return 0
}
