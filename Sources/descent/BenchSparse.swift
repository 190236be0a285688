import ArgumentParser
import Descent

/// The looked-up rows of the sparse benchmark, shared with the peer scripts (`bench/peers/common.py`):
/// SplitMix64 from `seed`, `u` = the top 53 bits × 2⁻⁵³, row = ⌊(u²)² · rows⌋. The fourth power skews the
/// draw towards low rows (as word frequencies are), so indices repeat: 3,686 unique of 4,096 for
/// 1,000,000 rows and seed 42.
func benchLookupIndices(count: Int, rows: Int, seed: UInt64) -> [Int] {
    var x = seed
    return (0..<count).map { _ in
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Double(z >> 11) * 0x1.0p-53
        let u2 = u * u
        return min(rows - 1, Int(u2 * u2 * Double(rows)))
    }
}

/// `descent bench sparse`: an embedding table updated from looked-up rows (an `IndexedSlices` gradient).
struct SparseBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparse",
        abstract: "Time applyGradients with a sparse (IndexedSlices) gradient of an embedding table.",
        discussion: """
            Each step applies one gradient of --lookups rows (indices drawn with repeats from a fixed seed) to a \
            --rows × --dim float32 table. Adagrad and plain SGD touch only the looked-up rows; Keras' legacy Adam \
            (and so Descent's) decays m and v and updates the variable on every row of the table.
            """)

    @Option(help: "Comma-separated optimizers: built-in names (Keras defaults) or Keras JSON configs.")
    var optimizers: String = "adam,adagrad,sgd"
    @Option(parsing: .unconditional, help: "Rows of the embedding table.")
    var rows: Int = 1_000_000
    @Option(parsing: .unconditional, help: "Columns of the embedding table.")
    var dim: Int = 64
    @Option(parsing: .unconditional, help: "Looked-up rows per step (with repeats).")
    var lookups: Int = 4096
    @Option(parsing: .unconditional, help: "Timed steps per repeat (best of 3 repeats).")
    var steps: Int = 20
    @Option(parsing: .unconditional, help: "Seed of the looked-up indices.")
    var seed: UInt64 = 42
    @Option(parsing: .unconditional, help: "Threads (default: DESCENT_NUM_THREADS or the number of cores).")
    var threads: Int?
    @Flag(help: "Print one JSON object per optimizer instead of a table.")
    var json = false

    func validate() throws {
        try requirePositive(rows, "--rows")
        try requirePositive(dim, "--dim")
        try requirePositive(lookups, "--lookups")
        try requirePositive(steps, "--steps")
        try requireThreads(threads)
        let specs = splitTopLevel(optimizers)
        guard !specs.isEmpty else { throw ValidationError("--optimizers names no optimizer") }
        for spec in specs {
            do { _ = try Optimizer.deserialize(json: spec) } catch { throw ValidationError("--optimizers: \(error)") }
        }
        // The table, its gradient-sized scratch and up to two slots, float32; the looked-up values.
        try requireMemory(4 * (4 * Double(rows) * Double(dim) + Double(lookups) * Double(dim)),
                          for: "--rows \(rows) --dim \(dim) --lookups \(lookups)")
    }

    func run() throws {
        if let threads { ThreadPool.setThreadCount(threads) }
        let indices = benchLookupIndices(count: lookups, rows: rows, seed: seed)
        let unique = Set(indices).count
        let values = try Tensor.randomNormal(shape: [lookups, dim], standardDeviation: 0.01, seed: seed)
        let slices = try IndexedSlices(values: values, indices: indices, denseShape: [rows, dim])
        // Splitting on commas would break JSON configs: split only between top-level entries.
        for spec in splitTopLevel(optimizers) {
            let opt = try Optimizer.deserialize(json: spec)
            let table = Variable(try Tensor.randomUniform(shape: [rows, dim], min: -0.05, max: 0.05, seed: 1), name: "embeddings")
            let pair: [(Gradient?, Variable)] = [(.sparse(slices), table)]
            for _ in 0..<2 { try opt.applyGradients(pair) }  // warm up: slots, page faults
            var best = Double.infinity
            for _ in 0..<3 {
                let start = now()
                for _ in 0..<steps { try opt.applyGradients(pair) }
                best = min(best, (now() - start) / Double(steps))
            }
            let name = type(of: opt).kerasClassName.lowercased()
            if json {
                print(#"{"bench":"sparse","optimizer":"\#(name)","rows":\#(rows),"dim":\#(dim),"lookups":\#(lookups),"unique":\#(unique),"threads":\#(ThreadPool.threadCount),"ms_per_step":\#(best * 1e3)}"#)
            } else {
                print(String(format: "sparse %@  table %d×%d  %d lookups (%d unique)  threads %d:  %.3f ms/step",
                             name, rows, dim, lookups, unique, ThreadPool.threadCount, best * 1e3))
            }
        }
    }
}

/// Splits `a,b,{"x":1,"y":2}` at commas outside braces and brackets.
func splitTopLevel(_ text: String) -> [String] {
    var parts: [String] = [], current = "", depth = 0
    for c in text {
        if c == "{" || c == "[" { depth += 1 }
        if c == "}" || c == "]" { depth -= 1 }
        if c == "," && depth == 0 { parts.append(current); current = "" } else { current.append(c) }
    }
    parts.append(current)
    return parts.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
