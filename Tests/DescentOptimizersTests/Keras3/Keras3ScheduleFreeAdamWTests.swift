@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Testing

/// Keras 3's ScheduleFreeAdamW: config, variables, numbers against Keras 3.15.1, the fused kernel.
@Suite struct Keras3ScheduleFreeAdamWTests {
    /// What Keras 3.15.1 wrote for `serialize(ScheduleFreeAdamW(learning_rate=0.1, warmup_steps=2, weight_decay=0.05))`.
    static let json = #"{"module": "keras.optimizers", "class_name": "ScheduleFreeAdamW", "config": {"name": "schedule_free_adam_w", "learning_rate": 0.10000000149011612, "weight_decay": 0.05, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08, "warmup_steps": 2}, "registered_name": null}"#

    /// Keras 3.15.1's `serialize(ScheduleFreeAdamW())` (its defaults), with the name "schedule_free_adam_w".
    static let defaultJSON = #"{"module": "keras.optimizers", "class_name": "ScheduleFreeAdamW", "config": {"name": "schedule_free_adam_w", "learning_rate": 0.0024999999441206455, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08, "warmup_steps": 0}, "registered_name": null}"#

    @Test func configRoundTripsByteForByte() throws {
        let opt = try Optimizer.deserialize(json: Self.json)
        #expect(opt is Keras3.ScheduleFreeAdamW)
        #expect(try opt.serializedJSON() == Self.json)
        #expect(try Keras3.ScheduleFreeAdamW(name: "schedule_free_adam_w").serializedJSON() == Self.defaultJSON)
        #expect(Keras3.ScheduleFreeAdamW.kerasClassName == "ScheduleFreeAdamW")
        #expect(KerasNaming.snakeCase("ScheduleFreeAdamW") == "schedule_free_adam_w")
    }

    @Test func badOptionsThrowNamingTheField() throws {
        for (json, field) in [(#"{"beta_1": "x"}"#, "beta_1"), (#"{"warmup_steps": 1e40}"#, "warmup_steps"), (#"{"amsgrad": false}"#, "amsgrad")] {
            do {
                _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "ScheduleFreeAdamW", "config": "# + json + "}")
                Issue.record("expected an error for \(json)")
            } catch { #expect("\(error)".contains(field), "\(error)") }
        }
    }

    /// Three steps of `ScheduleFreeAdamW(learning_rate=0.1, warmup_steps=2, weight_decay=0.05)` in Keras 3.15.1.
    @Test func trajectoryMatchesKeras3BitForBit() throws {
        let opt = try #require(try Optimizer.deserialize(json: Self.json) as? Keras3.ScheduleFreeAdamW)
        let w = Variable(Tensor([0.5, -1.0, 1.5, 0.25] as [Float]), name: "w")
        for g: [Float] in [[0.1, -0.2, 0.3, 0.4], [-0.3, 0.1, 0.2, -0.4], [0.05, 0.15, -0.25, 0.35]] {
            try opt.applyGradients([(Tensor(g), w)])
        }
        #expect(opt.weights.map(\.name) == ["schedule_free_adam_w/iteration", "schedule_free_adam_w/learning_rate",
                                            "schedule_free_adam_w/w_momentum", "schedule_free_adam_w/w_velocity"])
        #expect(w.untrackedValue.doubles == [0.527937650680542, -1.0194896459579468, 1.4234904050827026, 0.23512263596057892])
        #expect(opt.momentums[0].untrackedValue.doubles == [0.5570856332778931, -1.1097569465637207, 1.4702463150024414, 0.2088632583618164])
        #expect(opt.velocities[0].untrackedValue.doubles == [0.00010238870163448155, 7.240910781547427e-05, 0.000192277628229931, 0.00044201448326930404])
    }

    /// Two steps of `ScheduleFreeAdamW(learning_rate=0.1)` in Keras 3.15.1 with IndexedSlices repeating an index.
    @Test func sparseTrajectoryMatchesKeras3BitForBit() throws {
        let opt = try Keras3.ScheduleFreeAdamW(learningRate: 0.1)
        let e = Variable(try Tensor(shape: [3, 2], scalars: [0.5, -1.0, 1.5, 0.25, -0.75, 2.0] as [Float]), name: "e")
        for rows: [Float] in [[0.1, 0.2, 0.4, -0.5, 0.7, 0.8], [-0.2, 0.1, 0.5, 0.5, 0.2, -0.3]] {
            let g = try IndexedSlices(values: try Tensor(shape: [3, 2], scalars: rows), indices: [2, 0, 2], denseShape: [3, 2])
            try opt.applyGradients([(.sparse(g), e)])
        }
        #expect(e.untrackedValue.doubles == [0.3447874188423157, -0.9499998092651367, 1.5, 0.25, -0.8631371259689331, 1.8947478532791138])
        #expect(opt.momentums[0].untrackedValue.doubles == [0.28957486152648926, -0.9999996423721313, 1.5, 0.25, -0.8631371259689331, 1.9107635021209717])
    }

    /// A subclass runs `updateStep` (the reference); the exact type runs the fused kernel: same bits, float32
    /// and float64, across the SIMD body and the scalar tail, with warmup.
    @Test func fusedKernelMatchesUpdateStep() throws {
        final class Reference: Keras3.ScheduleFreeAdamW {}
        for dtype in [DType.float32, .float64] {
            let count = 37
            let start = (0..<count).map { Double($0 % 7) * 0.3 - 0.8 }
            func tensor(_ v: [Double]) throws -> Tensor {
                dtype == .float32 ? try Tensor(shape: [count], scalars: v.map { Float($0) }) : try Tensor(shape: [count], scalars: v)
            }
            let fused = try Keras3.ScheduleFreeAdamW(learningRate: 0.05, warmupSteps: 3)
            let reference = try Reference(learningRate: 0.05, warmupSteps: 3)
            #expect(fused.fusesDenseUpdates && !reference.fusesDenseUpdates)
            let a = Variable(try tensor(start), name: "a"), b = Variable(try tensor(start), name: "b")
            for step in 0..<5 {
                let g = try tensor((0..<count).map { Double(($0 * 7 + step * 3) % 11) * 0.1 - 0.5 })
                try fused.applyGradients([(g, a)])
                try reference.applyGradients([(g, b)])
            }
            #expect(a.untrackedValue.doubles == b.untrackedValue.doubles)
            #expect(fused.momentums[0].untrackedValue.doubles == reference.momentums[0].untrackedValue.doubles)
            #expect(fused.velocities[0].untrackedValue.doubles == reference.velocities[0].untrackedValue.doubles)
        }
    }

    /// The momentum starts as a copy of the variable; a zero gradient leaves everything where it is.
    @Test func momentumStartsAsTheVariable() throws {
        let opt = try Keras3.ScheduleFreeAdamW()
        let w = Variable(Tensor([0.5, -2] as [Float]), name: "w")
        try opt.build([w])
        #expect(opt.momentums[0].untrackedValue.doubles == f32([0.5, -2]))
        #expect(opt.velocities[0].untrackedValue.doubles == [0, 0])
    }
}
