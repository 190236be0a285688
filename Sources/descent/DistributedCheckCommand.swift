import ArgumentParser
import Descent
import Foundation

/// `descent distributed-check CASE` (hidden, for the test suite): runs one multi-worker scenario under
/// `MultiWorkerMirroredStrategy` and prints, on every rank, one line per checkpoint of the form
/// `rank R step S <fingerprint>` (the FNV-1a hash of the bytes of every weight and optimizer slot), so
/// that `Tests/DescentCLITests/DistributedTests.swift` can check that all ranks hold bit-identical
/// values after every step, and compare them with a one-process run.
///
/// Cases: `dense` (an MLP, a custom loop with `computeAverageLoss`, Adam), `sparse` (an Embedding
/// model, whose gradients are `IndexedSlices`), `auto-reduction` (a loss left on the default reduction
/// in a custom loop: must fail), `die` (rank 1 exits by SIGKILL after one step), `collectives`
/// (`reduce`, `any`, `broadcast` and a shape mismatch between ranks: prints `rank R <check> <value>`).
struct DistributedCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distributed-check",
        abstract: "Test helper: a multi-worker scenario that prints weight fingerprints per rank and step.",
        shouldDisplay: false)

    @Argument(help: "dense, sparse, auto-reduction, die or collectives")
    var scenario: String
    @Option(parsing: .unconditional, help: "Training steps.")
    var steps: Int = 3
    @Option(parsing: .unconditional, help: "Global batch size.")
    var batchSize: Int = 24
    @Option(parsing: .unconditional, help: "The optimizer's clipnorm (clipping runs after the cross-replica sum).")
    var clipnorm: Double?
    @Flag(help: "applyGradients(experimentalAggregateGradients: false): no cross-replica sum (replicas diverge).")
    var noAggregate = false
    @Option(help: "Rank 0 writes the final weights here, one line per weight: `name v1,v2,...`.")
    var weightsOut: String?

    func validate() throws {
        guard ["dense", "sparse", "auto-reduction", "die", "collectives"].contains(scenario) else {
            throw ValidationError("scenario: dense, sparse, auto-reduction, die or collectives")
        }
        try requirePositive(steps, "--steps")
        try requirePositive(batchSize, "--batch-size")
    }

    func run() throws {
        let strategy = MultiWorkerMirroredStrategy()
        if scenario == "collectives" { return try collectives(strategy) }
        // Each rank seeds its generator differently: the initial weights agree only through mirroring.
        GlobalRandom.setSeed(UInt64(100 + strategy.replicaID))
        let sparse = scenario == "sparse"
        let (model, optimizer) = try strategy.scope { () throws -> (Sequential, Optimizer) in
            let layers: [Layer] = sparse
                ? [try Embedding(inputDim: 50, outputDim: 8), Flatten(), try Dense(5)]
                : [try Dense(16, activation: .relu), try Dense(5)]
            let model = Sequential(layers)
            try model.build(inputShape: sparse ? [1, 3] : [1, 6])
            // Deserialized inside the scope, as a restored optimizer is: it sums across replicas all the same.
            var config = #"{"class_name": "Adam", "config": {"learning_rate": 0.01"#
            if let clipnorm { config += #", "clipnorm": \#(clipnorm)"# }
            return (model, try Optimizer.deserialize(json: config + "}}"))
        }
        // The same data on every rank (fixed seed); each rank takes its shard of every global batch.
        var g = SeededGenerator(seed: 11)
        let n = batchSize * steps
        let x = sparse ? try Tensor((0..<(n * 3)).map { _ in Int64(g.next() % 50) }).reshaped(to: [n, 3])
                       : try Tensor.randomNormal(shape: [n, 6], using: &g)
        let y = Tensor((0..<n).map { _ in Int64(g.next() % 5) })
        let data = try strategy.distribute(x, y, globalBatchSize: batchSize)
        let lossObject = scenario == "auto-reduction"
            ? SparseCategoricalCrossentropy(fromLogits: true)
            : SparseCategoricalCrossentropy(fromLogits: true, reduction: .none)
        report(strategy, step: 0, model, optimizer)
        for batch in data {
            try strategy.run {
                let tape = GradientTape()
                let loss = try tape.record { () throws -> Tensor in
                    let logits = try model(batch.x, training: true)
                    let perExample = try lossObject(batch.y, logits, sampleWeight: nil)
                    return try computeAverageLoss(perExample, globalBatchSize: batch.globalBatchSize)
                }
                let variables = model.trainableWeights
                let grads = try tape.gradient(of: loss, wrt: variables)
                try optimizer.applyGradients(Array(zip(grads, variables)), experimentalAggregateGradients: !noAggregate)
            }
            report(strategy, step: batch.step + 1, model, optimizer)
            if scenario == "die" && strategy.replicaID == 1 { kill(getpid(), SIGKILL) }
        }
        if let weightsOut, strategy.isChief {
            var text = ""
            for w in model.weights {
                text += "\(w.name) " + (try w.untrackedValue.cast(to: .float64).scalars(as: Double.self)).map { "\($0)" }.joined(separator: ",") + "\n"
            }
            try AtomicFile.write(text, to: weightsOut)
        }
    }

    /// Each collective of the strategy's public API once, with rank-dependent inputs.
    func collectives(_ strategy: Strategy) throws {
        let r = Double(strategy.replicaID)
        func say(_ check: String, _ value: String) {
            FileHandle.standardOutput.write(Data("rank \(strategy.replicaID) \(check) \(value)\n".utf8))
        }
        let t = Tensor([Float(r), Float(10 * r + 1)])
        say("sum", try strategy.reduce(.sum, t).doubles.map { "\($0)" }.joined(separator: ","))
        say("mean", try strategy.reduce(.mean, t).doubles.map { "\($0)" }.joined(separator: ","))
        say("numbers", strategy.reduce(.sum, [r, 1]).map { "\($0)" }.joined(separator: ","))
        say("any", "\(strategy.any(strategy.replicaID == strategy.numReplicasInSync - 1)),\(strategy.any(false))")
        let v = Variable(Tensor([Float(r + 5)]), name: "v")
        try strategy.broadcast([v], root: strategy.numReplicasInSync - 1)
        say("broadcast", "\(try v.untrackedValue.item())")
        // Different shapes on different ranks: every rank gets the same thrown error, nobody hangs.
        let odd = Variable(try Tensor.zeros(shape: [strategy.replicaID + 1]), name: "odd")
        do {
            try strategy.broadcast([odd])
            say("mismatch", "none")
        } catch {
            say("mismatch", "\(error)".replacingOccurrences(of: " ", with: "_"))
        }
    }

    func report(_ strategy: Strategy, step: Int, _ model: Sequential, _ optimizer: Optimizer) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in model.weights + optimizer.weights {
            let t = v.untrackedValue
            let bytes: [UInt8] = t.dtype == .float32
                ? (try! t.scalars(as: Float.self)).flatMap { withUnsafeBytes(of: $0.bitPattern) { Array($0) } }
                : (try! t.cast(to: .float64).scalars(as: Double.self)).flatMap { withUnsafeBytes(of: $0.bitPattern) { Array($0) } }
            for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        // Written unbuffered: the `die` case kills the process right after.
        FileHandle.standardOutput.write(Data("rank \(strategy.replicaID) of \(strategy.numReplicasInSync) step \(step) \(String(hash, radix: 16))\n".utf8))
    }
}
