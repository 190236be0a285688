import DescentTensor
import Synchronization

/// The process-wide random generator layers draw their initial weights and dropout masks from
/// (TensorFlow's global seed). `setSeed` makes model construction reproducible
/// (`tf.keras.utils.set_random_seed`).
public enum GlobalRandom {
    private static let generator = Mutex(SeededGenerator(seed: 0))

    /// Restarts the global generator from `seed`.
    public static func setSeed(_ seed: UInt64) {
        generator.withLock { $0 = SeededGenerator(seed: seed) }
    }

    /// A fresh seed drawn from the global generator.
    public static func nextSeed() -> UInt64 {
        generator.withLock { $0.next() }
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
            let receptive = Double(shape.dropLast(2).reduce(1, *))
            return (Double(shape[shape.count - 2]) * receptive, Double(shape[shape.count - 1]) * receptive)
        }
    }

    /// A tensor of `shape` and `dtype` drawn from this initializer.
    public func makeValue(shape: [Int], dtype: DType = .float32) throws -> Tensor {
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

    /// The penalty for `w` (a scalar, recorded on active tapes).
    public func penalty(_ w: Tensor) throws -> Tensor {
        var total = try Tensor.zeros(shape: [], dtype: w.dtype)
        if l1 != 0 { total = try total + (try w.abs().sum() * l1) }
        if l2 != 0 { total = try total + (try w.squared().sum() * l2) }
        return total
    }
}
