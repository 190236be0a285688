// Differentiable arithmetic with NumPy broadcasting: + - * / pow maximum minimum, and comparisons.
//
// Gradients of broadcast operands are summed back to the operand's shape (`sumToShape`).

extension Tensor {
    /// Sums this gradient over the axes along which an operand of shape `target` was broadcast, so the
    /// result has shape `target`.
    public func sumToShape(_ target: [Int]) throws -> Tensor {
        if shape == target { return self }
        let extra = rank - target.count
        guard extra >= 0 else {
            throw TensorError.incompatibleShapes(operation: "sumToShape", lhs: shape, rhs: target,
                                                 reason: "target has a higher rank")
        }
        guard zip(target, shape[extra...]).allSatisfy({ $0 == $1 || $0 == 1 }) else {
            throw TensorError.incompatibleShapes(operation: "sumToShape", lhs: shape, rhs: target,
                                                 reason: "target does not broadcast to this shape")
        }
        var axes = Array(0..<extra)
        for (i, d) in target.enumerated() where d == 1 && shape[i + extra] != 1 { axes.append(i + extra) }
        let summed = axes.isEmpty ? self : try sum(axes: axes)
        return try summed.reshaped(to: target)
    }

    // MARK: Operators

    /// Element-wise sum with broadcasting.
    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        let out = try lhs.applyBinary(.add, rhs)
        return Autodiff.recordBinary("add", lhs, rhs, out, backward: { [ls = lhs.shape, rs = rhs.shape] g in
            [.dense(try g.sumToShape(ls)), .dense(try g.sumToShape(rs))]
        })
    }

    /// Element-wise difference with broadcasting.
    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        let out = try lhs.applyBinary(.subtract, rhs)
        return Autodiff.recordBinary("subtract", lhs, rhs, out, backward: { [ls = lhs.shape, rs = rhs.shape] g in
            [.dense(try g.sumToShape(ls)), .dense(try (-g).sumToShape(rs))]
        })
    }

    /// Element-wise product with broadcasting.
    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        let out = try lhs.applyBinary(.multiply, rhs)
        return Autodiff.recordBinary("multiply", lhs, rhs, out, backward: { g in
            [.dense(try (g * rhs).sumToShape(lhs.shape)), .dense(try (g * lhs).sumToShape(rhs.shape))]
        })
    }

    /// Element-wise quotient with broadcasting.
    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        let out = try lhs.applyBinary(.divide, rhs)
        return Autodiff.recordBinary("divide", lhs, rhs, out, backward: { g in
            [.dense(try (g / rhs).sumToShape(lhs.shape)),
             .dense(try (-(g * lhs) / rhs.squared()).sumToShape(rhs.shape))]
        })
    }

    /// Negation.
    public static prefix func - (x: Tensor) -> Tensor {
        // Internal invariant: `applyUnary` throws only for a dtype without the operation (negation has
        // every dtype) or a buffer the machine cannot provide, and the result is exactly as large as `x`,
        // which exists (see `TensorStorage.init(existingSizeByteCount:)`).
        let out = try! x.applyUnary(.neg)
        return Autodiff.recordUnary("neg", x, out, backward: { g in [.dense(-g)] })
    }

    public static func + (lhs: Tensor, rhs: Double) throws -> Tensor { try lhs + lhs.scalarLike(rhs) }
    public static func + (lhs: Double, rhs: Tensor) throws -> Tensor { try rhs.scalarLike(lhs) + rhs }
    public static func - (lhs: Tensor, rhs: Double) throws -> Tensor { try lhs - lhs.scalarLike(rhs) }
    public static func - (lhs: Double, rhs: Tensor) throws -> Tensor { try rhs.scalarLike(lhs) - rhs }
    public static func * (lhs: Tensor, rhs: Double) throws -> Tensor { try lhs * lhs.scalarLike(rhs) }
    public static func * (lhs: Double, rhs: Tensor) throws -> Tensor { try rhs.scalarLike(lhs) * rhs }
    public static func / (lhs: Tensor, rhs: Double) throws -> Tensor { try lhs / lhs.scalarLike(rhs) }
    public static func / (lhs: Double, rhs: Tensor) throws -> Tensor { try rhs.scalarLike(lhs) / rhs }

    public static func += (lhs: inout Tensor, rhs: Tensor) throws { lhs = try lhs + rhs }
    public static func -= (lhs: inout Tensor, rhs: Tensor) throws { lhs = try lhs - rhs }
    public static func *= (lhs: inout Tensor, rhs: Tensor) throws { lhs = try lhs * rhs }
    public static func /= (lhs: inout Tensor, rhs: Tensor) throws { lhs = try lhs / rhs }
    public static func += (lhs: inout Tensor, rhs: Double) throws { lhs = try lhs + rhs }
    public static func -= (lhs: inout Tensor, rhs: Double) throws { lhs = try lhs - rhs }
    public static func *= (lhs: inout Tensor, rhs: Double) throws { lhs = try lhs * rhs }
    public static func /= (lhs: inout Tensor, rhs: Double) throws { lhs = try lhs / rhs }

    // MARK: Power, maximum, minimum

    /// `self` raised to `exponent`, element-wise with broadcasting (`tf.pow`).
    ///
    /// Gradient: `exponent * self^(exponent-1)` for the base; `self^exponent * log(self)` for the
    /// exponent where `self > 0`, else 0 (as TensorFlow).
    public func pow(_ exponent: Tensor) throws -> Tensor {
        let out = try applyBinary(.pow, exponent)
        return Autodiff.recordBinary("pow", self, exponent, out, backward: { [x = self] g in
            let y = exponent
            let dx = try g * y * x.pow(y - 1)
            let positive = try x.greater(x.scalarLike(0))
            let safeLog = try (x * positive + (1 - positive)).log()
            let dy = try g * out.untracked * safeLog * positive
            return [.dense(try dx.sumToShape(x.shape)), .dense(try dy.sumToShape(y.shape))]
        })
    }

    /// `self` raised to a scalar power.
    public func pow(_ exponent: Double) throws -> Tensor { try pow(scalarLike(exponent)) }

    /// Element-wise maximum with broadcasting (`tf.maximum`); ties send the gradient to `self`.
    public func maximum(_ other: Tensor) throws -> Tensor {
        let out = try applyBinary(.maximum, other, name: "maximum")
        return Autodiff.recordBinary("maximum", self, other, out, backward: { [x = self] g in
            let mask = try x.greaterEqual(other)
            return [.dense(try (g * mask).sumToShape(x.shape)), .dense(try (g * (1 - mask)).sumToShape(other.shape))]
        })
    }

    /// Element-wise minimum with broadcasting (`tf.minimum`); ties send the gradient to `self`.
    public func minimum(_ other: Tensor) throws -> Tensor {
        let out = try applyBinary(.minimum, other, name: "minimum")
        return Autodiff.recordBinary("minimum", self, other, out, backward: { [x = self] g in
            let mask = try x.lessEqual(other)
            return [.dense(try (g * mask).sumToShape(x.shape)), .dense(try (g * (1 - mask)).sumToShape(other.shape))]
        })
    }

    /// Element-wise maximum with a scalar.
    public func maximum(_ other: Double) throws -> Tensor { try maximum(scalarLike(other)) }
    /// Element-wise minimum with a scalar.
    public func minimum(_ other: Double) throws -> Tensor { try minimum(scalarLike(other)) }

    /// Clips every element to `[min, max]` (`tf.clip_by_value`). The gradient passes where
    /// `min <= self <= max`.
    public func clipped(min lower: Double, max upper: Double) throws -> Tensor {
        guard lower <= upper else {
            throw TensorError.invalidArgument(operation: "clipped", reason: "min \(lower) is greater than max \(upper)")
        }
        return try minimum(upper).maximum(lower)
    }

    /// Clips every element to `[min, max]` given as tensors (broadcast against `self`).
    public func clipped(min lower: Tensor, max upper: Tensor) throws -> Tensor {
        try minimum(upper).maximum(lower)
    }

    // MARK: Comparisons (not differentiable; 1 where true, 0 where false, in the operands' dtype)

    /// `self == other` element-wise, as 1/0.
    public func equal(_ other: Tensor) throws -> Tensor { try applyBinary(.equal, other) }
    /// `self != other` element-wise, as 1/0.
    public func notEqual(_ other: Tensor) throws -> Tensor { try applyBinary(.notEqual, other) }
    /// `self < other` element-wise, as 1/0.
    public func less(_ other: Tensor) throws -> Tensor { try applyBinary(.less, other) }
    /// `self <= other` element-wise, as 1/0.
    public func lessEqual(_ other: Tensor) throws -> Tensor { try applyBinary(.lessEqual, other) }
    /// `self > other` element-wise, as 1/0.
    public func greater(_ other: Tensor) throws -> Tensor { try applyBinary(.greater, other) }
    /// `self >= other` element-wise, as 1/0.
    public func greaterEqual(_ other: Tensor) throws -> Tensor { try applyBinary(.greaterEqual, other) }
}

/// Element-wise maximum with broadcasting (`tf.maximum`).
public func maximum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try a.maximum(b) }
/// Element-wise minimum with broadcasting (`tf.minimum`).
public func minimum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try a.minimum(b) }
