#if canImport(Glibc)
import Glibc
#endif

/// Descent's deterministic random number generator: **xoshiro256\*\*** (Blackman & Vigna, 2018),
/// seeded through **SplitMix64**.
///
/// The same seed gives the same sequence on every machine: both algorithms are defined on 64-bit
/// integers only. Floating-point values are derived as documented on each method:
/// - uniform `Float` in [0, 1): the top 24 bits of `next()` times 2⁻²⁴;
/// - uniform `Double` in [0, 1): the top 53 bits times 2⁻⁵³;
/// - normal: the Box–Muller transform in `Double` (both outputs used), then rounded to the dtype.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spareNormal: Double?

    /// A generator whose state is expanded from `seed` with SplitMix64.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// The generator's whole state: xoshiro's four words, then the cached second Box–Muller output (its
    /// bit pattern) and whether there is one. ``init(state:)`` continues the sequence exactly.
    public var state: [UInt64] {
        [s.0, s.1, s.2, s.3, spareNormal?.bitPattern ?? 0, spareNormal == nil ? 0 : 1]
    }

    /// A generator continuing from a ``state``.
    /// - Returns: `nil` for a list that is not a state: not 6 words, xoshiro's words all zero (a state
    ///   the generator never reaches), or a flag other than 0 or 1.
    public init?(state: [UInt64]) {
        guard state.count == 6, state[0...3].contains(where: { $0 != 0 }), state[5] <= 1 else { return nil }
        s = (state[0], state[1], state[2], state[3])
        spareNormal = state[5] == 1 ? Double(bitPattern: state[4]) : nil
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform `Double` in [0, 1).
    public mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A uniform `Float` in [0, 1).
    public mutating func nextUniformFloat() -> Float { Float(next() >> 40) * 0x1.0p-24 }

    /// A standard normal `Double` (Box–Muller).
    public mutating func nextNormal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let u1 = 1 - nextUniform()  // (0, 1]
        let u2 = nextUniform()
        let radius = (-2 * Glibc.log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spareNormal = radius * Glibc.sin(angle)
        return radius * Glibc.cos(angle)
    }
}

extension Tensor {
    /// Uniform values in `[min, max)` (`tf.random.uniform`).
    public static func randomUniform(
        shape: [Int], min: Double = 0, max: Double = 1, dtype: DType = .float32, using generator: inout SeededGenerator
    ) throws -> Tensor {
        guard min <= max else {
            throw TensorError.invalidArgument(operation: "randomUniform", reason: "min \(min) is greater than max \(max)")
        }
        var t = try Tensor(uninitializedShape: shape, dtype: dtype, operation: "randomUniform")
        // `min + width * u` can round up to `max` when the spacing of floats near `max` exceeds
        // `width * (1 - u)`, so results are capped at the largest value below `max` (the range is half-open).
        switch dtype {
        case .float32:
            let p = t._mutablePointer(Float.self), lo = Float(min), width = Float(max - min), hi = Float(max)
            let top = lo < hi ? hi.nextDown : lo
            for i in 0..<t.scalarCount { p[i] = Swift.min(lo + width * generator.nextUniformFloat(), top) }
        case .float64:
            let top = min < max ? max.nextDown : min
            t.setElements { _ in Swift.min(min + (max - min) * generator.nextUniform(), top) }
        case .int64:
            // Round down, not toward zero, so each integer in [min, max) is equally likely.
            let top = min < max ? max.nextDown : min
            t.setElements { _ in Swift.min(min + (max - min) * generator.nextUniform(), top).rounded(.down) }
        }
        return t
    }

    /// Uniform values in `[min, max)` from a fresh generator seeded with `seed`.
    public static func randomUniform(
        shape: [Int], min: Double = 0, max: Double = 1, dtype: DType = .float32, seed: UInt64
    ) throws -> Tensor {
        var g = SeededGenerator(seed: seed)
        return try randomUniform(shape: shape, min: min, max: max, dtype: dtype, using: &g)
    }

    /// Normal values with the given mean and standard deviation (`tf.random.normal`).
    public static func randomNormal(
        shape: [Int], mean: Double = 0, standardDeviation: Double = 1, dtype: DType = .float32,
        using generator: inout SeededGenerator
    ) throws -> Tensor {
        var t = try Tensor(uninitializedShape: shape, dtype: dtype, operation: "randomNormal")
        t.setElements { _ in mean + standardDeviation * generator.nextNormal() }
        return t
    }

    /// Normal values from a fresh generator seeded with `seed`.
    public static func randomNormal(
        shape: [Int], mean: Double = 0, standardDeviation: Double = 1, dtype: DType = .float32, seed: UInt64
    ) throws -> Tensor {
        var g = SeededGenerator(seed: seed)
        return try randomNormal(shape: shape, mean: mean, standardDeviation: standardDeviation, dtype: dtype, using: &g)
    }

    /// Normal values redrawn until they fall within two standard deviations of the mean
    /// (`tf.random.truncated_normal`, Keras' `TruncatedNormal`).
    public static func truncatedNormal(
        shape: [Int], mean: Double = 0, standardDeviation: Double = 1, dtype: DType = .float32,
        using generator: inout SeededGenerator
    ) throws -> Tensor {
        var t = try Tensor(uninitializedShape: shape, dtype: dtype, operation: "truncatedNormal")
        t.setElements { _ in
            var z = generator.nextNormal()
            while Swift.abs(z) > 2 { z = generator.nextNormal() }
            return mean + standardDeviation * z
        }
        return t
    }

    /// Truncated normal values from a fresh generator seeded with `seed`.
    public static func truncatedNormal(
        shape: [Int], mean: Double = 0, standardDeviation: Double = 1, dtype: DType = .float32, seed: UInt64
    ) throws -> Tensor {
        var g = SeededGenerator(seed: seed)
        return try truncatedNormal(shape: shape, mean: mean, standardDeviation: standardDeviation, dtype: dtype, using: &g)
    }
}
