import DescentOptimizers
import Testing

@Suite struct ReplayTests {
    static let valid = """
        {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9}},
         "variables": [{"name": "w", "shape": [3, 2], "dtype": "float32", "value": [1, 2, 3, 4, 5, 6], "constraint": null},
                       {"name": "b", "shape": [2], "dtype": "float64", "value": [0, 0]}],
         "steps": [{"gradients": [{"dense": [1, 1, 1, 1, 1, 1]}, null]},
                   {"gradients": [{"indices": [2, 0, 2], "values": [1, 1, 2, 2, 3, 3], "dense_shape": [3, 2]}, {"dense": [1, -1]}]}]}
        """

    func run(_ text: String) -> (status: Int32, stdout: String, stderr: String) {
        Replay.command(path: "-", readStandardInput: { Array(text.utf8) }, readFile: { _ in [] })
    }

    @Test func validDocument() throws {
        let result = run(Self.valid)
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let out = try #require(try JSONValue(parsing: result.stdout).objectValue)
        #expect(out.keys == ["steps", "iterations", "weights", "weight_names", "config"])
        #expect(out["iterations"] == 2)
        #expect(out["weight_names"] == ["SGD/iter", "SGD/w/momentum", "SGD/b/momentum"])
        let steps = try #require(out["steps"]?.arrayValue)
        #expect(steps.count == 2)
        // Step 1: w ← w − 0.1·g with momentum 0 history; b untouched (no gradient).
        let first = try #require(steps[0].objectValue?["variables"]?.arrayValue)
        #expect(first[0].arrayValue?.first?.doubleValue == Double(Float(1) - Float(1) * Float(0.1)))
        #expect(first[1] == [0.0, 0.0])
    }

    @Test func readsFiles() {
        let result = Replay.command(path: "in.json", readStandardInput: { [] }, readFile: { path in
            #expect(path == "in.json")
            return Array(Self.valid.utf8)
        })
        #expect(result.status == 0)
        let missing = Replay.command(path: "nope.json", readStandardInput: { [] }, readFile: { _ in
            throw JSONError("no such file")
        })
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("nope.json"))
    }

    /// Malformed input: status 1, nothing on stdout, one line on stderr naming the field.
    @Test(arguments: [
        ("{", "invalid JSON"),
        ("[]", "expected a JSON object"),
        (#"{"variables": [], "steps": []}"#, "'optimizer'"),
        (#"{"optimizer": {"class_name": "Adamm"}, "variables": [], "steps": []}"#, "Adamm"),
        (#"{"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "foo": 1}}, "variables": [], "steps": []}"#, "foo"),
        (#"{"optimizer": {"class_name": "SGD", "config": {"momentum": 2}}, "variables": [], "steps": []}"#, "momentum"),
        (#"{"optimizer": "sgd", "variables": {}, "steps": []}"#, "variables"),
        (#"{"optimizer": "sgd", "variables": [{"shape": [1], "value": [1]}], "steps": []}"#, "variables[0].name"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1]}], "steps": []}"#, "variables[0].value"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "dtype": "int8", "value": [1]}], "steps": []}"#, "variables[0].dtype"),
        // A dtype that is not a string was read as float32 (fuzz reproducer FuzzReplay/non-string-dtype-defaulted.json).
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "dtype": 5, "value": [1]}], "steps": []}"#, "variables[0].dtype"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1], "constraint": {"class_name": "Nope"}}], "steps": []}"#, "variables[0].constraint"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": [{"gradients": []}]}"#, "steps[0].gradients"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1, 2]}], "steps": [{"gradients": [{"dense": [1]}]}]}"#, "steps[0].gradients[0].dense"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1, 2]}], "steps": [{"gradients": [{"indices": [5], "values": [1], "dense_shape": [2]}]}]}"#, "steps[0].gradients[0].indices"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1, 2]}], "steps": [{"gradients": [{"indices": [0], "values": [1, 2], "dense_shape": [2]}]}]}"#, "steps[0].gradients[0].values"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1, 2]}], "steps": [{"gradients": [{"indices": [0], "values": [1], "dense_shape": [3]}]}]}"#, "dense_shape"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1, 2]}], "steps": [{"gradients": [null]}]}"#, "No gradients provided"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": ["x"]}], "steps": []}"#, "variables[0].value[0]"),
        (#"{"optimizer": "sgd", "variables": [], "steps": [], "extra": 1}"#, "extra"),
    ])
    func malformedInput(_ input: String, _ named: String) {
        let result = run(input)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("error: "))
        #expect(result.stderr.contains(named), "stderr: \(result.stderr)")
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
    }
}
