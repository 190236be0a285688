@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Optimizer {
    /// Runs dense jobs: the elements of all jobs are split into equal contiguous shares, one per thread,
    /// so many small variables cost one parallel region (a multi-tensor apply).
    static func runDenseJobs(_ jobs: [DenseJob], _ kernel: DenseKernel) {
        jobs.withUnsafeBufferPointer { jobs in
            var total = 0
            for job in jobs { total += job.count }
            let threads = ThreadPool.threadCount
            let grain = 1 << 15
            if threads <= 1 || total < 2 * grain {
                for job in jobs { kernel(job, 0..<job.count) }
                return
            }
            let shares = min(threads, total / grain)
            let perShare = (total + shares - 1) / shares
            ThreadPool.forEach(shares) { share in
                var start = share * perShare
                let end = min(total, start + perShare)
                // Find the job containing `start`, then walk forward.
                var offset = 0, j = 0
                while j < jobs.count && offset + jobs[j].count <= start { offset += jobs[j].count; j += 1 }
                while start < end && j < jobs.count {
                    let local = start - offset
                    let upto = min(jobs[j].count, end - offset)
                    if upto > local { kernel(jobs[j], local..<upto) }
                    start = offset + upto
                    offset += jobs[j].count
                    j += 1
                }
            }
        }
    }
}

/// One variable's dense update: raw pointers to the variable, its gradient and its slots.
///
/// A job holds no references (it is trivially copyable, so building and handing out thousands of jobs
/// costs no reference counting); whoever makes jobs keeps their buffers alive in a ``DenseJobBatch``
/// for the duration of the update. The variable and slot buffers are unique to their variables then.
public struct DenseJob: @unchecked Sendable {
    // @unchecked Sendable invariant: the pointers stay valid while the batch that made the job is alive,
    // and concurrent kernels touch disjoint element ranges of these buffers.
    @usableFromInline let variableBase: UnsafeMutableRawPointer
    @usableFromInline let gradientBase: UnsafeRawPointer
    @usableFromInline let slotBase0: UnsafeMutableRawPointer?
    @usableFromInline let slotBase1: UnsafeMutableRawPointer?
    @usableFromInline let slotBase2: UnsafeMutableRawPointer?
    @usableFromInline let slotBase3: UnsafeMutableRawPointer?
    /// The number of elements of the variable (and of the gradient and each slot).
    public let count: Int
    /// Keras 3's decoupled weight decay to apply to each element just before its update
    /// (`var ← var − (var·rate)·lr`; see ``Keras3/Optimizer``), or `nil`: the rate in the variable's
    /// dtype, held as a `Double`. A kernel that decays in its own pass reads it (Keras 3's Adam); for
    /// the others the batch runs the decay in front of the kernel, block by block.
    public let weightDecay: Double?

    /// Typed pointer to the variable's elements.
    @inlinable public func variablePointer<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        variableBase.assumingMemoryBound(to: T.self)
    }
    /// Typed pointer to the gradient's elements.
    @inlinable public func gradientPointer<T>(_: T.Type) -> UnsafePointer<T> {
        gradientBase.assumingMemoryBound(to: T.self)
    }
    /// Typed pointer to slot `i` (in ``Optimizer/denseKernelSlotNames`` order; at most four).
    @inlinable public func slotPointer<T>(_ i: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        let base: UnsafeMutableRawPointer?
        switch i {
        case 0: base = slotBase0
        case 1: base = slotBase1
        case 2: base = slotBase2
        case 3: base = slotBase3
        default: base = nil
        }
        guard let base else { preconditionFailure("dense job has no slot \(i)") }
        return base.assumingMemoryBound(to: T.self)
    }
}

/// Dense jobs and the buffers they point into: the batch owns one reference to every variable and slot
/// buffer, so the jobs stay valid while the batch is alive; the caller keeps the gradients alive.
struct DenseJobBatch {
    /// The most kernel slots a dense job carries.
    static let maxSlots = 4
    private(set) var jobs: [DenseJob] = []
    private var buffers: [TensorStorage] = []

    /// The number of kernel slots of every job.
    let slotCount: Int

    init(capacity: Int, slotCount: Int) {
        self.slotCount = slotCount
        jobs.reserveCapacity(capacity)
        buffers.reserveCapacity(capacity * (1 + slotCount))
    }

    var isEmpty: Bool { jobs.isEmpty }

    /// Whether some job carries a weight decay (the batch then runs the decay in front of the kernel).
    private(set) var hasWeightDecay = false

    /// Adds the update of `variable` by `gradient` with the given kernel slots (made unique here). The
    /// caller keeps `gradient` alive until the batch has run.
    mutating func append(gradient: TensorStorage, variable: Variable, slots: [Variable], weightDecay: Double? = nil) {
        precondition(slots.count == slotCount, "dense job for '\(variable.name)' with \(slots.count) slots, expected \(slotCount)")
        let v = variable.uniqueStorageForUpdate()
        buffers.append(v)
        var bases: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                    UnsafeMutableRawPointer?) = (nil, nil, nil, nil)
        for i in slots.indices {
            let storage = slots[i].uniqueStorageForUpdate()
            buffers.append(storage)
            switch i {
            case 0: bases.0 = storage.base
            case 1: bases.1 = storage.base
            case 2: bases.2 = storage.base
            default: bases.3 = storage.base
            }
        }
        jobs.append(DenseJob(variableBase: v.base, gradientBase: UnsafeRawPointer(gradient.base),
                             slotBase0: bases.0, slotBase1: bases.1, slotBase2: bases.2, slotBase3: bases.3,
                             count: variable.scalarCount, weightDecay: weightDecay))
        if weightDecay != nil { hasWeightDecay = true }
    }

    /// Runs `kernel` over every job (see ``Optimizer/runDenseJobs(_:_:)``), keeping the buffers alive.
    func run(_ kernel: DenseKernel) {
        withExtendedLifetime(buffers) { Optimizer.runDenseJobs(jobs, kernel) }
    }

    /// Runs `kernel` over every job, each job with a ``DenseJob/weightDecay`` decayed first, block by
    /// block (`var ← var − (var·rate)·lr` over a block, then `kernel` over that block), so the variable is
    /// decayed while it is in cache: the same operations in the same order per element as a whole-tensor
    /// decay before the update (the kernels are element-wise), at no extra memory traffic.
    func run<T: FloatingElement>(_ kernel: @escaping DenseKernel, decayingWith learningRate: T) {
        guard hasWeightDecay else { return run(kernel) }
        let decaying: DenseKernel = { job, range in
            guard let rate = job.weightDecay else { return kernel(job, range) }
            let w = job.variablePointer(T.self)
            let decay = T(rate)
            var start = range.lowerBound
            while start < range.upperBound {
                let end = Swift.min(start + DenseJobBatch.decayBlock, range.upperBound)
                weightDecayKernel(w, start..<end, decay: decay, learningRate: learningRate)
                kernel(job, start..<end)
                start = end
            }
        }
        run(decaying)
    }

    /// Elements per decay block: 8 KiB of `Float` (a block of the variable and its gradient and slots
    /// stays in L1).
    static let decayBlock = 2048
}

/// Keras 3's `_apply_weight_decay` over `range`: `w ← w − (w·decay)·lr`, rounded after each operation.
func weightDecayKernel<T: FloatingElement>(_ w: UnsafeMutablePointer<T>, _ range: Range<Int>, decay: T, learningRate lr: T) {
    let width = T.Vector.scalarCount
    let vd = T.Vector(repeating: decay), vlr = T.Vector(repeating: lr)
    var i = range.lowerBound
    let end = range.upperBound
    while i + width <= end {
        let wi = loadVector(UnsafePointer(w + i))
        storeVector(wi - (wi * vd) * vlr, w + i)
        i += width
    }
    while i < end {
        w[i] = w[i] - (w[i] * decay) * lr
        i += 1
    }
}

/// A fused dense update over elements `range` of one job. Called concurrently on disjoint ranges.
public typealias DenseKernel = @Sendable (DenseJob, Range<Int>) -> Void
