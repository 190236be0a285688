import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Tensor creation, reading values, casts, copy-on-write and equality; the seeded random generator; and
// how tensors print.

/// Runs `body`, expecting a `TensorError` whose message contains every string in `fragments`.
private func expectCreationError(
    containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let error = #expect(throws: TensorError.self, sourceLocation: sourceLocation) { try body() }
    guard let message = error?.description else { return }
    for fragment in fragments {
        #expect(message.contains(fragment), "\"\(message)\" should mention \"\(fragment)\"", sourceLocation: sourceLocation)
    }
}

@Suite struct TensorCreationTests {
    // MARK: Initialisers

    @Test func shapeAndScalarsForEveryDType() throws {
        let f = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(f.shape == [2, 3])
        #expect(f.dtype == .float32)
        #expect(f.rank == 2)
        #expect(f.scalarCount == 6)
        #expect(try f.scalars(as: Float.self) == [1, 2, 3, 4, 5, 6])

        let d = try Tensor(shape: [3, 1], scalars: [0.1, -2.5, 1e300])
        #expect(d.dtype == .float64)
        #expect(d.shape == [3, 1])
        #expect(try d.scalars(as: Double.self) == [0.1, -2.5, 1e300])

        let i = try Tensor(shape: [1, 2, 2], scalars: [Int64.min, -1, 0, Int64.max])
        #expect(i.dtype == .int64)
        #expect(i.rank == 3)
        #expect(try i.scalars(as: Int64.self) == [Int64.min, -1, 0, Int64.max])

        let scalar = try Tensor(shape: [], scalars: [Float(4)])
        #expect(scalar.shape == [] && scalar.scalarCount == 1 && scalar.rank == 0)
        #expect(try scalar.item() == 4)

        let empty = try Tensor(shape: [0, 3], scalars: [] as [Double])
        #expect(empty.shape == [0, 3])
        #expect(empty.scalarCount == 0)
        #expect(empty.doubles == [])
    }

    @Test func shapeAndScalarsCountMismatchNamesShapeAndCounts() {
        #expect(throws: TensorError.invalidShape(operation: "Tensor(shape:scalars:)", shape: [2, 3],
                                                 reason: "expected 6 scalars, got 5")) {
            try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5] as [Float])
        }
        expectCreationError(containing: ["Tensor(shape:scalars:)", "[2, 3]", "6", "7"]) {
            _ = try Tensor(shape: [2, 3], scalars: [Double](repeating: 0, count: 7))
        }
        expectCreationError(containing: ["[]", "expected 1 scalars, got 0"]) {
            _ = try Tensor(shape: [], scalars: [] as [Int64])
        }
        expectCreationError(containing: ["[2, -3]", ">= 0"]) {
            _ = try Tensor(shape: [2, -3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        }
    }

    @Test func rowsInitialiser() throws {
        let t = try Tensor(rows: [[1, 2, 3], [4, 5, 6]] as [[Double]])
        #expect(t.shape == [2, 3])
        #expect(t.dtype == .float64)
        #expect(t.doubles == [1, 2, 3, 4, 5, 6])

        let column = try Tensor(rows: [[Int64(7)], [8]])
        #expect(column.shape == [2, 1])
        #expect(try column.scalars(as: Int64.self) == [7, 8])

        let none = try Tensor(rows: [] as [[Float]])
        #expect(none.shape == [0, 0])
        #expect(none.scalarCount == 0)
    }

    @Test func raggedRowsThrow() {
        #expect(throws: TensorError.invalidShape(operation: "Tensor(rows:)", shape: [3, 2],
                                                 reason: "row 1 has 3 elements, expected 2")) {
            try Tensor(rows: [[1, 2], [3, 4, 5], [6, 7]] as [[Float]])
        }
        expectCreationError(containing: ["Tensor(rows:)", "row 2 has 0 elements, expected 1"]) {
            _ = try Tensor(rows: [[1], [2], []] as [[Double]])
        }
    }

    @Test func oneDimensionalAndScalarInitialisers() throws {
        let f = Tensor([1.5, -2] as [Float])
        #expect(f.shape == [2] && f.dtype == .float32)
        #expect(try f.scalars(as: Float.self) == [1.5, -2])
        let d = Tensor([0.1, 0.2, 0.3])
        #expect(d.shape == [3] && d.dtype == .float64)
        #expect(try d.scalars(as: Double.self) == [0.1, 0.2, 0.3])
        let i = Tensor([Int64.max, 3] as [Int64])
        #expect(i.shape == [2] && i.dtype == .int64)
        #expect(try i.scalars(as: Int64.self) == [Int64.max, 3])
        let empty = Tensor([] as [Float])
        #expect(empty.shape == [0] && empty.scalarCount == 0)

        let sf = Tensor(Float(2.5)), sd = Tensor(Double(-0.125)), si = Tensor(Int64(-9))
        #expect(sf.shape == [] && sf.dtype == .float32)
        #expect(try sf.scalars(as: Float.self) == [2.5])
        #expect(sd.shape == [] && sd.dtype == .float64)
        #expect(try sd.scalars(as: Double.self) == [-0.125])
        #expect(si.shape == [] && si.dtype == .int64)
        #expect(try si.scalars(as: Int64.self) == [-9])
    }

    @Test(arguments: DType.allCases)
    func filledTensors(dtype: DType) throws {
        let z = try Tensor.zeros(shape: [2, 3], dtype: dtype)
        #expect(z.shape == [2, 3] && z.dtype == dtype)
        #expect(z.doubles == [Double](repeating: 0, count: 6))
        let o = try Tensor.ones(shape: [3, 1, 2], dtype: dtype)
        #expect(o.shape == [3, 1, 2] && o.dtype == dtype)
        #expect(o.doubles == [Double](repeating: 1, count: 6))
        let r = try Tensor(repeating: -3, shape: [4], dtype: dtype)
        #expect(r.dtype == dtype)
        #expect(r.doubles == [-3, -3, -3, -3])
        let scalar = try Tensor.ones(shape: [], dtype: dtype)
        #expect(scalar.shape == [])
        #expect(try scalar.item() == 1)

        let template = try Tensor.ones(shape: [2, 2], dtype: dtype) * Tensor.ones(shape: [2, 2], dtype: dtype)
        let zl = Tensor.zeros(like: template), ol = Tensor.ones(like: template)
        #expect(zl.shape == [2, 2] && zl.dtype == dtype && zl.doubles == [0, 0, 0, 0])
        #expect(ol.shape == [2, 2] && ol.dtype == dtype && ol.doubles == [1, 1, 1, 1])
        #expect(!zl.sharesStorage(with: template))
    }

    @Test func repeatingDefaultsAndConversions() throws {
        let t = try Tensor(repeating: 0.1, shape: [2])
        #expect(t.dtype == .float32)
        #expect(try t.scalars(as: Float.self) == [0.1, 0.1])
        // int64 truncates toward zero, like `Int64(_:)`.
        #expect(try Tensor(repeating: 2.9, shape: [1], dtype: .int64).scalars(as: Int64.self) == [2])
        #expect(try Tensor(repeating: -2.9, shape: [1], dtype: .int64).scalars(as: Int64.self) == [-2])
        #expect(try Tensor.zeros(shape: [0, 5]).scalarCount == 0)
    }

    @Test func negativeDimensionsThrow() {
        #expect(throws: TensorError.invalidShape(operation: "Tensor.zeros", shape: [2, -1],
                                                 reason: "dimension 1 is -1; dimensions must be >= 0")) {
            try Tensor.zeros(shape: [2, -1])
        }
        expectCreationError(containing: ["[-2]", ">= 0"]) { _ = try Tensor.ones(shape: [-2], dtype: .float64) }
        #expect(throws: TensorError.invalidShape(operation: "Tensor(repeating:shape:)", shape: [3, -4],
                                                 reason: "dimension 1 is -4; dimensions must be >= 0")) {
            try Tensor(repeating: 5, shape: [3, -4], dtype: .int64)
        }
    }

    // MARK: range

    @Test func rangeValues() throws {
        let a = try Tensor.range(to: 5)
        #expect(a.dtype == .float32 && a.shape == [5])
        #expect(try a.scalars(as: Float.self) == [0, 1, 2, 3, 4])
        let b = try Tensor.range(2, to: 3, step: 0.25, dtype: .float64)
        #expect(try b.scalars(as: Double.self) == [2, 2.25, 2.5, 2.75])
        let c = try Tensor.range(5, to: 0, step: -2, dtype: .int64)
        #expect(try c.scalars(as: Int64.self) == [5, 3, 1])
        // The end is excluded even when it is hit exactly, and a partial last step is included.
        #expect(try Tensor.range(0, to: 10, step: 5).shape == [2])
        #expect(try Tensor.range(0, to: 11, step: 5).shape == [3])
        #expect(try Tensor.range(0, to: 0.3, step: 0.1, dtype: .float64).shape == [3])
        // Empty when the step points away from the end.
        #expect(try Tensor.range(3, to: 1).shape == [0])
        #expect(try Tensor.range(1, to: 3, step: -1).shape == [0])
        #expect(throws: TensorError.invalidArgument(operation: "Tensor.range", reason: "step must not be 0")) {
            try Tensor.range(0, to: 1, step: 0)
        }
    }

    @Test func rangeWithNonFiniteOrHugeCountThrows() {
        // These used to trap converting the element count to `Int`.
        #expect(throws: TensorError.invalidArgument(operation: "Tensor.range", reason: "cannot count from 0.0 to inf by 1.0")) {
            try Tensor.range(to: .infinity)
        }
        #expect(throws: TensorError.self) { try Tensor.range(.nan, to: 3) }
        #expect(throws: TensorError.self) { try Tensor.range(0, to: 1, step: .nan) }
        #expect(throws: TensorError.self) { try Tensor.range(0, to: 1e300, step: 1e-300) }
    }

    // MARK: cast

    @Test(arguments: DType.allCases, DType.allCases)
    func castBetweenDTypes(from: DType, to: DType) throws {
        let source = try Tensor(shape: [2, 2], scalars: [1.75, -2.5, 3, 0]).cast(to: from)
        let out = source.cast(to: to)
        #expect(out.dtype == to)
        #expect(out.shape == [2, 2])
        let expected: [Double] = (from == .int64 || to == .int64) ? [1, -2, 3, 0] : [1.75, -2.5, 3, 0]
        #expect(out.doubles == expected)
        if from == to { #expect(out.sharesStorage(with: source)) } else { #expect(!out.sharesStorage(with: source)) }
    }

    @Test func castRoundsAndSaturates() throws {
        let d = Tensor([0.1, 1e40, -1e-50])
        #expect(try d.cast(to: .float32).scalars(as: Float.self) == [Float(0.1), .infinity, -0.0])
        let special = Tensor([.nan, .infinity, -.infinity, 9.5e18, -2.7] as [Double])
        #expect(try special.cast(to: .int64).scalars(as: Int64.self) == [0, .max, .min, .max, -2])
        let big = Tensor([Int64(1) << 40, -(Int64(1) << 52) - 1])
        #expect(try big.cast(to: .float64).scalars(as: Double.self) == [0x1p40, -0x1p52 - 1])
        #expect(try Tensor([Int64(16_777_217)]).cast(to: .float32).scalars(as: Float.self) == [16_777_216])
        let f = Tensor([0.5, -7.25] as [Float])
        #expect(try f.cast(to: .float64).scalars(as: Double.self) == [0.5, -7.25])
    }

    @Test func castGradientFlowsBetweenFloatTypes() throws {
        // float64 -> float32: the gradient comes back as float64.
        let x = try Tensor(shape: [3], scalars: [0.5, -1, 2.0])
        let w32 = Tensor([1.5, -2, 4] as [Float])
        let tape = GradientTape(persistent: true)
        let wx = tape.watch(x)
        let loss = try tape.record { try (wx.cast(to: .float32) * w32).sum() }
        let g = try #require(try tape.gradient(of: loss, wrt: wx))
        #expect(g.dtype == .float64)
        #expect(try g.denseValue.doubles == [1.5, -2, 4])

        // float32 -> float64: the gradient comes back as float32.
        let y = Tensor([1, 2] as [Float])
        let tape2 = GradientTape()
        let wy = tape2.watch(y)
        let loss2 = try tape2.record { try (wy.cast(to: .float64) * Tensor([3.0, -0.5])).sum() }
        let g2 = try #require(try tape2.gradient(of: loss2, wrt: wy))
        #expect(g2.dtype == .float32)
        #expect(try g2.denseValue.scalars(as: Float.self) == [3, -0.5])

        // Through a float32 round trip finite differences carry float32 rounding, hence the looser check.
        try checkGradient([try sample([2, 3])], tolerance: 1e-4, step: 1e-2) { $0[0].cast(to: .float32).cast(to: .float64) }
        // Casting to the same dtype is the identity, gradient included.
        try checkGradient([try sample([4])]) { try $0[0].cast(to: .float64) * $0[0] }
    }

    @Test func castToInt64IsNotDifferentiable() throws {
        let tape = GradientTape()
        let x = tape.watch(Tensor([1.5, 2.5]))
        let loss = try tape.record { try (x.cast(to: .int64).cast(to: .float64) * x).sum() }
        let g = try #require(try tape.gradient(of: loss, wrt: x))
        // Only the direct use of x contributes: d/dx (stop(int(x)) * x) = int(x).
        #expect(try g.denseValue.doubles == [1, 2])
    }

    // MARK: Reading values

    @Test func scalarsDTypeMismatchThrows() throws {
        let t = Tensor([1, 2] as [Float])
        #expect(throws: TensorError.dtypeMismatch(operation: "scalars(as:)", lhs: .float32, rhs: .float64)) {
            try t.scalars(as: Double.self)
        }
        #expect(throws: TensorError.dtypeMismatch(operation: "scalars(as:)", lhs: .int64, rhs: .float32)) {
            try Tensor([Int64(1)]).scalars(as: Float.self)
        }
        #expect(throws: TensorError.dtypeMismatch(operation: "withUnsafeBufferPointer(as:)", lhs: .float32, rhs: .int64)) {
            try t.withUnsafeBufferPointer(as: Int64.self) { $0.count }
        }
    }

    @Test func doublesForEveryDType() throws {
        #expect(Tensor([0.1, -3] as [Float]).doubles == [Double(Float(0.1)), -3])
        #expect(Tensor([0.1, -3]).doubles == [0.1, -3])
        #expect(Tensor([Int64(-4), 1 << 50]).doubles == [-4, 0x1p50])
        #expect(Tensor(Float(2)).doubles == [2])
    }

    @Test func itemRequiresExactlyOneElement() throws {
        #expect(try Tensor(Float(3.5)).item() == 3.5)
        #expect(try Tensor(shape: [1, 1, 1], scalars: [Int64(-7)]).item() == -7)
        #expect(try Tensor([0.25]).item() == 0.25)
        #expect(throws: TensorError.invalidShape(operation: "item()", shape: [2],
                                                 reason: "expected exactly one element, got 2")) {
            try Tensor([1, 2] as [Float]).item()
        }
        expectCreationError(containing: ["item()", "[0, 3]", "got 0"]) { _ = try Tensor.zeros(shape: [0, 3]).item() }
    }

    @Test func elementAtIndex() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(try t.element(at: [0, 0]) == 1)
        #expect(try t.element(at: [0, 2]) == 3)
        #expect(try t.element(at: [1, 0]) == 4)
        #expect(try t.element(at: [1, 2]) == 6)
        let cube = try Tensor(shape: [2, 2, 2], scalars: (0..<8).map { Int64($0) })
        #expect(try cube.element(at: [1, 0, 1]) == 5)
        #expect(try Tensor(Double(9)).element(at: []) == 9)

        expectCreationError(containing: ["element(at:)", "[1]", "[2, 3]"]) { _ = try t.element(at: [1]) }
        #expect(throws: TensorError.indexOutOfRange(operation: "element(at:) axis 1", index: 3, bound: 3)) {
            try t.element(at: [0, 3])
        }
        #expect(throws: TensorError.indexOutOfRange(operation: "element(at:) axis 0", index: -1, bound: 2)) {
            try t.element(at: [-1, 0])
        }
    }

    // MARK: Copy-on-write

    @Test func mutatingACopyLeavesTheOriginalUntouched() throws {
        let original = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4] as [Float])
        var copy = original
        #expect(copy.sharesStorage(with: original))
        let sharedBefore = copy.isStorageShared()
        #expect(sharedBefore)
        try copy.withUnsafeMutableBufferPointer(as: Float.self) { buffer in
            buffer[0] = 10
            buffer[3] = 40
        }
        #expect(try copy.scalars(as: Float.self) == [10, 2, 3, 40])
        #expect(try original.scalars(as: Float.self) == [1, 2, 3, 4])
        #expect(!copy.sharesStorage(with: original))
        let sharedAfter = copy.isStorageShared()
        #expect(!sharedAfter)
    }

    @Test func uniqueTensorIsMutatedInPlace() throws {
        var t = Tensor([1, 2, 3] as [Double])
        let sharedBefore = t.isStorageShared()
        #expect(!sharedBefore)
        let before = try t.withUnsafeBufferPointer(as: Double.self) { UInt(bitPattern: $0.baseAddress) }
        try t.withUnsafeMutableBufferPointer(as: Double.self) { $0[1] = -2 }
        let after = try t.withUnsafeBufferPointer(as: Double.self) { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after)
        #expect(t.doubles == [1, -2, 3])
        let sharedAfter = t.isStorageShared()
        #expect(!sharedAfter)
    }

    @Test func failedMutableAccessDoesNotCopy() throws {
        let original = Tensor([1, 2] as [Float])
        var copy = original
        #expect(throws: TensorError.dtypeMismatch(operation: "withUnsafeMutableBufferPointer(as:)",
                                                  lhs: .float32, rhs: .float64)) {
            try copy.withUnsafeMutableBufferPointer(as: Double.self) { $0[0] = 1 }
        }
        #expect(copy.sharesStorage(with: original))
    }

    @Test func reshapedViewsShareUntilMutated() throws {
        let base = Tensor([1, 2, 3, 4] as [Float])
        var view = try base.reshaped(to: [2, 2])
        #expect(view.sharesStorage(with: base))
        try view.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 100 }
        #expect(try base.scalars(as: Float.self) == [1, 2, 3, 4])
        #expect(try view.scalars(as: Float.self) == [100, 2, 3, 4])
    }

    // MARK: Equatable

    @Test func equality() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        let b = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(a == b)
        #expect(a == a)
        #expect(a != (try a.reshaped(to: [3, 2])))
        #expect(a != a.cast(to: .float64))
        #expect(a != (try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 7] as [Float])))
        #expect(Tensor([0.0]) == Tensor([-0.0]))
        #expect(Tensor(Float(1)) != Tensor([Float(1)]))
        #expect(try Tensor.zeros(shape: [0, 2]) == Tensor.zeros(shape: [0, 2]))
        #expect(try Tensor.zeros(shape: [0, 2]) != Tensor.zeros(shape: [2, 0]))
    }

    @Test func nanIsNeverEqual() {
        let n = Tensor([1, .nan] as [Double])
        let copy = n
        #expect(n != copy)
        #expect(n != Tensor([1, .nan] as [Double]))
    }

    @Test func int64EqualityIsExactBeyondDoublePrecision() {
        // 2^53 and 2^53 + 1 are different integers but the same Double.
        let a = Tensor([Int64(1) << 53]), b = Tensor([(Int64(1) << 53) + 1])
        #expect(a != b)
        #expect(Tensor([Int64.max]) != Tensor([Int64.max - 1]))
        #expect(Tensor([Int64.max]) == Tensor([Int64.max]))
    }
}

// MARK: - Random

/// SplitMix64 exactly as in Vigna's `splitmix64.c`, independent of Descent's implementation.
private struct PinnedSplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** exactly as in Blackman & Vigna's `xoshiro256starstar.c`.
private struct PinnedXoshiro256StarStar {
    var s: [UInt64]
    init(state: [UInt64]) { s = state }
    init(seed: UInt64) {
        var sm = PinnedSplitMix64(state: seed)
        s = (0..<4).map { _ in sm.next() }
    }
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    mutating func next() -> UInt64 {
        let result = Self.rotl(s[1] &* 5, 7) &* 9
        let t = s[1] << 17
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = Self.rotl(s[3], 45)
        return result
    }
}

@Suite struct TensorRandomTests {
    @Test func referenceImplementationMatchesPublishedVectors() {
        // SplitMix64, seed 1234567 (the reference outputs of splitmix64.c).
        var sm = PinnedSplitMix64(state: 1_234_567)
        #expect((0..<5).map { _ in sm.next() } == [
            6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
            4_593_380_528_125_082_431, 16_408_922_859_458_223_821,
        ])
        // xoshiro256** from state {1, 2, 3, 4} (the reference outputs of xoshiro256starstar.c).
        var x = PinnedXoshiro256StarStar(state: [1, 2, 3, 4])
        #expect((0..<10).map { _ in x.next() } == [
            11520, 0, 1_509_978_240, 1_215_971_899_390_074_240, 1_216_172_134_540_287_360,
            607_988_272_756_665_600, 16_172_922_978_634_559_625, 8_476_171_486_693_032_832,
            10_595_114_339_597_558_777, 2_904_607_092_377_533_576,
        ])
    }

    @Test func seededGeneratorFirstOutputsArePinned() {
        var g0 = SeededGenerator(seed: 0)
        #expect((0..<4).map { _ in g0.next() } == [
            11_091_344_671_253_066_420, 13_793_997_310_169_335_082, 1_900_383_378_846_508_768,
            7_684_712_102_626_143_532,
        ])
        var g42 = SeededGenerator(seed: 42)
        #expect((0..<4).map { _ in g42.next() } == [
            1_546_998_764_402_558_742, 6_990_951_692_964_543_102, 12_544_586_762_248_559_009,
            17_057_574_109_182_124_193,
        ])
    }

    @Test(arguments: [0, 1, 42, 123_456_789, UInt64.max] as [UInt64])
    func seededGeneratorMatchesIndependentImplementation(seed: UInt64) {
        var ours = SeededGenerator(seed: seed)
        var reference = PinnedXoshiro256StarStar(seed: seed)
        for i in 0..<200 {
            let (a, b) = (ours.next(), reference.next())
            if a != b {
                Issue.record("seed \(seed), output \(i): \(a) vs reference \(b)")
                return
            }
        }
    }

    @Test func derivedFloatingPointValuesFollowTheDocumentedFormulas() {
        var g = SeededGenerator(seed: 42)
        #expect(g.nextUniform() == 0.08386297105988216)
        #expect(g.nextUniformFloat() == Float(UInt64(6_990_951_692_964_543_102) >> 40) * 0x1p-24)
        #expect(g.nextUniform() == Double(UInt64(12_544_586_762_248_559_009) >> 11) * 0x1p-53)

        var a = SeededGenerator(seed: 9), b = SeededGenerator(seed: 9)
        for _ in 0..<100 {
            #expect(a.nextUniform() == Double(b.next() >> 11) * 0x1p-53)
            #expect(a.nextUniformFloat() == Float(b.next() >> 40) * 0x1p-24)
        }
    }

    @Test func normalIsBoxMullerUsingBothOutputs() {
        var g = SeededGenerator(seed: 42)
        let z0 = g.nextNormal(), z1 = g.nextNormal()
        #expect(abs(z0 - -0.303263064678738) < 1e-14)
        #expect(abs(z1 - 0.28846173882942383) < 1e-14)

        var h = SeededGenerator(seed: 42)
        _ = (h.next(), h.next())  // consumed by z0 and z1
        let u1 = 1 - h.nextUniform(), u2 = h.nextUniform()
        let radius = (-2 * log(u1)).squareRoot()
        let z2 = g.nextNormal(), z3 = g.nextNormal()
        #expect(abs(z2 - radius * cos(2 * Double.pi * u2)) < 1e-14)
        #expect(abs(z3 - radius * sin(2 * Double.pi * u2)) < 1e-14)
    }

    @Test func uniformTensorsFollowTheGenerator() throws {
        let f = try Tensor.randomUniform(shape: [2], dtype: .float32, seed: 42)
        #expect(try f.scalars(as: Float.self) == [0.08386296, 0.37898022])
        let d = try Tensor.randomUniform(shape: [1], min: -1, max: 3, dtype: .float64, seed: 42)
        #expect(d.doubles == [-1 + 4 * 0.08386297105988216])
    }

    @Test(arguments: DType.allCases)
    func sameSeedGivesIdenticalTensors(dtype: DType) throws {
        #expect(try Tensor.randomUniform(shape: [3, 4], min: -5, max: 5, dtype: dtype, seed: 7)
                == Tensor.randomUniform(shape: [3, 4], min: -5, max: 5, dtype: dtype, seed: 7))
        #expect(try Tensor.randomNormal(shape: [5], mean: 1, standardDeviation: 3, dtype: dtype, seed: 7)
                == Tensor.randomNormal(shape: [5], mean: 1, standardDeviation: 3, dtype: dtype, seed: 7))
        #expect(try Tensor.truncatedNormal(shape: [2, 2, 2], standardDeviation: 4, dtype: dtype, seed: 7)
                == Tensor.truncatedNormal(shape: [2, 2, 2], standardDeviation: 4, dtype: dtype, seed: 7))
        var g = SeededGenerator(seed: 7)
        #expect(try Tensor.randomUniform(shape: [3, 4], min: -5, max: 5, dtype: dtype, using: &g)
                == Tensor.randomUniform(shape: [3, 4], min: -5, max: 5, dtype: dtype, seed: 7))
    }

    @Test(arguments: [DType.float32, .float64])
    func differentSeedsDiffer(dtype: DType) throws {
        #expect(try Tensor.randomUniform(shape: [16], dtype: dtype, seed: 1)
                != Tensor.randomUniform(shape: [16], dtype: dtype, seed: 2))
        #expect(try Tensor.randomNormal(shape: [16], dtype: dtype, seed: 1)
                != Tensor.randomNormal(shape: [16], dtype: dtype, seed: 2))
        #expect(try Tensor.truncatedNormal(shape: [16], dtype: dtype, seed: 1)
                != Tensor.truncatedNormal(shape: [16], dtype: dtype, seed: 2))
        // One generator advances: consecutive draws differ.
        var g = SeededGenerator(seed: 3)
        #expect(try Tensor.randomNormal(shape: [8], dtype: dtype, using: &g)
                != Tensor.randomNormal(shape: [8], dtype: dtype, using: &g))
    }

    @Test(arguments: [DType.float32, .float64])
    func uniformStaysInHalfOpenRange(dtype: DType) throws {
        let t = try Tensor.randomUniform(shape: [10_000], min: -0.5, max: 2, dtype: dtype, seed: 11)
        let v = t.doubles
        #expect(v.allSatisfy { $0 >= -0.5 && $0 < 2 })
        #expect(v.min()! < -0.45 && v.max()! > 1.95)
        let mean = v.reduce(0, +) / Double(v.count)
        #expect(abs(mean - 0.75) < 0.03)
    }

    @Test(arguments: [DType.float32, .float64])
    func uniformExcludesMaxEvenWhenRoundingWouldReachIt(dtype: DType) throws {
        // min + (max - min) * u rounds up to max for u close to 1 when the ulp at min is coarse.
        let min = dtype == .float32 ? 1_048_576.0 : 0x1p52
        let t = try Tensor.randomUniform(shape: [2000], min: min, max: min + 1, dtype: dtype, seed: 5)
        #expect(t.doubles.allSatisfy { $0 >= min && $0 < min + 1 })
    }

    @Test func int64UniformCoversEveryIntegerEvenly() throws {
        let t = try Tensor.randomUniform(shape: [6000], min: -3, max: 3, dtype: .int64, seed: 13)
        let values = try t.scalars(as: Int64.self)
        var counts: [Int64: Int] = [:]
        for v in values { counts[v, default: 0] += 1 }
        #expect(Set(counts.keys) == Set(-3...2), "values \(counts)")
        for k in Int64(-3)...2 { #expect((800...1200).contains(counts[k] ?? 0), "\(k) drawn \(counts[k] ?? 0) times") }
    }

    @Test func uniformWithEqualBoundsIsConstant() throws {
        let t = try Tensor.randomUniform(shape: [4], min: 2, max: 2, dtype: .float32, seed: 1)
        #expect(t.doubles == [2, 2, 2, 2])
    }

    @Test(arguments: [DType.float32, .float64])
    func normalMomentsAreRoughlyRight(dtype: DType) throws {
        let v = try Tensor.randomNormal(shape: [10_000], mean: 3, standardDeviation: 2, dtype: dtype, seed: 21).doubles
        let mean = v.reduce(0, +) / Double(v.count)
        let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        #expect(abs(mean - 3) < 0.1, "mean \(mean)")
        #expect(abs(std - 2) < 0.1, "std \(std)")
        // Tails exist: a normal sample this large has values beyond 3 sigma.
        #expect(v.contains { abs($0 - 3) > 6 })
    }

    @Test(arguments: [DType.float32, .float64])
    func truncatedNormalStaysWithinTwoStandardDeviations(dtype: DType) throws {
        let v = try Tensor.truncatedNormal(shape: [10_000], mean: -1, standardDeviation: 0.5, dtype: dtype, seed: 8).doubles
        #expect(v.allSatisfy { abs($0 + 1) <= 1 + 1e-6 })
        let mean = v.reduce(0, +) / Double(v.count)
        let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        #expect(abs(mean + 1) < 0.03, "mean \(mean)")
        // A standard normal truncated to [-2, 2] has standard deviation 0.8796.
        #expect(abs(std - 0.5 * 0.8796) < 0.015, "std \(std)")
        #expect(v.contains { abs($0 + 1) > 0.95 })
    }

    @Test func invalidArgumentsThrow() {
        #expect(throws: TensorError.invalidArgument(operation: "randomUniform", reason: "min 2.0 is greater than max 1.0")) {
            try Tensor.randomUniform(shape: [2], min: 2, max: 1, seed: 0)
        }
        #expect(throws: TensorError.self) { try Tensor.randomUniform(shape: [-1], seed: 0) }
        #expect(throws: TensorError.self) { try Tensor.randomNormal(shape: [2, -1], seed: 0) }
        #expect(throws: TensorError.self) { try Tensor.truncatedNormal(shape: [-3], seed: 0) }
    }
}

// MARK: - Description

@Suite struct TensorDescriptionTests {
    @Test func matrixFloat32() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, -2.5, 0.1, 4, 5, 6] as [Float])
        #expect(t.description == "Tensor(shape: [2, 3], dtype: float32)\n[[1.0, -2.5, 0.1],\n [4.0, 5.0, 6.0]]")
        #expect(t.debugDescription == t.description)
        #expect("\(t)" == t.description)
    }

    @Test func scalar() {
        #expect(Tensor(3.5).description == "Tensor(shape: [], dtype: float64)\n3.5")
        #expect(Tensor(Float(-1)).description == "Tensor(shape: [], dtype: float32)\n-1.0")
        #expect(Tensor(Int64(42)).formattedValues == "42")
    }

    @Test func int64Vector() {
        #expect(Tensor([1, -2, 30] as [Int64]).description == "Tensor(shape: [3], dtype: int64)\n[1, -2, 30]")
    }

    @Test func int64ExtremesPrintExactly() {
        let t = Tensor([Int64.max, Int64.min, (1 << 53) + 1])
        #expect(t.formattedValues == "[9223372036854775807, -9223372036854775808, 9007199254740993]")
    }

    @Test func float64Cube() throws {
        let t = try Tensor(shape: [2, 2, 2], scalars: (1...8).map(Double.init))
        #expect(t.description == """
            Tensor(shape: [2, 2, 2], dtype: float64)
            [[[1.0, 2.0],
              [3.0, 4.0]],

             [[5.0, 6.0],
              [7.0, 8.0]]]
            """)
    }

    @Test func emptyTensors() throws {
        #expect(try Tensor.zeros(shape: [0]).formattedValues == "[]")
        #expect(try Tensor.zeros(shape: [2, 0]).formattedValues == "[[],\n []]")
    }

    @Test func thresholdIsNotElided() throws {
        let t = try Tensor.range(to: 1000, dtype: .int64)
        let text = t.formattedValues
        #expect(!text.contains("..."))
        #expect(text.hasSuffix("997, 998, 999]"))
    }

    @Test func largeVectorIsElided() throws {
        let t = try Tensor.range(to: 2000)
        #expect(t.description == "Tensor(shape: [2000], dtype: float32)\n[0.0, 1.0, 2.0, ..., 1997.0, 1998.0, 1999.0]")
    }

    @Test func largeMatrixIsElidedAndShort() throws {
        let t = try Tensor.range(to: 5000, dtype: .float64).reshaped(to: [50, 100])
        let text = t.description
        #expect(text.count < 400, "\(text.count) characters")
        #expect(text.split(separator: "\n").count == 8)
        #expect(text.contains("[[0.0, 1.0, 2.0, ..., 97.0, 98.0, 99.0],"))
        #expect(text.contains("\n ...,\n"))
        #expect(text.hasSuffix("[4900.0, 4901.0, 4902.0, ..., 4997.0, 4998.0, 4999.0]]"))
    }
}
