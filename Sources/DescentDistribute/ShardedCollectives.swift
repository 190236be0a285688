@_spi(DescentInternals) import DescentTensor

// The collectives of sharded optimizer state (ZeRO stage 1, PyTorch's ZeroRedundancyOptimizer): every
// replica owns a *region* (a list of memory spans: the gradients, parameters or slots of the variables
// it owns), and a collective moves all regions at once, in calls of at most about
// `Strategy.gradientBucketByteCount` bytes (Open MPI's shared-memory path is fastest at 1–4 MB).

/// One contiguous piece of memory of a region.
public struct MemorySpan {
    /// The first byte.
    public let base: UnsafeMutableRawPointer
    /// The number of bytes.
    public let byteCount: Int

    /// A span of `byteCount` bytes at `base`.
    public init(base: UnsafeMutableRawPointer, byteCount: Int) {
        self.base = base
        self.byteCount = byteCount
    }

    /// A span that is only read (the source side of a collective).
    public init(reading base: UnsafeRawPointer, byteCount: Int) {
        self.base = UnsafeMutableRawPointer(mutating: base)
        self.byteCount = byteCount
    }
}

/// How a collective over one region per replica is split into calls: call `k` moves, for every
/// replica `r`, units `k·perCall ..< min((k+1)·perCall, lengths[r])` of `r`'s region (a replica whose
/// region is shorter sends nothing in the last calls).
public struct ShardChunks: Equatable, Sendable {
    /// Each replica's region length (elements for a reduce-scatter, bytes for an all-gather).
    public let lengths: [Int]
    /// The most units one replica moves in one call.
    public let perCall: Int

    /// Splits regions of `lengths` so that one call moves at most about `maxUnitsPerCall` units in all
    /// (at least one unit per replica per call).
    public init(lengths: [Int], maxUnitsPerCall: Int) {
        self.lengths = lengths
        self.perCall = Swift.max(1, maxUnitsPerCall / Swift.max(1, lengths.count))
    }

    /// The number of calls.
    public var callCount: Int {
        let longest = lengths.max() ?? 0
        return longest == 0 ? 0 : (longest - 1) / perCall + 1
    }

    /// What every replica moves in call `k`.
    public func counts(call k: Int) -> [Int] {
        lengths.map { Swift.max(0, Swift.min(perCall, $0 - k * perCall)) }
    }
}

/// PyTorch's `ZeroRedundancyOptimizer` partition: whole parameters, largest first (ties in list order),
/// each to the replica with the fewest elements so far (ties to the lowest rank).
public enum ShardPartition {
    /// The owner of each item of `sizes` (element counts), continuing from `loads` (elements each
    /// replica owns already), and the loads after.
    public static func greedy(sizes: [Int], loads: [Int]) -> (owners: [Int], loads: [Int]) {
        var loads = loads
        var owners = [Int](repeating: 0, count: sizes.count)
        let order = sizes.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
        for i in order {
            var best = 0
            for r in loads.indices where loads[r] < loads[best] { best = r }
            owners[i] = best
            loads[best] += sizes[i]
        }
        return (owners, loads)
    }
}

/// Grow-only staging memory for the sharded collectives of one optimizer (allocated once, reused
/// every step).
public final class CollectiveStaging: @unchecked Sendable {
    // @unchecked Sendable invariant: the buffers are only touched inside a strategy's
    // `collectives.sync` block issued by the one training thread that owns this object.
    private var send: UnsafeMutableRawPointer?
    private var sendCapacity = 0
    private var receive: UnsafeMutableRawPointer?
    private var receiveCapacity = 0

    /// Empty staging memory.
    public init() {}

    deinit {
        send?.deallocate()
        receive?.deallocate()
    }

    /// Buffers of at least `sendBytes` and `receiveBytes` bytes.
    func buffers(send sendBytes: Int, receive receiveBytes: Int) -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer) {
        if sendBytes > sendCapacity || send == nil {
            send?.deallocate()
            sendCapacity = Swift.max(sendBytes, 64)
            send = UnsafeMutableRawPointer.allocate(byteCount: sendCapacity, alignment: 64)
        }
        if receiveBytes > receiveCapacity || receive == nil {
            receive?.deallocate()
            receiveCapacity = Swift.max(receiveBytes, 64)
            receive = UnsafeMutableRawPointer.allocate(byteCount: receiveCapacity, alignment: 64)
        }
        return (send!, receive!)
    }
}

/// Walks a region span by span, copying bytes out of it or into it.
struct SpanCursor {
    let spans: [MemorySpan]
    var index = 0
    var offset = 0

    init(_ spans: [MemorySpan]) { self.spans = spans }

    /// Copies the region's next `count` bytes to `buffer`.
    mutating func read(_ count: Int, into buffer: UnsafeMutableRawPointer) {
        walk(count) { span, at, n, done in (buffer + done).copyMemory(from: span.base + at, byteCount: n) }
    }

    /// Copies `count` bytes of `buffer` into the region's next bytes.
    mutating func write(_ count: Int, from buffer: UnsafeRawPointer) {
        walk(count) { span, at, n, done in (span.base + at).copyMemory(from: buffer + done, byteCount: n) }
    }

    private mutating func walk(_ count: Int, _ copy: (MemorySpan, Int, Int, Int) -> Void) {
        var done = 0
        while done < count {
            precondition(index < spans.count, "sharded collective: region shorter than its counts")
            let span = spans[index]
            let n = Swift.min(count - done, span.byteCount - offset)
            if n > 0 { copy(span, offset, n, done) }
            done += n
            offset += n
            if offset == span.byteCount {
                index += 1
                offset = 0
            }
        }
    }
}

extension Strategy {
    /// Sums every replica's `regions` across replicas, this replica receiving the sums of its own
    /// region into `mine` (ZeRO's gradient reduce-scatter). `regions[r]` is the same memory layout on
    /// every replica (the gradients of the variables replica `r` owns, read here); `mine` has the
    /// lengths of `regions[replicaID]`. Elements are `dtype` (float32 or float64); one collective call
    /// moves at most about ``gradientBucketByteCount`` bytes.
    public func reduceScatter(regions: [[MemorySpan]], into mine: [MemorySpan], dtype: DType, staging: CollectiveStaging) {
        let size = dtype.byteSize
        precondition(regions.count == numReplicasInSync, "sharded reduce-scatter: one region per replica")
        let chunks = ShardChunks(lengths: regions.map { $0.reduce(0) { $0 + $1.byteCount } / size },
                                 maxUnitsPerCall: Swift.max(1, gradientBucketByteCount / size))
        guard chunks.callCount > 0 else { return }
        let (send, receive) = staging.buffers(send: chunks.perCall * numReplicasInSync * size, receive: chunks.perCall * size)
        var sources = regions.map(SpanCursor.init)
        var output = SpanCursor(mine)
        let me = replicaID
        collectives.sync {
            for k in 0..<chunks.callCount {
                let counts = chunks.counts(call: k)
                var offset = 0
                for r in counts.indices {
                    sources[r].read(counts[r] * size, into: send + offset)
                    offset += counts[r] * size
                }
                communicator.reduceScatterSum(send, into: receive, counts: counts, dtype: dtype)
                output.write(counts[me] * size, from: receive)
            }
        }
    }

    /// Copies every replica's region into the other replicas' (ZeRO's parameter all-gather):
    /// `regions[replicaID]` is read, every other `regions[r]` is overwritten with replica `r`'s bytes.
    /// Every replica lists the same byte lengths. One call moves at most about
    /// ``gradientBucketByteCount`` bytes.
    public func allGather(regions: [[MemorySpan]], staging: CollectiveStaging) {
        precondition(regions.count == numReplicasInSync, "sharded all-gather: one region per replica")
        let chunks = ShardChunks(lengths: regions.map { $0.reduce(0) { $0 + $1.byteCount } },
                                 maxUnitsPerCall: gradientBucketByteCount)
        guard chunks.callCount > 0 else { return }
        let (send, receive) = staging.buffers(send: chunks.perCall, receive: chunks.perCall * numReplicasInSync)
        var cursors = regions.map(SpanCursor.init)
        let me = replicaID
        collectives.sync {
            for k in 0..<chunks.callCount {
                let counts = chunks.counts(call: k)
                cursors[me].read(counts[me], into: send)
                communicator.allGather(send, into: receive, byteCounts: counts)
                var offset = 0
                for r in counts.indices {
                    if r != me { cursors[r].write(counts[r], from: receive + offset) }
                    offset += counts[r]
                }
            }
        }
    }
}
