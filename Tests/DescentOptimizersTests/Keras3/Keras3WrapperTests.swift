@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Testing

/// LossScaleOptimizer and MultiOptimizer (their trajectories against Keras 3 are golden fixtures).
@Suite struct Keras3WrapperTests {
    /// Written by Keras 3.15.1's `keras.optimizers.serialize`.
    static let multiJSON = #"{"module": "keras.optimizers", "class_name": "MultiOptimizer", "config": {"optimizer_map": {"module": "keras.optimizers", "class_name": "OptimizerMap", "config": {"default_optimizer": {"module": "keras.optimizers", "class_name": "SGD", "config": {"name": "sgd", "learning_rate": 0.10000000149011612, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "momentum": 0.0, "nesterov": false}, "registered_name": null}, "optimizer_map": {"dense/.*": {"module": "keras.optimizers", "class_name": "Adam", "config": {"name": "adam", "learning_rate": 0.009999999776482582, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}, "registered_name": null}, "bias": {"module": "keras.optimizers", "class_name": "AdamW", "config": {"name": "adamw", "learning_rate": 0.0010000000474974513, "weight_decay": 0.004, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}, "registered_name": null}}}, "registered_name": null}, "loss_scale_factor": null, "name": "multi"}, "registered_name": null}"#
    static let lossScaleJSON = #"{"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "config": {"name": "lso", "inner_optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"name": "adam2", "learning_rate": 0.0010000000474974513, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}, "registered_name": null}, "initial_scale": 32768.0, "dynamic_growth_steps": 3}, "registered_name": null}"#

    @Test func configsRoundTripByteForByte() throws {
        for json in [Self.multiJSON, Self.lossScaleJSON] {
            #expect(try Optimizer.deserialize(json: json).serializedJSON() == json)
        }
        let multi = try #require(try Optimizer.deserialize(json: Self.multiJSON) as? Keras3.MultiOptimizer)
        #expect(multi.optimizers.map(\.name) == ["adam", "adamw", "sgd"])
    }

    @Test func lossScaleSkipsNonFiniteStepsAndGrows() throws {
        let w = Variable(Tensor([1, 2] as [Float]), name: "w")
        let opt = try Keras3.LossScaleOptimizer(innerOptimizer: try Keras3.SGD(learningRate: 1), initialScale: 4,
                                                dynamicGrowthSteps: 2)
        #expect(try opt.scaleLoss(Tensor(Float(1.5))).doubles == [6])
        try opt.applyGradients([(Tensor([Float.infinity, 0]), w)])
        #expect(w.untrackedValue.doubles == f32([1, 2]))  // skipped
        #expect(try opt.dynamicScale!.untrackedValue.doubles == [2])
        #expect(opt.kerasIterations == 0)
        try opt.applyGradients([(Tensor([2, 4] as [Float]), w)])  // unscaled: [1, 2]
        #expect(w.untrackedValue.doubles == f32([0, 0]))
        #expect(try opt.dynamicScale!.untrackedValue.doubles == [2])
        try opt.applyGradients([(Tensor([2, 4] as [Float]), w)])
        #expect(try opt.dynamicScale!.untrackedValue.doubles == [4])  // two finite steps: doubled
        #expect(opt.kerasIterations == 2)
        #expect(opt.weights.map(\.name).prefix(4) == ["\(opt.name)/iteration", "\(opt.name)/learning_rate",
                                                     "\(opt.name)/step_counter", "\(opt.name)/dynamic_scale"])
    }

    @Test func lossScaleConfigRejectsBaseOptions() throws {
        let inner = #"{"module": "keras.optimizers", "class_name": "SGD", "config": {}, "registered_name": null}"#
        #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "config": {"inner_optimizer": \#(inner), "clipnorm": 1.0}}"#)
        }
        #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "config": {"inner_optimizer": \#(inner), "dynamic": false}}"#)
        }
        #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "config": {"inner_optimizer": {"class_name": "Adam", "config": {}}}}"#)
        }
        _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "config": {"inner_optimizer": \#(inner), "use_ema": false}}"#)
    }

    @Test func multiOptimizerRoutesByPath() throws {
        let kernel = Variable(Tensor([1] as [Float]), name: "dense/kernel")
        let bias = Variable(Tensor([1] as [Float]), name: "dense/bias")
        let other = Variable(Tensor([1] as [Float]), name: "head/kernel")
        let sgd = try Keras3.SGD(learningRate: 0.5, name: "sgd"), big = try Keras3.SGD(learningRate: 2, name: "big")
        let map = try Keras3.OptimizerMap(defaultOptimizer: sgd, [("dense/.*", big), ("dense/bias", sgd)])
        let multi = try Keras3.MultiOptimizer(map, name: "multi")
        try multi.applyGradients([(Tensor([1] as [Float]), kernel), (Tensor([1] as [Float]), bias), (Tensor([1] as [Float]), other)])
        // "dense/bias" matches exactly before the patterns are tried.
        #expect(kernel.untrackedValue.doubles == [-1] && bias.untrackedValue.doubles == [0.5] && other.untrackedValue.doubles == [0.5])
        #expect(multi.iterationCount == 1 && big.iterationCount == 1 && sgd.iterationCount == 1)
        // Every built variable on each call.
        #expect(throws: OptimizerError.self) { try multi.applyGradients([(Tensor([1] as [Float]), kernel)]) }
        #expect(multi.iterationCount == 1)
        // Two patterns for one path.
        let ambiguous = try Keras3.MultiOptimizer(try Keras3.OptimizerMap(defaultOptimizer: try Keras3.SGD(), [("a.*", try Keras3.SGD()), (".*b", try Keras3.SGD())]))
        let ab = Variable(Tensor([1] as [Float]), name: "ab")
        let before = ambiguous.weights.count
        #expect(throws: OptimizerError.self) { try ambiguous.applyGradients([(Tensor([1] as [Float]), ab)]) }
        #expect(!ambiguous.isBuilt && ambiguous.weights.count == before)
        #expect(throws: OptimizerError.self) { try Keras3.OptimizerMap(defaultOptimizer: try Keras3.SGD(), [("(", try Keras3.SGD())]) }
        #expect(throws: OptimizerError.self) { try Keras3.OptimizerMap(defaultOptimizer: multi) }
    }

    @Test func multiOptimizerSetsTheLossScaleFactorOfItsOptimizers() throws {
        let inner = try Keras3.Adam(options: .init(lossScaleFactor: 8))
        _ = try Keras3.MultiOptimizer(try Keras3.OptimizerMap(defaultOptimizer: inner), lossScaleFactor: 2)
        #expect(inner.options.lossScaleFactor == 2)
    }
}
