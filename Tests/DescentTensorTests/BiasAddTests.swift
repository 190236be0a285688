import DescentAutodiff
import DescentTensor
import Testing

/// `addingBias(_:relu:)` is `self + bias` then ReLU in one operation: same values, same gradients.
@Suite struct BiasAddTests {
    func inputs(_ shape: [Int], dtype: DType) throws -> (Tensor, Tensor) {
        var generator = SeededGenerator(seed: 11)
        var x = try Tensor.randomNormal(shape: shape, dtype: dtype, using: &generator)
        let b = try Tensor.randomNormal(shape: [shape.last!], dtype: dtype, using: &generator)
        // Some sums exactly 0 (ReLU's kink): x = -b in the first row.
        let n = shape.last!
        let negB = try (-b).doubles
        var values = x.doubles
        for j in 0..<n where j % 3 == 0 { values[j] = negB[j] }
        x = try Tensor(shape: shape, scalars: values).cast(to: dtype)
        return (x, b)
    }

    @Test(arguments: [([33, 40], DType.float32), ([2, 5, 17], .float32), ([7, 9], .float64), ([1100, 64], .float32)])
    func sameValuesAndGradientsAsAddThenRelu(_ shape: [Int], _ dtype: DType) throws {
        let (x0, b0) = try inputs(shape, dtype: dtype)
        // Upstream gradients that are not 0 where the ReLU output is (so the mask matters).
        var generator = SeededGenerator(seed: 12)
        let weights = try Tensor.randomNormal(shape: shape, dtype: dtype, using: &generator)
        for relu in [false, true] {
            let x = Variable(x0, name: "x"), b = Variable(b0, name: "b")
            let fusedTape = GradientTape(persistent: true)
            let fused = try fusedTape.record { try x.value.addingBias(b.value, relu: relu) }
            let fusedLoss = try fusedTape.record { try (fused * weights).sum() }
            let separateTape = GradientTape(persistent: true)
            let separate = try separateTape.record { () throws -> Tensor in
                let sum = try x.value + b.value
                return relu ? try sum.relu() : sum
            }
            let separateLoss = try separateTape.record { try (separate * weights).sum() }
            #expect(fused == separate)
            let gf = try fusedTape.gradient(of: fusedLoss, wrt: [x, b])
            let gs = try separateTape.gradient(of: separateLoss, wrt: [x, b])
            #expect(try gf[0]?.denseValue == gs[0]?.denseValue)
            #expect(try gf[1]?.denseValue == gs[1]?.denseValue)
        }
    }

    @Test func secondOrderGradientsMatch() throws {
        let (x0, b0) = try inputs([4, 6], dtype: .float64)
        func secondOrder(fused: Bool) throws -> Tensor? {
            let x = Variable(x0, name: "x"), b = Variable(b0, name: "b")
            let outer = GradientTape()
            let gradientNorm = try outer.record { () throws -> Tensor in
                let inner = GradientTape()
                let loss = try inner.record { () throws -> Tensor in
                    let y = fused ? try x.value.addingBias(b.value, relu: true) : try (x.value + b.value).relu()
                    return try (y * y * y + y * 0.5).sum()
                }
                let g = try inner.gradient(of: loss, wrt: [x])[0]!.denseValue
                return try (g * g).sum()
            }
            return try outer.gradient(of: gradientNorm, wrt: [b])[0]?.denseValue
        }
        let fused = try #require(try secondOrder(fused: true)), separate = try #require(try secondOrder(fused: false))
        #expect(fused == separate)
    }

    @Test func callerMistakesAreThrown() throws {
        let x = try Tensor.zeros(shape: [3, 4])
        #expect(throws: TensorError.self) { try x.addingBias(try Tensor.zeros(shape: [3])) }
        #expect(throws: TensorError.self) { try x.addingBias(try Tensor.zeros(shape: [1, 4])) }
        #expect(throws: TensorError.self) { try x.addingBias(try Tensor.zeros(shape: [4], dtype: .float64)) }
        #expect(throws: TensorError.self) { try Tensor(Float(1)).addingBias(try Tensor.zeros(shape: [1])) }
        let error = #expect(throws: TensorError.self) { try x.addingBias(try Tensor.zeros(shape: [5]), relu: true) }
        #expect(error?.description.contains("bias_add_relu") == true)
    }
}
