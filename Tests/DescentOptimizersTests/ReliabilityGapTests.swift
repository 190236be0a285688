@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Testing

/// The remaining issue-9 gaps on the optimizer side: steps that outlive their optimizer, a slot added in
/// the middle of a step, replay output size, replay's int64 output and its integer lists, and
/// `slice(rows:)` with a range whose count overflows.
@Suite struct ReliabilityGapTests {
    // MARK: Steps outliving their optimizer

    /// A step from a temporary optimizer keeps it alive. Trapped before: the step captured the optimizer
    /// `unowned`, and the temporary was freed before `run()`.
    @Test func minimizeStepKeepsATemporaryOptimizerAlive() throws {
        let v = Variable(Tensor(Float(8)), name: "v")
        let step = try SGD(learningRate: 0.25).minimizeStep({ try v * v }, varList: { [v] })
        #expect(try step.run() == 1)
        #expect(try step.run() == 2)
        #expect(try v.untrackedValue.scalars(as: Float.self) == [2])  // 8 → 4 → 2
    }

    /// The same for `getUpdates`.
    @Test func getUpdatesKeepsATemporaryOptimizerAlive() throws {
        let v = Variable(Tensor(Float(8)), name: "v")
        let updates = try SGD(learningRate: 0.25).getUpdates({ try v * v }, params: [v])
        #expect(try updates[0].run() == 1)
        #expect(try v.untrackedValue.scalars(as: Float.self) == [4])
    }

    // MARK: A slot added during a step

    /// A custom `resourceApplySparse` that adds a slot empties the positional slot cache while the
    /// step's loop still reads it. Trapped before: `positionalKernelSlots[i]` out of range for the dense
    /// variable after the sparse one.
    @Test func slotAddedBySparseUpdateMidStepDoesNotTrap() throws {
        final class AddsSlots: SGD {
            nonisolated(unsafe) var added = 0
            // Keeps the fused dense path (and so the positional slot cache) of the built-in SGD.
            override var fusesDenseUpdates: Bool { true }
            override func resourceApplySparse(_ values: Tensor, _ variable: Variable, _ indices: [Int],
                                              _ c: Coefficients) throws {
                added += 1
                try addSlot(variable, "extra\(added)")
                try super.resourceApplySparse(values, variable, indices, c)
            }
        }
        let table = Variable(try Tensor(shape: [3, 2], scalars: [Float](repeating: 1, count: 6)), name: "table")
        let dense = Variable(Tensor([Float(1), 1]), name: "dense")
        let opt = try AddsSlots(learningRate: 0.5, momentum: 0.9)
        let sparse = Gradient.sparse(try IndexedSlices(values: try Tensor(shape: [1, 2], scalars: [Float(1), 1]),
                                                       indices: [1], denseShape: [3, 2]))
        for _ in 0..<4 {
            try opt.applyGradients([(sparse, table), (.dense(Tensor([Float(1), 1])), dense)])
        }
        #expect(opt.added == 4)
        #expect(opt.iterationCount == 4)
        // Momentum SGD, four steps of gradient 1: m = 0.9m - 0.5g; v += m.
        var m: Float = 0, x: Float = 1
        for _ in 0..<4 { m = 0.9 * m - 0.5; x += m }
        func close(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 } }
        #expect(close(try dense.untrackedValue.scalars(as: Float.self), [x, x]))
        #expect(close(try table.untrackedValue.scalars(as: Float.self), [1, 1, x, x, 1, 1]))
    }

    // MARK: Replay output size

    /// A 10-element variable and a 1-element one, 1,000 steps: 11,000 numbers, over a limit of 10,000.
    /// Ran before (the output grows as steps × elements, without a limit: 10^4 steps on a 200 KB
    /// variable gave 20 GB).
    @Test func replayRejectsOutputOverTheLimitBeforeAnyStep() throws {
        let steps = Array(repeating: #"{"gradients": [{"dense": [0,0,0,0,0,0,0,0,0,0]}, {"dense": [1]}]}"#, count: 1000).joined(separator: ",")
        let document = """
            {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1}},
             "variables": [{"name": "big", "shape": [10], "value": [0,0,0,0,0,0,0,0,0,0]},
                           {"name": "w", "shape": [1], "value": [0]}],
             "steps": [\(steps)]}
            """
        #expect(throws: JSONError.self) { try Replay.run(json: document, maxOutputNumbers: 10_000) }
        do {
            _ = try Replay.run(json: document, maxOutputNumbers: 10_000)
        } catch {
            let message = "\(error)"
            #expect(message.contains("11000"), "\(message)")
            #expect(message.contains("10000"), "\(message)")
            #expect(message.contains("--max-output-numbers"), "\(message)")
        }
        // At the limit, it runs.
        let out = try Replay.run(JSONValue(parsing: document), maxOutputNumbers: 11_000)
        #expect(out["steps"]?.arrayValue?.count == 1000)
        // The command passes its limit through and fails with status 1.
        let result = Replay.command(path: "-", readStandardInput: { Array(document.utf8) }, readFile: { _ in [] },
                                    maxOutputNumbers: 10_000)
        #expect(result.status == 1 && result.stdout.isEmpty)
        #expect(result.stderr.contains("limit of 10000"), "\(result.stderr)")
    }

    /// The default limit is 50,000,000 numbers; steps × elements that overflow `Int` are rejected too.
    @Test func replayOutputSizeCheckDoesNotOverflow() throws {
        #expect(Replay.defaultMaxOutputNumbers == 50_000_000)
        let w = Variable(Tensor([Float(0), 0]), name: "w")
        #expect(throws: JSONError.self) {
            try Replay.checkOutputSize(steps: Int.max, variables: [w], maxOutputNumbers: .max)
        }
        try Replay.checkOutputSize(steps: 25_000_000, variables: [w], maxOutputNumbers: Replay.defaultMaxOutputNumbers)
        try Replay.checkOutputSize(steps: 0, variables: [w], maxOutputNumbers: 0)
    }

    // MARK: Replay int64 output

    /// The `iterations` weight is written as its exact int64. Trapped before at 2^63 - 1 (converted
    /// through `Double`, which rounds it to 2^63) and lost the last digits above 2^53.
    @Test func replayWritesInt64WeightsExactly() throws {
        let w = Variable(Tensor([Float(1)]), name: "w")
        let opt = try SGD(learningRate: 0.5)
        try opt.build([w])
        for count: Int64 in [Int64.max, (1 << 53) + 1, Int64.min] {
            try opt.setWeights([Tensor(count)])
            #expect(Replay.numbers(opt.getWeights()[0]) == .array([.int(Int(count))]))
        }
    }

    // MARK: Replay integer lists

    /// A float in a shape, indices or dense shape is an error naming its element. Accepted before
    /// (`2.0` and `1e2` were coerced to integers).
    @Test(arguments: [
        (#"[{"name": "w", "shape": [2.0], "value": [1, 2]}]"#, #"[{"gradients": [null]}]"#, "variables[0].shape[0]"),
        (#"[{"name": "w", "shape": [2], "value": [1, 2]}]"#,
         #"[{"gradients": [{"indices": [1e0], "values": [1]}]}]"#, "steps[0].gradients[0].indices[0]"),
        (#"[{"name": "w", "shape": [2], "value": [1, 2]}]"#,
         #"[{"gradients": [{"indices": [1], "values": [1], "dense_shape": [2.0]}]}]"#,
         "steps[0].gradients[0].dense_shape[0]"),
    ])
    func replayIntegerListsRejectFloats(variables: String, steps: String, path: String) {
        let document = #"{"optimizer": {"class_name": "SGD", "config": {}}, "variables": \#(variables), "steps": \#(steps)}"#
        do {
            _ = try Replay.run(json: document)
            Issue.record("expected an error for \(path)")
        } catch {
            #expect("\(error)".contains(path), "\(error)")
            #expect("\(error)".contains("expected an integer"), "\(error)")
        }
    }

    // MARK: slice(rows:)

    /// A row range outside the tensor is a TensorError naming it. Trapped before: `range.count`
    /// overflows for `-1..<Int.max`.
    @Test func sliceRowsOutsideTheTensorIsAnError() throws {
        let t = try Tensor(shape: [3, 2], scalars: [Float](repeating: 1, count: 6))
        for range in [-1..<Int.max, Int.min..<0, 0..<4, 2..<Int.max, -1..<1] {
            do {
                _ = try t.slice(rows: range)
                Issue.record("expected an error for \(range)")
            } catch let error as TensorError {
                #expect("\(error)".contains("\(range)"), "\(error)")
            }
        }
        #expect(try t.slice(rows: 1..<3).shape == [2, 2])
        #expect(try t.slice(rows: 3..<3).shape == [0, 2])
    }
}
