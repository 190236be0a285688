// Differentiable element-wise functions of one tensor. Each throws ``TensorError/unsupportedDType``
// for `int64` tensors (except abs, sign and squared; negation is in ArithmeticOps.swift).

extension Tensor {
    @inline(__always)
    private func unary(_ op: UnaryOp, backward: (Tensor, Tensor) -> BackwardFunction) throws -> Tensor {
        let out = try applyUnary(op)
        if tapeNode == 0 { return out }
        return Autodiff.recordUnary(op.rawValue, self, out, backward: backward(self, out.untracked))
    }

    /// Absolute value; gradient `sign(x)`.
    public func abs() throws -> Tensor {
        try unary(.abs) { x, _ in { g in [.dense(try g * x.sign())] } }
    }

    /// Sign (-1, 0 or 1; NaN stays NaN); its gradient is zero.
    public func sign() throws -> Tensor {
        try unary(.sign) { x, _ in { _ in [.dense(Tensor.zeros(like: x))] } }
    }

    /// `e^x`.
    public func exp() throws -> Tensor {
        try unary(.exp) { _, y in { g in [.dense(try g * y)] } }
    }

    /// Natural logarithm.
    public func log() throws -> Tensor {
        try unary(.log) { x, _ in { g in [.dense(try g / x)] } }
    }

    /// `log(1 + x)`, accurate for small `x`.
    public func log1p() throws -> Tensor {
        try unary(.log1p) { x, _ in { g in [.dense(try g / (x + 1))] } }
    }

    /// `e^x - 1`, accurate for small `x`.
    public func expm1() throws -> Tensor {
        try unary(.expm1) { _, y in { g in [.dense(try g * (y + 1))] } }
    }

    /// Square root; gradient `0.5 / sqrt(x)`.
    public func sqrt() throws -> Tensor {
        try unary(.sqrt) { _, y in { g in [.dense(try g * 0.5 / y)] } }
    }

    /// `1 / sqrt(x)`; gradient `-0.5 * y^3`.
    public func rsqrt() throws -> Tensor {
        try unary(.rsqrt) { _, y in { g in [.dense(try g * -0.5 * y * y * y)] } }
    }

    /// `x * x`.
    public func squared() throws -> Tensor {
        try unary(.square) { x, _ in { g in [.dense(try g * 2 * x)] } }
    }

    /// `1 / x`.
    public func reciprocal() throws -> Tensor {
        try unary(.reciprocal) { _, y in { g in [.dense(try -(g * y * y))] } }
    }

    /// Hyperbolic tangent; gradient `1 - y²`.
    public func tanh() throws -> Tensor {
        try unary(.tanh) { _, y in { g in [.dense(try g * (1 - y * y))] } }
    }

    /// Logistic sigmoid `1 / (1 + e^-x)`; gradient `y (1 - y)`.
    public func sigmoid() throws -> Tensor {
        try unary(.sigmoid) { _, y in { g in [.dense(try g * y * (1 - y))] } }
    }

    /// `max(x, 0)`; gradient 1 where `x > 0`, else 0.
    public func relu() throws -> Tensor {
        try unary(.relu) { x, _ in { g in [.dense(try g.reluGradient(input: x))] } }
    }

    /// `input > 0 ? self : 0` in one pass: the gradient of ``relu()`` for an upstream gradient `self`.
    /// Differentiable with respect to `self` (the same mask); `input` gets no gradient.
    func reluGradient(input x: Tensor) throws -> Tensor {
        let out = try applyBinary(.reluGradient, x, name: "reluGradient")
        return Autodiff.recordBinary("reluGradient", self, x, out, backward: { g in
            [.dense(try g.reluGradient(input: x)), nil]
        })
    }

    /// `log(1 + e^x)`, computed without overflow; gradient `sigmoid(x)`.
    public func softplus() throws -> Tensor {
        try unary(.softplus) { x, _ in { g in [.dense(try g * x.sigmoid())] } }
    }
}
