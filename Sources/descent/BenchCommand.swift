import ArgumentParser
import Descent
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// `descent bench`: performance measurements (build with `make release` for meaningful numbers).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Descent's speed (use a release build: make bench).",
        subcommands: [OptimizerBench.self, SparseBench.self, TrainBench.self, BandwidthBench.self, MatmulBench.self, JSONBench.self,
                      CheckpointBench.self, AllreduceBench.self])
}

/// Monotonic seconds (DescentKeras' clock).
func now() -> Double { monotonicSeconds() }

struct OptimizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizer", abstract: "Time applyGradients of one optimizer over many parameters.")

    @Option(help: "A built-in optimizer name (Keras defaults) or a Keras JSON config.")
    var optimizer: String = "adam"
    @Option(parsing: .unconditional, help: "Total number of parameters.")
    var params: Int = 10_000_000
    @Option(parsing: .unconditional, help: "Number of variables the parameters are split into.")
    var tensors: Int = 10
    @Option(parsing: .unconditional, help: "Timed steps.")
    var steps: Int = 50
    @Option(help: "Matrices instead of vectors: ROWSxCOLUMNS, each of the --tensors variables 2-D of this shape (--params is then ignored; for Muon's and Adafactor's 2-D rules).")
    var matrix: String?
    @Option(parsing: .unconditional, help: "Threads (default: DESCENT_NUM_THREADS or the number of cores).")
    var threads: Int?
    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    /// `--matrix`'s rows and columns, or `nil` without it.
    func matrixShape() throws -> (rows: Int, columns: Int)? {
        guard let matrix else { return nil }
        let parts = matrix.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]), r > 0, c > 0 else {
            throw ValidationError("--matrix: expected ROWSxCOLUMNS with two positive integers (like 1024x4096), got '\(matrix)'")
        }
        return (r, c)
    }

    /// The number of parameters: `--params`, or `--tensors` matrices of `--matrix`.
    func parameterCount() throws -> Int {
        guard let (r, c) = try matrixShape() else { return params }
        let (rc, o1) = r.multipliedReportingOverflow(by: c), (total, o2) = rc.multipliedReportingOverflow(by: tensors)
        guard !o1, !o2 else { throw ValidationError("--matrix \(matrix!) × --tensors \(tensors) overflows") }
        return total
    }

    func validate() throws {
        try requirePositive(tensors, "--tensors")
        let params = try parameterCount()
        try requirePositive(params, "--params")
        guard tensors <= params else { throw ValidationError("--tensors (\(tensors)) must be at most --params (\(params))") }
        try requirePositive(steps, "--steps")
        try requireThreads(threads)
        do { _ = try Optimizer.deserialize(json: optimizer) } catch { throw ValidationError("--optimizer: \(error)") }
        // Variables, gradients and up to three slots (Ftrl, Adam with amsgrad), float32.
        try requireMemory(4 * 5 * Double(params), for: "--params \(params)")
    }

    func run() throws {
        if let threads { ThreadPool.setThreadCount(threads) }
        let opt = try Optimizer.deserialize(json: optimizer)
        let params = try parameterCount(), matrix = try matrixShape()
        let base = params / tensors
        let shapes: [[Int]] = (0..<tensors).map { i in
            matrix.map { [$0.rows, $0.columns] } ?? [base + (i < params % tensors ? 1 : 0)]
        }
        let variables = try shapes.enumerated().map { Variable(try Tensor.zeros(shape: $1), name: "v\($0)") }
        let grads = try shapes.map { try Tensor(repeating: 0.001, shape: $0) }
        let pairs = Array(zip(grads, variables)).map { (Gradient.dense($0.0), $0.1) as (Gradient?, Variable) }
        for _ in 0..<3 { try opt.applyGradients(pairs) }  // warm up: slots, page faults
        var best = Double.infinity
        for _ in 0..<3 {
            let start = now()
            for _ in 0..<steps { try opt.applyGradients(pairs) }
            best = min(best, (now() - start) / Double(steps))
        }
        // Bytes a fused update moves per parameter: it reads the variable, the gradient and each slot the
        // kernel uses, and writes the variable and those slots (Adam: m, v → 28 bytes in float32;
        // SGD with momentum → 20; plain SGD → 12). Slots the kernel does not touch are not counted.
        let slots = opt.fusesDenseUpdates ? opt.denseKernelSlotNames.count : (opt.weights.count - 1) / tensors
        let bytesPerParam = Double(4 * (3 + 2 * slots))
        let mparams = Double(params) / best / 1e6
        let gbps = Double(params) * bytesPerParam / best / 1e9
        let name = type(of: opt).kerasClassName.lowercased()
        // The Keras 3 family's lines say so (the legacy classes of the same name are other optimizers).
        let family = opt is Keras3.Optimizer ? #","family":"keras3""# : ""
        let shape = matrix.map { #","matrix":"\#($0.rows)x\#($0.columns)""# } ?? ""
        if json {
            print(#"{"bench":"optimizer","optimizer":"\#(name)"\#(family)\#(shape),"params":\#(params),"tensors":\#(tensors),"threads":\#(ThreadPool.threadCount),"ms_per_step":\#(best * 1e3),"mparams_per_s":\#(mparams),"gb_per_s":\#(gbps)}"#)
        } else {
            print("optimizer \(name)  params \(params)  tensors \(tensors)  threads \(ThreadPool.threadCount)")
            print(String(format: "  %.3f ms/step   %.1f Mparam/s   %.1f GB/s (%d bytes/param)", best * 1e3, mparams, gbps, Int(bytesPerParam)))
            print(String(format: "  %.2f µs per variable", best * 1e6 / Double(tensors)))
        }
    }
}

struct BandwidthBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandwidth", abstract: "STREAM-style copy and triad (and an in-place update) in Swift: the memory-bandwidth limit.")
    @Option(parsing: .unconditional, help: "Elements per array.")
    var elements: Int = 16 * 1024 * 1024
    @Option(parsing: .unconditional, help: "Threads.")
    var threads: Int?
    @Flag(help: "Print JSON lines.")
    var json = false

    func validate() throws {
        try requirePositive(elements, "--elements")
        try requireThreads(threads)
        try requireMemory(4 * 3 * Double(elements), for: "--elements \(elements) (three float32 arrays)")
    }

    func run() throws {
        if let threads { ThreadPool.setThreadCount(threads) }
        let n = elements
        // Tensors' buffers, so that the limit is measured on memory allocated as the optimizers' is
        // (2 MiB-aligned, transparent huge pages where available).
        var ta = try Tensor(repeating: 1, shape: [n]), tb = try Tensor(repeating: 2, shape: [n])
        var tc = try Tensor.zeros(shape: [n])
        let (copy, triad, update) = try ta.withUnsafeMutableBufferPointer(as: Float.self) { a in
            try tb.withUnsafeMutableBufferPointer(as: Float.self) { b in
                try tc.withUnsafeMutableBufferPointer(as: Float.self) { c in
                    let pa = UncheckedPointer(a.baseAddress!), pb = UncheckedPointer(b.baseAddress!)
                    let pc = UncheckedPointer(c.baseAddress!)
                    func measure(_ bytesPerElement: Int, _ body: (Range<Int>) -> Void) -> Double {
                        var best = Double.infinity
                        for _ in 0..<10 {
                            let start = now()
                            ThreadPool.parallelFor(n, grain: 1 << 16, body)
                            best = min(best, now() - start)
                        }
                        return Double(n * bytesPerElement) / best / 1e9
                    }
                    let copy = measure(8) { r in for i in r { pc.p[i] = pa.p[i] } }
                    let triad = measure(12) { r in for i in r { pa.p[i] = pb.p[i] + 3 * pc.p[i] } }
                    // In place, as an optimizer's update: every byte counted is moved (no write-allocate
                    // read of a destination that is not read anyway, which STREAM's copy and triad do
                    // not count).
                    let update = measure(12) { r in for i in r { pa.p[i] = pa.p[i] + 3 * pb.p[i] } }
                    return (copy, triad, update)
                }
            }
        }
        if json {
            for (kernel, value) in [("copy", copy), ("triad", triad), ("update", update)] {
                print(#"{"bench":"bandwidth","kernel":"\#(kernel)","threads":\#(ThreadPool.threadCount),"gb_per_s":\#(value)}"#)
            }
        } else {
            print(String(format: "copy   %.1f GB/s  (c = a, 8 bytes/element)\ntriad  %.1f GB/s  (a = b + 3c, 12 bytes/element)\nupdate %.1f GB/s  (a = a + 3b, 12 bytes/element)\n(threads %d, %d floats per array)",
                         copy, triad, update, ThreadPool.threadCount, n))
        }
    }
}

/// A pointer shared by the benchmark's parallel chunks, which write disjoint ranges.
struct UncheckedPointer: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { self.p = p }
}
