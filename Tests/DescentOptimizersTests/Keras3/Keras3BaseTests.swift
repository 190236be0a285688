@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Testing

/// The Keras 3 family's base: routing, configs, the lifecycle's checks.
@Suite struct Keras3BaseTests {
    /// What Keras 3.15.1 wrote for `keras.optimizers.serialize(AdamW(0.01, weight_decay=0.1, use_ema=True,
    /// ema_overwrite_frequency=3))`.
    static let adamWJSON = #"{"module": "keras.optimizers", "class_name": "AdamW", "config": {"name": "adam_w_1", "learning_rate": 0.009999999776482582, "weight_decay": 0.1, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": true, "ema_momentum": 0.99, "ema_overwrite_frequency": 3, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}, "registered_name": null}"#

    @Test func keras3ModuleRoutesToTheKeras3Family() throws {
        let opt = try Optimizer.deserialize(json: Self.adamWJSON)
        #expect(opt is Keras3.AdamW)
        #expect(try opt.serializedJSON() == Self.adamWJSON)
        let legacy = try Optimizer.deserialize(json: #"{"module": "keras.optimizers.legacy", "class_name": "Adam", "config": {}}"#)
        #expect(legacy is Adam && !(legacy is Keras3.Optimizer))
        let noModule = try Optimizer.deserialize(json: #"{"class_name": "Adam", "config": {}}"#)
        #expect(!(noModule is Keras3.Optimizer))
        #expect(try Optimizer.deserialize(json: "adamw") is Keras3.AdamW)
        #expect(try Optimizer.deserialize(json: "adam") is Adam)
        let k3Adam = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "adam", "config": {}}"#)
        #expect(k3Adam is Keras3.Adam)
        #expect(try k3Adam.serialize()["module"] == "keras.optimizers")
    }

    @Test func unknownKeyAndBadValuesThrowNamingTheField() throws {
        #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Adam", "config": {"beta1": 0.9}}"#)
        }
        #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Nonesuch", "config": {}}"#)
        }
        do {
            _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "AdamW", "config": {"weight_decay": null}}"#)
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("weight_decay")) }
        do {
            _ = try Keras3.SGD(options: .init(clipnorm: 1, clipvalue: 1))
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("only one of")) }
        #expect(throws: OptimizerError.self) { try Keras3.SGD(options: .init(gradientAccumulationSteps: 1)) }
        #expect(throws: OptimizerError.self) { try Keras3.SGD(options: .init(useEMA: true, emaMomentum: 1.5)) }
        #expect(throws: OptimizerError.self) { try Keras3.SGD(momentum: 2) }
    }

    @Test func variablesAreNamedAndOrderedAsKeras3() throws {
        let kernel = Variable(try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4] as [Float]), name: "dense/kernel")
        let bias = Variable(Tensor([0.5, -0.5] as [Float]), name: "dense/bias")
        let opt = try Keras3.Adam(name: "adam", options: .init(useEMA: true, gradientAccumulationSteps: 2))
        #expect(opt.weights.map(\.name) == ["adam/iteration", "adam/learning_rate"])
        try opt.applyGradients([(try Tensor(shape: [2, 2], scalars: [1, 1, 1, 1] as [Float]), kernel), (Tensor([1, 1] as [Float]), bias)])
        #expect(opt.weights.map(\.name) == [
            "adam/iteration", "adam/learning_rate",
            "adam/dense_kernel_average", "adam/dense_bias_average",
            "adam/dense_kernel_gradient_accumulator", "adam/dense_bias_gradient_accumulator",
            "adam/dense_kernel_momentum", "adam/dense_kernel_velocity", "adam/dense_bias_momentum", "adam/dense_bias_velocity",
        ])
        // The first of two accumulation steps updates nothing.
        #expect(kernel.untrackedValue.doubles == f32([1, 2, 3, 4]))
        #expect(opt.iterationCount == 1 && opt.kerasIterations == 0)
    }

    @Test func unknownVariableAfterBuildThrowsAndChangesNothing() throws {
        let a = Variable(Tensor([1, 2] as [Float]), name: "a"), b = Variable(Tensor([3] as [Float]), name: "b")
        let opt = try Keras3.SGD(learningRate: 0.1)
        try opt.applyGradients([(Tensor([1, 1] as [Float]), a)])
        do {
            try opt.applyGradients([(Tensor([1, 1] as [Float]), a), (Tensor([1] as [Float]), b)])
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("'b'")) }
        #expect(a.untrackedValue.doubles == f32([0.9, 1.9]))
        #expect(opt.iterationCount == 1)
    }

    @Test func aFailingFirstCallLeavesTheOptimizerUnbuilt() throws {
        let a = Variable(Tensor([1, 2] as [Float]), name: "a")
        let opt = try Keras3.Adam()
        #expect(throws: OptimizerError.self) { try opt.applyGradients([(Tensor([1, 1, 1] as [Float]), a)]) }
        #expect(!opt.isBuilt && opt.weights.count == 2)
        #expect(throws: OptimizerError.self) { try opt.applyGradients([(Gradient?.none, a)]) }
        #expect(!opt.isBuilt && opt.weights.count == 2)
        try opt.applyGradients([(Tensor([1, 1] as [Float]), a)])
        #expect(opt.isBuilt && opt.weights.count == 4)
    }

    @Test func learningRateVariableAssignsTheNextStep() throws {
        let a = Variable(Tensor([1] as [Float]), name: "a")
        let opt = try Keras3.SGD(learningRate: 0.5)
        try #require(opt.learningRateVariable).assign(Tensor(Float(2)))
        try opt.applyGradients([(Tensor([1] as [Float]), a)])
        #expect(a.untrackedValue.doubles == f32([-1]))
        opt.learningRate = 0.25
        try opt.applyGradients([(Tensor([1] as [Float]), a)])
        #expect(a.untrackedValue.doubles == f32([-1.25]))
        let scheduled = try Keras3.SGD(learningRate: .schedule(ExponentialDecay(initialLearningRate: 0.1, decaySteps: 1, decayRate: 0.5)))
        #expect(scheduled.weights.count == 1)
        #expect(throws: OptimizerError.self) { try scheduled.setLearningRate(0.3) }
        #expect(scheduled.learningRateVariable == nil)
        #expect(try scheduled.learningRateValue == Double(Float(0.1)))
        #expect(try opt.learningRateValue == 0.25)
        #expect(try opt.hyperparameterVariable(named: "learning_rate") === opt.learningRateVariable)
        #expect(throws: OptimizerError.self) { try opt.hyperparameterVariable(named: "momentum") }
    }

    @Test func weightDecayExclusionSearchesTheTensorFlowName() throws {
        let kernel = Variable(Tensor([1] as [Float]), name: "dense/kernel"), bias = Variable(Tensor([1] as [Float]), name: "dense/bias")
        let opt = try Keras3.AdamW(learningRate: 0.5, weightDecay: 0.5)
        try opt.excludeFromWeightDecay(names: ["bias"])
        #expect(opt.usesWeightDecay(kernel) && !opt.usesWeightDecay(bias))
        let dense = try Keras3.AdamW(weightDecay: 0.5)
        try dense.excludeFromWeightDecay(names: ["dense/k", ":0$"])
        // Keras 3's TensorFlow backend searches the tf.Variable's name, "dense/kernel:0".
        #expect(!dense.usesWeightDecay(kernel) && !dense.usesWeightDecay(bias))
        let other = try Keras3.AdamW(weightDecay: 0.5)
        try other.excludeFromWeightDecay(names: ["^bias"])
        #expect(other.usesWeightDecay(bias))
        try opt.applyGradients([(Tensor([0] as [Float]), kernel), (Tensor([0] as [Float]), bias)])
        #expect(kernel.untrackedValue.doubles == f32([0.75]) && bias.untrackedValue.doubles == f32([1]))
        #expect(throws: OptimizerError.self) { try opt.excludeFromWeightDecay(names: ["x"]) }
        #expect(throws: OptimizerError.self) { try Keras3.AdamW().excludeFromWeightDecay(names: ["("]) }
    }

    @Test func shardedStateIsRefusedForTheKeras3Family() throws {
        #expect(throws: OptimizerError.self) { try Keras3.Adam().setShardsStateAcrossReplicas(true) }
    }
}

/// Float32 values as the `doubles` of a float32 tensor read them.
func f32(_ values: [Float]) -> [Double] { values.map(Double.init) }
