import Foundation

/// Launches `descent` under Open MPI's `mpirun` for the multi-worker tests (issue 11).
///
/// Runs as root are allowed through Open MPI's two environment variables; `-np 3` on this 2-core
/// machine needs `--oversubscribe`. Every run has a time limit after which mpirun is killed (and the
/// test fails), so a test can never hang in a collective.
enum MPIRun {
    /// `mpirun`'s path, or `nil` when Open MPI is not installed (CI installs it: scripts/install-deps.sh).
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        var timedOut: Bool
        /// The lines of `stdout` that start with `prefix`.
        func lines(_ prefix: String) -> [String] { stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) } }
    }

    /// Runs `mpirun -np ranks descent arguments...` and waits at most `timeout` seconds.
    static func run(ranks: Int, _ arguments: [String], timeout: Double = 120, environment: [String: String] = [:],
                    onStart: ((Process) -> Void)? = nil) throws -> Result {
        guard let mpirun else { throw MPIMissing() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        var flags = ["-np", "\(ranks)"]
        if ranks > 2 { flags.append("--oversubscribe") }
        // One thread per rank: 2 ranks fill the 2 cores.
        flags += ["-x", "DESCENT_NUM_THREADS=1"]
        for key in environment.keys.sorted() { flags += ["-x", key] }
        process.arguments = flags + [CLI.executable.path] + arguments
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["DESCENT_NUM_THREADS"] = "1"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        onStart?(process)
        // Read both pipes on other threads so a full pipe never blocks mpirun.
        let group = DispatchGroup()
        let collected = OutputBox()
        for (pipe, isOut) in [(out, true), (err, false)] {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.set(data, isOut: isOut)
                group.leave()
            }
        }
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                process.terminate()
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        _ = group.wait(timeout: .now() + 10)
        let (o, e) = collected.get()
        return Result(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self), seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }

    struct MPIMissing: Error, CustomStringConvertible {
        var description: String { "mpirun is not installed (Debian: openmpi-bin; scripts/install-deps.sh installs it)" }
    }

    /// Collects the two pipes' bytes from the reader threads.
    final class OutputBox: @unchecked Sendable {
        // @unchecked Sendable invariant: `out` and `err` are only accessed under `lock`.
        private let lock = NSLock()
        private var out = Data(), err = Data()
        func set(_ data: Data, isOut: Bool) { lock.lock(); if isOut { out = data } else { err = data }; lock.unlock() }
        func get() -> (Data, Data) { lock.lock(); defer { lock.unlock() }; return (out, err) }
    }
}
