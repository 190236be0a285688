// Reductions over axes (sum, mean, max), argmax, the L2 norm, softmax and log-softmax.

@usableFromInline enum ReduceOp: String { case sum, max }

extension Tensor {
    /// Normalises possibly negative, possibly repeated axes; `nil` means all axes.
    func normalizedAxes(_ axes: [Int]?, operation: String) throws -> [Int] {
        guard let axes else { return Array(0..<rank) }
        var seen = Set<Int>()
        for a in axes {
            let n = a < 0 ? a + rank : a
            guard n >= 0 && n < rank, !seen.contains(n) else {
                throw TensorError.invalidAxis(operation: operation, axis: a, rank: rank)
            }
            seen.insert(n)
        }
        return seen.sorted()
    }

    /// The shape after reducing `axes` with `keepDims: true`.
    func keptShape(_ axes: [Int]) -> [Int] {
        var s = shape
        for a in axes { s[a] = 1 }
        return s
    }

    /// Reduces sorted, valid `axes` without recording; the result keeps the reduced dimensions as 1.
    @usableFromInline
    func applyReduce(_ op: ReduceOp, axes: [Int]) throws -> Tensor {
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: op.rawValue, dtype: dtype) }
        var result = self
        // Reduce runs of consecutive axes, the last run first, each as [outer, r, inner] -> [outer, 1, inner].
        var runs: [(start: Int, end: Int)] = []
        for a in axes {
            if let last = runs.last, last.end == a { runs[runs.count - 1].end = a + 1 } else { runs.append((a, a + 1)) }
        }
        for run in runs.reversed() {
            let outer = Shape.product(result.shape[..<run.start])
            let r = Shape.product(result.shape[run.start..<run.end])
            let inner = Shape.product(result.shape[run.end...])
            var newShape = result.shape
            for i in run.start..<run.end { newShape[i] = 1 }
            var out = try Tensor(uninitializedShape: newShape, dtype: dtype, operation: op.rawValue)
            switch dtype {
            case .float32: reduceKernel(Float.self, op, result, &out, outer, r, inner)
            case .float64: reduceKernel(Double.self, op, result, &out, outer, r, inner)
            // Internal invariant: the guard above admits floating-point dtypes only.
            case .int64: preconditionFailure("unreachable")
            }
            result = out
        }
        return result
    }

    // MARK: Public reductions

    /// The sum over `axes` (all axes when `nil`), like `tf.reduce_sum`.
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxes(axes, operation: "sum")
        if ax.isEmpty { return self }
        let kept = try applyReduce(.sum, axes: ax)
        let out = keepDims ? kept : try kept.applyReshape(droppingAxes: ax)
        return Autodiff.recordUnary("sum", self, out, backward: { [shape = self.shape, keptShape = kept.shape] g in
            [.dense(try g.reshaped(to: keptShape).broadcast(to: shape))]
        })
    }

    /// The sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor { try sum(axes: [axis], keepDims: keepDims) }

    /// The mean over `axes` (all axes when `nil`), like `tf.reduce_mean`.
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxes(axes, operation: "mean")
        if ax.isEmpty { return self }
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: "mean", dtype: dtype) }
        let count = Shape.product(ax.lazy.map { shape[$0] })
        return try sum(axes: ax, keepDims: keepDims) / Double(count)
    }

    /// The mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor { try mean(axes: [axis], keepDims: keepDims) }

    /// The maximum over `axes` (all axes when `nil`), like `tf.reduce_max`. The gradient is shared equally
    /// among tied maxima, as in TensorFlow.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxes(axes, operation: "max")
        if ax.isEmpty { return self }
        guard ax.allSatisfy({ shape[$0] > 0 }) else {
            throw TensorError.invalidShape(operation: "max", shape: shape, reason: "cannot take the maximum of an empty axis")
        }
        let kept = try applyReduce(.max, axes: ax)
        let out = keepDims ? kept : try kept.applyReshape(droppingAxes: ax)
        return Autodiff.recordUnary("max", self, out, backward: { [x = self.untracked] g in
            let indicators = try x.equal(kept)
            let count = try indicators.sum(axes: ax, keepDims: true)
            return [.dense(try g.reshaped(to: kept.shape) * indicators / count)]
        })
    }

    /// The maximum over one axis.
    public func max(axis: Int, keepDims: Bool = false) throws -> Tensor { try max(axes: [axis], keepDims: keepDims) }

    /// The index of the largest element along `axis` (the first one on ties), as an `int64` tensor
    /// without that axis (`tf.argmax`). Not differentiable.
    public func argmax(axis: Int = -1) throws -> Tensor {
        let ax = try normalizedAxes([axis], operation: "argmax")[0]
        guard shape[ax] > 0 else {
            throw TensorError.invalidShape(operation: "argmax", shape: shape, reason: "axis \(axis) is empty")
        }
        let outer = Shape.product(shape[..<ax]), r = shape[ax], inner = Shape.product(shape[(ax + 1)...])
        var outShape = shape
        outShape.remove(at: ax)
        let out = try Tensor(uninitializedShape: outShape, dtype: .int64, operation: "argmax")
        let dst = out._mutablePointer(Int64.self)
        func run<T: TensorElement>(_: T.Type) {
            let src = _pointer(T.self)
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = src[o * r * inner + i], bestIndex = 0
                    for k in 1..<Swift.max(r, 1) {
                        let v = src[(o * r + k) * inner + i]
                        if v > best { best = v; bestIndex = k }
                    }
                    dst[o * inner + i] = Int64(bestIndex)
                }
            }
        }
        switch dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        case .int64: run(Int64.self)
        }
        return out
    }

    /// The Euclidean norm `sqrt(sum(x²))` over `axes` (all when `nil`), like `tf.norm`. Its gradient is
    /// `x / norm`, and 0 where the norm is 0 (TensorFlow gives NaN there).
    public func l2Norm(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxes(axes, operation: "l2Norm")
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: "l2Norm", dtype: dtype) }
        let kept = try applyUnary(.square).applyReduce(.sum, axes: ax).applyUnary(.sqrt)
        let out = keepDims ? kept : try kept.applyReshape(droppingAxes: ax)
        return Autodiff.recordUnary("l2Norm", self, out, backward: { [x = self.untracked] g in
            let zero = try kept.equal(kept.scalarLike(0))
            let safeNorm = try kept + zero
            return [.dense(try g.reshaped(to: kept.shape) * x / safeNorm)]
        })
    }

    /// Log-softmax along `axis`: `x - log(sum(exp(x)))`, computed stably.
    public func logSoftmax(axis: Int = -1) throws -> Tensor {
        let ax = try normalizedAxes([axis], operation: "logSoftmax")
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: "logSoftmax", dtype: dtype) }
        let shifted = try applyBinary(.subtract, applyReduce(.max, axes: ax))
        let logSum = try shifted.applyUnary(.exp).applyReduce(.sum, axes: ax).applyUnary(.log)
        let out = try shifted.applyBinary(.subtract, logSum)
        return Autodiff.recordUnary("logSoftmax", self, out, backward: { g in
            let softmax = try out.untracked.exp()
            return [.dense(try g - g.sum(axes: ax, keepDims: true) * softmax)]
        })
    }

    /// Softmax along `axis`: `exp(x) / sum(exp(x))`, computed stably.
    public func softmax(axis: Int = -1) throws -> Tensor {
        let ax = try normalizedAxes([axis], operation: "softmax")
        guard dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: "softmax", dtype: dtype) }
        let e = try applyBinary(.subtract, applyReduce(.max, axes: ax)).applyUnary(.exp)
        let out = try e.applyBinary(.divide, e.applyReduce(.sum, axes: ax))
        return Autodiff.recordUnary("softmax", self, out, backward: { g in
            let y = out.untracked
            return [.dense(try y * (g - (g * y).sum(axes: ax, keepDims: true)))]
        })
    }
}

/// `out[o, 0, i] = reduce_k x[o, k, i]` for a tensor viewed as `[outer, r, inner]`.
@inline(__always)
func reduceKernel<T: FloatingElement>(
    _: T.Type, _ op: ReduceOp, _ x: Tensor, _ out: inout Tensor, _ outer: Int, _ r: Int, _ inner: Int
) {
    let src = UncheckedSendable(x._pointer(T.self)), dst = UncheckedSendable(out._mutablePointer(T.self))
    let width = T.Vector.scalarCount
    let identity: T = op == .sum ? 0 : -T.infinity
    @inline(__always) func combine(_ a: T.Vector, _ b: T.Vector) -> T.Vector {
        op == .sum ? a + b : T.vectorSelectLess(a, b, b, a)
    }
    @inline(__always) func combine(_ a: T, _ b: T) -> T { op == .sum ? a + b : (a < b ? b : a) }

    /// Reduces the contiguous run `p[0..<n]`. A sum is `sumInTensorOrder`'s, the one definition of the
    /// order that fused passes elsewhere reproduce.
    @inline(__always) func reduceRow(_ p: UnsafePointer<T>, _ n: Int) -> T {
        if op == .sum { return sumInTensorOrder(0..<n, vector: { loadVector(p + $0) }, scalar: { p[$0] }) }
        var acc = T.Vector(repeating: identity)
        var i = 0
        while i + width <= n {
            acc = combine(acc, loadVector(p + i))
            i += width
        }
        var s = identity
        for lane in 0..<width { s = combine(s, acc[lane]) }
        while i < n { s = combine(s, p[i]); i += 1 }
        return s
    }

    if inner == 1 {
        if outer == 1 {
            // One long row: partial results per chunk, then combined (see `reduceInChunks`).
            dst.value[0] = reduceInChunks(r, identity: identity, combine: combine) { range in
                reduceRow(src.value + range.lowerBound, range.count)
            }
            return
        }
        ThreadPool.parallelFor(outer, grain: Swift.max(1, ThreadPool.kernelGrain / Swift.max(r, 1)), alignment: 1) { rows in
            for o in rows { dst.value[o] = reduceRow(src.value + o * r, r) }
        }
        return
    }
    // Accumulate rows of `inner` elements.
    ThreadPool.parallelFor(outer, grain: Swift.max(1, ThreadPool.kernelGrain / Swift.max(r * inner, 1)), alignment: 1) { rows in
        for o in rows {
            let d = dst.value + o * inner
            let s = src.value + o * r * inner
            if r == 0 {
                d.update(repeating: identity, count: inner)
                continue
            }
            d.update(from: s, count: inner)
            for k in 1..<r {
                let row = s + k * inner
                var i = 0
                while i + width <= inner {
                    storeVector(combine(loadVector(UnsafePointer(d + i)), loadVector(row + i)), d + i)
                    i += width
                }
                while i < inner { d[i] = combine(d[i], row[i]); i += 1 }
            }
        }
    }
}

/// The order of a whole-tensor reduction of `count` elements (``Tensor/sum(axes:keepDims:)`` over all
/// axes): `min(threads, count / 32768)` contiguous chunks (at least one) of `ceil(count / chunks)`
/// elements, each reduced by `chunk` (in parallel), the partial results combined in chunk order.
/// A fused pass that reduces values it computes (Keras 3's Adafactor: `sum(x²)` without `x²`) gets the
/// tensor reduction's numbers by calling this with a `chunk` that follows ``sumInTensorOrder(_:_:)``.
/// `R` may bundle several sums of the same elements (a tuple, combined member by member): each member
/// then has the order of its own tensor reduction.
@_spi(DescentInternals)
public func reduceInChunks<R>(
    _ count: Int, identity: R, combine: (R, R) -> R, _ chunk: (Range<Int>) -> R
) -> R {
    let chunks = Swift.max(1, Swift.min(ThreadPool.threadCount, count / (1 << 15)))
    if chunks == 1 { return chunk(0..<count) }
    var partial = [R](repeating: identity, count: chunks)
    let size = (count + chunks - 1) / chunks
    partial.withUnsafeMutableBufferPointer { buf in
        // Internal invariant: `partial` has `chunks` >= 2 elements, so its buffer has an address.
        let pb = UncheckedSendable(buf.baseAddress!)
        ThreadPool.forEach(chunks) { c in
            let lo = c * size, hi = Swift.min(count, lo + size)
            pb.value[c] = lo < hi ? chunk(lo..<hi) : identity
        }
    }
    return partial.dropFirst().reduce(partial[0], combine)
}

/// The sum of `value(i)` over `range` in the order the tensor reduction sums a contiguous run:
/// `T.Vector` lanes accumulated from the start of the range (`vector(i)` gives the lanes `i..<i+width`),
/// the lanes added in order, then the tail one by one. With ``reduceInChunks(_:identity:combine:_:)``
/// this is ``Tensor/sum(axes:keepDims:)`` of the tensor of the values, bit for bit.
@_spi(DescentInternals) @inlinable @inline(__always)
public func sumInTensorOrder<T: FloatingElement>(
    _ range: Range<Int>, vector: (Int) -> T.Vector, scalar: (Int) -> T
) -> T {
    let width = T.Vector.scalarCount
    var acc = T.Vector(repeating: 0)
    var i = range.lowerBound
    while i + width <= range.upperBound {
        acc = acc + vector(i)
        i += width
    }
    var s: T = 0
    for lane in 0..<width { s = s + acc[lane] }
    while i < range.upperBound { s = s + scalar(i); i += 1 }
    return s
}

/// Two sums over `range` in one pass, each in ``sumInTensorOrder(_:vector:scalar:)``'s order:
/// `vector(i)` gives both values' lanes `i..<i+width`, `scalar(i)` both values at `i`.
@_spi(DescentInternals) @inlinable @inline(__always)
public func sumPairInTensorOrder<T: FloatingElement>(
    _ range: Range<Int>, vector: (Int) -> (T.Vector, T.Vector), scalar: (Int) -> (T, T)
) -> (T, T) {
    let width = T.Vector.scalarCount
    var acc0 = T.Vector(repeating: 0), acc1 = T.Vector(repeating: 0)
    var i = range.lowerBound
    while i + width <= range.upperBound {
        let (a, b) = vector(i)
        acc0 = acc0 + a
        acc1 = acc1 + b
        i += width
    }
    var s0: T = 0, s1: T = 0
    for lane in 0..<width {
        s0 = s0 + acc0[lane]
        s1 = s1 + acc1[lane]
    }
    while i < range.upperBound {
        let (a, b) = scalar(i)
        s0 = s0 + a
        s1 = s1 + b
        i += 1
    }
    return (s0, s1)
}
