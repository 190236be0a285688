import DescentAutodiff
@testable import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// Activation, Softmax, ReLU and Reshape against tf_keras 2.21 (Tests/Fixtures/layers).
@Suite struct CoreLayerTests {
    @Test func fixturesArePresent() {
        #expect(LayerFixtures.coreCases.count >= 15)
    }

    @Test(arguments: LayerFixtures.coreCases)
    func matchesTensorFlow(_ name: String) throws {
        try LayerFixtures.checkNumbers(name)
    }

    @Test(arguments: LayerFixtures.coreCases)
    func configsMatchKeras(_ name: String) throws {
        try LayerFixtures.checkConfigs(name)
    }

    @Test func activationLayerMapsKerasNames() throws {
        let layer = try ActivationLayer("relu")
        #expect(layer.activation == .relu)
        #expect(ActivationLayer.kerasClassName == "Activation")
        #expect(layer.name.hasPrefix("activation") && !layer.name.hasPrefix("activation_layer"))
        #expect(ActivationLayer(.tanh, name: "a").name == "a")
        for activation in Activation.allCases { #expect(try ActivationLayer(activation.rawValue).activation == activation) }
        do {
            _ = try ActivationLayer("gelu", name: "act")
            Issue.record("gelu accepted")
        } catch let error as KerasError {
            #expect("\(error)".contains("Activation 'act'.activation") && "\(error)".contains("gelu"), "\(error)")
        }
        var config = try layer.kerasConfig(.tfKeras)
        config["activation"] = .string("swish")
        #expect(throws: KerasError.self) { try ActivationLayer.fromKerasConfig(config) }
    }

    @Test func reluNamesAndErrors() throws {
        #expect(try ReLU().name.hasPrefix("re_lu"))
        for (maxValue, slope, threshold) in [(-1.0, 0.0, 0.0), (nil, -0.5, 0.0), (nil, 0.0, -1.0), (.nan, 0.0, 0.0), (nil, .infinity, 0.0)] as [(Double?, Double, Double)] {
            #expect(throws: KerasError.self) { try ReLU(maxValue: maxValue, negativeSlope: slope, threshold: threshold) }
        }
        do {
            _ = try ReLU(negativeSlope: -1, name: "r")
            Issue.record("negative slope accepted")
        } catch let error as KerasError {
            #expect("\(error)".contains("ReLU 'r'.negativeSlope"), "\(error)")
        }
    }

    @Test func softmaxAxisErrors() throws {
        let layer = Softmax(axis: 2, name: "sm")
        do {
            _ = try layer(Tensor.zeros(shape: [2, 3]))
            Issue.record("axis 2 of a rank-2 input accepted")
        } catch let error as KerasError {
            #expect("\(error)".contains("Softmax 'sm'.axis"), "\(error)")
        }
        let y = try Softmax(axis: 0)(Tensor(rows: [[0, 0], [0, 0]] as [[Float]]))
        #expect(try y.scalars(as: Float.self) == [0.5, 0.5, 0.5, 0.5])
    }

    @Test func reshapeShapesAndErrors() throws {
        let layer = try Reshape(targetShape: [2, -1], name: "rs")
        #expect(layer.outputShape(forInputShape: [5, 6]) == [5, 2, 3])
        #expect(try layer(Tensor.zeros(shape: [5, 6])).shape == [5, 2, 3])
        do {
            _ = try layer(Tensor.zeros(shape: [5, 7]))
            Issue.record("7 elements reshaped to [2, -1]")
        } catch let error as TensorError {
            #expect("\(error)".contains("Reshape 'rs'") && "\(error)".contains("7 elements"), "\(error)")
        }
        let fixed = try Reshape(targetShape: [3, 2], name: "rs2")
        #expect(throws: TensorError.self) { try fixed(Tensor.zeros(shape: [2, 5])) }
        #expect(try fixed(Tensor.zeros(shape: [0, 6])).shape == [0, 3, 2])
        for bad in [[0], [-1, -1], [2, -2]] {
            do {
                _ = try Reshape(targetShape: bad, name: "bad")
                Issue.record("target shape \(bad) accepted")
            } catch let error as KerasError {
                #expect("\(error)".contains("Reshape 'bad'.targetShape"), "\(error)")
            }
        }
        var config = try fixed.kerasConfig(.tfKeras)
        config["target_shape"] = .array([.int(2), .string("x")])
        #expect(throws: KerasError.self) { try Reshape.fromKerasConfig(config) }
    }

    /// A model with the core layers saves its config and loads back to the same predictions.
    @Test func sequentialRoundTripsThroughItsConfig() throws {
        let model = try Sequential([try Dense(6, kernelInitializer: .glorotUniform(seed: 9)), try Reshape(targetShape: [2, 3]),
                                Softmax(axis: 1), try Reshape(targetShape: [-1]), try ReLU(maxValue: 0.4, negativeSlope: 0.1),
                                ActivationLayer(.tanh)])
        let x = try Tensor(shape: [4, 5], scalars: (0..<20).map { Float(sin(Double($0))) })
        let expected = try model(x)
        for format in [KerasFormat.tfKeras, .keras3] {
            let copy = try Sequential.fromKerasModelConfig(.object(try model.kerasModelConfig(format)), field: "test")
            try copy.setWeights(model.getWeights())
            #expect(try copy(x) == expected, "\(format)")
            #expect(copy.layers.map { type(of: $0).kerasClassName } == ["Dense", "Reshape", "Softmax", "Reshape", "ReLU", "Activation"])
        }
    }
}
