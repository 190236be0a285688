import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// Adagrad, Adadelta and Adamax: defaults, configs, validation, `setWeights`, lazy sparse updates.
/// (Their trajectories against TensorFlow are in ``GoldenTrajectoryTests``.)
@Suite struct AdagradAdadeltaAdamaxTests {
    // MARK: - Helpers

    /// The `field` of an ``OptimizerError/invalidArgument(field:message:)`` thrown by `body`, checking that
    /// the message names the field too.
    func invalidField(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as OptimizerError {
            guard case .invalidArgument(let field, _) = error else { return "unexpected \(error)" }
            return "\(error)".contains(field) ? field : "message does not name \(field): \(error)"
        } catch {
            return "unexpected \(error)"
        }
    }

    func floats(_ v: Variable) throws -> [Float] { try v.untrackedValue.scalars(as: Float.self) }

    func table() throws -> Variable {
        Variable(try Tensor(shape: [4, 3], scalars: [0.5, -1, 2, 1.5, 0.25, -0.75, -2, 1, 0.125, 3, -0.5, 1] as [Float]),
                 name: "table")
    }

    // MARK: - Defaults and config keys

    @Test func defaultConfigsHaveKerasKeysInOrder() throws {
        #expect(try Adagrad().config == [
            "name": "Adagrad", "learning_rate": 0.001, "decay": 0.0, "initial_accumulator_value": 0.1, "epsilon": 1e-7,
        ])
        #expect(try Adadelta().config == ["name": "Adadelta", "learning_rate": 0.001, "decay": 0.0, "rho": 0.95, "epsilon": 1e-7])
        #expect(try Adamax().config == [
            "name": "Adamax", "learning_rate": 0.001, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
        ])
        let a = try Adagrad(), d = try Adadelta(), x = try Adamax()
        #expect(a.initialAccumulatorValue == 0.1 && a.epsilon == 1e-7 && a.name == "Adagrad")
        #expect(d.epsilon == 1e-7 && d.name == "Adadelta")
        #expect(x.epsilon == 1e-7 && x.name == "Adamax")
        #expect(try Adagrad(config: [:]).config == a.config)
        #expect(try Adadelta(config: [:]).config == d.config)
        #expect(try Adamax(config: [:]).config == x.config)
    }

    @Test func clipKeysComeAfterTheNameAndBeforeTheLearningRate() throws {
        let opt = try Adamax(learningRate: 0.01, name: "mx", clipnorm: 1.5, clipvalue: 0.5, decay: 0.1)
        #expect(try opt.config.keys == ["name", "clipnorm", "clipvalue", "learning_rate", "decay", "beta_1", "beta_2", "epsilon"])
        let delta = try Adadelta(globalClipnorm: 2)
        #expect(try delta.config.keys == ["name", "global_clipnorm", "learning_rate", "decay", "rho", "epsilon"])
    }

    /// The Python-written configs in Tests/Fixtures/configs load and serialize back to the same JSON.
    @Test(arguments: ["adagrad_default", "adagrad_custom", "adagrad_sched_exponential", "adadelta_default",
                      "adadelta_custom", "adadelta_sched_cosine_restarts", "adamax_default", "adamax_custom",
                      "adamax_sched_inverse_time"])
    func pythonConfigsRoundTrip(_ name: String) throws {
        let python = try #require(try Fixtures.load("configs/\(name).json").objectValue?["python_json"]?.stringValue)
        #expect(try Optimizer.deserialize(json: python).serializedJSON() == python)
    }

    @Test func configsRoundTrip() throws {
        let optimizers: [Optimizer] = [
            try Adagrad(learningRate: 0.05, initialAccumulatorValue: 0.25, epsilon: 1e-6, name: "ada", clipvalue: 2, decay: 0.01),
            try Adadelta(learningRate: 1, rho: 0.9, epsilon: 1e-6, globalClipnorm: 3),
            try Adamax(learningRate: .schedule(ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.9)),
                       beta1: 0.8, beta2: 0.95, epsilon: 1e-6, clipnorm: 1),
        ]
        for opt in optimizers {
            let json = try opt.serializedJSON()
            let back = try Optimizer.deserialize(json: json)
            #expect(type(of: back) == type(of: opt))
            #expect(try back.serializedJSON() == json)
            // And after the hyperparameters became float32 variables (one update).
            let v = Variable([Float(1), 2], name: "v")
            try back.applyGradients([(Tensor([Float(0.1), -0.2]), v)])
            let again = try Optimizer.deserialize(json: try back.serializedJSON())
            #expect(try again.serializedJSON() == back.serializedJSON())
        }
    }

    @Test func classNamesMatchCaseInsensitively() throws {
        #expect(try Optimizer.deserialize(json: "adagrad") is Adagrad)
        #expect(try Optimizer.deserialize(json: "ADADELTA") is Adadelta)
        #expect(try Optimizer.deserialize(json: #"{"class_name": "adamax", "config": {}}"#) is Adamax)
    }

    // MARK: - Validation

    @Test func negativeInitialAccumulatorValueIsRejected() {
        #expect(invalidField { _ = try Adagrad(initialAccumulatorValue: -0.1) } == "initial_accumulator_value")
        #expect(invalidField { _ = try Adagrad(initialAccumulatorValue: .nan) } == "initial_accumulator_value")
        #expect(invalidField { _ = try Adagrad(config: ["initial_accumulator_value": -1]) } == "initial_accumulator_value")
        // Checked before the base options, as in Keras.
        #expect(invalidField { _ = try Adagrad(initialAccumulatorValue: -1, clipnorm: -1) } == "initial_accumulator_value")
        #expect(invalidField { _ = try Adagrad(initialAccumulatorValue: 0) } == nil)
    }

    @Test func baseOptionsAreValidatedForEachOptimizer() {
        #expect(invalidField { _ = try Adagrad(clipnorm: -1) } == "clipnorm")
        #expect(invalidField { _ = try Adadelta(clipvalue: -0.5) } == "clipvalue")
        #expect(invalidField { _ = try Adamax(globalClipnorm: -2) } == "global_clipnorm")
        #expect(invalidField { _ = try Adadelta(decay: -0.1) } == "decay")
        #expect(invalidField { _ = try Adamax(clipnorm: 1, globalClipnorm: 1) } == "global_clipnorm")
        #expect(invalidField { _ = try Adamax(config: ["epsilon": "small"]) } == "epsilon")
        #expect(invalidField { _ = try Adadelta(config: ["rho": true]) } == "rho")
    }

    @Test func unknownConfigKeysAreRejected() {
        #expect(throws: OptimizerError.unexpectedKeyword(
            optimizer: "Adamax", key: "momentum",
            allowed: ["name", "clipnorm", "clipvalue", "global_clipnorm", "decay", "lr", "is_legacy_optimizer",
                      "learning_rate", "beta_1", "beta_2", "epsilon"])) {
            _ = try Adamax(config: ["momentum": 0.9])
        }
        #expect(throws: OptimizerError.self) { _ = try Adagrad(config: ["rho": 0.9]) }
        #expect(throws: OptimizerError.self) { _ = try Adadelta(config: ["amsgrad": false]) }
    }

    @Test func zeroEpsilonBecomesTheKerasEpsilon() throws {
        #expect(try Adagrad(epsilon: 0).epsilon == 1e-7)
        #expect(try Adadelta(epsilon: 0).epsilon == 1e-7)
        #expect(try Adamax(epsilon: 0).epsilon == 1e-7)
        #expect(try Adagrad(config: ["epsilon": 0]).config["epsilon"] == .double(1e-7))
        #expect(try Adadelta(config: ["epsilon": nil]).config["epsilon"] == .double(1e-7))
        #expect(try Adamax(config: ["epsilon": 0.0]).serializedJSON().contains(#""epsilon": 1e-07"#))
        // The update uses it too: with ε = 0 a zero accumulator would divide 0 by 0.
        let v = Variable([Float(1)], name: "v")
        let opt = try Adagrad(learningRate: 0.1, initialAccumulatorValue: 0, epsilon: 0)
        try opt.applyGradients([(Tensor([Float(0)]), v)])
        #expect(try floats(v) == [1])
    }

    // MARK: - Slots and weights

    @Test func slotsAreCreatedInTensorFlowsOrder() throws {
        let a = Variable([Float(1), 2], name: "a"), b = Variable([Float(3)], name: "b")
        let grads: [(Tensor, Variable)] = [(Tensor([Float(0.1), 0.2]), a), (Tensor([Float(0.3)]), b)]
        let adagrad = try Adagrad(initialAccumulatorValue: 0.25)
        try adagrad.applyGradients(grads)
        #expect(adagrad.weights.map(\.name) == ["Adagrad/iter", "Adagrad/a/accumulator", "Adagrad/b/accumulator"])
        let adadelta = try Adadelta()
        try adadelta.applyGradients(grads)
        #expect(adadelta.weights.map(\.name) == ["Adadelta/iter", "Adadelta/a/accum_grad", "Adadelta/b/accum_grad",
                                                 "Adadelta/a/accum_var", "Adadelta/b/accum_var"])
        let adamax = try Adamax()
        try adamax.applyGradients(grads)
        #expect(adamax.weights.map(\.name) == ["Adamax/iter", "Adamax/a/m", "Adamax/b/m", "Adamax/a/v", "Adamax/b/v"])
        // The accumulator starts at initialAccumulatorValue, in the variable's dtype.
        let fresh = try Adagrad(initialAccumulatorValue: 0.1)
        let d = Variable(Tensor([0.0, 0.0]), name: "d")
        try fresh.build([d])
        #expect(try fresh.slot(for: d, named: "accumulator").untrackedValue.scalars(as: Double.self) == [0.1, 0.1])
    }

    @Test func setWeightsPrependsTheIterationCountForAdagradAndAdadelta() throws {
        let v = Variable([Float(1), 2], name: "v")
        let adagrad = try Adagrad()
        try adagrad.applyGradients([(Tensor([Float(0.1), 0.2]), v)])
        try adagrad.applyGradients([(Tensor([Float(0.1), 0.2]), v)])
        #expect(adagrad.iterationCount == 2)
        try adagrad.setWeights([Tensor([Float(5), 6])])  // Keras 1: no iteration count
        #expect(adagrad.iterationCount == 0)
        #expect(try floats(adagrad.slot(for: v, named: "accumulator")) == [5, 6])

        let adadelta = try Adadelta()
        try adadelta.build([v])
        try adadelta.setWeights([Tensor([Float(1), 2]), Tensor([Float(3), 4])])
        #expect(adadelta.iterationCount == 0)
        #expect(try floats(adadelta.slot(for: v, named: "accum_grad")) == [1, 2])
        #expect(try floats(adadelta.slot(for: v, named: "accum_var")) == [3, 4])
        // The full list works as for every optimizer.
        try adadelta.setWeights([Tensor(Int64(7)), Tensor([Float(0), 0]), Tensor([Float(0), 0])])
        #expect(adadelta.iterationCount == 7)

        // Adamax has no such override: one value fewer is an error.
        let adamax = try Adamax()
        try adamax.build([v])
        #expect(throws: OptimizerError.self) { try adamax.setWeights([Tensor([Float(1), 2]), Tensor([Float(3), 4])]) }
        // Two values fewer is an error for Adagrad too.
        #expect(throws: OptimizerError.self) { try adadelta.setWeights([Tensor([Float(1), 2])]) }
    }

    // MARK: - Adagrad.from_config

    @Test func adagradFromConfigDefaultsTheAccumulatorAndLoadsSchedules() throws {
        #expect(try Adagrad(config: ["learning_rate": 0.01]).initialAccumulatorValue == 0.1)
        #expect(try Adagrad(config: ["lr": 0.2, "learning_rate": 0.01]).config["learning_rate"] == .double(0.2))

        // Keras' Adagrad.from_config crashes on a schedule dict; Descent loads it.
        let python = try #require(
            try Fixtures.load("configs/adagrad_sched_exponential.json").objectValue?["python_json"]?.stringValue)
        let opt = try #require(try Optimizer.deserialize(json: python) as? Adagrad)
        guard case .schedule(let schedule) = opt.learningRate else {
            Issue.record("learning_rate is not a schedule: \(opt.learningRate)")
            return
        }
        #expect(schedule.className == "ExponentialDecay")
        #expect(try opt.serializedJSON() == python)
        let fromConfig = try #require(try JSONValue(parsing: python).objectValue?["config"]?.objectValue)
        #expect(try Adagrad.fromConfig(fromConfig) is Adagrad)

        // Step 1 uses schedule(0) = 0.1, step 2 schedule(1) < 0.1.
        let v = Variable([Float(1)], name: "v"), w = Variable([Float(1)], name: "w")
        let constant = try Adagrad(learningRate: 0.1)
        try opt.applyGradients([(Tensor([Float(1)]), v)])
        try constant.applyGradients([(Tensor([Float(1)]), w)])
        #expect(try floats(v) == floats(w))
        #expect(try floats(v) == [1 - (1 * Float(0.1)) / ((Float(0.1) + 1).squareRoot() + Float(1e-7))])
        try opt.applyGradients([(Tensor([Float(1)]), v)])
        try constant.applyGradients([(Tensor([Float(1)]), w)])
        #expect(try floats(v)[0] > floats(w)[0])
    }

    // MARK: - Lazy sparse updates

    /// Runs a dense first step (so every slot row is non-zero), then a sparse step on rows 1 and 3 (row 1
    /// twice), on one optimizer; and the same with the sparse step replaced by the equivalent dense
    /// gradient (zero rows 0 and 2) on a twin. Returns variable and slot values after the first step and
    /// after the second step of both.
    func lazyVersusDense(_ make: () throws -> Optimizer, slots: [String]) throws
        -> (before: [[Float]], sparse: [[Float]], dense: [[Float]])
    {
        let first = Tensor([0.3, -0.2, 0.1, 0.5, 0.4, -0.6, 0.2, 0.7, -0.1, -0.3, 0.25, 0.05] as [Float])
        let firstGradient = try first.reshaped(to: [4, 3])
        let a = Float(0.4), b = Float(-0.1), c = Float(0.9), d = Float(-0.5), e = Float(0.2), f = Float(0.3)
        let sparseValues = try Tensor(shape: [3, 3], scalars: [a, b, c, 0.6, -0.8, 0.1, d, e, f] as [Float])
        let sparse = Gradient.sparse(try IndexedSlices(values: sparseValues, indices: [1, 3, 1], denseShape: [4, 3]))
        let dense = try Tensor(shape: [4, 3], scalars: [0, 0, 0, a + d, b + e, c + f, 0, 0, 0, 0.6, -0.8, 0.1] as [Float])

        func state(_ opt: Optimizer, _ v: Variable) throws -> [[Float]] {
            try [floats(v)] + slots.map { try floats(opt.slot(for: v, named: $0)) }
        }
        let v1 = try table(), v2 = try table()
        let o1 = try make(), o2 = try make()
        try o1.applyGradients([(firstGradient, v1)])
        try o2.applyGradients([(firstGradient, v2)])
        let before = try state(o1, v1)
        try o1.applyGradients([(sparse, v1)])
        try o2.applyGradients([(dense, v2)])
        return (before, try state(o1, v1), try state(o2, v2))
    }

    func rows(_ values: [Float], _ rows: [Int]) -> [Float] { rows.flatMap { values[$0 * 3..<$0 * 3 + 3] } }

    @Test func adagradSparseIsLazyAndEqualsDenseWithZeroRows() throws {
        let r = try lazyVersusDense({ try Adagrad(learningRate: 0.1) }, slots: ["accumulator"])
        for (before, after) in zip(r.before, r.sparse) {
            #expect(rows(after, [0, 2]) == rows(before, [0, 2]))   // untouched rows: variable and slot unchanged
            #expect(rows(after, [1, 3]) != rows(before, [1, 3]))
        }
        // A zero gradient leaves an Adagrad row unchanged, so here lazy and dense agree bit for bit.
        #expect(r.sparse == r.dense)
    }

    @Test func adadeltaSparseIsLazyUnlikeDense() throws {
        let r = try lazyVersusDense({ try Adadelta(learningRate: 1) }, slots: ["accum_grad", "accum_var"])
        for (before, after) in zip(r.before, r.sparse) {
            #expect(rows(after, [0, 2]) == rows(before, [0, 2]))
            #expect(rows(after, [1, 3]) != rows(before, [1, 3]))
        }
        // Dense: the variable rows do not move (u = 0) but both accumulators decay by ρ.
        #expect(rows(r.dense[0], [0, 2]) == rows(r.before[0], [0, 2]))
        for s in 1...2 {
            #expect(zip(rows(r.dense[s], [0, 2]), rows(r.before[s], [0, 2])).allSatisfy { $0 == $1 * Float(0.95) })
        }
        // Touched rows: the same rule per row.
        for s in 0...2 { #expect(rows(r.sparse[s], [1, 3]) == rows(r.dense[s], [1, 3])) }
    }

    @Test func adamaxSparseIsLazyUnlikeDense() throws {
        let r = try lazyVersusDense({ try Adamax(learningRate: 0.05) }, slots: ["m", "v"])
        for (before, after) in zip(r.before, r.sparse) {
            #expect(rows(after, [0, 2]) == rows(before, [0, 2]))
            #expect(rows(after, [1, 3]) != rows(before, [1, 3]))
        }
        // Dense: m and v decay and the variable keeps moving on the untouched rows.
        for s in 0...2 {
            #expect(zip(rows(r.dense[s], [0, 2]), rows(r.before[s], [0, 2])).allSatisfy { $0 != $1 })
        }
        // Touched rows agree up to rounding (m·β₁ + g·(1−β₁) versus m + (g − m)·(1−β₁)).
        for s in 0...2 {
            #expect(zip(rows(r.sparse[s], [1, 3]), rows(r.dense[s], [1, 3])).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        }
    }

    @Test func adamaxDenseMaxKeepsTheDecayedNormWhenTheGradientIsNaN() throws {
        // Eigen's cwiseMax(β₂·v, |g|) returns β₂·v when |g| is NaN (dense); tf.maximum propagates NaN (sparse).
        let dense = Variable([Float](repeating: 1, count: 19), name: "dense")    // a SIMD block and a tail
        let opt = try Adamax(learningRate: 0.1)
        try opt.applyGradients([(Tensor([Float](repeating: 0.5, count: 19)), dense)])
        var g = [Float](repeating: 0.5, count: 19)
        g[0] = .nan
        g[18] = .nan
        try opt.applyGradients([(Tensor(g), dense)])
        let v = try floats(opt.slot(for: dense, named: "v"))
        #expect(v[0] == 0.5 * Float(0.999) && v[18] == 0.5 * Float(0.999) && v[1] == 0.5)
        #expect(try floats(dense)[0].isNaN)   // m is NaN

        let table = try table()
        let sparseOpt = try Adamax(learningRate: 0.1)
        try sparseOpt.applyGradients([(.sparse(try IndexedSlices(values: Tensor(shape: [1, 3], scalars: [Float.nan, 1, 1]),
                                                                 indices: [2], denseShape: [4, 3])), table)])
        #expect(try floats(sparseOpt.slot(for: table, named: "v"))[6].isNaN)
    }

    // MARK: - Wide variables

    /// Variables large enough for the multi-threaded dense pass and rows wider than a SIMD vector take
    /// the same arithmetic as the element-by-element rule.
    @Test(arguments: ["adagrad", "adadelta", "adamax"])
    func fusedKernelsMatchTheScalarRule(_ name: String) throws {
        let n = 70_001
        let initial = (0..<n).map { Float(($0 * 7919) % 1000) / 500 - 1 }
        let gradient = (0..<n).map { Float(($0 * 104_729) % 997) / 400 - 1.2 }
        let v = Variable(try Tensor(shape: [n], scalars: initial), name: "big")
        let opt = try Optimizer.deserialize(json: name)
        try opt.applyGradients([(Tensor(gradient), v)])
        try opt.applyGradients([(Tensor(gradient.map { -$0 / 2 }), v)])

        // The same two steps, one element at a time, with the documented formulas.
        var w = initial
        var s1 = [Float](repeating: name == "adagrad" ? 0.1 : 0, count: n), s2 = [Float](repeating: 0, count: n)
        let lr = Float(0.001), eps = Float(1e-7)
        for (step, grads) in [gradient, gradient.map { -$0 / 2 }].enumerated() {
            for i in 0..<n {
                let g = grads[i]
                switch name {
                case "adagrad":
                    s1[i] += g * g
                    w[i] -= (g * lr) / (s1[i].squareRoot() + eps)
                case "adadelta":
                    let rho = Float(0.95)
                    s1[i] = s1[i] * rho + (g * g) * (1 - rho)
                    let u = (s2[i] + eps).squareRoot() * (1 / (s1[i] + eps).squareRoot()) * g
                    w[i] -= u * lr
                    s2[i] = s2[i] * rho + (u * u) * (1 - rho)
                default:
                    let b1 = Float(0.9), b2 = Float(0.999), power = powf(b1, Float(step + 1))
                    s1[i] = s1[i] + (g - s1[i]) * (1 - b1)
                    let decayed = b2 * s2[i]
                    s2[i] = decayed < abs(g) ? abs(g) : decayed
                    w[i] -= lr / (1 - power) * (s1[i] / (s2[i] + eps))
                }
            }
        }
        #expect(try floats(v) == w)
    }
}
