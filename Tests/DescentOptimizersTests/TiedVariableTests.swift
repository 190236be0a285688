import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Foundation
import Testing

// The same variable more than once in one `applyGradients` (tied weights): every update is applied, in
// list order, each reading the variable and slots as the previous one left them, with the step's
// coefficients; `iterations` counts the call once (TensorFlow's `_distributed_apply`).

private func floats(_ v: Variable) throws -> [Float] { try v.untrackedValue.scalars(as: Float.self) }

/// Deterministic values in (-0.5, 0.5), different per `seed`.
private func wave(_ count: Int, seed: Double) -> [Float] {
    (0..<count).map { i -> Float in
        let x: Double = Double(i) * 0.37 + seed
        return Float(0.5 * sin(x))
    }
}

enum TiedKind: String, CaseIterable, Sendable { case dense, sparse }

/// A gradient of `kind` for a variable of `shape`; sparse ones touch rows 1, 3 and 1 again.
private func gradient(_ kind: TiedKind, shape: [Int], seed: Double) throws -> Gradient {
    switch kind {
    case .dense:
        return .dense(try Tensor(shape: shape, scalars: wave(shape.reduce(1, *), seed: seed)))
    case .sparse:
        let indices = [1, 3, 1], row = shape.dropFirst().reduce(1, *)
        let values = try Tensor(shape: [indices.count] + shape.dropFirst(), scalars: wave(indices.count * row, seed: seed))
        return .sparse(try IndexedSlices(values: values, indices: indices, denseShape: shape))
    }
}

/// The built-in optimizers, each with options that exercise its slots.
let tiedOptimizers: [(String, @Sendable () throws -> Optimizer)] = [
    ("sgd", { try SGD(learningRate: 0.1) }),
    ("sgd_momentum", { try SGD(learningRate: 0.1, momentum: 0.9) }),
    ("sgd_nesterov", { try SGD(learningRate: 0.1, momentum: 0.9, nesterov: true) }),
    ("adam", { try Adam(learningRate: 0.01) }),
    ("adam_amsgrad", { try Adam(learningRate: 0.01, amsgrad: true) }),
    ("adagrad", { try Adagrad(learningRate: 0.1) }),
    ("adadelta", { try Adadelta(learningRate: 1.0) }),
    ("adamax", { try Adamax(learningRate: 0.05) }),
    ("ftrl", { try Ftrl(learningRate: 0.1, l1RegularizationStrength: 0.01) }),
    ("nadam", { try Nadam(learningRate: 0.01) }),
    ("rmsprop", { try RMSprop(learningRate: 0.01) }),
    ("rmsprop_momentum_centered", { try RMSprop(learningRate: 0.01, momentum: 0.5, centered: true) }),
]

/// One step applied pair by pair through the per-variable hooks, with one set of coefficients and one
/// increment of `iterations`: the order TensorFlow applies a list in.
private func referenceStep(_ opt: Optimizer, _ pairs: [(Gradient, Variable)]) throws {
    var unique: [Variable] = []
    for (_, v) in pairs where !unique.contains(where: { $0 === v }) { unique.append(v) }
    try opt.build(pairs.map { $0.1 })
    var c = Coefficients(dtype: .float32, iteration: opt.iterationCount)
    try opt.prepare(&c)
    try opt.willApply(coefficients: [.float32: c], variables: pairs.map { $0.1 })
    try DenormalFlushing.run {
        for (g, v) in pairs {
            switch g {
            case .dense(let t):
                try opt.resourceApplyDense(t, v, c)
                if let constraint = v.constraint { try v.assign(constraint.apply(to: v.untrackedValue)) }
            case .sparse(let s):
                try opt.resourceApplySparseDuplicateIndices(s.values, v, s.indices, c)
            }
        }
    }
    try opt.iterations.assignAdd(Tensor(Int64(1)))
}

@Suite struct TiedVariableTests {
    /// The example: TensorFlow gives [-3, -3] (Descent gave [-2, -2]), small and multi-threaded.
    @Test(arguments: [2, 300_000])
    func sgdAppliesBothGradientsOfATiedVariable(count: Int) throws {
        let w = Variable(try Tensor.zeros(shape: [count]), name: "w")
        let opt = try SGD(learningRate: 1)
        let step = try opt.applyGradients([
            (Tensor(repeating: 1, shape: [count]), w), (Tensor(repeating: 2, shape: [count]), w),
        ])
        #expect(step == 1)
        let values = try floats(w)
        #expect(values.allSatisfy { $0 == -3 }, "first wrong element: \(values.first { $0 != -3 } ?? 0)")
    }

    /// SGD with momentum by hand: a ← 0.9a − g; w ← w + a, twice in one step.
    @Test func sgdMomentumByHand() throws {
        let w = Variable(Tensor([Float(1), 2]), name: "w")
        let opt = try SGD(learningRate: 1, momentum: 0.5)
        try opt.applyGradients([(Tensor([Float(1), 1]), w), (Tensor([Float(2), 2]), w)])
        // a = −1, w = 0 | 1; a = 0.5·(−1) − 2 = −2.5, w = −2.5 | −1.5
        #expect(try floats(w) == [-2.5, -1.5])
        #expect(try floats(opt.slot(for: w, named: "momentum")) == [-2.5, -2.5])
        #expect(opt.iterationCount == 1)
    }

    /// A dense and a sparse gradient for one variable (SGD, lr 1): both count, in either order.
    @Test func sgdDenseAndSparseForOneVariable() throws {
        for denseFirst in [true, false] {
            let w = Variable(Tensor([Float(1), 2]), name: "w")
            let dense = Gradient.dense(Tensor([Float(1), 1]))
            let sparse = Gradient.sparse(try IndexedSlices(values: Tensor([Float(5)]), indices: [1], denseShape: [2]))
            let opt = try SGD(learningRate: 1)
            try opt.applyGradients(denseFirst ? [(dense, w), (sparse, w)] : [(sparse, w), (dense, w)])
            #expect(try floats(w) == [0, -4])
        }
    }

    /// Every built-in, every combination of dense and sparse, small and large (multi-threaded split)
    /// variables, two steps, with an untied variable in between: bit-identical to applying the pairs one
    /// by one (slots too).
    @Test(arguments: tiedOptimizers.map(\.0))
    func tiedUpdatesMatchTheSequentialReference(_ name: String) throws {
        let make = try #require(tiedOptimizers.first { $0.0 == name }?.1)
        for rows in [4, 100_000] {
            let shape = [rows, 3]
            for first in TiedKind.allCases {
                for second in TiedKind.allCases {
                    let initial = try Tensor(shape: shape, scalars: wave(rows * 3, seed: 7))
                    let other = try Tensor(shape: [5], scalars: wave(5, seed: 3))
                    let tied = Variable(initial, name: "tied"), untied = Variable(other, name: "untied")
                    let refTied = Variable(initial, name: "tied"), refUntied = Variable(other, name: "untied")
                    let opt = try make(), ref = try make()
                    for step in 0..<2 {
                        let s = Double(step) * 10
                        let g1 = try gradient(first, shape: shape, seed: 1 + s)
                        let g2 = try gradient(second, shape: shape, seed: 2 + s)
                        let gu = try gradient(.dense, shape: [5], seed: 4 + s)
                        try opt.applyGradients([(g1, tied), (gu, untied), (g2, tied)])
                        try referenceStep(ref, [(g1, refTied), (gu, refUntied), (g2, refTied)])
                    }
                    let label = "\(name) \(first)+\(second) rows \(rows)"
                    #expect(try floats(tied) == floats(refTied), "\(label): tied variable")
                    #expect(try floats(untied) == floats(refUntied), "\(label): untied variable")
                    #expect(opt.weights.map(\.name) == ref.weights.map(\.name), "\(label): weight names")
                    for (w, r) in zip(opt.weights, ref.weights) {
                        #expect(w.untrackedValue.doubles.map(\.bitPattern) == r.untrackedValue.doubles.map(\.bitPattern),
                                "\(label): weight \(w.name)")
                    }
                    #expect(opt.iterationCount == 2)
                }
            }
        }
    }

    /// A custom optimizer (per-variable path) also applies a tied variable's updates in order.
    @Test func customOptimizerTiedUpdatesInOrder() throws {
        final class Scale: Optimizer {
            // var ← var·g: order-sensitive together with the addition below.
            override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {
                try v.assign(v.untrackedValue * g + c["lr_t"].value)
            }
        }
        let opt = try Scale(name: "Scale")
        opt.setHyper("learning_rate", 1)
        let w = Variable(Tensor([Float(2)]), name: "w")
        try opt.applyGradients([(Tensor([Float(3)]), w), (Tensor([Float(5)]), w)])
        #expect(try floats(w) == [(2 * 3 + 1) * 5 + 1])
    }

    /// The constraint runs after each dense update of the variable (TF: update, constraint, update,
    /// constraint): NonNeg clamps the first result before the second gradient is applied.
    @Test(arguments: [2, 300_000])
    func constraintRunsAfterEachUpdate(count: Int) throws {
        let w = Variable(try Tensor(repeating: 1, shape: [count]), name: "w", constraint: NonNeg())
        let opt = try SGD(learningRate: 1)
        try opt.applyGradients([(Tensor(repeating: 2, shape: [count]), w), (Tensor(repeating: -1, shape: [count]), w)])
        // 1 − 2 = −1 → 0; 0 + 1 = 1 → 1 (clamping only at the end would give 0).
        #expect(try floats(w).allSatisfy { $0 == 1 })
    }

    /// A list that changes from tied to untied (and back) is re-examined: the cached answer belongs to
    /// the list it was computed for.
    @Test func theDuplicateCheckFollowsTheList() throws {
        let a = Variable(Tensor([Float(0)]), name: "a"), b = Variable(Tensor([Float(0)]), name: "b")
        let opt = try SGD(learningRate: 1)
        let one = Tensor([Float(1)])
        try opt.applyGradients([(one, a), (one, b)])
        try opt.applyGradients([(one, a), (one, a)])
        try opt.applyGradients([(one, a), (one, b)])
        try opt.applyGradients([(one, a), (one, a)])
        #expect(try floats(a) == [-6])
        #expect(try floats(b) == [-2])
    }

    // MARK: TensorFlow 2.21 golden trajectories (Tests/Fixtures/optimizers_tied, scripts/golden)

    @Test func tiedFixturesArePresent() { #expect(Fixtures.tiedCases.count >= 9) }

    /// Each step is one `apply_gradients` call whose pairs name the tied variable twice.
    @Test(arguments: Fixtures.tiedCases)
    func tiedMatchesTensorFlow(_ name: String) throws {
        let fixture = try #require(try Fixtures.load("optimizers_tied/\(name).json").objectValue)
        let input = try #require(fixture["input"]?.objectValue), expected = try #require(fixture["expected"]?.objectValue)
        let opt = try Optimizer.deserialize(try #require(input["optimizer"]?.objectValue))
        func numbers(_ v: JSONValue?) throws -> [Float] { try #require(v?.arrayValue).map { Float($0.doubleValue ?? .nan) } }
        func ints(_ v: JSONValue?) throws -> [Int] { try #require(v?.arrayValue).map { $0.intValue ?? -1 } }
        let variables = try #require(input["variables"]?.arrayValue).map { v -> Variable in
            let o = try #require(v.objectValue)
            let value = try Tensor(shape: ints(o["shape"]), scalars: numbers(o["value"]))
            return Variable(value, name: try #require(o["name"]?.stringValue),
                            constraint: try Constraints.deserialize(o["constraint"] ?? .null))
        }
        let steps = try #require(input["steps"]?.arrayValue), wantSteps = try #require(expected["steps"]?.arrayValue)
        var worst = 0.0
        for (step, want) in zip(steps, wantSteps) {
            let pairs = try #require(step.objectValue?["pairs"]?.arrayValue).map { pair -> (Gradient?, Variable) in
                let o = try #require(pair.objectValue), g = try #require(o["gradient"]?.objectValue)
                let v = variables[try #require(o["variable"]?.intValue)]
                if let dense = g["dense"] { return (.dense(try Tensor(shape: v.shape, scalars: numbers(dense))), v) }
                let indices = try ints(g["indices"])
                let values = try Tensor(shape: [indices.count] + v.shape.dropFirst(), scalars: numbers(g["values"]))
                return (.sparse(try IndexedSlices(values: values, indices: indices, denseShape: ints(g["dense_shape"]))), v)
            }
            try opt.applyGradients(pairs)
            let wantVariables = try #require(want.objectValue?["variables"]?.arrayValue)
            for (v, w) in zip(variables, wantVariables) {
                for (x, e) in zip(try floats(v), try numbers(w)) {
                    let err = relativeError(Double(x), Double(e))
                    if !(err <= worst) { worst = err }  // NaN counts as the worst
                }
            }
        }
        #expect(worst <= 1e-5, "\(name): variables differ by \(worst)")
        #expect(JSONValue.int(Int(opt.iterationCount)) == expected["iterations"])
        #expect(opt.weights.map { JSONValue.string($0.name) } == expected["weight_names"]?.arrayValue)
        let wantWeights = try #require(expected["weights"]?.arrayValue)
        #expect(opt.weights.count == wantWeights.count)
        var worstWeight = 0.0
        for (w, e) in zip(opt.getWeights(), wantWeights) {
            for (x, y) in zip(w.doubles, try #require(e.arrayValue)) {
                let err = relativeError(x, y.doubleValue ?? .nan)
                if !(err <= worstWeight) { worstWeight = err }
            }
        }
        #expect(worstWeight <= 1e-5, "\(name): optimizer weights differ by \(worstWeight)")
    }
}
