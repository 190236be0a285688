import Descent
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): `descent replay` on an arbitrary document,
/// through `Replay.command`, the whole command short of the process.
///
/// Checked: the command's contract. Status 0: standard output is one line of JSON that parses,
/// standard error is empty, and the document was well-formed where the harness checks it (every
/// variable's `dtype` absent, null, `"float32"`, `"float64"` or TensorFlow's aliases `"float"`, `"double"`: nothing silently defaulted). Status 1:
/// standard output is empty, standard error is one line `error: ...`. No other status.
///
/// Output limit: the library's own (`Replay`'s `maxOutputNumbers`), passed smaller than its default for
/// speed: `FUZZ_REPLAY_MAX_OUTPUT_SCALARS` numbers (steps × variable elements; default 4,000,000). A
/// document over it must give status 1 with the library's error, checked like every other input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = FuzzSupport.silenceWarningsOnce
    let input = FuzzSupport.text(data, size)
    let bytes = FuzzSupport.bytes(data, size)
    let result = Replay.command(path: "-", readStandardInput: { bytes }, readFile: { path in
        FuzzSupport.fail("Replay.command read a file (\(path)) for the path '-'")
    }, maxOutputNumbers: maxOutputScalars)
    switch result.status {
    case 0:
        guard result.stderr.isEmpty else { FuzzSupport.fail("status 0 with standard error: \(result.stderr)") }
        guard result.stdout.hasSuffix("\n"), result.stdout.dropLast().allSatisfy({ !$0.isNewline }) else {
            FuzzSupport.fail("status 0: standard output is not one line: \(result.stdout)")
        }
        do { _ = try JSONValue(parsing: String(result.stdout.dropLast())) } catch {
            FuzzSupport.fail("status 0: standard output is not JSON (\(error)): \(result.stdout)")
        }
        if let bad = badDType(input) { FuzzSupport.fail("status 0 for a document with \(bad)") }
    case 1:
        guard result.stdout.isEmpty else { FuzzSupport.fail("status 1 with standard output: \(result.stdout)") }
        guard result.stderr.hasPrefix("error: "), result.stderr.hasSuffix("\n"),
            result.stderr.dropLast().allSatisfy({ !$0.isNewline })
        else { FuzzSupport.fail("status 1: standard error is not one 'error: ' line: \(result.stderr)") }
    default:
        FuzzSupport.fail("status \(result.status) (expected 0 or 1)")
    }
    return 0
}

/// The output limit passed to `Replay.command` (numbers in the output), from `FUZZ_REPLAY_MAX_OUTPUT_SCALARS`.
let maxOutputScalars = FuzzSupport.environmentInt("FUZZ_REPLAY_MAX_OUTPUT_SCALARS", default: 4_000_000)

/// A variable `dtype` in the document that is present and not null, `"float32"` or `"float64"`, or `nil`.
func badDType(_ input: String) -> String? {
    guard let variables = (try? JSONValue(parsing: input))?.objectValue?["variables"]?.arrayValue else { return nil }
    for (i, variable) in variables.enumerated() {
        guard let dtype = variable.objectValue?["dtype"], dtype != .null else { continue }
        // TensorFlow's names and its aliases (`tf.as_dtype("float")` is float32, `"double"` float64).
        if !["float32", "float64", "float", "double"].contains(dtype) { return "variables[\(i)].dtype \(dtype.serialized)" }
    }
    return nil
}
