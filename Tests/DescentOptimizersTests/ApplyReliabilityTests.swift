import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Testing

private func floats(_ v: Variable) throws -> [Float] { try v.untrackedValue.scalars(as: Float.self) }

/// Every variable's and weight's bits, the weight names and the iteration count (without creating it).
private struct Snapshot: Equatable {
    let variables: [[UInt64]]
    let weights: [[UInt64]]
    let weightNames: [String]
    let iterations: Int64?

    init(_ opt: Optimizer, _ variables: [Variable]) {
        func bits(_ v: Variable) -> [UInt64] { v.untrackedValue.doubles.map(\.bitPattern) }
        self.variables = variables.map(bits)
        weights = opt.weights.map(bits)
        weightNames = opt.weights.map(\.name)
        iterations = opt.weights.isEmpty ? nil : opt.iterationCount
    }
}

/// Runs `body`, expects it to throw, and expects nothing to have changed.
private func expectNoChange(_ opt: Optimizer, _ variables: [Variable], _ label: String,
                            _ body: () throws -> Void) -> (any Error)? {
    let before = Snapshot(opt, variables)
    var thrown: (any Error)?
    do { try body() } catch { thrown = error }
    #expect(thrown != nil, "\(label): expected an error")
    #expect(Snapshot(opt, variables) == before, "\(label): state changed by a call that threw")
    return thrown
}

private func slices(_ values: [Float], rows: [Int], shape: [Int]) throws -> Gradient {
    .sparse(try IndexedSlices(values: try Tensor(shape: [rows.count] + shape.dropFirst(), scalars: values),
                              indices: rows, denseShape: shape))
}

@Suite struct IterationCountTests {
    /// `iterations` is read as an int64: Int64.max and counts above 2^53 are exact (the count used to go
    /// through a Double and trap on Int64(Double(Int64.max))).
    @Test func iterationCountIsExactAboveTwoToThe53() throws {
        let w = Variable(Tensor([Float(1)]), name: "w")
        let opt = try SGD(learningRate: 0.5)
        try opt.build([w])
        for count: Int64 in [Int64.max, (1 << 53) + 1, Int64.min] {
            try opt.setWeights([Tensor(count)])
            #expect(opt.iterationCount == count)
        }
    }

    /// TensorFlow's int64 `assign_add(1)` at Int64.max wraps around to Int64.min (checked with TF 2.21);
    /// the step still applies and nothing traps (Adam's `iterations + 1` wraps too).
    @Test func incrementAtInt64MaxWrapsAround() throws {
        let w = Variable(Tensor([Float(1)]), name: "w")
        let sgd = try SGD(learningRate: 0.5)
        try sgd.build([w])
        try sgd.setWeights([Tensor(Int64.max)])
        #expect(try sgd.applyGradients([(Tensor([Float(1)]), w)]) == Int64.min)
        #expect(try floats(w) == [0.5])
        #expect(try sgd.applyGradients([(Tensor([Float(1)]), w)]) == Int64.min + 1)
        for make in [{ try Adam() as Optimizer }, { try Adamax() }, { try Nadam() }] {
            let v = Variable(Tensor([Float(1)]), name: "v")
            let opt = try make()
            try opt.build([v])
            var values = opt.getWeights()
            values[0] = Tensor(Int64.max)
            try opt.setWeights(values)
            #expect(try opt.applyGradients([(Tensor([Float(1)]), v)]) == Int64.min)
        }
    }

    /// A float value for the int64 count must be a whole number in range; the list is checked before any
    /// weight is assigned.
    @Test func setWeightsChecksTheWholeListFirst() throws {
        let w = Variable(Tensor([Float(1), 2]), name: "w")
        let opt = try Adam()
        try opt.applyGradients([(Tensor([Float(1), 1]), w)])
        for bad in [Double.nan, .infinity, 2.5, 0x1p63] {
            let values = [Tensor(bad), Tensor([Float(7), 7]), Tensor([Float(7), 7])]
            let error = expectNoChange(opt, [w], "iteration \(bad)") { try opt.setWeights(values) }
            #expect(error.map { "\($0)".contains("Adam/iter") } == true)
        }
        let wrongShape = [Tensor(Double(4)), Tensor([Float(7), 7]), Tensor([Float(7), 7, 7])]
        _ = expectNoChange(opt, [w], "last value's shape") { try opt.setWeights(wrongShape) }
        try opt.setWeights([Tensor(Double(4)), Tensor([Float(7), 7]), Tensor([Float(8), 8])])
        #expect(opt.iterationCount == 4)
    }
}

@Suite struct AllOrNothingTests {
    /// A sparse gradient for a constrained variable, listed after another sparse one: the first used to
    /// be updated before the error.
    @Test func sparseGradientForAConstrainedVariable() throws {
        for make in tiedOptimizers.map(\.1) {
            let a = Variable(try Tensor(shape: [3, 2], scalars: [Float](repeating: 1, count: 6)), name: "a")
            let b = Variable(try Tensor(shape: [3, 2], scalars: [Float](repeating: 1, count: 6)), name: "b", constraint: NonNeg())
            let opt = try make()
            let ga = try slices([1, 2], rows: [1], shape: [3, 2]), gb = try slices([3, 4], rows: [2], shape: [3, 2])
            // First call: no weight may be left behind either.
            let error = expectNoChange(opt, [a, b], "\(opt.name) first call") { try opt.applyGradients([(ga, a), (gb, b)]) }
            #expect(error as? OptimizerError == .constraintWithSparseGradient(variable: "b"))
            #expect(opt.weights.isEmpty)
            try opt.applyGradients([(ga, a), (Gradient.dense(try Tensor(repeating: 0.1, shape: [3, 2])), b)])
            _ = expectNoChange(opt, [a, b], "\(opt.name) later call") { try opt.applyGradients([(ga, a), (gb, b)]) }
        }
    }

    /// A constraint that cannot apply to its variable (MaxNorm over axis 5 of a rank-1 variable) is found
    /// before any update; the axis checks follow the norm's reduction (in range, no repeats).
    @Test func constraintAxisBeyondTheVariablesRank() throws {
        for axis: ConstraintAxis in [5, -2, [0, 0]] {
            let a = Variable(Tensor([Float(1), 2]), name: "a")
            let b = Variable(Tensor([Float(3), 4]), name: "b", constraint: MaxNorm(maxValue: 2, axis: axis))
            let opt = try Adam()
            let error = expectNoChange(opt, [a, b], "axis \(axis)") {
                try opt.applyGradients([(Tensor([Float(1), 1]), a), (Tensor([Float(1), 1]), b)])
            }
            guard case .invalidConstraint(variable: "b", _)? = error as? OptimizerError else {
                Issue.record("expected invalidConstraint for b, got \(String(describing: error))")
                continue
            }
        }
        // Negative axes in range are fine (as in TF).
        let c = Variable(Tensor([Float(3), 4]), name: "c", constraint: MaxNorm(maxValue: 2, axis: -1))
        try SGD(learningRate: 0).applyGradients([(Tensor([Float(0), 0]), c)])
        #expect(try floats(c).map { ($0 * 1000).rounded() } == [1200, 1600])
    }

    /// A sparse gradient with an index out of range or rows that do not match its indices cannot be
    /// made (`IndexedSlices` checks at construction and its fields are immutable), so no such gradient
    /// reaches `applyGradients` after an earlier variable was updated.
    @Test func sparseIndexOutOfRange() throws {
        #expect(throws: TensorError.self) { try IndexedSlices(values: Tensor([Float(1)]), indices: [3], denseShape: [3]) }
        #expect(throws: TensorError.self) { try IndexedSlices(values: Tensor([Float(1)]), indices: [-1], denseShape: [3]) }
        #expect(throws: TensorError.self) { try IndexedSlices(values: Tensor([Float(1)]), indices: [0, 1], denseShape: [3]) }
        // A valid sparse gradient listed after another still applies both, once each.
        for make in tiedOptimizers.map(\.1) {
            let a = Variable(Tensor([Float(1), 2, 3]), name: "a"), b = Variable(Tensor([Float(1), 2, 3]), name: "b")
            let opt = try make()
            try opt.applyGradients([(try slices([1], rows: [1], shape: [3]), a), (try slices([1], rows: [2], shape: [3]), b)])
            #expect(opt.iterationCount == 1)
        }
    }

    /// Ftrl's sparse kernel rejects lr 0 (TF's `SparseApplyFtrl`); a dense and a sparse variable listed
    /// before stay untouched and the first call leaves no weight behind.
    @Test func ftrlSparseArgumentCheckComesFirst() throws {
        let dense = Variable(Tensor([Float(1), 2]), name: "dense"), table = Variable(Tensor([Float(1), 2]), name: "table")
        let opt = try Ftrl(learningRate: 0)
        let g = try slices([1], rows: [0], shape: [2])
        _ = expectNoChange(opt, [dense, table], "Ftrl lr 0") {
            try opt.applyGradients([(Gradient.dense(Tensor([Float(1), 1])), dense), (g, table)])
        }
        #expect(opt.weights.isEmpty)
    }

    /// User code that throws — a schedule, a closure hyperparameter, a transformer, the aggregator — fails
    /// the call before any write: no slot, no iteration, and Nadam's momentum cache does not advance.
    @Test func userCodeThatThrowsChangesNothing() throws {
        struct Boom: Error {}
        let makers: [(String, () throws -> Optimizer)] = [
            ("schedule", { try Adam(learningRate: .schedule(ClosureSchedule { _ in throw Boom() })) }),
            ("closure", { try SGD(learningRate: 0.1, momentum: .closure { throw Boom() }) }),
            ("transformer", { try Nadam(gradientTransformers: [{ _ in throw Boom() }]) }),
            ("aggregator", { try Nadam(gradientAggregator: { _ in throw Boom() }) }),
        ]
        for (label, make) in makers {
            let a = Variable(Tensor([Float(1), 2]), name: "a"), b = Variable(Tensor([Float(3)]), name: "b")
            let opt = try make()
            let pairs: [(Gradient?, Variable)] = [(.dense(Tensor([Float(1), 1])), a), (.dense(Tensor([Float(1)])), b)]
            let error = expectNoChange(opt, [a, b], "\(label) first call") { try opt.applyGradients(pairs) }
            #expect(error is Boom, "\(label): \(String(describing: error))")
            #expect(opt.weights.isEmpty, "\(label)")
        }
        // Nadam after a failed first call builds the same weights as a fresh one (the cache is re-created).
        var fail = true
        let nadam = try Nadam(gradientTransformers: [{ pairs in if fail { throw Boom() }; return pairs }])
        let w = Variable(Tensor([Float(1)]), name: "w")
        #expect(throws: Boom.self) { try nadam.applyGradients([(Tensor([Float(1)]), w)]) }
        fail = false
        try nadam.applyGradients([(Tensor([Float(1)]), w)])
        let fresh = try Nadam(), w2 = Variable(Tensor([Float(1)]), name: "w")
        try fresh.applyGradients([(Tensor([Float(1)]), w2)])
        #expect(nadam.weights.map(\.name) == fresh.weights.map(\.name))
        #expect(nadam.getWeights().map(\.doubles) == fresh.getWeights().map(\.doubles))
    }

    /// Mixed dtypes under global_clipnorm throw in the clip, after `prepare`: Nadam's cache and the slots
    /// created by that call are left as they were.
    @Test func globalClipnormDtypeErrorChangesNothing() throws {
        let a = Variable(Tensor([Float(1)]), name: "a"), b = Variable(Tensor([Double(1)]), name: "b")
        let opt = try Nadam(globalClipnorm: 1)
        _ = expectNoChange(opt, [a, b], "mixed dtypes") {
            try opt.applyGradients([(Tensor([Float(1)]), a), (Tensor([Double(1)]), b)])
        }
        #expect(opt.weights.isEmpty)
        try opt.applyGradients([(Tensor([Float(1)]), a)])
        _ = expectNoChange(opt, [a, b], "mixed dtypes, built") {
            try opt.applyGradients([(Tensor([Float(1)]), a), (Tensor([Double(1)]), b)])
        }
    }

    /// A transformer that returns a gradient for a variable that was not passed (so has no slots) is an
    /// error before any write; one that returns a wrong shape too.
    @Test func transformerOutputIsCheckedAgain() throws {
        let a = Variable(Tensor([Float(1)]), name: "a"), stranger = Variable(Tensor([Float(1)]), name: "stranger")
        let swap = try Adam(gradientTransformers: [{ pairs in pairs.map { ($0.0, stranger) } }])
        let error = expectNoChange(swap, [a, stranger], "stranger") { try swap.applyGradients([(Tensor([Float(1)]), a)]) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("stranger"))
        let reshape = try SGD(gradientTransformers: [{ pairs in try pairs.map { (Gradient.dense(try Tensor.zeros(shape: [2])), $0.1) } }])
        _ = expectNoChange(reshape, [a], "shape") { try reshape.applyGradients([(Tensor([Float(1)]), a)]) }
    }

    /// `build` with a custom `createSlots` that fails on the second variable leaves no slot of the first.
    @Test func buildThatThrowsPartwayRemovesItsSlots() throws {
        struct Refused: Error {}
        final class Picky: Optimizer {
            override func createSlots(for variables: [Variable]) throws {
                for v in variables {
                    if v.name == "bad" { throw Refused() }
                    try addSlot(v, "s")
                }
            }
            override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {}
        }
        let good = Variable(Tensor([Float(1)]), name: "good"), bad = Variable(Tensor([Float(1)]), name: "bad")
        let opt = try Picky(name: "Picky")
        _ = expectNoChange(opt, [good, bad], "build") { try opt.build([good, bad]) }
        _ = expectNoChange(opt, [good, bad], "apply") {
            try opt.applyGradients([(Tensor([Float(1)]), good), (Tensor([Float(1)]), bad)])
        }
        #expect(opt.weights.isEmpty && opt.slotNames.isEmpty)
        #expect(throws: OptimizerError.self) { try opt.slot(for: good, named: "s") }
        try opt.build([good])
        #expect(opt.weights.map(\.name) == ["Picky/iter", "Picky/good/s"])
        let int = Variable(Tensor(Int64(1)), name: "int")
        _ = expectNoChange(opt, [good], "int64 variable") { try opt.build([good, int]) }
    }
}

@Suite struct MissingCoefficientTests {
    /// A typo in a custom optimizer's coefficient name throws (Keras: KeyError) instead of stopping the
    /// process, names what was prepared, and changes nothing.
    @Test func typoInACustomOptimizerThrows() throws {
        final class Typo: Optimizer {
            override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {
                try v.assignSub(g * c["lr_typo"].value)
            }
        }
        let opt = try Typo(name: "Typo")
        opt.setHyper("learning_rate", 0.1)
        let w = Variable(Tensor([Float(1)]), name: "w")
        // Built first: a custom rule runs after the checks, so a first call that fails in it would keep
        // `iterations` (documented: a custom rule that throws may leave the step partial).
        try opt.build([w])
        let error = expectNoChange(opt, [w], "typo") { try opt.applyGradients([(Tensor([Float(1)]), w)]) }
        #expect(error as? OptimizerError == .missingCoefficient(name: "lr_typo", dtype: .float32, available: ["lr_t"]))
        #expect(error.map { "\($0)".contains("lr_typo") && "\($0)".contains("lr_t") } == true)
    }

    /// A fused custom kernel reads its coefficients when it is built, before any variable is written: with
    /// two variables, the first is not updated either.
    @Test func typoInACustomFusedKernelThrowsBeforeAnyWrite() throws {
        final class FusedTypo: SGD {
            override var fusesDenseUpdates: Bool { true }
            override func denseKernel(for c: Coefficients) throws -> DenseKernel? {
                let lr = try Float(c["learning_rat"].value)
                return { job, range in
                    let w = job.variablePointer(Float.self), g = job.gradientPointer(Float.self)
                    for i in range { w[i] -= lr * g[i] }
                }
            }
        }
        let opt = try FusedTypo(learningRate: 0.1)
        let a = Variable(Tensor([Float(1)]), name: "a"), b = Variable(Tensor([Float(1)]), name: "b")
        let error = expectNoChange(opt, [a, b], "fused typo") {
            try opt.applyGradients([(Tensor([Float(1)]), a), (Tensor([Float(1)]), b)])
        }
        guard case .missingCoefficient(name: "learning_rat", dtype: .float32, _)? = error as? OptimizerError else {
            Issue.record("expected missingCoefficient, got \(String(describing: error))")
            return
        }
    }

    @Test func coefficientsReadAndWrite() throws {
        var c = Coefficients(dtype: .float32, iteration: 3)
        c.set("a", c.scalar(0.1))
        #expect(try c["a"].value == Double(Float(0.1)))
        #expect(c.contains("a") && !c.contains("b"))
        #expect(c.names == ["a"])
        #expect(throws: OptimizerError.missingCoefficient(name: "b", dtype: .float32, available: ["a"])) { try c["b"] }
    }
}

@Suite struct NonFiniteGradientTests {
    private func isNaN(_ values: [Float]) -> Bool { values.allSatisfy(\.isNaN) }

    /// TF 2.21: `tf.clip_by_norm([nan, 1e6, 1], 1)` is all NaN (`tf.maximum` propagates NaN); it used to
    /// leave the gradient unclipped and move the variable by −1e6.
    @Test func clipnormWithANaNNormGivesNaN() throws {
        let dense = try GradientClipping.clipByNorm(.dense(Tensor([Float.nan, 1e6, 1])), 1)
        #expect(isNaN(try dense.denseValue.scalars(as: Float.self)))
        let w = Variable(Tensor([Float(0), 0, 0]), name: "w")
        let opt = try SGD(learningRate: 1, clipnorm: 1)
        #expect(try opt.applyGradients([(Tensor([Float.nan, 1e6, 1]), w)]) == 1)
        #expect(isNaN(try floats(w)))
        // IndexedSlices: the norm over the values, so every value row becomes NaN.
        let sparse = try GradientClipping.clipByNorm(slices([.nan, 1, 3, 4], rows: [0, 1], shape: [3, 2]), 1)
        #expect(isNaN(try #require(sparse.indexedSlices).values.scalars(as: Float.self)))
    }

    /// TF 2.21: `clip_by_norm([±inf, 1e6, 1], 1)` is `[nan, 0, 0]`; `clip_by_value([nan, inf, −inf, 0.3],
    /// −0.5, 0.5)` is `[nan, 0.5, −0.5, 0.3]`; `clip_by_global_norm` with a NaN is NaN everywhere.
    @Test func infinitiesAndClipvalue() throws {
        for inf in [Float.infinity, -.infinity] {
            let clipped = try GradientClipping.clipByNorm(.dense(Tensor([inf, 1e6, 1])), 1).denseValue.scalars(as: Float.self)
            #expect(clipped[0].isNaN && clipped[1] == 0 && clipped[2] == 0)
        }
        let value = try GradientClipping.clipByValue(.dense(Tensor([Float.nan, .infinity, -.infinity, 0.3])), 0.5)
            .denseValue.scalars(as: Float.self)
        #expect(value[0].isNaN && Array(value.dropFirst()) == [0.5, -0.5, 0.3])
        let global = try GradientClipping.clipByGlobalNorm([.dense(Tensor([Float.nan, 1])), .dense(Tensor([Float(2)]))], 1)
        #expect(try global.allSatisfy { isNaN(try $0.denseValue.scalars(as: Float.self)) })
    }

    /// NaN gradients are not filtered: they flow into the update, slots included, and `iterations` counts
    /// the step (TF has no check either).
    @Test func nanGradientsStillCount() throws {
        let w = Variable(Tensor([Float(1), 2]), name: "w")
        let opt = try Adam()
        #expect(try opt.applyGradients([(Tensor([Float.nan, 1]), w)]) == 1)
        let values = try floats(w)
        #expect(values[0].isNaN && !values[1].isNaN)
        #expect(try floats(opt.slot(for: w, named: "m"))[0].isNaN)
    }
}
