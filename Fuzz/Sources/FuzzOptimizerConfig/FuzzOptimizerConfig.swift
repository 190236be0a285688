import Descent
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): `Optimizer.deserialize(json:)` on arbitrary
/// bytes (a serialized optimizer, a bare name such as `adam`, a JSON string).
///
/// Any thrown error is fine. Checked properties of an optimizer that deserializes:
/// - it serializes, and its serialization deserializes again to an optimizer that serializes to the
///   same text (Keras' `get_config` / `from_config` round trip);
/// - two `applyGradients` steps (a dense and a sparse gradient on two tiny variables) throw or
///   return, and a returning step counts one iteration.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = FuzzSupport.silenceWarningsOnce
    guard let optimizer = try? Optimizer.deserialize(jsonBytes: FuzzSupport.bytes(data, size)) else { return 0 }

    let serialized: JSONObject
    do { serialized = try optimizer.serialize() } catch {
        FuzzSupport.fail("deserialized, but serialize() threw: \(error)")
    }
    let again: Optimizer
    do { again = try Optimizer.deserialize(serialized) } catch {
        FuzzSupport.fail("serialize() wrote a document deserialize() rejects (\(error)): \(serialized.serialized)")
    }
    do {
        let reserialized = try again.serialize()
        guard reserialized.serialized == serialized.serialized else {
            FuzzSupport.fail("round trip changed the serialization: \(serialized.serialized) -> \(reserialized.serialized)")
        }
    } catch {
        FuzzSupport.fail("the re-deserialized optimizer's serialize() threw: \(error)")
    }

    applyTwoSteps(optimizer)
    return 0
}

/// Two steps of a dense gradient on a float32 vector and a sparse one (a duplicate index) on a float64
/// matrix. Thrown errors are fine (e.g. an optimizer that rejects sparse updates).
func applyTwoSteps(_ optimizer: Optimizer) {
    do {
        let vector = Variable(Tensor([0.5, -1.0, 2.0] as [Float]), name: "fuzz_vector")
        let matrix = Variable(try Tensor(shape: [3, 2], scalars: [1.0, -2.0, 0.25, 4.0, 0.0, -0.5] as [Double]),
                              name: "fuzz_matrix")
        let dense = Gradient.dense(Tensor([0.1, -0.2, 0.3] as [Float]))
        let rows = try Tensor(shape: [2, 2], scalars: [0.5, 1.0, -0.25, 2.0] as [Double])
        let sparse = Gradient.sparse(try IndexedSlices(values: rows, indices: [2, 2], denseShape: [3, 2]))
        // The count a step advances: a Keras 3 LossScaleOptimizer's own `iteration` stays 0 (as in Keras),
        // and its step returns its inner optimizer's count.
        func count(_ opt: Optimizer) -> Int64 {
            (opt as? Keras3.LossScaleOptimizer).map { count($0.innerOptimizer) } ?? opt.iterationCount
        }
        for step in 1...2 {
            let before = count(optimizer)
            let after = try optimizer.applyGradients([(dense, vector), (sparse, matrix)])
            guard after == before + 1, count(optimizer) == after else {
                FuzzSupport.fail("step \(step): iterations went from \(before) to \(after) (now \(count(optimizer)))")
            }
        }
    } catch {
        return
    }
}
