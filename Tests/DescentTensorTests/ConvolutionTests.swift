import DescentAutodiff
import DescentTensor
import Testing

// The convolution and pooling ops' gradients against finite differences (float64), their errors, and a
// direct-sum reference for the forward pass (the Keras tests compare with TensorFlow's numbers).

@Suite struct ConvolutionTests {
    /// `out[n, i, j, f] = Σ x[n, i·sh − pt + a·dh, j·sw − pl + b·dw, c] · k[a, b, c, f]`, summed directly.
    func reference(_ x: Tensor, _ k: Tensor, strides: Size2D, padding: Padding, dilations: Size2D) -> [Double] {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, f) = (k.shape[0], k.shape[1], k.shape[3])
        func axis(_ l: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
            let span = (k - 1) * d + 1
            if padding == .valid { return ((l - span) / s + 1, 0) }
            let out = (l + s - 1) / s
            return (out, max((out - 1) * s + span - l, 0) / 2)
        }
        let (oh, pt) = axis(h, kh, strides.height, dilations.height), (ow, pl) = axis(w, kw, strides.width, dilations.width)
        let xs = x.doubles, ks = k.doubles
        var out = [Double](repeating: 0, count: n * oh * ow * f)
        for b in 0..<n { for i in 0..<oh { for j in 0..<ow { for o in 0..<f {
            var s = 0.0
            for a in 0..<kh { for q in 0..<kw { for ch in 0..<c {
                let y = i * strides.height - pt + a * dilations.height, z = j * strides.width - pl + q * dilations.width
                guard y >= 0, y < h, z >= 0, z < w else { continue }
                s += xs[((b * h + y) * w + z) * c + ch] * ks[((a * kw + q) * c + ch) * f + o]
            } } }
            out[((b * oh + i) * ow + j) * f + o] = s
        } } } }
        return out
    }

    @Test(arguments: [
        ([2, 5, 6, 3], [3, 3, 3, 4], Size2D(1), Padding.valid, Size2D(1)),
        ([2, 5, 6, 3], [3, 2, 3, 2], Size2D(2, 3), .same, Size2D(1)),
        ([1, 7, 7, 2], [3, 3, 2, 2], Size2D(1), .same, Size2D(2, 3)),
        ([2, 4, 4, 5], [1, 1, 5, 3], Size2D(1), .valid, Size2D(1)),
        ([1, 5, 4, 2], [1, 1, 2, 3], Size2D(2), .same, Size2D(1)),
        ([1, 6, 6, 1], [4, 4, 1, 2], Size2D(3), .same, Size2D(1)),
    ])
    func conv2dForwardAndGradients(_ xs: [Int], _ ks: [Int], _ strides: Size2D, _ padding: Padding, _ dilations: Size2D) throws {
        let x = try sample(xs, seed: 1), k = try sample(ks, seed: 2)
        let y = try x.conv2d(k, strides: strides, padding: padding, dilations: dilations)
        expectClose(y.doubles, reference(x, k, strides: strides, padding: padding, dilations: dilations), tolerance: 1e-12)
        try checkGradient([x, k]) { try $0[0].conv2d($0[1], strides: strides, padding: padding, dilations: dilations) }
        // Float32 gives the same values to float32 precision.
        let y32 = try x.cast(to: .float32).conv2d(k.cast(to: .float32), strides: strides, padding: padding, dilations: dilations)
        expectClose(y32.doubles, y.doubles, tolerance: 1e-5)
    }

    @Test(arguments: [(Padding.valid, 1, 1), (.same, 2, 1), (.causal, 1, 2), (.causal, 3, 1)])
    func conv1dGradients(_ padding: Padding, _ stride: Int, _ dilation: Int) throws {
        let x = try sample([2, 9, 3], seed: 3), k = try sample([3, 3, 2], seed: 4)
        try checkGradient([x, k]) { try $0[0].conv1d($0[1], stride: stride, padding: padding, dilation: dilation) }
        // Causal is same-length, with the past only: output t does not depend on input t + 1.
        if padding == .causal && stride == 1 {
            let y = try x.conv1d(k, padding: .causal, dilation: dilation)
            #expect(y.shape == [2, 9, 2])
            var changed = x.doubles
            changed[(0 * 9 + 5) * 3] += 1  // step 5 of image 0
            let y2 = try Tensor(shape: x.shape, scalars: changed).conv1d(k, padding: .causal, dilation: dilation)
            #expect(Array(y.doubles[0..<(5 * 2)]) == Array(y2.doubles[0..<(5 * 2)]))
            #expect(y.doubles[5 * 2] != y2.doubles[5 * 2])
        }
    }

    @Test(arguments: [(Size2D(2), Size2D?.none, Padding.valid), (Size2D(3), Size2D(2), .same), (Size2D(3, 2), Size2D(1, 2), .valid),
                      (Size2D(2), Size2D(1), .same)])
    func poolingGradients(_ pool: Size2D, _ strides: Size2D?, _ padding: Padding) throws {
        // Distinct values: no ties, so the maximum's gradient is smooth for finite differences.
        let x = try sample([2, 5, 7, 3], seed: 5)
        try checkGradient([x]) { try $0[0].maxPool2d(poolSize: pool, strides: strides, padding: padding) }
        try checkGradient([x]) { try $0[0].averagePool2d(poolSize: pool, strides: strides, padding: padding) }
    }

    @Test func globalAveragePoolingGradients() throws {
        try checkGradient([try sample([2, 3, 4, 5], seed: 6)]) { try $0[0].globalAveragePooled() }
        try checkGradient([try sample([2, 3, 5], seed: 7)]) { try $0[0].globalAveragePooled(keepDims: true) }
        let x = try sample([2, 3, 4, 5], seed: 8)
        expectClose(try x.globalAveragePooled().doubles, try x.mean(axes: [1, 2]).doubles, tolerance: 1e-14)
        #expect(try x.globalAveragePooled(keepDims: true).shape == [2, 1, 1, 5])
    }

    @Test func maxPoolTiesSendTheGradientToTheFirstMaximum() throws {
        let x = try Tensor(shape: [1, 2, 3, 1], scalars: [1, 3, 3, 3, 0, 3] as [Float])
        let tape = GradientTape()
        let input = tape.watch(x)
        let (y, total) = try tape.record { () throws -> (Tensor, Tensor) in
            let y = try input.maxPool2d(poolSize: 2, strides: 1)
            return (y, try y.sum())
        }
        #expect(try y.scalars(as: Float.self) == [3, 3])
        let g = try tape.gradient(of: total, wrt: [input])
        #expect(try #require(g[0]).denseValue.doubles == [0, 2, 0, 0, 0, 0])
    }

    /// Max pooling by the definition, one lane at a time: the forward keeps a later value when it is
    /// greater or NaN; the gradient goes to the first input of the window (row-major) equal to the output,
    /// or NaN for a NaN output. The kernels' vector path must give these bits.
    func maxPoolReference(_ xs: [Double], shape: [Int], pool: Int, stride: Int, padding: Padding, grad: [Double])
        -> (y: [Double], dx: [Double]) {
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        func axis(_ l: Int) -> (Int, Int) {
            if padding == .valid { return ((l - pool) / stride + 1, 0) }
            let out = (l + stride - 1) / stride
            return (out, max((out - 1) * stride + pool - l, 0) / 2)
        }
        let (oh, pt) = axis(h), (ow, pl) = axis(w)
        var y = [Double](repeating: 0, count: n * oh * ow * c), dx = [Double](repeating: 0, count: xs.count)
        for b in 0..<n { for i in 0..<oh { for j in 0..<ow { for ch in 0..<c {
            var positions: [Int] = []
            for a in 0..<pool { for q in 0..<pool {
                let r = i * stride - pt + a, z = j * stride - pl + q
                if r >= 0, r < h, z >= 0, z < w { positions.append(((b * h + r) * w + z) * c + ch) }
            } }
            var m = xs[positions[0]]
            for p in positions where xs[p] > m || xs[p].isNaN { m = xs[p] }
            let o = ((b * oh + i) * ow + j) * c + ch
            y[o] = m
            if let first = positions.first(where: { xs[$0] == m || (m.isNaN && xs[$0].isNaN) }) { dx[first] += grad[o] }
        } } } }
        return (y, dx)
    }

    /// The vectorised max-pool passes (whole SIMD vectors of channels, a scalar tail) against the
    /// definition, bit for bit: 37 channels (vectors and a tail for both dtypes), values from a small set
    /// (many ties, +0 and −0 among them), ±infinity, and NaN in one image only (that image takes the scalar
    /// search), overlapping and non-overlapping windows, 1 and 2 threads.
    @Test(arguments: [DType.float32, .float64])
    func maxPoolVectorPathMatchesTheDefinition(_ dtype: DType) throws {
        let shape = [3, 6, 5, 37]
        let count = shape.reduce(1, *)
        var rng = SeededGenerator(seed: 11)
        let palette: [Double] = [-1, -0.0, 0, 0.5, 2, 3]
        var xs = (0..<count).map { _ in palette[Int(rng.next() % UInt64(palette.count))] }
        xs[5] = .infinity; xs[200] = -.infinity; xs[1 * 6 * 5 * 37 + 40] = .nan; xs[1 * 6 * 5 * 37 + 777] = .nan
        let x = try Tensor(shape: shape, scalars: xs).cast(to: dtype)
        for (pool, stride, padding) in [(2, 2, Padding.valid), (3, 2, .same), (3, 1, .same)] {
            let y0 = try x.maxPool2d(poolSize: Size2D(pool), strides: Size2D(stride), padding: padding)
            let grads = (0..<y0.shape.reduce(1, *)).map { Double($0 % 7) - 3 }
            let expected = maxPoolReference(xs, shape: shape, pool: pool, stride: stride, padding: padding, grad: grads)
            for threads in [1, 2] {
                try ThreadPool.withThreadCount(threads) { try ThreadPool.withKernelGrain(1 << 9) {
                    let tape = GradientTape()
                    let input = tape.watch(x)
                    let (y, total) = try tape.record { () throws -> (Tensor, Tensor) in
                        let y = try input.maxPool2d(poolSize: Size2D(pool), strides: Size2D(stride), padding: padding)
                        return (y, try (y * Tensor(shape: y.shape, scalars: grads).cast(to: dtype)).sum())
                    }
                    let g = try #require(try tape.gradient(of: total, wrt: [input])[0]).denseValue.doubles
                    let same = { (a: [Double], b: [Double]) in
                        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
                    }
                    #expect(same(y.doubles, expected.y), "\(dtype) pool \(pool) stride \(stride) \(padding) threads \(threads): outputs")
                    #expect(same(g, expected.dx), "\(dtype) pool \(pool) stride \(stride) \(padding) threads \(threads): gradient")
                } }
            }
        }
    }

    @Test func errorsNameTheOperationAndShapes() throws {
        let x = try Tensor.zeros(shape: [1, 4, 4, 2])
        #expect(throws: TensorError.self) { try x.conv2d(try Tensor.zeros(shape: [3, 3, 3, 1])) }  // channels
        #expect(throws: TensorError.self) { try x.conv2d(try Tensor.zeros(shape: [3, 2, 1])) }  // rank
        #expect(throws: TensorError.self) { try x.conv2d(try Tensor.zeros(shape: [5, 1, 2, 1])) }  // too small
        #expect(throws: TensorError.self) { try x.conv2d(try Tensor.zeros(shape: [1, 1, 2, 1]), strides: Size2D(0, 1)) }
        #expect(throws: TensorError.self) { try x.conv2d(try Tensor.zeros(shape: [1, 1, 2, 1]), padding: .causal) }
        #expect(throws: TensorError.self) { try x.conv2d(try Tensor.zeros(shape: [1, 1, 2, 1], dtype: .float64)) }
        #expect(throws: TensorError.self) { try x.maxPool2d(poolSize: 5) }
        #expect(throws: TensorError.self) { try x.averagePool2d(poolSize: 0) }
        #expect(throws: TensorError.self) { try Tensor.zeros(shape: [2, 3]).globalAveragePooled() }
        #expect { try x.conv2d(try Tensor.zeros(shape: [3, 3, 3, 1])) } throws: { "\($0)".contains("conv2d") && "\($0)".contains("3 input channels") }
    }

    /// The parallel im2col, col2im and pooling passes give the same bits with 1 and 2 threads. (The
    /// products stay below OpenBLAS' threading threshold, so BLAS runs on one thread in both.)
    @Test func threadCountDoesNotChangeResults() throws {
        let x = try Tensor.randomNormal(shape: [4, 16, 16, 8], seed: 1), k = try Tensor.randomNormal(shape: [3, 3, 8, 2], seed: 2)
        func run() throws -> [[Double]] {
            let tape = GradientTape(persistent: true)
            let (input, kernel) = (tape.watch(x), tape.watch(k))
            let loss = try tape.record { () throws -> Tensor in
                let y = try input.conv2d(kernel, padding: .same)
                let a = try y.maxPool2d(poolSize: 3, strides: 2, padding: .same), b = try y.averagePool2d(poolSize: 2)
                return try a.squared().sum() + b.squared().sum() + input.maxPool2d(poolSize: 2).sum()
            }
            let grads = try tape.gradient(of: loss, wrt: [input, kernel])
            return [[try loss.item()]] + (try grads.map { try #require($0).denseValue.doubles })
        }
        let one = try ThreadPool.withThreadCount(1) { try run() }
        // A small grain: these tensors are below the default one, and would run inline.
        let two = try ThreadPool.withThreadCount(2) { try ThreadPool.withKernelGrain(1 << 10) { try run() } }
        #expect(one == two)
    }
}
