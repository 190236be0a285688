import Foundation
import Testing

// Issue 11, item 6: sharded optimizer state (ZeRO stage 1). `descent distributed-check` runs a custom
// training loop under MultiWorkerMirroredStrategy with 2 ranks (and 3 with --oversubscribe) and prints a
// fingerprint of every weight and of the optimizer's full (gathered) state per rank and step; a sharded
// run must give the same fingerprints as an unsharded one (bit-identical with 2 ranks, where a sum of two
// numbers is exact either way round; within 1e-6 with 3, whose reduce-scatter may add in another order).

/// Runs `descent` under `mpirun` with a time limit.
struct ShardedCheck {
    /// The output of one job.
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        /// `rank R of N step S HASH` lines: hash by rank and step.
        var fingerprints: [Int: [Int: String]] {
            var result: [Int: [Int: String]] = [:]
            for line in stdout.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 7, f[0] == "rank", f[2] == "of", f[4] == "step", let r = Int(f[1]), let s = Int(f[5]) {
                    result[r, default: [:]][s] = String(f[6])
                }
            }
            return result
        }
        /// `rank R slots E` lines.
        var slotCounts: [Int: Int] {
            var result: [Int: Int] = [:]
            for line in stdout.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 4, f[0] == "rank", f[2] == "slots", let r = Int(f[1]), let e = Int(f[3]) { result[r] = e }
            }
            return result
        }
        /// `weight NAME v,v,...` lines (rank 0's final weights).
        var weights: [String: [Double]] {
            var result: [String: [Double]] = [:]
            for line in stdout.split(separator: "\n") where line.hasPrefix("weight ") {
                let f = line.split(separator: " ")
                if f.count == 3 { result[String(f[1])] = f[2].split(separator: ",").compactMap { Double($0) } }
            }
            return result
        }
    }

    /// `mpirun -np ranks descent distributed-check arguments` (with small collective calls, so that
    /// regions span several calls), killed after `timeout` seconds. The standard output is each rank's
    /// own, in rank order (mpirun's `--output-filename`: lines of ranks forwarded together can mix).
    static func check(ranks: Int, _ arguments: [String], timeout: Double = 180) throws -> Output {
        let outputs = FileManager.default.temporaryDirectory.appendingPathComponent("descent-mpi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: outputs) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun", "-np", "\(ranks)"] + (ranks > 2 ? ["--oversubscribe"] : [])
            + ["--output-filename", outputs.path, "-x", "DESCENT_BUCKET_BYTES=4096", CLI.executable.path, "distributed-check"]
            + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = MPIRun.withoutLeakDetection(environment)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        // Read both pipes to the end concurrently (a full pipe would block the job).
        let stderrBox = ByteBox()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { stderrBox.set(err.fileHandleForReading.readDataToEndOfFile()) }
        _ = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        timer.cancel()
        // <outputs>/<job>/rank.<r>/stdout
        var stdout = ""
        let files = FileManager.default.enumerator(atPath: outputs.path)?.compactMap { $0 as? String } ?? []
        for r in 0..<ranks {
            if let file = files.first(where: { $0.hasSuffix("rank.\(r)/stdout") }),
               let data = FileManager.default.contents(atPath: outputs.appendingPathComponent(file).path) {
                stdout += String(decoding: data, as: UTF8.self)
            }
        }
        return Output(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: stderrBox.get(), as: UTF8.self))
    }

    /// Runs one job and checks it succeeded and that every rank printed the same fingerprint at every
    /// step `0...steps`; returns the output.
    static func agreeing(ranks: Int, steps: Int, _ arguments: [String]) throws -> Output {
        let output = try check(ranks: ranks, ["--steps", "\(steps)"] + arguments)
        #expect(output.status == 0, "mpirun -np \(ranks) distributed-check \(arguments): \(output.stderr)")
        let prints = output.fingerprints
        #expect(prints.keys.sorted() == Array(0..<ranks), "ranks that printed: \(prints.keys.sorted())\n\(output.stdout)\n\(output.stderr)")
        for step in 0...steps {
            let hashes = Set((0..<ranks).compactMap { prints[$0]?[step] })
            #expect(hashes.count == 1 && (0..<ranks).allSatisfy { prints[$0]?[step] != nil },
                    "step \(step): ranks disagree or are missing: \(prints)")
        }
        return output
    }
}

/// Bytes written on one thread and read on another after a `DispatchGroup.wait()`.
final class ByteBox: @unchecked Sendable {
    // @unchecked Sendable invariant: written once, before the group's wait, read after it.
    private var data = Data()
    func set(_ d: Data) { data = d }
    func get() -> Data { data }
}

@Suite(.serialized) struct ShardedOptimizerTests {
    /// Rank 0's fingerprints by step.
    private func steps(_ output: ShardedCheck.Output) -> [Int: String] { output.fingerprints[0] ?? [:] }

    @Test func shardedEqualsUnshardedBitForBitOnTwoRanks() throws {
        for model in [["dense"], ["dense", "--hidden", "300"]] {
            let plain = try ShardedCheck.agreeing(ranks: 2, steps: 3, model)
            let sharded = try ShardedCheck.agreeing(ranks: 2, steps: 3, model + ["--shard-optimizer-state"])
            #expect(steps(plain).count == 4)
            #expect(steps(sharded) == steps(plain), "\(model): sharded \(steps(sharded)) vs unsharded \(steps(plain))")
            #expect(Set(steps(plain).values).count == 4, "the weights must change every step")
        }
    }

    @Test func shardedMatchesUnshardedOnThreeRanks() throws {
        let arguments = ["dense", "--hidden", "300", "--print-weights"]
        let plain = try ShardedCheck.agreeing(ranks: 3, steps: 3, arguments)
        let sharded = try ShardedCheck.agreeing(ranks: 3, steps: 3, arguments + ["--shard-optimizer-state"])
        #expect(sharded.slotCounts.count == 3)
        let a = plain.weights, b = sharded.weights
        #expect(a.count == 4 && a.keys.sorted() == b.keys.sorted())
        var worst = 0.0
        for (name, values) in a {
            let other = try #require(b[name])
            #expect(values.count == other.count)
            for (x, y) in zip(values, other) { worst = max(worst, abs(x - y) / max(1, abs(x))) }
        }
        #expect(worst <= 1e-6, "largest difference between sharded and unsharded weights: \(worst)")
    }

    @Test func shardedSparseEmbeddingGradients() throws {
        let plain = try ShardedCheck.agreeing(ranks: 2, steps: 3, ["sparse"])
        let sharded = try ShardedCheck.agreeing(ranks: 2, steps: 3, ["sparse", "--shard-optimizer-state"])
        #expect(steps(sharded) == steps(plain) && steps(plain).count == 4)
        // Three ranks: every rank agrees (checked by `agreeing`), with the Embedding owned by one of them.
        let three = try ShardedCheck.agreeing(ranks: 3, steps: 2, ["sparse", "--shard-optimizer-state"])
        #expect(three.slotCounts.values.sorted() == [10, 240, 800], "\(three.slotCounts)")
    }

    @Test func shardedGlobalClipnorm() throws {
        let clip = ["dense", "--global-clipnorm", "0.01"]
        let plain = try ShardedCheck.agreeing(ranks: 2, steps: 3, clip)
        let sharded = try ShardedCheck.agreeing(ranks: 2, steps: 3, clip + ["--shard-optimizer-state"])
        #expect(steps(sharded) == steps(plain), "sharded \(steps(sharded)) vs unsharded \(steps(plain))")
        // The clip is active: without it the trajectory differs (after step 0).
        let unclipped = try ShardedCheck.agreeing(ranks: 2, steps: 3, ["dense", "--shard-optimizer-state"])
        #expect(steps(unclipped)[1] != steps(sharded)[1])
        let three = try ShardedCheck.agreeing(ranks: 3, steps: 2, clip + ["--shard-optimizer-state"])
        #expect(three.slotCounts.count == 3)
    }

    @Test func eachRankHoldsAboutOneNthOfTheSlots() throws {
        // Dense(300) on 6 inputs, Dense(5): variables of 1800, 300, 1500 and 5 elements; Adam has 2 slots each.
        let total = 2 * (1800 + 300 + 1500 + 5), largest = 2 * 1800
        for ranks in [2, 3] {
            let output = try ShardedCheck.agreeing(ranks: ranks, steps: 1, ["dense", "--hidden", "300", "--shard-optimizer-state"])
            let counts = output.slotCounts
            #expect(counts.count == ranks, "\(output.stdout)")
            #expect(counts.values.reduce(0, +) == total, "every slot is held exactly once: \(counts)")
            // PyTorch's greedy bound: no rank holds more than its share plus one variable's slots.
            #expect(counts.values.allSatisfy { $0 > 0 && $0 <= total / ranks + largest }, "\(counts)")
            print("sharded slots per rank (\(ranks) ranks, \(total) unsharded): \(counts.sorted { $0.key < $1.key })")
        }
        let two = try ShardedCheck.agreeing(ranks: 2, steps: 1, ["dense", "--hidden", "300", "--shard-optimizer-state"]).slotCounts
        #expect(two[0] == 3610 && two[1] == 3600, "the greedy partition: 1800+5 and 1500+300 elements: \(two)")
    }

    @Test func checkpointOfAShardedRunIsTheUnshardedFileAndLoadsOnAnyNumberOfRanks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-zero-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("unsharded.h5").path, b = dir.appendingPathComponent("sharded.h5").path
        let plain = try ShardedCheck.agreeing(ranks: 2, steps: 3, ["dense", "--save", a])
        let sharded = try ShardedCheck.agreeing(ranks: 2, steps: 3, ["dense", "--shard-optimizer-state", "--save", b])
        let saved = try #require(steps(sharded)[3])
        #expect(steps(plain)[3] == saved)
        let fileA = try Data(contentsOf: URL(fileURLWithPath: a)), fileB = try Data(contentsOf: URL(fileURLWithPath: b))
        #expect(fileA == fileB, "the sharded run's checkpoint differs from the unsharded run's")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["sharded.h5", "unsharded.h5"])

        // One process (no mpirun): the loaded model and optimizer state are the saved ones.
        let single = try CLI.run(["distributed-check", "dense", "--load", b, "--steps", "1"])
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stdout.split(separator: "\n").first.map(String.init) == "rank 0 of 1 step 0 \(saved)", "\(single.stdout)")
        // Three ranks, sharded: the full state gathered back is the saved one.
        let three = try ShardedCheck.agreeing(ranks: 3, steps: 1, ["dense", "--load", b, "--shard-optimizer-state"])
        #expect(steps(three)[0] == saved)
        let denseSlots: Int = 2 * (96 + 16 + 80 + 5)  // Dense(16) on 6 inputs, Dense(5): Adam's m and v
        #expect(three.slotCounts.values.reduce(0, +) == denseSlots)
        // Two ranks: continuing sharded from the file equals continuing unsharded.
        let resumedSharded = try ShardedCheck.agreeing(ranks: 2, steps: 2, ["dense", "--load", b, "--shard-optimizer-state"])
        let resumedPlain = try ShardedCheck.agreeing(ranks: 2, steps: 2, ["dense", "--load", b])
        #expect(steps(resumedSharded)[0] == saved && steps(resumedSharded) == steps(resumedPlain))
    }

    @Test func keras3FilesOfAShardedRunHoldTheFullState() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-zero-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sharded.keras").path
        let sharded = try ShardedCheck.agreeing(ranks: 2, steps: 2, ["dense", "--shard-optimizer-state", "--save", path])
        let saved = try #require(steps(sharded)[2])
        let single = try CLI.run(["distributed-check", "dense", "--load", path, "--steps", "1"])
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stdout.split(separator: "\n").first.map(String.init) == "rank 0 of 1 step 0 \(saved)", "\(single.stdout)")
        let three = try ShardedCheck.agreeing(ranks: 3, steps: 1, ["dense", "--load", path, "--shard-optimizer-state"])
        #expect(steps(three)[0] == saved)
    }
}
