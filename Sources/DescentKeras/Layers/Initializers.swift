@_spi(DescentInternals) import DescentTensor

/// The process-wide random generator layers draw their initial weights and dropout masks from
/// (TensorFlow's global seed). `setSeed` makes model construction reproducible
/// (`tf.keras.utils.set_random_seed`).
public enum GlobalRandom {
    /// The generator, and how many times it was restarted (`setSeed`, `restore`).
    private struct State {
        var generator: SeededGenerator
        var restarts: UInt64
    }

    private static let shared = SanitizerVisibleMutex(State(generator: SeededGenerator(seed: 0), restarts: 0))

    /// Restarts the global generator from `seed`.
    public static func setSeed(_ seed: UInt64) {
        shared.withLock {
            $0.generator = SeededGenerator(seed: seed)
            $0.restarts &+= 1
        }
    }

    /// The global generator's state (``SeededGenerator/state``), for a training backup.
    public static var state: [UInt64] { shared.withLock { $0.generator.state } }

    /// How many times the generator was restarted (``setSeed(_:)``, ``restore(state:)``) in this process:
    /// draws between two equal readings come from one uninterrupted sequence.
    @_spi(DescentInternals)
    public static var restarts: UInt64 { shared.withLock { $0.restarts } }

    /// Continues the global generator from a saved ``state``.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` for a list that is not a generator state.
    public static func restore(state: [UInt64]) throws {
        guard let g = SeededGenerator(state: state) else {
            throw KerasError.invalidArgument(field: "GlobalRandom.state", message: "expected a generator state (6 words), got \(state.count) words")
        }
        shared.withLock {
            $0.generator = g
            $0.restarts &+= 1
        }
    }

    /// A fresh seed drawn from the global generator.
    public static func nextSeed() -> UInt64 {
        shared.withLock { $0.generator.next() }
    }
}

/// How a layer's weights start (Keras' initializers).
///
/// Random initializers draw from a generator seeded by `seed`, or, when `seed` is `nil`, from
/// ``GlobalRandom``. Fan-in/fan-out follow Keras: for a `[in, out]` kernel `fanIn = in`, `fanOut = out`.
public enum Initializer: Sendable, Equatable {
    /// Uniform in ±sqrt(6 / (fanIn + fanOut)) (Keras' default for kernels).
    case glorotUniform(seed: UInt64? = nil)
    /// Truncated normal with stddev sqrt(2 / (fanIn + fanOut)) / 0.8796.
    case glorotNormal(seed: UInt64? = nil)
    /// Truncated normal with stddev sqrt(2 / fanIn) / 0.8796.
    case heNormal(seed: UInt64? = nil)
    /// Uniform in ±sqrt(6 / fanIn).
    case heUniform(seed: UInt64? = nil)
    /// Normal with the given mean and standard deviation (Keras default 0, 0.05).
    case randomNormal(mean: Double = 0, standardDeviation: Double = 0.05, seed: UInt64? = nil)
    /// Uniform in [min, max) (Keras default ±0.05).
    case randomUniform(min: Double = -0.05, max: Double = 0.05, seed: UInt64? = nil)
    /// Normal redrawn beyond two standard deviations (Keras default 0, 0.05).
    case truncatedNormal(mean: Double = 0, standardDeviation: Double = 0.05, seed: UInt64? = nil)
    /// All zeros (Keras' default for biases).
    case zeros
    /// All ones.
    case ones
    /// Every element `value`.
    case constant(Double)

    /// Keras' default kernel initializer.
    public static var glorotUniform: Initializer { .glorotUniform() }
    /// He normal with a global-generator seed.
    public static var heNormal: Initializer { .heNormal() }
    /// He uniform with a global-generator seed.
    public static var heUniform: Initializer { .heUniform() }
    /// Glorot normal with a global-generator seed.
    public static var glorotNormal: Initializer { .glorotNormal() }

    /// An initializer by Keras name (`"glorot_uniform"`, `"he_normal"`, `"zeros"`, ...).
    public init?(kerasName: String) {
        switch kerasName {
        case "glorot_uniform", "GlorotUniform": self = .glorotUniform()
        case "glorot_normal", "GlorotNormal": self = .glorotNormal()
        case "he_normal", "HeNormal": self = .heNormal()
        case "he_uniform", "HeUniform": self = .heUniform()
        case "random_normal", "RandomNormal": self = .randomNormal()
        case "random_uniform", "RandomUniform": self = .randomUniform()
        case "truncated_normal", "TruncatedNormal": self = .truncatedNormal()
        case "zeros", "Zeros": self = .zeros
        case "ones", "Ones": self = .ones
        default: return nil
        }
    }

    /// Keras' fan-in and fan-out of a weight shape.
    static func fans(_ shape: [Int]) -> (fanIn: Double, fanOut: Double) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (Double(shape[0]), Double(shape[0]))
        case 2: return (Double(shape[0]), Double(shape[1]))
        default:
            // In `Double`: the shape is not checked yet (the tensor's creation checks it), so an `Int`
            // product could overflow.
            let receptive = shape.dropLast(2).reduce(1.0) { $0 * Double($1) }
            return (Double(shape[shape.count - 2]) * receptive, Double(shape[shape.count - 1]) * receptive)
        }
    }

    /// Checks the initializer's parameters: means and bounds finite, a standard deviation finite and
    /// `>= 0`, `min <= max`. (tf-keras checks none of these; a negative or NaN standard deviation there
    /// silently gives mirrored or NaN weights.)
    /// - Parameter field: the argument named in the error, e.g. `Dense.kernelInitializer`.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming `field` and the parameter.
    public func validate(field: String = "Initializer") throws {
        func fail(_ parameter: String, _ message: String) -> KerasError {
            KerasError.invalidArgument(field: "\(field).\(parameter)", message: message)
        }
        switch self {
        case let .randomNormal(mean, std, _), let .truncatedNormal(mean, std, _):
            guard mean.isFinite else { throw fail("mean", "expected a finite number, got \(mean)") }
            guard std.isFinite && std >= 0 else {
                throw fail("standardDeviation", "expected a finite number >= 0, got \(std)")
            }
        case let .randomUniform(lo, hi, _):
            guard lo.isFinite else { throw fail("min", "expected a finite number, got \(lo)") }
            guard hi.isFinite else { throw fail("max", "expected a finite number, got \(hi)") }
            guard lo <= hi else { throw fail("min", "\(lo) is greater than max \(hi)") }
        case .glorotUniform, .glorotNormal, .heNormal, .heUniform, .zeros, .ones, .constant:
            break
        }
    }

    /// A tensor of `shape` and `dtype` drawn from this initializer.
    /// - Throws: ``KerasError`` for an invalid parameter (``validate(field:)``); ``TensorError`` for an
    ///   invalid shape.
    public func makeValue(shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try validate()
        let (fanIn, fanOut) = Initializer.fans(shape)
        func generator(_ seed: UInt64?) -> SeededGenerator { SeededGenerator(seed: seed ?? GlobalRandom.nextSeed()) }
        // Keras' correction so a normal truncated at 2σ has the requested standard deviation.
        let truncation = 0.87962566103423978
        switch self {
        case .glorotUniform(let seed):
            var g = generator(seed)
            let limit = (6 / (fanIn + fanOut)).squareRoot()
            return try Tensor.randomUniform(shape: shape, min: -limit, max: limit, dtype: dtype, using: &g)
        case .glorotNormal(let seed):
            var g = generator(seed)
            return try Tensor.truncatedNormal(shape: shape, standardDeviation: (2 / (fanIn + fanOut)).squareRoot() / truncation,
                                              dtype: dtype, using: &g)
        case .heNormal(let seed):
            var g = generator(seed)
            return try Tensor.truncatedNormal(shape: shape, standardDeviation: (2 / fanIn).squareRoot() / truncation,
                                              dtype: dtype, using: &g)
        case .heUniform(let seed):
            var g = generator(seed)
            let limit = (6 / fanIn).squareRoot()
            return try Tensor.randomUniform(shape: shape, min: -limit, max: limit, dtype: dtype, using: &g)
        case let .randomNormal(mean, std, seed):
            var g = generator(seed)
            return try Tensor.randomNormal(shape: shape, mean: mean, standardDeviation: std, dtype: dtype, using: &g)
        case let .randomUniform(lo, hi, seed):
            var g = generator(seed)
            return try Tensor.randomUniform(shape: shape, min: lo, max: hi, dtype: dtype, using: &g)
        case let .truncatedNormal(mean, std, seed):
            var g = generator(seed)
            return try Tensor.truncatedNormal(shape: shape, mean: mean, standardDeviation: std, dtype: dtype, using: &g)
        case .zeros: return try Tensor.zeros(shape: shape, dtype: dtype)
        case .ones: return try Tensor.ones(shape: shape, dtype: dtype)
        case .constant(let c): return try Tensor(repeating: c, shape: shape, dtype: dtype)
        }
    }
}

/// An element-wise activation (Keras' `activation=` argument).
public enum Activation: String, Sendable, CaseIterable {
    case linear, relu, sigmoid, tanh, softmax, softplus

    /// Applies the activation (softmax over the last axis).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .linear: return x
        case .relu: return try x.relu()
        case .sigmoid: return try x.sigmoid()
        case .tanh: return try x.tanh()
        case .softmax: return try x.softmax(axis: -1)
        case .softplus: return try x.softplus()
        }
    }

    /// An activation by Keras name (`"relu"`, `"linear"`, `nil`/`"None"` → linear).
    public init?(kerasName: String?) {
        guard let kerasName, kerasName != "None" else { self = .linear; return }
        self.init(rawValue: kerasName)
    }
}

/// A penalty on a weight added to the training loss (Keras' regularizers).
public struct Regularizer: Sendable, Equatable {
    /// The L1 factor: adds `l1 · Σ|w|`.
    public var l1: Double
    /// The L2 factor: adds `l2 · Σw²`.
    public var l2: Double

    /// `l1 · Σ|w| + l2 · Σw²` (Keras' `L1L2`).
    public init(l1: Double = 0, l2: Double = 0) {
        self.l1 = l1
        self.l2 = l2
    }

    /// Keras' `L1(l1=0.01)`.
    public static func l1(_ factor: Double = 0.01) -> Regularizer { Regularizer(l1: factor) }
    /// Keras' `L2(l2=0.01)`.
    public static func l2(_ factor: Double = 0.01) -> Regularizer { Regularizer(l2: factor) }

    /// Checks the factors: finite and `>= 0`. (tf-keras refuses non-finite factors; Descent also refuses
    /// negative ones, which would reward large weights.)
    /// - Parameter field: the argument named in the error, e.g. `Dense.kernelRegularizer`.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming `field` and the factor.
    public func validate(field: String = "Regularizer") throws {
        for (factor, value) in [("l1", l1), ("l2", l2)] where !(value.isFinite && value >= 0) {
            throw KerasError.invalidArgument(field: "\(field).\(factor)", message: "expected a finite number >= 0, got \(value)")
        }
    }

    /// The penalty for `w` (a scalar, recorded on active tapes).
    /// - Throws: ``KerasError`` for an invalid factor (``validate(field:)``).
    public func penalty(_ w: Tensor) throws -> Tensor {
        if !(l1.isFinite && l1 >= 0 && l2.isFinite && l2 >= 0) { try validate() }
        var total = try Tensor.zeros(shape: [], dtype: w.dtype)
        if l1 != 0 { total = try total + (try w.abs().sum() * l1) }
        if l2 != 0 { total = try total + (try w.squared().sum() * l2) }
        return total
    }
}
