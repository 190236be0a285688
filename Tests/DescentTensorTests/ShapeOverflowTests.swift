@testable import DescentTensor
import Testing

// Shapes whose element count overflows, negative dimensions and allocations larger than the machine: each
// is a thrown `TensorError` naming the operation and the shape. Before the checked element count
// (`Shape.elementCount`), the marked cases trapped: `shape.reduce(1, *)` overflowed (a Swift arithmetic
// trap), or the allocator was asked for terabytes and aborted (`UnsafeMutableRawPointer.allocate` traps on
// failure; with Linux overcommit the zero-fill would have been OOM-killed instead).

/// Runs `body`, expecting a `TensorError` whose message contains every string in `fragments`.
private func expectTensorError(
    _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: TensorError.self, sourceLocation: sourceLocation) { try body() }
    guard let message = error?.description else { return }
    for fragment in fragments {
        #expect(message.contains(fragment), "\"\(message)\" should mention \"\(fragment)\"", sourceLocation: sourceLocation)
    }
}

@Suite struct ShapeOverflowTests {
    static let huge = 1 << 62

    @Test func elementCountIsCheckedAndCountsNonZeroDimensions() throws {
        #expect(try Shape.elementCount([], operation: "t") == 1)
        #expect(try Shape.elementCount([2, 3, 4], operation: "t") == 24)
        #expect(try Shape.elementCount([0, 5], operation: "t") == 0)
        #expect(try Shape.elementCount([Shape.maximumElementCount], operation: "t") == Shape.maximumElementCount)
        expectTensorError(["t:", "[1152921504606846976]", "too large"]) {
            _ = try Shape.elementCount([Shape.maximumElementCount + 1], operation: "t")
        }
        // Empty, but its rows would have 2^64 elements: rejected, so no kernel's partial product overflows.
        expectTensorError(["[0, 4611686018427387904, 4]", "too large"]) {
            _ = try Shape.elementCount([0, Self.huge, 4], operation: "t")
        }
        expectTensorError(["dimension 1 is -2", "dimensions must be >= 0"]) {
            _ = try Shape.elementCount([3, -2], operation: "t")
        }
        #expect(!Shape.isValid([Self.huge, 4]) && Shape.isValid([Self.huge / 8]) && Shape.isValid([7, 0]))
    }

    /// Trapped before: `[1 << 62, 4].reduce(1, *)` overflows.
    @Test func creationFromAnOverflowingShapeThrows() {
        let shape = [Self.huge, 4]
        expectTensorError(["Tensor.zeros", "[4611686018427387904, 4]", "too large"]) { _ = try Tensor.zeros(shape: shape) }
        expectTensorError(["Tensor.zeros", "too large"]) { _ = try Tensor.zeros(shape: shape, dtype: .int64) }
        expectTensorError(["Tensor(repeating:shape:)", "[4611686018427387904, 4]"]) { _ = try Tensor.ones(shape: shape) }
        expectTensorError(["Tensor(shape:scalars:)", "[4611686018427387904, 4]"]) {
            _ = try Tensor(shape: shape, scalars: [Float]())
        }
        expectTensorError(["randomUniform", "[4611686018427387904, 4]"]) { _ = try Tensor.randomUniform(shape: shape, seed: 1) }
        expectTensorError(["randomNormal", "[4611686018427387904, 4]"]) { _ = try Tensor.randomNormal(shape: shape, seed: 1) }
        expectTensorError(["truncatedNormal", "[4611686018427387904, 4]"]) { _ = try Tensor.truncatedNormal(shape: shape, seed: 1) }
    }

    @Test func negativeDimensionsThrowNamingTheAxis() {
        expectTensorError(["Tensor.zeros", "[2, -1]", "dimension 1 is -1"]) { _ = try Tensor.zeros(shape: [2, -1]) }
        expectTensorError(["Tensor(repeating:shape:)", "dimension 0 is -5"]) { _ = try Tensor(repeating: 1, shape: [-5]) }
        expectTensorError(["randomUniform", "[-1]"]) { _ = try Tensor.randomUniform(shape: [-1], seed: 0) }
    }

    /// Aborted before: 4 TB went to the allocator, which traps (or the zero-fill is OOM-killed).
    @Test func allocationsLargerThanTheMachineThrow() throws {
        #expect(SystemMemory.totalBytes > 0)
        let bytes = 4_000_000_000_000
        #expect(bytes > SystemMemory.totalBytes, "this test assumes a machine with less than 4 TB of memory")
        expectTensorError(["Tensor.zeros", "cannot allocate 4000000000000 bytes", "shape [1000000000000]",
                           "the machine has \(SystemMemory.totalBytes) bytes"]) {
            _ = try Tensor.zeros(shape: [1_000_000_000_000])
        }
        expectTensorError(["Tensor(repeating:shape:)", "cannot allocate"]) {
            _ = try Tensor(repeating: 2, shape: [1_000_000, 1_000_000], dtype: .float64)
        }
        // 10^18 steps: the count fits, the 4·10^18 bytes do not fit in memory.
        expectTensorError(["Tensor.range", "cannot allocate"]) { _ = try Tensor.range(0, to: 1e18) }
        // Still usable afterwards.
        #expect(try Tensor.zeros(shape: [3]).doubles == [0, 0, 0])
    }

    /// Trapped before: the product of the new shape (`filter { $0 != -1 }.reduce(1, *)`) overflowed.
    @Test func reshapeToAnOverflowingShapeThrows() throws {
        let x = try Tensor.zeros(shape: [4])
        expectTensorError(["reshape", "[4611686018427387904, 4]", "too large"]) { _ = try x.reshaped(to: [Self.huge, 4]) }
        expectTensorError(["reshape", "too large"]) { _ = try x.reshaped(to: [-1, Self.huge, 4]) }
        // An empty tensor: -1 cannot be inferred from a product of 0 ...
        let empty = try Tensor.zeros(shape: [0, 3])
        expectTensorError(["reshape"]) { _ = try empty.reshaped(to: [Self.huge, -1, 0]) }
        // ... and an explicit shape with a zero still needs a valid non-zero product.
        expectTensorError(["reshape", "[0, 4611686018427387904, 4]", "too large"]) { _ = try empty.reshaped(to: [0, Self.huge, 4]) }
        #expect(try x.reshaped(to: [-1, 2]).shape == [2, 2])
    }

    /// Trapped before: `rowSize` (`denseShape.dropFirst().reduce(1, *)`) and `toDense()`'s `try!` on a
    /// dense shape the caller chose; with no indices, `values` ([0, 4]) said nothing about its size.
    @Test func indexedSlicesCheckTheirDenseShape() throws {
        let noRows = try Tensor.zeros(shape: [0, 4])
        expectTensorError(["IndexedSlices dense shape", "[4611686018427387904, 4]", "too large"]) {
            _ = try IndexedSlices(values: noRows, indices: [], denseShape: [Self.huge, 4])
        }
        let columns = try Tensor.zeros(shape: [0, Self.huge / 8])
        expectTensorError(["IndexedSlices dense shape", "too large"]) {
            _ = try IndexedSlices(values: columns, indices: [], denseShape: [8, Self.huge / 8])
        }
        expectTensorError(["IndexedSlices dense shape", "dimension 0 is -3"]) {
            _ = try IndexedSlices(values: noRows, indices: [], denseShape: [-3, 4])
        }
        // A valid dense shape larger than the machine: densifying it throws (a 16 TB tensor).
        let wide = try IndexedSlices(values: noRows, indices: [], denseShape: [1 << 40, 4])
        #expect(wide.rowSize == 4)
        expectTensorError(["Tensor.zeros", "cannot allocate", "[1099511627776, 4]"]) { _ = try wide.toDense() }
        expectTensorError(["cannot allocate"]) { _ = try Gradient.sparse(wide).denseValue }
    }

    /// Trapped before: the output shape's product (2^71) overflowed when the result was allocated. The
    /// operands are empty (a zero dimension), so they exist, but the broadcast shape has 2^71 elements.
    @Test func broadcastOutputsThatOverflowThrow() throws {
        let a = try Tensor.zeros(shape: [1 << 31, 1, 0])
        let b = try Tensor.zeros(shape: [1, 1 << 40, 0])
        expectTensorError(["add", "[2147483648, 1099511627776, 0]", "too large"]) { _ = try a + b }
        expectTensorError(["multiply", "too large"]) { _ = try a * b }
        expectTensorError(["broadcast(to:)", "too large"]) { _ = try a.broadcast(to: [1 << 31, 1 << 40, 0]) }
    }

    /// Trapped before: `batch + [m, n]` with m = n = 2^40 overflowed in `Tensor.zeros` (k = 0: nothing to
    /// multiply, so the zero-filled path).
    @Test func matmulOutputsThatOverflowThrow() throws {
        let a = try Tensor.zeros(shape: [1 << 40, 0]), b = try Tensor.zeros(shape: [0, 1 << 40])
        expectTensorError(["matmul", "[1099511627776, 1099511627776]", "too large"]) { _ = try a.matmul(b) }
        // Aborted before: 2^60 elements, 2^62 bytes asked of the allocator.
        let batched = try Tensor.zeros(shape: [1 << 20, 1 << 20, 0])
        expectTensorError(["matmul", "[1048576, 1048576, 1048576]", "too large"]) {
            _ = try batched.matmul(try Tensor.zeros(shape: [1 << 20, 0, 1 << 20]))
        }
    }

    /// Trapped before: the sum of the sizes along the axis (`outShape[ax] += ...`) overflowed.
    @Test func concatWhoseSizeOverflowsThrows() throws {
        let part = try Tensor.zeros(shape: [0, 1 << 59])
        expectTensorError(["concat", "add up beyond Int.max"]) {
            _ = try Tensor.concat([Tensor](repeating: part, count: 16), axis: 1)
        }
        expectTensorError(["concat", "too large"]) { _ = try Tensor.concat([part, part], axis: 1) }
        #expect(try Tensor.concat([part, part], axis: 0).shape == [0, 1 << 59])
    }

    /// Trapped before: `[indices.count] + rowShape` overflowed (2^21 rows of 2^43 elements).
    @Test func gatherOutputsThatOverflowThrow() throws {
        let table = try Tensor.zeros(shape: [1, 1 << 43, 0])
        expectTensorError(["gather", "[2097152, 8796093022208, 0]", "too large"]) {
            _ = try table.gather([Int](repeating: 0, count: 1 << 21))
        }
    }

    /// Trapped before: `start + size` overflowed for a start of `Int.max`, and `shape - start` for `Int.min`.
    @Test func slicesWithExtremeBoundsThrow() throws {
        let x = try Tensor.zeros(shape: [4])
        expectTensorError(["slice", "outside shape [4]"]) { _ = try x.slice(start: [Int.max], size: [1]) }
        expectTensorError(["slice", "outside shape [4]"]) { _ = try x.slice(start: [1], size: [Int.max]) }
        expectTensorError(["slice", "outside shape [4]"]) { _ = try x.slice(start: [Int.min], size: [-1]) }
        #expect(try x.slice(start: [4], size: [-1]).shape == [0])
        #expect(try x.slice(start: [1], size: [-1]).shape == [3])
    }

    /// Trapped before: `oneHot`'s result shape `indices.shape + [depth]` (4 · 2^61) overflowed when zero-filled.
    @Test func oneHotWithAnOverflowingDepthThrows() throws {
        let indices = Tensor([0, 1, 2, 3] as [Int64])
        expectTensorError(["oneHot", "[4, 2305843009213693952]", "too large"]) {
            _ = try Tensor.oneHot(indices, depth: 1 << 61)
        }
    }
}
