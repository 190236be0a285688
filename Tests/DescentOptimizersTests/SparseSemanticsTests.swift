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
