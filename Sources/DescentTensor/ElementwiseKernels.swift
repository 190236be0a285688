import CDescentMath

// Element-wise kernels: flat SIMD loops over unsafe buffers, split across ThreadPool for large tensors,
// and NumPy broadcasting by an odometer over the outer dimensions with a SIMD inner loop.
//
// These functions do not record on gradient tapes; the public operations in ArithmeticOps.swift and
// MathOps.swift call them and record their vector-Jacobian products.

/// Loads one SIMD vector from `p` (no alignment needed).
@inlinable @inline(__always)
public func loadVector<T: FloatingElement>(_ p: UnsafePointer<T>) -> T.Vector {
    UnsafeRawPointer(p).loadUnaligned(as: T.Vector.self)
}

/// Stores one SIMD vector at `p` (no alignment needed).
@inlinable @inline(__always)
public func storeVector<T: FloatingElement>(_ v: T.Vector, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: T.Vector.self)
}

/// Prefetches the cache line holding `p` into L1 (never faults: `p` may be past the end of a buffer).
@inlinable @inline(__always)
public func prefetch<T>(_ p: UnsafePointer<T>) {
    descent_prefetch(UnsafeRawPointer(p))
}

/// How far ahead, in bytes, a memory-bound streaming kernel prefetches each of its streams (24 cache
/// lines). Measured on this project's 2-core KVM guest (Xeon, AVX-512) with a C copy of the Adam pass at
/// 10M parameters: no prefetch 6.1–8.5 ms, 256–512 floats ahead 4.1–5.8 ms, 1024 and more no better
/// than none (BENCHMARKS.md, "Keras 3 optimizers").
public let streamingPrefetchBytes = 1536

/// The fewest elements for which a streaming kernel prefetches: below this the data is likely in cache
/// and the extra instructions only cost.
public let streamingPrefetchMinimumCount = 1 << 16

/// Work per element relative to an add: decides how small a chunk may be worth a thread.
@usableFromInline enum KernelCost {
    case cheap, transcendental
    @usableFromInline var grain: Int { self == .cheap ? ThreadPool.kernelGrain : ThreadPool.kernelGrain >> 3 }
}

// MARK: - Unary

/// `dst[i] = op(src[i])`, vectorised, parallel for large `count`. Generic over the operation's type (not
/// a closure), so that each (element, operation) pair is specialized with the operation inlined.
@inlinable
func mapKernel<T: FloatingElement, Op: UnaryVectorOp>(
    _ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ count: Int, cost: KernelCost, _: Op.Type
) {
    let width = T.Vector.scalarCount
    let s = UncheckedSendable(src), d = UncheckedSendable(dst)
    ThreadPool.parallelFor(count, grain: cost.grain) { range in
        let src = s.value, dst = d.value
        var i = range.lowerBound
        let end = range.upperBound
        while i + width <= end {
            storeVector(Op.vector(T.self, loadVector(src + i)), dst + i)
            i += width
        }
        while i < end {
            dst[i] = Op.scalar(src[i])
            i += 1
        }
    }
}

/// `dst[i] = sop(src[i])` for operations without a vector form (exp, log, tanh, ...).
@inlinable @inline(__always)
func mapScalarKernel<T: TensorElement>(
    _ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ count: Int, cost: KernelCost, _ sop: (T) -> T
) {
    let s = UncheckedSendable(src), d = UncheckedSendable(dst)
    ThreadPool.parallelFor(count, grain: cost.grain) { range in
        let src = s.value, dst = d.value
        for i in range { dst[i] = sop(src[i]) }
    }
}

/// The element-wise functions of one tensor.
@usableFromInline enum UnaryOp: String, Sendable {
    case neg, abs, sign, exp, log, sqrt, rsqrt, square, tanh, sigmoid, relu, softplus, reciprocal, log1p, expm1
}

extension Tensor {
    /// Applies `op` element-wise without recording (the kernel behind the public math functions).
    @usableFromInline
    func applyUnary(_ op: UnaryOp) throws -> Tensor {
        let out = try Tensor(uninitializedShape: shape, dtype: dtype, operation: op.rawValue)
        func run<T: FloatingElement>(_: T.Type) {
            let src = _pointer(T.self), dst = out._mutablePointer(T.self), n = scalarCount
            switch op {
            case .neg: mapKernel(src, dst, n, cost: .cheap, NegateOp.self)
            case .abs: mapKernel(src, dst, n, cost: .cheap, AbsOp.self)
            case .sign: mapKernel(src, dst, n, cost: .cheap, SignOp.self)
            case .sqrt: mapKernel(src, dst, n, cost: .cheap, SqrtOp.self)
            case .rsqrt: mapKernel(src, dst, n, cost: .cheap, RsqrtOp.self)
            case .square: mapKernel(src, dst, n, cost: .cheap, SquareOp.self)
            case .reciprocal: mapKernel(src, dst, n, cost: .cheap, ReciprocalOp.self)
            case .relu: mapKernel(src, dst, n, cost: .cheap, ReluOp.self)
            case .exp: mapScalarKernel(src, dst, n, cost: .transcendental) { T.exp($0) }
            case .log: mapScalarKernel(src, dst, n, cost: .transcendental) { T.log($0) }
            case .log1p: mapScalarKernel(src, dst, n, cost: .transcendental) { T.log(onePlus: $0) }
            case .expm1: mapScalarKernel(src, dst, n, cost: .transcendental) { T.expMinusOne($0) }
            case .tanh: mapScalarKernel(src, dst, n, cost: .transcendental) { T.tanh($0) }
            case .sigmoid:
                mapScalarKernel(src, dst, n, cost: .transcendental) { x in
                    x >= 0 ? 1 / (1 + T.exp(-x)) : T.exp(x) / (1 + T.exp(x))
                }
            case .softplus:
                // log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
                mapScalarKernel(src, dst, n, cost: .transcendental) { x in
                    (x > 0 ? x : 0) + T.log(onePlus: T.exp(-Swift.abs(x)))
                }
            }
        }
        switch dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        case .int64:
            let src = _pointer(Int64.self), dst = out._mutablePointer(Int64.self), n = scalarCount
            switch op {
            case .neg: mapScalarKernel(src, dst, n, cost: .cheap) { 0 &- $0 }
            case .abs: mapScalarKernel(src, dst, n, cost: .cheap) { $0 < 0 ? 0 &- $0 : $0 }
            case .sign: mapScalarKernel(src, dst, n, cost: .cheap) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
            case .square: mapScalarKernel(src, dst, n, cost: .cheap) { $0 &* $0 }
            default: throw TensorError.unsupportedDType(operation: op.rawValue, dtype: dtype)
            }
        }
        return out
    }
}

// MARK: - Binary with broadcasting

/// The element-wise functions of two tensors. Comparisons return 1 or 0 in the operands' dtype.
@usableFromInline enum BinaryOp: String, Sendable {
    case add, subtract, multiply, divide, pow, maximum, minimum
    case equal, notEqual, less, lessEqual, greater, greaterEqual
    /// `other > 0 ? self : 0`: ReLU's backward pass in one kernel (self the upstream gradient, other the input).
    case reluGradient
}

/// The NumPy broadcast of two shapes.
@usableFromInline
func broadcastShape(_ a: [Int], _ b: [Int], operation: String) throws -> [Int] {
    if a == b { return a }
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
            throw TensorError.incompatibleShapes(operation: operation, lhs: a, rhs: b, reason: "cannot broadcast")
        }
    }
    return out
}

/// Iteration plan for a broadcast binary kernel: outer dimensions walked by an odometer, an inner run of
/// `inner` elements where each operand advances by 1 or stays (stride 0).
@usableFromInline
struct BroadcastPlan {
    @usableFromInline var outerShape: [Int] = []
    @usableFromInline var aOuterStrides: [Int] = []
    @usableFromInline var bOuterStrides: [Int] = []
    @usableFromInline var inner = 1
    @usableFromInline var aInnerStep = 1
    @usableFromInline var bInnerStep = 1

    @usableFromInline
    init(outShape: [Int], aShape: [Int], bShape: [Int]) {
        let rank = outShape.count
        func strides(_ shape: [Int]) -> [Int] {
            var s = [Int](repeating: 0, count: rank)
            var step = 1
            for i in stride(from: shape.count - 1, through: 0, by: -1) {
                let axis = i + rank - shape.count
                s[axis] = shape[i] == 1 ? 0 : step
                step *= shape[i]
            }
            return s
        }
        // Drop size-1 dimensions, then merge neighbours whose strides continue each other.
        var dims: [(n: Int, sa: Int, sb: Int)] = []
        let sa = strides(aShape), sb = strides(bShape)
        for i in 0..<rank where outShape[i] != 1 {
            if let last = dims.last, last.sa == sa[i] * outShape[i], last.sb == sb[i] * outShape[i] {
                dims[dims.count - 1] = (last.n * outShape[i], sa[i], sb[i])
            } else {
                dims.append((outShape[i], sa[i], sb[i]))
            }
        }
        if let last = dims.last, (last.sa == 0 || last.sa == 1), (last.sb == 0 || last.sb == 1) {
            inner = last.n
            aInnerStep = last.sa
            bInnerStep = last.sb
            dims.removeLast()
        } else {
            inner = 1
            aInnerStep = 0
            bInnerStep = 0
        }
        outerShape = dims.map(\.n)
        aOuterStrides = dims.map(\.sa)
        bOuterStrides = dims.map(\.sb)
    }

    /// Calls `body(aOffset, bOffset, outOffset)` for every inner run, in order.
    @inlinable @inline(__always)
    func forEachRun(_ body: (Int, Int, Int) -> Void) {
        let outerCount = Shape.product(outerShape)
        if outerShape.isEmpty {
            body(0, 0, 0)
            return
        }
        var index = [Int](repeating: 0, count: outerShape.count)
        var aOff = 0, bOff = 0
        for run in 0..<outerCount {
            body(aOff, bOff, run * inner)
            var axis = outerShape.count - 1
            while axis >= 0 {
                index[axis] += 1
                aOff += aOuterStrides[axis]
                bOff += bOuterStrides[axis]
                if index[axis] < outerShape[axis] { break }
                aOff -= aOuterStrides[axis] * outerShape[axis]
                bOff -= bOuterStrides[axis] * outerShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// One inner run of a binary kernel: `out[i] = op(a[i*sa], b[i*sb])` with `sa, sb ∈ {0, 1}`.
@inlinable @inline(__always)
func binaryRun<T: FloatingElement, Op: BinaryVectorOp>(
    _ a: UnsafePointer<T>, _ aStep: Int, _ b: UnsafePointer<T>, _ bStep: Int, _ out: UnsafeMutablePointer<T>,
    _ count: Int, _: Op.Type
) {
    @inline(__always) func vop(_ x: T.Vector, _ y: T.Vector) -> T.Vector { Op.vector(T.self, x, y) }
    @inline(__always) func sop(_ x: T, _ y: T) -> T { Op.scalar(x, y) }
    let width = T.Vector.scalarCount
    var i = 0
    switch (aStep, bStep) {
    case (1, 1):
        while i + width <= count {
            storeVector(vop(loadVector(a + i), loadVector(b + i)), out + i)
            i += width
        }
        while i < count { out[i] = sop(a[i], b[i]); i += 1 }
    case (1, 0):
        let s = b[0], vs = T.Vector(repeating: s)
        while i + width <= count {
            storeVector(vop(loadVector(a + i), vs), out + i)
            i += width
        }
        while i < count { out[i] = sop(a[i], s); i += 1 }
    case (0, 1):
        let s = a[0], vs = T.Vector(repeating: s)
        while i + width <= count {
            storeVector(vop(vs, loadVector(b + i)), out + i)
            i += width
        }
        while i < count { out[i] = sop(s, b[i]); i += 1 }
    default:
        let value = sop(a[0], b[0])
        out.update(repeating: value, count: count)
    }
}

/// `out = op(a, b)` with broadcasting. Generic over the operation's type (not a closure), so that each
/// (element, operation) pair is specialized with the operation inlined into its loops.
@inlinable
func binaryKernel<T: FloatingElement, Op: BinaryVectorOp>(
    _: T.Type, _ a: Tensor, _ b: Tensor, _ out: inout Tensor, cost: KernelCost, _ op: Op.Type
) {
    let pa = UncheckedSendable(a._pointer(T.self)), pb = UncheckedSendable(b._pointer(T.self))
    let po = UncheckedSendable(out._mutablePointer(T.self))
    let n = out.scalarCount
    let na = a.scalarCount, nb = b.scalarCount
    if (na == n && (nb == n || nb == 1)) || (nb == n && na == 1) {
        // Same shape, or one side a single element: one flat run, split across threads.
        let aStep = a.scalarCount == n ? 1 : 0, bStep = b.scalarCount == n ? 1 : 0
        ThreadPool.parallelFor(n, grain: cost.grain) { r in
            let lo = r.lowerBound
            binaryRun(pa.value + lo * aStep, aStep, pb.value + lo * bStep, bStep, po.value + lo, r.count, op)
        }
        return
    }
    // A row vector against a matrix (a bias add, its gradient's uses): rows of the full operand with the
    // same vector, without building a plan.
    let width = out.shape.last ?? 1
    if width > 1 && n % width == 0 && (na == n && nb == width && b.shape.last == width
                                       || nb == n && na == width && a.shape.last == width) {
        let aStep = na == n ? width : 0, bStep = nb == n ? width : 0
        ThreadPool.parallelFor(n / width, grain: max(1, cost.grain / width), alignment: 1) { rows in
            for r in rows {
                binaryRun(pa.value + r * aStep, 1, pb.value + r * bStep, 1, po.value + r * width, width, op)
            }
        }
        return
    }
    let plan = BroadcastPlan(outShape: out.shape, aShape: a.shape, bShape: b.shape)
    plan.forEachRun { ao, bo, oo in
        binaryRun(pa.value + ao, plan.aInnerStep, pb.value + bo, plan.bInnerStep, po.value + oo, plan.inner, op)
    }
}

@inlinable @inline(__always)
func binaryScalarKernel<T: TensorElement>(_: T.Type, _ a: Tensor, _ b: Tensor, _ out: inout Tensor, _ sop: (T, T) -> T) {
    let pa = a._pointer(T.self), pb = b._pointer(T.self), po = out._mutablePointer(T.self)
    let plan = BroadcastPlan(outShape: out.shape, aShape: a.shape, bShape: b.shape)
    let aStep = plan.aInnerStep, bStep = plan.bInnerStep, inner = plan.inner
    plan.forEachRun { ao, bo, oo in
        for i in 0..<inner { po[oo + i] = sop(pa[ao + i * aStep], pb[bo + i * bStep]) }
    }
}

extension Tensor {
    /// Applies `op` with broadcasting, without recording. Throws on a dtype or shape mismatch.
    @usableFromInline
    func applyBinary(_ op: BinaryOp, _ other: Tensor, name: String? = nil) throws -> Tensor {
        let opName = name ?? op.rawValue
        guard dtype == other.dtype else {
            throw TensorError.dtypeMismatch(operation: opName, lhs: dtype, rhs: other.dtype)
        }
        let outShape = try broadcastShape(shape, other.shape, operation: opName)
        var out = try Tensor(uninitializedShape: outShape, dtype: dtype, operation: opName)
        func run<T: FloatingElement>(_: T.Type) {
            switch op {
            case .add: binaryKernel(T.self, self, other, &out, cost: .cheap, AddOp.self)
            case .subtract: binaryKernel(T.self, self, other, &out, cost: .cheap, SubtractOp.self)
            case .multiply: binaryKernel(T.self, self, other, &out, cost: .cheap, MultiplyOp.self)
            case .divide: binaryKernel(T.self, self, other, &out, cost: .cheap, DivideOp.self)
            case .pow: binaryKernel(T.self, self, other, &out, cost: .transcendental, PowOp.self)
            case .maximum: binaryKernel(T.self, self, other, &out, cost: .cheap, MaximumOp.self)
            case .reluGradient: binaryKernel(T.self, self, other, &out, cost: .cheap, ReluGradientOp.self)
            case .minimum: binaryKernel(T.self, self, other, &out, cost: .cheap, MinimumOp.self)
            case .equal: binaryKernel(T.self, self, other, &out, cost: .cheap, EqualOp.self)
            case .notEqual: binaryKernel(T.self, self, other, &out, cost: .cheap, NotEqualOp.self)
            case .less: binaryKernel(T.self, self, other, &out, cost: .cheap, LessOp.self)
            case .lessEqual: binaryKernel(T.self, self, other, &out, cost: .cheap, LessEqualOp.self)
            case .greater: binaryKernel(T.self, self, other, &out, cost: .cheap, GreaterOp.self)
            case .greaterEqual: binaryKernel(T.self, self, other, &out, cost: .cheap, GreaterEqualOp.self)
            }
        }
        switch dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        case .int64:
            switch op {
            case .add: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x &+ y }
            case .subtract: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x &- y }
            case .multiply: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x &* y }
            case .maximum: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in Swift.max(x, y) }
            case .minimum: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in Swift.min(x, y) }
            case .equal: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x == y ? 1 : 0 }
            case .notEqual: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x != y ? 1 : 0 }
            case .less: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x < y ? 1 : 0 }
            case .lessEqual: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x <= y ? 1 : 0 }
            case .greater: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x > y ? 1 : 0 }
            case .greaterEqual: binaryScalarKernel(Int64.self, self, other, &out) { (x: Int64, y: Int64) in x >= y ? 1 : 0 }
            case .divide, .pow, .reluGradient: throw TensorError.unsupportedDType(operation: opName, dtype: dtype)
            }
        }
        return out
    }

    /// A scalar tensor of this tensor's dtype.
    @usableFromInline
    func scalarLike(_ value: Double) -> Tensor {
        switch dtype {
        case .float32: return Tensor(Float(value))
        case .float64: return Tensor(value)
        case .int64: return Tensor(Int64(fromDouble: value))
        }
    }
}

// MARK: - Binary operations as types

/// A binary element-wise operation: its vector form (one SIMD vector of each operand) and its scalar form
/// (tails and single elements). Both give the same result per element.
@usableFromInline protocol BinaryVectorOp {
    static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector
    static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T
}
@usableFromInline enum AddOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector { a + b }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a + b }
}
@usableFromInline enum SubtractOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector { a - b }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a - b }
}
@usableFromInline enum MultiplyOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector { a * b }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a * b }
}
@usableFromInline enum DivideOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector { a / b }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a / b }
}
/// C `pow` per lane (no vector form).
@usableFromInline enum PowOp: BinaryVectorOp {
    @inlinable static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        var r = a
        for i in 0..<T.Vector.scalarCount { r[i] = T.power(a[i], b[i]) }
        return r
    }
    @inlinable static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { T.power(a, b) }
}
/// `a < b ? b : a`.
@usableFromInline enum MaximumOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        T.vectorSelectLess(a, b, b, a)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a < b ? b : a }
}
/// `b < a ? b : a`.
@usableFromInline enum MinimumOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        T.vectorSelectLess(b, a, b, a)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { b < a ? b : a }
}
/// ReLU's gradient: the upstream gradient (first operand) where the input (second) is `> 0`, else 0.
@usableFromInline enum ReluGradientOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ g: T.Vector, _ x: T.Vector) -> T.Vector {
        let zero = T.Vector(repeating: 0)
        return T.vectorSelectLess(zero, x, g, zero)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ g: T, _ x: T) -> T { 0 < x ? g : 0 }
}
/// Comparisons: 1 where the relation holds, else 0.
@usableFromInline enum EqualOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        let one = T.Vector(repeating: 1), zero = T.Vector(repeating: 0)
        return T.vectorSelectEqual(a, b, one, zero)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a == b ? 1 : 0 }
}
@usableFromInline enum NotEqualOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        let one = T.Vector(repeating: 1), zero = T.Vector(repeating: 0)
        return T.vectorSelectEqual(a, b, zero, one)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a != b ? 1 : 0 }
}
@usableFromInline enum LessOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        let one = T.Vector(repeating: 1), zero = T.Vector(repeating: 0)
        return T.vectorSelectLess(a, b, one, zero)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a < b ? 1 : 0 }
}
@usableFromInline enum LessEqualOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        let one = T.Vector(repeating: 1), zero = T.Vector(repeating: 0)
        return T.vectorSelectLessEqual(a, b, one, zero)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a <= b ? 1 : 0 }
}
@usableFromInline enum GreaterOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        let one = T.Vector(repeating: 1), zero = T.Vector(repeating: 0)
        return T.vectorSelectLess(b, a, one, zero)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a > b ? 1 : 0 }
}
@usableFromInline enum GreaterEqualOp: BinaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ a: T.Vector, _ b: T.Vector) -> T.Vector {
        let one = T.Vector(repeating: 1), zero = T.Vector(repeating: 0)
        return T.vectorSelectLessEqual(b, a, one, zero)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ a: T, _ b: T) -> T { a >= b ? 1 : 0 }
}

// MARK: - Unary operations as types

/// A unary element-wise operation: its vector form and its scalar form, equal per element.
@usableFromInline protocol UnaryVectorOp {
    static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector
    static func scalar<T: FloatingElement>(_ x: T) -> T
}

@usableFromInline enum NegateOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector { -x }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { -x }
}
/// `0 - x` where `x <= 0`, so -0 becomes +0 as in the scalar `Swift.abs`.
@usableFromInline enum AbsOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
        let zero = T.Vector(repeating: 0)
        return T.vectorSelectLessEqual(x, zero, zero - x, x)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { Swift.abs(x) }
}
/// -1, 0 or 1; NaN stays NaN.
@usableFromInline enum SignOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
        let zero = T.Vector(repeating: 0), one = T.Vector(repeating: 1)
        let s = T.vectorSelectLess(x, zero, zero - one, T.vectorSelectLess(zero, x, one, zero))
        return T.vectorSelectEqual(x, x, s, x)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T {
        x > 0 ? 1 : (x < 0 ? -1 : (x.isNaN ? x : 0))
    }
}
@usableFromInline enum SqrtOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
        T.vectorSquareRoot(x)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { T.scalarSquareRoot(x) }
}
@usableFromInline enum RsqrtOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
        T.Vector(repeating: 1) / T.vectorSquareRoot(x)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { 1 / T.scalarSquareRoot(x) }
}
@usableFromInline enum SquareOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector { x * x }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { x * x }
}
@usableFromInline enum ReciprocalOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
        T.Vector(repeating: 1) / x
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { 1 / x }
}
/// `x < 0 ? 0 : x`: NaN propagates, as in TensorFlow.
@usableFromInline enum ReluOp: UnaryVectorOp {
    @inlinable @inline(__always) static func vector<T: FloatingElement>(_: T.Type, _ x: T.Vector) -> T.Vector {
        let zero = T.Vector(repeating: 0)
        return T.vectorSelectLess(x, zero, zero, x)
    }
    @inlinable @inline(__always) static func scalar<T: FloatingElement>(_ x: T) -> T { x < 0 ? 0 : x }
}
