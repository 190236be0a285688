import DescentKeras
import DescentTensor
import Testing

// Every layer constructor argument a caller can get wrong is a thrown `KerasError` naming the layer and
// the argument. Before, `Dense(0)`, `Embedding(inputDim: 0, ...)` and `Dropout(1)` trapped on a
// `precondition`, calling an unbuilt layer trapped on a `preconditionFailure`, and bad initializer or
// regularizer parameters were accepted silently (mirrored or NaN weights, a penalty that rewards size).

/// Runs `body`, expecting a `KerasError.invalidArgument` for `field` whose message contains `fragment`.
private func expectArgumentError(
    _ field: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: KerasError.self, sourceLocation: sourceLocation) { try body() }
    guard let error else { return }
    guard case let .invalidArgument(actualField, message) = error else {
        Issue.record("expected invalidArgument, got \(error)", sourceLocation: sourceLocation)
        return
    }
    #expect(actualField == field, sourceLocation: sourceLocation)
    #expect(message.contains(fragment), "\"\(message)\" should mention \"\(fragment)\"", sourceLocation: sourceLocation)
    #expect(error.description.contains(field), sourceLocation: sourceLocation)
}

@Suite struct LayerArgumentTests {
    @Test func denseUnitsMustBePositive() throws {
        expectArgumentError("Dense.units", "expected a positive integer, got 0") { _ = try Dense(0) }
        expectArgumentError("Dense.units", "got -3") { _ = try Dense(-3, activation: .relu) }
        expectArgumentError("Dense 'hidden'.units", "got 0") { _ = try Dense(0, name: "hidden") }
        #expect(try Dense(1).units == 1)
    }

    @Test func embeddingDimensionsMustBePositive() throws {
        expectArgumentError("Embedding.inputDim", "got 0") { _ = try Embedding(inputDim: 0, outputDim: 3) }
        expectArgumentError("Embedding.outputDim", "got -1") { _ = try Embedding(inputDim: 10, outputDim: -1) }
        expectArgumentError("Embedding 'words'.inputDim", "got -2") { _ = try Embedding(inputDim: -2, outputDim: 4, name: "words") }
        let ok = try Embedding(inputDim: 10, outputDim: 3)
        #expect(ok.inputDim == 10 && ok.outputDim == 3)
    }

    @Test(arguments: [1.0, 1.5, -0.1, Double.nan, Double.infinity])
    func dropoutRateMustBeInZeroToOne(rate: Double) {
        expectArgumentError("Dropout.rate", "expected a value in [0, 1)") { _ = try Dropout(rate) }
    }

    @Test func dropoutAcceptsTheHalfOpenRange() throws {
        #expect(try Dropout(0).rate == 0)
        #expect(try Dropout(0.999, seed: 1).rate == 0.999)
        expectArgumentError("Dropout 'drop'.rate", "got 2.0") { _ = try Dropout(2, name: "drop") }
    }

    @Test func initializerParametersAreChecked() throws {
        expectArgumentError("Dense.kernelInitializer.standardDeviation", "finite number >= 0, got -1.0") {
            _ = try Dense(2, kernelInitializer: .randomNormal(standardDeviation: -1))
        }
        expectArgumentError("Dense.biasInitializer.mean", "got nan") {
            _ = try Dense(2, biasInitializer: .truncatedNormal(mean: .nan))
        }
        expectArgumentError("Dense.kernelInitializer.standardDeviation", "got inf") {
            _ = try Dense(2, kernelInitializer: .truncatedNormal(standardDeviation: .infinity))
        }
        expectArgumentError("Dense.kernelInitializer.min", "1.0 is greater than max 0.0") {
            _ = try Dense(2, kernelInitializer: .randomUniform(min: 1, max: 0))
        }
        expectArgumentError("Dense.kernelInitializer.max", "got inf") {
            _ = try Dense(2, kernelInitializer: .randomUniform(max: .infinity))
        }
        expectArgumentError("Embedding.embeddingsInitializer.min", "got -inf") {
            _ = try Embedding(inputDim: 3, outputDim: 2, embeddingsInitializer: .randomUniform(min: -.infinity))
        }
        // The initializer checks itself too, wherever it is used.
        expectArgumentError("Initializer.standardDeviation", "got -0.5") {
            _ = try Initializer.randomNormal(standardDeviation: -0.5).makeValue(shape: [2])
        }
        #expect(try Initializer.randomNormal(standardDeviation: 0).makeValue(shape: [3]).doubles == [0, 0, 0])
    }

    @Test func regularizerFactorsAreChecked() throws {
        expectArgumentError("Dense.kernelRegularizer.l2", "finite number >= 0, got -0.1") {
            _ = try Dense(2, kernelRegularizer: .l2(-0.1))
        }
        expectArgumentError("Dense.biasRegularizer.l1", "got nan") { _ = try Dense(2, biasRegularizer: .l1(.nan)) }
        expectArgumentError("Dense 'out'.kernelRegularizer.l1", "got inf") {
            _ = try Dense(2, kernelRegularizer: Regularizer(l1: .infinity), name: "out")
        }
        expectArgumentError("Embedding.embeddingsRegularizer.l2", "got -1.0") {
            _ = try Embedding(inputDim: 3, outputDim: 2, embeddingsRegularizer: .l2(-1))
        }
        // A factor changed after construction is caught when the penalty is taken.
        var changed = Regularizer.l2(0.1)
        changed.l2 = -2
        expectArgumentError("Regularizer.l2", "got -2.0") { _ = try changed.penalty(try Tensor.ones(shape: [2])) }
        #expect(try Regularizer.l2(0.5).penalty(try Tensor.ones(shape: [2])).item() == 1)
    }

    @Test func callingAnUnbuiltLayerDirectlyThrows() throws {
        let x = try Tensor.ones(shape: [2, 3])
        let dense = try Dense(4, name: "direct")
        expectArgumentError("Dense 'direct'", "before the layer was built") { _ = try dense.call(x, training: false) }
        let embedding = try Embedding(inputDim: 5, outputDim: 2, name: "lookup")
        expectArgumentError("Embedding 'lookup'", "before the layer was built") {
            _ = try embedding.call(try Tensor.zeros(shape: [2], dtype: .int64), training: false)
        }
        #expect(try dense(x).shape == [2, 4])  // calling the layer itself builds it
    }

    @Test func flattenOutputShapeOfAnInvalidShapeIsUnknown() {
        #expect(Flatten().outputShape(forInputShape: [8, 2, 3]) == [8, 6])
        #expect(Flatten().outputShape(forInputShape: [8, 1 << 62, 4]) == [8, -1])
    }
}
