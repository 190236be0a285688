import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Testing

/// The multi-tensor apply splits elements across threads; results must not depend on the thread count.
@Suite(.serialized) struct ThreadingTests {
    func run(threads: Int) throws -> [Tensor] {
        try ThreadPool.withThreadCount(threads) { try runHere() }
    }

    func runHere() throws -> [Tensor] {
        var generator = SeededGenerator(seed: 21)
        // Uneven sizes so shares cross tensor boundaries.
        let shapes = [[70_001], [3], [257, 129], [1], [40_000]]
        let variables = try shapes.enumerated().map { Variable(try Tensor.randomNormal(shape: $1, using: &generator), name: "v\($0)") }
        let optimizer = try Adam(learningRate: 0.01, amsgrad: true)
        for _ in 0..<3 {
            let grads = try shapes.map { try Tensor.randomNormal(shape: $0, using: &generator) }
            try optimizer.applyGradients(Array(zip(grads, variables)))
        }
        return variables.map(\.untrackedValue) + optimizer.getWeights()
    }

    @Test func resultsDoNotDependOnTheThreadCount() throws {
        let original = ThreadPool.threadCount
        let one = try run(threads: 1), two = try run(threads: 2), four = try run(threads: 4)
        #expect(one == two)
        #expect(one == four)
        #expect(ThreadPool.threadCount == original)
    }

    @Test func threadCountIsAtLeastOne() {
        // Scoped to this task: the other suites running beside this one keep their thread count.
        ThreadPool.withThreadCount(0) { #expect(ThreadPool.threadCount == 1) }
        ThreadPool.withThreadCount(3) {
            #expect(ThreadPool.threadCount == 3)
            ThreadPool.withThreadCount(-2) { #expect(ThreadPool.threadCount == 1) }
        }
    }

    /// The fused path caches each variable's slots by position in the last list; a list in another order,
    /// a shorter list or a longer one must still update every variable with its own slots. Reference: an
    /// Adam subclass, which takes the unfused path (one `resourceApplyDense` per variable, slots by name).
    @Test func changingTheVariableListKeepsEachVariablesSlots() throws {
        final class UnfusedAdam: Adam {}
        func make() throws -> [Variable] {
            try (0..<3).map { k in
                Variable(try Tensor(shape: [4], scalars: (0..<4).map { Float(($0 + 1) * (k + 2)) }), name: "w\(k)")
            }
        }
        let grads = try (0..<3).map { k in try Tensor(shape: [4], scalars: (0..<4).map { Float(k + 1) * 0.1 * Float($0 - 1) }) }
        let fusedVariables = try make(), unfusedVariables = try make()
        let fused = try Adam(learningRate: 0.1, amsgrad: true)
        let unfused = try UnfusedAdam(learningRate: 0.1, amsgrad: true)
        #expect(fused.fusesDenseUpdates && !unfused.fusesDenseUpdates)
        for list in [[0, 1], [0, 1, 2], [2, 1, 0], [1], [0, 1, 2], [2, 0], [0, 1, 2]] {
            try fused.applyGradients(list.map { (grads[$0], fusedVariables[$0]) })
            try unfused.applyGradients(list.map { (grads[$0], unfusedVariables[$0]) })
        }
        // The same list, with the first variable's gradient sparse, then dense again (its cached
        // position then holds no slots).
        let sparse = Gradient.sparse(try IndexedSlices(values: Tensor(shape: [1], scalars: [Float(0.3)]),
                                                       indices: [2], denseShape: [4]))
        for firstIsSparse in [true, false, true, false] {
            for (optimizer, variables) in [(fused as Adam, fusedVariables), (unfused, unfusedVariables)] {
                let first: Gradient = firstIsSparse ? sparse : .dense(grads[0])
                try optimizer.applyGradients([(first, variables[0])] + (1..<3).map { (Gradient.dense(grads[$0]), variables[$0]) })
            }
        }
        #expect(fusedVariables.map(\.untrackedValue) == unfusedVariables.map(\.untrackedValue))
        for k in 0..<3 {
            for slot in ["m", "v", "vhat"] {
                #expect(try fused.slot(for: fusedVariables[k], named: slot).untrackedValue
                        == unfused.slot(for: unfusedVariables[k], named: slot).untrackedValue)
            }
        }
    }
}
