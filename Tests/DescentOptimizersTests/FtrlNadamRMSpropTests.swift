@_spi(DescentInternals) import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

// MARK: - Helpers

/// Expects `body` to throw ``OptimizerError/invalidArgument(field:message:)`` for `field`, with a message
/// that names it.
private func expectInvalidArgument(_ field: String, sourceLocation: SourceLocation = #_sourceLocation,
                                   _ body: () throws -> Any) {
    let error = #expect(throws: OptimizerError.self, sourceLocation: sourceLocation) { _ = try body() }
    guard case .invalidArgument(let got, _)? = error else { return }
    #expect(got == field, sourceLocation: sourceLocation)
    #expect(error!.description.contains(field), "\(error!)", sourceLocation: sourceLocation)
}

private func variable(_ values: [Float], shape: [Int]? = nil, name: String) throws -> Variable {
    Variable(try Tensor(shape: shape ?? [values.count], scalars: values), name: name)
}

private func values(_ v: Variable) -> [Double] { v.untrackedValue.doubles }

private func slot(_ opt: Optimizer, _ v: Variable, _ name: String) throws -> [Double] {
    try opt.slot(for: v, named: name).untrackedValue.doubles
}

/// One sparse gradient (rows `rows` at `indices`) for `v`.
private func sparse(_ rows: [Float], _ indices: [Int], for v: Variable) throws -> Gradient {
    let rowShape = Array(v.shape.dropFirst())
    let values = try Tensor(shape: [indices.count] + rowShape, scalars: rows)
    return .sparse(try IndexedSlices(values: values, indices: indices, denseShape: v.shape))
}

private func configFixture(_ name: String) throws -> JSONObject {
    try #require(try Fixtures.load("configs/\(name).json").objectValue?["object"]?.objectValue)
}

// MARK: - Defaults, configs, registration

@Suite struct FtrlNadamRMSpropDefaultsTests {
    @Test func ftrlDefaults() throws {
        let opt = try Ftrl()
        #expect(try opt.config.keys == ["name", "learning_rate", "decay", "initial_accumulator_value", "learning_rate_power",
                                        "l1_regularization_strength", "l2_regularization_strength", "beta",
                                        "l2_shrinkage_regularization_strength"])
        #expect(try opt.serialize() == configFixture("ftrl_default"))
        // Reading a hyperparameter creates the float32 hyperparameter variables (as Keras' attribute access does).
        #expect(opt.name == "Ftrl")
        #expect(opt.learningRate.numericValue == Double(Float(0.001)))
        #expect(opt.learningRatePower.numericValue == -0.5)
        #expect(opt.initialAccumulatorValue == 0.1)
        #expect(opt.l1RegularizationStrength.numericValue == 0)
        #expect(opt.l2RegularizationStrength.numericValue == 0)
        #expect(opt.l2ShrinkageRegularizationStrength == 0)
        #expect(opt.beta.numericValue == 0)
        #expect(opt.decay == 0)
        #expect(opt.hasAggregateGradients == false)
    }

    @Test func nadamDefaults() throws {
        let opt = try Nadam()
        #expect(try opt.config.keys == ["name", "learning_rate", "decay", "beta_1", "beta_2", "epsilon"])
        #expect(try opt.serialize() == configFixture("nadam_default"))
        #expect(opt.name == "Nadam")
        #expect(opt.learningRate.numericValue == Double(Float(0.001)))
        #expect(opt.epsilon == 1e-7)
        #expect(opt.scheduleDecay == 0.004)
        #expect(opt.decay == 0.004)
        #expect(opt.hasAggregateGradients)
        #expect(opt.momentumCache == nil)
        #expect(try Nadam(epsilon: 0).epsilon == 1e-7)
    }

    @Test func rmspropDefaults() throws {
        let opt = try RMSprop()
        #expect(try opt.config.keys == ["name", "learning_rate", "decay", "rho", "momentum", "epsilon", "centered"])
        #expect(try opt.serialize() == configFixture("rmsprop_default"))
        #expect(opt.name == "RMSprop")
        #expect(opt.learningRate.numericValue == Double(Float(0.001)))
        #expect(opt.rho.numericValue == Double(Float(0.9)))
        #expect(opt.momentum.numericValue == 0)
        #expect(opt.epsilon == 1e-7)
        #expect(opt.centered == false)
        #expect(opt.usesMomentum == false)
        #expect(try RMSprop(epsilon: 0).epsilon == 1e-7)
        #expect(RMSProp.self == RMSprop.self)
        #expect(try RMSprop(momentum: 0.1).usesMomentum)
        #expect(try RMSprop(momentum: .closure({ 0 })).usesMomentum)  // fixed at construction, as in Keras
    }

    /// Every Keras-written config of these classes deserializes and serializes back to the same JSON text.
    @Test(arguments: Fixtures.configCases.filter { $0.hasPrefix("ftrl") || $0.hasPrefix("nadam") || $0.hasPrefix("rmsprop") })
    func kerasConfigRoundTrip(_ name: String) throws {
        let fixture = try #require(try Fixtures.load("configs/\(name).json").objectValue)
        let object = try #require(fixture["object"]?.objectValue)
        let opt = try Optimizer.deserialize(object)
        #expect(try opt.serialize() == object)
        #expect(try opt.serializedJSON() == fixture["python_json"]?.stringValue)
    }

    @Test func configRoundTrip() throws {
        let ftrl = try Ftrl(learningRate: 0.05, learningRatePower: -0.7, initialAccumulatorValue: 0.3,
                            l1RegularizationStrength: 0.01, l2RegularizationStrength: 0.02,
                            l2ShrinkageRegularizationStrength: 0.1, beta: 0.5, name: "my_ftrl", clipnorm: 0.5, decay: 0.25)
        let ftrl2 = try Ftrl(config: try ftrl.config)
        #expect(try ftrl2.config == ftrl.config)
        #expect(ftrl2.l2ShrinkageRegularizationStrength == 0.1 && ftrl2.clipnorm == 0.5 && ftrl2.decay == 0.25)

        let nadam = try Nadam(learningRate: 0.002, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, scheduleDecay: 0.02,
                              globalClipnorm: 1)
        let nadam2 = try #require(try Optimizer.deserialize(nadam.serialize()) as? Nadam)
        #expect(try nadam2.config == nadam.config)
        #expect(nadam2.scheduleDecay == 0.02)  // Keras would reset it to 0.004 here

        let rms = try RMSprop(learningRate: 0.01, rho: 0.8, momentum: 0.5, epsilon: 1e-6, centered: true, clipvalue: 2)
        let rms2 = try RMSprop(config: try rms.config)
        #expect(try rms2.config == rms.config)
        #expect(rms2.usesMomentum && rms2.centered)
    }

    @Test func registeredClassNames() throws {
        for name in ["Ftrl", "ftrl", "Nadam", "nadam", "RMSprop", "RMSProp", "rmsprop"] {
            let opt = try Optimizer.deserialize(["class_name": .string(name), "config": .object(JSONObject())])
            #expect(type(of: opt).kerasClassName.lowercased() == name.lowercased())
        }
        #expect(try Optimizer.deserialize(json: "rmsprop") is RMSprop)
        #expect(try RMSprop().serialize()["class_name"] == "RMSprop")
        // An unknown key is rejected, naming it.
        #expect(throws: OptimizerError.self) { try Ftrl(config: ["name": "Ftrl", "momentum": 0.9]) }
    }
}

// MARK: - Validation

@Suite struct FtrlNadamRMSpropValidationTests {
    @Test func ftrlValidation() throws {
        expectInvalidArgument("initial_accumulator_value") { try Ftrl(initialAccumulatorValue: -0.1) }
        expectInvalidArgument("learning_rate_power") { try Ftrl(learningRatePower: 0.5) }
        expectInvalidArgument("l1_regularization_strength") { try Ftrl(l1RegularizationStrength: -1) }
        expectInvalidArgument("l2_regularization_strength") { try Ftrl(l2RegularizationStrength: -1) }
        expectInvalidArgument("l2_shrinkage_regularization_strength") { try Ftrl(l2ShrinkageRegularizationStrength: -1) }
        expectInvalidArgument("clipnorm") { try Ftrl(clipnorm: -1) }
        // Zero is allowed everywhere (learningRatePower 0 means a constant per-coordinate rate).
        _ = try Ftrl(learningRatePower: 0, initialAccumulatorValue: 0)
    }

    @Test func rmspropValidation() throws {
        expectInvalidArgument("momentum") { try RMSprop(momentum: 1.5) }
        expectInvalidArgument("momentum") { try RMSprop(momentum: -0.1) }
        expectInvalidArgument("decay") { try RMSprop(decay: -1) }
        _ = try RMSprop(momentum: 1)
    }

    @Test func nadamValidation() throws {
        let schedule = Hyperparameter.schedule(ClosureSchedule { _ in 0.1 })
        expectInvalidArgument("learning_rate") { try Nadam(learningRate: schedule) }
        expectInvalidArgument("learning_rate") { try Nadam(lr: schedule) }
        expectInvalidArgument("schedule_decay") { try Nadam(scheduleDecay: -0.1) }
        expectInvalidArgument("global_clipnorm") { try Nadam(clipnorm: 1, globalClipnorm: 1) }
    }

    /// The sparse FTRL kernel checks its arguments; the dense one does not (TensorFlow's behaviour).
    @Test func ftrlSparseKernelChecks() throws {
        let v = try variable([1, 2, 3, 4], shape: [2, 2], name: "emb")
        let opt = try Ftrl(learningRate: 0.0)
        try opt.applyGradients([(Gradient.dense(try Tensor(shape: [2, 2], scalars: [Float](repeating: 0.1, count: 4))), v)])
        let error = #expect(throws: OptimizerError.self) {
            try opt.applyGradients([(try sparse([0.1, 0.1], [0], for: v), v)])
        }
        guard case .invalidArgument(let field, _)? = error else { return }
        #expect(field == "learning_rate")
    }
}

// MARK: - Behaviour

@Suite struct FtrlBehaviourTests {
    @Test func slotsAreInterleavedAndLrIsIgnored() throws {
        let a = try variable([1, 2], name: "a"), b = try variable([3], name: "b")
        let opt = try Ftrl(initialAccumulatorValue: 0.25)
        try opt.build([a, b])
        #expect(opt.weights.map(\.name) == ["Ftrl/iter", "Ftrl/a/accumulator", "Ftrl/a/linear", "Ftrl/b/accumulator", "Ftrl/b/linear"])
        #expect(try slot(opt, a, "accumulator") == [0.25, 0.25])
        #expect(try slot(opt, a, "linear") == [0, 0])
        // Keras ignores Ftrl's `lr` argument; a config's `lr` is renamed to `learning_rate` and honoured.
        #expect(try Ftrl(lr: 0.5).config["learning_rate"] == .double(0.001))
        #expect(try Ftrl(config: ["lr": 0.5]).config["learning_rate"] == .double(0.5))
    }

    /// With `learningRatePower` ≠ −0.5, TensorFlow computes `n^(−p)` with Eigen's vectorized `pow` on full
    /// packets (8 floats, 4 doubles) and the C library's on the rest; Descent reproduces both. Values:
    /// TensorFlow 2.21, three steps of `Ftrl(0.1, learning_rate_power=-0.7, initial_accumulator_value=0.1)`.
    @Test func powerPathMatchesTensorFlowBitForBit() throws {
        let start: [Double] = [0.5, -1.25, 2.0, 0.75, -0.5, 1.5, -2.0, 0.25, 1.0]
        let grad: [Double] = [0.3, -0.7, 1.1, 0.05, -0.45, 0.9, -1.3, 0.6, 0.35]
        let expected: [DType: [Double]] = [
            .float32: [-0.04827931523323059, -0.670510470867157, 1.4772506952285767, -0.05981806665658951,
                       -0.03576115518808365, 0.975577175617218, -1.5525662899017334, -0.06160954385995865,
                       0.19515962898731232],
            .float64: [-0.048279266196080806, -0.6705105538710139, 1.4772505789406967, -0.059817987388512746,
                       -0.03576116252746923, 0.9755772363860999, -1.5525661462989995, -0.061609507302686585,
                       0.19515961660356587],
        ]
        for dtype in [DType.float32, .float64] {
            let v = Variable(try Tensor(shape: [9], scalars: start).cast(to: dtype), name: "v")
            let g = try Tensor(shape: [9], scalars: grad.map { Float($0) }).cast(to: dtype)  // float32 data, as in TF
            let opt = try Ftrl(learningRate: 0.1, learningRatePower: -0.7, initialAccumulatorValue: 0.1)
            for _ in 0..<3 { try opt.applyGradients([(g, v)]) }
            #expect(values(v) == expected[dtype]!, "\(dtype)")
        }
    }
}

@Suite struct NadamBehaviourTests {
    @Test func emptyUpdatesDoNotCrash() throws {
        let opt = try Nadam()
        #expect(try opt.applyGradients([] as [(Gradient?, Variable)]) == 0)
        try opt.createSlots(for: [])
        #expect(opt.momentumCache == nil)
        let v = try variable([1, 2], name: "v")
        try opt.applyGradients([(try Tensor(shape: [2], scalars: [Float(0.1), 0.2]), v)])
        #expect(opt.weights.map(\.name) == ["Nadam/iter", "Nadam/momentum_cache", "Nadam/v/m", "Nadam/v/v"])
    }

    /// `momentum_cache` is the product of the μ_t, advanced once per apply, with no learning-rate decay
    /// even though `decay` (= schedule decay) is non-zero.
    @Test func momentumCacheAndFormula() throws {
        let opt = try Nadam(learningRate: 0.1)
        let v = try variable([1], name: "v")
        let grads: [Float] = [0.5, -0.25]
        // The formula of the documentation, in Float, as TensorFlow computes it.
        var w: Float = 1, m: Float = 0, s: Float = 0, cache: Float = 1
        let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-7, lr: Float = 0.1
        for (k, g) in grads.enumerated() {
            try opt.applyGradients([(try Tensor(shape: [1], scalars: [g]), v)])
            let t = Float(k + 1)
            let muT = beta1 * (1 - 0.5 * powf(0.96, Float(0.004) * t))
            let muT1 = beta1 * (1 - 0.5 * powf(0.96, Float(0.004) * (t + 1)))
            cache = cache * muT
            let next = cache * muT1
            m = beta1 * m + (1 - beta1) * g
            s = beta2 * s + (1 - beta2) * (g * g)
            let mBar = (1 - muT) * (g / (1 - cache)) + muT1 * (m / (1 - next))
            w = w - lr * mBar / ((s / (1 - powf(beta2, t))).squareRoot() + eps)
            #expect(values(v) == [Double(w)])
            #expect(try opt.momentumCache!.untrackedValue.item() == Double(cache))
        }
        #expect(opt.momentumCache!.dtype == .float32)
    }

    /// `decay` is Keras' schedule decay: a user `decay` is overwritten (Keras' quirk, with a warning here).
    @Test func scheduleDecayIsDecay() throws {
        #expect(try Nadam(decay: 0.5).decay == 0.004)
        #expect(try Nadam(scheduleDecay: 0.02).decay == 0.02)
        #expect(try Nadam(scheduleDecay: 0.02).config["decay"] == .double(0.02))
        #expect(try Nadam(config: ["decay": 0.02]).scheduleDecay == 0.02)
        #expect(try Nadam(config: ["decay": 0.5, "schedule_decay": 0.01]).scheduleDecay == 0.01)
        #expect(try Nadam(config: ["learning_rate": 0.01]).scheduleDecay == 0.004)
    }

    @Test func learningRateClosureAllowedScheduleRejected() throws {
        let v = try variable([1, 2], name: "v")
        let opt = try Nadam(learningRate: .closure({ 0.01 }))
        try opt.applyGradients([(try Tensor(shape: [2], scalars: [Float(0.1), 0.2]), v)])
        opt.learningRate = .schedule(ClosureSchedule { _ in 0.1 })  // not blocked, fails at apply time (as in Keras)
        let error = #expect(throws: OptimizerError.self) {
            try opt.applyGradients([(try Tensor(shape: [2], scalars: [Float(0.1), 0.2]), v)])
        }
        guard case .invalidArgument(let field, _)? = error else { return }
        #expect(field == "learning_rate")
    }

    /// The cache takes the dtype of the first variable and is not advanced by an apply without that dtype.
    @Test func momentumCacheDtypeQuirk() throws {
        let a = Variable(try Tensor(shape: [2], scalars: [1.0, 2.0]), name: "a")  // float64
        let b = try variable([1, 2], name: "b")
        let opt = try Nadam(learningRate: 0.01)
        try opt.applyGradients([(try Tensor(shape: [2], scalars: [0.1, 0.2]), a),
                                (try Tensor(shape: [2], scalars: [Float(0.1), 0.2]), b)])
        #expect(opt.momentumCache!.dtype == .float64)
        let cache = try opt.momentumCache!.untrackedValue.item()
        try opt.applyGradients([(try Tensor(shape: [2], scalars: [Float(0.1), 0.2]), b)])
        #expect(try opt.momentumCache!.untrackedValue.item() == cache)
    }
}

@Suite struct RMSpropBehaviourTests {
    @Test func slotOrder() throws {
        let a = try variable([1], name: "a"), b = try variable([2], name: "b")
        let opt = try RMSprop(momentum: 0.5, centered: true)
        try opt.build([a, b])
        #expect(opt.weights.map(\.name) == ["RMSprop/iter", "RMSprop/a/rms", "RMSprop/b/rms", "RMSprop/a/momentum",
                                            "RMSprop/b/momentum", "RMSprop/a/mg", "RMSprop/b/mg"])
        let plain = try RMSprop()
        try plain.build([a])
        #expect(plain.weights.map(\.name) == ["RMSprop/iter", "RMSprop/a/rms"])
    }

    /// Keras-1 weight lists have no iteration count: it is prepended (as 0).
    @Test func setWeightsPrependsIterationCount() throws {
        let a = try variable([1, 2], name: "a")
        let opt = try RMSprop(momentum: 0.5)
        try opt.applyGradients([(try Tensor(shape: [2], scalars: [Float(0.1), 0.2]), a)])
        #expect(opt.iterationCount == 1)
        try opt.setWeights([try Tensor(shape: [2], scalars: [Float(3), 4]), try Tensor(shape: [2], scalars: [Float(5), 6])])
        #expect(opt.iterationCount == 0)
        #expect(try slot(opt, a, "rms") == [3, 4])
        #expect(try slot(opt, a, "momentum") == [5, 6])
        try opt.setWeights([Tensor(Int64(7)), try Tensor(shape: [2], scalars: [Float(1), 1]), try Tensor(shape: [2], scalars: [Float(2), 2])])
        #expect(opt.iterationCount == 7)
        #expect(throws: OptimizerError.self) { try opt.setWeights([try Tensor(shape: [2], scalars: [Float(1), 1])]) }
    }

    /// Momentum 0: Keras' Python path (ε outside the root); momentum > 0: the fused kernel (ε inside).
    @Test func epsilonPlacement() throws {
        let a = try variable([1], name: "a"), b = try variable([1], name: "b")
        let plain = try RMSprop(learningRate: 0.1, epsilon: 0.5)
        let fused = try RMSprop(learningRate: 0.1, momentum: 0.5, epsilon: 0.5)
        try plain.applyGradients([(try Tensor(shape: [1], scalars: [Float(1)]), a)])
        try fused.applyGradients([(try Tensor(shape: [1], scalars: [Float(1)]), b)])
        let ms: Float = 0.1  // (1 − ρ)·g²
        #expect(values(a) == [Double(1 - Float(0.1) / (ms.squareRoot() + 0.5))])
        #expect(values(b) == [Double(1 - Float(0.1) / (ms + 0.5).squareRoot())])
    }

    /// A subclass (which does not take the fused multi-tensor path) updates exactly like the class.
    @Test func subclassUsesTheSameRule() throws {
        final class Custom: RMSprop {}
        let a = try variable([1, 2, 3], name: "a"), b = try variable([1, 2, 3], name: "b")
        let base = try RMSprop(learningRate: 0.1, momentum: 0.5, centered: true)
        let custom = try Custom(learningRate: 0.1, momentum: 0.5, centered: true)
        for g: [Float] in [[0.1, -0.2, 0.3], [0.5, 0.5, -1]] {
            try base.applyGradients([(try Tensor(shape: [3], scalars: g), a)])
            try custom.applyGradients([(try Tensor(shape: [3], scalars: g), b)])
        }
        #expect(values(a) == values(b))
    }
}

// MARK: - Sparse semantics

/// Sparse gradients: which rows of the variable and of each slot change (spec §2.9).
@Suite struct FtrlNadamRMSpropSparseTests {
    static let start: [Float] = [1, 2, 3, 4, 5, 6]  // shape [3, 2]
    static let ones = [Float](repeating: 1, count: 6)

    /// After a dense step (so every slot row is non-zero), one sparse step touching row 1 only.
    private func run(_ opt: Optimizer, slots: [String]) throws -> (before: [String: [Double]], after: [String: [Double]]) {
        let v = try variable(Self.start, shape: [3, 2], name: "emb")
        try opt.applyGradients([(try Tensor(shape: [3, 2], scalars: Self.ones), v)])
        var before = ["var": values(v)], after = [String: [Double]]()
        for s in slots { before[s] = try slot(opt, v, s) }
        try opt.applyGradients([(try sparse([0.5, -0.5], [1], for: v), v)])
        after["var"] = values(v)
        for s in slots { after[s] = try slot(opt, v, s) }
        return (before, after)
    }

    private static let untouched = [0, 1, 4, 5], touched = [2, 3]

    @Test func rmspropWithoutMomentumIsHalfLazy() throws {
        let (before, after) = try run(RMSprop(learningRate: 0.1, centered: true), slots: ["rms", "mg"])
        for i in Self.untouched {
            #expect(after["var"]![i] == before["var"]![i])  // the variable moves at touched rows only
            #expect(after["rms"]![i] == Double(Float(before["rms"]![i]) * 0.9))  // ms decays everywhere
            #expect(after["mg"]![i] == Double(Float(before["mg"]![i]) * 0.9))
        }
        for i in Self.touched { #expect(after["var"]![i] != before["var"]![i]) }
    }

    @Test func rmspropWithMomentumIsLazy() throws {
        let (before, after) = try run(RMSprop(learningRate: 0.1, momentum: 0.5, centered: true), slots: ["rms", "momentum", "mg"])
        for i in Self.untouched {
            for key in ["var", "rms", "momentum", "mg"] { #expect(after[key]![i] == before[key]![i], "\(key)[\(i)]") }
        }
        for i in Self.touched { #expect(after["var"]![i] != before["var"]![i]) }

        // The dense rule with a zero gradient would still move those rows (momentum, decaying ms).
        let v = try variable(Self.start, shape: [3, 2], name: "emb")
        let dense = try RMSprop(learningRate: 0.1, momentum: 0.5, centered: true)
        try dense.applyGradients([(try Tensor(shape: [3, 2], scalars: Self.ones), v)])
        let afterFirst = values(v)
        try dense.applyGradients([(try Tensor(shape: [3, 2], scalars: [Float]([0, 0, 0.5, -0.5, 0, 0])), v)])
        for i in Self.untouched { #expect(values(v)[i] != afterFirst[i]) }
    }

    @Test func nadamIsHalfLazy() throws {
        let (before, after) = try run(Nadam(learningRate: 0.1), slots: ["m", "v"])
        for i in Self.untouched {
            #expect(after["var"]![i] == before["var"]![i])
            #expect(after["m"]![i] == Double(Float(before["m"]![i]) * 0.9))  // m, v decay everywhere
            #expect(after["v"]![i] == Double(Float(before["v"]![i]) * 0.999))
        }
        for i in Self.touched { #expect(after["var"]![i] != before["var"]![i]) }
    }

    @Test func ftrlIsLazy() throws {
        let (before, after) = try run(Ftrl(learningRate: 0.1, l1RegularizationStrength: 0.01), slots: ["accumulator", "linear"])
        for i in Self.untouched {
            for key in ["var", "accumulator", "linear"] { #expect(after[key]![i] == before[key]![i], "\(key)[\(i)]") }
        }
        for i in Self.touched { #expect(after["accumulator"]![i] != before["accumulator"]![i]) }
    }

    /// Repeated indices are summed first (first-occurrence order), then applied once.
    @Test(arguments: ["Ftrl", "Nadam", "RMSprop"])
    func duplicateIndicesAreSummed(_ className: String) throws {
        func make() throws -> Optimizer {
            try Optimizer.deserialize(["class_name": .string(className), "config": ["learning_rate": 0.1]])
        }
        let a = try variable(Self.start, shape: [3, 2], name: "a"), b = try variable(Self.start, shape: [3, 2], name: "b")
        let optA = try make(), optB = try make()
        try optA.applyGradients([(try sparse([0.5, -0.25, 0.25, 1, 0.125, 0.5], [2, 0, 2], for: a), a)])
        try optB.applyGradients([(try sparse([0.625, 0.25, 0.25, 1], [2, 0], for: b), b)])
        #expect(values(a) == values(b))
    }
}
