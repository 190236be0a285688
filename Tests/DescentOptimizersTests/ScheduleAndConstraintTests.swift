import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Testing

private func values(_ s: any LearningRateSchedule, _ steps: [Double]) throws -> [Double] {
    try steps.map { try s($0) }
}

private func expectClose(_ a: [Double], _ b: [Double], _ tolerance: Double = 1e-5,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, sourceLocation: sourceLocation)
    for (x, y) in zip(a, b) { #expect(abs(x - y) <= tolerance, "\(a) vs \(b)", sourceLocation: sourceLocation) }
}

/// Spot values from TensorFlow 2.21 (reference/optimizerv2-spec.md §3).
@Suite struct ScheduleTests {
    @Test func piecewiseConstant() throws {
        let s = try PiecewiseConstantDecay(boundaries: [2, 4], values: [1, 0.5, 0.1])
        expectClose(try values(s, [0, 1, 2, 3, 4, 5]), [1, 1, 1, 0.5, 0.5, 0.1])
        let error = #expect(throws: OptimizerError.self) { try PiecewiseConstantDecay(boundaries: [1, 2], values: [1, 2]) }
        #expect(error?.description.contains("values") == true)
    }

    @Test func polynomialWithCycle() throws {
        let s = PolynomialDecay(initialLearningRate: 1, decaySteps: 10, endLearningRate: 0, cycle: true)
        expectClose(try values(s, [0, 5, 10, 11, 20, 21]), [1, 0.5, 0, 0.45, 0, 0.3])
        let noCycle = PolynomialDecay(initialLearningRate: 1, decaySteps: 10, endLearningRate: 0.1, power: 2)
        expectClose(try values(noCycle, [0, 5, 10, 50]), [1, 0.325, 0.1, 0.1])
    }

    @Test func cosineDecayRestarts() throws {
        let s = CosineDecayRestarts(initialLearningRate: 1, firstDecaySteps: 10, tMul: 2, mMul: 0.5, alpha: 0.1)
        expectClose(try values(s, [0, 5, 10, 20, 30, 40]), [1, 0.55, 0.55, 0.325, 0.325, 0.29205])
        let constantPeriod = CosineDecayRestarts(initialLearningRate: 1, firstDecaySteps: 10, tMul: 1)
        expectClose(try values(constantPeriod, [0, 5, 10, 15]), [1, 0.5, 1, 0.5])
    }

    @Test func cosineDecayWithAndWithoutWarmup() throws {
        let s = CosineDecay(initialLearningRate: 1, decaySteps: 10, alpha: 0.1)
        expectClose(try values(s, [0, 5, 10, 20]), [1, 0.55, 0.1, 0.1])
        let warm = CosineDecay(initialLearningRate: 0, decaySteps: 10, warmupTarget: 1, warmupSteps: 4)
        expectClose(try values(warm, [0, 2, 4, 9, 14, 100]), [0, 0.5, 1, 0.5, 0, 0])
    }

    @Test func exponentialAndInverseTime() throws {
        let e = ExponentialDecay(initialLearningRate: 1, decaySteps: 10, decayRate: 0.5, staircase: true)
        expectClose(try values(e, [0, 5, 10, 15]), [1, 1, 0.5, 0.5])
        let smooth = ExponentialDecay(initialLearningRate: 1, decaySteps: 10, decayRate: 0.5)
        expectClose(try values(smooth, [5]), [0.7071068])
        let i = InverseTimeDecay(initialLearningRate: 1, decaySteps: 10, decayRate: 0.5)
        expectClose(try values(i, [0, 5, 10, 15]), [1, 0.8, 0.6666667, 0.5714286])
        let stairs = InverseTimeDecay(initialLearningRate: 1, decaySteps: 10, decayRate: 0.5, staircase: true)
        expectClose(try values(stairs, [9, 10]), [1, 0.6666667])
    }

    @Test func serializationErrors() throws {
        let missing = #expect(throws: OptimizerError.self) {
            try deserializeSchedule(["class_name": "ExponentialDecay", "config": ["decay_steps": 10, "decay_rate": 0.5]])
        }
        #expect(missing?.description.contains("initial_learning_rate") == true)
        let unknown = #expect(throws: OptimizerError.self) { try deserializeSchedule(["class_name": "Warp", "config": [:]]) }
        #expect(unknown?.description.contains("Warp") == true)
        let extra = #expect(throws: OptimizerError.self) {
            try deserializeSchedule(["class_name": "CosineDecay", "config": ["initial_learning_rate": 1, "decay_steps": 2, "bogus": 1]])
        }
        #expect(extra?.description.contains("bogus") == true)
        #expect(throws: OptimizerError.self) { try ClosureSchedule { _ in 1 }.config }
        #expect(throws: OptimizerError.self) { try serializeSchedule(ClosureSchedule { _ in 1 }) }
    }

    @Test func customSchedulesRegister() throws {
        struct Halving: LearningRateSchedule {
            func callAsFunction(_ step: Double) -> Double { 1 / (1 + step) }
            var className: String { "Halving" }
            var config: JSONObject { [:] }
        }
        var custom = CustomObjects()
        custom.schedules["Halving"] = { _ in Halving() }
        let opt = try Optimizer.deserialize(
            ["class_name": "SGD", "config": ["learning_rate": ["class_name": "Halving", "config": [:]]]], customObjects: custom)
        let v = Variable(Tensor(Double(0)))
        try opt.applyGradients([(Tensor(Double(1)), v)])
        try opt.applyGradients([(Tensor(Double(1)), v)])
        #expect(try v.untrackedValue.item() == -1.5)
        #expect(try opt.serialize()["config"]?.objectValue?["learning_rate"]?.objectValue?["registered_name"] == "Halving")
    }
}

@Suite struct ConstraintTests {
    let w = try! Tensor(rows: [[3, -4] as [Float], [4, 3]])  // column norms 5 and 5; row norms 5 and 5

    @Test func nonNeg() throws {
        #expect(try NonNeg().apply(to: w).scalars(as: Float.self) == [3, 0, 4, 3])
    }

    @Test func maxNormOverColumnsAndRows() throws {
        let c = try MaxNorm(maxValue: 2, axis: 0).apply(to: w).doubles
        let scale = 2 / (5 + 1e-7)
        for (x, y) in zip(c, [3 * scale, -4 * scale, 4 * scale, 3 * scale]) { #expect(abs(x - y) < 1e-6) }
        let small = try Tensor(rows: [[0.3, 0.4] as [Float]])
        // Norm 0.5 < 2: unchanged up to the epsilon.
        for (x, y) in zip(try MaxNorm(maxValue: 2, axis: 1).apply(to: small).doubles, [0.3, 0.4]) { #expect(abs(x - y) < 1e-6) }
    }

    @Test func unitNormAndMinMaxNorm() throws {
        let u = try UnitNorm(axis: 1).apply(to: w).doubles
        for (x, y) in zip(u, [0.6, -0.8, 0.8, 0.6]) { #expect(abs(x - y) < 1e-6) }
        // rate 0.5 toward [0, 2]: desired = 0.5·2 + 0.5·5 = 3.5.
        let m = try MinMaxNorm(minValue: 0, maxValue: 2, rate: 0.5, axis: [0, 1]).apply(to: w).doubles
        let norm = (50.0).squareRoot(), scale = (0.5 * 2 + 0.5 * norm) / norm
        for (x, y) in zip(m, [3 * scale, -4 * scale, 4 * scale, 3 * scale]) { #expect(abs(x - y) < 1e-5) }
    }

    @Test func deserialization() throws {
        #expect(try Constraints.deserialize(.null) == nil)
        #expect(try Constraints.deserialize("non_neg") is NonNeg)
        let m = try #require(try Constraints.deserialize(["class_name": "MaxNorm", "config": ["max_value": 3, "axis": [0, 1]]]) as? MaxNorm)
        #expect(m.maxValue == 3 && m.axis == [0, 1])
        let unknown = #expect(throws: OptimizerError.self) { try Constraints.deserialize(["class_name": "Clamp", "config": [:]]) }
        #expect(unknown?.description.contains("Clamp") == true)
        let axis = #expect(throws: OptimizerError.self) {
            try Constraints.deserialize(["class_name": "UnitNorm", "config": ["axis": "rows"]])
        }
        #expect(axis?.description.contains("axis") == true)
        #expect(throws: JSONError.self) { try Constraints.deserialize(3) }
    }
}
