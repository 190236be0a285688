#if canImport(Glibc)
import Glibc
#endif

// Layout operations: reshape, transpose, broadcast, concat, slicing and gather. They work for every dtype
// (elements are moved as bytes) and are differentiable for floating-point tensors.

extension Tensor {
    // MARK: Reshape

    /// The same elements with a new shape (`tf.reshape`). One dimension may be `-1` and is inferred.
    /// Shares the buffer: no data is copied.
    public func reshaped(to newShape: [Int]) throws -> Tensor {
        let resolved = try resolveReshape(newShape)
        if resolved == shape { return self }
        var out = self
        out.shape = resolved
        out.tapeNode = 0
        return Autodiff.recordUnary("reshape", self, out, backward: { [shape = self.shape] g in
            [.dense(try g.reshaped(to: shape))]
        })
    }

    private func resolveReshape(_ newShape: [Int]) throws -> [Int] {
        let unknown = newShape.indices.filter { newShape[$0] == -1 }
        guard unknown.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
            throw TensorError.invalidShape(operation: "reshape", shape: newShape,
                                           reason: "at most one dimension may be -1 and none may be below -1")
        }
        var resolved = newShape
        // Checked: the new shape is the caller's, and its product may overflow.
        let known = try Shape.elementCount(newShape.filter { $0 != -1 }, operation: "reshape")
        if let u = unknown.first {
            guard known > 0, scalarCount % known == 0 else {
                throw TensorError.incompatibleShapes(operation: "reshape", lhs: shape, rhs: newShape,
                                                     reason: "\(scalarCount) elements cannot fill the shape")
            }
            resolved[u] = scalarCount / known
            // With an empty tensor `known` may be 0, and the resolved shape's non-zero product too large.
            _ = try Shape.elementCount(resolved, operation: "reshape")
        } else if known != scalarCount {
            throw TensorError.incompatibleShapes(operation: "reshape", lhs: shape, rhs: newShape,
                                                 reason: "\(scalarCount) elements, the new shape holds \(known)")
        }
        return resolved
    }

    /// Drops the given (size-1) axes, without recording.
    func applyReshape(droppingAxes axes: [Int]) throws -> Tensor {
        var out = self
        out.shape = shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        out.tapeNode = 0
        return out
    }

    /// Inserts a dimension of size 1 at `axis` (`tf.expand_dims`); `axis` may be negative.
    public func expandingDims(at axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        guard a >= 0 && a <= rank else { throw TensorError.invalidAxis(operation: "expandingDims", axis: axis, rank: rank + 1) }
        var s = shape
        s.insert(1, at: a)
        return try reshaped(to: s)
    }

    /// Removes size-1 dimensions: the given `axes`, or all of them when `nil` (`tf.squeeze`).
    public func squeezing(axes: [Int]? = nil) throws -> Tensor {
        let ax = try axes.map { try normalizedAxes($0, operation: "squeezing") } ?? shape.indices.filter { shape[$0] == 1 }
        if let bad = ax.first(where: { shape[$0] != 1 }) {
            throw TensorError.invalidShape(operation: "squeezing", shape: shape,
                                           reason: "axis \(bad) has size \(shape[bad]), not 1")
        }
        return try reshaped(to: shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element))
    }

    /// A 2-d view `[shape[0], rest]` (Keras' `Flatten` for a batch).
    public func flattenedBatch() throws -> Tensor {
        guard rank >= 1 else { throw TensorError.invalidShape(operation: "flattenedBatch", shape: shape, reason: "needs rank >= 1") }
        return try reshaped(to: [shape[0], Shape.product(shape.dropFirst())])
    }

    // MARK: Transpose

    /// Permutes the axes (`tf.transpose`); by default reverses them. Copies the data.
    public func transposed(permutation: [Int]? = nil) throws -> Tensor {
        let perm = permutation ?? Array((0..<rank).reversed())
        guard perm.count == rank, perm.sorted() == Array(0..<rank) else {
            throw TensorError.invalidArgument(operation: "transposed",
                                              reason: "permutation \(perm) is not a permutation of the \(rank) axes of shape \(shape)")
        }
        if perm == Array(0..<rank) { return self }
        let outShape = perm.map { shape[$0] }
        let out = try Tensor(uninitializedShape: outShape, dtype: dtype, operation: "transposed")
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = perm.map { inStrides[$0] }
        func copy<E>(_: E.Type) {
            let src = storage.base.assumingMemoryBound(to: E.self), dst = out.storage.base.assumingMemoryBound(to: E.self)
            if rank == 2 {
                // Blocked 2-d transpose for cache friendliness.
                let rows = outShape[0], cols = outShape[1], s0 = strides[0], s1 = strides[1], block = 32
                for rb in stride(from: 0, to: rows, by: block) {
                    for cb in stride(from: 0, to: cols, by: block) {
                        for r in rb..<Swift.min(rows, rb + block) {
                            for c in cb..<Swift.min(cols, cb + block) { dst[r * cols + c] = src[r * s0 + c * s1] }
                        }
                    }
                }
                return
            }
            var index = [Int](repeating: 0, count: rank)
            var offset = 0
            for o in 0..<scalarCount {
                dst[o] = src[offset]
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    offset += strides[axis]
                    if index[axis] < outShape[axis] { break }
                    offset -= strides[axis] * outShape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        if scalarCount > 0 { dtype.byteSize == 4 ? copy(UInt32.self) : copy(UInt64.self) }
        // Internal invariant: `perm` was checked above to be a permutation of 0..<rank.
        let inverse = (0..<rank).map { axis in perm.firstIndex(of: axis)! }
        return Autodiff.recordUnary("transpose", self, out, backward: { g in [.dense(try g.transposed(permutation: inverse))] })
    }

    // MARK: Broadcast

    /// Repeats the tensor along size-1 or missing leading dimensions to `newShape` (`tf.broadcast_to`).
    public func broadcast(to newShape: [Int]) throws -> Tensor {
        if newShape == shape { return self }
        _ = try Shape.elementCount(newShape, operation: "broadcast(to:)")
        let target = try broadcastShape(shape, newShape, operation: "broadcast(to:)")
        guard target == newShape else {
            throw TensorError.incompatibleShapes(operation: "broadcast(to:)", lhs: shape, rhs: newShape,
                                                 reason: "cannot broadcast to the target")
        }
        let out = try Tensor.zeros(shape: newShape, dtype: dtype).applyBinary(.add, self, name: "broadcast(to:)")
        return Autodiff.recordUnary("broadcast", self, out, backward: { [shape = self.shape] g in
            [.dense(try g.sumToShape(shape))]
        })
    }

    // MARK: Concat

    /// Joins tensors along `axis` (`tf.concat`). All other dimensions and the dtypes must agree.
    public static func concat(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else {
            throw TensorError.invalidArgument(operation: "concat", reason: "needs at least one tensor")
        }
        let rank = first.rank
        let ax = axis < 0 ? axis + rank : axis
        guard ax >= 0 && ax < rank else { throw TensorError.invalidAxis(operation: "concat", axis: axis, rank: rank) }
        var outShape = first.shape
        outShape[ax] = 0
        for t in tensors {
            guard t.dtype == first.dtype else {
                throw TensorError.dtypeMismatch(operation: "concat", lhs: first.dtype, rhs: t.dtype)
            }
            var a = t.shape, b = first.shape
            guard a.count == b.count else {
                throw TensorError.incompatibleShapes(operation: "concat", lhs: first.shape, rhs: t.shape, reason: "ranks differ")
            }
            a[ax] = 0; b[ax] = 0
            guard a == b else {
                throw TensorError.incompatibleShapes(operation: "concat", lhs: first.shape, rhs: t.shape,
                                                     reason: "dimensions other than axis \(ax) must match")
            }
            let (sum, overflow) = outShape[ax].addingReportingOverflow(t.shape[ax])
            guard !overflow else {
                throw TensorError.invalidArgument(
                    operation: "concat", reason: "the sizes along axis \(ax) of shapes \(tensors.map(\.shape)) add up beyond Int.max")
            }
            outShape[ax] = sum
        }
        if tensors.count == 1 { return first }
        let out = try Tensor(uninitializedShape: outShape, dtype: first.dtype, operation: "concat")
        let outer = Shape.product(outShape[..<ax]), inner = Shape.product(outShape[(ax + 1)...])
        let elementSize = first.dtype.byteSize
        let outRow = outShape[ax] * inner * elementSize
        var column = 0
        for t in tensors {
            let block = t.shape[ax] * inner * elementSize
            for o in 0..<outer where block > 0 {
                (out.storage.base + o * outRow + column).copyMemory(from: t.storage.base + o * block, byteCount: block)
            }
            column += block
        }
        let sizes = tensors.map { $0.shape[ax] }
        return Autodiff.recordNary("concat", tensors, out, backward: { g in
            var start = 0
            return try sizes.map { size in
                var begin = [Int](repeating: 0, count: rank), extent = g.shape
                begin[ax] = start
                extent[ax] = size
                start += size
                return .dense(try g.slice(start: begin, size: extent))
            }
        })
    }

    // MARK: Slicing

    /// The block starting at `start` with extent `size` (`tf.slice`); a size of -1 runs to the end.
    public func slice(start: [Int], size: [Int]) throws -> Tensor {
        guard start.count == rank, size.count == rank else {
            throw TensorError.invalidArgument(operation: "slice",
                                              reason: "start \(start) and size \(size) need \(rank) components for shape \(shape)")
        }
        var extent = size
        for i in 0..<rank {
            // Compared without adding, so that no start or size (Int.max, Int.min) can overflow.
            let inBounds = start[i] >= 0 && start[i] <= shape[i]
            if inBounds && extent[i] == -1 { extent[i] = shape[i] - start[i] }
            guard inBounds, extent[i] >= 0, extent[i] <= shape[i] - start[i] else {
                throw TensorError.invalidArgument(operation: "slice",
                                                  reason: "start \(start) with size \(size) is outside shape \(shape)")
            }
        }
        if extent == shape { return self }
        var out = try Tensor(uninitializedShape: extent, dtype: dtype, operation: "slice")
        copyBlock(from: self, into: &out, offset: start, toLarger: false)
        return Autodiff.recordUnary("slice", self, out, backward: { [shape = self.shape] g in
            [.dense(try g.paddedSlice(into: shape, at: start))]
        })
    }

    /// Rows `range` along axis 0 (`t[2..<5]`).
    public func slice(rows range: Range<Int>) throws -> Tensor {
        guard rank >= 1 else { throw TensorError.invalidShape(operation: "slice(rows:)", shape: shape, reason: "needs rank >= 1") }
        // Bounds compared before `range.count`, which overflows for e.g. `-1..<Int.max`.
        guard range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.invalidArgument(operation: "slice(rows:)",
                                              reason: "rows \(range) are outside 0..<\(shape[0]) of shape \(shape)")
        }
        var begin = [Int](repeating: 0, count: rank), size = shape
        begin[0] = range.lowerBound
        size[0] = range.count
        return try slice(start: begin, size: size)
    }

    /// Zeros of `shape` with `self` placed at `offset` (the gradient of ``slice(start:size:)``).
    func paddedSlice(into outShape: [Int], at offset: [Int]) throws -> Tensor {
        var out = try Tensor.zeros(shape: outShape, dtype: dtype)
        copyBlock(from: self, into: &out, offset: offset, toLarger: true)
        return Autodiff.recordUnary("pad", self, out, backward: { [size = shape] g in
            [.dense(try g.slice(start: offset, size: size))]
        })
    }

    /// Copies between a tensor and a block of a larger one at `offset`.
    private func copyBlock(from src: Tensor, into dst: inout Tensor, offset: [Int], toLarger: Bool) {
        let big = toLarger ? dst.shape : src.shape
        let small = toLarger ? src.shape : dst.shape
        let r = big.count
        let elementSize = src.dtype.byteSize
        if small.contains(0) { return }
        if r == 0 {
            dst.storage.base.copyMemory(from: src.storage.base, byteCount: elementSize)
            return
        }
        var bigStrides = [Int](repeating: 1, count: r)
        for i in stride(from: r - 2, through: 0, by: -1) { bigStrides[i] = bigStrides[i + 1] * big[i + 1] }
        let rowBytes = small[r - 1] * elementSize
        let outerCount = Shape.product(small.dropLast())
        var index = [Int](repeating: 0, count: r - 1)
        for row in 0..<outerCount {
            var bigOffset = offset[r - 1]
            for i in 0..<(r - 1) { bigOffset += (index[i] + offset[i]) * bigStrides[i] }
            let smallPtr = (toLarger ? src.storage.base : dst.storage.base) + row * rowBytes
            let bigPtr = (toLarger ? dst.storage.base : src.storage.base) + bigOffset * elementSize
            if toLarger { bigPtr.copyMemory(from: smallPtr, byteCount: rowBytes) } else {
                smallPtr.copyMemory(from: bigPtr, byteCount: rowBytes)
            }
            var axis = r - 2
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < small[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    // MARK: Gather

    /// Rows `indices` along axis 0 (`tf.gather`, an embedding lookup). Its gradient is sparse: an
    /// ``IndexedSlices`` holding only the gathered rows.
    /// - Throws: ``TensorError/indexOutOfRange(operation:index:bound:)`` for an index outside `0..<shape[0]`.
    public func gather(_ indices: [Int]) throws -> Tensor {
        guard rank >= 1 else { throw TensorError.invalidShape(operation: "gather", shape: shape, reason: "needs rank >= 1") }
        if let bad = indices.first(where: { $0 < 0 || $0 >= shape[0] }) {
            throw TensorError.indexOutOfRange(operation: "gather", index: bad, bound: shape[0])
        }
        let rowShape = Array(shape.dropFirst())
        let out = try Tensor(uninitializedShape: [indices.count] + rowShape, dtype: dtype, operation: "gather")
        let rowBytes = Shape.product(rowShape) * dtype.byteSize
        for (r, index) in indices.enumerated() where rowBytes > 0 {
            (out.storage.base + r * rowBytes).copyMemory(from: storage.base + index * rowBytes, byteCount: rowBytes)
        }
        return Autodiff.recordUnary("gather", self, out, backward: { [shape = self.shape] g in
            [.sparse(IndexedSlices(unchecked: g, indices: indices, denseShape: shape))]
        })
    }

    /// Rows at the positions of an `int64` (or integral floating-point) index tensor of any shape; the
    /// result has shape `indices.shape + shape[1...]`. The gradient is an ``IndexedSlices``.
    public func gather(_ indices: Tensor) throws -> Tensor {
        let flat = indices.doubles
        if let bad = flat.first(where: { !$0.isFinite || $0 != $0.rounded() }) {
            throw TensorError.invalidArgument(operation: "gather", reason: "index \(bad) is not an integer")
        }
        // Integers too large for `Int` are out of range anyway (`Int(_:)` would trap on them).
        let rows = try gather(flat.map { Int(exactly: $0) ?? ($0 < 0 ? Int.min : Int.max) })
        return try rows.reshaped(to: indices.shape + shape.dropFirst())
    }

    /// One-hot rows for integer `indices` (`tf.one_hot`): shape `indices.shape + [depth]`. Indices outside
    /// `0..<depth` give a row of zeros, as in TensorFlow.
    public static func oneHot(_ indices: Tensor, depth: Int, dtype: DType = .float32) throws -> Tensor {
        guard depth >= 0 else { throw TensorError.invalidArgument(operation: "oneHot", reason: "depth \(depth) is negative") }
        var out = try Tensor(uninitializedShape: indices.shape + [depth], dtype: dtype, operation: "oneHot")
        out.storage.zeroFill()
        let values = indices.doubles
        out.makeUnique()
        for (i, v) in values.enumerated() {
            guard let k = Int(exactly: v), k >= 0, k < depth else { continue }  // NaN, fractions, out of range
            switch dtype {
            case .float32: out._mutablePointer(Float.self)[i * depth + k] = 1
            case .float64: out._mutablePointer(Double.self)[i * depth + k] = 1
            case .int64: out._mutablePointer(Int64.self)[i * depth + k] = 1
            }
        }
        return out
    }
}
