#if canImport(Glibc)
import Glibc
#endif

// Keras' learning-rate schedules (`tf.keras.optimizers.schedules`). Each computes in float32, as Keras does
// for a Python-float initial learning rate, with the formula of `learning_rate_schedule.py`. The step is
// `iterations` before the update.

/// `initial · rate^(step / decaySteps)`, with the exponent floored when `staircase`.
public struct ExponentialDecay: LearningRateSchedule, Equatable {
    public var initialLearningRate: ConfigNumber
    public var decaySteps: ConfigNumber
    public var decayRate: ConfigNumber
    public var staircase: Bool
    public var name: String?

    public init(initialLearningRate: ConfigNumber, decaySteps: ConfigNumber, decayRate: ConfigNumber,
                staircase: Bool = false, name: String? = nil) {
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.staircase = staircase
        self.name = name
    }

    public func callAsFunction(_ step: Double) -> Double {
        var p = Float(step) / Float(decaySteps.value)
        if staircase { p = floorf(p) }
        return Double(Float(initialLearningRate.value) * powf(Float(decayRate.value), p))
    }

    public var className: String { "ExponentialDecay" }
    public var config: JSONObject {
        ["initial_learning_rate": initialLearningRate.json, "decay_steps": decaySteps.json,
         "decay_rate": decayRate.json, "staircase": .bool(staircase), "name": name.map { .string($0) } ?? .null]
    }

    init(config: JSONObject) throws {
        var r = ScheduleConfig(config, "ExponentialDecay")
        self.init(initialLearningRate: try r.number("initial_learning_rate"), decaySteps: try r.number("decay_steps"),
                  decayRate: try r.number("decay_rate"), staircase: try r.bool("staircase") ?? false,
                  name: try r.name())
        try r.finish()
    }
}

/// A constant per interval: `values[0]` for `step <= boundaries[0]`, `values[i]` for
/// `boundaries[i-1] < step <= boundaries[i]`, `values.last` after the last boundary.
public struct PiecewiseConstantDecay: LearningRateSchedule, Equatable {
    public let boundaries: [ConfigNumber]
    public let values: [ConfigNumber]
    public var name: String?

    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` unless
    ///   `values.count == boundaries.count + 1`.
    public init(boundaries: [ConfigNumber], values: [ConfigNumber], name: String? = nil) throws {
        guard values.count == boundaries.count + 1 else {
            throw OptimizerError.invalidArgument(
                field: "values", message: "PiecewiseConstantDecay needs one more value than boundaries; got \(boundaries.count) boundaries and \(values.count) values")
        }
        self.boundaries = boundaries
        self.values = values
        self.name = name
    }

    public func callAsFunction(_ step: Double) -> Double {
        // Boundaries are compared in the step's (floating-point) dtype; values keep theirs.
        func valueAt(_ i: Int) -> Double { values[i].isInteger ? values[i].value : Double(Float(values[i].value)) }
        for (i, b) in boundaries.enumerated() where step <= Double(Float(b.value)) { return valueAt(i) }
        return valueAt(values.count - 1)
    }

    public var className: String { "PiecewiseConstantDecay" }
    public var config: JSONObject {
        ["boundaries": .array(boundaries.map(\.json)), "values": .array(values.map(\.json)),
         "name": name.map { .string($0) } ?? .null]
    }

    init(config: JSONObject) throws {
        var r = ScheduleConfig(config, "PiecewiseConstantDecay")
        try self.init(boundaries: try r.numbers("boundaries"), values: try r.numbers("values"), name: try r.name())
        try r.finish()
    }
}

/// `(initial − end) · (1 − step/decaySteps)^power + end`; with `cycle`, `decaySteps` grows to the next
/// multiple past `step`.
public struct PolynomialDecay: LearningRateSchedule, Equatable {
    public var initialLearningRate: ConfigNumber
    public var decaySteps: ConfigNumber
    public var endLearningRate: ConfigNumber
    public var power: ConfigNumber
    public var cycle: Bool
    public var name: String?

    public init(initialLearningRate: ConfigNumber, decaySteps: ConfigNumber, endLearningRate: ConfigNumber = 0.0001,
                power: ConfigNumber = 1.0, cycle: Bool = false, name: String? = nil) {
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.endLearningRate = endLearningRate
        self.power = power
        self.cycle = cycle
        self.name = name
    }

    public func callAsFunction(_ step: Double) -> Double {
        let initial = Float(initialLearningRate.value), end = Float(endLearningRate.value)
        var s = Float(step)
        var steps = Float(decaySteps.value)
        if cycle {
            let multiplier: Float = s == 0 ? 1 : ceilf(s / Float(decaySteps.value))
            steps = steps * multiplier
        } else {
            s = min(s, steps)
        }
        let p = s / steps
        return Double((initial - end) * powf(1 - p, Float(power.value)) + end)
    }

    public var className: String { "PolynomialDecay" }
    public var config: JSONObject {
        ["initial_learning_rate": initialLearningRate.json, "decay_steps": decaySteps.json,
         "end_learning_rate": endLearningRate.json, "power": power.json, "cycle": .bool(cycle),
         "name": name.map { .string($0) } ?? .null]
    }

    init(config: JSONObject) throws {
        var r = ScheduleConfig(config, "PolynomialDecay")
        self.init(initialLearningRate: try r.number("initial_learning_rate"), decaySteps: try r.number("decay_steps"),
                  endLearningRate: try r.optionalNumber("end_learning_rate") ?? 0.0001,
                  power: try r.optionalNumber("power") ?? 1.0, cycle: try r.bool("cycle") ?? false, name: try r.name())
        try r.finish()
    }
}

/// `initial / (1 + rate · step/decaySteps)`, with the ratio floored when `staircase`.
public struct InverseTimeDecay: LearningRateSchedule, Equatable {
    public var initialLearningRate: ConfigNumber
    public var decaySteps: ConfigNumber
    public var decayRate: ConfigNumber
    public var staircase: Bool
    public var name: String?

    public init(initialLearningRate: ConfigNumber, decaySteps: ConfigNumber, decayRate: ConfigNumber,
                staircase: Bool = false, name: String? = nil) {
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.staircase = staircase
        self.name = name
    }

    public func callAsFunction(_ step: Double) -> Double {
        var p = Float(step) / Float(decaySteps.value)
        if staircase { p = floorf(p) }
        return Double(Float(initialLearningRate.value) / (1 + Float(decayRate.value) * p))
    }

    public var className: String { "InverseTimeDecay" }
    public var config: JSONObject {
        ["initial_learning_rate": initialLearningRate.json, "decay_steps": decaySteps.json,
         "decay_rate": decayRate.json, "staircase": .bool(staircase), "name": name.map { .string($0) } ?? .null]
    }

    init(config: JSONObject) throws {
        var r = ScheduleConfig(config, "InverseTimeDecay")
        self.init(initialLearningRate: try r.number("initial_learning_rate"), decaySteps: try r.number("decay_steps"),
                  decayRate: try r.number("decay_rate"), staircase: try r.bool("staircase") ?? false,
                  name: try r.name())
        try r.finish()
    }
}

/// Cosine decay from the initial rate (or, after a linear warm-up of `warmupSteps`, from
/// `warmupTarget`) to `alpha` times it over `decaySteps`.
public struct CosineDecay: LearningRateSchedule, Equatable {
    public var initialLearningRate: ConfigNumber
    public var decaySteps: ConfigNumber
    public var alpha: ConfigNumber
    public var name: String?
    public var warmupTarget: ConfigNumber?
    public var warmupSteps: ConfigNumber

    public init(initialLearningRate: ConfigNumber, decaySteps: ConfigNumber, alpha: ConfigNumber = 0.0,
                name: String? = nil, warmupTarget: ConfigNumber? = nil, warmupSteps: ConfigNumber = 0) {
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.alpha = alpha
        self.name = name
        self.warmupTarget = warmupTarget
        self.warmupSteps = warmupSteps
    }

    private func decayed(_ s: Float, _ steps: Float, from lr: Float) -> Float {
        let fraction = s / steps
        let cosine = Float(0.5) * (1 + cosf(Float.pi * fraction))
        let decayed = Float(1 - alpha.value) * cosine + Float(alpha.value)
        return lr * decayed
    }

    public func callAsFunction(_ step: Double) -> Double {
        let initial = Float(initialLearningRate.value), steps = Float(decaySteps.value)
        var s = Float(step)
        guard let target = warmupTarget.map({ Float($0.value) }) else {
            s = min(s, steps)
            return Double(decayed(s, steps, from: initial))
        }
        let warmup = Float(warmupSteps.value)
        s = min(s, steps + warmup)
        if s < warmup { return Double((target - initial) * (s / warmup) + initial) }
        return Double(decayed(s - warmup, steps, from: target))
    }

    public var className: String { "CosineDecay" }
    public var config: JSONObject {
        ["initial_learning_rate": initialLearningRate.json, "decay_steps": decaySteps.json, "alpha": alpha.json,
         "name": name.map { .string($0) } ?? .null, "warmup_target": warmupTarget?.json ?? .null,
         "warmup_steps": warmupSteps.json]
    }

    init(config: JSONObject) throws {
        var r = ScheduleConfig(config, "CosineDecay")
        self.init(initialLearningRate: try r.number("initial_learning_rate"), decaySteps: try r.number("decay_steps"),
                  alpha: try r.optionalNumber("alpha") ?? 0.0, name: try r.name(),
                  warmupTarget: try r.optionalNumber("warmup_target"), warmupSteps: try r.optionalNumber("warmup_steps") ?? 0)
        try r.finish()
    }
}

/// Cosine decay with warm restarts (SGDR): periods of `firstDecaySteps · tMul^i`, each restart scaled
/// by `mMul^i`.
public struct CosineDecayRestarts: LearningRateSchedule, Equatable {
    public var initialLearningRate: ConfigNumber
    public var firstDecaySteps: ConfigNumber
    public var tMul: ConfigNumber
    public var mMul: ConfigNumber
    public var alpha: ConfigNumber
    public var name: String?

    public init(initialLearningRate: ConfigNumber, firstDecaySteps: ConfigNumber, tMul: ConfigNumber = 2.0,
                mMul: ConfigNumber = 1.0, alpha: ConfigNumber = 0.0, name: String? = nil) {
        self.initialLearningRate = initialLearningRate
        self.firstDecaySteps = firstDecaySteps
        self.tMul = tMul
        self.mMul = mMul
        self.alpha = alpha
        self.name = name
    }

    public func callAsFunction(_ step: Double) -> Double {
        let initial = Float(initialLearningRate.value), alpha = Float(alpha.value)
        let t = Float(tMul.value), m = Float(mMul.value)
        var fraction = Float(step) / Float(firstDecaySteps.value)
        let restart: Float
        if t == 1 {
            restart = floorf(fraction)
            fraction -= restart
        } else {
            restart = floorf(logf(1 - fraction * (1 - t)) / logf(t))
            let sum = (1 - powf(t, restart)) / (1 - t)
            fraction = (fraction - sum) / powf(t, restart)
        }
        let factor = powf(m, restart)
        let cosine = Float(0.5) * factor * (1 + cosf(Float.pi * fraction))
        let decayed = (1 - alpha) * cosine + alpha
        return Double(initial * decayed)
    }

    public var className: String { "CosineDecayRestarts" }
    public var config: JSONObject {
        ["initial_learning_rate": initialLearningRate.json, "first_decay_steps": firstDecaySteps.json,
         "t_mul": tMul.json, "m_mul": mMul.json, "alpha": alpha.json, "name": name.map { .string($0) } ?? .null]
    }

    init(config: JSONObject) throws {
        var r = ScheduleConfig(config, "CosineDecayRestarts")
        self.init(initialLearningRate: try r.number("initial_learning_rate"),
                  firstDecaySteps: try r.number("first_decay_steps"), tMul: try r.optionalNumber("t_mul") ?? 2.0,
                  mMul: try r.optionalNumber("m_mul") ?? 1.0, alpha: try r.optionalNumber("alpha") ?? 0.0,
                  name: try r.name())
        try r.finish()
    }
}

/// The built-in schedules by Keras class name.
let builtInSchedules: [String: @Sendable (JSONObject) throws -> any LearningRateSchedule] = [
    "ExponentialDecay": { try ExponentialDecay(config: $0) },
    "PiecewiseConstantDecay": { try PiecewiseConstantDecay(config: $0) },
    "PolynomialDecay": { try PolynomialDecay(config: $0) },
    "InverseTimeDecay": { try InverseTimeDecay(config: $0) },
    "CosineDecay": { try CosineDecay(config: $0) },
    "CosineDecayRestarts": { try CosineDecayRestarts(config: $0) },
]

/// Reads a schedule's config, naming the schedule and field on error.
struct ScheduleConfig {
    var config: JSONObject
    let owner: String
    init(_ config: JSONObject, _ owner: String) {
        self.config = config
        self.owner = owner
    }

    mutating func optionalNumber(_ key: String) throws -> ConfigNumber? {
        try ConfigNumber.read(config.removeValue(forKey: key), field: key, owner: owner)
    }

    mutating func number(_ key: String) throws -> ConfigNumber {
        guard let n = try optionalNumber(key) else {
            throw OptimizerError.invalidArgument(field: key, message: "\(owner) needs '\(key)'")
        }
        return n
    }

    mutating func numbers(_ key: String) throws -> [ConfigNumber] {
        guard let v = config.removeValue(forKey: key), let items = v.arrayValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(owner) needs '\(key)' as a list of numbers")
        }
        return try items.map { item in
            guard let n = try ConfigNumber.read(item, field: key, owner: owner) else {
                throw OptimizerError.invalidArgument(field: key, message: "\(owner): '\(key)' holds a null")
            }
            return n
        }
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = config.removeValue(forKey: key), v != .null else { return nil }
        guard let b = v.boolValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(owner) expects true or false, got \(v.typeName)")
        }
        return b
    }

    mutating func name() throws -> String? {
        guard let v = config.removeValue(forKey: "name"), v != .null else { return nil }
        guard let s = v.stringValue else {
            throw OptimizerError.invalidArgument(field: "name", message: "\(owner) expects a string name, got \(v.typeName)")
        }
        return s
    }

    func finish() throws {
        if let key = config.keys.first {
            throw OptimizerError.unexpectedKeyword(optimizer: owner, key: key, allowed: [])
        }
    }
}
