import DescentAutodiff
import DescentTensor

/// `descent replay`: runs a Keras-serialized optimizer over given variables and gradients and reports
/// every step, so a Keras training recipe can be checked against Descent number for number.
///
/// Input:
/// ```
/// {"optimizer": <tf.keras.optimizers.serialize(opt)>,
///  "variables": [{"name": "var0", "shape": [4, 5], "dtype": "float32", "value": [...], "constraint": null}],
///  "steps": [{"gradients": [null | {"dense": [...]} | {"indices": [...], "values": [...], "dense_shape": [...]}]}]}
/// ```
/// Output: `{"steps": [{"variables": [[...], ...]}], "iterations": N, "weights": [[...], ...],
/// "weight_names": [...], "config": <serialized optimizer after the run>}`.
/// Each step is one `applyGradients` call with one gradient entry per variable (`null`: none).
public enum Replay {
    /// Runs a replay document.
    /// - Throws: ``JSONError`` or ``OptimizerError`` naming the offending field (e.g.
    ///   `steps[2].gradients[0].indices`), or an error from the optimizer itself.
    public static func run(_ input: JSONValue, customObjects: CustomObjects = .none) throws -> JSONObject {
        guard let root = input.objectValue else { throw JSONError("input: expected a JSON object, got \(input.typeName)") }
        for key in root.keys where !["optimizer", "variables", "steps"].contains(key) {
            throw JSONError("input: unknown field '\(key)' (expected optimizer, variables, steps)")
        }
        guard let optimizerJSON = root["optimizer"] else { throw JSONError("input: missing field 'optimizer'") }
        let optimizer: Optimizer
        switch optimizerJSON {
        case .object(let o): optimizer = try Optimizer.deserialize(o, customObjects: customObjects)
        case .string(let s): optimizer = try Optimizer.deserialize(json: s, customObjects: customObjects)
        default: throw JSONError("optimizer: expected a serialized optimizer object, got \(optimizerJSON.typeName)")
        }
        guard let variablesJSON = root["variables"]?.arrayValue else {
            throw JSONError("input: field 'variables' must be an array")
        }
        let variables = try variablesJSON.enumerated().map { try parseVariable($1, at: "variables[\($0)]", customObjects) }
        guard let stepsJSON = root["steps"]?.arrayValue else { throw JSONError("input: field 'steps' must be an array") }
        // Parse every step before running any, so a malformed document changes nothing.
        let steps = try stepsJSON.enumerated().map { i, step in
            try parseStep(step, at: "steps[\(i)]", variables: variables)
        }
        var outSteps: [JSONValue] = []
        for gradients in steps {
            try optimizer.applyGradients(Array(zip(gradients, variables)))
            outSteps.append(["variables": .array(variables.map { numbers($0.untrackedValue) })])
        }
        var out = JSONObject()
        out["steps"] = .array(outSteps)
        out["iterations"] = .int(Int(optimizer.iterationCount))
        out["weights"] = .array(optimizer.getWeights().map(numbers))
        out["weight_names"] = .array(optimizer.weights.map { .string($0.name) })
        out["config"] = .object(try optimizer.serialize())
        return out
    }

    /// Runs a replay document given as JSON text; returns the output as one line of JSON.
    public static func run(json: String, customObjects: CustomObjects = .none) throws -> String {
        try run(JSONValue(parsing: json), customObjects: customObjects).serialized
    }

    static func numbers(_ t: Tensor) -> JSONValue {
        if t.dtype == .int64 { return .array(t.doubles.map { .int(Int($0)) }) }
        return .array(t.doubles.map { .double($0) })
    }

    static func parseVariable(_ v: JSONValue, at path: String, _ customObjects: CustomObjects) throws -> Variable {
        guard let o = v.objectValue else { throw JSONError("\(path): expected an object, got \(v.typeName)") }
        guard let name = o["name"]?.stringValue else { throw JSONError("\(path).name: expected a string") }
        let shape = try intList(o["shape"], at: "\(path).shape")
        if let bad = shape.first(where: { $0 < 0 }) { throw JSONError("\(path).shape: dimension \(bad) is negative") }
        let dtypeName = o["dtype"]?.stringValue ?? "float32"
        guard let dtype = DType(kerasName: dtypeName), dtype.isFloatingPoint else {
            throw JSONError("\(path).dtype: expected \"float32\" or \"float64\", got \(o["dtype"]?.serialized ?? "null")")
        }
        let values = try numberList(o["value"], at: "\(path).value")
        let count = try Shape.elementCount(shape, operation: "\(path).shape")  // checked: the product may overflow
        guard values.count == count else {
            throw JSONError("\(path).value: expected \(count) numbers for shape \(shape), got \(values.count)")
        }
        let constraint: (any VariableConstraint)?
        do { constraint = try Constraints.deserialize(o["constraint"] ?? .null, customObjects: customObjects) } catch {
            throw JSONError("\(path).constraint: \(error)")
        }
        let value = try Tensor(shape: shape, scalars: values).cast(to: dtype)
        return Variable(value, name: name, constraint: constraint)
    }

    static func parseStep(_ s: JSONValue, at path: String, variables: [Variable]) throws -> [Gradient?] {
        guard let grads = s.objectValue?["gradients"]?.arrayValue else {
            throw JSONError("\(path).gradients: expected an array")
        }
        guard grads.count == variables.count else {
            throw JSONError("\(path).gradients: expected \(variables.count) entries (one per variable), got \(grads.count)")
        }
        return try grads.enumerated().map { i, g -> Gradient? in
            let at = "\(path).gradients[\(i)]"
            let v = variables[i]
            if g == .null { return nil }
            guard let o = g.objectValue else { throw JSONError("\(at): expected null or an object, got \(g.typeName)") }
            if let dense = o["dense"] {
                let values = try numberList(dense, at: "\(at).dense")
                guard values.count == v.scalarCount else {
                    throw JSONError("\(at).dense: expected \(v.scalarCount) numbers for variable '\(v.name)' of shape \(v.shape), got \(values.count)")
                }
                return .dense(try Tensor(shape: v.shape, scalars: values).cast(to: v.dtype))
            }
            guard o["indices"] != nil || o["values"] != nil else {
                throw JSONError("\(at): expected a 'dense' field or 'indices', 'values' and 'dense_shape'")
            }
            let indices = try intList(o["indices"], at: "\(at).indices")
            let denseShape = try o["dense_shape"].map { try intList($0, at: "\(at).dense_shape") } ?? v.shape
            guard denseShape == v.shape else {
                throw JSONError("\(at).dense_shape: \(denseShape) does not match variable '\(v.name)' of shape \(v.shape)")
            }
            guard !denseShape.isEmpty else { throw JSONError("\(at): a sparse gradient needs a variable of rank >= 1") }
            if let bad = indices.first(where: { $0 < 0 || $0 >= denseShape[0] }) {
                throw JSONError("\(at).indices: index \(bad) is out of range [0, \(denseShape[0])) for variable '\(v.name)'")
            }
            let values = try numberList(o["values"], at: "\(at).values")
            let rowShape = Array(denseShape.dropFirst())
            let expected = try Shape.elementCount([indices.count] + rowShape, operation: "\(at).values")
            guard values.count == expected else {
                throw JSONError("\(at).values: expected \(expected) numbers (\(indices.count) rows of shape \(rowShape)), got \(values.count)")
            }
            let t = try Tensor(shape: [indices.count] + rowShape, scalars: values).cast(to: v.dtype)
            return .sparse(try IndexedSlices(values: t, indices: indices, denseShape: denseShape))
        }
    }

    static func intList(_ v: JSONValue?, at path: String) throws -> [Int] {
        guard let items = v?.arrayValue else { throw JSONError("\(path): expected an array of integers") }
        return try items.enumerated().map { i, item in
            guard let n = item.intValue else { throw JSONError("\(path)[\(i)]: expected an integer, got \(item.typeName)") }
            return n
        }
    }

    static func numberList(_ v: JSONValue?, at path: String) throws -> [Double] {
        guard let items = v?.arrayValue else { throw JSONError("\(path): expected an array of numbers") }
        return try items.enumerated().map { i, item in
            guard let d = item.doubleValue else { throw JSONError("\(path)[\(i)]: expected a number, got \(item.typeName)") }
            return d
        }
    }
}

extension Replay {
    /// The whole `descent replay` command: reads the document (`path`, or standard input for `-`),
    /// and returns the exit status and what to print. On any error: status 1, nothing on standard output,
    /// one line on standard error naming the problem.
    public static func command(path: String, readStandardInput: () throws -> String,
                               readFile: (String) throws -> String) -> (status: Int32, stdout: String, stderr: String) {
        let text: String
        do {
            text = path == "-" ? try readStandardInput() : try readFile(path)
        } catch {
            return (1, "", "error: cannot read \(path == "-" ? "standard input" : path): \(error)\n")
        }
        do {
            return (0, try run(json: text) + "\n", "")
        } catch {
            let message = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
            return (1, "", "error: \(message)\n")
        }
    }
}
