import ArgumentParser
import CDescentMPI
import Descent
import Foundation

/// `mpirun -np N descent bench allreduce`: the bucketed gradient all-reduce against a raw
/// `MPI_Allreduce` of the same bytes, by size (issue 11's "≥ 90% of a raw MPI_Allreduce").
struct AllreduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time Descent's bucketed gradient all-reduce against a raw MPI_Allreduce (run under mpirun).",
        discussion: """
            For each size: `raw` is one MPI_Allreduce (float sum, in place) over a buffer of that size; \
            `bucketed` is GradientSynchronizer summing gradients of that total size (the tensors of the \
            large MLP 784-1024-1024-10 for `model`, else four equal tensors) as a training step does. \
            Bus bandwidth = bytes / time. Medians of --repeats after 3 warm-up calls; rank 0 prints.
            """)

    @Option(parsing: .unconditional, help: "Timed calls per size.")
    var repeats: Int = 20
    @Flag(help: "Print one JSON object per size instead of a table.")
    var json = false

    func validate() throws { try requirePositive(repeats, "--repeats") }

    func run() throws {
        let strategy = MultiWorkerMirroredStrategy()
        guard strategy.numReplicasInSync > 1 else {
            throw ValidationError("bench allreduce needs at least 2 processes: mpirun -np 2 descent bench allreduce")
        }
        let large = [[784, 1024], [1024], [1024, 1024], [1024], [1024, 10], [10]]
        var cases: [(String, [[Int]])] = [("model", large)]
        for mb in [1, 4, 16, 64] { cases.append(("\(mb)MB", Array(repeating: [mb << 18 / 4], count: 4))) }
        for (label, shapes) in cases {
            let count = shapes.reduce(0) { $0 + $1.reduce(1, *) }, bytes = count * 4
            // Raw: one MPI_Allreduce, in place.
            var buffer = [Float](repeating: 1, count: count)
            let raw = median(repeats) {
                buffer.withUnsafeMutableBytes { b in
                    _ = MPI_Allreduce(descent_mpi_in_place(), b.baseAddress, Int32(count), descent_mpi_float(), descent_mpi_sum(),
                                      descent_mpi_comm_world())
                }
            }
            // Bucketed: the synchronizer over tensors of those shapes.
            let variables = try shapes.map { Variable(try Tensor.zeros(shape: $0), name: "v") }
            let grads = try shapes.map { Gradient.dense(try Tensor(repeating: 1, shape: $0)) }
            var failure: Error?
            let bucketed = median(repeats) {
                do {
                    let sync = try GradientSynchronizer(strategy: strategy, variables: variables)
                    for i in grads.indices.reversed() { try sync.gradientReady(i, grads[i]) }
                    _ = try sync.finish(grads)
                } catch { failure = error }
            }
            if let failure { throw failure }
            guard strategy.isChief else { continue }
            if json {
                print(#"{"bench":"allreduce","size":"\#(label)","bytes":\#(bytes),"ranks":\#(strategy.numReplicasInSync),"bucket_bytes":\#(strategy.gradientBucketByteCount),"raw_ms":\#(raw * 1e3),"bucketed_ms":\#(bucketed * 1e3),"raw_gbps":\#(Double(bytes) / raw / 1e9),"bucketed_gbps":\#(Double(bytes) / bucketed / 1e9),"ratio":\#(raw / bucketed)}"#)
            } else {
                print(String(format: "allreduce %@ (%.1f MB, %d ranks): raw %.3f ms (%.2f GB/s)  bucketed %.3f ms (%.2f GB/s)  = %.0f%% of raw",
                             label, Double(bytes) / 1e6, strategy.numReplicasInSync, raw * 1e3, Double(bytes) / raw / 1e9,
                             bucketed * 1e3, Double(bytes) / bucketed / 1e9, 100 * raw / bucketed))
            }
        }
    }

    /// The median time of `repeats` calls of `body` after 3 warm-up calls; every rank calls it in step
    /// (a barrier before each call, so one rank's late start is not counted as communication).
    func median(_ repeats: Int, _ body: () -> Void) -> Double {
        for _ in 0..<3 { body() }
        var times: [Double] = []
        for _ in 0..<repeats {
            MPI_Barrier(descent_mpi_comm_world())
            let start = now()
            body()
            times.append(now() - start)
        }
        times.sort()
        return times[times.count / 2]
    }
}
