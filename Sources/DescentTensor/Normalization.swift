// Batch and layer normalization as single recorded operations with hand-written backward passes
// (kernels in NormalizationKernels.swift). Their values and gradients are those of TensorFlow's
// `tf.nn.moments` + `tf.nn.batch_normalization` (and of `FusedBatchNormV3`, which computes the same).

extension Tensor {
    /// Checks a normalization's axis and parameters; returns the non-negative axis.
    private func normalizationAxis(_ axis: Int, _ name: String, parameters: [(String, Tensor?)], epsilon: Double) throws -> Int {
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: name, dtype: dtype) }
        guard rank >= 1, axis >= -rank && axis < rank else { throw TensorError.invalidAxis(operation: name, axis: axis, rank: rank) }
        let a = axis < 0 ? axis + rank : axis
        for case let (label, p?) in parameters {
            guard p.dtype == dtype else { throw TensorError.dtypeMismatch(operation: "\(name) \(label)", lhs: dtype, rhs: p.dtype) }
            guard p.shape == [shape[a]] else {
                throw TensorError.incompatibleShapes(operation: "\(name) \(label)", lhs: shape, rhs: p.shape,
                                                     reason: "expected a vector of \(shape[a]) values (the size of axis \(axis))")
            }
        }
        guard epsilon.isFinite && epsilon >= 0 else {
            throw TensorError.invalidArgument(operation: name, reason: "epsilon must be a finite number >= 0, got \(epsilon)")
        }
        return a
    }

    /// The elements of a small vector.
    fileprivate func vector<T: FloatingElement>(_: T.Type) -> [T] {
        withExtendedLifetime(storage) { Array(UnsafeBufferPointer(start: _pointer(T.self), count: scalarCount)) }
    }

    /// The shape `[1, ..., channels, ..., 1]` a per-channel vector broadcasts with along `axis`.
    fileprivate func channelShape(_ axis: Int) -> [Int] {
        var s = [Int](repeating: 1, count: rank)
        s[axis] = shape[axis]
        return s
    }

    /// Batch normalization with the batch's statistics (training mode): per index `c` of `axis`, over
    /// every other axis, `mean` and the biased `variance` (`Σ(x − mean)² / N`), and
    ///
    ///     y = x · inv + (offset − mean · inv),   inv = scale · 1 / sqrt(variance + epsilon)
    ///
    /// (`tf.nn.moments` then `tf.nn.batch_normalization`). `scale` and `offset` are vectors of
    /// `shape[axis]` values; `nil` means 1 and 0.
    ///
    /// One recorded operation. Its gradient goes through the batch statistics (the full batch-norm
    /// backward): with `x̂ = (x − mean) / sqrt(variance + epsilon)`,
    /// `dx = scale / sqrt(variance + epsilon) · (dy − mean(dy) − x̂ · mean(dy · x̂))`,
    /// `dscale = Σ dy · x̂`, `doffset = Σ dy`. It is differentiable again (a tape recording the backward
    /// pass gets it as differentiable operations).
    ///
    /// - Returns: the output, and `mean` and `variance` (vectors of `shape[axis]` values, not tracked).
    /// - Throws: ``TensorError`` for a non-float tensor, a bad axis, parameters of the wrong shape or
    ///   dtype, a negative or non-finite `epsilon`, or no element per channel.
    public func batchNormalized(axis: Int, scale: Tensor?, offset: Tensor?, epsilon: Double) throws
        -> (output: Tensor, mean: Tensor, variance: Tensor)
    {
        let name = "batchNormalization"
        let a = try normalizationAxis(axis, name, parameters: [("scale", scale), ("offset", offset)], epsilon: epsilon)
        let layout = NormalizationLayout(shape: shape, axis: a)
        guard layout.perChannel > 0 else {
            throw TensorError.invalidShape(operation: name, shape: shape, reason: "needs at least one element per channel of axis \(axis) to compute batch statistics")
        }
        let out = try Tensor(uninitializedShape: shape, dtype: dtype, operation: name)
        func run<T: FloatingElement>(_: T.Type) -> (mean: [T], variance: [T], invStd: [T]) {
            let (mean, variance) = BatchNormKernels.moments(_pointer(T.self), layout)
            let k = BatchNormKernels.coefficients(mean: mean, variance: variance, scale: scale?.vector(T.self),
                                                  offset: offset?.vector(T.self), epsilon: T(epsilon))
            BatchNormKernels.apply(_pointer(T.self), out._mutablePointer(T.self), layout, inv: k.inv, shift: k.shift)
            return (mean, variance, k.invStd)
        }
        let mean: Tensor, variance: Tensor, invStd: Tensor
        if dtype == .float32 {
            let r = run(Float.self)
            (mean, variance, invStd) = (Tensor(r.mean), Tensor(r.variance), Tensor(r.invStd))
        } else {
            let r = run(Double.self)
            (mean, variance, invStd) = (Tensor(r.mean), Tensor(r.variance), Tensor(r.invStd))
        }
        let inputs = [self] + [scale, offset].compactMap { $0 }
        let output = Autodiff.recordNary(name, inputs, out, backward: { [x = self] g in
            if Autodiff.isRecording && (inputs + [g]).contains(where: { $0.tapeNode != 0 }) {
                return try x.batchNormTrainingGradient(g, axis: a, scale: scale, offset: offset, epsilon: epsilon)
            }
            let dx = try Tensor(uninitializedShape: x.shape, dtype: x.dtype, operation: "\(name) gradient")
            func grad<T: FloatingElement>(_: T.Type) -> [Gradient?] {
                let (sumDy, sumDyXHat) = BatchNormKernels.trainingBackward(
                    x._pointer(T.self), g._pointer(T.self), dx._mutablePointer(T.self), layout,
                    mean: mean.vector(T.self), invStd: invStd.vector(T.self), scale: scale?.vector(T.self))
                return [.dense(dx)] + (scale == nil ? [] : [.dense(Tensor(sumDyXHat))]) + (offset == nil ? [] : [.dense(Tensor(sumDy))])
            }
            return x.dtype == .float32 ? grad(Float.self) : grad(Double.self)
        })
        return (output, mean, variance)
    }

    /// Batch normalization with given statistics (inference mode, the moving mean and variance):
    /// `y = x · inv + (offset − mean · inv)`, `inv = scale / sqrt(variance + epsilon)`, per index of
    /// `axis` (`tf.nn.batch_normalization`). `mean` and `variance` are constants (no gradient); the
    /// gradients are `dx = dy · inv`, `dscale = Σ dy · (x − mean) / sqrt(variance + epsilon)`,
    /// `doffset = Σ dy`. One recorded operation, differentiable again.
    /// - Throws: ``TensorError`` for a non-float tensor, a bad axis, parameters of the wrong shape or
    ///   dtype, or a negative or non-finite `epsilon`.
    public func batchNormalized(axis: Int, mean: Tensor, variance: Tensor, scale: Tensor?, offset: Tensor?, epsilon: Double) throws
        -> Tensor
    {
        let name = "batchNormalization"
        let a = try normalizationAxis(axis, name, parameters: [("mean", mean), ("variance", variance), ("scale", scale), ("offset", offset)],
                                      epsilon: epsilon)
        let layout = NormalizationLayout(shape: shape, axis: a)
        let mean = mean.untracked, variance = variance.untracked
        let out = try Tensor(uninitializedShape: shape, dtype: dtype, operation: name)
        func run<T: FloatingElement>(_: T.Type) -> (inv: [T], invStd: [T]) {
            let k = BatchNormKernels.coefficients(mean: mean.vector(T.self), variance: variance.vector(T.self),
                                                  scale: scale?.vector(T.self), offset: offset?.vector(T.self), epsilon: T(epsilon))
            BatchNormKernels.apply(_pointer(T.self), out._mutablePointer(T.self), layout, inv: k.inv, shift: k.shift)
            return (k.inv, k.invStd)
        }
        let inv: Tensor, invStd: Tensor
        if dtype == .float32 {
            let r = run(Float.self)
            (inv, invStd) = (Tensor(r.inv), Tensor(r.invStd))
        } else {
            let r = run(Double.self)
            (inv, invStd) = (Tensor(r.inv), Tensor(r.invStd))
        }
        let inputs = [self] + [scale, offset].compactMap { $0 }
        return Autodiff.recordNary(name, inputs, out, backward: { [x = self] g in
            let channel = x.channelShape(a)
            let reduced = (0..<x.rank).filter { $0 != a }
            if Autodiff.isRecording && (inputs + [g]).contains(where: { $0.tapeNode != 0 }) {
                let s = try (variance.reshaped(to: channel) + epsilon).rsqrt()
                let k = try scale.map { try $0.reshaped(to: channel) * s } ?? s
                let xHat = try (x - mean.reshaped(to: channel)) * s
                return [.dense(try g * k)] + (scale == nil ? [] : [.dense(try (g * xHat).sum(axes: reduced))])
                    + (offset == nil ? [] : [.dense(try g.sum(axes: reduced))])
            }
            let dx = try g * inv.reshaped(to: channel)
            func grad<T: FloatingElement>(_: T.Type) -> [Gradient?] {
                let (sumDy, sumDyXHat) = BatchNormKernels.gradientSums(x._pointer(T.self), g._pointer(T.self), layout,
                                                                       mean: mean.vector(T.self), invStd: invStd.vector(T.self))
                return [.dense(dx)] + (scale == nil ? [] : [.dense(Tensor(sumDyXHat.map { T($0) }))])
                    + (offset == nil ? [] : [.dense(Tensor(sumDy.map { T($0) }))])
            }
            return x.dtype == .float32 ? grad(Float.self) : grad(Double.self)
        })
    }

    /// Layer normalization over `axis`: per position of the other axes, `mean` and biased `variance`
    /// over `axis`, then `y = (x − mean) / sqrt(variance + epsilon) · scale + offset` (tf_keras'
    /// `LayerNormalization`: the fused normalization, then the scale and offset). `scale` and `offset`
    /// are vectors of `shape[axis]` values; `nil` means 1 and 0.
    ///
    /// One recorded operation: with `x̂` the normalized value and `g = dy · scale`,
    /// `dx = (g − mean(g) − x̂ · mean(g · x̂)) / sqrt(variance + epsilon)` (means over `axis`),
    /// `dscale = Σ dy · x̂`, `doffset = Σ dy` (over the other axes). Differentiable again.
    /// - Throws: ``TensorError`` for a non-float tensor, a bad axis, parameters of the wrong shape or
    ///   dtype, or a negative or non-finite `epsilon`.
    public func layerNormalized(axis: Int, scale: Tensor?, offset: Tensor?, epsilon: Double) throws -> Tensor {
        let name = "layerNormalization"
        let a = try normalizationAxis(axis, name, parameters: [("scale", scale), ("offset", offset)], epsilon: epsilon)
        let layout = NormalizationLayout(shape: shape, axis: a)
        let out = try Tensor(uninitializedShape: shape, dtype: dtype, operation: name)
        let mean: Tensor, invStd: Tensor
        if dtype == .float32 {
            let r = LayerNormKernels.forward(_pointer(Float.self), out._mutablePointer(Float.self), layout,
                                             scale: scale?.vector(Float.self), offset: offset?.vector(Float.self), epsilon: Float(epsilon))
            (mean, invStd) = (Tensor(r.mean), Tensor(r.invStd))
        } else {
            let r = LayerNormKernels.forward(_pointer(Double.self), out._mutablePointer(Double.self), layout,
                                             scale: scale?.vector(Double.self), offset: offset?.vector(Double.self), epsilon: epsilon)
            (mean, invStd) = (Tensor(r.mean), Tensor(r.invStd))
        }
        let inputs = [self] + [scale, offset].compactMap { $0 }
        return Autodiff.recordNary(name, inputs, out, backward: { [x = self] g in
            if Autodiff.isRecording && (inputs + [g]).contains(where: { $0.tapeNode != 0 }) {
                return try x.layerNormGradient(g, axis: a, scale: scale, offset: offset, epsilon: epsilon)
            }
            let dx = try Tensor(uninitializedShape: x.shape, dtype: x.dtype, operation: "\(name) gradient")
            func grad<T: FloatingElement>(_: T.Type) -> [Gradient?] {
                let (sumDy, sumDyXHat) = LayerNormKernels.backward(
                    x._pointer(T.self), g._pointer(T.self), dx._mutablePointer(T.self), layout,
                    mean: mean.vector(T.self), invStd: invStd.vector(T.self), scale: scale?.vector(T.self))
                return [.dense(dx)] + (scale == nil ? [] : [.dense(Tensor(sumDyXHat))]) + (offset == nil ? [] : [.dense(Tensor(sumDy))])
            }
            return x.dtype == .float32 ? grad(Float.self) : grad(Double.self)
        })
    }

    // MARK: Differentiable backward passes (when a tape records the backward pass itself)

    /// ``batchNormalized(axis:scale:offset:epsilon:)``'s gradients as differentiable operations.
    private func batchNormTrainingGradient(_ g: Tensor, axis a: Int, scale: Tensor?, offset: Tensor?, epsilon: Double) throws -> [Gradient?] {
        let reduced = (0..<rank).filter { $0 != a }
        let mean = try self.mean(axes: reduced, keepDims: true)
        let centered = try self - mean
        let s = try ((centered * centered).mean(axes: reduced, keepDims: true) + epsilon).rsqrt()
        let xHat = try centered * s
        let gs = try scale.map { try g * $0.reshaped(to: channelShape(a)) } ?? g
        let dx = try s * (gs - gs.mean(axes: reduced, keepDims: true) - xHat * (gs * xHat).mean(axes: reduced, keepDims: true))
        return [.dense(dx)] + (scale == nil ? [] : [.dense(try (g * xHat).sum(axes: reduced))])
            + (offset == nil ? [] : [.dense(try g.sum(axes: reduced))])
    }

    /// ``layerNormalized(axis:scale:offset:epsilon:)``'s gradients as differentiable operations.
    private func layerNormGradient(_ g: Tensor, axis a: Int, scale: Tensor?, offset: Tensor?, epsilon: Double) throws -> [Gradient?] {
        let others = (0..<rank).filter { $0 != a }
        let mean = try self.mean(axes: [a], keepDims: true)
        let centered = try self - mean
        let s = try ((centered * centered).mean(axes: [a], keepDims: true) + epsilon).rsqrt()
        let xHat = try centered * s
        let gs = try scale.map { try g * $0.reshaped(to: channelShape(a)) } ?? g
        let dx = try s * (gs - gs.mean(axes: [a], keepDims: true) - xHat * (gs * xHat).mean(axes: [a], keepDims: true))
        return [.dense(dx)] + (scale == nil ? [] : [.dense(try (g * xHat).sum(axes: others))])
            + (offset == nil ? [] : [.dense(try g.sum(axes: others))])
    }
}
