@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Testing
import Foundation

/// Keras 3's Adafactor, Adagrad, Adadelta and Ftrl: configs, defaults, validation, trajectories against
/// Keras 3.15.1 (TensorFlow backend), and the fused dense kernels against the reference `updateStep`.
@Suite struct Keras3AdaptiveTests {
    // MARK: Configs Keras 3.15.1 wrote (`keras.optimizers.serialize(...)`)

    static let adafactorJSON = #"{"module": "keras.optimizers", "class_name": "Adafactor", "config": {"name": "adafactor_2", "learning_rate": 0.10000000149011612, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_2_decay": -0.8, "epsilon_1": 1e-30, "epsilon_2": 0.001, "clip_threshold": 1.0, "relative_step": true}, "registered_name": null}"#
    static let adagradJSON = #"{"module": "keras.optimizers", "class_name": "Adagrad", "config": {"name": "adagrad_2", "learning_rate": 0.10000000149011612, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "initial_accumulator_value": 0.1, "epsilon": 1e-07}, "registered_name": null}"#
    static let adadeltaJSON = #"{"module": "keras.optimizers", "class_name": "Adadelta", "config": {"name": "adadelta_2", "learning_rate": 1.0, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "rho": 0.95, "epsilon": 1e-07}, "registered_name": null}"#
    static let ftrlJSON = #"{"module": "keras.optimizers", "class_name": "Ftrl", "config": {"name": "ftrl_2", "learning_rate": 0.10000000149011612, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "learning_rate_power": -0.5, "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.01, "l2_regularization_strength": 0.02, "l2_shrinkage_regularization_strength": 0.03, "beta": 0.1}, "registered_name": null}"#

    @Test func configsRoundTripByteForByte() throws {
        for (json, expectedType) in [(Self.adafactorJSON, Keras3.Adafactor.self as Keras3.Optimizer.Type), (Self.adagradJSON, Keras3.Adagrad.self),
                             (Self.adadeltaJSON, Keras3.Adadelta.self), (Self.ftrlJSON, Keras3.Ftrl.self)] {
            let opt = try Optimizer.deserialize(json: json)
            #expect(type(of: opt) == expectedType)
            #expect(try opt.serializedJSON() == json)
        }
        for name in ["adafactor", "adagrad", "adadelta", "ftrl"] {
            let opt = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "\#(name)", "config": {}}"#)
            #expect(opt is Keras3.Optimizer)
        }
    }

    @Test func defaultsAreKeras3s() throws {
        let adafactor = try Keras3.Adafactor()
        #expect(try adafactor.currentLearningRate() == 0.001)
        #expect(adafactor.beta2Decay.value == -0.8 && adafactor.epsilon1.value == 1e-30 && adafactor.epsilon2.value == 1e-3)
        #expect(adafactor.clipThreshold.value == 1 && adafactor.relativeStep)
        let adagrad = try Keras3.Adagrad()
        #expect(try adagrad.currentLearningRate() == 0.001)
        #expect(adagrad.initialAccumulatorValue.value == 0.1 && adagrad.epsilon.value == 1e-7)
        let adadelta = try Keras3.Adadelta()
        #expect(try adadelta.currentLearningRate() == 0.001)
        #expect(adadelta.rho.value == 0.95 && adadelta.epsilon.value == 1e-7)
        let ftrl = try Keras3.Ftrl()
        #expect(try ftrl.currentLearningRate() == 0.001)
        #expect(ftrl.learningRatePower.value == -0.5 && ftrl.initialAccumulatorValue.value == 0.1)
        #expect(ftrl.l1.value == 0 && ftrl.l2.value == 0 && ftrl.l2Shrinkage.value == 0 && ftrl.beta.value == 0)
        // The config keys, in Keras' order.
        #expect(try Array(adafactor.config.keys) == Keras3.baseConfigKeys + ["beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold", "relative_step"])
        #expect(try Array(ftrl.config.keys) == Keras3.baseConfigKeys + [
            "learning_rate_power", "initial_accumulator_value", "l1_regularization_strength", "l2_regularization_strength",
            "l2_shrinkage_regularization_strength", "beta"])
    }

    @Test func ftrlRejectsWhatKerasRejectsNamingTheField() throws {
        for (field, make) in [
            ("initial_accumulator_value", { try Keras3.Ftrl(initialAccumulatorValue: -0.1) }),
            ("learning_rate_power", { try Keras3.Ftrl(learningRatePower: 0.5) }),
            ("l1_regularization_strength", { try Keras3.Ftrl(l1: -1) }),
            ("l2_regularization_strength", { try Keras3.Ftrl(l2: -1) }),
            ("l2_shrinkage_regularization_strength", { try Keras3.Ftrl(l2Shrinkage: -1) }),
        ] as [(String, () throws -> Keras3.Ftrl)] {
            do {
                _ = try make()
                Issue.record("expected an error for \(field)")
            } catch { #expect("\(error)".contains(field)) }
        }
        do {
            _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Adafactor", "config": {"epsilon": 1e-7}}"#)
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("epsilon")) }
        do {
            _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Adagrad", "config": {"epsilon": "small"}}"#)
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("epsilon")) }
        #expect(throws: OptimizerError.self) { try Keras3.Adadelta(rho: 1e300) }
    }

    @Test func adafactorVariablesAreKeras3s() throws {
        let kernel = Variable(try Tensor(shape: [2, 3, 4], scalars: [Float](repeating: 1, count: 24)), name: "dense/kernel")
        let bias = Variable(Tensor([0.5, -0.5] as [Float]), name: "dense/bias")
        let opt = try Keras3.Adafactor(name: "adafactor")
        try opt.applyGradients([(try Tensor(shape: [2, 3, 4], scalars: [Float](repeating: 0.1, count: 24)), kernel),
                                (Tensor([1, 1] as [Float]), bias)])
        #expect(opt.weights.map(\.name) == [
            "adafactor/iteration", "adafactor/learning_rate",
            "adafactor/kernel", "adafactor/kernel", "adafactor/dense_kernel_velocity",
            "adafactor/bias", "adafactor/bias", "adafactor/dense_bias_velocity",
        ])
        #expect(opt.weights.map(\.shape) == [[], [], [2, 3], [2, 4], [2, 3, 4], [], [], [2]])
        #expect(opt.weights[5].dtype == .int64 && opt.weights[6].dtype == .int64)
    }

    // MARK: Trajectories (Keras 3.15.1, TensorFlow backend, float32)

    static let kernel0: [Float] = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75]
    static let bias0: [Float] = [0.1, -0.2, 0.3]
    static let denseSteps: [([Float], [Float])] = [
        ([0.1, 0.2, -0.3, 0.4, -0.5, 0.6], [0.05, -0.1, 0.2]),
        ([-0.2, 0.1, 0.3, 0.0, 0.5, -0.4], [0.3, 0.1, -0.2]),
        ([0.3, -0.1, 0.2, 0.1, 0.2, 0.3], [-0.1, 0.2, 0.1]),
    ]
    /// Rows for indices [1, 0, 1] of the [2, 3] kernel (a repeated index).
    static let sparseSteps: [[Float]] = [
        [0.1, 0.2, -0.3, 0.4, -0.5, 0.6, 0.2, 0.1, 0.1],
        [-0.2, 0.1, 0.3, 0.0, 0.5, -0.4, 0.3, 0.3, -0.1],
    ]

    /// Three dense steps on `kernel` [2, 3] and `bias` [3]; then two sparse steps on a fresh kernel.
    func trajectory(_ make: () throws -> Keras3.Optimizer) throws -> (kernel: [Float], bias: [Float], sparse: [Float]) {
        let opt = try make()
        let kernel = Variable(try Tensor(shape: [2, 3], scalars: Self.kernel0), name: "kernel")
        let bias = Variable(Tensor(Self.bias0), name: "bias")
        for (k, b) in Self.denseSteps {
            try opt.applyGradients([(try Tensor(shape: [2, 3], scalars: k), kernel), (Tensor(b), bias)])
        }
        let sparseOpt = try make()
        let sparseKernel = Variable(try Tensor(shape: [2, 3], scalars: Self.kernel0), name: "kernel")
        for rows in Self.sparseSteps {
            let g = Gradient.sparse(try IndexedSlices(values: try Tensor(shape: [3, 3], scalars: rows), indices: [1, 0, 1], denseShape: [2, 3]))
            try sparseOpt.applyGradients([(g, sparseKernel)])
        }
        return (try kernel.untrackedValue.scalars(as: Float.self), try bias.untrackedValue.scalars(as: Float.self),
                try sparseKernel.untrackedValue.scalars(as: Float.self))
    }

    @Test func adafactorMatchesKeras() throws {
        let r = try trajectory { try Keras3.Adafactor(learningRate: 0.1) }
        #expect(r.kernel == [0.3845866620540619, -1.108434796333313, 1.9015476703643799, 1.3334558010101318, 0.17396993935108185, -0.851961612701416])
        #expect(r.bias == [0.06643156707286835, -0.2237398773431778, 0.2835478186607361])
        #expect(r.sparse == [0.3861166834831238, -0.9929889440536499, 1.9720944166183472, 1.2869658470153809, -0.018628284335136414, -0.7371701002120972])
    }

    @Test func adagradMatchesKeras() throws {
        let r = try trajectory { try Keras3.Adagrad(learningRate: 0.1) }
        #expect(r.kernel == [0.46025145053863525, -1.054272174835205, 1.9767746925354004, 1.4023085832595825, 0.24496570229530334, -0.8232685923576355])
        #expect(r.bias == [0.03822851926088333, -0.2487163543701172, 0.2707466781139374])
        #expect(r.sparse == [0.4215535521507263, -0.980034351348877, 1.9623348712921143, 1.403642177581787, 0.09254036098718643, -0.7417934536933899])
    }

    @Test func adadeltaMatchesKeras() throws {
        let r = try trajectory { try Keras3.Adadelta(learningRate: 1.0) }
        #expect(r.kernel == [0.49821943044662476, -1.0014042854309082, 1.9989089965820312, 1.498083233833313, 0.24929413199424744, -0.7511914968490601])
        #expect(r.bias == [0.09750554710626602, -0.20203465223312378, 0.29917681217193604])
        #expect(r.sparse == [0.4985857903957367, -1.0000180006027222, 1.999714970588684, 1.4976279735565186, 0.24601967632770538, -0.7500113844871521])
    }

    @Test func ftrlMatchesKeras() throws {
        let r = try trajectory { try Keras3.Ftrl(learningRate: 0.1, l1: 0.01, l2: 0.02, l2Shrinkage: 0.03, beta: 0.1) }
        #expect(r.kernel == [-0.020490705966949463, -0.1450686901807785, 0.3892365097999573, 0.36817774176597595, 0.08635680377483368, -0.39843475818634033])
        #expect(r.bias == [-0.04632806405425072, -0.04131496325135231, 0.008183233439922333])
        #expect(r.sparse == [0.08522648364305496, -0.3687065541744232, 0.8715176582336426, 0.11849237978458405, -0.09188345819711685, -0.16143521666526794])
    }

    // MARK: Fused kernels against updateStep

    final class UnfusedAdagrad: Keras3.Adagrad {}
    final class UnfusedAdadelta: Keras3.Adadelta {}
    final class UnfusedFtrl: Keras3.Ftrl {}

    /// Runs five dense steps on a 37-element variable (vector body and scalar tail) of `dtype` with both
    /// optimizers; returns the final values and the optimizers' weights.
    func run(_ opt: Keras3.Optimizer, dtype: DType) throws -> [[Double]] {
        let n = 37
        let start = (0..<n).map { sin(Double($0) * 0.7) }
        let v = Variable(try Tensor(shape: [n], scalars: start).cast(to: dtype), name: "w")
        for step in 0..<5 {
            let g = (0..<n).map { cos(Double($0 * (step + 2)) * 0.3) * 0.5 }
            try opt.applyGradients([(try Tensor(shape: [n], scalars: g).cast(to: dtype), v)])
        }
        return opt.weights.map { $0.untrackedValue.doubles } + [v.untrackedValue.doubles]
    }

    @Test func fusedKernelsEqualUpdateStep() throws {
        for dtype in [DType.float32, .float64] {
            #expect(try Keras3.Adagrad(learningRate: 0.1).fusesDenseUpdates && !UnfusedAdagrad(learningRate: 0.1).fusesDenseUpdates)
            #expect(try run(Keras3.Adagrad(learningRate: 0.1, epsilon: 1e-3), dtype: dtype)
                    == run(UnfusedAdagrad(learningRate: 0.1, epsilon: 1e-3), dtype: dtype))
            #expect(try run(Keras3.Adadelta(learningRate: 1.0, rho: 0.9), dtype: dtype)
                    == run(UnfusedAdadelta(learningRate: 1.0, rho: 0.9), dtype: dtype))
            let ftrl = { (fused: Bool) throws -> Keras3.Ftrl in
                fused ? try Keras3.Ftrl(learningRate: 0.1, learningRatePower: -0.7, l1: 0.01, l2: 0.02, l2Shrinkage: 0.03, beta: 0.1)
                    : try UnfusedFtrl(learningRate: 0.1, learningRatePower: -0.7, l1: 0.01, l2: 0.02, l2Shrinkage: 0.03, beta: 0.1)
            }
            #expect(try run(ftrl(true), dtype: dtype) == run(ftrl(false), dtype: dtype))
        }
    }
}

extension Keras3AdaptiveTests {
    /// Adafactor's in-place dense path gives the reference path's numbers (ranks 0 to 3, both dtypes, a
    /// variable large enough for the element-wise passes to split over the threads).
    @Test func adafactorInPlaceDensePathEqualsTheReference() throws {
        for dtype in [DType.float32, .float64] {
            func run(inPlace: Bool) throws -> [[Double]] {
                let opt = try Keras3.Adafactor(learningRate: 0.1, clipThreshold: 0.7)
                opt.usesInPlaceDensePath = inPlace
                // The last two split over the threads (the element-wise passes and the fused sums).
                let shapes: [[Int]] = [[3, 5, 19], [37, 2], [41], [], [300, 250], [70_001], [1, 70_001]]
                let variables = try shapes.enumerated().map { k, shape in
                    let n = shape.reduce(1, *)
                    return Variable(try Tensor(shape: shape, scalars: (0..<n).map { sin(Double($0 + k) * 0.7) }).cast(to: dtype), name: "v\(k)")
                }
                for step in 0..<4 {
                    try opt.applyGradients(try variables.map { v in
                        let n = v.shape.reduce(1, *)
                        return (try Tensor(shape: v.shape, scalars: (0..<n).map { cos(Double($0 * (step + 2)) * 0.3) }).cast(to: dtype), v)
                    })
                }
                return opt.weights.map { $0.untrackedValue.doubles } + variables.map { $0.untrackedValue.doubles }
            }
            let fast = try run(inPlace: true), reference = try run(inPlace: false)
            #expect(fast == reference)
            #expect(fast.joined().allSatisfy { $0.isFinite })
        }
    }
}
