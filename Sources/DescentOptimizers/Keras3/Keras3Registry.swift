import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// The Keras 3 optimizers by lower-cased class name (Keras 3's `deserialize` matches names
    /// case-insensitively).
    @_spi(DescentInternals) public static let builtInFactories:
        [String: @Sendable (JSONObject, CustomObjects) throws -> DescentOptimizers.Optimizer] = [
            "adadelta": { try Adadelta(config: $0, customObjects: $1) },
            "adafactor": { try Adafactor(config: $0, customObjects: $1) },
            "adagrad": { try Adagrad(config: $0, customObjects: $1) },
            "adam": { try Adam(config: $0, customObjects: $1) },
            "adamax": { try Adamax(config: $0, customObjects: $1) },
            "adamw": { try AdamW(config: $0, customObjects: $1) },
            "ftrl": { try Ftrl(config: $0, customObjects: $1) },
            "lamb": { try Lamb(config: $0, customObjects: $1) },
            "lion": { try Lion(config: $0, customObjects: $1) },
            "lossscaleoptimizer": { try LossScaleOptimizer(config: $0, customObjects: $1) },
            "multioptimizer": { try MultiOptimizer(config: $0, customObjects: $1) },
            "muon": { try Muon(config: $0, customObjects: $1) },
            "nadam": { try Nadam(config: $0, customObjects: $1) },
            "rmsprop": { try RMSprop(config: $0, customObjects: $1) },
            "schedulefreeadamw": { try ScheduleFreeAdamW(config: $0, customObjects: $1) },
            "sgd": { try SGD(config: $0, customObjects: $1) },
        ]

    /// The config keys of Keras 3's `BaseOptimizer.get_config`, in its order.
    public static let baseConfigKeys = [
        "name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema", "ema_momentum",
        "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps",
    ]
}

/// Reads a Keras 3 optimizer config: the base keys (``Keras3/baseConfigKeys``), then the class's own with
/// the ``ConfigReader`` methods; ``finish(allowed:)`` rejects what is left (Keras' "Argument(s) not
/// recognized").
struct Keras3ConfigReader {
    var reader: ConfigReader
    let className: String

    init(_ config: JSONObject, className: String, customObjects: CustomObjects) {
        reader = ConfigReader(config, className: className, customObjects: customObjects)
        self.className = className
    }

    /// The name, the learning rate (a number or a serialized schedule) and the base options. `decay` is
    /// dropped with Keras 3's warning.
    mutating func base(defaultWeightDecay: ConfigNumber? = nil) throws -> (name: String?, learningRate: Hyperparameter?, options: Keras3.Options) {
        if reader.take("decay") != nil {
            DescentOptimizers.Optimizer.warn("Argument `decay` is no longer supported and will be ignored.")
        }
        let name = try reader.string("name")
        let learningRate = try reader.hyper("learning_rate")
        var o = Keras3.Options()
        o.weightDecay = reader.config["weight_decay"] == nil ? defaultWeightDecay : try number("weight_decay")
        o.clipnorm = try number("clipnorm")
        o.globalClipnorm = try number("global_clipnorm")
        o.clipvalue = try number("clipvalue")
        o.useEMA = try reader.bool("use_ema") ?? false
        o.emaMomentum = try number("ema_momentum") ?? 0.99
        o.emaOverwriteFrequency = try int("ema_overwrite_frequency")
        o.lossScaleFactor = try number("loss_scale_factor")
        o.gradientAccumulationSteps = try int("gradient_accumulation_steps")
        return (name, learningRate, o)
    }

    /// A number that keeps its integer-ness (`null`: `nil`).
    mutating func number(_ key: String) throws -> ConfigNumber? {
        try ConfigNumber.read(reader.take(key), field: key, owner: className)
    }

    /// An integer (`null`: `nil`).
    mutating func int(_ key: String) throws -> Int? {
        guard let v = reader.take(key) else { return nil }
        guard case .int(let i) = v else {
            throw OptimizerError.invalidArgument(field: key, message: "\(className) expects an integer, got \(v.typeName)")
        }
        return i
    }

    mutating func bool(_ key: String) throws -> Bool? { try reader.bool(key) }
    mutating func string(_ key: String) throws -> String? { try reader.string(key) }

    /// A list of strings (`null`: `nil`): ``ConfigReader/stringArray(_:)``.
    mutating func strings(_ key: String) throws -> [String]? { try reader.stringArray(key) }

    /// Throws for a key left over.
    func finish(allowed: [String]) throws {
        try reader.finish(allowed: Keras3.baseConfigKeys + allowed)
    }
}
