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
///
/// `--shard-optimizer-state` shards Adam's slots across ranks (ZeRO stage 1; the fingerprint covers the
/// full, gathered state, so it is comparable with an unsharded run) and prints `rank R slots E` (the
/// slot elements rank R holds) at the end; `--save` / `--load` write / read the model with its
/// optimizer state (every rank saves, as Keras does: rank 0 to the path, the others to a temporary
/// file they delete).
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
    @Flag(help: "Print the final weights (rank 0), one line per weight: `weight name v1,v2,...`.")
    var printWeights = false
    @Flag(help: "Shard the optimizer's slots across ranks (ZeRO stage 1).")
    var shardOptimizerState = false
    @Option(parsing: .unconditional, help: "Units of the dense case's hidden layer.")
    var hidden: Int = 16
    @Option(parsing: .unconditional, help: "Adam's global_clipnorm.")
    var globalClipnorm: Double?
    @Option(parsing: .unconditional, help: "Save the model with its optimizer state here after training (.h5).")
    var save: String?
    @Option(parsing: .unconditional, help: "Start from this model file (with its optimizer state) instead of a new model.")
    var load: String?

    func validate() throws {
        guard ["dense", "sparse", "auto-reduction", "die", "collectives"].contains(scenario) else {
            throw ValidationError("scenario: dense, sparse, auto-reduction, die or collectives")
        }
        try requirePositive(steps, "--steps")
        try requirePositive(batchSize, "--batch-size")
        try requirePositive(hidden, "--hidden")
        if let globalClipnorm, !(globalClipnorm > 0) { throw ValidationError("--global-clipnorm must be positive") }
    }

    func run() throws {
        let strategy = MultiWorkerMirroredStrategy()
        if scenario == "collectives" { return try collectives(strategy) }
        // Each rank seeds its generator differently: the initial weights agree only through mirroring.
        GlobalRandom.setSeed(UInt64(100 + strategy.replicaID))
        let sparse = scenario == "sparse"
        let (model, optimizer) = try strategy.scope { () throws -> (Sequential, Optimizer) in
            if let load {
                let model = try Sequential.load(fromFile: load)
                guard let optimizer = model.optimizer else { throw ValidationError("--load: \(load) has no optimizer") }
                try optimizer.setShardsStateAcrossReplicas(shardOptimizerState)
                return (model, optimizer)
            }
            let layers: [Layer] = sparse
                ? [try Embedding(inputDim: 50, outputDim: 8), Flatten(), try Dense(5)]
                : [try Dense(hidden, activation: .relu), try Dense(5)]
            let model = try Sequential(layers)
            try model.build(inputShape: sparse ? [1, 3] : [1, 6])
            // Deserialized inside the scope, as a restored optimizer is: it sums across replicas all the same.
            var config = #"{"class_name": "Adam", "config": {"learning_rate": 0.01"#
            if let clipnorm { config += #", "clipnorm": \#(clipnorm)"# }
            if let globalClipnorm { config += #", "global_clipnorm": \#(globalClipnorm)"# }
            let optimizer = try Optimizer.deserialize(json: config + "}}")
            try optimizer.setShardsStateAcrossReplicas(shardOptimizerState)
            model.compile(optimizer: optimizer, loss: SparseCategoricalCrossentropy(fromLogits: true))
            return (model, optimizer)
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
        if shardOptimizerState {
            print("rank \(strategy.replicaID) slots \(optimizer.heldSlotElementCount)")
        }
        if let save {
            // Every rank saves (gathering a sharded state is a collective); only rank 0 keeps its file.
            let path = strategy.isChief ? save : save + ".rank\(strategy.replicaID).h5"
            try model.save(toFile: path)
            if !strategy.isChief { unlink(path) }
        }
        if printWeights && strategy.isChief {
            for w in model.weights {
                print("weight \(w.name) " + (try w.untrackedValue.cast(to: .float64).scalars(as: Double.self)).map { "\($0)" }.joined(separator: ","))
            }
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
