import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Testing

/// The multi-tensor apply splits elements across threads; results must not depend on the thread count.
@Suite(.serialized) struct ThreadingTests {
    func run(threads: Int) throws -> [Tensor] {
        let original = ThreadPool.threadCount
        ThreadPool.setThreadCount(threads)
        defer { ThreadPool.setThreadCount(original) }
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
        let original = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(original) }
        ThreadPool.setThreadCount(0)
        #expect(ThreadPool.threadCount == 1)
    }
}
