import DescentAutodiff
@_spi(DescentInternals) import DescentKeras
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// The strict reader of the JSON weights file (`loadWeights`) and the writer it matches (`saveWeights`).
@Suite(.serialized) struct WeightsFileTests {
    /// A built Dense(2) on 3 inputs: kernel [3, 2] (6 values), bias [2].
    func makeModel() throws -> Sequential {
        let model = try Sequential([try Dense(2)])
        try model.build(inputShape: [1, 3])
        return model
    }

    func withFolder(_ body: (URL) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try body(folder)
    }

    /// A document in the saved format with the given entries.
    func document(kernel: String = #"{"name": "dense/kernel", "shape": [3, 2], "dtype": "float32", "values": [1, 2, 3, 4, 5, 6]}"#,
                  bias: String = #"{"name": "dense/bias", "shape": [2], "dtype": "float32", "values": [0.5, -0.5]}"#,
                  top: String = #""format": "descent-weights", "version": 1"#) -> String {
        "{\(top), \"weights\": [\(kernel), \(bias)]}"
    }

    /// Loads `text` into a fresh model; returns the error message, or nil if it loaded.
    func loadError(_ text: String, file: String = "w.json") throws -> String? {
        var message: String?
        try withFolder { folder in
            let path = folder.appendingPathComponent(file).path
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let model = try makeModel()
            let before = model.getWeights()
            do { try model.loadWeights(fromFile: path) } catch let error as TrainingError {
                message = error.description.replacingOccurrences(of: folder.path + "/", with: "")
                // All or nothing: a rejected file changes no weight.
                #expect(model.getWeights() == before, "a rejected file changed weights")
            }
        }
        return message
    }

    @Test func aValidDocumentLoads() throws {
        #expect(try loadError(document()) == nil)
        // float64 values load into a float32 model (cast, as Keras' assignment does).
        #expect(try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "dtype": "float64", "values": [1, 2]}"#)) == nil)
    }

    @Test func nonNumbersAreErrorsNotDropped() throws {
        // The old reader dropped the null and loaded the rest shifted by one.
        let message = try loadError(document(kernel: #"{"name": "dense/kernel", "shape": [3, 2], "dtype": "float32", "values": [null, 1, 2, 3, 4, 5, 6]}"#))
        #expect(message == "w.json: weights[0].values: holds 7 numbers, shape [3, 2] needs 6")
        let typed = try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "dtype": "float32", "values": [1, "x"]}"#))
        #expect(typed == #"w.json: weights[1].values[1]: expected a number, got "x""#)
        let null = try loadError(document(kernel: #"{"name": "dense/kernel", "shape": [3, 2], "dtype": "float32", "values": [1, 2, 3, 4, 5, null]}"#))
        #expect(null == "w.json: weights[0].values[5]: expected a number, got null")
    }

    @Test func shapesMustBeNonNegativeIntegers() throws {
        let text = try loadError(document(bias: #"{"name": "dense/bias", "shape": [2, "x"], "dtype": "float32", "values": [1, 2]}"#))
        #expect(text == #"w.json: weights[1].shape[1]: expected a non-negative integer, got "x""#)
        let negative = try loadError(document(bias: #"{"name": "dense/bias", "shape": [-2], "dtype": "float32", "values": [1, 2]}"#))
        #expect(negative == "w.json: weights[1].shape[0]: expected a non-negative integer, got -2")
        let huge = try loadError(document(bias: #"{"name": "dense/bias", "shape": [4294967296, 4294967296], "dtype": "float32", "values": []}"#))
        #expect(huge?.contains("weights[1].shape") == true && huge?.contains("too many elements") == true)
        let wrong = try loadError(document(bias: #"{"name": "dense/bias", "shape": [3], "dtype": "float32", "values": [1, 2, 3]}"#))
        #expect(wrong?.contains("weights[1].shape: weight 'dense/bias' has shape [3]") == true)
    }

    @Test func dtypeVersionFormatAndNamesAreChecked() throws {
        #expect(try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "dtype": "float16", "values": [1, 2]}"#))
            == #"w.json: weights[1].dtype: unknown dtype "float16" (expected float32, float64 or int64)"#)
        let int64 = try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "dtype": "int64", "values": [1, 2]}"#))
        // (The model's layer name, dense_<n>, depends on how many Dense layers this process made.)
        #expect(int64?.hasPrefix("w.json: weights[1].dtype: weight 'dense/bias' is int64, model weight '") == true)
        #expect(int64?.hasSuffix("/bias' is float32") == true)
        #expect(try loadError(document(top: #""format": "descent-weights", "version": 2"#))
            == "w.json: version: expected 1 (the only version), got 2")
        #expect(try loadError(document(top: #""format": "keras", "version": 1"#))
            == #"w.json: format: expected "descent-weights", got "keras""#)
        #expect(try loadError(document(top: #""format": "descent-weights""#)) == "w.json: version: missing")
        #expect(try loadError(document(top: #""format": "descent-weights", "version": 1, "extra": 0"#))
            == #"w.json: unexpected key "extra" (expected exactly format, version, weights)"#)
        let name = try loadError(document(kernel: #"{"name": "dense/bias", "shape": [3, 2], "dtype": "float32", "values": [1, 2, 3, 4, 5, 6]}"#))
        #expect(name?.hasPrefix("w.json: weights[0].name: weight 'dense/bias' does not match the model's weight '") == true)
        let key = try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "dtype": "float32", "values": [1, 2], "v": 1}"#))
        #expect(key == #"w.json: weights[1]: unexpected key "v" (expected exactly name, shape, dtype, values)"#)
        let missing = try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "values": [1, 2]}"#))
        #expect(missing == "w.json: weights[1].dtype: missing")
    }

    @Test func float32RangeIsChecked() throws {
        let message = try loadError(document(bias: #"{"name": "dense/bias", "shape": [2], "dtype": "float64", "values": [1e300, 2]}"#))
        #expect(message == "w.json: weights[1].values[0]: 1e+300 is outside the float32 range")
    }

    @Test func truncatedFilesNameTheFile() throws {
        let full = document()
        let message = try loadError(String(full.prefix(full.count / 2)), file: "cut.json")
        #expect(message?.hasPrefix("cut.json: not a Descent weights file (invalid JSON at line 1, column ") == true, "\(message ?? "")")
        let empty = try loadError("", file: "empty.json")
        #expect(empty?.hasPrefix("empty.json: not a Descent weights file (invalid JSON") == true)
    }

    @Test func nonFiniteWeightsRoundTrip() throws {
        try withFolder { folder in
            let path = folder.appendingPathComponent("nan.json").path
            let model = try makeModel()
            let values: [Float] = [.nan, .infinity, -.infinity, 1, -2, 0.1]
            try model.setWeights([try Tensor(shape: [3, 2], scalars: values), Tensor([3, 4] as [Float])])
            try model.saveJSONWeights(toFile: path)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains(#""values": [NaN, Infinity, -Infinity, 1.0, -2.0, 0.10000000149011612]"#), "\(text)")
            // Python's json.loads reads NaN and Infinity; so does loadWeights.
            let copy = try makeModel()
            try copy.loadWeights(fromFile: path)
            let kernel = try copy.weights[0].untrackedValue.scalars(as: Float.self)
            #expect(kernel[0].isNaN && kernel[1] == .infinity && kernel[2] == -.infinity && Array(kernel[3...]) == [1, -2, 0.1])
            #expect(try copy.weights[1].untrackedValue.scalars(as: Float.self) == [3, 4])
        }
    }

    @Test func savedFormatIsTheDocumentedOne() throws {
        try withFolder { folder in
            let path = folder.appendingPathComponent("w.json").path
            let model = try Sequential([try Dense(2)], name: "m")
            try model.build(inputShape: [1, 1])
            try model.setWeights([Tensor(rows: [[1.5, -2] as [Float]]), Tensor([0, 0.25] as [Float])])
            try model.saveJSONWeights(toFile: path)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let layer = model.layers[0].name
            let expected = #"{"format": "descent-weights", "version": 1, "weights": [{"name": ""# + layer
                + #"/kernel", "shape": [1, 2], "dtype": "float32", "values": [1.5, -2.0]}, {"name": ""# + layer
                + #"/bias", "shape": [2], "dtype": "float32", "values": [0.0, 0.25]}]}"#
            #expect(text == expected)
            // The document parses as JSON (Foundation's reader, strict RFC 8259).
            #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
        }
    }
}
