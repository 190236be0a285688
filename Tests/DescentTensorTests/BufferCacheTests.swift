@testable import DescentTensor
import Foundation
import Testing

@Suite struct BufferCacheTests {
    /// Every request fits its class, wastes at most a quarter, and one class has one capacity.
    @Test func sizeClassesFitAndWasteLittle() throws {
        var capacityOfIndex: [Int: Int] = [:]
        var sizes = Array(0...5000)
        var s = 5000
        while s <= BufferCache.maximumBufferBytes { sizes.append(s); sizes.append(s + 1); s = s * 9 / 8 }
        sizes.append(BufferCache.maximumBufferBytes)
        for bytes in sizes {
            let (index, capacity) = try #require(BufferCache.sizeClass(bytes))
            #expect(capacity >= max(bytes, 64))
            if bytes > 64 { #expect(Double(capacity) <= Double(bytes) * 1.25 + 1, "\(bytes) → \(capacity)") }
            #expect(index >= 0 && index < BufferCache.classCount)
            #expect(capacityOfIndex[index, default: capacity] == capacity)
            capacityOfIndex[index] = capacity
        }
        #expect(BufferCache.sizeClass(BufferCache.maximumBufferBytes + 1) == nil)
    }

    /// Buffers handed out again hold whatever a tensor writes, and tensors of one class stay independent.
    @Test func recycledBuffersBehaveLikeFreshOnes() throws {
        for round in 0..<50 {
            let a = try Tensor(shape: [300], scalars: (0..<300).map { Float($0 + round) })
            let b = try Tensor.zeros(shape: [301])
            let c = try a * 2
            #expect(try b.scalars(as: Float.self).allSatisfy { $0 == 0 })
            #expect(try c.scalars(as: Float.self) == (0..<300).map { Float(2 * ($0 + round)) })
        }
    }

    /// Where transparent huge pages are available (`always` or `madvise` mode), a large tensor is backed by
    /// them: the process' `AnonHugePages` grows by most of its size once it is written.
    @Test func largeTensorsUseHugePages() throws {
        guard let mode = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
              mode.contains("[always]") || mode.contains("[madvise]") else { return }
        func anonHugeKiB() throws -> Int {
            let rollup = try String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8)
            let line = try #require(rollup.split(separator: "\n").first { $0.hasPrefix("AnonHugePages:") })
            return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
        let before = try anonHugeKiB()
        let big = try Tensor(repeating: 1.5, shape: [16 << 20])  // 64 MiB
        let after = try anonHugeKiB()
        #expect(try big.sum().item() == 1.5 * Double(16 << 20))
        // Other tests allocate and free concurrently, and a busy machine may lack free 2 MiB blocks: expect
        // at least a few of the tensor's 32 huge pages (none without the advice).
        #expect(after - before >= 8_192, "AnonHugePages \(before) → \(after) KiB")
    }
}
