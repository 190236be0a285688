@_spi(DescentInternals) import DescentOptimizers
import DescentTensor

// The architecture and compile configuration of a `Sequential` model as Keras' model files carry them:
// tf_keras' `model_config` / `training_config` attributes (`.h5`) and Keras 3's `config.json`
// (`.keras`). Layouts measured from files both wrote: Tests/Fixtures/keras_files/LAYOUTS.md.

extension Sequential {
    /// `[null, d1, d2, ...]`: a shape with the batch dimension left open, as Keras writes it.
    static func openBatchShape(_ shape: [Int]) -> JSONValue {
        .array([.null] + shape.dropFirst().map { .int($0) })
    }

    /// Keras' model config in `format` (tf_keras: `{"class_name": "Sequential", "config": {...}}`;
    /// Keras 3: also `module`, `registered_name`, `build_config`).
    /// - Throws: ``KerasError`` when the model is not built (no input shape to record) or a layer has
    ///   no Keras config.
    public func kerasModelConfig(_ format: KerasFormat) throws -> JSONObject {
        guard let inputShape = builtInputShape else {
            throw KerasError.invalidArgument(field: "model '\(name)'", message: "is not built: call it on data or build(inputShape:) before saving")
        }
        let inputDType = layers.first is Embedding ? "int32" : "float32"
        var entries: [JSONValue] = []
        var input: JSONObject = [format == .tfKeras ? "batch_input_shape" : "batch_shape": Sequential.openBatchShape(inputShape)]
        input["dtype"] = .string(inputDType)
        input["sparse"] = .bool(false)
        input["ragged"] = .bool(false)
        input["name"] = .string(format == .tfKeras ? "input_1" : "input_layer")
        input["optional"] = .bool(false)
        switch format {
        case .tfKeras: entries.append(.object(["class_name": "InputLayer", "config": .object(input)]))
        case .keras3: entries.append(KerasConfigParts.wrapper("keras.layers", "InputLayer", input))
        }
        var shape = inputShape
        for layer in layers {
            guard let serializable = layer as? any KerasSerializableLayer else {
                throw KerasError.invalidArgument(field: "layer '\(layer.name)' (\(type(of: layer)))",
                                                 message: "has no Keras config: conform it to KerasSerializableLayer and register it with KerasLayers.register")
            }
            let className = type(of: layer).kerasClassName
            let config = try serializable.kerasConfig(format)
            switch format {
            case .tfKeras:
                entries.append(.object(["class_name": .string(className), "config": .object(config)]))
            case .keras3:
                guard case .object(var o) = KerasConfigParts.wrapper(layer is Sequential ? "keras" : "keras.layers", className, config) else { continue }
                // Keras 3 records no build shape for layers without weights that are built at creation
                // (Dropout, pooling, Activation, Softmax, ReLU, Reshape).
                // A nested model also records its (empty) compile config.
                if layer is Sequential { o["compile_config"] = .object([:]) }
                if type(of: layer).recordsKerasBuildConfig { o["build_config"] = .object(["input_shape": Sequential.openBatchShape(shape)]) }
                entries.append(.object(o))
            }
            shape = layer.outputShape(forInputShape: shape)
        }
        switch format {
        case .tfKeras:
            return ["class_name": "Sequential", "config": .object(["name": .string(name), "layers": .array(entries)])]
        case .keras3:
            let config: JSONObject = ["name": .string(name), "trainable": .bool(true), "dtype": KerasConfigParts.dtype(.keras3),
                                      "layers": .array(entries), "build_input_shape": Sequential.openBatchShape(inputShape)]
            return ["module": "keras", "class_name": "Sequential", "config": .object(config), "registered_name": .null,
                    "build_config": .object(["input_shape": Sequential.openBatchShape(inputShape)])]
        }
    }

    /// The model a Keras model config describes (either format), built for its input shape when the
    /// config gives one (an `InputLayer`, or the first layer's `batch_input_shape` / `build_config`).
    /// - Parameter field: where the config came from, for errors (`"m.h5: model_config"`).
    /// - Throws: ``KerasError`` naming the layer entry (`model_config.config.layers[2]`) for an unknown
    ///   class, a bad config or an input shape that cannot be built.
    public static func fromKerasModelConfig(_ value: JSONValue, field: String) throws -> Sequential {
        try fromKerasModelConfig(value, field: field, weightsWillBeLoaded: false)
    }

    /// ``fromKerasModelConfig(_:field:)``; with `weightsWillBeLoaded` the layers are built with zeros
    /// instead of their initializers' draws (a model file's weights replace them at once).
    static func fromKerasModelConfig(_ value: JSONValue, field: String, weightsWillBeLoaded: Bool) throws -> Sequential {
        guard let top = value.objectValue else {
            throw KerasError.invalidConfig(kind: field, message: "expected an object, got \(value.typeName)")
        }
        try KerasConfig.rejectUnknownKeys(top, allowed: ["module", "class_name", "config", "registered_name", "build_config",
                                                         "compile_config", "keras_version", "backend"], kind: field)
        guard top["class_name"]?.stringValue == "Sequential" else {
            throw KerasError.invalidConfig(kind: "\(field).class_name", message: "expected \"Sequential\" (Descent has Sequential models), got \(top["class_name"]?.serialized ?? "nothing")")
        }
        guard let config = top["config"]?.objectValue else {
            throw KerasError.invalidConfig(kind: "\(field).config", message: "expected an object")
        }
        try KerasConfig.rejectUnknownKeys(config, allowed: ["name", "layers", "trainable", "dtype", "build_input_shape"], kind: "\(field).config")
        guard let entries = config["layers"]?.arrayValue else {
            throw KerasError.invalidConfig(kind: "\(field).config.layers", message: "expected an array of layer configs")
        }
        var layers: [Layer] = []
        var inputShape: JSONValue?
        for (i, entry) in entries.enumerated() {
            let here = "\(field).config.layers[\(i)]"
            guard let o = entry.objectValue else { throw KerasError.invalidConfig(kind: here, message: "expected an object, got \(entry.typeName)") }
            try KerasConfig.rejectUnknownKeys(o, allowed: ["module", "class_name", "config", "registered_name", "build_config", "compile_config", "shared_object_id"], kind: here)
            guard let className = o["class_name"]?.stringValue, var layerConfig = o["config"]?.objectValue else {
                throw KerasError.invalidConfig(kind: here, message: "expected \"class_name\" (a string) and \"config\" (an object)")
            }
            if className == "InputLayer" {
                guard i == 0 else { throw KerasError.invalidConfig(kind: here, message: "an InputLayer must be the first layer") }
                try KerasConfig.rejectUnknownKeys(layerConfig, allowed: ["batch_input_shape", "batch_shape", "dtype", "sparse", "ragged", "name", "optional", "input_tensor"], kind: here)
                inputShape = layerConfig["batch_input_shape"] ?? layerConfig["batch_shape"]
                continue
            }
            if layers.isEmpty && inputShape == nil {
                inputShape = layerConfig["batch_input_shape"] ?? o["build_config"]?.objectValue?["input_shape"]
            }
            layerConfig.removeValue(forKey: "batch_input_shape")
            do {
                layers.append(try KerasLayers.deserialize(className, layerConfig))
            } catch let error as KerasError {
                throw KerasError.invalidConfig(kind: here, message: "\(error)")
            }
        }
        let model = try Sequential(layers, name: try config["name"].map { v -> String in
            guard let s = v.stringValue else { throw KerasError.invalidConfig(kind: "\(field).config.name", message: "expected a string") }
            return s
        })
        if let inputShape, !inputShape.isNull, !layers.isEmpty {
            for layer in layers { layer.weightsWillBeLoaded = weightsWillBeLoaded }
            defer { for layer in layers { layer.weightsWillBeLoaded = false } }
            try model.build(inputShape: try buildShape(inputShape, field: "\(field): input shape"))
        }
        return model
    }

    /// `[null, 8]` → `[1, 8]`: the batch dimension may be open, every other must be a positive integer.
    static func buildShape(_ value: JSONValue, field: String) throws -> [Int] {
        guard let items = value.arrayValue, !items.isEmpty, items.count <= 32 else {
            throw KerasError.invalidConfig(kind: field, message: "expected [batch, d1, ...], got \(value.serialized)")
        }
        return try items.enumerated().map { i, v in
            if i == 0 { return v.isNull ? 1 : (v.intValue.map { max($0, 1) } ?? 1) }
            guard let d = v.intValue, d > 0, d <= 1 << 40 else {
                throw KerasError.invalidConfig(kind: field, message: "dimension \(i) must be a positive integer (Descent needs every dimension but the batch), got \(v.serialized)")
            }
            return d
        }
    }
}

// MARK: - Compile configuration

extension Sequential {
    /// The metrics as Keras' configs record them: the string identifiers still waiting for the first
    /// batch, or the resolved metrics.
    private func metricEntries(_ format: KerasFormat) -> [JSONValue] {
        metricSlots.map { slot in
            guard case .metric(let m) = slot else {
                if case .name(let n) = slot { return .string(n) }
                return .null
            }
            if let wrapper = m as? MeanMetricWrapper, let fn = wrapper.kerasFunctionName, type(of: wrapper) == MeanMetricWrapper.self {
                switch format {
                case .tfKeras:
                    return .object(["class_name": "MeanMetricWrapper",
                                    "config": .object(["name": .string(m.name), "dtype": .string(m.dtype.rawValue), "fn": .string(fn)])])
                case .keras3:
                    return .string(m.name == fn || m.name == "accuracy" || m.name == "acc" ? m.name : fn)
                }
            }
            var o = m.serialize()
            if format == .tfKeras { o = ["class_name": o["class_name"] ?? .null, "config": o["config"] ?? .null] }
            return .object(o)
        }
    }

    /// tf_keras' `training_config` (the loss, metrics and legacy optimizer of ``compile(optimizer:loss:metrics:)``).
    func tfKerasTrainingConfig() throws -> JSONObject? {
        guard let optimizer, let loss else { return nil }
        var lossConfig = loss.config
        lossConfig["fn"] = .string(KerasNaming.snakeCase(type(of: loss).kerasClassName))
        let metricList = metricEntries(.tfKeras)
        return ["loss": .object(["class_name": .string(type(of: loss).kerasClassName), "config": .object(lossConfig)]),
                "metrics": metricList.isEmpty ? .null : .array([.array(metricList)]),
                "weighted_metrics": .null, "loss_weights": .null,
                "optimizer_config": .object(try optimizer.serialize(legacyFormat: true))]
    }

    /// Keras 3's `compile_config` (`{}` when the model is not compiled).
    func keras3CompileConfig() throws -> JSONObject {
        guard let optimizer, let loss else { return JSONObject() }
        var lossConfig: JSONObject = ["name": .string(loss.name)]
        for (k, v) in loss.config where k != "name" && k != "fn" {
            lossConfig[k] = k == "reduction" && v.stringValue == "auto" ? .string("sum_over_batch_size") : v
        }
        return ["optimizer": try KerasOptimizerFormats.keras3Serialization(optimizer),
                "loss": KerasConfigParts.wrapper("keras.losses", type(of: loss).kerasClassName, lossConfig),
                "loss_weights": .null, "metrics": .array(metricEntries(.keras3)), "weighted_metrics": .null,
                "run_eagerly": .bool(false), "steps_per_execution": .int(1), "jit_compile": .bool(false)]
    }

    /// Compiles from tf_keras' `training_config` or Keras 3's `compile_config`.
    /// - Throws: ``KerasError`` naming `field` and the part that is wrong; weighted metrics and loss
    ///   weights (several outputs) are refused.
    func compile(fromConfig config: JSONObject, format: KerasFormat, field: String) throws {
        let allowed = format == .tfKeras ? ["loss", "metrics", "weighted_metrics", "loss_weights", "optimizer_config"]
            : ["optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly", "steps_per_execution", "jit_compile"]
        try KerasConfig.rejectUnknownKeys(config, allowed: allowed, kind: field)
        for key in ["weighted_metrics", "loss_weights"] where !(config[key]?.isNull ?? true) {
            throw KerasError.invalidConfig(kind: "\(field).\(key)", message: "is not supported by Descent (expected null)")
        }
        guard let optimizerValue = config[format == .tfKeras ? "optimizer_config" : "optimizer"] else {
            throw KerasError.invalidConfig(kind: field, message: "has no optimizer")
        }
        let optimizer: Optimizer
        do {
            optimizer = try KerasOptimizerFormats.deserialize(optimizerValue, format: format)
        } catch {
            throw KerasError.invalidConfig(kind: "\(field).\(format == .tfKeras ? "optimizer_config" : "optimizer")", message: "\(error)")
        }
        guard var lossValue = config["loss"], !lossValue.isNull else { throw KerasError.invalidConfig(kind: "\(field).loss", message: "is missing") }
        // tf_keras records the loss function's name as `fn`; the class already says it.
        if var o = lossValue.objectValue, var c = o["config"]?.objectValue, c["fn"] != nil {
            c.removeValue(forKey: "fn")
            o["config"] = .object(c)
            lossValue = .object(o)
        }
        let loss: any Loss
        do { loss = try Losses.deserialize(lossValue) } catch { throw KerasError.invalidConfig(kind: "\(field).loss", message: "\(error)") }
        var slots: [MetricSlot] = []
        var metricValues = config["metrics"]?.arrayValue ?? []
        // tf_keras: one list per output.
        if format == .tfKeras, metricValues.count == 1, let inner = metricValues[0].arrayValue { metricValues = inner }
        for (i, m) in metricValues.enumerated() {
            if let s = m.stringValue { slots.append(.name(s)); continue }
            do {
                if let o = m.objectValue, o["class_name"]?.stringValue == "MeanMetricWrapper", let c = o["config"]?.objectValue {
                    try KerasConfig.rejectUnknownKeys(c, allowed: ["name", "dtype", "fn"], kind: "MeanMetricWrapper")
                    guard let fn = c["fn"]?.stringValue else { throw KerasError.invalidConfig(kind: "MeanMetricWrapper", message: "needs fn") }
                    let metric: MeanMetricWrapper = try Metrics.get(fn)
                    let wrapped = try MeanMetricWrapper(name: c["name"]?.stringValue ?? fn, metric.function)
                    wrapped.kerasFunctionName = fn
                    slots.append(.metric(wrapped))
                } else {
                    slots.append(.metric(try Metrics.deserialize(m)))
                }
            } catch {
                throw KerasError.invalidConfig(kind: "\(field).metrics[\(i)]", message: "\(error)")
            }
        }
        setCompiled(optimizer: optimizer, loss: loss, slots: slots)
    }
}

// MARK: - A Sequential inside a model

extension Sequential: KerasSerializableLayer {
    /// The nested model's config (`{"name", "layers", ...}`), as Keras writes a Sequential that is one
    /// of a model's layers (tf_keras: its layer entries in `serialize_keras_object`'s form, as
    /// `to_json`).
    /// - Throws: ``KerasError`` when the nested model is not built or one of its layers has no config.
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        let top = format == .tfKeras ? try serializedModelConfig() : try kerasModelConfig(format)
        return top["config"]?.objectValue ?? [:]
    }

    /// tf_keras 2.21's `serialize_keras_object` form of the model config (what `to_json()` and a model
    /// nested in another write): every layer entry with `module`, `class_name`, `config`,
    /// `registered_name`, and after the `InputLayer` a `build_config` with the layer's input shape.
    func serializedModelConfig() throws -> JSONObject {
        var json = try kerasModelConfig(.tfKeras)
        guard var config = json["config"]?.objectValue, let entries = config["layers"]?.arrayValue, var shape = builtInputShape else { return json }
        var wrapped: [JSONValue] = []
        for (i, entry) in entries.enumerated() {
            guard let o = entry.objectValue else { wrapped.append(entry); continue }
            var w: JSONObject = ["module": "keras.layers", "class_name": o["class_name"] ?? .null,
                                 "config": o["config"] ?? .null, "registered_name": .null]
            if i > 0 && i <= layers.count {
                w["build_config"] = .object(["input_shape": Sequential.openBatchShape(shape)])
                shape = layers[i - 1].outputShape(forInputShape: shape)
            }
            wrapped.append(.object(w))
        }
        config["layers"] = .array(wrapped)
        json["config"] = .object(config)
        return json
    }

    /// A nested Sequential from its config.
    public static func fromKerasConfig(_ config: JSONObject) throws -> Sequential {
        try fromKerasModelConfig(.object(["class_name": "Sequential", "config": .object(config)]), field: "Sequential")
    }
}
