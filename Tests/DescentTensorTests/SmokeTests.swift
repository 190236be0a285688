import DescentAutodiff
import DescentTensor
import Testing

@Test func addBroadcastsAndDifferentiates() throws {
    let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
    let b = Tensor([10, 20, 30] as [Float])
    #expect(try (a + b).scalars(as: Float.self) == [11, 22, 33, 14, 25, 36])
    try checkGradient([try sample([2, 3]), try sample([3], seed: 2)]) { try $0[0] * $0[1] }
}
