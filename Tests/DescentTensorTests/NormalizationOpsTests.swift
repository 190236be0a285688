import DescentAutodiff
import DescentTensor
import Testing

/// The fused batch/layer normalization operations: values against the composed operations, gradients
/// against finite differences (float64), second-order gradients, and argument errors.
@Suite struct NormalizationOpsTests {
    /// The reference: `tf.nn.moments` then `tf.nn.batch_normalization`, as composed operations.
    func composedBatchNorm(_ x: Tensor, axis: Int, scale: Tensor?, offset: Tensor?, epsilon: Double) throws -> Tensor {
        let reduced = (0..<x.rank).filter { $0 != axis }
        var channel = [Int](repeating: 1, count: x.rank)
        channel[axis] = x.shape[axis]
        let mean = try x.mean(axes: reduced, keepDims: true)
        let variance = try (x - mean).squared().mean(axes: reduced, keepDims: true)
        var inv = try (variance + epsilon).rsqrt()
        if let scale { inv = try inv * scale.reshaped(to: channel) }
        let shift = try (offset.map { try $0.reshaped(to: channel) } ?? Tensor.zeros(shape: channel, dtype: x.dtype)) - mean * inv
        return try x * inv + shift
    }

    @Test(arguments: [([6, 3], 1), ([2, 3, 4], 2), ([2, 3, 4], 1), ([2, 2, 2, 3], 3), ([3, 2, 2], 0)])
    func batchNormMatchesComposedOpsAndFiniteDifferences(_ shape: [Int], _ axis: Int) throws {
        let x = try sample(shape, seed: 3)
        let c = shape[axis]
        let scale = try sample([c], seed: 4, low: 0.5, high: 1.5), offset = try sample([c], seed: 5)
        let (y, mean, variance) = try x.batchNormalized(axis: axis, scale: scale, offset: offset, epsilon: 1e-3)
        expectClose(y.doubles, try composedBatchNorm(x, axis: axis, scale: scale, offset: offset, epsilon: 1e-3).doubles, tolerance: 1e-12)
        let reduced = (0..<x.rank).filter { $0 != axis }
        expectClose(mean.doubles, try x.mean(axes: reduced).doubles, tolerance: 1e-12)
        #expect(mean.shape == [c] && variance.shape == [c])
        try checkGradient([x, scale, offset]) { try $0[0].batchNormalized(axis: axis, scale: $0[1], offset: $0[2], epsilon: 1e-3).output }
        try checkGradient([x]) { try $0[0].batchNormalized(axis: axis - x.rank, scale: nil, offset: nil, epsilon: 1e-2).output }
        let movingMean = try sample([c], seed: 6), movingVariance = try sample([c], seed: 7, low: 0.5, high: 2)
        try checkGradient([x, scale, offset]) {
            try $0[0].batchNormalized(axis: axis, mean: movingMean, variance: movingVariance, scale: $0[1], offset: $0[2], epsilon: 1e-3)
        }
    }

    @Test(arguments: [([4, 5], 1), ([2, 3, 4], 2), ([2, 3, 4], 1), ([2, 2, 3], 0)])
    func layerNormMatchesFiniteDifferences(_ shape: [Int], _ axis: Int) throws {
        let x = try sample(shape, seed: 8)
        let c = shape[axis]
        let scale = try sample([c], seed: 9, low: 0.5, high: 1.5), offset = try sample([c], seed: 10)
        var channel = [Int](repeating: 1, count: x.rank)
        channel[axis] = c
        let mean = try x.mean(axes: [axis], keepDims: true)
        let variance = try (x - mean).squared().mean(axes: [axis], keepDims: true)
        let reference = try (x - mean) * (variance + 1e-3).rsqrt() * scale.reshaped(to: channel) + offset.reshaped(to: channel)
        expectClose(try x.layerNormalized(axis: axis, scale: scale, offset: offset, epsilon: 1e-3).doubles, reference.doubles, tolerance: 1e-12)
        try checkGradient([x, scale, offset]) { try $0[0].layerNormalized(axis: axis, scale: $0[1], offset: $0[2], epsilon: 1e-3) }
        try checkGradient([x]) { try $0[0].layerNormalized(axis: axis, scale: nil, offset: nil, epsilon: 1e-3) }
    }

    /// A tape recording the backward pass gets it as differentiable operations: the gradient of a
    /// gradient matches finite differences of the (fast) first-order gradient.
    @Test func secondOrderGradients() throws {
        let x = try sample([4, 3], seed: 11)
        let scale = try sample([3], seed: 12, low: 0.5, high: 1.5), offset = try sample([3], seed: 13)
        let r = try sample([4, 3], seed: 14)
        for op in ["batch", "layer"] {
            try checkGradient([x, scale], tolerance: 1e-5) { xs in
                let inner = GradientTape()
                let (input, s) = (inner.watch(xs[0]), inner.watch(xs[1]))
                let loss = try inner.record { () throws -> Tensor in
                    let y = op == "batch" ? try input.batchNormalized(axis: 1, scale: s, offset: offset, epsilon: 1e-3).output
                        : try input.layerNormalized(axis: 1, scale: s, offset: offset, epsilon: 1e-3)
                    return try (y * r).sum()
                }
                let grads = try inner.gradient(of: loss, wrt: [input, s])
                return try (grads[0]!.denseValue.squared().sum() + grads[1]!.denseValue.squared().sum())
            }
        }
    }

    @Test func float32IsCloseToFloat64() throws {
        let x64 = try sample([64, 5], seed: 15, low: 90, high: 110)
        let x32 = x64.cast(to: .float32)
        let y64 = try x64.batchNormalized(axis: 1, scale: nil, offset: nil, epsilon: 1e-3).output
        let y32 = try x32.batchNormalized(axis: 1, scale: nil, offset: nil, epsilon: 1e-3).output
        expectClose(y32.doubles, y64.doubles, tolerance: 2e-4)
        let l32 = try x32.layerNormalized(axis: 1, scale: nil, offset: nil, epsilon: 1e-3)
        expectClose(l32.doubles, try x64.layerNormalized(axis: 1, scale: nil, offset: nil, epsilon: 1e-3).doubles, tolerance: 2e-4)
    }

    /// Large tensors run in several blocks (and threads); the sums do not depend on the thread count.
    @Test func resultsDoNotDependOnTheThreadCount() throws {
        let x = try Tensor.randomUniform(shape: [3000, 24], min: -3, max: 3, dtype: .float32, seed: 16)
        let g = try Tensor.randomUniform(shape: [3000, 24], min: -1, max: 1, dtype: .float32, seed: 17)
        func run() throws -> [Tensor] {
            let tape = GradientTape(persistent: true)
            let input = tape.watch(x)
            let (bn, ln) = try tape.record { () throws -> (Tensor, Tensor) in
                (try (input.batchNormalized(axis: -1, scale: nil, offset: nil, epsilon: 1e-3).output * g).sum(),
                 try (input.layerNormalized(axis: -1, scale: nil, offset: nil, epsilon: 1e-3) * g).sum())
            }
            return [try tape.gradient(of: bn, wrt: input)!.denseValue, try tape.gradient(of: ln, wrt: input)!.denseValue]
        }
        let one = try ThreadPool.withThreadCount(1) { try run() }
        let four = try ThreadPool.withThreadCount(4) { try run() }
        #expect(one == four)
    }

    @Test func argumentErrors() throws {
        let x = try Tensor.zeros(shape: [4, 3])
        #expect(throws: TensorError.self) { try x.batchNormalized(axis: 2, scale: nil, offset: nil, epsilon: 1e-3) }
        #expect(throws: TensorError.self) { try x.layerNormalized(axis: -3, scale: nil, offset: nil, epsilon: 1e-3) }
        #expect(throws: TensorError.self) { try x.batchNormalized(axis: 1, scale: Tensor.ones(shape: [4]), offset: nil, epsilon: 1e-3) }
        #expect(throws: TensorError.self) { try x.layerNormalized(axis: 1, scale: nil, offset: Tensor.ones(shape: [3], dtype: .float64), epsilon: 1e-3) }
        #expect(throws: TensorError.self) { try x.batchNormalized(axis: 1, scale: nil, offset: nil, epsilon: -1) }
        #expect(throws: TensorError.self) { try x.batchNormalized(axis: 1, mean: Tensor.zeros(shape: [2]), variance: Tensor.ones(shape: [3]), scale: nil, offset: nil, epsilon: 1e-3) }
        #expect(throws: TensorError.self) { try Tensor.zeros(shape: [0, 3]).batchNormalized(axis: 1, scale: nil, offset: nil, epsilon: 1e-3) }
        #expect(throws: TensorError.self) { try Tensor.zeros(shape: [2, 3], dtype: .int64).layerNormalized(axis: 1, scale: nil, offset: nil, epsilon: 1e-3) }
    }
}
