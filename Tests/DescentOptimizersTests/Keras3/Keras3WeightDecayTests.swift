@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Foundation
import Testing

/// Keras 3's decoupled weight decay folded into the fused kernels' pass (block by block, in front of the
/// update) against the whole-tensor decay before the reference `updateStep`: the same numbers, bit for
/// bit, over sizes that span decay blocks and the threads' shares, with exclusions, both dtypes, sparse
/// gradients (never folded) and a variable listed twice (never folded: Keras decays each occurrence
/// before any update).
@Suite struct Keras3WeightDecayTests {
    final class ReferenceAdamW: Keras3.AdamW { override var fusesDenseUpdates: Bool { false } }
    final class ReferenceLion: Keras3.Lion { override var fusesDenseUpdates: Bool { false } }
    final class ReferenceSGD: Keras3.SGD { override var fusesDenseUpdates: Bool { false } }

    /// Variables of 70,001 (above two threads' grain, not a multiple of a block or a SIMD width), 2,049
    /// and 37 elements in float32, one of 5,000 in float64, and a bias that is excluded.
    static func variables() throws -> [Variable] {
        func values(_ n: Int, _ phase: Double) -> [Double] { (0..<n).map { sin(Double($0) * 0.37 + phase) * 3 } }
        return [
            Variable(try Tensor(shape: [70_001], scalars: values(70_001, 0).map { Float($0) }), name: "dense/kernel"),
            Variable(try Tensor(shape: [2_049], scalars: values(2_049, 1).map { Float($0) }), name: "dense_1/kernel"),
            Variable(try Tensor(shape: [37], scalars: values(37, 2).map { Float($0) }), name: "dense/bias"),
            Variable(try Tensor(shape: [5_000], scalars: values(5_000, 3)), name: "wide/kernel"),
            Variable(try Tensor(shape: [4, 3], scalars: values(12, 4).map { Float($0) }), name: "embedding/embeddings"),
        ]
    }

    /// Runs three steps (step 2 with a sparse gradient for the embedding) and returns every variable's and
    /// optimizer variable's values.
    static func run(_ opt: Keras3.Optimizer, duplicate: Bool = false) throws -> [[Double]] {
        try opt.excludeFromWeightDecay(names: ["bias"])
        let vars = try variables()
        for step in 0..<3 {
            var pairs: [(Gradient?, Variable)] = []
            for (k, v) in vars.enumerated() {
                let g: [Double] = (0..<v.scalarCount).map { cos(Double($0 * (step + 2) + k) * 0.11) }
                if k == 4 && step == 1 {
                    let rows = try Tensor(shape: [2, 3], scalars: g.prefix(6).map { Float($0) })
                    pairs.append((.sparse(try IndexedSlices(values: rows, indices: [3, 1], denseShape: [4, 3])), v))
                } else if v.dtype == .float64 {
                    pairs.append((.dense(try Tensor(shape: v.shape, scalars: g)), v))
                } else {
                    pairs.append((.dense(try Tensor(shape: v.shape, scalars: g.map { Float($0) })), v))
                }
            }
            if duplicate { pairs.append(pairs[1]) }
            try opt.applyGradients(pairs)
        }
        return vars.map { $0.untrackedValue.doubles } + opt.weights.map { $0.untrackedValue.doubles }
    }

    @Test func foldedWeightDecayEqualsTheWholeTensorDecay() throws {
        let wd = Keras3.Options(weightDecay: 0.05)
        for duplicate in [false, true] {
            let adamW = try Keras3.AdamW(learningRate: 0.01, weightDecay: 0.1)
            #expect(adamW.fusesDenseUpdates)
            #expect(try Self.run(adamW, duplicate: duplicate)
                    == Self.run(try ReferenceAdamW(learningRate: 0.01, weightDecay: 0.1), duplicate: duplicate))
            #expect(try Self.run(try Keras3.AdamW(learningRate: 0.01, weightDecay: 0.1, amsgrad: true), duplicate: duplicate)
                    == Self.run(try ReferenceAdamW(learningRate: 0.01, weightDecay: 0.1, amsgrad: true), duplicate: duplicate))
            #expect(try Self.run(try Keras3.Lion(learningRate: 0.001, options: wd), duplicate: duplicate)
                    == Self.run(try ReferenceLion(learningRate: 0.001, options: wd), duplicate: duplicate))
            #expect(try Self.run(try Keras3.SGD(learningRate: 0.1, momentum: 0.9, options: wd), duplicate: duplicate)
                    == Self.run(try ReferenceSGD(learningRate: 0.1, momentum: 0.9, options: wd), duplicate: duplicate))
        }
    }

    @Test func decayMovesTheVariablesByTheKerasRule() throws {
        // With a zero gradient, plain SGD changes a variable only by its decay: var − (var·wd)·lr.
        let opt = try Keras3.SGD(learningRate: 0.5, options: Keras3.Options(weightDecay: 0.25))
        try opt.excludeFromWeightDecay(names: ["bias"])
        let n = 5_000
        let start: [Float] = (0..<n).map { Float($0 % 17) - 8 }
        let kernel = Variable(try Tensor(shape: [n], scalars: start), name: "d/kernel")
        let bias = Variable(try Tensor(shape: [n], scalars: start), name: "d/bias")
        let zeros = try Tensor.zeros(shape: [n], dtype: .float32)
        try opt.applyGradients([(.dense(zeros), kernel), (.dense(zeros), bias)])
        #expect(kernel.untrackedValue.doubles == start.map { Double($0 - ($0 * 0.25) * 0.5) })
        #expect(bias.untrackedValue.doubles == start.map { Double($0) })
    }
}
