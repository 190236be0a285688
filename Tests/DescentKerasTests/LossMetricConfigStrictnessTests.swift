import DescentKeras
import DescentOptimizers
import Testing

/// Serialized losses and metrics are read by the optimizers' rules (issue 9, item 15): the wrapper's
/// keys, `config` required and an object, every config key known, wrong types and out-of-range float32
/// numbers are errors naming the field.
@Suite struct LossMetricConfigStrictnessTests {
    private func lossError(_ text: String) -> String? {
        do { _ = try Losses.deserialize(JSONValue(parsing: text)); return nil } catch { return "\(error)" }
    }

    private func metricError(_ text: String) -> String? {
        do { _ = try Metrics.deserialize(JSONValue(parsing: text)); return nil } catch { return "\(error)" }
    }

    /// Before: `cfg` was ignored (from_logits silently false), `"config": 5` and a missing config were
    /// read as empty, and extra wrapper keys were ignored.
    @Test(arguments: [
        (#"{"class_name": "BinaryCrossentropy", "cfg": {"from_logits": true}}"#, "cfg"),
        (#"{"class_name": "BinaryCrossentropy", "config": 5}"#, "config"),
        (#"{"class_name": "BinaryCrossentropy"}"#, "config"),
        (#"{"class_name": "BinaryCrossentropy", "config": {}, "extra": 1}"#, "extra"),
        (#"{"class_name": 3, "config": {}}"#, "class_name"),
        (#"{"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 1e39}}"#, "label_smoothing"),
        (#"{"class_name": "BinaryCrossentropy", "config": {"label_smoothing": "0.1"}}"#, "label_smoothing"),
        (#"{"class_name": "BinaryCrossentropy", "config": {"from_logits": "true"}}"#, "from_logits"),
        (#"{"class_name": "BinaryCrossentropy", "config": {"axis": -1.0}}"#, "axis"),
    ])
    func badLossWrapperOrConfigIsAnError(text: String, field: String) {
        let error = lossError(text)
        #expect(error != nil, "accepted: \(text)")
        #expect(error?.contains(field) == true, "\(error ?? "")")
    }

    /// Before: metric configs accepted any key (`thresold` ran with 0.5), a threshold of the wrong type
    /// was the default 0.5, and the wrapper was read as loosely as the losses'.
    @Test(arguments: [
        (#"{"class_name": "BinaryAccuracy", "config": {"thresold": 0.9}}"#, "thresold"),
        (#"{"class_name": "BinaryAccuracy", "config": {"threshold": "0.9"}}"#, "threshold"),
        (#"{"class_name": "BinaryAccuracy", "config": {"threshold": 1e39}}"#, "threshold"),
        (#"{"class_name": "Accuracy", "config": {"threshold": 0.5}}"#, "threshold"),
        (#"{"class_name": "CategoricalAccuracy", "cfg": {}}"#, "cfg"),
        (#"{"class_name": "SparseCategoricalAccuracy", "config": []}"#, "config"),
        (#"{"class_name": "Accuracy"}"#, "config"),
    ])
    func badMetricWrapperOrConfigIsAnError(text: String, field: String) {
        let error = metricError(text)
        #expect(error != nil, "accepted: \(text)")
        #expect(error?.contains(field) == true, "\(error ?? "")")
    }

    /// What the classes write reads back, with every allowed wrapper key; absent or null fields give
    /// the defaults.
    @Test func writtenConfigsReadBack() throws {
        let bce = try Losses.deserialize(JSONValue(parsing: """
            {"module": "keras.losses", "class_name": "BinaryCrossentropy", "registered_name": null,
             "config": {"reduction": "sum", "name": "b", "from_logits": true, "label_smoothing": 0.25, "axis": -1,
                        "fn": "binary_crossentropy"}}
            """))
        let restored = try #require(bce as? BinaryCrossentropy)
        #expect(restored.fromLogits && restored.labelSmoothing == 0.25 && restored.name == "b")
        let metric = try Metrics.deserialize(JSONValue(parsing: """
            {"module": "keras.metrics", "class_name": "BinaryAccuracy", "registered_name": null,
             "config": {"name": "acc", "dtype": "float32", "threshold": 0.9}}
            """))
        #expect((metric as? BinaryAccuracy)?.threshold == 0.9)
        let defaults = try Metrics.deserialize(JSONValue(parsing: #"{"class_name": "BinaryAccuracy", "config": {"threshold": null}}"#))
        #expect((defaults as? BinaryAccuracy)?.threshold == 0.5)
        for className in ["Accuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "BinaryAccuracy"] {
            let m = try Metrics.deserialize(.string(className))
            let again = try Metrics.deserialize(JSONValue(parsing: #"{"class_name": "\#(className)", "config": {"name": "\#(m.name)", "dtype": "float32"}}"#))
            #expect(again.name == m.name)
        }
    }
}
