import DescentAutodiff
@_spi(DescentInternals) import DescentKeras
import DescentOptimizers
@_spi(DescentInternals) import DescentTensor
import Dispatch
import Foundation
import Testing

/// Each process-wide or shared lock in Descent (every ``SanitizerVisibleMutex``) used from several threads
/// at once, with the results checked. In `make test` these check that the locked state stays consistent;
/// under `make sanitize` (ThreadSanitizer) they are what reports if a lock were invisible to TSan (a plain
/// `Mutex.withLock` in a debug build): with `Variable.state` reverted to a plain `Mutex`, the TSan stage
/// reports 2 data races in `variableUpdatedFromSeveralThreadsKeepsEveryUpdate` (a read of the value's
/// buffer in `item()` against its write in another thread's `assignAdd`). A lock whose state is only
/// touched by uninstrumented standard-library code (a dictionary at `-Onone`, as in `KerasNaming`) gives
/// TSan nothing to see either way; `MutexUseTests` covers those.
@Suite struct SharedStateConcurrencyTests {
    static let threads = 4
    static let rounds = 50

    /// Results gathered from the worker threads (its contents are compared afterwards). Its lock is a
    /// `SanitizerVisibleMutex` too, so that the test itself gives TSan no false report.
    final class Collected<Element: Sendable>: Sendable {
        private let items = SanitizerVisibleMutex<[Element]>([])
        func append(_ item: Element) { items.withLock { $0.append(item) } }
        var all: [Element] { items.withLock { $0 } }
    }

    /// `Variable.state`: concurrent `assignAdd`, reads and constraint reads on one variable.
    @Test func variableUpdatedFromSeveralThreadsKeepsEveryUpdate() throws {
        let v = Variable(Tensor(Float(0)), name: "shared")
        let failures = Collected<String>()
        DispatchQueue.concurrentPerform(iterations: Self.threads) { _ in
            do {
                for _ in 0..<Self.rounds {
                    try v.assignAdd(Tensor(Float(1)))
                    _ = try v.untrackedValue.item()
                    _ = v.constraint
                }
            } catch { failures.append("\(error)") }
        }
        #expect(failures.all.isEmpty)
        #expect(try v.untrackedValue.item() == Double(Self.threads * Self.rounds))
    }

    /// `TapeRecorder.state`: one tape recording from several threads at once (each thread squares its
    /// own variable inside `record`, which also watches it), then every gradient checked.
    @Test func tapeRecordingFromSeveralThreadsKeepsEveryOperation() throws {
        let variables = (0..<Self.threads).map { Variable(Tensor(Float($0 + 1)), name: "recorded_\($0)") }
        let tape = GradientTape(persistent: true)
        let outputs = Collected<(Int, Tensor)>()
        let failures = Collected<String>()
        DispatchQueue.concurrentPerform(iterations: Self.threads) { i in
            do {
                outputs.append((i, try tape.record { try variables[i] * variables[i] }))
                _ = tape.watchedVariables
            } catch { failures.append("\(error)") }
        }
        #expect(failures.all.isEmpty)
        #expect(Set(tape.watchedVariables.map(\.name)) == Set(variables.map(\.name)))
        for (i, y) in outputs.all {
            let gradient = try tape.gradient(of: y, wrt: variables[i])
            #expect(try gradient?.denseValue.scalars(as: Float.self) == [Float(2 * (i + 1))], "variable \(i)")
        }
        #expect(outputs.all.count == Self.threads)
    }

    /// `KerasNaming.counts`: unique names drawn from several threads are unique and consecutive.
    @Test func uniqueNamesFromSeveralThreadsAreUnique() {
        let base = "concurrency_test_\(UInt64.random(in: 0...UInt64.max))"
        let names = Collected<String>()
        DispatchQueue.concurrentPerform(iterations: Self.threads) { _ in
            for _ in 0..<Self.rounds { names.append(KerasNaming.uniqueName(base)) }
        }
        let expected = [base] + (1..<(Self.threads * Self.rounds)).map { "\(base)_\($0)" }
        #expect(Set(names.all) == Set(expected))
        #expect(names.all.count == expected.count)
    }

    /// `GlobalRandom`'s generator and each `Dropout`'s mask generator, drawn from several threads.
    ///
    /// Other tests restart `GlobalRandom` while this one runs (`setSeed`; BackupAndRestore restores a saved
    /// state, which repeats earlier draws), so the distinctness check uses an attempt during which
    /// `GlobalRandom.restarts` did not change; up to 20 attempts.
    @Test func randomGeneratorsDrawnFromSeveralThreadsGiveDistinctDraws() throws {
        // Layers are not `Sendable`; a `Dropout`'s only mutable state is its locked mask generator, which
        // is what this shares.
        nonisolated(unsafe) let dropout = try Dropout(0.5, seed: 7)
        var checked = false
        for _ in 0..<20 where !checked {
            let seeds = Collected<UInt64>()
            let failures = Collected<String>()
            let restartsBefore = GlobalRandom.restarts
            DispatchQueue.concurrentPerform(iterations: Self.threads) { _ in
                do {
                    for _ in 0..<Self.rounds {
                        seeds.append(GlobalRandom.nextSeed())
                        let masked = try dropout.call(Tensor(repeating: 1, shape: [16]), training: true)
                        if masked.shape != [16] { failures.append("shape \(masked.shape)") }
                    }
                } catch { failures.append("\(error)") }
            }
            #expect(failures.all.isEmpty)
            guard GlobalRandom.restarts == restartsBefore else { continue }
            // 200 draws of a 64-bit generator: a repeat would mean two threads read the same state.
            #expect(Set(seeds.all).count == Self.threads * Self.rounds)
            checked = true
        }
        #expect(checked, "GlobalRandom was restarted during every one of 20 attempts")
    }

    /// The custom-class registry (`Optimizer.register`) written and read from several threads.
    @Test func registryWrittenAndReadFromSeveralThreadsKeepsEveryClass() throws {
        let prefix = "ConcurrencyTestOptimizer\(UInt32.random(in: 0...UInt32.max))_"
        let failures = Collected<String>()
        DispatchQueue.concurrentPerform(iterations: Self.threads) { i in
            do {
                Optimizer.register(className: "\(prefix)\(i)") { _, _ in try SGD(learningRate: .number(Double(i + 1))) }
                let opt = try Optimizer.deserialize(json: #"{"class_name": "\#(prefix)\#(i)", "config": {}}"#)
                let rate = try opt.serializedHyper("learning_rate")
                if rate != .double(Double(i + 1)) { failures.append("thread \(i): learning rate \(rate)") }
            } catch { failures.append("thread \(i): \(error)") }
        }
        #expect(failures.all.isEmpty)
    }

    /// `BLASThreading.narrowCalls` (narrow products large enough to be counted) and the buffer cache's
    /// lock (every product allocates), from several threads; each result is checked.
    @Test func narrowProductsFromSeveralThreadsAreExact() throws {
        let a = try Tensor(repeating: 1, shape: [256, 512])
        let b = try Tensor(repeating: 0.5, shape: [512, 8])  // n = 8: a narrow product of 1M multiply-adds
        let failures = Collected<String>()
        DispatchQueue.concurrentPerform(iterations: Self.threads) { _ in
            do {
                for _ in 0..<5 {
                    let c = try a.matmul(b)
                    let values = try c.scalars(as: Float.self)
                    if values.count != 256 * 8 || values.contains(where: { $0 != 256 }) { failures.append("wrong product") }
                }
            } catch { failures.append("\(error)") }
        }
        #expect(failures.all.isEmpty)
    }
}
