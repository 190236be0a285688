@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Variables routed to optimizers by their path (Keras 3's `OptimizerMap`): an exact path first,
    /// else the one pattern that matches the whole path (`"encoder/.*"`), else the default optimizer.
    public struct OptimizerMap {
        /// The optimizer of variables no pattern matches.
        public let defaultOptimizer: Optimizer
        /// Patterns (regular expressions matched against the whole variable path, e.g. `"dense/.*"`) and
        /// their optimizers, in order.
        public private(set) var entries: [(pattern: String, optimizer: Optimizer)]

        /// A map with `defaultOptimizer` for every variable, plus `entries`.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a repeated pattern, one that is
        ///   not a regular expression, or a LossScaleOptimizer / MultiOptimizer among the optimizers.
        public init(defaultOptimizer: Optimizer, _ entries: [(pattern: String, optimizer: Optimizer)] = []) throws {
            try OptimizerMap.checkNotWrapper(defaultOptimizer)
            self.defaultOptimizer = defaultOptimizer
            self.entries = []
            for (pattern, optimizer) in entries { try set(pattern, optimizer) }
        }

        /// Routes `pattern` to `optimizer` (Keras' `optimizer_map[pattern] = optimizer`).
        public mutating func set(_ pattern: String, _ optimizer: Optimizer) throws {
            guard !entries.contains(where: { $0.pattern == pattern }) else {
                throw OptimizerError.invalidArgument(field: "optimizer_map", message: "'\(pattern)' already exists in the OptimizerMap; do not repeat keys")
            }
            do { _ = try Regex(pattern) } catch {
                throw OptimizerError.invalidArgument(field: "optimizer_map", message: "'\(pattern)' is not a regular expression: \(error)")
            }
            try OptimizerMap.checkNotWrapper(optimizer)
            entries.append((pattern, optimizer))
        }

        static func checkNotWrapper(_ optimizer: Optimizer) throws {
            if optimizer is LossScaleOptimizer || optimizer is MultiOptimizer {
                throw OptimizerError.invalidArgument(field: "optimizer_map", message: "optimizer cannot be \(type(of: optimizer).kerasClassName)")
            }
        }

        /// The optimizer of the variable at `path`.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` when several patterns match.
        public func optimizer(forPath path: String) throws -> Optimizer {
            if let exact = entries.first(where: { $0.pattern == path }) { return exact.optimizer }
            // Checked in `set`.
            let matching = entries.filter { (try? Regex($0.pattern)).map { path.wholeMatch(of: $0) != nil } ?? false }
            if matching.count > 1 {
                throw OptimizerError.invalidArgument(
                    field: "optimizer_map", message: "Multiple optimizers assigned to variable \(path) (patterns \(matching.map { "'\($0.pattern)'" }.joined(separator: ", ")))")
            }
            return matching.first?.optimizer ?? defaultOptimizer
        }

        /// Keras' `serialize_keras_object(optimizer_map)`.
        func serialized() throws -> JSONObject {
            var map = JSONObject()
            for (pattern, optimizer) in entries { map[pattern] = .object(try optimizer.serialize()) }
            var config = JSONObject()
            config["default_optimizer"] = .object(try defaultOptimizer.serialize())
            config["optimizer_map"] = .object(map)
            return ["module": .string(Keras3.module), "class_name": "OptimizerMap", "config": .object(config),
                    "registered_name": .null]
        }

        /// Reads Keras' serialized `OptimizerMap`.
        static func deserialize(_ o: JSONObject, customObjects: CustomObjects) throws -> OptimizerMap {
            let (className, config) = try DescentOptimizers.Optimizer.readWrapper(o, kind: "optimizer_map")
            guard className == "OptimizerMap" else {
                throw OptimizerError.invalidArgument(field: "optimizer_map", message: "expected an OptimizerMap, got class '\(className)'")
            }
            try config.rejectUnknownKeys(allowed: ["default_optimizer", "optimizer_map"], in: "OptimizerMap config")
            func keras3(_ value: JSONValue?, _ field: String) throws -> Optimizer {
                guard let object = value?.objectValue else {
                    throw OptimizerError.invalidArgument(field: field, message: "expected a serialized Keras 3 optimizer")
                }
                guard let opt = try DescentOptimizers.Optimizer.deserialize(object, customObjects: customObjects) as? Optimizer else {
                    throw OptimizerError.invalidArgument(field: field, message: "expected a Keras 3 optimizer (module keras.optimizers), not a legacy one")
                }
                return opt
            }
            let defaultOptimizer = try keras3(config["default_optimizer"], "optimizer_map.default_optimizer")
            var entries: [(pattern: String, optimizer: Optimizer)] = []
            if let mapValue = config["optimizer_map"], mapValue != .null {
                guard let map = mapValue.objectValue else {
                    throw OptimizerError.invalidArgument(field: "optimizer_map.optimizer_map", message: "expected an object of pattern: optimizer")
                }
                for (pattern, value) in map.entries { entries.append((pattern, try keras3(value, "optimizer_map.optimizer_map['\(pattern)']"))) }
            }
            return try OptimizerMap(defaultOptimizer: defaultOptimizer, entries)
        }
    }

    /// Several optimizers for one model (Keras 3's `MultiOptimizer`): each variable goes to the
    /// optimizer its path selects in an ``OptimizerMap`` (per-parameter-group optimizers).
    ///
    /// Each call passes every variable the optimizer was built with (a `nil` gradient is allowed) and
    /// calls each inner optimizer once with its variables; then its own `iteration` counts the call.
    /// Variables: its own `iteration` and `learning_rate` (unused), then each inner optimizer's, in the
    /// order of the map's optimizers (first appearance), then the default. `loss_scale_factor` is set on
    /// every inner optimizer. It has no learning rate of its own (Keras raises on access): read and set
    /// those of ``optimizers``.
    open class MultiOptimizer: Optimizer {
        /// The routing.
        public let optimizerMap: OptimizerMap
        /// The inner optimizers, each once, in Keras' order.
        public private(set) var optimizers: [Optimizer] = []
        private var optimizerOfVariable: [Int: Int] = [:]

        /// Creates the wrapper; `lossScaleFactor` replaces every inner optimizer's.
        public init(_ optimizerMap: OptimizerMap, lossScaleFactor: ConfigNumber? = nil, name: String = "") throws {
            self.optimizerMap = optimizerMap
            try super.init(learningRate: 0.0, name: name, options: Options(lossScaleFactor: lossScaleFactor))
            for opt in optimizerMap.entries.map(\.optimizer) + [optimizerMap.defaultOptimizer]
            where !optimizers.contains(where: { $0 === opt }) {
                opt.options.lossScaleFactor = lossScaleFactor
                optimizers.append(opt)
            }
        }

        open override class var kerasClassName: String { "MultiOptimizer" }

        override var childOptimizers: [DescentOptimizers.Optimizer] { optimizers }

        /// A MultiOptimizer has no learning rate: reading gives NaN, setting warns (use ``optimizers``).
        open override var learningRate: Hyperparameter {
            get { .number(.nan) }
            set { DescentOptimizers.Optimizer.warn("Learning rate cannot be set on a MultiOptimizer. Set the learning rate on the individual sub-optimizers instead.") }
        }

        open override func buildVariables(_ variables: [Variable]) throws {
            var groups = [[Variable]](repeating: [], count: optimizers.count)
            var index: [Int: Int] = [:]
            for v in variables {
                let opt = try optimizerMap.optimizer(forPath: v.name)
                let i = optimizers.firstIndex { $0 === opt }!  // every optimizer of the map is in `optimizers`
                index[v.id] = i
                groups[i].append(v)
            }
            for (opt, group) in zip(optimizers, groups) where !group.isEmpty {
                opt.buildScope = buildScope
                try opt.build(group)
            }
            optimizerOfVariable = index
        }

        open override func resetClassBuild() {
            optimizerOfVariable = [:]
            for opt in optimizers where opt.isBuilt { opt.resetBuild() }
        }

        open override func finalizeVariableValues() throws {
            for opt in optimizers { try opt.finalizeVariableValues() }
        }

        override func applyKeras3(_ gradsAndVars: [(Gradient?, Variable)], aggregate: Bool) throws -> Int64 {
            if gradsAndVars.isEmpty { return iterationCount }
            for (g, v) in gradsAndVars {
                guard let g else { continue }
                try checkGradient(g, for: v)
                if case .sparse(let s) = g { try checkSparseGradient(s, for: v) }
            }
            let wasBuilt = isBuilt, mark = weightsMark
            try build(gradsAndVars.map { $0.1 })
            do {
                guard gradsAndVars.count == trainableVariables.count else {
                    throw OptimizerError.invalidArgument(
                        field: "gradients", message: "\(name): gradients must match the trainable variables one-to-one: received \(gradsAndVars.count) gradients and \(trainableVariables.count) variables")
                }
                var groups = [[(Gradient?, Variable)]](repeating: [], count: optimizers.count)
                for (g, v) in gradsAndVars {
                    guard let i = optimizerOfVariable[v.id] else { _ = try index(of: v); continue }
                    groups[i].append((g, v))
                }
                for (opt, group) in zip(optimizers, groups) where !group.isEmpty && group.allSatisfy({ $0.0 == nil }) {
                    throw OptimizerError.noGradients(variables: group.map { $0.1.name } + ["(all the variables of \(opt.name))"])
                }
                for (opt, group) in zip(optimizers, groups) where !group.isEmpty {
                    _ = try opt.applyKeras3(group, aggregate: aggregate)
                }
            } catch {
                if !wasBuilt { unbuild(to: mark) }
                throw error
            }
            try iterations.assignAdd(Tensor(Int64(1)))
            return iterationCount
        }

        open override var config: JSONObject {
            get throws {
                var c = JSONObject()
                c["optimizer_map"] = .object(try optimizerMap.serialized())
                c["loss_scale_factor"] = options.lossScaleFactor?.json ?? .null
                c["name"] = .string(name)
                return c
            }
        }

        /// Rebuilds a MultiOptimizer (and its map and inner optimizers) from its config.
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "MultiOptimizer", customObjects: customObjects)
            guard let mapJSON = r.reader.take("optimizer_map")?.objectValue else {
                throw OptimizerError.invalidArgument(field: "optimizer_map", message: "MultiOptimizer needs a serialized OptimizerMap as 'optimizer_map'")
            }
            let map = try OptimizerMap.deserialize(mapJSON, customObjects: customObjects)
            let lossScale = try r.number("loss_scale_factor")
            let name = try r.string("name")
            try r.reader.finish(allowed: ["optimizer_map", "loss_scale_factor", "name"])
            try self.init(map, lossScaleFactor: lossScale, name: name ?? "")
        }
    }
}
