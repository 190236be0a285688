import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Issue 10: `descent train --backup-dir` killed with SIGKILL at random moments and rerun until it
// finishes ends with the same model file, byte for byte, as a run that was never interrupted (weights,
// optimizer state; shuffling and Dropout masks continue exactly).

@Suite struct KillResumeTests {
    /// The file's inode number (`nil` when it does not exist): a new one after each atomic replace.
    static func fileNumber(_ path: String) -> UInt64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? NSNumber)?.uint64Value
    }

    @Test func aKilledRunResumesBitIdentically() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("descent-killresume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let options = ["train", "--quiet", "--epochs", "6", "--hidden", "32", "--dropout", "0.2", "--seed", "5"]
        let reference = dir.appendingPathComponent("reference.h5").path
        let start = Date()
        let r = try CLI.run(options + ["--save", reference])
        #expect(r.status == 0, "\(r.stderr)")
        let duration = Date().timeIntervalSince(start)

        let backup = dir.appendingPathComponent("backup").path, out = dir.appendingPathComponent("out.h5").path
        var generator = SystemRandomNumberGenerator()
        var killed = 0, resumedFromBackup = 0, finished = false
        for _ in 0..<60 {
            if FileManager.default.fileExists(atPath: backup + "/backup.h5") { resumedFromBackup += 1 }
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = options + ["--backup-dir", backup, "--backup-steps", "7", "--save", out]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let before = Self.fileNumber(backup + "/backup.h5")
            try process.run()
            // The first runs are killed at a random moment after the run made a new backup (an atomic replace
            // gives the file a new inode), so that every rerun gets further however slow the machine is at the
            // moment. The window is a small part of the whole run (a kill late in a run would let it finish
            // before enough kills were made); once there were enough kills the last run goes to the end.
            if killed < 4 {
                let deadline = Date().addingTimeInterval(60)
                while process.isRunning && Self.fileNumber(backup + "/backup.h5") == before && Date() < deadline { usleep(2_000) }
                usleep(UInt32(Double.random(in: 0...max(0.01, duration * 0.05), using: &generator) * 1e6))
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killed += 1; continue }
            #expect(process.terminationStatus == 0)
            finished = true
            break
        }
        print("kill-resume: killed \(killed), resumed from a backup \(resumedFromBackup), reference \(duration) s")
        #expect(finished, "the run never finished")
        #expect(killed >= 3 && resumedFromBackup >= 2, "killed \(killed) times, resumed \(resumedFromBackup) times from a backup")
        #expect(!FileManager.default.fileExists(atPath: backup + "/backup.h5"), "a finished run deletes its backup")
        let a = try Data(contentsOf: URL(fileURLWithPath: reference)), b = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(a == b, "the resumed run's model differs from the uninterrupted run's (killed \(killed) times)")
    }
}
