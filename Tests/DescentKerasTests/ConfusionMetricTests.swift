import DescentKeras
import DescentOptimizers
import DescentTensor
import Testing

/// The fixture cases of `metrics_extra/<file>.json` by name (scripts/golden/generate_metrics_extra.py).
private func extraCases(_ file: String) -> [String: JSONObject] {
    let cases = (try? KerasFixtures.load("metrics_extra/\(file).json"))?["cases"]?.arrayValue ?? []
    var byName: [String: JSONObject] = [:]
    for c in cases { if let o = c.objectValue, let name = o["case"]?.stringValue { byName[name] = o } }
    return byName
}

private let confusionFixtures = extraCases("confusion_metrics")
private let topKFixtures = extraCases("top_k_accuracy")

/// The numbers of a fixture result: one number or a list.
private func numbers(_ value: JSONValue?) -> [Double] {
    if let d = value?.doubleValue { return [d] }
    return value?.arrayValue?.compactMap(\.doubleValue) ?? []
}

/// Feeds a fixture's steps to `metric`, comparing the result after each and the final state.
private func replay(_ fixture: JSONObject, _ metric: any TrainingMetric, tolerance: Double) throws {
    let name = fixture["case"]?.stringValue ?? "?"
    let steps = (fixture["steps"]?.arrayValue ?? []).compactMap(\.objectValue)
    #expect(!steps.isEmpty)
    for (i, step) in steps.enumerated() {
        if step["reset"] == true {
            metric.reset()
            #expect(metric.stateValues.allSatisfy { $0 == 0 }, "\(name) step \(i)")
        } else {
            let weight = try step["sample_weight"].flatMap { $0.isNull ? nil : try KerasFixtures.tensor($0) }
            try metric.update(yTrue: try KerasFixtures.tensor(step["y_true"]), yPred: try KerasFixtures.tensor(step["y_pred"]),
                              sampleWeight: weight)
        }
        let expected = numbers(step["result"])
        let check = withinTolerance(metric.resultValues, expected, tolerance: tolerance)
        #expect(check.ok, "\(name) step \(i): \(metric.resultValues) vs \(expected): \(check.worst)")
        let tensor = metric.result()
        #expect(tensor.dtype == .float32)
        #expect(tensor.shape == (step["result"]?.arrayValue == nil ? [] : [expected.count]), "\(name) step \(i)")
        #expect(withinTolerance(tensor.doubles, expected, tolerance: tolerance).ok, "\(name) step \(i) result()")
        if let state = step["state"] {
            let check = withinTolerance(metric.stateValues, numbers(state), tolerance: tolerance)
            #expect(check.ok, "\(name) step \(i) state: \(check.worst)")
        }
    }
}

@Suite struct ConfusionMetricTests {
    @Test func fixturesArePresent() {
        #expect(confusionFixtures.count >= 40)
        #expect(topKFixtures.count >= 7)
    }

    /// Precision, Recall and AUC: built from the fixture's config (which they write back exactly), fed
    /// the batches, compared with tf_keras after every batch.
    @Test(arguments: confusionFixtures.keys.sorted())
    func matchesTensorFlow(_ name: String) throws {
        let fixture = try #require(confusionFixtures[name])
        let className = try #require(fixture["class_name"]?.stringValue)
        let config = try #require(fixture["config"]?.objectValue)
        let metric: any TrainingMetric = try Metrics.deserialize(.object(["class_name": .string(className), "config": .object(config)]))
        #expect(type(of: metric).kerasClassName == className)
        #expect(metric.config == config, "\(metric.config.serialized)")
        try replay(fixture, metric, tolerance: 2e-6)
    }

    @Test(arguments: topKFixtures.keys.sorted())
    func topKMatchesTensorFlow(_ name: String) throws {
        let fixture = try #require(topKFixtures[name])
        let className = try #require(fixture["class_name"]?.stringValue)
        let config = try #require(fixture["config"]?.objectValue)
        let metric: MeanMetricWrapper = try Metrics.deserialize(.object(["class_name": .string(className), "config": .object(config)]))
        #expect(metric.config == config, "\(metric.config.serialized)")
        try replay(fixture, metric, tolerance: 1e-6)
    }

    @Test func initializersWriteKerasConfigs() throws {
        #expect(try Precision().config == ["name": "precision", "dtype": "float32", "thresholds": .null, "top_k": .null, "class_id": .null])
        #expect(try Recall(threshold: 0.4, classId: 2).config
                == ["name": "recall", "dtype": "float32", "thresholds": 0.4, "top_k": .null, "class_id": 2])
        #expect(try Precision(thresholds: [0.4], topK: 3).config
                == ["name": "precision", "dtype": "float32", "thresholds": [0.4], "top_k": 3, "class_id": .null])
        let auc = try AUC(curve: .pr, thresholds: [0.7, 0.2], multiLabel: true, numLabels: 2, labelWeights: [0.1, 1])
        #expect(auc.config == ["name": "auc", "dtype": "float32", "num_thresholds": 4, "curve": "PR",
                               "summation_method": "interpolation", "multi_label": true, "num_labels": 2,
                               "label_weights": [.double(Double(Float(0.1))), 1.0], "from_logits": false,
                               "thresholds": [0.2, 0.7]])
        #expect(auc.thresholds == [-1e-7, 0.2, 0.7, 1 + 1e-7])
        #expect(try AUC(numThresholds: 5).thresholds == [-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7])
        #expect(try TopKCategoricalAccuracy(k: 3).config == ["name": "top_k_categorical_accuracy", "dtype": "float32", "k": 3])
        #expect(try SparseTopKCategoricalAccuracy().config == ["name": "sparse_top_k_categorical_accuracy", "dtype": "float32", "k": 5])
        // Serialized and read back.
        for metric in [try Precision(thresholds: [0.2, 0.9], classId: 1) as any TrainingMetric, auc, try Recall(threshold: 0.3),
                       try TopKCategoricalAccuracy(k: 2, name: "t")] {
            let again: any TrainingMetric = try Metrics.deserialize(.object(metric.serialize()))
            #expect(again.config == metric.config)
            #expect(type(of: again).kerasClassName == type(of: metric).kerasClassName)
        }
        // NumPy's form of label_weights, as Keras' new-format serialization writes it.
        let numpy = try JSONValue(parsing: #"""
            {"class_name": "AUC", "config": {"multi_label": true, "label_weights": {"class_name": "__numpy__",
             "config": {"value": [1.0, 2.0], "dtype": "float32"}}}}
            """#)
        let fromNumpy = try #require(try Metrics.deserialize(numpy) as? AUC)
        #expect(fromNumpy.labelWeights == [1, 2])
    }

    @Test func lookupByName() throws {
        #expect(try Metrics.get("auc") is AUC)
        #expect(try Metrics.get("AUC") is AUC)
        #expect(try Metrics.get("precision") is Precision)
        #expect(try Metrics.get("Recall") is Recall)
        #expect(try Metrics.get("TopKCategoricalAccuracy") is TopKCategoricalAccuracy)
        #expect(try Metrics.get("SparseTopKCategoricalAccuracy") is SparseTopKCategoricalAccuracy)
        let topK = try #require(try Metrics.get("top_k_categorical_accuracy") as? MeanMetricWrapper)
        #expect(topK.kerasFunctionName == "top_k_categorical_accuracy" && topK.name == "top_k_categorical_accuracy")
        let sparse = try #require(try Metrics.compiled("sparse_top_k_categorical_accuracy", yTrueShape: [1], yPredShape: [1, 9]) as? MeanMetricWrapper)
        #expect(sparse.kerasFunctionName == "sparse_top_k_categorical_accuracy")
        #expect(try Metrics.compiled("auc", yTrueShape: [1, 1], yPredShape: [1, 1]) is AUC)
        for name in ["auc", "precision", "recall", "top_k_categorical_accuracy", "AUC"] { #expect(Metrics.knownNames.contains(name)) }
        // The typed lookups: a MeanMetricWrapper where one is needed, an error naming both classes otherwise.
        let wrapper: MeanMetricWrapper = try Metrics.get("accuracy")
        #expect(wrapper.name == "accuracy")
        let compiled: MeanMetricWrapper = try Metrics.compiled("accuracy", yTrueShape: [1], yPredShape: [1, 3])
        #expect(compiled.kerasFunctionName == "sparse_categorical_accuracy")
        do {
            let _: MeanMetricWrapper = try Metrics.get("auc")
            Issue.record("expected an error")
        } catch let error as KerasError {
            #expect(error.description.contains("AUC") && error.description.contains("MeanMetricWrapper"))
        }
    }

    @Test func constructorErrorsNameTheArgument() throws {
        func field(_ make: () throws -> Any) -> String? {
            do { _ = try make(); return nil } catch let KerasError.invalidArgument(field, message) {
                return "\(field): \(message)"
            } catch { return "other: \(error)" }
        }
        #expect(field { try Precision(thresholds: [0.5, 1.5]) }?.hasPrefix("thresholds: precision") == true)
        #expect(field { try Recall(thresholds: [-0.1], name: "r") }?.hasPrefix("thresholds: r") == true)
        #expect(field { try Precision(thresholds: [.nan]) }?.hasPrefix("thresholds") == true)
        #expect(field { try Precision(thresholds: []) }?.hasPrefix("thresholds") == true)
        #expect(field { try Precision(topK: 0) }?.hasPrefix("topK") == true)
        #expect(field { try Recall(classId: -1) }?.hasPrefix("classId") == true)
        #expect(field { try Precision(dtype: .int64) }?.hasPrefix("dtype") == true)
        #expect(field { try AUC(numThresholds: 1) }?.hasPrefix("numThresholds: auc") == true)
        #expect(field { try AUC(thresholds: [0.5, 2]) }?.hasPrefix("thresholds") == true)
        #expect(field { try AUC(numLabels: 3) }?.hasPrefix("numLabels") == true)
        #expect(field { try AUC(multiLabel: true, numLabels: 0) }?.hasPrefix("numLabels") == true)
        #expect(field { try AUC(labelWeights: [1, -1]) }?.hasPrefix("labelWeights") == true)
        #expect(field { try AUC(multiLabel: true, numLabels: 2, labelWeights: [1, 2, 3]) }?.hasPrefix("labelWeights") == true)
        #expect(field { try TopKCategoricalAccuracy(k: 0) }?.hasPrefix("k") == true)
        #expect(field { try SparseTopKCategoricalAccuracy(k: -2) }?.hasPrefix("k") == true)
        // Explicit thresholds make numThresholds irrelevant, as in Keras.
        #expect(try AUC(numThresholds: 0, thresholds: [0.5]).numThresholds == 3)
    }

    @Test func configErrorsNameTheField() throws {
        func message(_ text: String) -> String? {
            do { _ = try Metrics.deserialize(JSONValue(parsing: text)) as any TrainingMetric; return nil } catch { return "\(error)" }
        }
        #expect(message(#"{"class_name": "AUC", "config": {"curve": "XYZ"}}"#)?.contains("curve") == true)
        #expect(message(#"{"class_name": "AUC", "config": {"summation_method": "trapezoid"}}"#)?.contains("summation_method") == true)
        #expect(message(#"{"class_name": "AUC", "config": {"num_thresholds": 2.5}}"#)?.contains("num_thresholds") == true)
        #expect(message(#"{"class_name": "AUC", "config": {"label_weights": [1, "a"]}}"#)?.contains("label_weights") == true)
        #expect(message(#"{"class_name": "AUC", "config": {"multi_label": 1}}"#)?.contains("multi_label") == true)
        #expect(message(#"{"class_name": "AUC", "config": {"num_thresholds": 1}}"#)?.contains("numThresholds") == true)
        #expect(message(#"{"class_name": "Precision", "config": {"thresholds": "high"}}"#)?.contains("thresholds") == true)
        #expect(message(#"{"class_name": "Precision", "config": {"thresholds": [0.5, null]}}"#)?.contains("thresholds") == true)
        #expect(message(#"{"class_name": "Recall", "config": {"top_k": "2"}}"#)?.contains("top_k") == true)
        #expect(message(#"{"class_name": "Recall", "config": {"threshold": 0.5}}"#)?.contains("threshold") == true)
        #expect(message(#"{"class_name": "TopKCategoricalAccuracy", "config": {"k": 1.5}}"#)?.contains("k") == true)
        #expect(message(#"{"class_name": "AUC", "config": {"curve": "pr", "summation_method": "Minoring"}}"#) == nil)
    }

    @Test func updateErrorsNameTheMetricAndLeaveTheState() throws {
        let precision = try Precision(name: "p")
        try precision.update(yTrue: Tensor([1, 0] as [Float]), yPred: Tensor([0.9, 0.8] as [Float]))
        let before = precision.stateValues
        do {
            try precision.update(yTrue: Tensor([1, 0, 1, 1] as [Float]), yPred: Tensor([0.1, 0.2, 0.3, 0.4, 0.5] as [Float]))
            Issue.record("expected an error")
        } catch let error as TensorError {
            #expect(error.description.contains("p") && error.description.contains("[4]") && error.description.contains("[5]"))
        }
        // A weight that does not broadcast.
        #expect(throws: TensorError.self) {
            try precision.update(yTrue: Tensor([1, 0, 1] as [Float]), yPred: Tensor([0.1, 0.2, 0.3] as [Float]),
                                 sampleWeight: Tensor([1, 2] as [Float]))
        }
        #expect(precision.stateValues == before)

        let labels = try Tensor(shape: [2, 3], scalars: [1, 0, 0, 0, 1, 0] as [Float])
        let scores = try Tensor(shape: [2, 3], scalars: [0.2, 0.5, 0.3, 0.1, 0.6, 0.3] as [Float])
        #expect(throws: KerasError.invalidArgument(field: "topK", message: "p4: top_k=4 needs at least 4 values on y_pred's last axis, got shape [2, 3]")) {
            try Precision(topK: 4, name: "p4").update(yTrue: labels, yPred: scores)
        }
        #expect(throws: KerasError.self) { try Recall(classId: 3).update(yTrue: labels, yPred: scores) }

        let multi = try AUC(multiLabel: true, name: "m")
        #expect(multi.stateValues.isEmpty && multi.resultValue() == 0)
        #expect(throws: KerasError.self) { try multi.update(yTrue: Tensor([1, 0] as [Float]), yPred: Tensor([0.3, 0.6] as [Float])) }
        try multi.update(yTrue: labels, yPred: scores)
        #expect(multi.labelCount == 3 && multi.stateValues.count == 4 * 200 * 3)
        let multiBefore = multi.stateValues
        do {
            try multi.update(yTrue: try Tensor.zeros(shape: [2, 2]), yPred: try Tensor.zeros(shape: [2, 2]))
            Issue.record("expected an error")
        } catch let KerasError.invalidArgument(field, message) {
            #expect(field == "multiLabel" && message.contains("m:") && message.contains("3 labels"))
        }
        #expect(throws: KerasError.self) { try multi.update(yTrue: try Tensor.zeros(shape: [2, 1]), yPred: scores) }
        #expect(multi.stateValues == multiBefore)

        // Built ahead of the first batch: the full state at once; a different count is refused.
        let ahead = try AUC(multiLabel: true, labelWeights: [1, 2, 3])
        #expect(throws: KerasError.self) { try ahead.build(labelCount: 2) }
        try ahead.build(labelCount: 3)
        #expect(ahead.stateValues.count == 4 * 200 * 3 && ahead.labelCount == 3)
        try ahead.build(labelCount: 3)
        #expect(throws: KerasError.self) { try ahead.build(labelCount: 4) }
        #expect(throws: KerasError.self) { try AUC().build(labelCount: 2) }
        try AUC().build(labelCount: 1)

        let weighted = try AUC(labelWeights: [1, 2])
        #expect(throws: KerasError.self) { try weighted.update(yTrue: labels, yPred: scores) }
        #expect(throws: KerasError.self) { try weighted.update(yTrue: Tensor([1, 0] as [Float]), yPred: Tensor([0.3, 0.6] as [Float])) }

        let topK = try SparseTopKCategoricalAccuracy(k: 2)
        #expect(throws: TensorError.self) { try topK.update(yTrue: Tensor([1, 0, 2] as [Float]), yPred: scores) }
        #expect(throws: TensorError.self) { try topK.update(yTrue: Tensor([1, 0] as [Float]), yPred: Tensor([0.3, 0.6] as [Float])) }
    }

    /// The batches of the state tests: binary labels and predictions, `[6, 3]`.
    private static func batches() throws -> [(Tensor, Tensor, Tensor)] {
        let l1: [Float] = [1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0]
        let p1: [Float] = [0.9, 0.2, 0.4, 0.55, 0.7, 0.1, 0.3, 0.8, 0.5, 0.05, 0.45, 0.95, 0.6, 0.35, 0.25, 0.15, 0.65, 0.75]
        let l2: [Float] = [0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0]
        let p2: [Float] = [0.3, 0.6, 0.2, 0.9, 0.4, 0.5, 0.1, 0.85, 0.7, 0.45, 0.25, 0.35, 0.8, 0.55, 0.15, 0.65, 0.95, 0.05]
        return [
            (try Tensor(shape: [6, 3], scalars: l1), try Tensor(shape: [6, 3], scalars: p1), Tensor([1, 2, 1, 3, 1, 1] as [Float])),
            (try Tensor(shape: [6, 3], scalars: l2), try Tensor(shape: [6, 3], scalars: p2), Tensor([2, 1, 1, 1, 4, 1] as [Float])),
        ]
    }

    private static func freshMetrics() throws -> [any TrainingMetric] {
        [try Precision(thresholds: [0.3, 0.5, 0.7]), try Recall(topK: 1), try Precision(classId: 1),
         try AUC(), try AUC(numThresholds: 7, curve: .pr), try AUC(summationMethod: .minoring, thresholds: [0.2, 0.6]),
         try AUC(multiLabel: true), try AUC(curve: .pr, multiLabel: true, labelWeights: [1, 2, 3]),
         try TopKCategoricalAccuracy(k: 2), try Metrics.get("accuracy")]
    }

    /// A metric restored from another's state reports the same result and state.
    @Test func stateRoundTrips() throws {
        let data = try Self.batches()
        for (original, restored) in zip(try Self.freshMetrics(), try Self.freshMetrics()) {
            for (y, p, w) in data { try original.update(yTrue: y, yPred: p, sampleWeight: w) }
            try restored.restoreState(original.stateValues)
            #expect(restored.stateValues == original.stateValues, "\(original.name)")
            #expect(restored.resultValues == original.resultValues, "\(original.name)")
            #expect(try original.resultValues(forState: original.stateValues) == original.resultValues)
            #expect(original.resultValue() == original.resultValues[0])
            do {
                try restored.restoreState(original.stateValues + [1])
                Issue.record("expected an error for \(original.name)")
            } catch let KerasError.invalidArgument(field, message) {
                #expect(field == "state" && message.contains(original.name))
            }
            #expect(throws: KerasError.self) { try original.resultValues(forState: [1]) }
            #expect(restored.stateValues == original.stateValues)
        }
    }

    /// Two replicas' states summed give the state and result of one metric that saw both batches.
    @Test func summedStatesEqualOneMetricOverAllBatches() throws {
        let data = try Self.batches()
        for ((a, b), whole) in zip(zip(try Self.freshMetrics(), try Self.freshMetrics()), try Self.freshMetrics()) {
            try a.update(yTrue: data[0].0, yPred: data[0].1, sampleWeight: data[0].2)
            try b.update(yTrue: data[1].0, yPred: data[1].1, sampleWeight: data[1].2)
            for (y, p, w) in data { try whole.update(yTrue: y, yPred: p, sampleWeight: w) }
            let sum = try sumMetricStates([a.stateValues, b.stateValues])
            #expect(sum == whole.stateValues, "\(whole.name)")
            #expect(try whole.resultValues(forState: sum) == whole.resultValues, "\(whole.name)")
            #expect(a.stateValues != whole.stateValues && b.stateValues != whole.stateValues, "\(whole.name)")
        }
        #expect(throws: KerasError.self) { try sumMetricStates([[1, 2], [3]]) }
    }

    @Test func multipleThresholdsGiveOneResultEach() throws {
        let recall = try Recall(thresholds: [0, 0.5, 1])
        try recall.update(yTrue: Tensor([1, 1, 1, 0] as [Float]), yPred: Tensor([0, 0.5, 1, 1] as [Float]))
        // Strictly greater: 0 is never positive, 1 never at threshold 1 (the bucketed path agrees).
        #expect(recall.resultValues == [Double(Float(2) / 3), Double(Float(1) / 3), 0])
        #expect(recall.result().shape == [3])
        #expect(recall.resultValue() == Double(Float(2) / 3))
        let uneven = try Recall(thresholds: [0, 0.5, 0.9])
        try uneven.update(yTrue: Tensor([1, 1, 1, 0] as [Float]), yPred: Tensor([0, 0.5, 1, 1] as [Float]))
        #expect(uneven.resultValues == [Double(Float(2) / 3), Double(Float(1) / 3), Double(Float(1) / 3)])
        recall.reset()
        #expect(recall.stateValues == [0, 0, 0, 0, 0, 0])
        // float64 state and arithmetic.
        let double = try Precision(dtype: .float64)
        try double.update(yTrue: Tensor([1, 1, 0] as [Float]), yPred: Tensor([0.9, 0.6, 0.7] as [Float]))
        #expect(double.result().dtype == .float64 && double.resultValues == [2.0 / 3])
        let auc32 = try AUC(), auc64 = try AUC(dtype: .float64)
        for m in [auc32, auc64] {
            try m.update(yTrue: Tensor([1, 0, 1, 0, 1] as [Float]), yPred: Tensor([0.8, 0.3, 0.4, 0.5, 0.9] as [Float]))
        }
        #expect(auc64.result().dtype == .float64 && abs(auc64.resultValue() - auc32.resultValue()) < 1e-6)
        #expect(abs(auc64.resultValue() - 5.0 / 6) < 1e-12)
    }

    @Test func meanWrapperStateMatchesItsResult() throws {
        let accuracy = try SparseCategoricalAccuracy()
        try accuracy.update(yTrue: Tensor([0, 2, 1] as [Int64]),
                            yPred: try Tensor(shape: [3, 3], scalars: [0.8, 0.1, 0.1, 0.2, 0.3, 0.5, 0.6, 0.3, 0.1] as [Float]))
        #expect(accuracy.stateValues == [2, 3])
        #expect(accuracy.resultValues == [try accuracy.result().item()])
        try accuracy.restoreState([1, 4])
        #expect(try accuracy.result().item() == 0.25 && accuracy.total.scalars(as: Float.self) == [1])
        #expect(throws: KerasError.self) { try accuracy.restoreState([1, 2, 3]) }
    }
}
