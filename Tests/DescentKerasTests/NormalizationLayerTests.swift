import DescentAutodiff
import DescentHDF5
@testable import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// The tf_keras 2.21 / Keras 3.15.1 golden values in Tests/Fixtures/layers
/// (scripts/golden/generate_norm_layers.py).
enum LayerFixtures {
    /// The cases generate_norm_layers.py wrote (its INDEX.json; the folder also holds the conv_ cases).
    static let all: [String] = ((try? KerasFixtures.load("layers/INDEX.json"))?["cases"]?.arrayValue ?? [])
        .compactMap { $0.objectValue?["case"]?.stringValue }.sorted()
    static let normalizationCases = all.filter { $0.hasPrefix("bn_") || $0.hasPrefix("ln_") }
    static let coreCases = all.filter { !($0.hasPrefix("bn_") || $0.hasPrefix("ln_")) }

    static func config(_ f: JSONObject, _ keras: String, _ state: String) throws -> JSONObject {
        try #require(f["configs"]?.objectValue?[keras]?.objectValue?[state]?.objectValue)
    }

    static func expectClose(_ value: Tensor, _ expected: JSONValue?, _ label: String, tolerance: Double) throws {
        let e = try KerasFixtures.tensor(expected)
        #expect(value.shape == e.shape, "\(label): shape \(value.shape) vs \(e.shape)")
        let c = withinTolerance(value.doubles, e.doubles, tolerance: tolerance)
        #expect(c.ok, "\(label): \(c.worst)")
    }

    /// The fixture's layer (from its tf_keras config), built for the input, with the fixture's weights;
    /// then, in inference and in training mode: the output, the gradients of `sum(output · r)` with
    /// respect to the input and the scale/offset variables, and the weights after the training call.
    static func checkNumbers(_ name: String, tolerance: Double = 2e-6) throws {
        let f = try KerasFixtures.load("layers/\(name).json")
        let className = try #require(f["class_name"]?.stringValue)
        let layer = try KerasLayers.deserialize(className, try config(f, "tf_keras", "unbuilt"))
        let x = try KerasFixtures.tensor(f["input"]), r = try KerasFixtures.tensor(f["r"])
        try layer.buildIfNeeded(inputShape: x.shape)
        let weights = try (f["weights"]?.arrayValue ?? []).map { try KerasFixtures.tensor($0) }
        #expect(layer.weights.map { $0.name + ":0" } == f["weight_names"]?.arrayValue?.compactMap(\.stringValue))
        #expect(layer.trainableWeights.map { $0.name + ":0" } == f["trainable_weight_names"]?.arrayValue?.compactMap(\.stringValue))
        #expect(layer.trainable == !(f["frozen"]?.boolValue ?? false))
        for (v, w) in zip(layer.weights, weights) { try v.assign(w) }
        let params = layer.weights.filter { $0.name.hasSuffix("/gamma") || $0.name.hasSuffix("/beta") }
        for mode in ["inference", "training"] {
            let expected = try #require(f[mode]?.objectValue)
            let tape = GradientTape(persistent: true)
            let input = tape.watch(x)
            let (y, loss) = try tape.record { () throws -> (Tensor, Tensor) in
                let y = try layer(input, training: mode == "training")
                return (y, try (y * r).sum())
            }
            try expectClose(y, expected["output"], "\(name) \(mode) output", tolerance: tolerance)
            let dx = try #require(try tape.gradient(of: loss, wrt: input)).denseValue
            try expectClose(dx, expected["grad_input"], "\(name) \(mode) input gradient", tolerance: tolerance * 5)
            let grads = try tape.gradient(of: loss, wrt: params)
            let expectedGrads = expected["grad_params"]?.arrayValue ?? []
            #expect(grads.count == expectedGrads.count)
            for (i, (g, e)) in zip(grads, expectedGrads).enumerated() {
                try expectClose(try #require(g).denseValue, e, "\(name) \(mode) gradient of \(params[i].name)", tolerance: tolerance * 5)
            }
            if mode == "training" {
                let after = expected["weights_after"]?.arrayValue ?? []
                #expect(after.count == layer.weights.count)
                for (v, e) in zip(layer.weights, after) {
                    try expectClose(v.untrackedValue, e, "\(name) \(v.name) after one training call", tolerance: tolerance)
                }
            }
        }
    }

    /// `get_config()` of the unbuilt and the built layer in both Kerases, read and written back.
    static func checkConfigs(_ name: String) throws {
        let f = try KerasFixtures.load("layers/\(name).json")
        let className = try #require(f["class_name"]?.stringValue)
        let x = try KerasFixtures.tensor(f["input"])
        for keras in ["tf_keras", "keras3"] {
            let format: KerasFormat = keras == "tf_keras" ? .tfKeras : .keras3
            let unbuilt = try config(f, keras, "unbuilt"), built = try config(f, keras, "built")
            let layer = try KerasLayers.deserialize(className, unbuilt)
            #expect(type(of: layer).kerasClassName == className)
            let serializable = try #require(layer as? any KerasSerializableLayer)
            #expect(comparable(try serializable.kerasConfig(format), keras) == comparable(unbuilt, keras), "\(name) \(keras) unbuilt")
            try layer.buildIfNeeded(inputShape: x.shape)
            #expect(comparable(try serializable.kerasConfig(format), keras) == comparable(built, keras), "\(name) \(keras) built")
            // The built config (tf_keras' `axis: [1]`) reads back to the same layer.
            let again = try KerasLayers.deserialize(className, built)
            try again.buildIfNeeded(inputShape: x.shape)
            let againConfig = try #require(again as? any KerasSerializableLayer).kerasConfig(format)
            #expect(comparable(againConfig, keras) == comparable(built, keras), "\(name) \(keras) built, read back")
        }
    }

    /// The config, as JSON, without Keras 3's regularizer factors: Descent writes them rounded to float32
    /// for both Kerases (KerasConfigParts.regularizer), Keras 3.15 keeps L2's as given.
    static func comparable(_ config: JSONObject, _ keras: String) -> JSONValue {
        var c = config
        if keras == "keras3" {
            for key in ["gamma_regularizer", "beta_regularizer"] where c[key].map({ !$0.isNull }) ?? false { c[key] = .string("regularizer") }
        }
        return .object(c)
    }
}

@Suite struct NormalizationLayerTests {
    @Test func fixturesArePresent() {
        #expect(LayerFixtures.normalizationCases.count >= 20)
    }

    @Test(arguments: LayerFixtures.normalizationCases)
    func matchesTensorFlow(_ name: String) throws {
        try LayerFixtures.checkNumbers(name)
    }

    @Test(arguments: LayerFixtures.normalizationCases)
    func configsMatchKeras(_ name: String) throws {
        try LayerFixtures.checkConfigs(name)
    }

    /// tf_keras' fused kernel (rank 4 and 5 with the channel axis first or last) takes the unbiased batch
    /// variance into the moving variance; the other inputs the biased one. The fixtures pin both.
    @Test func everyIndexedCaseIsTested() throws {
        #expect(LayerFixtures.all.count == 37)
        #expect(LayerFixtures.normalizationCases.count + LayerFixtures.coreCases.count == 37)
    }

    @Test func fusedStatisticsFollowTFKeras() throws {
        let index = try KerasFixtures.load("layers/INDEX.json")
        for entry in index["cases"]?.arrayValue?.compactMap(\.objectValue) ?? [] where entry["class_name"]?.stringValue == "BatchNormalization" {
            let name = entry["case"]?.stringValue ?? ""
            let f = try KerasFixtures.load("layers/\(name).json")
            let layer = try #require(try KerasLayers.deserialize("BatchNormalization", try LayerFixtures.config(f, "tf_keras", "unbuilt")) as? BatchNormalization)
            try layer.buildIfNeeded(inputShape: try KerasFixtures.tensor(f["input"]).shape)
            #expect(layer.usesFusedStatistics == entry["fused"]?.boolValue, "\(name)")
        }
    }

    @Test func defaultsAndNames() throws {
        let bn = try BatchNormalization()
        #expect(bn.axis == -1 && bn.momentum == 0.99 && bn.epsilon == 0.001 && bn.center && bn.scale)
        #expect(bn.name.hasPrefix("batch_normalization"))
        #expect(try LayerNormalization().name.hasPrefix("layer_normalization"))
        _ = try bn(Tensor.zeros(shape: [2, 3]))
        #expect(bn.weights.map { $0.name.split(separator: "/").last.map(String.init) } == ["gamma", "beta", "moving_mean", "moving_variance"])
        #expect(bn.trainableWeights.count == 2 && bn.nonTrainableWeights.count == 2)
        #expect(bn.nonTrainableWeights.allSatisfy { !$0.trainable })
        #expect(bn.parameterCount == 12)
        let noParams = try BatchNormalization(center: false, scale: false)
        _ = try noParams(Tensor.zeros(shape: [2, 3]))
        #expect(noParams.trainableWeights.isEmpty && noParams.weights.count == 2)
    }

    @Test func argumentErrorsNameTheLayer() throws {
        for momentum in [-0.1, 1.5, .nan, .infinity] {
            #expect(throws: KerasError.self) { try BatchNormalization(momentum: momentum) }
        }
        do {
            _ = try BatchNormalization(momentum: 2, name: "bn")
            Issue.record("momentum 2 accepted")
        } catch let error as KerasError {
            #expect("\(error)".contains("BatchNormalization 'bn'.momentum"), "\(error)")
        }
        for epsilon in [0, -1e-3, .nan, .infinity] {
            #expect(throws: KerasError.self) { try BatchNormalization(epsilon: epsilon) }
            #expect(throws: KerasError.self) { try LayerNormalization(epsilon: epsilon) }
        }
        do {
            _ = try LayerNormalization(epsilon: 0)
            Issue.record("epsilon 0 accepted")
        } catch let error as KerasError {
            #expect("\(error)".contains("LayerNormalization.epsilon"), "\(error)")
        }
        #expect(throws: KerasError.self) { try BatchNormalization(gammaInitializer: .randomNormal(standardDeviation: -1)) }
    }

    @Test func axisAndShapeErrors() throws {
        let bn = try BatchNormalization(axis: 2, name: "bn_axis")
        do {
            _ = try bn(Tensor.zeros(shape: [4, 3]))
            Issue.record("axis 2 of a rank-2 input accepted")
        } catch let error as KerasError {
            #expect("\(error)".contains("BatchNormalization 'bn_axis'.axis"), "\(error)")
        }
        #expect(throws: KerasError.self) { try LayerNormalization(axis: -3)(Tensor.zeros(shape: [4, 3])) }
        #expect(throws: KerasError.self) { try BatchNormalization(axis: -4)(Tensor.zeros(shape: [2, 2, 2, 2])) }

        for layer: Layer in [try BatchNormalization(name: "bn_f"), try LayerNormalization(name: "ln_f")] {
            _ = try layer(Tensor.zeros(shape: [4, 3]), training: true)
            for shape in [[4, 5], [2, 4, 3]] {
                do {
                    _ = try layer(Tensor.zeros(shape: shape), training: true)
                    Issue.record("\(layer.name): input \(shape) accepted after building for [4, 3]")
                } catch let error as TensorError {
                    #expect("\(error)".contains("'\(layer.name)'") && "\(error)".contains("3 features"), "\(error)")
                }
            }
        }
        #expect(throws: KerasError.self) { try BatchNormalization().call(Tensor.zeros(shape: [2, 2]), training: true) }
    }

    @Test func configErrors() throws {
        let base = try BatchNormalization(name: "bn_c").kerasConfig(.keras3)
        for (key, value) in [("renorm", JSONValue.bool(true)), ("synchronized", .bool(true)), ("axis", .array([.int(1), .int(2)])),
                             ("momentum", .string("high")), ("virtual_batch_size", .int(2)), ("fused", .bool(false)), ("bogus", .int(1))] {
            var c = base
            c[key] = value
            #expect(throws: KerasError.self, "\(key)") { try BatchNormalization.fromKerasConfig(c) }
        }
        var bad = base
        bad["momentum"] = .double(3)
        #expect(throws: KerasError.self) { try BatchNormalization.fromKerasConfig(bad) }
        var ln = try LayerNormalization(name: "ln_c").kerasConfig(.keras3)
        ln["rms_scaling"] = .bool(true)
        #expect(throws: KerasError.self) { try LayerNormalization.fromKerasConfig(ln) }
    }

    /// The moving statistics change once per training call, off the tape, and never in inference or
    /// when the layer is frozen (then the call is in inference mode).
    @Test func movingStatisticsUpdateOncePerTrainingCall() throws {
        let bn = try BatchNormalization(momentum: 0.5)
        let x = try Tensor(rows: [[1, 2], [3, 6]] as [[Float]])
        _ = try bn(x)
        let mean = try #require(bn.movingMean), variance = try #require(bn.movingVariance)
        #expect(try mean.untrackedValue.scalars(as: Float.self) == [0, 0])
        let tape = GradientTape()
        let y = try tape.record { try bn(x, training: true) }
        #expect(try mean.untrackedValue.scalars(as: Float.self) == [1, 2])  // 0.5 · 0 + 0.5 · [2, 4]
        #expect(try variance.untrackedValue.scalars(as: Float.self) == [1, 2.5])  // 0.5 · 1 + 0.5 · [1, 4]
        #expect(!tape.watchedVariables.contains { $0 === mean || $0 === variance })
        let grads = try tape.gradient(of: y.sum(), wrt: [mean, variance])
        #expect(grads.allSatisfy { $0 == nil })
        _ = try bn(x, training: false)
        #expect(try mean.untrackedValue.scalars(as: Float.self) == [1, 2])
        bn.trainable = false
        let frozen = try bn(x, training: true)
        #expect(try mean.untrackedValue.scalars(as: Float.self) == [1, 2])
        #expect(frozen == (try bn(x, training: false)))
    }

    /// `[Dense, BatchNormalization, Dense]` trains with `fit`: the loss falls, the moving statistics move,
    /// and they are neither trainable weights nor optimizer slots.
    @Test func sequentialWithBatchNormalizationTrains() throws {
        let bn = try BatchNormalization(name: "bn_fit")
        let model = try Sequential([try Dense(8, activation: .relu, kernelInitializer: .glorotUniform(seed: 3)), bn,
                                try Dense(1, kernelInitializer: .glorotUniform(seed: 4))])
        let n = 64
        let xs = (0..<(n * 3)).map { Float(sin(Double($0) * 0.7)) * 2 + 1 }
        let x = try Tensor(shape: [n, 3], scalars: xs)
        let targets: [Float] = (0..<n).map { (i: Int) -> Float in
            let a: Float = xs[3 * i], b: Float = xs[3 * i + 1], c: Float = xs[3 * i + 2]
            return a - 2 * b + 0.5 * c
        }
        let y = try Tensor(shape: [n, 1], scalars: targets)
        model.compile(optimizer: try Adam(learningRate: 0.02), loss: MeanSquaredError())
        try model.build(inputShape: [1, 3])
        let meanBefore = try #require(bn.movingMean).untrackedValue
        let history = try model.fit(x, y, batchSize: 16, epochs: 15, verbose: .silent, seed: 1)
        let losses = history["loss"]
        #expect(losses.count == 15 && losses.last! < losses.first! * 0.5, "\(losses)")
        #expect(try #require(bn.movingMean).untrackedValue != meanBefore)
        let moving = [try #require(bn.movingMean), try #require(bn.movingVariance)]
        #expect(!model.trainableWeights.contains { w in moving.contains { $0 === w } })
        #expect(model.nonTrainableWeights.count == 2 && model.nonTrainableWeights.allSatisfy { w in moving.contains { $0 === w } })
        #expect(model.trainableWeights.count == 6)
        #expect(!(model.optimizer?.weights ?? []).contains { $0.name.contains("moving") })
        #expect(model.summary().contains("Non-trainable params: 16"))
    }

    /// A Sequential with BatchNormalization saved as `.keras` and `.h5` loads with the same weights
    /// (gamma, beta, moving_mean, moving_variance, Keras' order) and the same inference predictions.
    @Test func saveAndLoadKeepsTheMovingStatistics() throws {
        let model = try Sequential([try Dense(4, kernelInitializer: .glorotUniform(seed: 5)), try BatchNormalization(momentum: 0.8, name: "bn_s"),
                                try LayerNormalization(name: "ln_s"), try Dense(2, kernelInitializer: .glorotUniform(seed: 6))])
        let x = try Tensor(shape: [6, 3], scalars: (0..<18).map { Float(cos(Double($0))) * 3 })
        model.compile(optimizer: try SGD(learningRate: 0.1), loss: MeanSquaredError())
        _ = try model.fit(x, try Tensor.zeros(shape: [6, 2]), batchSize: 3, epochs: 2, verbose: .silent, shuffle: false)
        let expected = try model.predict(x)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-norm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for file in ["m.keras", "m.h5"] {
            let path = dir.appendingPathComponent(file).path
            try model.save(toFile: path)
            let loaded = try loadModel(fromFile: path)
            #expect(loaded.layers.map { type(of: $0).kerasClassName } == ["Dense", "BatchNormalization", "LayerNormalization", "Dense"])
            #expect(zip(loaded.getWeights(), model.getWeights()).allSatisfy { $0 == $1 }, "\(file)")
            #expect(try loaded.predict(x) == expected, "\(file)")
            let bn = try #require(loaded.layers[1] as? BatchNormalization)
            #expect(bn.momentum == 0.8 && bn.nonTrainableWeights.count == 2)
        }
        let file = try HDF5File(readingFrom: dir.appendingPathComponent("m.h5").path)
        #expect(try file.attribute("weight_names", of: "/model_weights/bn_s")?.stringList
                == ["bn_s/gamma:0", "bn_s/beta:0", "bn_s/moving_mean:0", "bn_s/moving_variance:0"])
    }
}
