import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Testing

/// TensorFlow's sparse semantics for SGD and Adam (Adagrad & co. are tested with their optimizers).
@Suite struct SparseSemanticsTests {
    func table() throws -> Variable {
        Variable(try Tensor(shape: [4, 2], scalars: [1, 1, 2, 2, 3, 3, 4, 4] as [Float]), name: "table")
    }

    func rows(_ indices: [Int], _ values: [Float]) throws -> Gradient {
        .sparse(try IndexedSlices(values: Tensor(shape: [indices.count, 2], scalars: values), indices: indices, denseShape: [4, 2]))
    }

    @Test func adamUpdatesEveryRowAndDecaysEverySlotRow() throws {
        let v = try table()
        let opt = try Adam(learningRate: 0.1)
        try opt.applyGradients([(try rows([1], [1, 1]), v)])       // step 1 touches row 1 only
        let afterFirst = try v.untrackedValue.scalars(as: Float.self)
        #expect(afterFirst[0] == 1 && afterFirst[4] == 3)            // untouched rows: zero moments, no move yet
        try opt.applyGradients([(try rows([2], [1, 1]), v)])       // step 2 touches row 2
        let values = try v.untrackedValue.scalars(as: Float.self)
        #expect(values[2] < afterFirst[2])                           // row 1 keeps moving: its m decays but is not 0
        let m = try opt.slot(for: v, named: "m").untrackedValue.scalars(as: Float.self)
        #expect(m[2] == (1 - Float(0.9)) * Float(0.9))               // m of row 1 decayed on a step that did not touch it
    }

    /// The one-pass sparse Adam kernel does, per element, exactly Keras' three steps (decay every row,
    /// scatter-add the scaled gradient rows, move every row): compared bit for bit with those steps written
    /// out, on a table large enough to be split across threads, with repeated and unsorted indices.
    /// Without deduplication (a subclass passing repeated indices straight to `resourceApplySparse`), each
    /// repeat adds its gradient in turn, in list order, as TensorFlow's scatter-add.
    @Test(arguments: [(false, true), (true, true), (false, false), (true, false)])
    func sparseAdamMatchesKerasStepsExactly(amsgrad: Bool, deduplicate: Bool) throws {
        final class Capturing: Adam {
            nonisolated(unsafe) var coefficients: Coefficients?
            nonisolated(unsafe) var deduplicate = true
            override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                              _ c: Coefficients) throws {
                coefficients = c
                try super.resourceApplySparse(values, variable, indices, c)
            }
            override func resourceApplySparseDuplicateIndices(_ values: Tensor, _ variable: Variable,
                                                              _ indices: [Int], _ c: Coefficients) throws {
                if deduplicate { return try super.resourceApplySparseDuplicateIndices(values, variable, indices, c) }
                try resourceApplySparse(values, variable, indices, c)
            }
        }
        let rows = 3001, width = 33
        var generator = SeededGenerator(seed: 5)
        let table = Variable(try Tensor.randomNormal(shape: [rows, width], using: &generator), name: "emb")
        let opt = try Capturing(learningRate: 0.01, amsgrad: amsgrad)
        opt.deduplicate = deduplicate
        func gradient(_ indices: [Int]) throws -> Gradient {
            .sparse(try IndexedSlices(values: Tensor.randomNormal(shape: [indices.count, width], using: &generator),
                                      indices: indices, denseShape: [rows, width]))
        }
        try opt.applyGradients([(try gradient([7, 3000, 7, 1500]), table)])
        let indices = [2999, 0, 1234, 0, 64, 65, 1500, 2999, 12]
        let step = try gradient(indices)
        func floats(_ t: Tensor) throws -> [Float] { try t.scalars(as: Float.self) }
        var w = try floats(table.untrackedValue)
        var m = try floats(opt.slot(for: table, named: "m").untrackedValue)
        var v = try floats(opt.slot(for: table, named: "v").untrackedValue)
        var vhat = amsgrad ? try floats(opt.slot(for: table, named: "vhat").untrackedValue) : []
        try opt.applyGradients([(step, table)])
        let c = try #require(opt.coefficients)
        let b1 = try c["beta_1_t"].value(as: Float.self), b2 = try c["beta_2_t"].value(as: Float.self)
        let omb1 = try c["one_minus_beta_1_t"].value(as: Float.self), omb2 = try c["one_minus_beta_2_t"].value(as: Float.self)
        let lr = try c["lr"].value(as: Float.self), eps = try c["epsilon"].value(as: Float.self)
        // Keras: duplicates summed (first-occurrence order), m ← m·β₁, v ← v·β₂, scatter-add, then the step.
        let slices = try #require(step.indexedSlices)
        let unique = deduplicate ? slices.deduplicated() : slices
        let g = try floats(unique.values)
        for i in m.indices { m[i] = m[i] * b1; v[i] = v[i] * b2 }
        for (r, index) in unique.indices.enumerated() {
            for j in 0..<width {
                let gj = g[r * width + j]
                m[index * width + j] += gj * omb1
                v[index * width + j] += (gj * gj) * omb2
            }
        }
        for i in w.indices {
            if amsgrad { vhat[i] = Swift.max(vhat[i], v[i]) }
            w[i] -= lr * m[i] / ((amsgrad ? vhat[i] : v[i]).squareRoot() + eps)
        }
        #expect(try floats(table.untrackedValue) == w)
        #expect(try floats(opt.slot(for: table, named: "m").untrackedValue) == m)
        #expect(try floats(opt.slot(for: table, named: "v").untrackedValue) == v)
        if amsgrad { #expect(try floats(opt.slot(for: table, named: "vhat").untrackedValue) == vhat) }
    }

    @Test func sgdWithoutMomentumAppliesEveryDuplicate() throws {
        let v = try table()
        let opt = try SGD(learningRate: 1)
        try opt.applyGradients([(try rows([0, 0, 3], [0.5, 0.5, 0.25, 0.25, 1, 1]), v)])
        #expect(try v.untrackedValue.scalars(as: Float.self) == [0.25, 0.25, 2, 2, 3, 3, 3, 3])
    }

    @Test func sgdMomentumIsLazy() throws {
        let v = try table()
        let opt = try SGD(learningRate: 1, momentum: 0.5)
        try opt.applyGradients([(try rows([0], [1, 1]), v)])
        try opt.applyGradients([(try rows([1], [1, 1]), v)])
        // Row 0's momentum was not decayed or applied on step 2 (dense momentum would move it by 0.5).
        #expect(try v.untrackedValue.scalars(as: Float.self) == [0, 0, 1, 1, 3, 3, 4, 4])
        #expect(try opt.slot(for: v, named: "momentum").untrackedValue.scalars(as: Float.self) == [-1, -1, -1, -1, 0, 0, 0, 0])
    }

    @Test func embeddingGradientsFromTheTapeTakeTheSparsePath() throws {
        let v = try table()
        let opt = try SGD(learningRate: 1, momentum: 0.5)
        try opt.minimize({ try v.value.gather([3, 3]).sum() }, varList: [v])
        // Both occurrences summed (deduplicated) before the lazy momentum rule: row 3 moves by 2.
        #expect(try v.untrackedValue.scalars(as: Float.self) == [1, 1, 2, 2, 3, 3, 2, 2])
    }
}
