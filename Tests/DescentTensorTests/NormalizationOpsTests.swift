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
        let four = try ThreadPool.withThreadCount(4) { try ThreadPool.withKernelGrain(1 << 12) { try run() } }
        #expect(one == four)
    }

    /// The channels-last statistics (eight channels at a time in `Double`, a scalar tail) against the
    /// definition, bit for bit: per channel, `Double` terms in row order within blocks of rows (32768
    /// elements, at most 64 blocks) whose partial sums add in block order; mean and variance rounded to the
    /// dtype; `Σdy` and `Σdy·(x − mean)·invStd` as the offset's and scale's gradients; the output and the
    /// input's gradient element by element in the dtype. 37 channels: whole vectors and a tail for both
    /// dtypes; 40 rows (one block) and 2000 rows (three blocks).
    @Test(arguments: [(40, DType.float32), (2000, .float32), (40, .float64), (2000, .float64)])
    func channelsLastStatisticsMatchTheDefinition(_ rows: Int, _ dtype: DType) throws {
        let c = 37
        let x = try Tensor.randomUniform(shape: [rows, c], min: -3, max: 5, dtype: dtype, seed: 21)
        let g = try Tensor.randomUniform(shape: [rows, c], min: -1, max: 1, dtype: dtype, seed: 22)
        let scale = try Tensor.randomUniform(shape: [c], min: 0.5, max: 1.5, dtype: dtype, seed: 23)
        let offset = try Tensor.zeros(shape: [c], dtype: dtype)
        // Two threads and a small grain: the three blocks run in parallel.
        let (stats, grads) = try ThreadPool.withThreadCount(2) { try ThreadPool.withKernelGrain(1 << 10) {
            let tape = GradientTape()
            let (s, o) = (tape.watch(scale), tape.watch(offset))
            let input = tape.watch(x)
            let (stats, loss) = try tape.record { () throws -> ((Tensor, Tensor, Tensor), Tensor) in
                let r = try input.batchNormalized(axis: -1, scale: s, offset: o, epsilon: 1e-3)
                return ((r.mean, r.variance, r.output), try (r.output * g).sum())
            }
            return (stats, try tape.gradient(of: loss, wrt: [s, o, input]).map { try #require($0).denseValue.doubles })
        } }
        let xs = x.doubles, gs = g.doubles, outputValues = stats.2.doubles
        let means = stats.0.doubles, variances = stats.1.doubles
        let round = { (v: Double) in dtype == .float32 ? Double(Float(v)) : v }
        let perBlock = max(max(1, (1 << 15) / c), (rows + 63) / 64)
        func blockedSum(_ term: (Int) -> Double) -> Double {
            var total = 0.0
            for start in stride(from: 0, to: rows, by: perBlock) {
                var partial = 0.0
                for r in start..<min(rows, start + perBlock) { partial += term(r) }
                total += partial
            }
            return total
        }
        for ch in 0..<c {
            let mean = round(blockedSum { xs[$0 * c + ch] } / Double(rows))
            let variance = round(blockedSum { let d = xs[$0 * c + ch] - mean; return d * d } / Double(rows))
            let invStd = dtype == .float32 ? Double(1 / (Float(variance) + Float(1e-3)).squareRoot()) : 1 / (variance + 1e-3).squareRoot()
            let sumDyUnrounded = blockedSum { gs[$0 * c + ch] }, sumDy = round(sumDyUnrounded)
            let sumDyXHatUnrounded = blockedSum { gs[$0 * c + ch] * (xs[$0 * c + ch] - mean) } * invStd
            let sumDyXHat = round(sumDyXHatUnrounded)
            #expect(means[ch] == mean, "mean of channel \(ch)")
            #expect(variances[ch] == variance, "variance of channel \(ch)")
            #expect(grads[1][ch] == sumDy, "offset gradient of channel \(ch)")
            #expect(grads[0][ch] == sumDyXHat, "scale gradient of channel \(ch)")
            // The output `x · inv + shift` and the input's gradient `k · (dy − Σdy/N − x̂ · Σdy·x̂/N)`, in the dtype.
            let sc = scale.doubles[ch], n = Double(rows)
            // In the dtype's own arithmetic: `F` is `Float` or `Double`.
            func rowsThatDiffer<F: BinaryFloatingPoint>(_: F.Type) -> (outputs: [Int], gradients: [Int]) {
                let inv = F(invStd) * F(sc), shift = 0 - F(mean) * inv
                let k = F(sc * invStd), meanDy = F(sumDyUnrounded / n), meanDyXHat = F(sumDyXHatUnrounded / n)
                let outputs = (0..<rows).filter { r in
                    let i = r * c + ch
                    return F(outputValues[i]) != F(xs[i]) * inv + shift
                }
                let gradients = (0..<rows).filter { r in
                    let i = r * c + ch, xHat = (F(xs[i]) - F(mean)) * F(invStd)
                    return F(grads[2][i]) != k * (F(gs[i]) - meanDy - xHat * meanDyXHat)
                }
                return (outputs, gradients)
            }
            let (outputs, gradients) = dtype == .float32 ? rowsThatDiffer(Float.self) : rowsThatDiffer(Double.self)
            #expect(outputs.isEmpty && gradients.isEmpty, "channel \(ch): outputs differ in rows \(outputs), input gradients in rows \(gradients)")
        }
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
