import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Testing

// Written as a client of the public API (issue 12, item 5): no `@testable`, no `@_spi`.

/// Adagrad written by a client: the dense rule with tensor operations, the sparse rule in place on the
/// touched rows (``Variable/withMutableRows(_:as:_:)``), the config read with ``ConfigReader``.
final class ClientAdagrad: Optimizer {
    let initialAccumulatorValue: Double
    let epsilon: Double
    /// Not used by the rule: fields of other JSON types, to exercise the reader.
    let warmupSteps: Int
    let tags: [String]
    let boundaries: [Double]

    init(learningRate: Hyperparameter = 0.1, initialAccumulatorValue: Double = 0.1, epsilon: Double = 1e-7,
         warmupSteps: Int = 0, tags: [String] = [], boundaries: [Double] = [], name: String = "ClientAdagrad",
         clipnorm: Double? = nil, clipvalue: Double? = nil, globalClipnorm: Double? = nil, decay: Double = 0) throws {
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        self.warmupSteps = warmupSteps
        self.tags = tags
        self.boundaries = boundaries
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm, decay: decay)
        setHyper("learning_rate", learningRate)
    }

    convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var reader = ConfigReader(config, className: "ClientAdagrad", customObjects: customObjects)
        let common = try reader.common()
        let learningRate = try reader.learningRate() ?? 0.1
        let initial = try reader.double("initial_accumulator_value") ?? 0.1
        let epsilon = try reader.double("epsilon") ?? 1e-7
        let warmupSteps = try reader.int("warmup_steps") ?? 0
        let tags = try reader.stringArray("tags") ?? []
        let boundaries = try reader.doubleArray("boundaries") ?? []
        try reader.finish(allowed: ConfigReader.commonKeys + [
            "learning_rate", "initial_accumulator_value", "epsilon", "warmup_steps", "tags", "boundaries",
        ])
        try self.init(learningRate: learningRate, initialAccumulatorValue: initial, epsilon: epsilon,
                      warmupSteps: warmupSteps, tags: tags, boundaries: boundaries, name: common.name ?? "ClientAdagrad",
                      clipnorm: common.clipnorm, clipvalue: common.clipvalue, globalClipnorm: common.globalClipnorm,
                      decay: common.decay ?? 0)
    }

    override class var kerasClassName: String { "ClientAdagrad" }

    override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "accumulator", initializer: .constant(initialAccumulatorValue)) }
    }

    override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {
        let accumulator = try slot(for: v, named: "accumulator")
        try accumulator.assignAdd(try g * g)
        let step = try (g * c["lr_t"].value) / (try accumulator.untrackedValue.sqrt() + epsilon)
        try v.assignSub(step)
    }

    override func resourceApplySparse(_ values: Tensor, _ v: Variable, _ indices: [Int], _ c: Coefficients) throws {
        let lr = Float(try c["lr_t"].value), eps = Float(epsilon)
        let accumulator = try slot(for: v, named: "accumulator")
        try values.withUnsafeBufferPointer(as: Float.self) { g in
            try accumulator.withMutableRows(indices, as: Float.self) { a in
                try v.withMutableRows(indices, as: Float.self) { w in
                    let n = w.rowLength
                    for r in 0..<w.count {
                        let ar = a[r], wr = w[r]
                        for j in 0..<n {
                            let gj = g[r * n + j]
                            ar[j] += gj * gj
                            wr[j] -= (gj * lr) / (ar[j].squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }

    override var config: JSONObject {
        get throws {
            var c = try configWithLearningRate()
            c["initial_accumulator_value"] = .double(initialAccumulatorValue)
            c["epsilon"] = .double(epsilon)
            c["warmup_steps"] = .int(warmupSteps)
            c["tags"] = .array(tags.map { .string($0) })
            c["boundaries"] = .array(boundaries.map { .double($0) })
            return c
        }
    }
}

/// Sparse SGD built on ``Variable/scatterSub(indices:values:)``.
final class ClientScatterSGD: Optimizer {
    init(learningRate: Hyperparameter = 0.01) throws {
        try super.init(name: "ClientScatterSGD")
        setHyper("learning_rate", learningRate)
    }
    override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {
        try v.assignSub(try g * c["lr_t"].value)
    }
    override func resourceApplySparse(_ values: Tensor, _ v: Variable, _ indices: [Int], _ c: Coefficients) throws {
        try v.scatterSub(indices: indices, values: try values * c["lr_t"].value)
    }
}

private func floats(_ v: Variable) throws -> [Float] { try v.untrackedValue.scalars(as: Float.self) }

private func matrix(_ rows: Int, _ cols: Int, _ f: (Int) -> Float) throws -> Tensor {
    try Tensor(shape: [rows, cols], scalars: (0..<(rows * cols)).map(f))
}

/// The address of row `index`'s first element (to see whether the buffer was reallocated).
private func rowAddress(_ v: Variable, _ index: Int) throws -> UInt {
    try v.withMutableRows([index], as: Float.self) { UInt(bitPattern: $0[0].baseAddress) }
}

@Suite struct CustomOptimizerAPITests {
    // MARK: 1. ConfigReader

    @Test func customOptimizerConfigRoundTripsThroughTheRegistry() throws {
        Optimizer.register(className: "ClientAdagrad") { try ClientAdagrad(config: $0, customObjects: $1) }
        let opt = try ClientAdagrad(learningRate: 0.25, initialAccumulatorValue: 0.5, epsilon: 1e-6, warmupSteps: 7,
                                    tags: ["a", "b"], boundaries: [10, 20.5], name: "mine", clipnorm: 1.5, decay: 0.01)
        let serialized = try opt.serialize()
        #expect(serialized["class_name"] == "ClientAdagrad")
        let back = try #require(try Optimizer.deserialize(serialized) as? ClientAdagrad)
        #expect(back.name == "mine")
        #expect(back.initialAccumulatorValue == 0.5 && back.epsilon == 1e-6 && back.warmupSteps == 7)
        #expect(back.tags == ["a", "b"] && back.boundaries == [10, 20.5])
        #expect(back.clipnorm == 1.5 && back.decay == 0.01)
        #expect(try back.learningRateValue == 0.25)
        #expect(try back.serialize() == serialized)
        // Through JSON text, with Keras' legacy `lr` alias and an integral float for the integer field.
        let json = #"{"class_name": "ClientAdagrad", "config": {"lr": 2, "warmup_steps": 3.0, "is_legacy_optimizer": true}}"#
        let fromJSON = try #require(try Optimizer.deserialize(json: json) as? ClientAdagrad)
        #expect(fromJSON.warmupSteps == 3)
        #expect(try fromJSON.learningRateValue == 2)
        #expect(fromJSON.name == "ClientAdagrad")
    }

    @Test func badConfigFieldsThrowNamingTheField() throws {
        func error(_ config: JSONObject) -> OptimizerError? {
            do {
                _ = try ClientAdagrad(config: config)
                return nil
            } catch {
                return error as? OptimizerError
            }
        }
        for (key, value) in [("warmup_steps", JSONValue.double(2.5)), ("warmup_steps", "three"), ("epsilon", "small"),
                             ("epsilon", .double(1e300)), ("learning_rate", .bool(true)), ("tags", .int(1)), ("name", .int(1))] {
            let e = error([key: value])
            guard case .invalidArgument(let field, _)? = e else {
                Issue.record("\(key): \(value) gave \(String(describing: e))")
                continue
            }
            #expect(field == key)
            #expect("\(e!)".contains("'\(key)'"))
        }
        let element = error(["boundaries": .array([.int(1), .string("x")])])
        #expect(element.map { "\($0)" }?.contains("boundaries[1]") == true)
        let tag = error(["tags": .array([.string("a"), .null])])
        #expect(tag.map { "\($0)" }?.contains("tags[1]") == true)
        guard case .unexpectedKeyword(let optimizer, let key, let allowed)? = error(["warmup_step": .int(1)]) else {
            Issue.record("an unknown key must throw unexpectedKeyword")
            return
        }
        #expect(optimizer == "ClientAdagrad" && key == "warmup_step" && allowed.contains("warmup_steps"))
    }

    @Test func configReaderLeavesUnreadKeysAndReadsNullAsAbsent() throws {
        var reader = ConfigReader(["a": .int(4), "b": .null, "c": .double(1)], className: "X")
        #expect(try reader.int("a") == 4)
        #expect(try reader.double("b") == nil)
        #expect(Array(reader.config.keys) == ["c"])
        #expect(throws: OptimizerError.self) { try reader.finish(allowed: ["a", "b"]) }
        #expect(try reader.double("c") == 1)
        try reader.finish(allowed: ["a", "b", "c"])
        var common = ConfigReader(["name": "n", "decay": .int(0), "clipvalue": .double(0.5)], className: "X")
        #expect(try common.common() == ConfigReader.CommonOptions(name: "n", clipvalue: 0.5, decay: 0))
    }

    // MARK: 2. Row helpers

    @Test func customSparseAdagradMatchesItsDenseRule() throws {
        let initial = try matrix(5, 3) { Float($0) * 0.25 - 1 }
        let dense = Variable(initial, name: "dense"), sparse = Variable(initial, name: "sparse")
        let denseOpt = try ClientAdagrad(learningRate: 0.5), sparseOpt = try ClientAdagrad(learningRate: 0.5)
        for step in 0..<3 {
            // Repeated index 3: summed first by the base class.
            let slices = try IndexedSlices(values: try matrix(3, 3) { Float($0 + step) * 0.1 - 0.3 }, indices: [3, 0, 3],
                                           denseShape: [5, 3])
            try denseOpt.applyGradients([(Gradient.dense(try slices.toDense()), dense)])
            try sparseOpt.applyGradients([(Gradient.sparse(slices), sparse)])
        }
        for (a, b) in zip(try floats(dense), try floats(sparse)) { #expect(abs(a - b) <= 1e-6 * max(1, abs(a))) }
        let denseSlot = try floats(denseOpt.slot(for: dense, named: "accumulator"))
        let sparseSlot = try floats(sparseOpt.slot(for: sparse, named: "accumulator"))
        for (a, b) in zip(denseSlot, sparseSlot) { #expect(abs(a - b) <= 1e-6 * max(1, abs(a))) }
        #expect(try floats(sparse)[3..<6] == initial.scalars(as: Float.self)[3..<6])  // row 1 untouched
    }

    @Test func customScatterSGDMatchesTheBuiltInSGD() throws {
        let initial = try matrix(4, 2) { Float($0) }
        let reference = Variable(initial, name: "reference"), custom = Variable(initial, name: "custom")
        let sgd = try SGD(learningRate: 0.3), mine = try ClientScatterSGD(learningRate: 0.3)
        let slices = try IndexedSlices(values: try matrix(3, 2) { Float($0) - 2.5 }, indices: [2, 0, 2], denseShape: [4, 2])
        try sgd.applyGradients([(Gradient.dense(try slices.toDense()), reference)])
        try mine.applyGradients([(Gradient.sparse(slices), custom)])
        #expect(try floats(custom) == floats(reference))
    }

    @Test func scatterUpdatesWriteInPlaceWhenTheBufferIsUnique() throws {
        let v = Variable(try matrix(4, 3) { Float($0) }, name: "table")
        let address = try rowAddress(v, 0)
        try v.scatterAdd(indices: [1, 1], values: try matrix(2, 3) { _ in 1 })
        try v.scatterSub(indices: [2], values: try matrix(1, 3) { _ in 1 })
        try v.scatterUpdate(indices: [0, 0], values: try matrix(2, 3) { Float($0) * 10 })
        #expect(try rowAddress(v, 0) == address)  // no reallocation, no copy of the variable
        #expect(try floats(v) == [30, 40, 50, 5, 6, 7, 5, 6, 7, 9, 10, 11])

        // Copy-on-write: a value read earlier keeps its contents; the buffer is copied once, then reused.
        let before = v.untrackedValue
        try v.scatterAdd(indices: [3], values: try matrix(1, 3) { _ in 100 })
        #expect(try before.scalars(as: Float.self) == [30, 40, 50, 5, 6, 7, 5, 6, 7, 9, 10, 11])
        #expect(try floats(v)[9...] == [109, 110, 111])
        let copied = try rowAddress(v, 0)
        #expect(copied != address)
        try v.scatterAdd(indices: [3], values: try matrix(1, 3) { _ in 1 })
        #expect(try rowAddress(v, 0) == copied)

        #expect(try v.gatherRows([3, 0, 3]).shape == [3, 3])
        #expect(try v.gatherRows([3, 0]).scalars(as: Float.self) == [110, 111, 112, 30, 40, 50])
    }

    @Test func rowHelpersWorkForHigherRanksAndIntegers() throws {
        let v = Variable(try Tensor(shape: [3, 2, 2], scalars: (0..<12).map(Double.init)), name: "cube")
        try v.scatterAdd(indices: [2], values: try Tensor(shape: [1, 2, 2], scalars: [1, 1, 1, 1] as [Double]))
        #expect(try v.gatherRows([2]).scalars(as: Double.self) == [9, 10, 11, 12])
        let counts = Variable(Tensor([0, 0, 0] as [Int64]), name: "counts")
        try counts.scatterAdd(indices: [1, 1, 2], values: Tensor([1, 1, 5] as [Int64]))
        #expect(try counts.untrackedValue.scalars(as: Int64.self) == [0, 2, 5])
        try counts.withMutableRows([0], as: Int64.self) { rows in rows[0][0] = 7 }
        #expect(try counts.untrackedValue.scalars(as: Int64.self) == [7, 2, 5])
    }

    @Test func badRowArgumentsThrowNamingTheVariableAndWriteNothing() throws {
        let v = Variable(try matrix(3, 2) { Float($0) }, name: "emb")
        let original = try floats(v)
        func message(_ body: () throws -> Void) -> String {
            do {
                try body()
                return "no error"
            } catch {
                #expect(error is TensorError)
                return "\(error)"
            }
        }
        let cases: [(String, () throws -> Void)] = [
            ("index", { try v.scatterAdd(indices: [0, 3], values: try matrix(2, 2) { _ in 1 }) }),
            ("negative", { try v.scatterUpdate(indices: [-1], values: try matrix(1, 2) { _ in 1 }) }),
            ("shape", { try v.scatterSub(indices: [0, 1], values: try matrix(1, 2) { _ in 1 }) }),
            ("row shape", { try v.scatterAdd(indices: [0], values: try matrix(1, 3) { _ in 1 }) }),
            ("dtype", { try v.scatterAdd(indices: [0], values: try Tensor(shape: [1, 2], scalars: [1, 1] as [Double])) }),
            ("gather", { _ = try v.gatherRows([5]) }),
            ("rows dtype", { try v.withMutableRows([0], as: Double.self) { $0[0][0] = 1 } }),
            ("rows index", { try v.withMutableRows([0, 9], as: Float.self) { $0[0][0] = 1 } }),
            ("scalar", { try Variable(Tensor(Float(1)), name: "emb").scatterAdd(indices: [0], values: Tensor([1] as [Float])) }),
        ]
        for (label, body) in cases {
            let m = message(body)
            #expect(m.contains("variable 'emb'"), "\(label): \(m)")
        }
        #expect(try floats(v) == original)
    }

    // MARK: 3. The learning-rate variable

    @Test func assigningTheLearningRateVariableChangesTheNextStep() throws {
        let opt = try SGD(learningRate: 0.1)
        let v = Variable(Tensor([1] as [Float]), name: "v")
        // Before the first step: created (as Keras' `_get_hyper`), and it is what the step reads.
        let lr = try #require(opt.learningRateVariable)
        #expect(lr.dtype == .float32 && lr.shape == [])
        #expect(try lr.untrackedValue.item() == Double(Float(0.1)))
        try lr.assign(Tensor(Float(3)))
        #expect(try opt.learningRateValue == 3)
        try opt.applyGradients([(Tensor([1] as [Float]), v)])
        #expect(try floats(v) == [-2])
        // A number assigned later goes into the same variable.
        opt.learningRate = 0.5
        #expect(opt.learningRateVariable === lr)
        #expect(try lr.untrackedValue.item() == 0.5)
        try opt.applyGradients([(Tensor([1] as [Float]), v)])
        #expect(try floats(v) == [-2.5])
        try #require(opt.learningRateVariable).assign(Tensor(Float(0.25)))
        try opt.applyGradients([(Tensor([1] as [Float]), v)])
        #expect(try floats(v) == [-2.75])
        #expect(!opt.weights.contains { $0 === lr })  // not an optimizer weight, as in Keras
    }

    @Test func theLearningRateVariableDrivesAFusedBuiltIn() throws {
        let reference = Variable(Tensor([1, -2] as [Float]), name: "a"), assigned = Variable(Tensor([1, -2] as [Float]), name: "b")
        let fast = try Adam(learningRate: 0.01), changed = try Adam(learningRate: 0.001)
        try #require(changed.learningRateVariable).assign(Tensor(Float(0.01)))
        for _ in 0..<3 {
            try fast.applyGradients([(Tensor([0.5, 1] as [Float]), reference)])
            try changed.applyGradients([(Tensor([0.5, 1] as [Float]), assigned)])
        }
        #expect(try floats(reference) == floats(assigned))
    }

    @Test func nonNumericLearningRatesHaveNoVariable() throws {
        let schedule = ExponentialDecay(initialLearningRate: 1, decaySteps: 1, decayRate: 0.5)
        let scheduled = try SGD(learningRate: .schedule(schedule))
        #expect(scheduled.learningRateVariable == nil)
        #expect(try scheduled.learningRateValue == 1)
        let v = Variable(Tensor([0] as [Float]), name: "v")
        try scheduled.applyGradients([(Tensor([1] as [Float]), v)])
        #expect(try scheduled.learningRateValue == 0.5)  // the schedule at the current iteration (1)

        let closure = try SGD(learningRate: .closure { 0.125 })
        #expect(closure.learningRateVariable == nil)
        #expect(try closure.learningRateValue == 0.125)
        let tensor = try SGD(learningRate: .tensor(Tensor(Float(0.75))))
        #expect(tensor.learningRateVariable == nil)
        #expect(try tensor.learningRateValue == 0.75)

        // Replacing a numeric rate by a schedule detaches the variable.
        let opt = try SGD(learningRate: 0.1)
        #expect(opt.learningRateVariable != nil)
        opt.learningRate = .schedule(schedule)
        #expect(opt.learningRateVariable == nil)
    }

    @Test func hyperparameterVariablesByName() throws {
        let opt = try SGD(learningRate: 0.1, momentum: 0.5)
        let momentum = try #require(try opt.hyperparameterVariable(named: "momentum"))
        #expect(try momentum.untrackedValue.item() == 0.5)
        try momentum.assign(Tensor(Float(0)))
        let v = Variable(Tensor([1] as [Float]), name: "v")
        try opt.applyGradients([(Tensor([1] as [Float]), v)])
        try opt.applyGradients([(Tensor([1] as [Float]), v)])
        #expect(try floats(v) == [Float(1) - Float(0.1) - Float(0.1)])  // momentum 0: plain SGD
        #expect(try opt.hyperparameterVariable(named: "learning_rate") === opt.learningRateVariable)
        #expect(throws: OptimizerError.self) { try opt.hyperparameterVariable(named: "beta_1") }
        let noRate = try ClientScatterSGD(learningRate: .closure { 1 })
        #expect(try noRate.hyperparameterVariable(named: "learning_rate") == nil)
    }

    // MARK: 4. applyGradients with [(Gradient, Variable)]

    @Test func applyGradientsTakesNonOptionalPairs() throws {
        let a = Variable(Tensor([1, 2] as [Float]), name: "a"), b = Variable(try matrix(3, 1) { Float($0) }, name: "b")
        let a2 = Variable(Tensor([1, 2] as [Float]), name: "a2"), b2 = Variable(try matrix(3, 1) { Float($0) }, name: "b2")
        let slices = try IndexedSlices(values: try matrix(1, 1) { _ in 2 }, indices: [1], denseShape: [3, 1])
        let opt = try Adam(learningRate: 0.1), reference = try Adam(learningRate: 0.1)
        let pairs: [(Gradient, Variable)] = [(.dense(Tensor([1, -1] as [Float])), a), (.sparse(slices), b)]
        #expect(try opt.applyGradients(pairs) == 1)
        try reference.applyGradients([(Gradient?.some(.dense(Tensor([1, -1] as [Float]))), a2), (.sparse(slices), b2)])
        #expect(try floats(a) == floats(a2) && floats(b) == floats(b2))

        // A transformer's output can be passed straight back; array literals still type-check.
        let transformer: GradientTransformer = { $0 }
        #expect(try opt.applyGradients(try transformer(pairs), experimentalAggregateGradients: false) == 2)
        #expect(try opt.applyGradients([(Gradient.dense(Tensor([1, 1] as [Float])), a)]) == 3)
        #expect(try opt.applyGradients([(.dense(Tensor([1, 1] as [Float])), a)]) == 4)
        #expect(try opt.applyGradients([(nil, b), (.dense(Tensor([1, 1] as [Float])), a)]) == 5)
        #expect(try opt.applyGradients([(Tensor([1, 1] as [Float]), a)]) == 6)
        #expect(try opt.applyGradients([(Gradient, Variable)]()) == 6)  // empty: nothing happens
        // Errors are the same as for the other forms, and nothing is written.
        let before = try floats(a)
        #expect(throws: OptimizerError.self) { try opt.applyGradients([(Gradient.dense(Tensor([1] as [Float])), a)]) }
        #expect(try floats(a) == before && opt.iterationCount == 6)
    }
}

// MARK: - README's "Writing an optimizer" example, verbatim, so the README stays true

/// Sign descent: var ← var − lr·sign(g).
final class SignSGD: Optimizer {
    init(learningRate: Hyperparameter = 0.01, name: String = "SignSGD", clipnorm: Double? = nil,
         clipvalue: Double? = nil, globalClipnorm: Double? = nil, decay: Double = 0) throws {
        try super.init(name: name, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm, decay: decay)
        setHyper("learning_rate", learningRate)
    }

    override class var kerasClassName: String { "SignSGD" }

    override func resourceApplyDense(_ gradient: Tensor, _ variable: Variable, _ c: Coefficients) throws {
        try variable.assignSub(try gradient.sign() * c["lr_t"].value)
    }

    override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int], _ c: Coefficients) throws {
        // Only the touched rows, in place: the variable is not copied.
        try variable.scatterSub(indices: indices, values: try values.sign() * c["lr_t"].value)
    }

    override var config: JSONObject {
        get throws { try configWithLearningRate() }   // name, clip options, learning_rate, decay
    }

    convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
        var reader = ConfigReader(config, className: "SignSGD", customObjects: customObjects)
        let common = try reader.common()
        let learningRate = try reader.learningRate() ?? 0.01
        try reader.finish(allowed: ConfigReader.commonKeys + ["learning_rate"])   // unknown keys throw
        try self.init(learningRate: learningRate, name: common.name ?? "SignSGD", clipnorm: common.clipnorm,
                      clipvalue: common.clipvalue, globalClipnorm: common.globalClipnorm, decay: common.decay ?? 0)
    }
}

@Suite struct CustomOptimizerReadmeExampleTests {
    @Test func writingAnOptimizerExample() throws {
        Optimizer.register(className: "SignSGD") { try SignSGD(config: $0, customObjects: $1) }
        let sign = try SignSGD(learningRate: 0.1)
        let copy = try Optimizer.deserialize(json: try sign.serializedJSON())   // a SignSGD
        try sign.learningRateVariable?.assign(Tensor(Float(0.05)))   // Keras' `opt.lr.assign(0.05)`: the next step's rate
        let rate = try sign.learningRateValue                           // 0.05 (a schedule: its value at `iterations`)

        #expect(copy is SignSGD)
        #expect(try copy.learningRateValue == Double(Float(0.1)))  // serialized before the assignment
        #expect(rate == Double(Float(0.05)))
        let v = Variable(try Tensor(shape: [3, 1], scalars: [1, 1, 1] as [Float]), name: "v")
        try sign.applyGradients([(Gradient.sparse(try IndexedSlices(values: Tensor(shape: [1, 1], scalars: [-3] as [Float]),
                                                                     indices: [1], denseShape: [3, 1])), v)])
        #expect(try v.untrackedValue.scalars(as: Float.self) == [1, 1 + Float(0.05), 1])
        try sign.applyGradients([(Tensor(shape: [3, 1], scalars: [2, 0, -2] as [Float]), v)])
        #expect(try v.untrackedValue.scalars(as: Float.self) == [1 - Float(0.05), 1 + Float(0.05), 1 + Float(0.05)])
    }
}
