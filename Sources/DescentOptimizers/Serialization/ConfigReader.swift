@_spi(DescentInternals) import DescentTensor

/// Reads an optimizer's constructor arguments out of its Keras config, with errors naming the field:
/// what every built-in `init(config:customObjects:)` uses, and what a custom optimizer's should use.
///
/// Each reader method removes its key from ``config`` and returns `nil` when the key is absent or
/// `null` (so `?? default` gives Keras' default); a value of the wrong type throws
/// ``OptimizerError/invalidArgument(field:message:)`` naming the field and what was expected. After
/// reading every argument, ``finish(allowed:)`` rejects the keys left over, as Keras' `from_config`
/// rejects an unexpected keyword argument:
///
/// ```swift
/// convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
///     var reader = ConfigReader(config, className: "SignSGD", customObjects: customObjects)
///     let common = try reader.common()
///     let learningRate = try reader.learningRate() ?? 0.01
///     let warmupSteps = try reader.int("warmup_steps") ?? 0
///     try reader.finish(allowed: ConfigReader.commonKeys + ["learning_rate", "warmup_steps"])
///     try self.init(learningRate: learningRate, warmupSteps: warmupSteps, name: common.name ?? "SignSGD",
///                   clipnorm: common.clipnorm, clipvalue: common.clipvalue,
///                   globalClipnorm: common.globalClipnorm, decay: common.decay ?? 0)
/// }
/// ```
public struct ConfigReader {
    /// The class whose config this is, used in error messages (`"Adam"`).
    public let className: String
    /// The keys not read yet (each reader method removes the key it reads).
    public private(set) var config: JSONObject
    /// The custom classes a serialized schedule in the config may name (see ``hyper(_:)``).
    public let customObjects: CustomObjects

    /// A reader of `config`, the `"config"` object of a serialized optimizer of class `className`.
    public init(_ config: JSONObject, className: String, customObjects: CustomObjects = .none) {
        self.config = config
        self.className = className
        self.customObjects = customObjects
    }

    /// Removes and returns the raw value of `key`; `nil` if absent or `null`.
    public mutating func take(_ key: String) -> JSONValue? {
        let v = config.removeValue(forKey: key)
        return v == .null ? nil : v
    }

    /// A number for a float32 hyperparameter: finite and within float32's range (an integer is accepted).
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key` for a non-number or a
    ///   number float32 cannot hold.
    public mutating func double(_ key: String) throws -> Double? {
        guard let v = take(key) else { return nil }
        guard let d = v.doubleValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects a number, got \(v.typeName)")
        }
        try Float32Field.checkHyperparameter(d, field: key, owner: "\(className) config")
        return d
    }

    /// An integer (a whole-number float such as `3.0` is accepted, as Python's `int(3.0)` would be).
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key` for anything else
    ///   (`3.5`, a string, `true`).
    public mutating func int(_ key: String) throws -> Int? {
        guard let v = take(key) else { return nil }
        guard let i = v.intValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects an integer, got \(ConfigReader.describe(v))")
        }
        return i
    }

    /// `true` or `false`.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key` for anything else.
    public mutating func bool(_ key: String) throws -> Bool? {
        guard let v = take(key) else { return nil }
        guard let b = v.boolValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects true or false, got \(v.typeName)")
        }
        return b
    }

    /// A string.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key` for anything else.
    public mutating func string(_ key: String) throws -> String? {
        guard let v = take(key) else { return nil }
        guard let s = v.stringValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects a string, got \(v.typeName)")
        }
        return s
    }

    /// An array of numbers (integers accepted), e.g. a list of boundaries. Unlike ``double(_:)`` the
    /// elements are not limited to float32's range.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key` (and the element's
    ///   position, `key[2]`) for a non-array or a non-number element.
    public mutating func doubleArray(_ key: String) throws -> [Double]? {
        guard let v = take(key) else { return nil }
        guard let items = v.arrayValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects an array of numbers, got \(v.typeName)")
        }
        return try items.enumerated().map { i, item in
            guard let d = item.doubleValue else {
                throw OptimizerError.invalidArgument(field: "\(key)[\(i)]", message: "\(className) expects a number, got \(item.typeName)")
            }
            return d
        }
    }

    /// An array of strings.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key` (and the element's
    ///   position, `key[2]`) for a non-array or a non-string element.
    public mutating func stringArray(_ key: String) throws -> [String]? {
        guard let v = take(key) else { return nil }
        guard let items = v.arrayValue else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects an array of strings, got \(v.typeName)")
        }
        return try items.enumerated().map { i, item in
            guard let s = item.stringValue else {
                throw OptimizerError.invalidArgument(field: "\(key)[\(i)]", message: "\(className) expects a string, got \(item.typeName)")
            }
            return s
        }
    }

    /// A hyperparameter: a number (kept as `.integer` or `.number`, as written, so the config
    /// round-trips) within float32's range, or a serialized learning-rate schedule (built-in, in
    /// ``customObjects`` or registered with ``Optimizer/registerSchedule(className:factory:)``).
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming `key`, or the schedule's
    ///   deserialization error.
    public mutating func hyper(_ key: String) throws -> Hyperparameter? {
        guard let v = take(key) else { return nil }
        if let d = v.doubleValue { try Float32Field.checkHyperparameter(d, field: key, owner: "\(className) config") }
        return try Hyperparameter.fromConfig(v, field: key, customObjects: customObjects)
    }

    /// The learning rate, read as ``hyper(_:)``: `lr` (Keras' legacy alias) wins over `learning_rate`,
    /// as in Keras. Reads (removes) both keys.
    public mutating func learningRate() throws -> Hyperparameter? {
        let lr = try hyper("lr")
        let learningRate = try hyper("learning_rate")
        return lr ?? learningRate
    }

    /// Throws for the first key left over (Keras' "Unexpected keyword argument"); `allowed` is listed in
    /// the message.
    /// - Throws: ``OptimizerError/unexpectedKeyword(optimizer:key:allowed:)``.
    public func finish(allowed: [String]) throws {
        if let key = config.keys.first {
            throw OptimizerError.unexpectedKeyword(optimizer: className, key: key, allowed: allowed)
        }
    }

    /// The options of ``Optimizer/init(name:clipnorm:clipvalue:globalClipnorm:decay:gradientAggregator:gradientTransformers:)``
    /// that a config carries (see ``ConfigReader/common()``); `nil` where the config does not set them.
    public struct CommonOptions: Sendable, Equatable {
        /// `name`.
        public var name: String?
        /// `clipnorm`.
        public var clipnorm: Double?
        /// `clipvalue`.
        public var clipvalue: Double?
        /// `global_clipnorm`.
        public var globalClipnorm: Double?
        /// `decay` (pass `decay ?? 0`).
        public var decay: Double?

        /// Options with the given values.
        public init(name: String? = nil, clipnorm: Double? = nil, clipvalue: Double? = nil, globalClipnorm: Double? = nil,
                    decay: Double? = nil) {
            self.name = name
            self.clipnorm = clipnorm
            self.clipvalue = clipvalue
            self.globalClipnorm = globalClipnorm
            self.decay = decay
        }
    }

    /// Reads the options every optimizer accepts: `name`, `clipnorm`, `clipvalue`, `global_clipnorm`
    /// and `decay` (and drops `is_legacy_optimizer`, written by Keras 2.11–2.12). The base class's
    /// ``Optimizer/config`` writes them, so a custom optimizer whose `config` starts from `super.config`
    /// or ``Optimizer/configWithLearningRate()`` reads them back with this. `lr`/`learning_rate` are
    /// read by ``learningRate()``; list ``commonKeys`` in ``finish(allowed:)``.
    /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` naming the field.
    public mutating func common() throws -> CommonOptions {
        _ = take("is_legacy_optimizer")  // written by Keras 2.11-2.12's serialize; always legacy here
        return CommonOptions(name: try string("name"), clipnorm: try double("clipnorm"), clipvalue: try double("clipvalue"),
                             globalClipnorm: try double("global_clipnorm"), decay: try double("decay"))
    }

    /// The keys ``common()`` and ``learningRate()`` read besides `learning_rate`: `name`, `clipnorm`,
    /// `clipvalue`, `global_clipnorm`, `decay`, `lr` and `is_legacy_optimizer`. Pass
    /// `ConfigReader.commonKeys + ["learning_rate", ...your keys]` to ``finish(allowed:)``.
    public static let commonKeys = ["name", "clipnorm", "clipvalue", "global_clipnorm", "decay", "lr", "is_legacy_optimizer"]

    /// A value for an error message: its type, and the number itself for a non-integral number.
    private static func describe(_ v: JSONValue) -> String {
        if case .double(let d) = v { return "\(v.typeName) \(JSONValue.pythonRepr(d))" }
        return v.typeName
    }
}
