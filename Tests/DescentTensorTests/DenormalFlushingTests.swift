import DescentTensor
import Testing

/// Denormal flushing is scoped to `DenormalFlushing.run` and reaches every chunk of a parallel kernel.
@Suite(.serialized) struct DenormalFlushingTests {
    /// A tensor large enough to be split across threads, holding denormals (and a normal value).
    func denormals() throws -> Tensor {
        let count = 1 << 17
        return try Tensor(shape: [count], scalars: (0..<count).map { $0 % 7 == 0 ? Float(0.5) : Float(1e-39) })
    }

    @Test func kernelsKeepDenormalsOutsideAndFlushThemInside() throws {
        for threads in [1, 2] { try ThreadPool.withThreadCount(threads) { try ThreadPool.withKernelGrain(1 << 14) {
            let x = try denormals()
            let outside = try (x * 1.0).scalars(as: Float.self)
            #expect(outside.filter { $0 == 1e-39 }.count == x.scalarCount - (x.scalarCount + 6) / 7)
            let inside = try DenormalFlushing.run { try (x * 1.0).scalars(as: Float.self) }
            // Every chunk, on whichever thread ran it, flushed: only the normal values remain.
            #expect(inside.allSatisfy { $0 == 0 || $0 == 0.5 })
            #expect(inside.filter { $0 == 0.5 }.count == (x.scalarCount + 6) / 7)
            // The mode is restored after the scope.
            #expect(try (x * 1.0).scalars(as: Float.self) == outside)
        } } }
    }
}
