import DescentAutodiff
import DescentOptimizers
import DescentTensor
import Synchronization
import Testing

/// A custom optimizer written the way the seed describes: subclass and override the hooks.
/// Update rule: "sign descent with a running count": var ← var − lr·sign(g); count ← count + 1.
final class SignDescent: Optimizer {
    init(learningRate: Hyperparameter = 0.1, name: String = "SignDescent") throws {
        try super.init(name: name)
        setHyper("learning_rate", learningRate)
    }
    override class var kerasClassName: String { "SignDescent" }
    override func createSlots(for variables: [Variable]) throws {
        for v in variables { try addSlot(v, "count") }
    }
    override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {
        let lr = try c["lr_t"].value
        try v.assignSub(try g.sign() * lr)
        try slot(for: v, named: "count").assignAdd(try Tensor.ones(shape: v.shape, dtype: v.dtype))
    }
    override func resourceApplySparse(_ values: Tensor, _ v: Variable, _ indices: [Int], _ c: Coefficients) throws {
        let dense = try IndexedSlices(values: try values.sign() * c["lr_t"].value, indices: indices, denseShape: v.shape).toDense()
        try v.assignSub(dense)
    }
    override var config: JSONObject {
        get throws {
            var c = try super.config
            c["learning_rate"] = try serializedHyper("learning_rate")
            return c
        }
    }
}

private func floats(_ v: Variable) throws -> [Float] { try v.untrackedValue.scalars(as: Float.self) }

@Suite struct OptimizerBaseTests {
    // MARK: The seed's usages

    @Test func minimizeWithAClosureLoss() throws {
        let var1 = Variable(Tensor(Float(1)), name: "var1"), var2 = Variable(Tensor(Float(2)), name: "var2")
        let opt = try SGD(learningRate: 0.1)
        try opt.minimize({ try 3 * var1 * var1 + 2 * var2 * var2 }, varList: [var1, var2])
        // var1 − 0.1·6·var1, var2 − 0.1·4·var2
        #expect(try floats(var1) == [Float(1) - Float(0.1) * 6])
        #expect(try floats(var2) == [Float(2) - Float(0.1) * 8])
        #expect(opt.iterationCount == 1)
    }

    @Test func minimizeWithAVarListClosureEvaluatedAfterTheLoss() throws {
        var created: Variable?
        let opt = try SGD(learningRate: 0.5)
        try opt.minimize({
            if created == nil { created = Variable(Tensor(Float(4)), name: "lazy") }
            return try created! * created!
        }, varList: { [created!] })
        #expect(try floats(created!) == [0])  // 4 − 0.5·8
    }

    @Test func minimizeWithATensorLossAndTape() throws {
        let v = Variable(Tensor([1, -1] as [Float]), name: "v")
        let opt = try SGD(learningRate: 0.25)
        let tape = GradientTape()
        let loss = try tape.record { try (v * v).sum() }
        try opt.minimize(loss, varList: [v], tape: tape)
        #expect(try floats(v) == [0.5, -0.5])
    }

    @Test func minimizeWatchesAGivenVarListBeforeTheLoss() throws {
        // Keras watches `var_list` first, so a non-trainable variable listed explicitly is updated.
        let frozen = Variable(Tensor(Float(3)), name: "frozen", trainable: false)
        let opt = try SGD(learningRate: 0.1)
        try opt.minimize({ try frozen * frozen }, varList: [frozen])
        #expect(try floats(frozen) == [Float(3) - Float(0.1) * 6])
    }

    @Test func integerVariablesAreRejectedBeforeAnyStateIsCreated() throws {
        let counter = Variable(Tensor([1, 2] as [Int64]), name: "counter")
        let opt = try Adam()
        let error = #expect(throws: OptimizerError.self) { try opt.applyGradients([(Tensor([1, 1] as [Int64]), counter)]) }
        #expect(error?.description.contains("'counter'") == true && error?.description.contains("int64") == true)
        #expect(opt.weights.isEmpty)
    }

    @Test func gradLossMultipliesTheGradient() throws {
        let v = Variable(Tensor(Float(1)), name: "v")
        let opt = try SGD(learningRate: 0.1)
        try opt.minimize({ try v * v }, varList: [v], gradLoss: Tensor(Float(2)))
        #expect(try floats(v) == [Float(1) - Float(0.1) * 4])
    }

    @Test func threeStepUseWithProcessedGradients() throws {
        let v = Variable(Tensor([3, 4] as [Float]), name: "v")
        let opt = try SGD(learningRate: 1)
        let tape = GradientTape()
        let loss = try tape.record { try (v * v).sum() / 2 }
        let grads = try tape.gradient(of: loss, wrt: [v])
        let capped = try grads.map { try $0.map { Gradient.dense(try $0.denseValue.clipped(min: -1, max: 1)) } }
        try opt.applyGradients(Array(zip(capped, [v])))
        #expect(try floats(v) == [2, 3])
    }

    @Test func graphStyleStepRunsManyTimes() throws {
        let v = Variable(Tensor(Float(8)), name: "v")
        let opt = try SGD(learningRate: 0.25)
        let step = opt.minimizeStep({ try v * v }, varList: { [v] })
        try step.run()
        try step.run()
        #expect(try floats(v) == [2])  // 8 → 4 → 2
        #expect(opt.iterationCount == 2)
        let updates = opt.getUpdates({ try v * v }, params: [v])
        #expect(updates.count == 1)
        try updates[0].run()
        #expect(try floats(v) == [1])
    }

    // MARK: applyGradients contract

    @Test func noGradientsAtAllIsAnError() throws {
        let a = Variable(Tensor(Float(1)), name: "a")
        let opt = try Adam()
        let error = #expect(throws: OptimizerError.self) { try opt.applyGradients([(nil, a)]) }
        #expect(error?.description.contains("No gradients provided for any variable: ['a']") == true)
        #expect(opt.iterationCount == 0)
        // An empty list is a no-op.
        try opt.applyGradients([(Gradient?, Variable)]())
        #expect(opt.iterationCount == 0)
    }

    @Test func gradientShapeAndDTypeMismatchNameTheVariable() throws {
        let w = Variable(Tensor([1, 2] as [Float]), name: "dense/kernel")
        let opt = try Adam()
        let shape = #expect(throws: OptimizerError.self) { try opt.applyGradients([(Tensor([1, 2, 3] as [Float]), w)]) }
        #expect(shape?.description.contains("dense/kernel") == true)
        #expect(shape?.description.contains("[3]") == true && shape?.description.contains("[2]") == true)
        let dtype = #expect(throws: OptimizerError.self) { try opt.applyGradients([(Tensor([1, 2] as [Double]), w)]) }
        #expect(dtype?.description.contains("float64") == true)
    }

    @Test func constraintsApplyAfterDenseButRejectSparse() throws {
        let v = Variable(Tensor([1, 2] as [Float]), name: "v", constraint: NonNeg())
        let opt = try SGD(learningRate: 1)
        try opt.applyGradients([(Tensor([2, 1] as [Float]), v)])
        #expect(try floats(v) == [0, 1])
        let sparse = try IndexedSlices(values: Tensor(shape: [1], scalars: [1] as [Float]), indices: [0], denseShape: [2])
        let error = #expect(throws: OptimizerError.self) { try opt.applyGradients([(Gradient.sparse(sparse), v)]) }
        #expect(error?.description.contains("constraint") == true)
    }

    // MARK: Weights, slots, iterations

    @Test func weightsAreIterationsThenSlotsInTensorFlowOrder() throws {
        let a = Variable(Tensor([1] as [Float]), name: "a"), b = Variable(Tensor([1] as [Float]), name: "b")
        let c = Variable(Tensor([1] as [Float]), name: "c")
        let opt = try Adam()
        try opt.applyGradients([(Tensor([1] as [Float]), a), (Tensor([1] as [Float]), b)])
        try opt.applyGradients([(Tensor([1] as [Float]), c)])
        #expect(opt.weights.map(\.name) == ["Adam/iter", "Adam/a/m", "Adam/b/m", "Adam/a/v", "Adam/b/v", "Adam/c/m", "Adam/c/v"])
        #expect(opt.variables().map(\.name) == opt.weights.map(\.name))
        #expect(opt.slotNames == ["m", "v"])
        #expect(try opt.slot(for: a, named: "m").shape == [1])
        let error = #expect(throws: OptimizerError.self) { try opt.slot(for: a, named: "vhat") }
        #expect(error?.description.contains("'vhat'") == true && error?.description.contains("'a'") == true)
    }

    @Test func getAndSetWeights() throws {
        let v = Variable(Tensor([1, 2] as [Float]), name: "v")
        let opt = try SGD(learningRate: 0.1, momentum: 0.9)
        #expect(throws: OptimizerError.self) { try opt.setWeights([Tensor(Int64(3)), Tensor([0.5, 0.5] as [Float])]) }
        try opt.build([v])
        try opt.setWeights([Tensor(Int64(3)), Tensor([0.5, 0.5] as [Float])])
        #expect(opt.iterationCount == 3)
        #expect(try opt.getWeights()[1].scalars(as: Float.self) == [0.5, 0.5])
        let count = #expect(throws: OptimizerError.self) { try opt.setWeights([Tensor(Int64(3))]) }
        #expect(count?.description.contains("got 1 values") == true)
        let shape = #expect(throws: OptimizerError.self) { try opt.setWeights([Tensor(Int64(3)), Tensor([1] as [Float])]) }
        #expect(shape?.description.contains("SGD/v/momentum") == true)
        // The loaded state is used: momentum 0.5 decays with μ = 0.9.
        try opt.applyGradients([(Tensor([0, 0] as [Float]), v)])
        #expect(try floats(v) == [Float(1) + Float(0.5) * Float(0.9), Float(2) + Float(0.5) * Float(0.9)])
    }

    @Test func iterationsCanBeReplacedOnlyBeforeCreation() throws {
        let opt = try SGD()
        try opt.setIterations(Variable(Tensor(Int64(10)), name: "my_iter", trainable: false))
        #expect(opt.iterationCount == 10)
        #expect(throws: OptimizerError.iterationsAlreadyCreated(optimizer: "SGD")) {
            try opt.setIterations(Variable(Tensor(Int64(0))))
        }
        let v = Variable(Tensor(Float(1)))
        try opt.applyGradients([(Tensor(Float(1)), v)])
        #expect(opt.iterationCount == 11)
    }

    @Test func addWeightAppendsToWeights() throws {
        let opt = try SGD()
        _ = opt.iterations
        let w = try opt.addWeight(name: "extra", shape: [2], dtype: .float64, initializer: .constant(3))
        #expect(w.name == "SGD/extra")
        #expect(opt.weights.map(\.name) == ["SGD/iter", "SGD/extra"])
        #expect(try w.untrackedValue.scalars(as: Double.self) == [3, 3])
    }

    // MARK: Hyperparameters

    @Test func hyperparametersBecomeFloat32Variables() throws {
        let opt = try SGD(learningRate: 0.1)
        #expect(try opt.config["learning_rate"] == .double(0.1))  // raw until the hyperparameters are created
        let v = Variable(Tensor(Double(1)), name: "v")
        try opt.applyGradients([(Tensor(Double(1)), v)])
        // A float64 variable sees the float32-rounded learning rate.
        #expect(try v.untrackedValue.item() == 1 - Double(Float(0.1)))
        #expect(opt.learningRate.numericValue == Double(Float(0.1)))
        opt.learningRate = 0.05
        #expect(opt.learningRate.numericValue == Double(Float(0.05)))
        opt.lr = 0.2
        #expect(opt.lr.numericValue == Double(Float(0.2)))
        #expect(try opt.config["learning_rate"] == .double(Double(Float(0.2))))
    }

    @Test func closureHyperparametersAreEvaluatedEachStep() throws {
        let calls = Mutex(0)
        let opt = try SGD(learningRate: .closure { calls.withLock { $0 += 1; return Double($0) * 0.1 } })
        let v = Variable(Tensor(Float(0)), name: "v")
        try opt.applyGradients([(Tensor(Float(1)), v)])
        try opt.applyGradients([(Tensor(Float(1)), v)])
        #expect(calls.withLock { $0 } == 2)
        #expect(try floats(v) == [-(Float(0.1)) - Float(0.2)])
        // config evaluates it too (Keras' _serialize_hyperparameter).
        #expect(try opt.config["learning_rate"] == .double(0.30000000000000004))
    }

    @Test func tensorAndScheduleHyperparameters() throws {
        let opt = try SGD(learningRate: .tensor(Tensor(Float(0.5))))
        let v = Variable(Tensor(Float(0)), name: "v")
        try opt.applyGradients([(Tensor(Float(1)), v)])
        #expect(try floats(v) == [-0.5])
        opt.learningRate = .schedule(ExponentialDecay(initialLearningRate: 1, decaySteps: 1, decayRate: 0.5))
        try opt.applyGradients([(Tensor(Float(1)), v)])  // step 1: 0.5
        try opt.applyGradients([(Tensor(Float(1)), v)])  // step 2: 0.25
        #expect(try floats(v) == [-1.25])
        #expect(opt.learningRate.scheduleValue?.className == "ExponentialDecay")
    }

    @Test func decayComposesWithTheSchedule() throws {
        let opt = try SGD(learningRate: .schedule(ClosureSchedule { step in pow(0.5, step) }), decay: 1)
        let v = Variable(Tensor(Double(0)), name: "v")
        for _ in 0..<3 { try opt.applyGradients([(Tensor(Double(1)), v)]) }
        // Σ 0.5^k / (1 + k) for k = 0, 1, 2
        #expect(abs(try v.untrackedValue.item() + (1 + 0.25 + 0.25 / 3)) < 1e-7)
    }

    @Test func unknownHyperparameterIsAnError() throws {
        let opt = try SGD()
        #expect(throws: OptimizerError.self) { try opt.hyper("beta_9") }
        #expect(opt.hyperparameterNames == ["learning_rate", "decay", "momentum"])
    }

    // MARK: Options

    @Test func optionValidation() throws {
        #expect(throws: OptimizerError.self) { try SGD(clipnorm: -1) }
        #expect(throws: OptimizerError.self) { try SGD(clipvalue: -1) }
        #expect(throws: OptimizerError.self) { try SGD(decay: -0.1) }
        let both = #expect(throws: OptimizerError.self) { try Adam(clipnorm: 1, globalClipnorm: 1) }
        #expect(both?.description.contains("global_clipnorm") == true)
        let transformer = #expect(throws: OptimizerError.self) { try SGD(clipnorm: 1, gradientTransformers: [{ $0 }]) }
        #expect(transformer?.description.contains("gradient_transformers") == true)
        let momentum = #expect(throws: OptimizerError.self) { try SGD(momentum: 1.5) }
        #expect(momentum?.description.contains("momentum") == true)
        let name = #expect(throws: OptimizerError.self) { try Adam(name: "bad name!") }
        #expect(name?.description.contains("bad name!") == true)
        #expect(try Adam(name: "outer/inner").name == "outer/inner")
        let unnamed = try Adam(name: "").name, next = try Adam(name: "").name
        #expect(unnamed.hasPrefix("adam") && next.hasPrefix("adam_") && unnamed != next)
        let opt = try SGD()
        try opt.setClipnorm(2)
        #expect(opt.clipnorm == 2)
        #expect(throws: OptimizerError.self) { try opt.setGlobalClipnorm(1) }
    }

    @Test func lrAliasWinsOverLearningRate() throws {
        let opt = try Adam(learningRate: 0.1, lr: 0.3)
        #expect(opt.learningRate.numericValue == Double(Float(0.3)))  // reading creates the float32 variable
    }

    @Test func gradientTransformersAndAggregatorRunInOrder() throws {
        let log = Mutex<[String]>([])
        let opt = try SGD(
            learningRate: 1,
            gradientAggregator: { pairs in
                log.withLock { $0.append("aggregate") }
                return try pairs.map { g, v in (try g.map { .dense(try $0.denseValue * 2) }, v) }  // two replicas
            },
            gradientTransformers: [{ pairs in
                log.withLock { $0.append("transform") }
                return try pairs.map { (.dense(try $0.0.denseValue + 1), $0.1) }
            }])
        let v = Variable(Tensor(Float(0)), name: "v")
        try opt.applyGradients([(Tensor(Float(1)), v)])
        #expect(log.withLock { $0 } == ["aggregate", "transform"])
        #expect(try floats(v) == [-3])
        try opt.applyGradients([(Gradient.dense(Tensor(Float(1))), v)], experimentalAggregateGradients: false)
        #expect(try floats(v) == [-5])
    }

    @Test func getGradientsNamesAVariableWithoutOne() throws {
        let a = Variable(Tensor(Float(2)), name: "a"), b = Variable(Tensor(Float(2)), name: "b")
        let opt = try SGD()
        #expect(try opt.getGradients({ try a * a }, params: [a]).map { try $0.item() } == [4])
        let error = #expect(throws: OptimizerError.self) { try opt.getGradients({ try a * a }, params: [a, b]) }
        #expect(error?.description.contains("'b'") == true)
    }

    // MARK: Custom optimizers

    @Test func customOptimizerTrainsAndSerializes() throws {
        let w = Variable(Tensor([3, -3] as [Float]), name: "w")
        let opt = try SignDescent(learningRate: 0.5)
        for _ in 0..<4 { try opt.minimize({ try (w * w).sum() }, varList: [w]) }
        #expect(try floats(w) == [1, -1])
        #expect(try opt.slot(for: w, named: "count").untrackedValue.scalars(as: Float.self) == [4, 4])
        let sparse = try IndexedSlices(values: Tensor(shape: [1], scalars: [1] as [Float]), indices: [0], denseShape: [2])
        try opt.applyGradients([(Gradient.sparse(sparse), w)])
        #expect(try floats(w) == [0.5, -1])

        Optimizer.register(className: "SignDescent") { config, _ in
            try SignDescent(learningRate: .number(config["learning_rate"]?.doubleValue ?? 0.1),
                            name: config["name"]?.stringValue ?? "SignDescent")
        }
        let json = try opt.serializedJSON()
        #expect(json.contains("\"class_name\": \"SignDescent\""))
        let copy = try Optimizer.deserialize(json: json)
        #expect(copy is SignDescent)
        #expect(try copy.serializedJSON() == json)
    }

    @Test func customOptimizerWithoutHooksFailsClearly() throws {
        final class Incomplete: Optimizer {}
        let opt = try Incomplete(name: "Incomplete")
        let v = Variable(Tensor(Float(1)), name: "v")
        let error = #expect(throws: OptimizerError.self) { try opt.applyGradients([(Tensor(Float(1)), v)]) }
        #expect(error?.description.contains("resourceApplyDense") == true)
    }

    /// Updates run with denormals flushed (TensorFlow's kernels do), a custom rule too; the caller's mode
    /// is restored after.
    @Test func updatesRunWithDenormalsFlushed() throws {
        final class Probe: Optimizer {
            nonisolated(unsafe) var flushed: [Bool] = []
            override func resourceApplyDense(_ g: Tensor, _ v: Variable, _ c: Coefficients) throws {
                flushed.append(DenormalFlushing.isActive)
            }
        }
        let opt = try Probe(name: "Probe")
        let v = Variable(Tensor(Float(1)), name: "v")
        #expect(!DenormalFlushing.isActive)
        try opt.applyGradients([(Tensor(Float(1)), v)])
        #expect(opt.flushed == [true])
        #expect(!DenormalFlushing.isActive)
    }

    @Test func aDenseKernelWithTooManySlotsIsAThrownError() throws {
        final class FiveSlots: Optimizer {
            static let names = ["a", "b", "c", "d", "e"]
            override func createSlots(for variables: [Variable]) throws {
                for v in variables { for s in Self.names { try addSlot(v, s) } }
            }
            override var fusesDenseUpdates: Bool { true }
            override var denseKernelSlotNames: [String] { Self.names }
            override func denseKernel(for coefficients: Coefficients) -> DenseKernel? { { _, _ in } }
        }
        let opt = try FiveSlots(name: "FiveSlots")
        let v = Variable(Tensor(Float(1)), name: "v")
        let error = #expect(throws: OptimizerError.self) { try opt.applyGradients([(Tensor(Float(1)), v)]) }
        #expect(error?.description.contains("at most 4 slots") == true)
    }

    // MARK: Serialization

    @Test func deserializeByNameAndErrors() throws {
        #expect(try Optimizer.deserialize(json: "adam") is Adam)
        #expect(try Optimizer.deserialize(json: "\"SGD\"") is SGD)
        let unknown = #expect(throws: OptimizerError.self) { try Optimizer.deserialize(json: #"{"class_name": "Adamm", "config": {}}"#) }
        #expect(unknown?.description.contains("Adamm") == true)
        let keyword = #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"class_name": "Adam", "config": {"momentum": 0.9}}"#)
        }
        #expect(keyword?.description.contains("momentum") == true)
        let type = #expect(throws: OptimizerError.self) {
            try Optimizer.deserialize(json: #"{"class_name": "Adam", "config": {"beta_1": "high"}}"#)
        }
        #expect(type?.description.contains("beta_1") == true)
        #expect(throws: JSONError.self) { try Optimizer.deserialize(json: #"{"config": {}}"#) }
        // lr is accepted as an alias, and wins.
        let sgd = try Optimizer.deserialize(json: #"{"class_name": "SGD", "config": {"lr": 0.3, "learning_rate": 0.1}}"#)
        #expect(sgd.learningRate.numericValue == Double(Float(0.3)))
        #expect(try SGD.fromConfig(["learning_rate": 0.5]).learningRate.numericValue == 0.5)
        #expect(try SGD.fromConfig(["learning_rate": 0.5]).config["learning_rate"] == 0.5)
    }

    // MARK: The fused multi-tensor path

    @Test func fusedPathMatchesPerVariableReference() throws {
        /// Adam through its own subclass (which disables the fused path) must match the fused built-in.
        final class ReferenceAdam: Adam {}
        var generator = SeededGenerator(seed: 7)
        let shapes = (0..<300).map { [1 + $0 % 7, 1 + $0 % 5] } + [[300, 400]]
        let values = try shapes.map { try Tensor.randomNormal(shape: $0, using: &generator) }
        let fused = values.enumerated().map { Variable($1, name: "f\($0)") }
        let reference = values.enumerated().map { Variable($1, name: "r\($0)") }
        let a = try Adam(learningRate: 0.01, amsgrad: true), b = try ReferenceAdam(learningRate: 0.01, amsgrad: true)
        for _ in 0..<3 {
            let grads = try shapes.map { try Tensor.randomNormal(shape: $0, using: &generator) }
            try a.applyGradients(Array(zip(grads, fused)))
            try b.applyGradients(Array(zip(grads, reference)))
        }
        for (f, r) in zip(fused, reference) {
            #expect(f.untrackedValue == r.untrackedValue)
        }
    }
}

private func pow(_ x: Double, _ y: Double) -> Double {
    var r = 1.0
    for _ in 0..<Int(y) { r *= x }
    return r
}
