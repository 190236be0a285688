import DescentKeras
import DescentOptimizers
import DescentTensor
import Testing

@Suite struct MetricTests {
    @Test func fixturesArePresent() {
        #expect(KerasFixtures.metricCases.count >= 6)
    }

    /// Batches fed with `update`, `result()` after each, a `reset()`, one more batch; and the config.
    @Test(arguments: KerasFixtures.metricCases)
    func matchesTensorFlow(_ name: String) throws {
        let fixture = try KerasFixtures.load("metrics/\(name).json")
        let serialized = try #require(fixture["metric"])
        let isMean = serialized.objectValue?["class_name"] == "Mean"
        let metric: Mean = isMean ? try Mean() : try Metrics.deserialize(serialized)
        #expect(JSONValue.object(metric.serialize()) == serialized, "\(metric.serialize().serialized)")

        for (i, step) in (fixture["steps"]?.arrayValue ?? []).compactMap(\.objectValue).enumerated() {
            if step["reset"] == true {
                metric.reset()
                #expect(try metric.result().item() == 0)
                continue
            }
            let yPred = try KerasFixtures.tensor(step["y_pred"])
            let weight = try step["sample_weight"].flatMap { $0.isNull ? nil : try KerasFixtures.tensor($0) }
            if isMean {
                try metric.update(yPred, sampleWeight: weight)
            } else {
                let wrapper = try #require(metric as? MeanMetricWrapper)
                try wrapper.update(yTrue: try KerasFixtures.tensor(step["y_true"]), yPred: yPred, sampleWeight: weight)
            }
            let result = metric.result()
            #expect(result.dtype == .float32 && result.shape == [])
            let expected = try #require(step["result"]?.doubleValue)
            let got = try result.item()
            #expect(withinTolerance([got], [expected]).ok, "\(name) step \(i): \(got) vs \(expected)")
        }
    }

    @Test func namesAndLookup() throws {
        #expect(try Accuracy().name == "accuracy")
        #expect(try BinaryAccuracy().name == "binary_accuracy")
        #expect(try BinaryAccuracy(threshold: 0.7).threshold == 0.7)
        #expect(try CategoricalAccuracy().name == "categorical_accuracy")
        #expect(try SparseCategoricalAccuracy().name == "sparse_categorical_accuracy")
        #expect(try Mean().name == "mean")
        #expect(try Metrics.get("accuracy").name == "accuracy")
        #expect(try Metrics.get("acc").name == "acc")
        #expect(try Metrics.get("sparse_categorical_accuracy").name == "sparse_categorical_accuracy")
        #expect(try Metrics.get("SparseCategoricalAccuracy") is SparseCategoricalAccuracy)
        #expect(try Metrics.get("BinaryAccuracy") is BinaryAccuracy)
        #expect(throws: KerasError.self) { try Metrics.get("precision_at_7") }
        #expect(try BinaryAccuracy(threshold: 0.3).config == ["name": "binary_accuracy", "dtype": "float32", "threshold": 0.3])
    }

    @Test func lookedUpFunctionsMatchTheirClasses() throws {
        let labels = Tensor([2, 1, 0, 1] as [Int64])
        let logits = try Tensor(shape: [4, 3], scalars: [0.1, 0.9, 0.8, 0.05, 0.95, 0, 1, 0, 0, 0.3, 0.2, 0.5] as [Float])
        let byName = try Metrics.get("sparse_categorical_accuracy")
        let byClass = try SparseCategoricalAccuracy()
        try byName.update(yTrue: labels, yPred: logits)
        try byClass.update(yTrue: labels, yPred: logits)
        #expect(try byName.result().item() == 0.5)
        #expect(try byClass.result().item() == 0.5)
    }

    /// `compile(metrics=["accuracy"])` picks binary, sparse or categorical accuracy from the shapes.
    @Test func compiledAccuracyFollowsTheShapes() throws {
        // Binary: y_pred's last dimension is 1; 0.6 > 0.5 counts as 1.
        let binary = try Metrics.compiled("accuracy", yTrueShape: [3, 1], yPredShape: [3, 1])
        try binary.update(yTrue: try Tensor(shape: [3, 1], scalars: [1, 0, 0] as [Float]),
                          yPred: try Tensor(shape: [3, 1], scalars: [0.6, 0.4, 0.7] as [Float]))
        #expect(binary.name == "accuracy")
        #expect(abs(try binary.result().item() - 2.0 / 3) < 1e-7)
        // Sparse: labels of a lower rank.
        let sparse = try Metrics.compiled("acc", yTrueShape: [2], yPredShape: [2, 3])
        try sparse.update(yTrue: Tensor([2, 0] as [Int64]),
                          yPred: try Tensor(shape: [2, 3], scalars: [0, 0, 1, 0, 1, 0] as [Float]))
        #expect(try sparse.result().item() == 0.5)
        // Categorical: one-hot labels.
        let categorical = try Metrics.compiled("Accuracy", yTrueShape: [2, 3], yPredShape: [2, 3])
        try categorical.update(yTrue: try Tensor(shape: [2, 3], scalars: [0, 0, 1, 0, 1, 0] as [Float]),
                               yPred: try Tensor(shape: [2, 3], scalars: [0, 0, 1, 0, 1, 0] as [Float]))
        #expect(try categorical.result().item() == 1)
    }

    @Test func mismatchedShapesThrowNamingBothShapes() throws {
        let accuracy = try Accuracy()
        do {
            try accuracy.update(yTrue: try Tensor.zeros(shape: [4, 2]), yPred: try Tensor.zeros(shape: [4, 3]))
            Issue.record("expected an error")
        } catch let error as TensorError {
            #expect(error.description.contains("[4, 2]") && error.description.contains("[4, 3]"))
        }
        let sparse = try SparseCategoricalAccuracy()
        do {
            try sparse.update(yTrue: Tensor([0, 1, 2] as [Int64]), yPred: try Tensor.zeros(shape: [4, 3]))
            Issue.record("expected an error")
        } catch let error as TensorError {
            #expect(error.description.contains("[3]") && error.description.contains("[4, 3]"))
        }
        let mean = try Mean()
        do {
            try mean.update(Tensor([1, 2, 3, 4] as [Float]), sampleWeight: Tensor([1, 2, 3] as [Float]))
            Issue.record("expected an error")
        } catch let error as TensorError {
            #expect(error.description.contains("[4]") && error.description.contains("[3]"))
        }
        // A failed update leaves the state alone.
        #expect(try mean.result().item() == 0)
    }

    @Test func metricsIgnoreGradientTapes() throws {
        let metric = try Mean()
        #expect(try metric.result().item() == 0)  // divide_no_nan before any update
        try metric.update(Tensor([1, 3, 5, 7] as [Float]))
        #expect(try metric.result().item() == 4)
        metric.reset()
        try metric.update(Tensor([1, 3, 5, 7] as [Float]), sampleWeight: Tensor([1, 1, 0, 0] as [Float]))
        #expect(try metric.result().item() == 2)
        #expect(throws: KerasError.self) { try Mean(dtype: .int64) }
    }
}
