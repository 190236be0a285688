import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// The TensorFlow 2.21 golden fixtures in Tests/Fixtures/losses and Tests/Fixtures/metrics
/// (scripts/golden/generate_losses.py).
enum KerasFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func load(_ path: String) throws -> JSONObject {
        let text = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
        guard let object = try JSONValue(parsing: text).objectValue else { throw JSONError("\(path): not an object") }
        return object
    }

    static func names(in folder: String) -> [String] {
        let path = root.appendingPathComponent(folder).path
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { $0.hasSuffix(".json") && $0 != "INDEX.json" }.map { String($0.dropLast(5)) }.sorted()
    }

    static let lossCases = names(in: "losses")
    static let metricCases = names(in: "metrics")

    /// A tensor from `{"shape": [...], "dtype": "float32" | "int64", "values": [...]}`.
    static func tensor(_ value: JSONValue?) throws -> Tensor {
        guard let o = value?.objectValue, let shape = o["shape"]?.arrayValue?.compactMap(\.intValue),
              let values = o["values"]?.arrayValue, let dtype = o["dtype"]?.stringValue
        else { throw JSONError("not a tensor: \(String(describing: value))") }
        switch dtype {
        case "int64": return try Tensor(shape: shape, scalars: values.map { Int64($0.intValue ?? 0) })
        case "float64": return try Tensor(shape: shape, scalars: values.map { $0.doubleValue ?? .nan })
        default: return try Tensor(shape: shape, scalars: values.map { Float($0.doubleValue ?? .nan) })
        }
    }

    static func doubles(_ value: JSONValue?) -> [Double] { value?.arrayValue?.map { $0.doubleValue ?? .nan } ?? [] }
}

/// `|x − e| ≤ 1e-6 · max(|e|, 1)`: relative 1e-6, with an absolute floor of 1e-6 for tiny values.
func withinTolerance(_ x: [Double], _ e: [Double], tolerance: Double = 1e-6) -> (ok: Bool, worst: String) {
    guard x.count == e.count else { return (false, "count \(x.count) vs \(e.count)") }
    var worst = 0.0, at = ""
    for (i, (a, b)) in zip(x, e).enumerated() {
        let err = abs(a - b) / max(abs(b), 1)
        if !(err <= worst) { worst = err; at = "element \(i): \(a) vs \(b) (scaled error \(err))" }
    }
    return (worst <= tolerance, at)
}

/// The loss object a fixture describes, with the given reduction.
func makeLoss(_ fixture: JSONObject, reduction: LossReduction) throws -> any Loss {
    let spec = try #require(fixture["loss"]?.objectValue)
    let options = spec["options"]?.objectValue ?? JSONObject()
    let fromLogits = options["from_logits"]?.boolValue ?? false
    let smoothing = options["label_smoothing"]?.doubleValue ?? 0
    switch spec["class_name"]?.stringValue {
    case "MeanSquaredError": return MeanSquaredError(reduction: reduction)
    case "MeanAbsoluteError": return MeanAbsoluteError(reduction: reduction)
    case "BinaryCrossentropy":
        return BinaryCrossentropy(fromLogits: fromLogits, labelSmoothing: smoothing, reduction: reduction)
    case "CategoricalCrossentropy":
        return CategoricalCrossentropy(fromLogits: fromLogits, labelSmoothing: smoothing, reduction: reduction)
    case "SparseCategoricalCrossentropy":
        return SparseCategoricalCrossentropy(fromLogits: fromLogits, reduction: reduction)
    case let other: throw JSONError("unknown loss \(String(describing: other))")
    }
}

@Suite struct LossTests {
    @Test func fixturesArePresent() {
        #expect(KerasFixtures.lossCases.count >= 20)
    }

    /// Every reduction × weighting: the loss value and its gradient with respect to `y_pred`.
    @Test(arguments: KerasFixtures.lossCases)
    func matchesTensorFlow(_ name: String) throws {
        let fixture = try KerasFixtures.load("losses/\(name).json")
        let yTrue = try KerasFixtures.tensor(fixture["y_true"])
        let yPred = try KerasFixtures.tensor(fixture["y_pred"])
        let weight = try KerasFixtures.tensor(fixture["sample_weight"])
        let runs = try #require(fixture["runs"]?.arrayValue)
        #expect(runs.count == 6)
        for run in runs.compactMap(\.objectValue) {
            let reduction = try #require(LossReduction(kerasName: run["reduction"]?.stringValue ?? ""))
            let weighted = run["weighted"]?.boolValue ?? false
            let loss = try makeLoss(fixture, reduction: reduction)
            let tape = GradientTape()
            let watched = tape.watch(yPred)
            let value = try tape.record { try loss(yTrue, watched, sampleWeight: weighted ? weight : nil) }
            let gradient = try #require(try tape.gradient(of: value, wrt: watched)).denseValue
            let label = "\(name) \(reduction) weighted=\(weighted)"

            #expect(value.shape == run["shape"]?.arrayValue?.compactMap(\.intValue), "\(label): shape")
            #expect(value.dtype == .float32)
            let v = withinTolerance(value.doubles, KerasFixtures.doubles(run["value"]))
            #expect(v.ok, "\(label) value: \(v.worst)")
            #expect(gradient.shape == yPred.shape)
            let g = withinTolerance(gradient.doubles, KerasFixtures.doubles(run["gradient"]))
            #expect(g.ok, "\(label) gradient: \(g.worst)")
        }
    }

    /// The per-sample functions (`tf.keras.losses.binary_crossentropy(...)`, ...), without squeezing.
    @Test(arguments: KerasFixtures.lossCases)
    func perSampleFunctionMatchesTensorFlow(_ name: String) throws {
        let fixture = try KerasFixtures.load("losses/\(name).json")
        let yTrue = try KerasFixtures.tensor(fixture["y_true"])
        let yPred = try KerasFixtures.tensor(fixture["y_pred"])
        let options = fixture["loss"]?.objectValue?["options"]?.objectValue ?? JSONObject()
        let fromLogits = options["from_logits"]?.boolValue ?? false
        let smoothing = options["label_smoothing"]?.doubleValue ?? 0
        let result: Tensor
        switch fixture["function"]?.stringValue {
        case "mean_squared_error": result = try Losses.meanSquaredError(yTrue, yPred)
        case "mean_absolute_error": result = try Losses.meanAbsoluteError(yTrue, yPred)
        case "binary_crossentropy":
            result = try Losses.binaryCrossentropy(yTrue, yPred, fromLogits: fromLogits, labelSmoothing: smoothing)
        case "categorical_crossentropy":
            result = try Losses.categoricalCrossentropy(yTrue, yPred, fromLogits: fromLogits, labelSmoothing: smoothing)
        case "sparse_categorical_crossentropy":
            result = try Losses.sparseCategoricalCrossentropy(yTrue, yPred, fromLogits: fromLogits)
        case let other: throw JSONError("unknown function \(String(describing: other))")
        }
        let expected = try #require(fixture["per_sample"]?.objectValue)
        #expect(result.shape == expected["shape"]?.arrayValue?.compactMap(\.intValue))
        let check = withinTolerance(result.doubles, KerasFixtures.doubles(expected["values"]))
        #expect(check.ok, "\(name) per-sample: \(check.worst)")
    }

    /// `serialize()` writes what `tf.keras.losses.serialize` writes, and deserializing it round-trips.
    @Test(arguments: KerasFixtures.lossCases)
    func configsMatchKeras(_ name: String) throws {
        let fixture = try KerasFixtures.load("losses/\(name).json")
        let configs = try #require(fixture["configs"]?.arrayValue)
        #expect(configs.count == 3)
        for expected in configs {
            let reduction = try #require(LossReduction(
                kerasName: expected.objectValue?["config"]?.objectValue?["reduction"]?.stringValue ?? ""))
            let loss = try makeLoss(fixture, reduction: reduction)
            #expect(JSONValue.object(loss.serialize()) == expected, "\(loss.serialize().serialized)")
            let restored = try Losses.deserialize(expected)
            #expect(JSONValue.object(restored.serialize()) == expected)
        }
    }

    @Test func reductionNames() throws {
        #expect(LossReduction.allCases.map(\.kerasName) == ["sum_over_batch_size", "sum", "none"])
        #expect(LossReduction(kerasName: "auto") == .sumOverBatchSize)
        #expect(LossReduction(kerasName: "mean") == nil)
        #expect(MeanSquaredError().reduction == .sumOverBatchSize)
        // Keras' default config says "auto".
        let fromKeras = try Losses.deserialize(JSONValue(parsing: """
            {"module": "keras.losses", "class_name": "BinaryCrossentropy", "config": {"reduction": "auto", \
            "name": "bce_1", "from_logits": true, "label_smoothing": 0.1, "axis": -1, "fn": "binary_crossentropy"}, \
            "registered_name": null}
            """))
        let bce = try #require(fromKeras as? BinaryCrossentropy)
        #expect(bce.reduction == .sumOverBatchSize && bce.name == "bce_1" && bce.fromLogits && bce.labelSmoothing == 0.1)
        #expect(throws: KerasError.self) {
            try Losses.deserialize(JSONValue(parsing: #"{"class_name": "MeanSquaredError", "config": {"reduction": "mean"}}"#))
        }
        #expect(throws: KerasError.self) {
            try Losses.deserialize(JSONValue(parsing: #"{"class_name": "MeanSquaredError", "config": {"bogus": 1}}"#))
        }
    }

    @Test func lookupByKerasName() throws {
        #expect(try Losses.get("mse") is MeanSquaredError)
        #expect(try Losses.get("MSE").name == "mean_squared_error")
        #expect(try Losses.get("mae") is MeanAbsoluteError)
        #expect(try Losses.get("MeanAbsoluteError").name == "mean_absolute_error")
        #expect(try Losses.get("bce") is BinaryCrossentropy)
        #expect(try Losses.get("categorical_crossentropy") is CategoricalCrossentropy)
        let scce = try Losses.get("sparse_categorical_crossentropy")
        #expect(scce is SparseCategoricalCrossentropy && scce.name == "sparse_categorical_crossentropy")
        #expect(try Losses.get("SparseCategoricalCrossentropy").reduction == .sumOverBatchSize)
        #expect(try Losses.deserialize("binary_crossentropy") is BinaryCrossentropy)
        do {
            _ = try Losses.get("sum_stuff")
            Issue.record("expected an error")
        } catch let error as KerasError {
            #expect(error.description.contains("sum_stuff"))
        }
    }

    @Test func defaultNamesAndClassNames() {
        let losses: [any Loss] = [MeanSquaredError(), MeanAbsoluteError(), BinaryCrossentropy(),
                                  CategoricalCrossentropy(), SparseCategoricalCrossentropy()]
        #expect(losses.map(\.name) == ["mean_squared_error", "mean_absolute_error", "binary_crossentropy",
                                       "categorical_crossentropy", "sparse_categorical_crossentropy"])
        #expect(losses.map { type(of: $0).kerasClassName } == [
            "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy", "CategoricalCrossentropy",
            "SparseCategoricalCrossentropy"])
        #expect(MeanSquaredError(name: "custom").config["name"] == "custom")
    }

    // MARK: Errors

    /// Runs `body`, expects a `TensorError`, and checks that its message names both shapes.
    func expectShapeError(_ shapes: [[Int]], _ body: () throws -> Tensor, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try body()
            Issue.record("expected a TensorError", sourceLocation: sourceLocation)
        } catch let error as TensorError {
            for shape in shapes {
                #expect(error.description.contains("\(shape)"), "\(error) should name \(shape)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func mismatchedShapesThrowNamingBothShapes() throws {
        let a = try Tensor.zeros(shape: [4, 3]), b = Tensor.ones(like: try Tensor.zeros(shape: [4, 2]))
        expectShapeError([[4, 3], [4, 2]]) { try MeanSquaredError()(a, b) }
        expectShapeError([[4, 3], [4, 2]]) { try MeanAbsoluteError()(a, b) }
        expectShapeError([[4, 3], [4, 2]]) { try BinaryCrossentropy(fromLogits: true)(a, b) }
        expectShapeError([[4, 3], [4, 2]]) { try BinaryCrossentropy()(a, b) }
        expectShapeError([[4, 3], [4, 2]]) { try CategoricalCrossentropy()(a, b) }
        expectShapeError([[4, 3], [4, 2]]) { try CategoricalCrossentropy(fromLogits: true)(a, b) }
        // Sparse: 3 labels for 4 rows.
        let labels = Tensor([0, 1, 2] as [Int64])
        expectShapeError([[3], [4, 2]]) { try SparseCategoricalCrossentropy(fromLogits: true)(labels, b) }
        expectShapeError([[3, 1], [4, 2]]) {
            try SparseCategoricalCrossentropy()(labels.reshaped(to: [3, 1]), b)
        }
        // A sample weight that fits neither the batch nor the losses.
        let weight = Tensor([1, 2, 3] as [Float])
        expectShapeError([[4], [3]]) { try MeanSquaredError()(a, a, sampleWeight: weight) }
        expectShapeError([[4], [3]]) { try Losses.computeWeightedLoss(Tensor([1, 2, 3, 4] as [Float]), sampleWeight: weight) }
    }

    @Test func sparseLabelOutOfRangeThrows() throws {
        let logits = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(throws: TensorError.self) { try SparseCategoricalCrossentropy(fromLogits: true)(Tensor([0, 3] as [Int64]), logits) }
        #expect(throws: TensorError.self) { try SparseCategoricalCrossentropy(fromLogits: true)(Tensor([-1, 0] as [Int64]), logits) }
        #expect(throws: TensorError.self) { try MeanSquaredError()(logits, Tensor([1, 2] as [Int64])) }
    }

    // MARK: Behaviour

    @Test func emptyBatchGivesZeroForSumOverBatchSize() throws {
        let empty = try Tensor.zeros(shape: [0, 3])
        #expect(try MeanSquaredError()(empty, empty).item() == 0)
        #expect(try MeanSquaredError(reduction: .none)(empty, empty).shape == [0])
    }

    @Test func float64InputsGiveFloat64Losses() throws {
        let yTrue = try Tensor(shape: [2, 2], scalars: [0, 1, 1, 0] as [Double])
        let yPred = try Tensor(shape: [2, 2], scalars: [0.2, 0.7, 0.9, 0.4] as [Double])
        let mse = try MeanSquaredError()(yTrue, yPred)
        #expect(mse.dtype == .float64)
        #expect(abs(try mse.item() - (0.04 + 0.09 + 0.01 + 0.16) / 4) < 1e-15)
        let bce = try BinaryCrossentropy()(yTrue, yPred)
        let expected = -(log(0.8 + 1e-7) + log(0.7 + 1e-7) + log(0.9 + 1e-7) + log(0.6 + 1e-7)) / 4
        #expect(abs(try bce.item() - expected) < 1e-12)
    }

    @Test func customLossThroughLossFunctionWrapper() throws {
        let loss = LossFunctionWrapper(name: "l1_sum", reduction: .sum) { yTrue, yPred in
            try (yPred - yTrue).abs().sum(axes: [-1])
        }
        let value = try loss(Tensor([1, 2, 3] as [Float]), try Tensor(shape: [3, 1], scalars: [2, 2, 5] as [Float]))
        #expect(try value.item() == 3)  // y_pred [3,1] squeezed to [3]: a scalar per-sample loss of 1 + 0 + 2
        #expect(loss.config == ["reduction": "sum", "name": "l1_sum"])
    }

    /// The softmax crossentropy gradient is TensorFlow's backprop output, also while an unrelated tape is
    /// recording (only an outer tape that tracks the logits switches to the differentiable form).
    @Test func crossentropyGradientDoesNotDependOnUnrelatedTapes() throws {
        var generator = SeededGenerator(seed: 3)
        let logits = Variable(try Tensor.randomNormal(shape: [37, 40], using: &generator), name: "logits")
        let labels = try Tensor(shape: [37], scalars: (0..<37).map { Int64($0 % 40) })
        let onehot = try Tensor.oneHot(labels, depth: 40, dtype: .float32)
        func gradients() throws -> [Tensor] {
            let tape = GradientTape()
            let loss = try tape.record { () throws -> Tensor in
                let sparse = try Losses.sparseSoftmaxCrossEntropyWithLogits(labels: labels, logits: logits.value)
                let dense = try Losses.softmaxCrossEntropyWithLogits(labels: onehot, logits: logits.value)
                return try (sparse + dense * 0.5).sum()
            }
            return try tape.gradient(of: loss, wrt: [logits]).map { try #require($0).denseValue }
        }
        let plain = try gradients()
        let unrelated = GradientTape()
        let nested = try unrelated.record { try gradients() }
        #expect(plain == nested)
    }

    @Test func lossesAreDifferentiableTwice() throws {
        // d²/dx² of the sparse crossentropy from logits is softmax'(x): positive on the diagonal.
        let outer = GradientTape(), inner = GradientTape()
        let x = outer.watch(inner.watch(try Tensor(shape: [1, 3], scalars: [0.5, -1, 2] as [Float])))
        let (firstDerivative, firstElement) = try outer.record { () throws -> (Tensor, Tensor) in
            let value = try inner.record { try SparseCategoricalCrossentropy(fromLogits: true)(Tensor([1] as [Int64]), x) }
            let d = try #require(try inner.gradient(of: value, wrt: x)).denseValue
            return (d, try d.slice(start: [0, 0], size: [1, 1]))
        }
        let p = try x.softmax(axis: -1).doubles
        #expect(withinTolerance(firstDerivative.doubles, [p[0], p[1] - 1, p[2]]).ok)
        let second = try #require(try outer.gradient(of: firstElement, wrt: x))
        // The whole row: d(p₀)/dxⱼ = p₀(δ₀ⱼ − pⱼ).
        #expect(try withinTolerance(second.denseValue.doubles, [p[0] * (1 - p[0]), -p[0] * p[1], -p[0] * p[2]]).ok)
    }
}
