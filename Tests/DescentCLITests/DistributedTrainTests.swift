import DescentKeras
import DescentTensor
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Issue 11, items 4, 5 and 7: `mpirun -np N descent train --strategy multi-worker` on the digits. N
// workers with global batch B end within 1e-6 (relative) of one process with batch B; rank 0 alone
// prints and writes; a killed worker ends the job within seconds; a killed job rerun with the same
// `--backup-dir` ends bit-identical to an uninterrupted multi-worker run; a default-reduction loss in a
// custom loop ends the job with Keras' message.

@Suite(.serialized, .enabled(if: MPIRun.available, "mpirun is not installed (Debian: apt-get install openmpi-bin)"))
struct DistributedTrainTests {
    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("descent-distributed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Every weight of a saved model, by position.
    static func weights(_ path: String) throws -> [[Float]] {
        try loadModel(fromFile: path).getWeights().map { try $0.scalars(as: Float.self) }
    }

    /// max |a − b| / max |a| over each weight tensor.
    static func relativeDifference(_ a: [[Float]], _ b: [[Float]]) -> Double {
        guard a.count == b.count else { return .infinity }
        var worst = 0.0
        for (u, v) in zip(a, b) {
            guard u.count == v.count else { return .infinity }
            let scale = Double(u.map { abs($0) }.max() ?? 0)
            let diff = Double(zip(u, v).map { abs($0 - $1) }.max() ?? 0)
            worst = max(worst, scale == 0 ? diff : diff / scale)
        }
        return worst
    }

    /// Whether `pid` exists and is not a zombie (an exited child not yet reaped).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }

    /// The inode of `path`, if it exists: a backup is written to a temporary file renamed over the last
    /// one, so every backup has a new one.
    static func modified(_ path: String) -> UInt64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? NSNumber)?.uint64Value
    }

    /// The JSON line `--json` prints last.
    static func json(_ stdout: String) throws -> [String: Any] {
        let line = try #require(stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// (ranks, global batch): 1437 images in batches of 64 are 22 full batches and one of 29 (split 15/14,
    /// or 10/10/9); in batches of 1436, one and a batch of 1 row, which two of three workers have no part of.
    @Test(arguments: [(2, 64), (3, 64), (3, 1436)])
    func workersWithAGlobalBatchEqualOneProcessWithThatBatch(_ ranks: Int, _ batch: Int) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["train", "--quiet", "--json", "--epochs", "2", "--hidden", "32", "--batch-size", "\(batch)", "--seed", "7"]
        let single = dir.appendingPathComponent("single.h5").path, multi = dir.appendingPathComponent("multi.h5").path
        let r = try CLI.run(common + ["--save", single])
        try #require(r.status == 0, "\(r.stderr)")
        let job = try MPIRun.run(ranks: ranks, common + ["--strategy", "multi-worker", "--save", multi])
        try #require(job.status == 0 && !job.timedOut, "mpirun -np \(ranks): status \(job.status)\n\(job.stderr)")
        let difference = Self.relativeDifference(try Self.weights(single), try Self.weights(multi))
        #expect(difference < 1e-6, "\(ranks) workers end \(difference) (relative) from one process")
        #expect(difference > 0, "the run was not distributed (bit-identical to one process)")
        // The logs (reduced across workers) are the one process's, up to rounding.
        let one = try Self.json(r.stdout), many = try Self.json(job.stdout)
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            let a = try #require(one[key] as? [Double]), b = try #require(many[key] as? [Double])
            #expect(a.count == 2 && b.count == 2 && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "\(key): \(a) vs \(b)")
        }
        for key in ["test_loss", "test_accuracy"] {
            let a = try #require(one[key] as? Double), b = try #require(many[key] as? Double)
            #expect(abs(a - b) <= 1e-5 * max(1, abs(a)), "\(key): \(a) vs \(b)")
        }
    }

    @Test func everyWorkerStartsFromTheChiefsModelAndShufflesWithItsSeed() throws {
        // MPMD: rank 1 loads another model (other weights and Adam state) and has another --seed. fit
        // broadcasts the chief's weights, optimizer state and shuffle seed, so the job equals one process
        // continuing the chief's model with the chief's seed.
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        for (seed, name) in [("7", "a.h5"), ("8", "b.h5")] {
            let r = try CLI.run(["train", "--quiet", "--epochs", "1", "--hidden", "32", "--seed", seed, "--save", path(name)])
            try #require(r.status == 0, "\(r.stderr)")
        }
        let common = ["train", "--quiet", "--epochs", "1", "--batch-size", "64"]
        let r = try CLI.run(common + ["--load", path("a.h5"), "--seed", "7", "--save", path("single.h5")])
        try #require(r.status == 0, "\(r.stderr)")
        let multi = common + ["--strategy", "multi-worker"]
        let job = try MPIRun.run(ranks: 1, multi + ["--load", path("a.h5"), "--seed", "7", "--save", path("multi0.h5")],
                                 extra: [":", "-np", "1", CLI.executable.path] + multi + ["--load", path("b.h5"), "--seed", "8", "--save", path("multi1.h5")])
        try #require(job.status == 0 && !job.timedOut, "status \(job.status)\n\(job.stderr)")
        let difference = Self.relativeDifference(try Self.weights(path("single.h5")), try Self.weights(path("multi0.h5")))
        #expect(difference < 1e-6, "the job ends \(difference) (relative) from one process continuing the chief's model")
        #expect(!FileManager.default.fileExists(atPath: path("multi1.h5")))
    }

    @Test func theChiefAlonePrintsAndWrites() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        func paths(_ rank: Int) -> [String] {
            ["--save", dir.appendingPathComponent("model\(rank).h5").path, "--plot", dir.appendingPathComponent("plot\(rank).svg").path,
             "--backup-dir", dir.appendingPathComponent("backup\(rank)").path, "--backup-steps", "5"]
        }
        let common = ["train", "--epochs", "2", "--hidden", "16", "--strategy", "multi-worker"]
        // MPMD: rank 0 and rank 1 are given different file names, so that a write by rank 1 would show.
        let job = try MPIRun.run(ranks: 1, common + paths(0), extra: [":", "-np", "1", CLI.executable.path] + common + paths(1))
        try #require(job.status == 0 && !job.timedOut, "status \(job.status)\n\(job.stderr)")
        let out = job.stdout
        #expect(out.components(separatedBy: "Model: \"sequential\"").count - 1 == 1, "the summary is printed once:\n\(out)")
        #expect(out.components(separatedBy: "Epoch 2/2").count - 1 == 1, "the progress bar is printed once:\n\(out)")
        #expect(out.components(separatedBy: "Test loss:").count - 1 == 1, "\(out)")
        #expect(out.contains("Saved \(dir.appendingPathComponent("model0.h5").path)"))
        let exists = { (name: String) in FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) }
        #expect(exists("model0.h5") && exists("plot0.svg") && exists("backup0"), "the chief writes its files")
        #expect(!exists("model1.h5") && !exists("plot1.svg") && !exists("backup1"), "rank 1 writes nothing")
        #expect(!exists("backup0/backup.h5"), "a finished run deletes its backup")
    }

    @Test func aKilledWorkerEndsTheJobWithinSeconds() throws {
        let job = try MPIRun.Job(ranks: 2, ["train", "--quiet", "--epochs", "500", "--hidden", "32", "--strategy", "multi-worker"])
        let ranks = job.ranks(expected: 2)
        try #require(ranks.count == 2, "the two ranks did not start")
        usleep(1_500_000)  // into training (collectives every step)
        try #require(job.process.isRunning, "the job ended before the kill")
        let killed = Date()
        kill(ranks[1], SIGKILL)
        let result = job.wait(timeout: 20)
        let seconds = Date().timeIntervalSince(killed)
        #expect(!result.timedOut && result.status != 0, "status \(result.status)")
        #expect(seconds < 5, "mpirun took \(seconds) s to end the job after a worker was killed")
        usleep(200_000)
        #expect(!Self.isRunning(ranks[0]), "rank 0 is still running after the job ended")
    }

    /// `--shard-optimizer-state` (ZeRO stage 1) in `fit`, with backups and ModelCheckpoint-like saves:
    /// the same file, byte for byte, as unsharded (2 workers: sums of two are exact either way round);
    /// the chief's writes gather the full state on every worker first (else the job would hang).
    @Test func shardedOptimizerStateInFitWritesTheUnshardedFile() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let options = ["train", "--quiet", "--epochs", "2", "--hidden", "32", "--seed", "5", "--batch-size", "64",
                       "--strategy", "multi-worker", "--backup-dir", dir.appendingPathComponent("backup").path, "--backup-steps", "5"]
        let plain = dir.appendingPathComponent("plain.h5").path, sharded = dir.appendingPathComponent("sharded.h5").path
        let a = try MPIRun.run(ranks: 2, options + ["--save", plain], timeout: 120)
        try #require(a.status == 0 && !a.timedOut, "\(a.stderr)")
        let b = try MPIRun.run(ranks: 2, options + ["--save", sharded, "--shard-optimizer-state"], timeout: 120)
        try #require(b.status == 0 && !b.timedOut, "\(b.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: plain)) == Data(contentsOf: URL(fileURLWithPath: sharded)))
    }

    @Test func aKilledJobResumesFromItsBackupBitIdentically() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let options = ["train", "--quiet", "--epochs", "4", "--hidden", "32", "--dropout", "0.2", "--seed", "5", "--batch-size", "48",
                       "--strategy", "multi-worker"]
        let reference = dir.appendingPathComponent("reference.h5").path
        let start = Date()
        let r = try MPIRun.run(ranks: 2, options + ["--save", reference])
        try #require(r.status == 0 && !r.timedOut, "\(r.stderr)")
        let duration = Date().timeIntervalSince(start)

        let backup = dir.appendingPathComponent("backup").path, out = dir.appendingPathComponent("out.h5").path
        var generator = SystemRandomNumberGenerator()
        var killed = 0, resumedFromBackup = 0, finished = false
        let backupFile = backup + "/backup.h5"
        for _ in 0..<10 {
            let before = Self.modified(backupFile)
            if before != nil { resumedFromBackup += 1 }
            let job = try MPIRun.Job(ranks: 2, options + ["--backup-dir", backup, "--backup-steps", "6", "--save", out])
            let ranks = job.ranks(expected: 2)
            // The first runs are killed (one rank, SIGKILL) at a random moment after they made a new backup,
            // so that every rerun gets further; the last one runs to the end.
            if killed < 3 && ranks.count == 2 {
                let deadline = Date().addingTimeInterval(60)
                while job.process.isRunning && Self.modified(backupFile) == before && Date() < deadline { usleep(5_000) }
                usleep(UInt32(Double.random(in: 0...min(0.25, duration * 0.08), using: &generator) * 1e6))
                if job.process.isRunning {
                    kill(ranks[Int.random(in: 0...1, using: &generator)], SIGKILL)
                    let result = job.wait(timeout: 30)
                    #expect(!result.timedOut)
                    if result.status != 0 { killed += 1; continue }
                    finished = true
                    break
                }
            }
            let result = job.wait(timeout: 120)
            #expect(result.status == 0 && !result.timedOut, "\(result.stderr)")
            finished = result.status == 0
            break
        }
        print("distributed kill-resume: killed \(killed), resumed from a backup \(resumedFromBackup), reference \(duration) s")
        #expect(finished, "the run never finished")
        #expect(killed >= 2 && resumedFromBackup >= 2, "killed \(killed) times, resumed \(resumedFromBackup) times from a backup")
        #expect(!FileManager.default.fileExists(atPath: backup + "/backup.h5"), "a finished run deletes its backup")
        let a = try Data(contentsOf: URL(fileURLWithPath: reference)), b = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(a == b, "the resumed multi-worker run's model differs from the uninterrupted run's (killed \(killed) times)")
    }

    @Test func anErrorOnTheChiefAloneEndsTheJob() throws {
        // Only the chief writes the backup; it cannot (the folder would be inside a regular file), throws,
        // and the job ends at once although rank 1 is waiting for it in a collective.
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        let start = Date()
        let job = try MPIRun.run(ranks: 2, ["train", "--quiet", "--epochs", "3", "--hidden", "16", "--strategy", "multi-worker",
                                            "--backup-dir", file.appendingPathComponent("backup").path, "--backup-steps", "3"], timeout: 60)
        #expect(!job.timedOut && job.status != 0, "status \(job.status)")
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(job.stderr.contains("cannot create the backup folder") && job.stderr.contains("plain-file"), "\(job.stderr)")
    }

    @Test func aDefaultReductionLossInACustomLoopEndsTheJob() throws {
        let job = try MPIRun.run(ranks: 2, ["distributed-check", "auto-reduction"], timeout: 60)
        #expect(!job.timedOut && job.status != 0, "status \(job.status)")
        #expect(job.stderr.contains("LossReduction.sum") && job.stderr.contains("computeAverageLoss"), "\(job.stderr)")
    }
}

/// `--strategy` without mpirun: one program runs with or without it.
@Suite struct TrainStrategyOptionTests {
    @Test func multiWorkerWithoutMPIRunIsTheOneProcessRun() throws {
        let dir = try DistributedTrainTests.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["train", "--quiet", "--epochs", "1", "--hidden", "16", "--seed", "2"]
        let a = dir.appendingPathComponent("a.h5").path, b = dir.appendingPathComponent("b.h5").path
        var r = try CLI.run(common + ["--save", a])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(common + ["--strategy", "multi-worker", "--save", b])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)),
                "one multi-worker replica must train exactly as the default strategy")
    }

    @Test func anUnknownStrategyExitsWithStatus2() throws {
        let r = try CLI.run(["train", "--strategy", "mirrored"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains("--strategy"), "\(r.stderr)")
    }
}
