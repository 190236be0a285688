import Foundation
import Testing
@testable import DescentTensor

// OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs it does not list (this project's
// Xeon model 207 KVM guests); the start-up check in CDescentOpenBLASCore chooses by CPU features instead.
@Suite struct OpenBLASCoreTests {
    @Test func aCPUWithAVXNeverRunsThePrescottKernels() {
        guard let best = OpenBLASCore.bestForThisCPU else { return }  // no AVX: Prescott may be right
        guard getenv("OPENBLAS_CORETYPE") == nil else { return }         // the user's choice is kept
        #expect(OpenBLASCore.name.lowercased() != "prescott",
                "OpenBLAS runs its Prescott kernels on a CPU that has \(best)'s features")
    }

    @Test func anOverrideIsTheCoreInUse() {
        guard let override = OpenBLASCore.override else { return }
        #expect(OpenBLASCore.name.lowercased() == override.lowercased())
        #expect(override == OpenBLASCore.bestForThisCPU)
    }

    @Test func theChoiceFollowsTheCPUFeatures() {
        // Every x86-64 CPU this package builds for with `-target-cpu native` here has AVX2 and FMA.
        #if arch(x86_64)
        let known = ["COOPERLAKE", "SKYLAKEX", "HASWELL", "SANDYBRIDGE"]
        if let best = OpenBLASCore.bestForThisCPU { #expect(known.contains(best)) }
        #endif
    }

    @Test func productsStayRightOnTheChosenKernels() throws {
        // A product large enough for OpenBLAS' threaded, blocked path: A = 1…, B = identity·2.
        let n = 300
        var a = [Float](repeating: 0, count: n * n), b = a
        for i in 0..<n * n { a[i] = Float(i % 97) }
        for i in 0..<n { b[i * n + i] = 2 }
        let c = try Tensor(shape: [n, n], scalars: a).matmul(try Tensor(shape: [n, n], scalars: b))
        #expect(c.doubles == a.map { Double($0 * 2) })
    }
}
