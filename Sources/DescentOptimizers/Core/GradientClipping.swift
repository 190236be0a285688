import DescentTensor

/// TensorFlow's clipping functions, applied by ``Optimizer`` to dense gradients and to the value rows of
/// sparse ones (for sparse gradients with repeated indices the norms are taken over the un-summed rows,
/// as TensorFlow does).
public enum GradientClipping {
    /// `tf.clip_by_value(g, -c, c)`: `min(g, c)`, then `max(·, -c)`. NaN elements stay NaN; ±Inf become ±c.
    public static func clipByValue(_ g: Gradient, _ c: Double) throws -> Gradient {
        try mapValues(g) { try $0.untracked.minimum(c).maximum(-c).untracked }
    }

    /// `tf.clip_by_norm(g, c)`: `g · c / max(‖g‖, c)` (‖g‖ over the whole tensor).
    ///
    /// As in TensorFlow, a NaN norm (some element NaN) makes every element NaN (`tf.maximum` propagates
    /// NaN), and an infinite norm (an infinite element, or squares overflowing) makes the finite
    /// elements 0 and the infinite ones NaN.
    public static func clipByNorm(_ g: Gradient, _ c: Double) throws -> Gradient {
        try mapValues(g) { t in
            let t = t.untracked
            let sumSquares = TypedScalar(try t.squared().sum().item(), t.dtype)
            let norm = sumSquares.value > 0 ? sumSquares.squareRoot() : sumSquares
            let clip = TypedScalar(max(c, 0), t.dtype)
            let denominator = norm.value.isNaN || norm.value > clip.value ? norm : clip
            return try ((t * clip.value) / denominator.value).untracked
        }
    }

    /// The global norm `sqrt(2 · Σᵢ l2_loss(gᵢ))` of several gradients (`tf.linalg.global_norm`).
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` if the gradients' dtypes differ.
    public static func globalNorm(_ grads: [Gradient]) throws -> TypedScalar {
        let values = grads.map(values(of:))
        guard let dtype = values.first?.dtype else { return TypedScalar(0, .float32) }
        if let other = values.first(where: { $0.dtype != dtype }) {
            throw OptimizerError.invalidArgument(
                field: "global_clipnorm", message: "all gradients must have one dtype to compute the global norm (found \(dtype) and \(other.dtype))")
        }
        var half = TypedScalar(0, dtype)
        for v in values { half = half + TypedScalar(try (v.untracked.squared() * 0.5).sum().item(), dtype) }
        return (half * 2).squareRoot()
    }

    /// `tf.clip_by_global_norm(grads, c)`: every gradient times `c · min(1/G, 1/c)`; a non-finite `G`
    /// makes every gradient NaN, as in TensorFlow.
    public static func clipByGlobalNorm(_ grads: [Gradient], _ c: Double) throws -> [Gradient] {
        guard !grads.isEmpty else { return grads }
        let scale = globalNormScale(try globalNorm(grads), c)
        return try grads.map { g in try mapValues(g) { try ($0.untracked * scale.value).untracked } }
    }

    /// The factor `tf.clip_by_global_norm` multiplies every gradient by: `c · min(1/G, 1/c)`, NaN when
    /// `G` is not finite.
    static func globalNormScale(_ norm: TypedScalar, _ c: Double) -> TypedScalar {
        let clip = TypedScalar(c, norm.dtype)
        let inverseNorm = 1 / norm, inverseClip = 1 / clip
        let smaller = inverseNorm.value < inverseClip.value ? inverseNorm : inverseClip
        return clip * smaller + (norm - norm)
    }

    static func values(of g: Gradient) -> Tensor {
        switch g {
        case .dense(let t): return t
        case .sparse(let s): return s.values
        }
    }

    static func mapValues(_ g: Gradient, _ f: (Tensor) throws -> Tensor) throws -> Gradient {
        switch g {
        case .dense(let t): return .dense(try f(t))
        case .sparse(let s):
            return .sparse(try IndexedSlices(values: try f(s.values), indices: s.indices, denseShape: s.denseShape))
        }
    }
}
