@_spi(DescentInternals) import DescentOptimizers

/// Reading Keras' serialized losses and metrics with the rules of the optimizers' configs: one wrapper
/// rule (`Optimizer.readWrapper`: `module`, `class_name`, `config`, `registered_name`; `config`
/// required), no unknown config key, no field of the wrong type, numbers within float32.
enum KerasConfig {
    /// The class name and config of a `{"class_name": ..., "config": {...}}` document of `kind`
    /// (`"loss"`, `"metric"`).
    /// - Throws: ``KerasError/invalidConfig(kind:message:)`` naming what is wrong.
    static func readWrapper(_ value: JSONValue, kind: String) throws -> (className: String, config: JSONObject) {
        guard let object = value.objectValue else {
            throw KerasError.invalidConfig(kind: kind, message: "expected a string or an object with "
                                            + "\"class_name\" and \"config\", got \(value.typeName)")
        }
        do { return try Optimizer.readWrapper(object, kind: kind) } catch {
            throw KerasError.invalidConfig(kind: kind, message: "\(error)")
        }
    }

    /// Throws for a key of `config` outside `allowed` (Keras' "Unexpected keyword argument").
    static func rejectUnknownKeys(_ config: JSONObject, allowed: [String], kind: String) throws {
        if let key = config.keys.first(where: { !allowed.contains($0) }) {
            throw KerasError.invalidConfig(
                kind: kind, message: "unexpected key '\(key)' (allowed: \(allowed.joined(separator: ", ")))")
        }
    }

    /// A float32 number field: absent or null gives `nil`; otherwise a finite number within float32's
    /// range, else an error naming the field.
    static func float32(_ config: JSONObject, _ key: String, kind: String) throws -> Double? {
        guard let v = config[key], !v.isNull else { return nil }
        guard let d = v.doubleValue else {
            throw KerasError.invalidConfig(kind: kind, message: "\(key) must be a number, got \(v.typeName)")
        }
        do { try Float32Field.checkHyperparameter(d, field: key, owner: "\(kind) config") } catch {
            throw KerasError.invalidConfig(kind: kind, message: "\(error)")
        }
        return d
    }
}
