import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The launcher of the multi-worker tests (issue 11): `mpirun -np N descent ...` with output to files
// (a full pipe can never block a rank), one thread per rank, Open MPI's root variables when running as
// root, `--oversubscribe` above 2 ranks, and a time limit after which every rank is killed (the test
// fails), so no test can hang in a collective.

/// Runs Open MPI's `mpirun` (Debian's openmpi-bin; CI installs it).
enum MPIRun {
    /// `mpirun` on the PATH, or `nil`.
    static let executable: URL? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }()

    static var available: Bool { executable != nil }

    /// A started job: `mpirun` and where its output goes.
    final class Job {
        let process = Process()
        let stdout: URL, stderr: URL
        let started = Date()

        /// Starts `mpirun -np ranks [--oversubscribe] descent arguments...` (`launch`: more mpirun options,
        /// or an MPMD line after the first `descent` arguments).
        init(ranks: Int, _ arguments: [String], extra: [String] = []) throws {
            let dir = FileManager.default.temporaryDirectory
            stdout = dir.appendingPathComponent("descent-mpi-\(UUID().uuidString).out")
            stderr = dir.appendingPathComponent("descent-mpi-\(UUID().uuidString).err")
            _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            guard let mpirun = MPIRun.executable else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "mpirun"]) }
            process.executableURL = mpirun
            // As root, Open MPI refuses to start without both variables (or --allow-run-as-root).
            var environment = ProcessInfo.processInfo.environment
            if getuid() == 0 {
                environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
                environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
            }
            // One thread per rank: the ranks share the machine's cores.
            environment["OPENBLAS_NUM_THREADS"] = "1"
            environment["DESCENT_NUM_THREADS"] = "1"
            environment = MPIRun.withoutLeakDetection(environment)
            process.environment = environment
            let oversubscribe = ranks > 2 ? ["--oversubscribe"] : []
            process.arguments = oversubscribe + ["-np", "\(ranks)", CLI.executable.path] + arguments + extra
            process.standardOutput = try FileHandle(forWritingTo: stdout)
            process.standardError = try FileHandle(forWritingTo: stderr)
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        /// The ranks' processes (mpirun's children), once they exist.
        func ranks(expected: Int, within seconds: Double = 20) -> [pid_t] {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let path = "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children"
                let pids = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: " ").compactMap { pid_t($0) }
                if pids.count >= expected { return pids }
                usleep(20_000)
            }
            return []
        }

        /// Waits for mpirun to exit; after `timeout` seconds the job is killed (and the test fails).
        @discardableResult
        func wait(timeout: Double) -> Result {
            let deadline = Date().addingTimeInterval(timeout)
            var timedOut = false
            while process.isRunning {
                if Date() > deadline {
                    timedOut = true
                    for pid in ranks(expected: 1, within: 0) { kill(pid, SIGKILL) }
                    process.terminate()
                    usleep(500_000)
                    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                    break
                }
                usleep(20_000)
            }
            process.waitUntilExit()
            let out = (try? String(contentsOf: stdout, encoding: .utf8)) ?? ""
            let err = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: stdout)
            try? FileManager.default.removeItem(at: stderr)
            return Result(status: process.terminationStatus, stdout: out, stderr: err, timedOut: timedOut,
                          seconds: Date().timeIntervalSince(started))
        }
    }

    /// How a job ended.
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut: Bool
        /// From the start of mpirun to its exit.
        var seconds: Double
        /// The lines of `stdout` that start with `prefix`.
        func lines(_ prefix: String) -> [String] { stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) } }
    }

    /// `environment` with LeakSanitizer off in the ranks when the tests run under AddressSanitizer
    /// (`make sanitize`): Open MPI keeps what MPI_Init allocates and unloads its plugins at exit, and
    /// LSan's fast unwinder cannot walk its frames, so no suppression can name them. Descent's own
    /// distributed code is leak-checked in the in-process replica tests (InProcessReplicaTests,
    /// ShardedStateTests, GradientSynchronizerTests); ASan's other checks stay on in the ranks.
    static func withoutLeakDetection(_ environment: [String: String]) -> [String: String] {
        guard let asan = environment["ASAN_OPTIONS"] else { return environment }
        var result = environment
        result["ASAN_OPTIONS"] = asan + " detect_leaks=0"
        return result
    }

    /// Runs a job to its end (at most `timeout` seconds).
    static func run(ranks: Int, _ arguments: [String], extra: [String] = [], timeout: Double = 120) throws -> Result {
        try Job(ranks: ranks, arguments, extra: extra).wait(timeout: timeout)
    }
}

