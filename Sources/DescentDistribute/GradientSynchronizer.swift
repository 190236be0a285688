@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

/// Sums one step's gradients across replicas while the backward pass is still running (the bucketed
/// all-reduce of PyTorch's DDP and Horovod).
///
/// Hand it each gradient as it becomes final (``gradientReady(_:_:)``, e.g. from
/// `GradientTape.gradient(of:wrt:onReady:)`), then call ``finish(_:)`` with the whole list:
/// - **dense** gradients go into buckets of about ``Strategy/gradientBucketByteCount`` bytes per dtype;
///   a full bucket is submitted at once to the strategy's ``CollectiveQueue`` and summed there while
///   this thread goes on with the backward pass. A gradient of at least an eighth of a bucket is summed
///   straight from its own memory (in pieces of at most a bucket); smaller ones are packed into one
///   buffer (copied on the communication thread);
/// - **sparse** gradients (`IndexedSlices`) are all-gathered, indices and rows, in rank order, at
///   ``finish(_:)`` (the optimizer then sums duplicate rows, as TensorFlow does).
///
/// Every replica must report the same gradients in the same order (they run the same program on the
/// same model), and every replica receives bit-identical sums (``Communicator/allReduceSum(_:into:count:dtype:)``).
public final class GradientSynchronizer {
    private let strategy: Strategy
    private let bucketBytes: Int
    private var results: [Gradient?]
    private var reported: [Bool]
    /// Small dense gradients waiting for a full bucket, per dtype: (position, gradient, output storage).
    private var pending: [DType: [(Int, Tensor, TensorStorage)]] = [:]
    private var pendingBytes: [DType: Int] = [:]
    private var sparse: [(Int, IndexedSlices)] = []
    private var finished = false
    /// Without overlap: the gradients reported so far, summed at ``finish(_:)``.
    private var deferred: [(Int, Gradient)] = []
    private let overlaps: Bool

    /// Starts a step that sums the gradients of `variables`. The first time (and whenever the shapes
    /// change) it checks that every replica lists the same shapes and dtypes: one small collective.
    /// - Throws: ``DistributionError/communication(_:)`` when replicas' variables differ.
    public init(strategy: Strategy, variables: [Variable]) throws {
        self.strategy = strategy
        self.bucketBytes = strategy.gradientBucketByteCount
        self.overlaps = strategy.overlapsGradientSummation
        results = Array(repeating: nil, count: variables.count)
        reported = Array(repeating: false, count: variables.count)
        // Checked when the list's shapes change (every replica's change at the same step, as they run
        // one program), not every step: the check is a round trip, a tenth of a millisecond here.
        try strategy.checkSameShapes(variables.map { ($0.shape, $0.dtype) }, "summing the gradients of \(variables.count) variables",
                                     onceForTheSameShapes: true)
    }

    /// Takes the final gradient of the variable at `position`; dense gradients start their all-reduce
    /// as soon as a bucket is full.
    public func gradientReady(_ position: Int, _ gradient: Gradient) throws {
        guard position >= 0 && position < results.count, !reported[position], !finished else { return }
        reported[position] = true
        if overlaps { try start(position, gradient) } else { deferred.append((position, gradient)) }
    }

    private func start(_ position: Int, _ gradient: Gradient) throws {
        switch gradient {
        case .sparse(let slices):
            sparse.append((position, slices))
        case .dense(let t):
            let tensor = t.untracked
            guard tensor.dtype.isFloatingPoint else {
                throw DistributionError.invalidArgument("gradient \(position) has dtype \(tensor.dtype); only float gradients can be summed")
            }
            let byteCount = tensor.scalarCount * tensor.dtype.byteSize
            let output = try Tensor(shape: tensor.shape, dtype: tensor.dtype, operation: "gradient all-reduce", fillingBytes: { _ in })
            results[position] = .dense(output)
            let storage = output.unsafeStorage
            if byteCount >= bucketBytes / 8 {
                // A quarter of a megabyte or more (of 2 MiB buckets) is summed from its own memory: copying
                // it into and out of a shared bucket cost more than the extra call (1 MB in four 256 KB
                // gradients: 0.35 ms packed against 0.18 ms for the raw call).
                submitLarge(tensor, into: storage)
            } else {
                pending[tensor.dtype, default: []].append((position, tensor, storage))
                pendingBytes[tensor.dtype, default: 0] += byteCount
                if pendingBytes[tensor.dtype]! >= bucketBytes { try flush(tensor.dtype) }
            }
        }
    }

    /// Sums what is left, waits for every bucket, and returns the summed gradients in variable order.
    /// `gradients` is the step's whole list: those not reported yet are reported now (in list order).
    public func finish(_ gradients: [Gradient?]) throws -> [Gradient?] {
        for (i, g) in gradients.enumerated() where i < reported.count && !reported[i] {
            if let g { try gradientReady(i, g) } else { reported[i] = true }
        }
        finished = true
        for (position, gradient) in deferred { try start(position, gradient) }
        deferred = []
        for dtype in [DType.float32, .float64] where pending[dtype]?.isEmpty == false { try flush(dtype) }
        for (position, slices) in sparse.sorted(by: { $0.0 < $1.0 }) {
            results[position] = .sparse(try allGather(slices))
        }
        strategy.collectives.waitForSubmitted()
        return results
    }

    /// A gradient of at least one bucket: summed from its own buffer in bucket-sized pieces.
    private func submitLarge(_ tensor: Tensor, into output: TensorStorage) {
        let elementSize = tensor.dtype.byteSize, total = tensor.scalarCount
        // Equal pieces of at most a bucket (4.2 MB in 2 MiB buckets: 3 × 1.4 MB, not 2 + 2 + 0.2).
        let maxPerChunk = Swift.max(1, bucketBytes / elementSize)
        let pieces = (total + maxPerChunk - 1) / maxPerChunk
        let perChunk = (total + pieces - 1) / pieces
        let communicator = strategy.communicator, dtype = tensor.dtype
        var start = 0
        while start < total {
            let count = Swift.min(perChunk, total - start), offset = start * elementSize
            strategy.collectives.async {
                withExtendedLifetime(tensor) {
                    communicator.allReduceSum(tensor.unsafeStorage.base + offset, into: output.base + offset, count: count, dtype: dtype)
                }
            }
            start += count
        }
    }

    /// Packs the pending small gradients of `dtype` into one buffer, sums it, and copies the sums out
    /// (all on the communication thread).
    private func flush(_ dtype: DType) throws {
        guard let items = pending[dtype], !items.isEmpty else { return }
        pending[dtype] = []
        pendingBytes[dtype] = 0
        let total = items.reduce(0) { $0 + $1.1.scalarCount }
        let staging = try Tensor(shape: [total], dtype: dtype, operation: "gradient bucket", fillingBytes: { _ in })
        let communicator = strategy.communicator, size = dtype.byteSize
        let parts = items.map { ($0.1, $0.2) }
        strategy.collectives.async {
            let buffer = staging.unsafeStorage.base
            var offset = 0
            for (g, _) in parts {
                let n = g.scalarCount * size
                (buffer + offset).copyMemory(from: g.unsafeStorage.base, byteCount: n)
                offset += n
            }
            communicator.allReduceSum(buffer, into: buffer, count: total, dtype: dtype)
            offset = 0
            for (g, out) in parts {
                let n = g.scalarCount * size
                out.base.copyMemory(from: buffer + offset, byteCount: n)
                offset += n
            }
            withExtendedLifetime(staging) {}
        }
    }

    /// Every replica's rows of a sparse gradient, concatenated in rank order.
    private func allGather(_ slices: IndexedSlices) throws -> IndexedSlices {
        let rowBytes = slices.rowSize * slices.dtype.byteSize
        var bytes = [UInt8](repeating: 0, count: slices.indices.count * (8 + rowBytes))
        bytes.withUnsafeMutableBytes { out in
            for (i, index) in slices.indices.enumerated() { out.storeBytes(of: Int64(index), toByteOffset: i * 8, as: Int64.self) }
            withExtendedLifetime(slices.values) {
                (out.baseAddress! + slices.indices.count * 8).copyMemory(from: slices.values.unsafeStorage.base,
                                                                          byteCount: slices.indices.count * rowBytes)
            }
        }
        let all = strategy.collectives.sync { strategy.communicator.allGather(bytes: bytes) }
        var indices: [Int] = [], rowCount = 0
        for part in all { rowCount += part.count / (8 + rowBytes) }
        indices.reserveCapacity(rowCount)
        let rowShape = Array(slices.values.shape.dropFirst())
        let values = try Tensor(shape: [rowCount] + rowShape, dtype: slices.dtype, operation: "sparse gradient all-gather") { out in
            var row = 0
            for part in all {
                let n = part.count / (8 + rowBytes)
                part.withUnsafeBytes { p in
                    for i in 0..<n { indices.append(Int(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))) }
                    if n > 0 { (out.baseAddress! + row * rowBytes).copyMemory(from: p.baseAddress! + n * 8, byteCount: n * rowBytes) }
                }
                row += n
            }
        }
        return try IndexedSlices(values: values, indices: indices, denseShape: slices.denseShape)
    }
}

extension Strategy {
    /// Sums each gradient across replicas (Keras' `all_reduce_sum_gradients`), without overlap: dense
    /// ones bucketed, sparse ones all-gathered. Identity with one replica.
    /// - Throws: ``DistributionError/communication(_:)`` when replicas' variables differ.
    public func sumGradients(_ gradients: [Gradient?], for variables: [Variable]) throws -> [Gradient?] {
        guard numReplicasInSync > 1 else { return gradients }
        let sync = try GradientSynchronizer(strategy: self, variables: variables)
        return try sync.finish(gradients)
    }
}
