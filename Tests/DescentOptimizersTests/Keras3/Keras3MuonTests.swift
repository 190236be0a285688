@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Testing

/// Keras 3's Muon: config, variables, the Muon/AdamW split, weight decay, numbers against Keras 3.15.1.
@Suite struct Keras3MuonTests {
    /// What Keras 3.15.1 wrote for `keras.optimizers.serialize(Muon(learning_rate=0.1, exclude_layers=["^out"],
    /// weight_decay=0.1, adam_weight_decay=0.05, rms_rate=0.25))`.
    static let muonJSON = #"{"module": "keras.optimizers", "class_name": "Muon", "config": {"name": "muon", "learning_rate": 0.10000000149011612, "weight_decay": 0.1, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "adam_beta_1": 0.9, "adam_beta_2": 0.999, "epsilon": 1e-07, "exclude_layers": ["^out"], "muon_a": 3.4445, "muon_b": -4.775, "muon_c": 2.0315, "adam_lr_ratio": 1, "momentum": 0.95, "ns_steps": 5, "nesterov": true, "exclude_embeddings": true, "adam_weight_decay": 0.05, "rms_rate": 0.25}, "registered_name": null}"#

    /// Keras 3.15.1's `serialize(Muon())` with the name "muon" (its defaults).
    static let defaultJSON = #"{"module": "keras.optimizers", "class_name": "Muon", "config": {"name": "muon", "learning_rate": 0.0010000000474974513, "weight_decay": 0.004, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "adam_beta_1": 0.9, "adam_beta_2": 0.999, "epsilon": 1e-07, "exclude_layers": [], "muon_a": 3.4445, "muon_b": -4.775, "muon_c": 2.0315, "adam_lr_ratio": 1, "momentum": 0.95, "ns_steps": 5, "nesterov": true, "exclude_embeddings": true, "adam_weight_decay": 0.004, "rms_rate": 0.2}, "registered_name": null}"#

    @Test func configRoundTripsByteForByte() throws {
        let opt = try Optimizer.deserialize(json: Self.muonJSON)
        #expect(opt is Keras3.Muon)
        #expect(try opt.serializedJSON() == Self.muonJSON)
        #expect(try Keras3.Muon(name: "muon").serializedJSON() == Self.defaultJSON)
        let fromEmpty = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Muon", "config": {"name": "muon"}}"#)
        #expect(try fromEmpty.serializedJSON() == Self.defaultJSON)
    }

    @Test func nullTurnsOffWeightDecayAndRMSRate() throws {
        let opt = try #require(try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Muon", "config": {"weight_decay": null, "adam_weight_decay": null, "rms_rate": null, "exclude_layers": null}}"#) as? Keras3.Muon)
        #expect(opt.options.weightDecay == nil && opt.adamWeightDecay == nil && opt.rmsRate == nil && opt.excludeLayers == [])
        #expect(!opt.appliesWeightDecay)
    }

    @Test func badOptionsThrowNamingTheField() throws {
        for (json, field) in [
            (#"{"ns_steps": -1}"#, "ns_steps"), (#"{"ns_steps": 2.5}"#, "ns_steps"), (#"{"exclude_layers": ["("]}"#, "exclude_layers"),
            (#"{"exclude_layers": "out"}"#, "exclude_layers"), (#"{"muon_a": 1e39}"#, "muon_a"), (#"{"nesterov": 1}"#, "nesterov"),
            (#"{"momentum_": 0.9}"#, "momentum_"), (#"{"rms_rate": "x"}"#, "rms_rate"),
        ] {
            do {
                _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "Muon", "config": "# + json + "}")
                Issue.record("expected an error for \(json)")
            } catch { #expect("\(error)".contains(field), "\(error)") }
        }
    }

    @Test func adamWVariablesAndSlotsAreChosenAsKeras3() throws {
        let opt = try Keras3.Muon(excludeLayers: ["^out"], name: "muon")
        let vars = [
            Variable(try Tensor.zeros(shape: [3, 2], dtype: .float32), name: "dense/kernel"),
            Variable(try Tensor.zeros(shape: [2], dtype: .float32), name: "dense/bias"),
            Variable(try Tensor.zeros(shape: [4, 2], dtype: .float32), name: "Token_Embedding/embeddings"),
            Variable(try Tensor.zeros(shape: [2, 2, 2], dtype: .float32), name: "conv/kernel"),
            Variable(try Tensor.zeros(shape: [2, 2], dtype: .float32), name: "out/kernel"),
            Variable(try Tensor.zeros(shape: [2, 2], dtype: .float32), name: "layer_out/kernel"),
        ]
        #expect(vars.map(opt.usesAdamW) == [false, true, true, true, true, false])
        try opt.build(vars)
        // Keras 3.15.1: [v.path for v in opt.variables] for the same variables.
        #expect(opt.weights.map(\.name) == [
            "muon/iteration", "muon/learning_rate", "muon/dense_kernel_momentum", "muon/dense_bias_momentum",
            "muon/dense_bias_velocity", "muon/Token_Embedding_embeddings_momentum", "muon/Token_Embedding_embeddings_velocity",
            "muon/conv_kernel_momentum", "muon/conv_kernel_velocity", "muon/out_kernel_momentum", "muon/out_kernel_velocity",
            "muon/layer_out_kernel_momentum",
        ])
        let keepEmbeddings = try Keras3.Muon(excludeEmbeddings: false)
        #expect(!keepEmbeddings.usesAdamW(vars[2]))
    }

    /// Three steps of `Muon(learning_rate=0.1, exclude_layers=["^out"], weight_decay=0.1, adam_weight_decay=0.05,
    /// rms_rate=0.25)` in Keras 3.15.1: a tall and a wide Muon matrix, an excluded matrix and a bias (AdamW),
    /// each with its own weight decay.
    @Test func trajectoryMatchesKeras3() throws {
        let opt = try Optimizer.deserialize(json: Self.muonJSON)
        let tall = Variable(try Tensor(shape: [3, 2], scalars: [0.5, -1.0, 1.5, 0.25, -0.75, 2.0] as [Float]), name: "dense/kernel")
        let wide = Variable(try Tensor(shape: [2, 3], scalars: [1.0, 0.5, -0.5, 0.25, -1.5, 2.0] as [Float]), name: "dense_1/kernel")
        let out = Variable(try Tensor(shape: [2, 2], scalars: [0.1, 0.2, 0.3, 0.4] as [Float]), name: "out/kernel")
        let bias = Variable(Tensor([0.5, -0.5] as [Float]), name: "dense/bias")
        let grads: [[[Float]]] = [
            [[0.1, -0.2, 0.3, 0.4, -0.5, 0.6], [0.2, 0.1, -0.3, 0.4, -0.1, 0.05], [1.0, -1.0, 0.5, 0.25], [0.3, -0.6]],
            [[-0.3, 0.1, 0.2, -0.4, 0.6, 0.1], [-0.1, 0.3, 0.2, 0.1, 0.2, -0.4], [-0.5, 0.5, 0.75, -0.25], [-0.2, 0.4]],
            [[0.05, 0.15, -0.25, 0.35, 0.45, -0.55], [0.3, -0.2, 0.1, -0.3, 0.2, 0.6], [0.2, 0.1, -0.1, 0.3], [0.1, 0.1]],
        ]
        let vars = [tall, wide, out, bias]
        for g in grads {
            try opt.applyGradients(try zip(g, vars).map { (try Tensor(shape: $1.shape, scalars: $0), $1) })
        }
        // The Muon matrices go through GEMM (another summation order than TensorFlow's matmul): to 1e-5.
        try expectClose(tall, [0.49929866194725037, -0.9715525507926941, 1.3888858556747437, 0.1922903060913086, -0.767357587814331, 1.885211706161499])
        try expectClose(wide, [0.9197547435760498, 0.4475792944431305, -0.4659780263900757, 0.18203780055046082, -1.48542320728302, 1.931250810623169])
        // The AdamW path is bit for bit.
        #expect(out.untrackedValue.doubles == [-0.05851837992668152, 0.33732640743255615, 0.028864040970802307, 0.26201868057250977])
        #expect(bias.untrackedValue.doubles == [0.3513065278530121, -0.3768731951713562])
    }

    /// Two steps of `Muon(learning_rate=0.1)` in Keras 3.15.1 with IndexedSlices repeating an index, on a Muon
    /// matrix and an embedding (AdamW: its `square(g)` squares each repeated row before the sum).
    @Test func sparseTrajectoryMatchesKeras3() throws {
        let opt = try Keras3.Muon(learningRate: 0.1)
        let k = Variable(try Tensor(shape: [3, 3], scalars: [0.5, -1.0, 0.25, 1.5, 0.25, -0.5, -0.75, 2.0, 1.0] as [Float]), name: "k")
        let e = Variable(try Tensor(shape: [3, 2], scalars: [0.5, -1.0, 1.5, 0.25, -0.75, 2.0] as [Float]), name: "token_embedding/embeddings")
        let steps: [[Float]] = [[0.1, 0.2, -0.3, 0.4, -0.5, 0.6, 0.7, 0.8, -0.9], [-0.2, 0.1, 0.3, 0.5, 0.5, -0.1, 0.2, -0.3, 0.4]]
        for s in steps {
            let rows = try Tensor(shape: [3, 3], scalars: s)
            let firstTwo = try Tensor(shape: [3, 2], scalars: [s[0], s[1], s[3], s[4], s[6], s[7]])
            try opt.applyGradients([
                (.sparse(try IndexedSlices(values: rows, indices: [2, 0, 2], denseShape: [3, 3])), k),
                (.sparse(try IndexedSlices(values: firstTwo, indices: [1, 1, 0], denseShape: [3, 2])), e),
            ])
        }
        try expectClose(k, [0.444399356842041, -0.9835480451583862, 0.23321716487407684, 1.498800277709961, 0.24980004131793976, -0.4996000826358795, -0.7698711156845093, 1.9626898765563965, 1.0038443803787231])
        #expect(e.untrackedValue.doubles == [0.31476467847824097, -1.1357543468475342, 1.2952810525894165, 0.27236542105674744, -0.7494001388549805, 1.998400330543518])
    }

    /// Muon applies `adam_weight_decay` to its AdamW variables even without `weight_decay` (its own
    /// `_apply_weight_decay`; the base's would skip every variable).
    @Test func adamWeightDecayAppliesWithoutWeightDecay() throws {
        let opt = try Keras3.Muon(learningRate: 0.5, adamWeightDecay: 0.5, weightDecay: nil)
        let bias = Variable(Tensor([1] as [Float]), name: "bias"), kernel = Variable(try Tensor.ones(shape: [2, 2], dtype: .float32), name: "kernel")
        #expect(opt.appliesWeightDecay)
        try opt.applyGradients([(Tensor([0] as [Float]), bias), (try Tensor.zeros(shape: [2, 2], dtype: .float32), kernel)])
        #expect(bias.untrackedValue.doubles == f32([0.75]))  // 1 − 1·0.5·0.5, then a zero Adam step
        #expect(kernel.untrackedValue.doubles == f32([1, 1, 1, 1]))  // no decay, and NS(0) = 0
        let excluded = try Keras3.Muon(learningRate: 0.5, adamWeightDecay: 0.5)
        try excluded.excludeFromWeightDecay(names: ["bias"])
        let b2 = Variable(Tensor([1] as [Float]), name: "bias")
        try excluded.applyGradients([(Tensor([0] as [Float]), b2)])
        #expect(b2.untrackedValue.doubles == f32([1]))
    }

    /// The tall case runs on the untransposed matrix with BLAS transposes; it is Keras' transposed computation.
    @Test func tallNewtonSchulzIsTheTransposedWideOne() throws {
        let opt = try Keras3.Muon()
        var c = Coefficients(dtype: .float32, iteration: 0)
        try opt.prepare(&c)
        let tall = try Tensor(shape: [4, 2], scalars: [0.3, -1.2, 0.5, 0.8, -0.7, 0.1, 1.1, 0.4] as [Float])
        let viaFlags = try opt.newtonSchulz(tall, c)
        let viaTranspose = try opt.newtonSchulz(try tall.transposed(), c).transposed()
        #expect(viaFlags.shape == [4, 2])
        for (x, y) in zip(viaFlags.doubles, viaTranspose.doubles) { #expect(abs(x - y) <= 1e-6 * Swift.max(1, abs(y))) }
        // The rows of Uᵀ are near-orthonormal (singular values pushed into about (0.5, 1.5)).
        let gram = try viaFlags.matmul(viaFlags, transposeA: true).doubles
        #expect(gram[0] > 0.4 && gram[0] < 1.6 && gram[3] > 0.4 && gram[3] < 1.6 && abs(gram[1]) < 0.5)
    }

    /// Keras 3.15.1 raises TensorFlow's InvalidArgumentError mid-step for a float64 Muon matrix with
    /// `rms_rate` set; Descent throws before any write. Without `rms_rate` float64 works.
    @Test func float64MuonMatrixWithRMSRateThrowsBeforeAnyWrite() throws {
        let k = Variable(try Tensor.ones(shape: [2, 2], dtype: .float64), name: "k")
        let opt = try Keras3.Muon()
        do {
            try opt.applyGradients([(try Tensor.ones(shape: [2, 2], dtype: .float64), k)])
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("'k'") || "\(error)".contains("k:") || "\(error)".contains("rms_rate"), "\(error)") }
        #expect(k.untrackedValue.doubles == [1, 1, 1, 1] && !opt.isBuilt && opt.iterationCount == 0)
        let plain = try Keras3.Muon(learningRate: 0.1, weightDecay: nil, rmsRate: nil)
        try plain.applyGradients([(try Tensor(shape: [2, 2], scalars: [1.0, 0.0, 0.0, 1.0]), k)])
        // d = g + 0.95·g = 1.95·I; NS(1.95·I) is a multiple of I; the exact value is checked by the replay harness.
        #expect(k.untrackedValue.doubles[1] == 1 && k.untrackedValue.doubles[0] < 1)
    }

    private func expectClose(_ v: Variable, _ expected: [Double], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let got = v.untrackedValue.doubles
        #expect(got.count == expected.count, sourceLocation: sourceLocation)
        for (x, y) in zip(got, expected) {
            #expect(abs(x - y) <= 1e-5 * Swift.max(1, abs(y)), "\(v.name): \(got) vs Keras \(expected)", sourceLocation: sourceLocation)
        }
    }

    /// Several matrices update side by side, one per thread (``Keras3/Optimizer/updatesVariablesIndependently``),
    /// with the same values, bit for bit, as one after the other on one thread; AdamW-path and
    /// different-sized variables mixed in.
    @Test func matricesUpdatedSideBySideMatchOneAfterTheOther() throws {
        func run(threads: Int) throws -> [[Double]] {
            try ThreadPool.withThreadCount(threads) {
                var rng = SeededGenerator(seed: 7)
                let shapes = [[48, 32], [32, 48], [40, 40], [48, 32], [16], [24, 8]]
                let vars = try shapes.enumerated().map { i, s in
                    Variable(try Tensor.randomUniform(shape: s, min: -1, max: 1, using: &rng), name: "layer\(i)/kernel")
                }
                let opt = try Keras3.Muon(name: "muon")
                for _ in 0..<3 {
                    let grads = try shapes.map { try Tensor.randomUniform(shape: $0, min: -1, max: 1, using: &rng) }
                    try opt.applyGradients(Array(zip(grads, vars)))
                }
                return vars.map { $0.untrackedValue.doubles } + opt.weights.map { $0.untrackedValue.doubles }
            }
        }
        let one = try run(threads: 1), two = try run(threads: 2)
        #expect(one == two)
    }

    @Test func aSubclassIsUpdatedOneVariableAtATime() throws {
        final class Custom: Keras3.Muon {}
        #expect(try Keras3.Muon(name: "m").updatesVariablesIndependently)
        #expect(try !Custom(name: "c").updatesVariablesIndependently)
    }

}
