import DescentAutodiff
@_spi(DescentInternals) import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

// Conv2D and Conv1D against tf_keras 2.21 (Tests/Fixtures/layers/conv_*.json,
// scripts/golden/generate_conv_layers.py): outputs and the gradients of sum(output · r) for the input,
// kernel and bias; configs in both Kerases' key order; the argument and shape errors; training and
// saving a small CNN.

enum ConvFixtures {
    static let cases = KerasFixtures.names(in: "layers").filter { $0.hasPrefix("conv_") && $0 != "conv_configs" }.map { String($0.dropFirst(5)) }
    static func load(_ name: String) throws -> JSONObject { try KerasFixtures.load("layers/conv_\(name).json") }
    static func cases(layers: Set<String>) -> [String] {
        cases.filter { (try? load($0)["layer"]?.stringValue).flatMap { $0 }.map(layers.contains) ?? false }
    }

    static func ints(_ value: JSONValue?) -> [Int] { value?.arrayValue?.compactMap(\.intValue) ?? [] }
    static func size(_ args: JSONObject, _ key: String, _ fallback: Size2D) -> Size2D {
        let v = ints(args[key])
        return v.count == 2 ? Size2D(v[0], v[1]) : fallback
    }
    static func padding(_ args: JSONObject) -> Padding { Padding(rawValue: args["padding"]?.stringValue ?? "valid")! }

    /// The Swift layer of a case's `args` (Keras keyword arguments).
    static func layer(_ c: JSONObject) throws -> Layer {
        let args = c["args"]?.objectValue ?? [:]
        let activation = Activation(kerasName: args["activation"]?.stringValue) ?? .linear
        let useBias = args["use_bias"]?.boolValue ?? true
        switch c["layer"]?.stringValue {
        case "Conv2D":
            return try Conv2D(args["filters"]?.intValue ?? 0, kernelSize: size(args, "kernel_size", 1), strides: size(args, "strides", 1),
                              padding: padding(args), dilationRate: size(args, "dilation_rate", 1), activation: activation, useBias: useBias)
        case "Conv1D":
            return try Conv1D(args["filters"]?.intValue ?? 0, kernelSize: ints(args["kernel_size"]).first ?? 1,
                              strides: ints(args["strides"]).first ?? 1, padding: padding(args),
                              dilationRate: ints(args["dilation_rate"]).first ?? 1, activation: activation, useBias: useBias)
        case "MaxPooling2D":
            return try MaxPooling2D(poolSize: size(args, "pool_size", 2), strides: args["strides"] == nil ? nil : size(args, "strides", 2),
                                    padding: padding(args))
        case "AveragePooling2D":
            return try AveragePooling2D(poolSize: size(args, "pool_size", 2), strides: args["strides"] == nil ? nil : size(args, "strides", 2),
                                        padding: padding(args))
        case "GlobalAveragePooling1D": return GlobalAveragePooling1D(keepdims: args["keepdims"]?.boolValue ?? false)
        case "GlobalAveragePooling2D": return GlobalAveragePooling2D(keepdims: args["keepdims"]?.boolValue ?? false)
        default: throw JSONError("unknown layer \(String(describing: c["layer"]))")
        }
    }

    /// Runs a case and compares the output and every gradient with TensorFlow's.
    static func check(_ name: String, tolerance: Double = 1e-5) throws {
        let c = try load(name)
        let layer = try layer(c)
        let x = try KerasFixtures.tensor(c["input"]), r = try KerasFixtures.tensor(c["r"])
        try layer.buildIfNeeded(inputShape: x.shape)
        #expect(layer.outputShape(forInputShape: x.shape) == ints(c["output_shape"]), "\(name): outputShape")
        if let conv = layer as? Convolution {
            try #require(conv.kernel).assign(try KerasFixtures.tensor(c["kernel"]))
            if let bias = conv.bias { try bias.assign(try KerasFixtures.tensor(c["bias"])) }
            #expect((conv.bias == nil) == (c["bias"] == nil), "\(name): the layer has a bias as Keras")
        }
        let tape = GradientTape()
        let input = tape.watch(x)
        let (y, target) = try tape.record { () throws -> (Tensor, Tensor) in
            let y = try layer(input)
            return (y, try (y * r).sum())
        }
        let expected = try KerasFixtures.tensor(c["output"])
        #expect(y.shape == expected.shape, "\(name): output shape")
        expectWithin(y.doubles, expected.doubles, tolerance, "\(name): output")
        let conv = layer as? Convolution
        let variables = [conv?.kernel, conv?.bias].compactMap { $0 }
        let grads = try tape.gradient(of: target, wrt: [input])
        let expectedInput = try KerasFixtures.tensor(c["grad_input"])
        expectWithin(try #require(grads[0]).denseValue.doubles, expectedInput.doubles, tolerance, "\(name): input gradient")
        if !variables.isEmpty {
            // A second pass for the weights (the tape above was not persistent).
            let tape2 = GradientTape()
            let target2 = try tape2.record { try (layer(x) * r).sum() }
            let wg = try tape2.gradient(of: target2, wrt: variables)
            for (v, g) in zip(variables, wg) {
                let key = "grad_" + (v.name.split(separator: "/").last.map(String.init) ?? "")
                expectWithin(try #require(g).denseValue.doubles, try KerasFixtures.tensor(c[key]).doubles, tolerance, "\(name): \(key)")
            }
        }
    }

    /// `|a − e| ≤ tolerance · max(|e|, 1)` elementwise.
    static func expectWithin(_ a: [Double], _ e: [Double], _ tolerance: Double, _ what: String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
        let (ok, worst) = withinTolerance(a, e, tolerance: tolerance)
        #expect(ok, "\(what): \(worst)", sourceLocation: sourceLocation)
    }

    /// The layer of a config, through the class's `fromKerasConfig` (what the registry calls).
    static func deserialize(_ className: String, _ config: JSONObject) throws -> Layer {
        switch className {
        case "Conv2D": return try Conv2D.fromKerasConfig(config)
        case "Conv1D": return try Conv1D.fromKerasConfig(config)
        case "MaxPooling2D": return try MaxPooling2D.fromKerasConfig(config)
        case "AveragePooling2D": return try AveragePooling2D.fromKerasConfig(config)
        case "GlobalAveragePooling1D": return try GlobalAveragePooling1D.fromKerasConfig(config)
        case "GlobalAveragePooling2D": return try GlobalAveragePooling2D.fromKerasConfig(config)
        default: throw JSONError("no such layer \(className)")
        }
    }

    static let configs: [JSONObject] = {
        ((try? KerasFixtures.load("layers/conv_configs.json"))?["cases"]?.arrayValue ?? []).compactMap(\.objectValue)
    }()
    static let configNames = configs.compactMap { $0["name"]?.stringValue }
    static func config(_ name: String) throws -> JSONObject {
        try #require(configs.first { $0["name"]?.stringValue == name })
    }
}

@Suite struct ConvolutionLayerTests {
    typealias F = ConvFixtures

    @Test func fixturesArePresent() {
        #expect(F.cases(layers: ["Conv2D"]).count >= 10)
        #expect(F.cases(layers: ["Conv1D"]).count >= 4)
        #expect(F.configNames.count >= 13)
    }

    @Test(arguments: ConvFixtures.cases(layers: ["Conv2D", "Conv1D"]))
    func matchesTensorFlow(_ name: String) throws { try F.check(name) }

    /// Every config case: reading tf_keras' config and writing it in both formats gives both Kerases'
    /// configs exactly (keys, order, values).
    @Test(arguments: ConvFixtures.configNames)
    func configsMatchKeras(_ name: String) throws {
        let c = try F.config(name)
        let tk = try #require(c["tf_keras"]?.objectValue), k3 = try #require(c["keras3"]?.objectValue)
        var k3Renamed = k3
        k3Renamed["name"] = tk["name"]
        for source in [tk, k3] {
            let className = try #require(c["layer"]?.stringValue)
            let layer = try F.deserialize(className, source)
            let serializable = try #require(layer as? any KerasSerializableLayer)
            #expect(KerasLayers.classNames.contains(className), "\(className) is registered")
            #expect(type(of: layer).kerasClassName == className)
            var expectedTK = tk, expectedK3 = k3Renamed
            expectedTK["name"] = .string(layer.name)
            expectedK3["name"] = .string(layer.name)
            #expect(try serializable.kerasConfig(KerasFormat.tfKeras).serialized == expectedTK.serialized, "\(name): tf_keras config")
            #expect(try serializable.kerasConfig(KerasFormat.keras3).serialized == expectedK3.serialized, "\(name): Keras 3 config")
        }
    }

    /// Layers built in Swift write Keras' configs.
    @Test func swiftLayersWriteKerasConfigs() throws {
        let a = try Conv2D(8, kernelSize: 3, name: "conv2d_5")
        #expect(try a.kerasConfig(.tfKeras).serialized == F.config("conv2d_default")["tf_keras"]?.objectValue?.serialized)
        let b = try Conv2D(4, kernelSize: Size2D(3, 5), strides: Size2D(2, 1), padding: .same, activation: .relu, useBias: false,
                           kernelInitializer: .heNormal, biasInitializer: .ones, kernelRegularizer: .l1(0.01), biasRegularizer: .l1(0.001),
                           kernelConstraint: MaxNorm(maxValue: 2.0, axis: [0, 1, 2]), name: "conv_a")
        let bTK = try b.kerasConfig(.tfKeras).serialized, eTK = try F.config("conv2d_custom")["tf_keras"]?.objectValue?.serialized
        #expect(bTK == eTK, "\(bTK)\n\(eTK ?? "")")
        #expect(try b.kerasConfig(.keras3).serialized == F.config("conv2d_custom")["keras3"]?.objectValue?.serialized)
        let c = try Conv1D(3, kernelSize: 2, padding: .causal, dilationRate: 2, activation: .sigmoid, name: "tcn")
        #expect(try c.kerasConfig(.tfKeras).serialized == F.config("conv1d_causal")["tf_keras"]?.objectValue?.serialized)
        #expect(try c.kerasConfig(.keras3).serialized == F.config("conv1d_causal")["keras3"]?.objectValue?.serialized)
    }

    @Test func argumentErrorsNameTheLayerAndArgument() throws {
        func field(_ body: () throws -> Any) -> String? {
            do { _ = try body() } catch let KerasError.invalidArgument(field, _) { return field } catch { return "other: \(error)" }
            return nil
        }
        #expect(field { try Conv2D(0, kernelSize: 3) } == "Conv2D.filters")
        #expect(field { try Conv2D(4, kernelSize: Size2D(3, 0), name: "c") } == "Conv2D 'c'.kernelSize.width")
        #expect(field { try Conv2D(4, kernelSize: 3, strides: Size2D(0, 1)) } == "Conv2D.strides.height")
        #expect(field { try Conv2D(4, kernelSize: 3, dilationRate: -1) } == "Conv2D.dilationRate.height")
        #expect(field { try Conv2D(4, kernelSize: 3, strides: 2, dilationRate: 2) } == "Conv2D.dilationRate")
        #expect(field { try Conv2D(4, kernelSize: 3, padding: .causal) } == "Conv2D.padding")
        #expect(field { try Conv2D(4, kernelSize: 3, kernelInitializer: .randomNormal(standardDeviation: -1)) }
            == "Conv2D.kernelInitializer.standardDeviation")
        #expect(field { try Conv1D(-2, kernelSize: 3) } == "Conv1D.filters")
        #expect(field { try Conv1D(2, kernelSize: 0) } == "Conv1D.kernelSize")
        #expect(field { try Conv1D(2, kernelSize: 3, strides: 2, dilationRate: 3) } == "Conv1D.dilationRate")
        #expect(field { try Conv1D(2, kernelSize: 3, biasRegularizer: .l2(-1)) } == "Conv1D.biasRegularizer.l2")
        #expect(field { try Conv2D(4, kernelSize: 3, strides: Size2D(1, 3), dilationRate: Size2D(1, 1)) } == nil)
    }

    @Test func shapeErrorsNameTheLayerAndExpectedShape() throws {
        let conv = try Conv2D(2, kernelSize: 3, name: "c2")
        #expect { try conv(try Tensor.zeros(shape: [2, 5, 5])) } throws: { error in
            "\(error)".contains("Conv2D 'c2'") && "\(error)".contains("[batch, height, width, channels]")
        }
        _ = try conv(try Tensor.zeros(shape: [1, 5, 5, 3]))
        #expect { try conv(try Tensor.zeros(shape: [1, 5, 5, 4])) } throws: { error in
            "\(error)".contains("Conv2D 'c2'") && "\(error)".contains("3 channels")
        }
        #expect { try conv(try Tensor.zeros(shape: [1, 2, 5, 3])) } throws: { error in
            "\(error)".contains("Conv2D 'c2'") && "\(error)".contains("height of 2 is too small")
        }
        let conv1 = try Conv1D(2, kernelSize: 4, dilationRate: 2, name: "c1")
        #expect { try conv1(try Tensor.zeros(shape: [1, 6, 2])) } throws: { error in
            "\(error)".contains("Conv1D 'c1'") && "\(error)".contains("dilated by 2")
        }
        #expect { try conv1(try Tensor.zeros(shape: [1, 6, 2, 1])) } throws: { error in
            "\(error)".contains("Conv1D 'c1'") && "\(error)".contains("[batch, steps, channels]")
        }
        // Not built: call(_:training:) directly.
        #expect(throws: KerasError.self) { try Conv2D(2, kernelSize: 1).call(try Tensor.zeros(shape: [1, 2, 2, 1]), training: false) }
    }

    @Test func configErrorsNameTheField() throws {
        let base = try #require(F.config("conv2d_default")["tf_keras"]?.objectValue)
        func message(_ change: (inout JSONObject) -> Void, _ className: String = "Conv2D") -> String {
            var c = base
            change(&c)
            do { _ = try F.deserialize(className, c) } catch { return "\(error)" }
            return "accepted"
        }
        #expect(message { $0["data_format"] = "channels_first" }.contains("data_format must be \"channels_last\""))
        #expect(message { $0["groups"] = 2 }.contains("groups"))
        #expect(message { $0["padding"] = "causal" }.contains("padding must be one of \"valid\", \"same\""))
        #expect(message { $0["kernel_size"] = .array([3]) }.contains("kernel_size must be a list of 2"))
        #expect(message { $0["strides"] = .array([0, 1]) }.contains("strides"))
        #expect(message { $0["strides"] = .array([2, 2]); $0["dilation_rate"] = .array([2, 2]) }.contains("dilationRate"))
        #expect(message { $0["filters"] = 0 }.contains("filters"))
        #expect(message { $0["activity_regularizer"] = .object(["class_name": "L2", "config": .object(["l2": 0.1])]) }.contains("activity_regularizer"))
        #expect(message { $0["unknown"] = 1 }.contains("unknown"))
        #expect(message({ $0["kernel_size"] = .array([3]); $0["strides"] = .array([1]); $0["dilation_rate"] = .array([1]) }, "Conv1D") == "accepted")
        #expect(message({ $0["kernel_size"] = 3; $0["strides"] = 1; $0["dilation_rate"] = 1; $0["padding"] = "CAUSAL" }, "Conv1D") == "accepted")
    }

    @Test func summaryShowsShapesAndParameters() throws {
        let model = try Sequential([
            Conv2D(16, kernelSize: 3, padding: .same, activation: .relu, name: "c1"), MaxPooling2D(poolSize: 2, name: "p1"),
            Conv2D(32, kernelSize: 3, name: "c2"), GlobalAveragePooling2D(name: "g"), Dense(10, name: "out"),
        ], name: "cnn")
        try model.build(inputShape: [1, 8, 8, 1])
        let text = model.summary()
        #expect(text.contains("c1 (Conv2D)") && text.contains("(None, 8, 8, 16)") && text.contains("160"))
        #expect(text.contains("p1 (MaxPooling2D)") && text.contains("(None, 4, 4, 16)"))
        #expect(text.contains("c2 (Conv2D)") && text.contains("(None, 2, 2, 32)") && text.contains("4640"))
        #expect(text.contains("g (GlobalAveragePooling2D)") && text.contains("(None, 32)"))
        #expect(text.contains("Total params: \(160 + 4640 + 330)"))
    }

    /// A small CNN on an easy task trains with `fit`, and saves and loads through both model files.
    @Test func smallCNNTrainsSavesAndLoads() throws {
        GlobalRandom.setSeed(7)
        // 64 images of 6×6: class 0 has a bright left half, class 1 a bright right half, plus noise.
        var pixels: [Float] = [], labels: [Int64] = []
        var generator = SeededGenerator(seed: 3)
        for i in 0..<64 {
            let label = Int64(i % 2)
            labels.append(label)
            for _ in 0..<6 { for col in 0..<6 {
                let bright = (col < 3) == (label == 0)
                pixels.append((bright ? 1 : 0) + Float.random(in: -0.3...0.3, using: &generator))
            } }
        }
        let x = try Tensor(shape: [64, 6, 6, 1], scalars: pixels), y = Tensor(labels)
        let model = try Sequential([
            Conv2D(4, kernelSize: 3, padding: .same, activation: .relu), MaxPooling2D(poolSize: 2), Flatten(), Dense(2),
        ])
        model.compile(optimizer: try Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let history = try model.fit(x, y, batchSize: 16, epochs: 8, verbose: .silent)
        let losses = try #require(history.history["loss"])
        #expect(losses.last! < losses.first! * 0.7, "loss decreases: \(losses)")
        let predictions = try model.predict(x)
        for file in ["cnn.h5", "cnn.keras"] {
            let path = KerasFileFixtures.temporary(file)
            defer { try? FileManager.default.removeItem(atPath: path) }
            try model.save(toFile: path)
            let loaded = try loadModel(fromFile: path)
            #expect(loaded.layers.map { String(describing: type(of: $0)) } == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"])
            #expect(try loaded.predict(x) == predictions, "\(file): same predictions")
            // Training continues from the file.
            _ = try loaded.fit(x, y, batchSize: 16, epochs: 1, verbose: .silent)
        }
    }
}
