import DescentOptimizers
import Testing

/// Unknown keys, float32 ranges and input bytes in configs and replay documents.
@Suite struct ConfigStrictnessTests {
    static func replay(_ text: String) -> (status: Int32, stdout: String, stderr: String) {
        Replay.command(path: "-", readStandardInput: { Array(text.utf8) }, readFile: { _ in [] })
    }

    static func replay(bytes: [UInt8], fromFile: Bool) -> (status: Int32, stdout: String, stderr: String) {
        Replay.command(path: fromFile ? "in.json" : "-", readStandardInput: { bytes }, readFile: { _ in bytes })
    }

    static let variable = #"{"name": "v", "shape": [2], "dtype": "float32", "value": [1, 2]}"#

    // MARK: Item 15: unknown keys

    @Test(arguments: [
        (#"{"class_name": "Adam", "cfg": {"learning_rate": 0.5}}"#, "unknown key 'cfg' in optimizer document (expected class_name, config, module, registered_name)"),
        (#"{"class_name": "Adam"}"#, "missing field 'config'"),
        (#"{"class_name": "Adam", "config": [1]}"#, "'config' must be an object"),
        (#"{"class_name": 3, "config": {}}"#, "'class_name' must be a string"),
        (#"{"class_name": "Adam", "config": {"cfg": 1}}"#, "unexpected keyword argument 'cfg'"),
        (#"{"class_name": "Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay", "conf": {}}}}"#, "unknown key 'conf' in schedule document"),
        (#"{"class_name": "Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay"}}}"#, "schedule ExponentialDecay: missing field 'config'"),
        (#"{"class_name": "Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9, "stair": true}}}}"#, "'stair'"),
    ])
    func unknownKeysInOptimizerDocumentsAreErrors(_ json: String, _ message: String) throws {
        let error = #expect(throws: (any Error).self) { try Optimizer.deserialize(json: json) }
        #expect(error.map { "\($0)" }?.contains(message) == true, "\(String(describing: error))")
    }

    @Test func kerasWrapperKeysAreAccepted() throws {
        let full = #"{"module": "keras.optimizers.legacy", "class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.5, "is_legacy_optimizer": true}, "registered_name": null}"#
        #expect(try Optimizer.deserialize(json: full).learningRate.numericValue == 0.5)
        #expect(try Optimizer.deserialize(json: #"{"class_name": "SGD", "config": {"lr": 0.2, "decay": 0.1, "clipnorm": 1, "clipvalue": 2, "global_clipnorm": null}}"#) is SGD)
    }

    @Test(arguments: [
        (#"{"class_name": "MaxNorm", "config": {}, "extra": 1}"#, "unknown key 'extra' in constraint document"),
        (#"{"class_name": "MaxNorm"}"#, "constraint MaxNorm: missing field 'config'"),
        (#"{"class_name": "MaxNorm", "config": {"max_valu": 2}}"#, "'max_valu'"),
        (#"{"class_name": "MaxNorm", "config": {"max_value": 1e39}}"#, "1e+39 is out of range for float32"),
    ])
    func constraintDocumentsAreStrict(_ json: String, _ message: String) throws {
        let value = try JSONValue(parsing: json)
        let error = #expect(throws: (any Error).self) { try Constraints.deserialize(value) }
        #expect(error.map { "\($0)" }?.contains(message) == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        (#"{"optimizer": "sgd", "variables": [], "steps": [], "extra": 1}"#, "unknown key 'extra' in the replay document"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1], "dtyp": "float64"}], "steps": []}"#, "unknown key 'dtyp' in variables[0]"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": [{"gradients": [null], "grads": []}]}"#, "unknown key 'grads' in steps[0]"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": [{"gradients": [{"dense": [1], "scale": 2}]}]}"#, "unknown key 'scale' in steps[0].gradients[0]"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": [{"gradients": [{"indices": [0], "values": [1], "dense_shape": [1], "unique": true}]}]}"#, "unknown key 'unique' in steps[0].gradients[0]"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": [{"gradients": [{"dens": [1]}]}]}"#, "unknown key 'dens' in steps[0].gradients[0]"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": ["x"]}"#, "steps[0]: expected an object"),
        (#"{"optimizer": {"class_name": "SGD", "cfg": {}}, "variables": [], "steps": []}"#, "unknown key 'cfg' in optimizer document"),
        (#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1], "constraint": {"class_name": "NonNeg", "config": {}, "x": 1}}], "steps": []}"#, "variables[0].constraint: unknown key 'x' in constraint document"),
    ])
    func unknownKeysInReplayDocumentsAreErrors(_ input: String, _ message: String) {
        let result = Self.replay(input)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    // MARK: Item 4: float32 ranges

    @Test(arguments: [
        (#"{"class_name": "Adam", "config": {"learning_rate": 1e39}}"#, "'learning_rate': Adam config: 1e+39 is out of range for float32"),
        (#"{"class_name": "Adam", "config": {"learning_rate": Infinity}}"#, "'learning_rate': Adam config: Infinity is not a finite number"),
        (#"{"class_name": "Adam", "config": {"beta_1": NaN}}"#, "'beta_1'"),
        (#"{"class_name": "Adam", "config": {"epsilon": -1e39}}"#, "'epsilon': Adam config: -1e+39 is out of range"),
        (#"{"class_name": "SGD", "config": {"momentum": 4e38}}"#, "'momentum'"),
        (#"{"class_name": "RMSprop", "config": {"rho": 1e300}}"#, "'rho'"),
        (#"{"class_name": "SGD", "config": {"clipnorm": 1e39}}"#, "'clipnorm'"),
        (#"{"class_name": "SGD", "config": {"clipvalue": -Infinity}}"#, "'clipvalue'"),
        (#"{"class_name": "SGD", "config": {"lr": 1e39}}"#, "'lr'"),
        (#"{"class_name": "SGD", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 1e39, "decay_steps": 10, "decay_rate": 0.9}}}}"#, "'initial_learning_rate': ExponentialDecay config: 1e+39 is out of range for float32"),
        (#"{"class_name": "SGD", "config": {"learning_rate": 1e400}}"#, "number 1e400 is out of range"),
    ])
    func hyperparametersMustFitFloat32(_ json: String, _ message: String) {
        let error = #expect(throws: (any Error).self) { try Optimizer.deserialize(json: json) }
        #expect(error.map { "\($0)" }?.contains(message) == true, "\(String(describing: error))")
    }

    @Test func float32LimitsThemselvesAreAccepted() throws {
        let max = try Optimizer.deserialize(json: #"{"class_name": "SGD", "config": {"learning_rate": 3.4028234663852886e+38}}"#)
        #expect(max.learningRate.numericValue == Double(Float.greatestFiniteMagnitude))
        _ = try Optimizer.deserialize(json: #"{"class_name": "SGD", "config": {"learning_rate": 1e-50}}"#)
    }

    @Test(arguments: [
        (#"{"name": "v", "shape": [2], "value": [1, 1e39]}"#, #"[{"dense": [1, 1]}]"#, "variables[0].value[1]: 1e+39 is out of range for float32"),
        (#"{"name": "v", "shape": [2], "dtype": "float32", "value": [1, 2]}"#, #"[{"dense": [1, -1e39]}]"#, "steps[0].gradients[0].dense[1]: -1e+39 is out of range for float32"),
        (#"{"name": "v", "shape": [2], "value": [1, 2]}"#, #"[{"indices": [1], "values": [5e38]}]"#, "steps[0].gradients[0].values[0]: 5e+38 is out of range for float32"),
    ])
    func replayFloat32DataMustFit(_ variable: String, _ gradients: String, _ message: String) {
        let result = Self.replay(#"{"optimizer": "sgd", "variables": [\#(variable)], "steps": [{"gradients": \#(gradients)}]}"#)
        #expect(result.status == 1)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func replayAllowsNonFiniteDataAndFloat64Range() throws {
        // NaN and infinite gradients stay allowed (replay shows what they do); float64 takes any Double.
        let nan = Self.replay(#"{"optimizer": "sgd", "variables": [\#(Self.variable)], "steps": [{"gradients": [{"dense": [NaN, Infinity]}]}]}"#)
        #expect(nan.status == 0, "\(nan.stderr)")
        #expect(nan.stdout.contains("NaN") && nan.stdout.contains("-Infinity"))
        let wide = Self.replay(#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "dtype": "float64", "value": [1e300]}], "steps": [{"gradients": [{"dense": [1e39]}]}]}"#)
        #expect(wide.status == 0, "\(wide.stderr)")
    }

    // MARK: Shapes

    @Test func elementCountOverflowIsAnError() {
        let result = Self.replay(#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [4611686018427387904, 4], "value": []}], "steps": []}"#)
        #expect(result.status == 1)
        #expect(result.stderr.contains("variables[0].shape"), "\(result.stderr)")
    }

    // MARK: Item 4: input bytes, standard input and files alike

    @Test(arguments: [
        [0xC0, 0xA2] as [UInt8],  // overlong
        [0xED, 0xA0, 0x80],  // encoded surrogate
        [0xFF],
        [0xE2, 0x82],  // truncated
    ])
    func invalidUTF8IsRejectedFromStandardInputAndFilesAlike(_ bad: [UInt8]) {
        let bytes = Array(#"{"optimizer": "sgd", "variables": [{"name": ""#.utf8) + bad + Array(#"", "shape": [1], "value": [1]}], "steps": []}"#.utf8)
        let stdin = Self.replay(bytes: bytes, fromFile: false), file = Self.replay(bytes: bytes, fromFile: true)
        #expect(stdin.status == 1 && file.status == 1)
        #expect(stdin.stderr.contains("error: standard input: invalid JSON at line 1, column 46: invalid UTF-8"), "\(stdin.stderr)")
        #expect(file.stderr.contains("error: in.json: invalid JSON at line 1, column 46: invalid UTF-8"), "\(file.stderr)")
        #expect(stdin.stderr.replacingOccurrences(of: "standard input", with: "in.json") == file.stderr)
    }

    @Test func issueReproducersAreErrors() {
        for input in [#""\uD800\u0041""#, String(repeating: "[", count: 100_000), "01", "+1", ".5", "1.", #""\u+123""#] {
            let result = Self.replay(input)
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("error: standard input: invalid JSON at line 1, column "), "\(result.stderr)")
        }
        let unreadable = Replay.command(path: "nope.json", readStandardInput: { [] }, readFile: { _ in throw JSONError("No such file or directory") })
        #expect(unreadable.stderr == "error: cannot read nope.json: No such file or directory\n")
    }
}
