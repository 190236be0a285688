import DescentAutodiff
import DescentTensor

/// `descent replay`: runs a Keras-serialized optimizer over given variables and gradients and reports
/// every step, so a Keras training recipe can be checked against Descent number for number.
///
/// Input:
/// ```
/// {"optimizer": <tf.keras.optimizers.serialize(opt)>, "exclude_from_weight_decay": [regex, ...] (optional, Keras 3),
///  "variables": [{"name": "var0", "path": "dense/var0" (optional: Keras 3's path, then the variable's name), "shape": [4, 5], "dtype": "float32", "value": [...], "constraint": null}],
///  "steps": [{"gradients": [null | {"dense": [...]} | {"indices": [...], "values": [...], "dense_shape": [...]}]}]}
/// ```
/// Output: `{"steps": [{"variables": [[...], ...]}], "iterations": N, "weights": [[...], ...],
/// "weight_names": [...], "config": <serialized optimizer after the run>}`.
/// Each step is one `applyGradients` call with one gradient entry per variable (`null`: none).
///
/// The document is read strictly: a key not listed above is an error at every level (the document,
/// a variable, a step, a gradient, the serialized optimizer, schedule and constraint), naming the key and
/// where it was. Numbers for a float32 variable must fit float32; `NaN` and `±Infinity` are allowed in
/// values and gradients (see `Float32Field`). Shapes whose element count overflows `Int` are errors.
///
/// Output limit: the output holds every variable after every step, so it grows as steps × variable
/// elements, which a small document can make huge (a large variable and many steps for another one).
/// A document whose `steps.count` × total variable elements exceeds `maxOutputNumbers` (default
/// ``defaultMaxOutputNumbers``, 50,000,000 numbers; `descent replay --max-output-numbers N`) is an
/// error before any step runs.
public enum Replay {
    /// The default limit on the numbers in the output's `steps` (steps × total variable elements):
    /// 50,000,000, about 1 GB of JSON.
    public static let defaultMaxOutputNumbers = 50_000_000

    /// Runs a replay document.
    /// - Parameter maxOutputNumbers: the most numbers the output's `steps` may hold (steps × total
    ///   variable elements); a larger document is an error before any step runs.
    /// - Throws: ``JSONError`` or ``OptimizerError`` naming the offending field (e.g.
    ///   `steps[2].gradients[0].indices`), or an error from the optimizer itself.
    public static func run(_ input: JSONValue, customObjects: CustomObjects = .none,
                           maxOutputNumbers: Int = defaultMaxOutputNumbers) throws -> JSONObject {
        guard let root = input.objectValue else { throw JSONError("input: expected a JSON object, got \(input.typeName)") }
        try root.rejectUnknownKeys(allowed: ["optimizer", "variables", "steps", "exclude_from_weight_decay"], in: "the replay document")
        guard let optimizerJSON = root["optimizer"] else { throw JSONError("input: missing field 'optimizer'") }
        let optimizer: Optimizer
        switch optimizerJSON {
        case .object(let o): optimizer = try Optimizer.deserialize(o, customObjects: customObjects)
        case .string(let s): optimizer = try Optimizer.deserialize(json: s, customObjects: customObjects)
        default: throw JSONError("optimizer: expected a serialized optimizer object, got \(optimizerJSON.typeName)")
        }
        if let exclude = root["exclude_from_weight_decay"], exclude != .null {
            guard let keras3 = optimizer as? Keras3.Optimizer else {
                throw JSONError("exclude_from_weight_decay: only a Keras 3 optimizer (module keras.optimizers) excludes variables from weight decay")
            }
            guard let items = exclude.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                throw JSONError("exclude_from_weight_decay: expected a list of strings, got \(exclude.typeName)")
            }
            try keras3.excludeFromWeightDecay(names: items.compactMap(\.stringValue))
        }
        guard let variablesJSON = root["variables"]?.arrayValue else {
            throw JSONError("input: field 'variables' must be an array")
        }
        let variables = try variablesJSON.enumerated().map { try parseVariable($1, at: "variables[\($0)]", customObjects) }
        guard let stepsJSON = root["steps"]?.arrayValue else { throw JSONError("input: field 'steps' must be an array") }
        try checkOutputSize(steps: stepsJSON.count, variables: variables, maxOutputNumbers: maxOutputNumbers)
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
        // Keras 3's public `iterations` is floor-divided by `gradient_accumulation_steps`.
        out["iterations"] = .int(Int((optimizer as? Keras3.Optimizer)?.kerasIterations ?? optimizer.iterationCount))
        out["weights"] = .array(optimizer.getWeights().map(numbers))
        out["weight_names"] = .array(optimizer.weights.map { .string($0.name) })
        out["config"] = .object(try optimizer.serialize())
        return out
    }

    /// Runs a replay document given as JSON text; returns the output as one line of JSON.
    public static func run(json: String, customObjects: CustomObjects = .none,
                           maxOutputNumbers: Int = defaultMaxOutputNumbers) throws -> String {
        try run(JSONValue(parsing: json), customObjects: customObjects, maxOutputNumbers: maxOutputNumbers).serialized
    }

    /// Runs a replay document given as UTF-8 bytes (parsed strictly: invalid UTF-8 is an error naming
    /// its line and column); returns the output as one line of JSON.
    public static func run(jsonBytes: some Collection<UInt8>, customObjects: CustomObjects = .none,
                           maxOutputNumbers: Int = defaultMaxOutputNumbers) throws -> String {
        try run(JSONValue(parsing: jsonBytes), customObjects: customObjects, maxOutputNumbers: maxOutputNumbers).serialized
    }

    /// Throws when `steps` × the variables' total element count exceeds `maxOutputNumbers` (computed
    /// without overflow), naming the limit and how to raise it.
    static func checkOutputSize(steps: Int, variables: [Variable], maxOutputNumbers: Int) throws {
        guard steps > 0 else { return }
        var elements = 0, overflow = false
        for v in variables where !overflow {
            (elements, overflow) = elements.addingReportingOverflow(v.untrackedValue.scalarCount)
        }
        var total = 0
        if !overflow { (total, overflow) = elements.multipliedReportingOverflow(by: steps) }
        if overflow || total > maxOutputNumbers {
            throw JSONError("input: the output would hold \(overflow ? "more than \(Int.max)" : String(total)) numbers "
                            + "(\(steps) steps times \(elements) variable elements), more than the limit of "
                            + "\(maxOutputNumbers) (raise it with --max-output-numbers, or Replay.run's maxOutputNumbers)")
        }
    }

    /// The elements of `t` as JSON numbers. int64 elements (the `iterations` weight) are read as the
    /// integers they are: through `Double` they would lose digits beyond 2^53 and trap at 2^63.
    static func numbers(_ t: Tensor) -> JSONValue {
        if t.dtype == .int64 {
            return .array((try? t.withUnsafeBufferPointer(as: Int64.self) { $0.map { .int(Int($0)) } }) ?? [])
        }
        return .array(t.doubles.map { .double($0) })
    }

    static func parseVariable(_ v: JSONValue, at path: String, _ customObjects: CustomObjects) throws -> Variable {
        guard let o = v.objectValue else { throw JSONError("\(path): expected an object, got \(v.typeName)") }
        try o.rejectUnknownKeys(allowed: ["name", "path", "shape", "dtype", "value", "constraint"], in: path)
        guard var name = o["name"]?.stringValue else { throw JSONError("\(path).name: expected a string") }
        // Keras 3 variables have a short `name` ("kernel") and a `path` ("dense/kernel"); a Descent
        // variable's name is the path.
        if let given = o["path"], given != .null {
            guard let variablePath = given.stringValue else { throw JSONError("\(path).path: expected a string") }
            name = variablePath
        }
        let shape = try intList(o["shape"], at: "\(path).shape")
        if let bad = shape.first(where: { $0 < 0 }) { throw JSONError("\(path).shape: dimension \(bad) is negative") }
        let count = try elementCount(shape, at: "\(path).shape")
        // Absent or null means float32; anything else must name a floating-point dtype (a number or
        // an unknown name is an error, never silently float32).
        let dtypeField = o["dtype"] ?? .null
        let dtypeName = dtypeField.isNull ? "float32" : dtypeField.stringValue
        guard let dtypeName, let dtype = DType(kerasName: dtypeName), dtype.isFloatingPoint else {
            throw JSONError("\(path).dtype: expected \"float32\" or \"float64\", got \(o["dtype"]?.serialized ?? "null")")
        }
        let values = try numberList(o["value"], at: "\(path).value", dtype: dtype)
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

    /// The element count of `shape` (``Shape/elementCount(_:operation:)``: the one shape-size rule of
    /// every tensor), or an error naming `path` when it is too large or has a negative dimension.
    static func elementCount(_ shape: [Int], at path: String) throws -> Int {
        do { return try Shape.elementCount(shape, operation: path) } catch let error as TensorError {
            throw JSONError(error.description)
        }
    }

    static func parseStep(_ s: JSONValue, at path: String, variables: [Variable]) throws -> [Gradient?] {
        guard let step = s.objectValue else { throw JSONError("\(path): expected an object, got \(s.typeName)") }
        try step.rejectUnknownKeys(allowed: ["gradients"], in: path)
        guard let grads = step["gradients"]?.arrayValue else {
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
            if o["dense"] != nil {
                try o.rejectUnknownKeys(allowed: ["dense"], in: "\(at) (a dense gradient)")
                let values = try numberList(o["dense"], at: "\(at).dense", dtype: v.dtype)
                guard values.count == v.scalarCount else {
                    throw JSONError("\(at).dense: expected \(v.scalarCount) numbers for variable '\(v.name)' of shape \(v.shape), got \(values.count)")
                }
                return .dense(try Tensor(shape: v.shape, scalars: values).cast(to: v.dtype))
            }
            guard o["indices"] != nil || o["values"] != nil else {
                if let key = o.keys.first {
                    throw JSONError("unknown key '\(key)' in \(at) (expected dense, or indices, values and dense_shape)")
                }
                throw JSONError("\(at): expected a 'dense' field or 'indices', 'values' and 'dense_shape'")
            }
            try o.rejectUnknownKeys(allowed: ["indices", "values", "dense_shape"], in: "\(at) (a sparse gradient)")
            let indices = try intList(o["indices"], at: "\(at).indices")
            let denseShape = try o["dense_shape"].map { try intList($0, at: "\(at).dense_shape") } ?? v.shape
            guard denseShape == v.shape else {
                throw JSONError("\(at).dense_shape: \(denseShape) does not match variable '\(v.name)' of shape \(v.shape)")
            }
            guard !denseShape.isEmpty else { throw JSONError("\(at): a sparse gradient needs a variable of rank >= 1") }
            if let bad = indices.first(where: { $0 < 0 || $0 >= denseShape[0] }) {
                throw JSONError("\(at).indices: index \(bad) is out of range [0, \(denseShape[0])) for variable '\(v.name)'")
            }
            let values = try numberList(o["values"], at: "\(at).values", dtype: v.dtype)
            let rowShape = Array(denseShape.dropFirst())
            // The variable exists, so its row size fits; the row count is bounded by the index list.
            let expected = try elementCount([indices.count] + rowShape, at: "\(at).values")
            guard values.count == expected else {
                throw JSONError("\(at).values: expected \(expected) numbers (\(indices.count) rows of shape \(rowShape)), got \(values.count)")
            }
            let t = try Tensor(shape: [indices.count] + rowShape, scalars: values).cast(to: v.dtype)
            return .sparse(try IndexedSlices(values: t, indices: indices, denseShape: denseShape))
        }
    }

    static func intList(_ v: JSONValue?, at path: String) throws -> [Int] {
        guard let items = v?.arrayValue else { throw JSONError("\(path): expected an array of integers") }
        // Only integer literals: a float such as `2.0` or `1e2` is an error, not coerced to an integer.
        return try items.enumerated().map { i, item in
            guard case .int(let n) = item else {
                throw JSONError("\(path)[\(i)]: expected an integer, got \(item.typeName) \(item.serialized)")
            }
            return n
        }
    }

    /// The numbers of a value or gradient list of `dtype`. NaN and ±Infinity are allowed (see
    /// ``Float32Field``); a finite number that a float32 cannot hold is an error naming its element.
    static func numberList(_ v: JSONValue?, at path: String, dtype: DType) throws -> [Double] {
        guard let items = v?.arrayValue else { throw JSONError("\(path): expected an array of numbers") }
        let float32 = dtype == .float32
        return try items.enumerated().map { i, item in
            guard let d = item.doubleValue else { throw JSONError("\(path)[\(i)]: expected a number, got \(item.typeName)") }
            if float32 { try Float32Field.checkData(d, path: "\(path)[\(i)]") }
            return d
        }
    }
}

extension Replay {
    /// The whole `descent replay` command: reads the document's bytes (`path`, or standard input for `-`),
    /// and returns the exit status and what to print. On any error: status 1, nothing on standard output,
    /// one line on standard error naming the input (`standard input` or the path) and the problem.
    ///
    /// Standard input and files go through the same strict parser, so the same bytes give the same result.
    /// `maxOutputNumbers` is ``run(_:customObjects:maxOutputNumbers:)``'s output limit.
    public static func command(path: String, readStandardInput: () throws -> [UInt8],
                               readFile: (String) throws -> [UInt8],
                               maxOutputNumbers: Int = defaultMaxOutputNumbers) -> (status: Int32, stdout: String, stderr: String) {
        let source = path == "-" ? "standard input" : path
        let bytes: [UInt8]
        do {
            bytes = path == "-" ? try readStandardInput() : try readFile(path)
        } catch {
            return (1, "", "error: cannot read \(source): \(oneLine(error))\n")
        }
        do {
            return (0, try run(jsonBytes: bytes, maxOutputNumbers: maxOutputNumbers) + "\n", "")
        } catch {
            return (1, "", "error: \(source): \(oneLine(error))\n")
        }
    }

    private static func oneLine(_ error: any Error) -> String {
        "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
