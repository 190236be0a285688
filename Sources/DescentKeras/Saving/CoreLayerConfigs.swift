@_spi(DescentInternals) import DescentOptimizers
import DescentTensor

// Keras configs of Activation, Softmax, ReLU and Reshape, in tf_keras 2.21's and Keras 3.15's key order
// (the same keys in both; Tests/Fixtures/layers, scripts/golden/generate_norm_layers.py).

extension ActivationLayer: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        c["activation"] = .string(activation.rawValue)
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> ActivationLayer {
        let r = try LayerConfigReader(config, "Activation", allowed: ["activation"])
        let layer = ActivationLayer(try r.activation("activation"), name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Softmax: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        c["axis"] = .int(axis)
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Softmax {
        let r = try LayerConfigReader(config, "Softmax", allowed: ["axis", "robust_masking"])
        try r.requireFalse("robust_masking")
        let layer = Softmax(axis: try r.axis("axis", -1), name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension ReLU: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        // tf_keras keeps the three as float32 (`cast_to_floatx`), Keras 3 as given.
        func number(_ value: Double) -> JSONValue { format == .tfKeras ? KerasConfigParts.float32(value) : .double(value) }
        c["max_value"] = maxValue.map { number($0) } ?? .null
        c["negative_slope"] = number(negativeSlope)
        c["threshold"] = number(threshold)
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> ReLU {
        let r = try LayerConfigReader(config, "ReLU", allowed: ["max_value", "negative_slope", "threshold"])
        let maxValue: Double? = config["max_value"]?.isNull == false ? try r.number("max_value", 0) : nil
        let layer = try ReLU(maxValue: maxValue, negativeSlope: try r.number("negative_slope", 0), threshold: try r.number("threshold", 0),
                             name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}

extension Reshape: KerasSerializableLayer {
    public func kerasConfig(_ format: KerasFormat) throws -> JSONObject {
        var c = commonConfig(format)
        c["target_shape"] = .array(targetShape.map { .int($0) })
        return c
    }

    public static func fromKerasConfig(_ config: JSONObject) throws -> Reshape {
        let r = try LayerConfigReader(config, "Reshape", allowed: ["target_shape"])
        guard let list = config["target_shape"]?.arrayValue else {
            throw KerasError.invalidConfig(kind: r.kind, message: "target_shape must be a list of integers, got \(config["target_shape"]?.typeName ?? "nothing")")
        }
        let shape = try list.map { v -> Int in
            guard let i = v.intValue, v.doubleValue == Double(i) else {
                throw KerasError.invalidConfig(kind: r.kind, message: "target_shape must be a list of integers, got \(JSONValue.array(list).serialized)")
            }
            return i
        }
        let layer = try Reshape(targetShape: shape, name: r.name)
        layer.trainable = try r.bool("trainable", true)
        return layer
    }
}
