// A dense layer's bias and ReLU in one pass and one tape node (TensorFlow's `BiasAdd` then `Relu`).

extension Tensor {
    /// `self + bias` over the last axis, then ReLU when `relu` is true: the values of
    /// `(self + bias).relu()`, computed in one pass over `self` and recorded as one operation.
    ///
    /// The gradient is the same as the two operations': the upstream gradient masked where the result is
    /// not positive (where `self + bias > 0`), for `self`, and that summed over all leading axes, for
    /// `bias`. It is differentiable again (higher-order gradients).
    ///
    /// - Throws: ``TensorError`` when the dtypes differ or are not floating point, or when `bias` is not
    ///   a vector of `self`'s last dimension.
    public func addingBias(_ bias: Tensor, relu: Bool = false) throws -> Tensor {
        let name = relu ? "bias_add_relu" : "bias_add"
        guard dtype == bias.dtype else { throw TensorError.dtypeMismatch(operation: name, lhs: dtype, rhs: bias.dtype) }
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: name, dtype: dtype) }
        guard rank >= 1, bias.rank == 1, bias.shape[0] == shape[rank - 1] else {
            throw TensorError.incompatibleShapes(
                operation: name, lhs: shape, rhs: bias.shape,
                reason: "the bias must be a vector as long as the last dimension (\(shape.last.map(String.init) ?? "none"))")
        }
        var out = try Tensor(uninitializedShape: shape, dtype: dtype, operation: name)
        func run<T: FloatingElement>(_: T.Type) {
            if relu {
                binaryKernel(T.self, self, bias, &out, cost: .cheap, AddReluOp.self)
            } else {
                binaryKernel(T.self, self, bias, &out, cost: .cheap, AddOp.self)
            }
        }
        if dtype == .float32 { run(Float.self) } else { run(Double.self) }
        let biasShape = bias.shape
        let result = out
        return Autodiff.recordBinary(name, self, bias, out, backward: { g in
            // ReLU's gradient masks where its output is positive, which is where its input is.
            let masked = relu ? try g.reluGradient(input: result.untracked) : g
            return [.dense(masked), .dense(try masked.sumToShape(biasShape))]
        })
    }
}

/// `relu(a + b)`: the sum rounded once, then ReLU (as the two operations apart).
@usableFromInline enum AddReluOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        ReluOp.vector(T.self, a + b)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { ReluOp.scalar(a + b) }
}
