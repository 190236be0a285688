import ArgumentParser
import Descent

/// `descent bench train`: training steps per second of two MLPs with `Sequential`'s real training step.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps (forward, tape, backward, Adam update) of the digits MLP and a larger MLP.",
        discussion: """
            digits: 64→128→64→10 (ReLU), batch 32, on the bundled digits (1437 training images). \
            large: 784→1024→1024→10 (ReLU), batch 256, synthetic normal inputs and random labels. \
            cnn: the digits CNN of `descent train --model cnn` (Conv2D, pooling, Dense), batch 32, on the digits. \
            Both: SparseCategoricalCrossentropy(fromLogits: true), Adam with Keras defaults. \
            mode train_step times Sequential.trainStep on batches sliced beforehand (best of 3 repeats); \
            mode fit times whole epochs of Sequential.fit (shuffling, batch gathering, silent), best epoch after the first. \
            With --strategy multi-worker under mpirun the batch is the global batch: each rank trains on its \
            shard and gradients are summed across ranks; rank 0 prints.
            """)

    @Option(help: "Which model: digits, large, cnn or all (digits and large).")
    var model: String = "all"
    @Option(parsing: .unconditional, help: "Timed train steps per repeat (default: 200 for digits, 20 for large).")
    var steps: Int?
    @Option(parsing: .unconditional, help: "Epochs of the fit measurement (the first is not counted).")
    var epochs: Int = 4
    @Option(parsing: .unconditional, help: "Threads (default: DESCENT_NUM_THREADS or the number of cores).")
    var threads: Int?
    @Option(help: "default, or multi-worker (one replica per MPI rank: mpirun -np N descent bench train ...).")
    var strategy: String = "default"
    @Flag(help: "With --strategy multi-worker: shard the optimizer's slots across ranks (ZeRO stage 1).")
    var shardOptimizerState = false
    @Flag(help: "Print one JSON object per measurement instead of a table.")
    var json = false

    func validate() throws {
        guard ["default", "multi-worker"].contains(strategy) else { throw ValidationError("--strategy: default or multi-worker") }
        guard ["digits", "large", "cnn", "all"].contains(model) else { throw ValidationError("--model: digits, large, cnn or all") }
        if let steps { try requirePositive(steps, "--steps") }
        guard epochs >= 2 else { throw ValidationError("--epochs must be at least 2 (the first is a warm-up), got \(epochs)") }
        try requireThreads(threads)
    }

    struct Workload {
        let name: String
        let layers: [Int]
        let batch: Int
        let x: Tensor
        let y: Tensor
        let defaultSteps: Int
    }

    func workloads() throws -> [Workload] {
        var result: [Workload] = []
        if model == "cnn" {
            let digits = try Digits.load().train
            return [Workload(name: "cnn", layers: [64, 10], batch: 32, x: digits.x, y: digits.y, defaultSteps: 100)]
        }
        if model != "large" {
            let digits = try Digits.load().train
            result.append(Workload(name: "digits", layers: [64, 128, 64, 10], batch: 32, x: digits.x, y: digits.y, defaultSteps: 200))
        }
        if model != "digits" {
            let n = 256 * 20
            var g = SeededGenerator(seed: 7)
            let x = try Tensor.randomNormal(shape: [n, 784], using: &g)
            let y = Tensor((0..<n).map { _ in Int64(g.next() % 10) })
            result.append(Workload(name: "large", layers: [784, 1024, 1024, 10], batch: 256, x: x, y: y, defaultSteps: 20))
        }
        return result
    }

    func makeModel(_ w: Workload, _ strategy: Strategy) throws -> Sequential {
        try strategy.scope {
            GlobalRandom.setSeed(0)
            if w.name == "cnn" {
                let model = try DigitsCNN.model()
                model.compile(optimizer: try Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
                return model
            }
            let hidden = try w.layers.dropFirst().dropLast().map { try Dense($0, activation: .relu) }
            let model = try Sequential(hidden + [Dense(w.layers.last!)])
            try model.build(inputShape: [1, w.layers[0]])
            let optimizer = try Adam()
            try optimizer.setShardsStateAcrossReplicas(shardOptimizerState)
            model.compile(optimizer: optimizer, loss: SparseCategoricalCrossentropy(fromLogits: true))
            return model
        }
    }

    func run() throws {
        if let threads { ThreadPool.setThreadCount(threads) }
        let strategy: Strategy = self.strategy == "multi-worker" ? MultiWorkerMirroredStrategy() : .default
        for w in try workloads() {
            let arch = w.name == "cnn" ? "conv32-bn-pool-conv64-bn-dropout-dense10" : w.layers.map(String.init).joined(separator: "-")
            // train_step: batches sliced beforehand (this rank's shard of each global batch); full batches only.
            let model = try makeModel(w, strategy)
            let data = try strategy.distribute(w.x, w.y, globalBatchSize: w.batch)
            let count = w.x.shape[0] / w.batch
            let batches = try (0..<count).map { b in try data.batch(b) }
            func step(_ s: Int) throws { _ = try strategy.run { try model.trainStep(Batch(x: batches[s % count].x, y: batches[s % count].y)) } }
            for i in 0..<min(10, count) { try step(i) }  // warm up
            let steps = self.steps ?? w.defaultSteps
            var best = Double.infinity
            for _ in 0..<3 {
                strategy.barrier()
                let start = now()
                for s in 0..<steps { try step(s) }
                best = min(best, (now() - start) / Double(steps))
            }
            // Every rank's time counts: the slowest rank sets the step time.
            best = strategy.numReplicasInSync > 1 ? strategy.collectives.sync { strategy.communicator.allReduce([best], max: true) }[0] : best
            report(w, arch: arch, mode: "train_step", msPerStep: best * 1e3, extra: "", strategy)

            // fit: whole epochs, timed by a callback.
            let fitModel = try makeModel(w, strategy)
            let n = w.x.shape[0]
            var epochStart = 0.0, epochTimes: [Double] = []
            let timer = LambdaCallback(onEpochBegin: { _, _ in epochStart = now() },
                                       onEpochEnd: { _, _, _ in epochTimes.append(now() - epochStart) })
            try fitModel.fit(w.x, w.y, batchSize: w.batch, epochs: epochs, verbose: .silent, callbacks: [timer], seed: 0)
            let stepsPerEpoch = (n + w.batch - 1) / w.batch
            let bestEpoch = epochTimes.dropFirst().min()!
            report(w, arch: arch, mode: "fit", msPerStep: bestEpoch * 1e3 / Double(stepsPerEpoch),
                   extra: #","steps_per_epoch":\#(stepsPerEpoch),"ms_per_epoch":\#(bestEpoch * 1e3)"#, strategy)
        }
    }

    func report(_ w: Workload, arch: String, mode: String, msPerStep: Double, extra: String, _ strategy: Strategy) {
        guard strategy.isChief else { return }
        let distributed = strategy === Strategy.default ? ""
            : #","strategy":"multi-worker","replicas":\#(strategy.numReplicasInSync),"sharded_optimizer_state":\#(shardOptimizerState)"#
        if json {
            print(#"{"bench":"train","model":"\#(w.name)","layers":"\#(arch)","batch":\#(w.batch),"mode":"\#(mode)","threads":\#(ThreadPool.threadCount),"ms_per_step":\#(msPerStep),"steps_per_s":\#(1000 / msPerStep)\#(extra)\#(distributed)}"#)
        } else {
            let replicas = strategy.numReplicasInSync > 1
                ? " x \(strategy.numReplicasInSync) ranks" + (shardOptimizerState ? " (sharded optimizer state)" : "") : ""
            print(String(format: "train %@ (%@, batch %d) %@  threads %d%@:  %.3f ms/step  %.0f steps/s",
                         w.name, arch, w.batch, mode, ThreadPool.threadCount, replicas, msPerStep, 1000 / msPerStep))
        }
    }
}
