import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Dispatch
import Synchronization
import Testing

private func floats(_ v: Variable) throws -> [Float] { try v.untrackedValue.scalars(as: Float.self) }

/// The process-wide warning handler (`Optimizer.setWarningHandler`). Serialized: each test installs its
/// own handler, which would catch the other's warnings if they ran at once.
@Suite(.serialized) struct OptimizerWarningTests {
    @Test func missingGradientsAreSkippedWithAWarning() throws {
        let warnings = Mutex<[String]>([])
        Optimizer.setWarningHandler { message in warnings.withLock { $0.append(message) } }
        defer { Optimizer.setWarningHandler(nil) }
        let a = Variable(Tensor(Float(1)), name: "a"), b = Variable(Tensor(Float(1)), name: "b")
        let opt = try SGD(learningRate: 1)
        try opt.applyGradients([(.dense(Tensor(Float(0.5))), a), (nil, b)])
        #expect(try floats(a) == [0.5])
        #expect(try floats(b) == [1])
        #expect(warnings.withLock { $0 }.contains { $0.contains("'b'") })
    }

    /// `Optimizer.warningSink`: the handler is installed on one thread and read on several (each
    /// optimizer warns about its own missing gradient); under `make sanitize` this is what would report
    /// if the sink's lock were invisible to ThreadSanitizer.
    @Test func warningsFromSeveralThreadsAllReachTheHandler() throws {
        let warnings = Mutex<[String]>([])
        Optimizer.setWarningHandler { message in warnings.withLock { $0.append(message) } }
        defer { Optimizer.setWarningHandler(nil) }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            do {
                let present = Variable(Tensor(Float(1)), name: "present_\(i)")
                let missing = Variable(Tensor(Float(1)), name: "missing_from_thread_\(i)")
                let opt = try SGD(learningRate: 1)
                try opt.applyGradients([(.dense(Tensor(Float(0.5))), present), (nil, missing)])
            } catch { failures.withLock { $0.append("thread \(i): \(error)") } }
        }
        Optimizer.setWarningHandler(nil)
        #expect(failures.withLock { $0 }.isEmpty)
        let received = warnings.withLock { $0 }
        for i in 0..<4 {
            #expect(received.contains { $0.contains("'missing_from_thread_\(i)'") }, "\(received)")
        }
    }
}
