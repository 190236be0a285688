import DescentAutodiff
import DescentKeras
import DescentOptimizers
import DescentTensor
import Testing

/// The README's examples, verbatim, so the README stays true.
@Suite struct ReadmeExampleTests {
    @Test func firstExample() throws {
        let var1 = Variable(Tensor(Float(1)), name: "var1")
        let var2 = Variable(Tensor(Float(2)), name: "var2")

        // Create an optimizer with the desired parameters.
        let opt = try SGD(learningRate: 0.1)
        // `loss` is a closure that takes no argument and returns the value to minimize.
        let loss = { try 3 * var1 * var1 + 2 * var2 * var2 }
        // Eager: minimize updates the listed variables now.
        try opt.minimize(loss, varList: [var1, var2])
        // Graph style: build the step once, run it many times.
        let step = opt.minimizeStep(loss, varList: { [var1, var2] })
        try step.run()

        let tape = GradientTape()
        let value = try tape.record { try loss() }
        let grads = try tape.gradient(of: value, wrt: [var1, var2])          // [6·var1, 4·var2]
        let capped = try grads.map { try $0.map { Gradient.dense(try $0.denseValue.clipped(min: -1, max: 1)) } }
        try opt.applyGradients(Array(zip(capped, [var1, var2])))

        // var1: 1 → 0.4 → 0.16 → 0.064 (gradient 0.96, not capped); var2: 2 → 1.2 → 0.72 → 0.62 (capped at 1).
        #expect(abs(try var1.untrackedValue.item() - 0.064) < 1e-6)
        #expect(abs(try var2.untrackedValue.item() - 0.62) < 1e-6)
        #expect(opt.iterationCount == 3)
    }

    @Test func kerasModelExample() throws {
        GlobalRandom.setSeed(0)
        let input = try Tensor.randomNormal(shape: [16, 5], seed: 1)
        let output = try Tensor.randomNormal(shape: [16, 10], seed: 2)
        let model = try Sequential([Dense(128, activation: .relu), Dense(64, activation: .relu), Dense(10)])
        let opt = try SGD(learningRate: 0.1)
        let lossFn = { try Losses.mse(output, try model(input)).mean() }
        let before = try lossFn().item()
        try opt.minimize(lossFn, varList: { model.trainableWeights })   // weights exist only after the first call
        #expect(try lossFn().item() < before)

        let x = input, y = Tensor((0..<16).map { Int64($0 % 10) })
        model.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [try SparseCategoricalAccuracy(name: "accuracy")])
        let history = try model.fit(x, y, batchSize: 32, epochs: 20, verbose: .silent,
                                    callbacks: [EarlyStopping(patience: 3)], validationSplit: 0.1)
        #expect(!history.epochs.isEmpty)
    }
}
