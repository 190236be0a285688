import Foundation
import Testing

// Multi-worker training on Open MPI (issue 11, item 8), through `descent distributed-check` (a custom
// training loop under MultiWorkerMirroredStrategy that prints a fingerprint of every weight and optimizer
// slot per rank and step): every rank holds bit-identical values after every step, with 2 and 3 ranks,
// for dense and sparse gradients; N workers with global batch B equal one process with batch B; a
// killed worker ends the job quickly.

@Suite(.serialized, .enabled(if: MPIRun.available, "mpirun is not installed (Debian: apt-get install openmpi-bin)"))
struct DistributedTests {
    /// `rank R of N step S HASH` lines → [step: [rank: hash]].
    static func fingerprints(_ r: MPIRun.Result) -> [Int: [Int: String]] {
        var result: [Int: [Int: String]] = [:]
        for line in r.lines("rank ") {
            let f = line.split(separator: " ")
            guard f.count == 7, let rank = Int(f[1]), let step = Int(f[5]) else { continue }
            result[step, default: [:]][rank] = String(f[6])
        }
        return result
    }

    @Test(arguments: [("dense", 2), ("dense", 3), ("sparse", 2), ("sparse", 3)])
    func everyRankHoldsBitIdenticalWeightsAfterEveryStep(_ scenario: String, _ ranks: Int) throws {
        let r = try MPIRun.run(ranks: ranks, ["distributed-check", scenario, "--steps", "4", "--batch-size", "24"])
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        let prints = Self.fingerprints(r)
        #expect(prints.keys.sorted() == [0, 1, 2, 3, 4], "\(r.stdout)")
        for (step, byRank) in prints {
            #expect(byRank.count == ranks, "step \(step): \(byRank)")
            #expect(Set(byRank.values).count == 1, "step \(step): ranks differ: \(byRank)")
        }
        #expect(r.lines("rank 0 of \(ranks) ").count == 5)
        // Training moved the weights.
        #expect(prints[0]?[0] != prints[4]?[0])
    }

    /// N workers on global batch B end within 1e-6 (relative) of one process on batch B.
    @Test(arguments: [["dense"], ["sparse"], ["dense", "--clipnorm", "0.05"]])
    func workersEqualOneProcessWithTheGlobalBatch(_ scenario: [String]) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-dist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func weights(_ name: String) throws -> [String] {
            try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").map(String.init)
        }
        // With clipnorm: equal only because clipping runs after the sum (clipping each replica's half
        // first would give another step).
        let args = ["distributed-check"] + scenario + ["--steps", "5", "--batch-size", "24", "--weights-out"]
        let one = try MPIRun.run(ranks: 1, args + [dir.appendingPathComponent("one").path])
        #expect(one.status == 0, "\(one.stderr)")
        for ranks in [2, 3] {
            let many = try MPIRun.run(ranks: ranks, args + [dir.appendingPathComponent("\(ranks)").path])
            #expect(many.status == 0, "\(many.stderr)")
            let a = try weights("one"), b = try weights("\(ranks)")
            #expect(a.count == b.count && !a.isEmpty)
            for (x, y) in zip(a, b) {
                let u = x.split(separator: " ")[1].split(separator: ",").compactMap { Double($0) }
                let v = y.split(separator: " ")[1].split(separator: ",").compactMap { Double($0) }
                #expect(u.count == v.count && !u.isEmpty)
                let scale = max(u.map(abs).max() ?? 1, 1e-3)
                let worst = zip(u, v).map { abs($0 - $1) / scale }.max() ?? 0
                #expect(worst < 1e-6, "\(scenario), \(ranks) ranks, \(x.split(separator: " ")[0]): relative difference \(worst)")
            }
            // The single process started from the same initial weights: rank 0's (mirrored).
            #expect(Self.fingerprints(one)[0]?[0] == Self.fingerprints(many)[0]?[0])
        }
    }

    /// `experimentalAggregateGradients: false` applies each replica's own gradients (Keras: the caller
    /// has aggregated them already): the replicas then diverge.
    @Test func withoutAggregationReplicasApplyTheirOwnGradients() throws {
        let r = try MPIRun.run(ranks: 2, ["distributed-check", "dense", "--steps", "2", "--no-aggregate"])
        #expect(r.status == 0, "\(r.stderr)")
        let prints = Self.fingerprints(r)
        #expect(Set(prints[0]!.values).count == 1)  // mirrored start
        #expect(Set(prints[2]!.values).count == 2)  // own gradients
    }

    /// The strategy's collectives on 2 and 3 ranks: reduce (sum, mean) of tensors and numbers, any,
    /// broadcast from the last rank, and a thrown error (on every rank) for mismatched shapes.
    @Test(arguments: [2, 3])
    func collectivesGiveEveryRankTheSameResult(_ ranks: Int) throws {
        let r = try MPIRun.run(ranks: ranks, ["distributed-check", "collectives"])
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        let n = Double(ranks), ids = (0..<ranks).map(Double.init)
        let expected: [String: String] = [
            "sum": "\(ids.reduce(0, +)),\(ids.map { 10 * $0 + 1 }.reduce(0, +))",
            "mean": "\(Double(Float(ids.reduce(0, +)) / Float(n))),\(Double(Float(ids.map { 10 * $0 + 1 }.reduce(0, +)) / Float(n)))",
            "numbers": "\(ids.reduce(0, +)),\(n)",
            "any": "true,false",
            "broadcast": "\(n - 1 + 5)",
        ]
        for rank in 0..<ranks {
            for (check, value) in expected {
                #expect(r.lines("rank \(rank) \(check) ") == ["rank \(rank) \(check) \(value)"], "\(r.stdout)")
            }
            let mismatch = r.lines("rank \(rank) mismatch ")
            #expect(mismatch.count == 1 && mismatch[0].contains("different_shapes"), "\(mismatch)")
        }
    }

    /// A worker killed by SIGKILL ends the whole job with a non-zero status within seconds (no rank
    /// waits in a collective forever).
    @Test func aKilledWorkerEndsTheJobQuickly() throws {
        let r = try MPIRun.run(ranks: 2, ["distributed-check", "die", "--steps", "50", "--batch-size", "8"], timeout: 60)
        #expect(!r.timedOut, "mpirun did not end after a worker was killed")
        #expect(r.status != 0)
        #expect(r.seconds < 30, "took \(r.seconds) s")
    }
}
