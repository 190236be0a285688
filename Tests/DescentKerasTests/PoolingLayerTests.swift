@_spi(DescentInternals) import DescentKeras
import DescentOptimizers
import DescentTensor
import Testing

// MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D/2D against tf_keras 2.21
// (Tests/Fixtures/layers/conv_*.json): outputs and input gradients (first maximum for ties, valid-count
// division at `same` borders), output shapes, the argument and shape errors.

@Suite struct PoolingLayerTests {
    typealias F = ConvFixtures
    static let poolingCases = ConvFixtures.cases(layers: ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D"])

    @Test func fixturesArePresent() {
        #expect(Self.poolingCases.count >= 11)
        #expect(Self.poolingCases.contains("maxpool2d_ties") && Self.poolingCases.contains("avgpool2d_same_odd"))
    }

    @Test(arguments: poolingCases)
    func matchesTensorFlow(_ name: String) throws { try F.check(name) }

    @Test func defaults() throws {
        let max = try MaxPooling2D()
        #expect(max.poolSize == 2 && max.strides == 2 && max.padding == .valid)
        let avg = try AveragePooling2D(poolSize: Size2D(3, 2))
        #expect(avg.strides == Size2D(3, 2))
        #expect(max.outputShape(forInputShape: [4, 7, 6, 3]) == [4, 3, 3, 3])
        #expect(try MaxPooling2D(poolSize: 3, strides: 2, padding: .same).outputShape(forInputShape: [1, 5, 8, 2]) == [1, 3, 4, 2])
        #expect(GlobalAveragePooling2D(keepdims: true).outputShape(forInputShape: [2, 3, 4, 5]) == [2, 1, 1, 5])
        #expect(GlobalAveragePooling1D().outputShape(forInputShape: [2, 3, 5]) == [2, 5])
        #expect(GlobalAveragePooling1D().name.hasPrefix("global_average_pooling1d"))
        #expect(try MaxPooling2D().name.hasPrefix("max_pooling2d"))
    }

    @Test func argumentErrorsNameTheLayerAndArgument() throws {
        func field(_ body: () throws -> Any) -> String? {
            do { _ = try body() } catch let KerasError.invalidArgument(field, _) { return field } catch { return "other: \(error)" }
            return nil
        }
        #expect(field { try MaxPooling2D(poolSize: 0) } == "MaxPooling2D.poolSize.height")
        #expect(field { try MaxPooling2D(poolSize: 2, strides: Size2D(1, 0), name: "p") } == "MaxPooling2D 'p'.strides.width")
        #expect(field { try AveragePooling2D(poolSize: Size2D(2, -1)) } == "AveragePooling2D.poolSize.width")
        #expect(field { try AveragePooling2D(padding: .causal) } == "AveragePooling2D.padding")
    }

    @Test func shapeErrorsNameTheLayerAndExpectedShape() throws {
        let pool = try MaxPooling2D(poolSize: 3, name: "mp")
        #expect { try pool(try Tensor.zeros(shape: [1, 4, 4])) } throws: { error in
            "\(error)".contains("MaxPooling2D 'mp'") && "\(error)".contains("[batch, height, width, channels]")
        }
        #expect { try pool(try Tensor.zeros(shape: [1, 2, 4, 1])) } throws: { error in
            "\(error)".contains("MaxPooling2D 'mp'") && "\(error)".contains("too small")
        }
        // `same` padding accepts an input smaller than the window.
        #expect(try MaxPooling2D(poolSize: 3, padding: .same)(try Tensor.ones(shape: [1, 2, 2, 1])).shape == [1, 1, 1, 1])
        let g1 = GlobalAveragePooling1D(name: "g1")
        #expect { try g1(try Tensor.zeros(shape: [1, 4, 4, 1])) } throws: { error in
            "\(error)".contains("GlobalAveragePooling1D 'g1'") && "\(error)".contains("[batch, steps, channels]")
        }
        #expect { try GlobalAveragePooling2D(name: "g2")(try Tensor.zeros(shape: [1, 0, 4, 1])) } throws: { error in
            "\(error)".contains("GlobalAveragePooling2D 'g2'") && "\(error)".contains("non-empty")
        }
    }

    @Test func configErrorsNameTheField() throws {
        let base = try #require(F.config("maxpool2d_custom")["tf_keras"]?.objectValue)
        func message(_ className: String, _ change: (inout JSONObject) -> Void) -> String {
            var c = base
            change(&c)
            do { _ = try F.deserialize(className, c) } catch { return "\(error)" }
            return "accepted"
        }
        #expect(message("MaxPooling2D") { $0["data_format"] = "channels_first" }.contains("data_format must be \"channels_last\""))
        #expect(message("AveragePooling2D") { $0["pool_size"] = .array([2, 0]) }.contains("pool_size"))
        #expect(message("AveragePooling2D") { $0["padding"] = "full" }.contains("padding must be one of"))
        #expect(message("MaxPooling2D") { $0["strides"] = .null }.contains("accepted"))
        let g = try #require(F.config("global_avg_pool2d_keepdims")["tf_keras"]?.objectValue)
        var bad = g
        bad["data_format"] = "channels_first"
        #expect(throws: KerasError.self) { try F.deserialize("GlobalAveragePooling2D", bad) }
        bad = g
        bad["keepdims"] = 1
        #expect(throws: KerasError.self) { try F.deserialize("GlobalAveragePooling1D", bad) }
    }

    /// Keras' default strides (`None`) are the pool size when a config omits them.
    @Test func configWithoutStridesUsesThePoolSize() throws {
        let layer = try MaxPooling2D.fromKerasConfig(["name": "p", "pool_size": .array([3, 2]), "strides": .null])
        #expect(layer.strides == Size2D(3, 2))
    }
}
