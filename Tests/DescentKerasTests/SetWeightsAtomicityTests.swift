import DescentAutodiff
import DescentKeras
import DescentTensor
import Testing

/// `Sequential.setWeights` checks the whole list before it assigns any weight.
@Suite struct SetWeightsAtomicityTests {
    /// A list whose last value has the wrong shape, or a wrong dtype, changes no weight and names the
    /// weight. Before, the weights before the bad value were assigned, then the call threw.
    @Test(arguments: [true, false])
    func badValueLateInTheListChangesNoWeight(wrongShape: Bool) throws {
        let model = try Sequential([Dense(3), Dense(2)])
        try model.build(inputShape: [1, 4])
        let before = model.getWeights().map { $0.doubles }
        var values = try model.weights.map { try Tensor.ones(shape: $0.shape, dtype: $0.dtype) }
        let last = model.weights[values.count - 1]
        values[values.count - 1] = wrongShape
            ? try Tensor.ones(shape: [last.shape[0] + 1], dtype: last.dtype)
            : try Tensor.ones(shape: last.shape, dtype: .float64)
        do {
            try model.setWeights(values)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains(last.name), "\(error)")
        }
        #expect(model.getWeights().map { $0.doubles } == before)
        // A good list is assigned whole.
        values[values.count - 1] = try Tensor.ones(shape: last.shape, dtype: last.dtype)
        try model.setWeights(values)
        #expect(model.getWeights().allSatisfy { $0.doubles.allSatisfy { $0 == 1 } })
    }
}
