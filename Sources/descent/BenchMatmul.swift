import ArgumentParser
import Descent

/// `descent bench matmul`: time one matrix product (`Tensor.matmul`, OpenBLAS underneath).
struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "Time Tensor.matmul of an [m, k] by [k, n] float32 product (transposes optional).",
        discussion: "Reports the time per product and GFLOP/s (2·m·n·k per product).")

    @Option(parsing: .unconditional, help: "Rows of the product.") var m: Int = 32
    @Option(parsing: .unconditional, help: "Inner dimension.") var k: Int = 64
    @Option(parsing: .unconditional, help: "Columns of the product.") var n: Int = 128
    @Flag(help: "Store the left operand as [k, m] and transpose it.") var transposeA = false
    @Flag(help: "Store the right operand as [n, k] and transpose it.") var transposeB = false
    @Option(parsing: .unconditional, help: "Timed products per repeat (best of 5 repeats).") var iterations: Int = 2000
    @Option(parsing: .unconditional, help: "Threads (default: DESCENT_NUM_THREADS or the number of cores).") var threads: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        try requirePositive(m, "--m")
        try requirePositive(k, "--k")
        try requirePositive(n, "--n")
        try requirePositive(iterations, "--iterations")
        try requireThreads(threads)
        let (dm, dk, dn) = (Double(m), Double(k), Double(n))
        try requireMemory(4 * (dm * dk + dk * dn + dm * dn), for: "--m \(m) --k \(k) --n \(n) (three float32 matrices)")
    }

    func run() throws {
        if let threads { ThreadPool.setThreadCount(threads) }
        var generator = SeededGenerator(seed: 7)
        let a = try Tensor.randomNormal(shape: transposeA ? [k, m] : [m, k], using: &generator)
        let b = try Tensor.randomNormal(shape: transposeB ? [n, k] : [k, n], using: &generator)
        for _ in 0..<min(iterations, 100) { _ = try a.matmul(b, transposeA: transposeA, transposeB: transposeB) }
        var best = Double.infinity
        for _ in 0..<5 {
            let start = now()
            for _ in 0..<iterations { _ = try a.matmul(b, transposeA: transposeA, transposeB: transposeB) }
            best = min(best, (now() - start) / Double(iterations))
        }
        let gflops = 2.0 * Double(m) * Double(n) * Double(k) / best / 1e9  // m·n·k may overflow Int
        if json {
            print(#"{"bench":"matmul","m":\#(m),"k":\#(k),"n":\#(n),"transpose_a":\#(transposeA),"transpose_b":\#(transposeB),"threads":\#(ThreadPool.threadCount),"us_per_product":\#(best * 1e6),"gflop_per_s":\#(gflops),"openblas_core":"\#(OpenBLASCore.name)"}"#)
        } else {
            print("matmul [\(m), \(k)] x [\(k), \(n)]\(transposeA ? " (A transposed)" : "")\(transposeB ? " (B transposed)" : ""), \(ThreadPool.threadCount) threads: " + String(format: "%.2f µs per product, %.1f GFLOP/s", best * 1e6, gflops))
        }
    }
}
