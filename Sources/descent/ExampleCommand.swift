import ArgumentParser
import Descent

/// `descent example`: the seed's first usage, minimised by gradient descent on the tape.
struct ExampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "Minimise loss = 3·v1² + 2·v2² with gradients from a GradientTape.")

    @Option(parsing: .unconditional, help: "Learning rate of the plain gradient-descent steps (finite, > 0).")
    var learningRate: Double = 0.1

    @Option(parsing: .unconditional, help: "Number of steps (>= 0).")
    var steps: Int = 20

    func validate() throws {
        try requireLearningRate(learningRate)
        try requireNonNegative(steps, "--steps")
    }

    func run() throws {
        let v1 = Variable(Tensor(Float(1)), name: "var1")
        let v2 = Variable(Tensor(Float(2)), name: "var2")
        print("loss = 3 * var1 * var1 + 2 * var2 * var2, learning rate \(learningRate)")
        for step in 0...steps {
            let tape = GradientTape()
            let loss = try tape.record { try 3 * v1 * v1 + 2 * v2 * v2 }
            let grads = try tape.gradient(of: loss, wrt: [v1, v2])
            if step % 5 == 0 || step == steps {
                print("step \(step): loss \(try loss.item()), var1 \(try v1.untrackedValue.item()), var2 \(try v2.untrackedValue.item())")
            }
            if step == steps { break }
            for (v, g) in zip([v1, v2], grads) {
                if let g { try v.assignSub(try g.denseValue * learningRate) }
            }
        }
    }
}
