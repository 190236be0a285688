@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Follow The Regularized Leader (McMahan et al., 2013), as TensorFlow's FTRL kernels compute it
/// (Keras' `Ftrl`).
///
/// With learning rate `lr`, `p = learningRatePower`, `λ1`, `λ2`, `β`, shrinkage `λs`, accumulator `n`,
/// linear term `z` and gradient `g`:
/// ```
/// λ2'  = λ2 + β / (2·lr)
/// P(x) = sqrt(x)  when p == −0.5 exactly,  else x^(−p)
/// gs   = g + 2·λs·var                       (shrinkage > 0 only; otherwise gs = g)
/// n'   = n + g²                             (always the raw g)
/// z   ← z + (gs − (P(n') − P(n)) / lr · var)
/// var ← |z| > λ1 ? (λ1·sign(z) − z) / (P(n')/lr + 2·λ2') : 0
/// n   ← n'
/// ```
/// Slots, interleaved per variable: `accumulator` (starting at `initialAccumulatorValue`), then
/// `linear` (zeros). `learningRate` may be decayed (`decay`) or scheduled.
///
/// Sparse gradients are summed per index, then applied to the touched rows only (lazy: untouched rows of
/// the variable, `accumulator` and `linear` do not change). As TensorFlow's sparse kernel does, the
/// sparse path also requires `lr > 0`, `λ1 ≥ 0`, `λ2' ≥ 0` and `p ≤ 0` (the dense path does not). For
/// rows of one element (a rank-1 variable) it uses TensorFlow's scalar form,
/// `z ← (z + gs) − (n'^(−p) − n^(−p))/lr · var` (with `pow` even for p = −0.5), which may differ from the
/// dense result in the last bit.
///
/// For p ≠ −0.5, `x^(−p)` is computed as TensorFlow's CPU kernel computes it, so results stay bit-exact:
/// Eigen's vectorized `pow` on the elements that fill whole AVX packets (8 floats or 4 doubles, counted
/// per variable, or per row on the sparse path) and the C library's `pow` on the rest
/// (`EigenPacketPow`).
///
/// Unlike the other optimizers, the `lr` constructor argument is **ignored** (Keras accepts it but
/// never reads it, so the learning rate stays at `learningRate`); a warning says so. The `lr` key of a
/// config, which Keras' `from_config` renames to `learning_rate`, is honoured.
open class Ftrl: Optimizer {
    /// The initial value of every `accumulator` slot (≥ 0).
    public let initialAccumulatorValue: Double
    /// λs, the L2 shrinkage strength (≥ 0); > 0 selects the shrinkage (V2) rule.
    public let l2ShrinkageRegularizationStrength: Double

    /// Creates an FTRL optimizer with Keras' defaults.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a negative
    ///   `initialAccumulatorValue`, `l1RegularizationStrength`, `l2RegularizationStrength` or
    ///   `l2ShrinkageRegularizationStrength`, a positive `learningRatePower`, and for the base class's
    ///   invalid options (checked first, as in Keras).
    public init(learningRate: Hyperparameter = 0.001, learningRatePower: Hyperparameter = -0.5,
                initialAccumulatorValue: Double = 0.1, l1RegularizationStrength: Hyperparameter = 0.0,
                l2RegularizationStrength: Hyperparameter = 0.0, l2ShrinkageRegularizationStrength: Double = 0.0,
                beta: Hyperparameter = 0.0, name: String = "Ftrl", clipnorm: Double? = nil, clipvalue: Double? = nil,
                globalClipnorm: Double? = nil, decay: Double = 0, lr: Hyperparameter? = nil,
                gradientAggregator: GradientAggregator? = nil, gradientTransformers: [GradientTransformer] = []) throws {
        self.initialAccumulatorValue = initialAccumulatorValue
        self.l2ShrinkageRegularizationStrength = l2ShrinkageRegularizationStrength
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                       decay: decay, gradientAggregator: gradientAggregator, gradientTransformers: gradientTransformers)
        if initialAccumulatorValue < 0 || initialAccumulatorValue.isNaN {
            throw OptimizerError.invalidArgument(
                field: "initial_accumulator_value",
                message: "`initial_accumulator_value` needs to be positive or zero. Received: initial_accumulator_value=\(initialAccumulatorValue).")
        }
        if let p = learningRatePower.numericValue, p > 0 || p.isNaN {
            throw OptimizerError.invalidArgument(
                field: "learning_rate_power",
                message: "`learning_rate_power` needs to be negative or zero. Received: learning_rate_power=\(p).")
        }
        for (field, value) in [("l1_regularization_strength", l1RegularizationStrength.numericValue),
                               ("l2_regularization_strength", l2RegularizationStrength.numericValue),
                               ("l2_shrinkage_regularization_strength", Optional(l2ShrinkageRegularizationStrength))] {
            if let value, value < 0 || value.isNaN {
                throw OptimizerError.invalidArgument(
                    field: field, message: "`\(field)` needs to be positive or zero. Received: \(field)=\(value).")
            }
        }
        if lr != nil {
            Optimizer.warn("Ftrl ignores the `lr` argument (as Keras does); the learning rate stays at `learningRate`.")
        }
        setHyper("learning_rate", learningRate)
        setHyper("decay", .number(decay))
        setHyper("learning_rate_power", learningRatePower)
        setHyper("l1_regularization_strength", l1RegularizationStrength)
        setHyper("l2_regularization_strength", l2RegularizationStrength)
        setHyper("beta", beta)
    }

    open override class var kerasClassName: String { "Ftrl" }

    /// Keras' `Ftrl` leaves `_HAS_AGGREGATE_GRAD` at the base class's `False`.
    open override var hasAggregateGradients: Bool { false }

    /// The learning-rate power `p` hyperparameter (≤ 0).
    public var learningRatePower: Hyperparameter {
        get { (try? hyper("learning_rate_power")) ?? .number(.nan) }
        set { setHyper("learning_rate_power", newValue) }
    }

    /// The L1 regularization strength λ1.
    public var l1RegularizationStrength: Hyperparameter {
        get { (try? hyper("l1_regularization_strength")) ?? .number(.nan) }
        set { setHyper("l1_regularization_strength", newValue) }
    }

    /// The L2 regularization strength λ2.
    public var l2RegularizationStrength: Hyperparameter {
        get { (try? hyper("l2_regularization_strength")) ?? .number(.nan) }
        set { setHyper("l2_regularization_strength", newValue) }
    }

    /// β, folded into the L2 strength as `β / (2·lr)`.
    public var beta: Hyperparameter {
        get { (try? hyper("beta")) ?? .number(.nan) }
        set { setHyper("beta", newValue) }
    }

    open override func createSlots(for variables: [Variable]) throws {
        for v in variables {
            try addSlot(v, "accumulator", initializer: .constant(initialAccumulatorValue))
            try addSlot(v, "linear")
        }
    }

    open override func prepare(_ c: inout Coefficients) throws {
        try super.prepare(&c)
        c.set("learning_rate_power", try hyperScalar("learning_rate_power", c.dtype))
        c.set("l1_regularization_strength", try hyperScalar("l1_regularization_strength", c.dtype))
        c.set("l2_regularization_strength", try hyperScalar("l2_regularization_strength", c.dtype))
        c.set("beta", try hyperScalar("beta", c.dtype))
        c.set("l2_shrinkage_regularization_strength", TypedScalar.castFromFloat32(l2ShrinkageRegularizationStrength, c.dtype))
        // λ2' = λ2 + β / (2·lr), as Keras computes it before calling the kernel.
        c.set("adjusted_l2", try c["l2_regularization_strength"] + c["beta"] / (2 * c["lr_t"]))
    }

    /// Whether the shrinkage (`ApplyFtrlV2`) rule is used: Keras' Python-side `λs > 0` check.
    var usesShrinkage: Bool { l2ShrinkageRegularizationStrength > 0 }

    open override var denseKernelSlotNames: [String] { ["accumulator", "linear"] }

    open override var fusesDenseUpdates: Bool { type(of: self) == Ftrl.self }

    open override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
        try c.dtype == .float32 ? makeKernel(Float.self, c) : makeKernel(Double.self, c)
    }

    private func makeKernel<T: EigenPacketPow>(_: T.Type, _ c: Coefficients) throws -> DenseKernel {
        let p = try FtrlParameters<T>(c, shrinkage: usesShrinkage)
        return { job, range in
            ftrlKernel(job.variablePointer(T.self), job.gradientPointer(T.self), job.slotPointer(0, T.self),
                       job.slotPointer(1, T.self), range, count: job.count, p)
        }
    }

    open override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                           _ c: Coefficients) throws {
        try validateSparseUpdates(c)
        let row = variable.shape.dropFirst().reduce(1, *)
        let w = variable.uniqueStorageForUpdate()
        let n = try slot(for: variable, named: "accumulator").uniqueStorageForUpdate()
        let z = try slot(for: variable, named: "linear").uniqueStorageForUpdate()
        let shrinkage = usesShrinkage
        func run<T: EigenPacketPow>(_: T.Type) throws {
            let p = try FtrlParameters<T>(c, shrinkage: shrinkage)
            let pw = w.base.assumingMemoryBound(to: T.self), pn = n.base.assumingMemoryBound(to: T.self)
            let pz = z.base.assumingMemoryBound(to: T.self)
            let g = values.unsafeStorage.base.assumingMemoryBound(to: T.self)
            if row > 1 {
                // TensorFlow's per-row path: the dense rule, with (clip(z, −λ1, λ1) − z) / y. Each row is
                // an Eigen expression: full packets use Eigen's pow, the tail the C library's.
                let packetEnd = row / T.eigenPacketWidth * T.eigenPacketWidth
                for (r, index) in indices.enumerated() {
                    let o = index * row
                    for j in 0..<row {
                        ftrlSparseElement(&pw[o + j], &pn[o + j], &pz[o + j], g[r * row + j], p, packet: j < packetEnd)
                    }
                }
            } else {
                // TensorFlow's scalar path (rank-1 variables): pow even for p = −0.5, (z + gs) − σ·var.
                for (r, index) in indices.enumerated() {
                    let gi = g[r], wi = pw[index], ni = pn[index]
                    let gs = p.shrinkage ? gi + p.twoShrinkage * wi : gi
                    let nNew = ni + gi * gi
                    let sigma = (T.power(nNew, p.negPower) - T.power(ni, p.negPower)) / p.lr
                    let zNew = pz[index] + gs - sigma * wi
                    let quadratic = (p.sqrtPath ? T.scalarSquareRoot(nNew) : T.power(nNew, p.negPower)) / p.lr + p.twoL2
                    let clipped = Swift.max(Swift.min(zNew, p.l1), -p.l1)
                    pw[index] = (clipped - zNew) / quadratic
                    pn[index] = nNew
                    pz[index] = zNew
                }
            }
        }
        try withExtendedLifetime((values, w, n, z)) {
            if variable.dtype == .float32 { try run(Float.self) } else { try run(Double.self) }
        }
    }

    /// The sparse kernel's argument checks (`SparseApplyFtrlOp`), which the dense kernel lacks. Run by
    /// ``Optimizer/applyGradients(_:)`` before any variable is written (a failing step changes nothing),
    /// and again by ``resourceApplySparse(_:_:_:_:)`` for a direct call.
    open override func validateSparseUpdates(_ c: Coefficients) throws {
        try super.validateSparseUpdates(c)
        let lr = try c["lr_t"].value, l1 = try c["l1_regularization_strength"].value
        let l2 = try c["adjusted_l2"].value, power = try c["learning_rate_power"].value
        let shrinkage = try c["l2_shrinkage_regularization_strength"].value
        let checks: [(String, Bool, String)] = [
            ("learning_rate", lr > 0, "lr is not a positive scalar: \(lr)"),
            ("l1_regularization_strength", l1 >= 0, "l1 regularization strength is not a non-negative scalar: \(l1)"),
            ("l2_regularization_strength", l2 >= 0,
             "l2 regularization strength (with beta / (2·lr)) is not a non-negative scalar: \(l2)"),
            ("learning_rate_power", power <= 0, "lr_power is not a non-positive scalar: \(power)"),
            ("l2_shrinkage_regularization_strength", !usesShrinkage || shrinkage >= 0,
             "l2 shrinkage regularization strength is not a non-negative scalar"),
        ]
        for (field, ok, message) in checks where !ok {
            throw OptimizerError.invalidArgument(field: field, message: "sparse FTRL update: \(message)")
        }
    }

    open override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["initial_accumulator_value"] = .double(initialAccumulatorValue)
            c["learning_rate_power"] = try serializedHyper("learning_rate_power")
            c["l1_regularization_strength"] = try serializedHyper("l1_regularization_strength")
            c["l2_regularization_strength"] = try serializedHyper("l2_regularization_strength")
            c["beta"] = try serializedHyper("beta")
            c["l2_shrinkage_regularization_strength"] = .double(l2ShrinkageRegularizationStrength)
            return c
        }
    }

    /// Rebuilds an FTRL optimizer from a Keras config (`Ftrl.from_config`; `lr` is renamed to
    /// `learning_rate` first, so it is honoured here).
    public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var r = ConfigReader(config, className: "Ftrl", customObjects: customObjects)
        let common = try r.common()
        let learningRate = try r.learningRate() ?? 0.001
        let power = try r.hyper("learning_rate_power") ?? -0.5
        let initialAccumulatorValue = try r.double("initial_accumulator_value") ?? 0.1
        let l1 = try r.hyper("l1_regularization_strength") ?? 0.0
        let l2 = try r.hyper("l2_regularization_strength") ?? 0.0
        let beta = try r.hyper("beta") ?? 0.0
        let shrinkage = try r.double("l2_shrinkage_regularization_strength") ?? 0.0
        try r.finish(allowed: ConfigReader.commonKeys + [
            "learning_rate", "learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
            "l2_regularization_strength", "beta", "l2_shrinkage_regularization_strength",
        ])
        try self.init(learningRate: learningRate, learningRatePower: power, initialAccumulatorValue: initialAccumulatorValue,
                      l1RegularizationStrength: l1, l2RegularizationStrength: l2,
                      l2ShrinkageRegularizationStrength: shrinkage, beta: beta, name: common.name ?? "Ftrl",
                      clipnorm: common.clipnorm, clipvalue: common.clipvalue, globalClipnorm: common.globalClipnorm,
                      decay: common.decay ?? 0)
    }
}

/// One step's FTRL constants in the kernel's element type.
struct FtrlParameters<T: FloatingElement>: Sendable {
    let lr: T, l1: T, negPower: T, twoL2: T, twoShrinkage: T
    /// `p == −0.5` exactly (TensorFlow's `sqrt` special case).
    let sqrtPath: Bool
    /// Whether the V2 (shrinkage) rule is used.
    let shrinkage: Bool

    init(_ c: Coefficients, shrinkage: Bool) throws {
        lr = try c["lr_t"].value(as: T.self)
        l1 = try c["l1_regularization_strength"].value(as: T.self)
        let power = try c["learning_rate_power"].value(as: T.self)
        negPower = -power
        sqrtPath = power == T(-0.5)
        // The kernels form 2·λ2' and 2·λs as scalars first.
        twoL2 = try T(2) * c["adjusted_l2"].value(as: T.self)
        twoShrinkage = try T(2) * c["l2_shrinkage_regularization_strength"].value(as: T.self)
        self.shrinkage = shrinkage
    }
}

extension FtrlParameters where T: EigenPacketPow {
    /// `x^(−p)` as TensorFlow computes it for an element inside (`packet`) or after the full Eigen packets.
    @inline(__always)
    func power(_ x: T, packet: Bool) -> T {
        packet ? T.eigenPacketPow(x, negPower) : T.power(x, negPower)
    }
}

/// One element of the sparse per-row FTRL update (`SparseApplyFtrlOp`, inner dimension > 1).
@inline(__always)
func ftrlSparseElement<T: EigenPacketPow>(_ w: inout T, _ n: inout T, _ z: inout T, _ g: T, _ p: FtrlParameters<T>,
                                          packet: Bool) {
    let gs = p.shrinkage ? g + p.twoShrinkage * w : g
    let nNew = n + g * g
    let rootNew = p.sqrtPath ? T.scalarSquareRoot(nNew) : p.power(nNew, packet: packet)
    let rootOld = p.sqrtPath ? T.scalarSquareRoot(n) : p.power(n, packet: packet)
    z = z + (gs - (rootNew - rootOld) / p.lr * w)
    let clipped = Swift.max(Swift.min(z, p.l1), -p.l1)
    w = (clipped - z) / (rootNew / p.lr + p.twoL2)
    n = nNew
}

/// One fused dense FTRL pass over `range` of a variable of `count` elements (TensorFlow's `ApplyFtrl` /
/// `ApplyFtrlV2`). With `p ≠ −0.5`, elements in full Eigen packets (all but the last `count mod width`)
/// use Eigen's pow, the others the C library's, as TensorFlow's kernel does.
@inline(__always)
func ftrlKernel<T: EigenPacketPow>(
    _ w: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ n: UnsafeMutablePointer<T>, _ z: UnsafeMutablePointer<T>,
    _ range: Range<Int>, count: Int, _ p: FtrlParameters<T>
) {
    let packetEnd = count / T.eigenPacketWidth * T.eigenPacketWidth
    var i = range.lowerBound
    let end = range.upperBound
    if p.sqrtPath {
        let width = T.Vector.scalarCount
        let vlr = T.Vector(repeating: p.lr), vl1 = T.Vector(repeating: p.l1), vtwoL2 = T.Vector(repeating: p.twoL2)
        let vtwoS = T.Vector(repeating: p.twoShrinkage)
        let zero = T.Vector(repeating: 0), one = T.Vector(repeating: 1)
        while i + width <= end {
            let gi = loadVector(g + i), wi = loadVector(UnsafePointer(w + i)), ni = loadVector(UnsafePointer(n + i))
            let gs = p.shrinkage ? gi + vtwoS * wi : gi
            let nNew = ni + gi * gi
            let rootNew = T.vectorSquareRoot(nNew)
            let zi = loadVector(UnsafePointer(z + i)) + (gs - (rootNew - T.vectorSquareRoot(ni)) / vlr * wi)
            let sign = T.vectorSelectLess(zi, zero, -one, T.vectorSelectLess(zero, zi, one, zero))
            let absz = T.vectorSelectLess(zi, zero, -zi, zi)
            let update = (vl1 * sign - zi) / (rootNew / vlr + vtwoL2)
            storeVector(T.vectorSelectLess(vl1, absz, update, zero), w + i)
            storeVector(zi, z + i)
            storeVector(nNew, n + i)
            i += width
        }
    }
    while i < end {
        let gi = g[i], wi = w[i], ni = n[i]
        let gs = p.shrinkage ? gi + p.twoShrinkage * wi : gi
        let nNew = ni + gi * gi
        let rootNew = p.sqrtPath ? T.scalarSquareRoot(nNew) : p.power(nNew, packet: i < packetEnd)
        let rootOld = p.sqrtPath ? T.scalarSquareRoot(ni) : p.power(ni, packet: i < packetEnd)
        let zi = z[i] + (gs - (rootNew - rootOld) / p.lr * wi)
        let sign: T = zi > 0 ? 1 : (zi < 0 ? -1 : 0)
        w[i] = Swift.abs(zi) > p.l1 ? (p.l1 * sign - zi) / (rootNew / p.lr + p.twoL2) : 0
        z[i] = zi
        n[i] = nNew
        i += 1
    }
}

// MARK: - TensorFlow's vectorized pow

/// Element types whose TensorFlow `pow` can be reproduced bit for bit.
///
/// TensorFlow's CPU kernels evaluate `x.pow(e)` with Eigen: full packets use Eigen's own algorithm
/// (`generic_pow_impl`: a double-word `log2`, then `exp2`), the leftover elements use the C library's
/// `pow`. TensorFlow's x86 wheels are built for AVX without FMA, so a packet holds 8 floats or 4 doubles
/// and Eigen's `pmadd` is a separate multiply and add. The FTRL kernels use this to match TensorFlow
/// exactly when `learningRatePower` is not −0.5.
protocol EigenPacketPow: FloatingElement {
    /// Elements per Eigen packet in TensorFlow's x86 build (AVX): 8 floats, 4 doubles.
    static var eigenPacketWidth: Int { get }
    /// Eigen's `log2` of `x` in [1/√2, √2], as a double-word number (`accurate_log2`).
    static func eigenAccurateLog2(_ x: Self) -> (hi: Self, lo: Self)
    /// Eigen's packet `exp` (`pexp_float` / `pexp_double`).
    static func eigenExp(_ x: Self) -> Self
    /// The Veltkamp splitting constant `2^⌈digits/2⌉ + 1`.
    static var veltkampScale: Self { get }
}

extension EigenPacketPow {
    /// Eigen's packet `x.pow(e)` for a scalar exponent (`scalar_unary_pow_op::packetOp`).
    static func eigenPacketPow(_ x: Self, _ e: Self) -> Self {
        if e.isFinite && e.rounded(.toNearestOrAwayFromZero) == e {
            // Integer exponents in [−3, 7]: repeated squaring; other integers: the generic algorithm.
            if e <= 7 && e >= -3 { return eigenIntPow(x, e) }
            return x > 0 && x.isFinite && x != 1 ? eigenPowImpl(x, e) : power(x, e)
        }
        // Non-integer exponent: the generic algorithm, then `handle_nonint_nonint_errors`.
        var result = x > 0 && x.isFinite ? eigenPowImpl(x, e) : .nan
        let magnitude = x.magnitude
        if x <= 0 { result = .nan }
        if x == 0 || (magnitude <= 1 && e.isInfinite) { result = e < 0 ? .infinity : 0 }
        if magnitude.isInfinite || (magnitude >= 1 && e.isInfinite) { result = e > 0 ? .infinity : 0 }
        if e.isNaN { result = .nan }
        if magnitude == 1 && (e.isInfinite || x >= 0) { result = 1 }
        return result
    }

    /// `unary_pow::int_pow`: repeated squaring (the reciprocal first for a negative exponent).
    static func eigenIntPow(_ x: Self, _ e: Self) -> Self {
        if e == 0 { return 1 }
        var result = e < 0 ? 1 / x : x
        var y: Self = 1
        var m = Int(e.magnitude)
        while m > 1 {
            if m % 2 != 0 { y = y * result }
            result = result * result
            m /= 2
        }
        return y * result
    }

    /// `generic_pow_impl` for a positive finite `x`: `2^(e·log2(x))` in double-word arithmetic.
    static func eigenPowImpl(_ x: Self, _ y: Self) -> Self {
        var m = x.significand / 2, ex = Self(x.exponent + 1)  // frexp: m in [0.5, 1)
        if m < Self(0.70710678118654752440) { m = 2 * m; ex = ex - 1 }
        let r = eigenAccurateLog2(m)
        let f1 = twoProduct(ex, y), f2 = twoProduct(r, y)
        let f = fastTwoSum(f1, f2)
        var n = eigenRound(f.hi)
        var rz = f.hi - n
        rz = rz + f.lo
        let nr = eigenRound(rz)
        rz = rz - nr
        n = n + nr
        return scaled(eigenExp2(rz), n)
    }

    /// `generic_exp2`: `exp(ln2·x)` with the product split into `hi + lo`, corrected by `(1 + lo)`.
    static func eigenExp2(_ x: Self) -> Self {
        let maxCap = Self(greatestFiniteMagnitude.exponent + 2)
        let minCap = -Self(Int(greatestFiniteMagnitude.exponent) + 1 + significandBitCount)
        let clamped = Swift.max(Swift.min(x, maxCap), minCap)
        let p = twoProduct(Self(0.693147180559945309417232121458176568), clamped)
        return eigenExp(p.hi) * (1 + p.lo)
    }

    /// Eigen's AVX `pround`: add `copysign(0.5⁻, a)`, then truncate.
    static func eigenRound(_ a: Self) -> Self {
        let almostHalf = (Self(0.5)).nextDown
        return (Self(signOf: a, magnitudeOf: almostHalf) + a).rounded(.towardZero)
    }

    /// `a·2^n` (`pldexp`); `n` is integral (clamped where the result is 0 or ∞ anyway).
    static func scaled(_ a: Self, _ n: Self) -> Self {
        guard !n.isNaN else { return .nan }
        return Self(sign: .plus, exponent: Exponent(Int(Swift.max(Swift.min(n, 4096), -4096))), significand: a)
    }

    /// `fast_twosum(x, y)`: `s = fl(x + y)` and the rounding error, exact when |x| ≥ |y|.
    static func fastTwoSum(_ x: Self, _ y: Self) -> (hi: Self, lo: Self) {
        let s = x + y
        let t = s - x
        return (s, y - t)
    }

    /// `fast_twosum` of two double-word numbers.
    static func fastTwoSum(_ x: (hi: Self, lo: Self), _ y: (hi: Self, lo: Self)) -> (hi: Self, lo: Self) {
        let r = fastTwoSum(x.hi, y.hi)
        let s = (y.lo + r.lo) + x.lo
        return fastTwoSum(r.hi, s)
    }

    /// `fast_twosum` of a number and a double-word number.
    static func fastTwoSum(_ x: Self, _ y: (hi: Self, lo: Self)) -> (hi: Self, lo: Self) {
        let r = fastTwoSum(x, y.hi)
        return fastTwoSum(r.hi, y.lo + r.lo)
    }

    /// Veltkamp splitting of `x` into two halves.
    static func split(_ x: Self) -> (hi: Self, lo: Self) {
        let gamma = veltkampScale * x
        let rho = x - gamma
        let hi = rho + gamma
        return (hi, x - hi)
    }

    /// Dekker's `twoprod` without FMA: `x·y = hi + lo` exactly.
    static func twoProduct(_ x: Self, _ y: Self) -> (hi: Self, lo: Self) {
        let xs = split(x), ys = split(y)
        let hi = x * y
        var lo = xs.hi * ys.hi + -hi
        lo = xs.hi * ys.lo + lo
        lo = xs.lo * ys.hi + lo
        lo = xs.lo * ys.lo + lo
        return (hi, lo)
    }

    /// A double-word number times a number (Muller's Algorithm 7).
    static func twoProduct(_ x: (hi: Self, lo: Self), _ y: Self) -> (hi: Self, lo: Self) {
        let c = twoProduct(x.hi, y)
        let t = fastTwoSum(c.hi, x.lo * y)
        return fastTwoSum(t.hi, t.lo + c.lo)
    }

    /// The product of two double-word numbers.
    static func twoProduct(_ x: (hi: Self, lo: Self), _ y: (hi: Self, lo: Self)) -> (hi: Self, lo: Self) {
        fastTwoSum(twoProduct(x, y.hi), twoProduct(x, y.lo))
    }
}

extension Float: EigenPacketPow {
    static var eigenPacketWidth: Int { 8 }
    static var veltkampScale: Float { 4097 }

    static func eigenAccurateLog2(_ z: Float) -> (hi: Float, lo: Float) {
        let c0: Double = 1.442695041742110273474963832995854318141937255859375
        let c1: Double = -7.2134751588268664068692714863573201000690460205078125e-01
        let c0hi = Float(c0), c0lo = Float(c0 - Double(c0hi))
        let c1hi = Float(c1), c1lo = Float(c1 - Double(c1hi))
        let coefficients: [Float] = [
            9.7010828554630279541015625e-02, -1.6896486282348632812500000e-01, 1.7200836539268493652343750e-01,
            -1.7892272770404815673828125e-01, 2.0505344867706298828125000e-01, -2.4046677350997924804687500e-01,
            2.8857553005218505859375000e-01, -3.6067414283752441406250000e-01, 4.8089790344238281250000000e-01,
        ]
        let x = z - 1
        var p = coefficients[0]
        for c in coefficients.dropFirst() { p = p * x + c }
        var dw = twoProduct(x, p)
        dw = fastTwoSum((c1hi, c1lo), dw)
        dw = twoProduct(dw, x)
        dw = fastTwoSum((c0hi, c0lo), dw)
        return twoProduct(dw, x)
    }

    static func eigenExp(_ input: Float) -> Float {
        let x = Swift.min(input, 88.723)
        let m = (x * 1.44269504088896341 + 0.5).rounded(.down)
        var r = m * -0.693359375 + x
        r = m * 2.12194440e-4 + r
        let r2 = r * r
        var even = r2 * 1.37449637986719608306884765625e-3 + 4.166965186595916748046875e-2
        let odd = r2 * 8.36894474923610687255859375e-3 + 0.16666518151760101318359375
        even = r2 * even + 0.49999988079071044921875
        var y = r * odd + even
        y = r2 * y + (r + 1)
        return Swift.max(scaled(y, m), input)
    }
}

extension Double: EigenPacketPow {
    static var eigenPacketWidth: Int { 4 }
    static var veltkampScale: Double { 134_217_729 }

    static func eigenAccurateLog2(_ x: Double) -> (hi: Double, lo: Double) {
        // r = c·(x − 1)/(x + 1); log2(x) ≈ ((Q(r²)·r² + C)·r² + 1)·r.
        let t = twoProduct((2.88539008177792677, 4.07660016854549667e-17), x - 1)
        let d = x + 1
        let th = t.hi / d
        let pi = twoProduct(th, d)
        let delta = ((t.hi - pi.hi) - pi.lo) + t.lo
        let r = fastTwoSum(th, delta / d)
        let r2 = twoProduct(r, r), r4 = twoProduct(r2, r2)
        var even = 2.87074255468000586e-9 * r4.hi + 2.31032094540014656e-7
        var odd = 2.38957980901884082e-8 * r4.hi + 2.27279857398537278e-6
        even = even * r4.hi + 2.31271023278625638e-5
        odd = odd * r4.hi + 2.47556738444535513e-4
        even = even * r4.hi + 2.88543873228900172e-3
        let q = odd * r2.hi + even
        let p1 = fastTwoSum((0.0400377511598501157, -4.77726582251425391e-19), twoProduct(r2, q))
        let p3 = fastTwoSum(1, twoProduct(r2, p1))
        return twoProduct(p3, r)
    }

    static func eigenExp(_ input: Double) -> Double {
        var x = Swift.min(input, 709.784)
        let fx = (1.4426950408889634073599 * x + 0.5).rounded(.down)
        x = x - fx * 0.693145751953125
        x = x - fx * 1.42860682030941723212e-6
        let x2 = x * x
        var px = 1.26177193074810590878e-4 * x2 + 3.02994407707441961300e-2
        px = px * x2 + 9.99999999999999999910e-1
        px = px * x
        var qx = 3.00198505138664455042e-6 * x2 + 2.52448340349684104192e-3
        qx = qx * x2 + 2.27265548208155028766e-1
        qx = qx * x2 + 2.00000000000000000009e0
        x = px / (qx - px)
        x = 2 * x + 1
        return Swift.max(scaled(x, fx), input)
    }
}
