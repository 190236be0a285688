// Pooling of channels-last tensors (TensorFlow's `tf.nn.max_pool2d`, `tf.nn.avg_pool2d`, and the global
// average of Keras' `GlobalAveragePooling1D/2D`), with their gradients. Channels are the contiguous
// innermost axis, so every window step is a vector operation over the channels.

extension Tensor {
    /// The windows of a pooling op, checked.
    private func poolGeometry(_ poolSize: Size2D, _ strides: Size2D, _ padding: Padding, operation: String) throws -> ConvGeometry {
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: operation, dtype: dtype) }
        guard rank == 4 else {
            throw TensorError.invalidShape(operation: operation, shape: shape, reason: "expected an input of rank 4 [batch, height, width, channels]")
        }
        guard padding != .causal else {
            throw TensorError.invalidArgument(operation: operation, reason: "padding must be valid or same, got causal")
        }
        try Tensor.requirePositive([("poolSize.height", poolSize.height), ("poolSize.width", poolSize.width),
                                    ("strides.height", strides.height), ("strides.width", strides.width)], operation: operation)
        return ConvGeometry(
            batch: shape[0], channels: shape[3], filters: shape[3],
            rows: try WindowAxis(input: shape[1], window: poolSize.height, stride: strides.height, dilation: 1,
                                 padding: padding, operation: operation, axis: "height"),
            cols: try WindowAxis(input: shape[2], window: poolSize.width, stride: strides.width, dilation: 1,
                                 padding: padding, operation: operation, axis: "width"))
    }

    /// The maximum of each `poolSize` window of an NHWC input, per channel (`tf.nn.max_pool2d`):
    /// `out[n, i, j, c] = max_{(a, b) in window, inside the input} x[n, i·sh − pt + a, j·sw − pl + b, c]`.
    /// With `.same` padding the padded positions are ignored (never the maximum).
    ///
    /// The gradient (TensorFlow's `MaxPoolGrad`) sends each output's gradient to the first maximal input of
    /// its window in row-major window order; overlapping windows add up.
    /// - Throws: ``TensorError`` for a non-floating dtype, an input that is not rank 4, a non-positive
    ///   size, causal padding, or an input smaller than the window with `.valid` padding.
    public func maxPool2d(poolSize: Size2D, strides: Size2D? = nil, padding: Padding = .valid) throws -> Tensor {
        let name = "maxPool2d"
        let g = try poolGeometry(poolSize, strides ?? poolSize, padding, operation: name)
        let out = try Tensor(uninitializedShape: g.outputShape2D, dtype: dtype, operation: name)
        if dtype == .float32 { maxPoolForward(_pointer(Float.self), out._mutablePointer(Float.self), g) }
        else { maxPoolForward(_pointer(Double.self), out._mutablePointer(Double.self), g) }
        let result = out
        return Autodiff.recordUnary(name, self, out, backward: { [x = self.untracked] grad in
            let dx = try Tensor.zeros(shape: x.shape, dtype: x.dtype)
            func run<T: FloatingElement>(_: T.Type) {
                maxPoolBackward(x._pointer(T.self), result._pointer(T.self), grad._pointer(T.self), dx._mutablePointer(T.self), g)
            }
            withExtendedLifetime((x, result, grad)) { if x.dtype == .float32 { run(Float.self) } else { run(Double.self) } }
            return [.dense(dx)]
        })
    }

    /// The mean of each `poolSize` window of an NHWC input, per channel (`tf.nn.avg_pool2d`): with `.same`
    /// padding a border window divides by its count of positions inside the input, not by the window size.
    ///
    /// The gradient gives each input position of a window the window's gradient divided by that count.
    /// - Throws: as ``maxPool2d(poolSize:strides:padding:)``.
    public func averagePool2d(poolSize: Size2D, strides: Size2D? = nil, padding: Padding = .valid) throws -> Tensor {
        let name = "averagePool2d"
        let g = try poolGeometry(poolSize, strides ?? poolSize, padding, operation: name)
        let out = try Tensor(uninitializedShape: g.outputShape2D, dtype: dtype, operation: name)
        if dtype == .float32 { averagePoolForward(_pointer(Float.self), out._mutablePointer(Float.self), g) }
        else { averagePoolForward(_pointer(Double.self), out._mutablePointer(Double.self), g) }
        return Autodiff.recordUnary(name, self, out, backward: { [inputShape = shape, dtype] grad in
            let dx = try Tensor.zeros(shape: inputShape, dtype: dtype)
            func run<T: FloatingElement>(_: T.Type) { averagePoolBackward(grad._pointer(T.self), dx._mutablePointer(T.self), g) }
            withExtendedLifetime(grad) { if dtype == .float32 { run(Float.self) } else { run(Double.self) } }
            return [.dense(dx)]
        })
    }

    /// The mean over the axes between the first and the last (`[n, d1, ..., c]` → `[n, c]`, or
    /// `[n, 1, ..., 1, c]` with `keepDims`): Keras' `GlobalAveragePooling1D/2D` (channels last), one pass.
    /// The gradient spreads each output's gradient equally, divided by `d1 · d2 · …` (TensorFlow's `reduce_mean`).
    /// - Throws: ``TensorError`` for a non-floating dtype, a rank below 3, or an empty pooled axis.
    public func globalAveragePooled(keepDims: Bool = false) throws -> Tensor {
        let name = "globalAveragePool"
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: name, dtype: dtype) }
        guard rank >= 3 else {
            throw TensorError.invalidShape(operation: name, shape: shape, reason: "expected an input of rank >= 3 [batch, ..., channels]")
        }
        let n = shape[0], c = shape[rank - 1], s = Shape.product(shape[1..<(rank - 1)])
        guard s > 0 else { throw TensorError.invalidShape(operation: name, shape: shape, reason: "the pooled axes must not be empty") }
        let outShape = keepDims ? [n] + [Int](repeating: 1, count: rank - 2) + [c] : [n, c]
        let out = try Tensor(uninitializedShape: outShape, dtype: dtype, operation: name)
        func forward<T: FloatingElement>(_: T.Type) {
            let x = _pointer(T.self), y = out._mutablePointer(T.self)
            let count = T(fromDouble: Double(s))
            for i in 0..<n {
                let dst = y + i * c
                dst.update(from: x + i * s * c, count: c)
                for p in 1..<Swift.max(s, 1) {
                    let src = x + (i * s + p) * c
                    for j in 0..<c { dst[j] += src[j] }
                }
                for j in 0..<c { dst[j] /= count }
            }
        }
        withExtendedLifetime(self) { if dtype == .float32 { forward(Float.self) } else { forward(Double.self) } }
        return Autodiff.recordUnary(name, self, out, backward: { [inputShape = shape, dtype] grad in
            let dx = try Tensor(uninitializedShape: inputShape, dtype: dtype, operation: "\(name) gradient")
            func run<T: FloatingElement>(_: T.Type) {
                let gp = grad._pointer(T.self), d = dx._mutablePointer(T.self)
                let count = T(fromDouble: Double(s))
                for i in 0..<n {
                    let src = gp + i * c
                    for p in 0..<s {
                        let dst = d + (i * s + p) * c
                        for j in 0..<c { dst[j] = src[j] / count }
                    }
                }
            }
            withExtendedLifetime(grad) { if dtype == .float32 { run(Float.self) } else { run(Double.self) } }
            return [.dense(dx)]
        })
    }
}

/// The window of output `(oy, ox)`: its first input row and column and their ends (clipped to the input).
@inline(__always)
private func window(_ g: ConvGeometry, _ oy: Int, _ ox: Int) -> (y0: Int, y1: Int, x0: Int, x1: Int) {
    let ys = oy * g.rows.stride - g.rows.padBefore, xs = ox * g.cols.stride - g.cols.padBefore
    return (Swift.max(ys, 0), Swift.min(ys + g.rows.window, g.rows.input), Swift.max(xs, 0), Swift.min(xs + g.cols.window, g.cols.input))
}

/// Output rows `(n, oy)` split across ``ThreadPool`` (each writes its own output row).
@inline(__always)
private func forEachOutputRow(_ g: ConvGeometry, _ body: (_ img: Int, _ oy: Int) -> Void) {
    let rows = g.batch * g.rows.output
    let work = Swift.max(g.cols.output * g.rows.window * g.cols.window * g.channels, 1)
    ThreadPool.parallelFor(rows, grain: Swift.max(1, ThreadPool.kernelGrain / work), alignment: 1) { range in
        for r in range { body(r / g.rows.output, r % g.rows.output) }
    }
}

func maxPoolForward<T: FloatingElement>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ g: ConvGeometry) {
    let c = g.channels, (h, w) = (g.rows.input, g.cols.input), (oh, ow) = (g.rows.output, g.cols.output)
    let lanes = T.Vector.scalarCount, vectorEnd = c - c % lanes
    let box = UncheckedSendable((x, y))
    forEachOutputRow(g) { img, oy in
        let (x, y) = box.value
        for ox in 0..<ow {
            let (y0, y1, x0, x1) = window(g, oy, ox)
            let dst = y + ((img * oh + oy) * ow + ox) * c
            let first = x + ((img * h + y0) * w + x0) * c
            // Whole vectors of channels: `m = s > m || s is NaN ? s : m`, the scalar rule below lane by lane.
            var j = 0
            while j < vectorEnd {
                var m = loadVector(first + j)
                for iy in y0..<y1 {
                    for ix in x0..<x1 {
                        let s = loadVector(x + ((img * h + iy) * w + ix) * c + j)
                        m = T.vectorSelectLess(m, s, s, m)
                        m = T.vectorSelectEqual(s, s, m, s)
                    }
                }
                storeVector(m, dst + j)
                j += lanes
            }
            if vectorEnd == c { continue }
            (dst + vectorEnd).update(from: first + vectorEnd, count: c - vectorEnd)
            for iy in y0..<y1 {
                for ix in x0..<x1 {
                    let src = x + ((img * h + iy) * w + ix) * c
                    for j in vectorEnd..<c where src[j] > dst[j] || src[j].isNaN { dst[j] = src[j] }
                }
            }
        }
    }
}

/// Each output's gradient to the first input of its window equal to the output (the first maximum).
/// Serial per image: overlapping windows of one image add into the same inputs; images run in parallel.
///
/// Whole vectors of channels walk the window once: each position takes, in the lanes where it equals the
/// maximum, the gradient not yet placed (`dx += x == best ? left : 0`, then `left = x == best ? 0 : left`).
/// Adding `+0` elsewhere changes nothing (`dx` starts at `+0` and a sum is `−0` only when both terms are), so
/// the values are the search's, bit for bit. Images whose outputs hold a NaN (NaN never equals itself) and
/// the channels after the last whole vector take the scalar search.
func maxPoolBackward<T: FloatingElement>(_ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ grad: UnsafePointer<T>,
                                         _ dx: UnsafeMutablePointer<T>, _ g: ConvGeometry) {
    let c = g.channels, (h, w) = (g.rows.input, g.cols.input), (oh, ow) = (g.rows.output, g.cols.output)
    let lanes = T.Vector.scalarCount, vectorEnd = c - c % lanes
    let box = UncheckedSendable((x, y, grad, dx))
    let work = Swift.max(oh * ow * g.rows.window * g.cols.window * c, 1)
    ThreadPool.parallelFor(g.batch, grain: Swift.max(1, ThreadPool.kernelGrain / work), alignment: 1) { images in
        let (x, y, grad, dx) = box.value
        for img in images {
            let outputs = y + img * oh * ow * c
            // Channels below this take the vector walk, the rest the scalar search.
            var scalarFrom = vectorEnd
            if vectorEnd > 0 {
                // Any NaN among this image's outputs: a lane is 1 once it has seen one.
                var seen = T.Vector(repeating: 0)
                let one = T.Vector(repeating: 1)
                for p in 0..<(oh * ow) {
                    var j = 0
                    while j < vectorEnd {
                        let v = loadVector(outputs + p * c + j)
                        seen = T.vectorSelectEqual(v, v, seen, one)
                        j += lanes
                    }
                }
                if seen.sum() != 0 { scalarFrom = 0 }
            }
            let zero = T.Vector(repeating: 0)
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let (y0, y1, x0, x1) = window(g, oy, ox)
                    let o = ((img * oh + oy) * ow + ox) * c
                    var j = 0
                    while j < scalarFrom {
                        let best = loadVector(y + o + j)
                        var left = loadVector(grad + o + j)
                        for iy in y0..<y1 {
                            for ix in x0..<x1 {
                                let i = ((img * h + iy) * w + ix) * c + j
                                let v = loadVector(x + i)
                                storeVector(loadVector(dx + i) + T.vectorSelectEqual(v, best, left, zero), dx + i)
                                left = T.vectorSelectEqual(v, best, zero, left)
                            }
                        }
                        j += lanes
                    }
                    for j in scalarFrom..<c {
                        let best = y[o + j]
                        var found = false
                        for iy in y0..<y1 where !found {
                            for ix in x0..<x1 {
                                let i = ((img * h + iy) * w + ix) * c + j
                                if x[i] == best || (best.isNaN && x[i].isNaN) {
                                    dx[i] += grad[o + j]
                                    found = true
                                    break
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

func averagePoolForward<T: FloatingElement>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ g: ConvGeometry) {
    let c = g.channels, (h, w) = (g.rows.input, g.cols.input), (oh, ow) = (g.rows.output, g.cols.output)
    let box = UncheckedSendable((x, y))
    forEachOutputRow(g) { img, oy in
        let (x, y) = box.value
        for ox in 0..<ow {
            let (y0, y1, x0, x1) = window(g, oy, ox)
            let dst = y + ((img * oh + oy) * ow + ox) * c
            dst.update(repeating: 0, count: c)
            for iy in y0..<y1 {
                for ix in x0..<x1 {
                    let src = x + ((img * h + iy) * w + ix) * c
                    for j in 0..<c { dst[j] += src[j] }
                }
            }
            let count = T(fromDouble: Double((y1 - y0) * (x1 - x0)))
            for j in 0..<c { dst[j] /= count }
        }
    }
}

func averagePoolBackward<T: FloatingElement>(_ grad: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, _ g: ConvGeometry) {
    let c = g.channels, (h, w) = (g.rows.input, g.cols.input), (oh, ow) = (g.rows.output, g.cols.output)
    let box = UncheckedSendable((grad, dx))
    let work = Swift.max(oh * ow * g.rows.window * g.cols.window * c, 1)
    ThreadPool.parallelFor(g.batch, grain: Swift.max(1, ThreadPool.kernelGrain / work), alignment: 1) { images in
        let (grad, dx) = box.value
        for img in images {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let (y0, y1, x0, x1) = window(g, oy, ox)
                    let src = grad + ((img * oh + oy) * ow + ox) * c
                    let scale = 1 / T(fromDouble: Double((y1 - y0) * (x1 - x0)))
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let d = dx + ((img * h + iy) * w + ix) * c
                            for j in 0..<c { d[j] += src[j] * scale }
                        }
                    }
                }
            }
        }
    }
}
