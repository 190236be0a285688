@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Muon (Jordan et al.; Liu et al. 2025), as Keras 3.15.1's `Muon` computes it with the TensorFlow
    /// backend: momentum orthogonalized by a Newton–Schulz iteration for 2-D variables, AdamW for the others.
    ///
    /// **Which rule.** A variable uses AdamW when it is not exactly 2-D (rank 0, 1, 3, ...), when
    /// `exclude_embeddings` is set and its path (``Variable/name``) contains `embedding` (any case), or when
    /// one of the `exclude_layers` regular expressions matches somewhere in its path; every other variable
    /// uses the Muon step. Decided once, at the build.
    ///
    /// **Muon step** (μ = `momentum`, every operation rounded to the variable's dtype; `μ − 1` is a Python
    /// number, computed in double and rounded once):
    /// ```
    /// m ← m + (g + m·(μ − 1))
    /// d = g + μ·m                   (nesterov; otherwise d = m)
    /// U = NS(d)                     (below)
    /// var ← var − ((lr·U) · sqrtf(max(rows, cols))) · rms_rate     (rms_rate None: var ← var − lr·U)
    /// ```
    /// `NS` (`zeropower_via_newtonschulz5`), with X = d, or dᵀ when rows > cols (so X is wide):
    /// ```
    /// X ← X / (sqrt(sum(X·X)) + 1e-7)              (Frobenius norm)
    /// ns_steps times:  A = X·Xᵀ;  B = b·A + (c·A)·A;  X ← a·X + B·X
    /// ```
    /// then transposed back. The products run on OpenBLAS GEMM (``DescentTensor/Tensor/matmul(_:transposeA:transposeB:)``)
    /// with the transposes as BLAS flags: for a tall d the iteration runs on Z = Xᵀ = d directly
    /// (`A = ZᵀZ`, `Z ← a·Z + Z·Bᵀ`), which is the same arithmetic transposed. Keras computes these in
    /// float32 with TensorFlow's matmul (Eigen/oneDNN), not bfloat16 (torch.optim.Muon does bfloat16);
    /// GEMM sums in another order, so results agree with Keras to rounding, not bit for bit. Measured against
    /// Keras 3.15.1 (12 steps, [4,4], [8,4], [4,8], [32,16]): at most 3.5e-7 relative on the variables for
    /// learning rates up to 0.1, 2.2e-6 at 1.0; U itself differs by about 1e-6 (norm-wise), as far from
    /// Keras as Keras is from the exact (float64) iteration. Two sources: GEMM's summation order (with
    /// TensorFlow's norm and OpenBLAS' products the small cases are bit for bit) and the Frobenius norm's
    /// reduction order (TensorFlow's `reduce_sum` and Descent's `sum` agree on about half the inputs).
    ///
    /// **AdamW step** (Keras' `_adamw_update_step`), with `lr_a = cast(lr · adam_lr_ratio)` (a float32
    /// product), `t = iterations + 1`, β cast to the dtype:
    /// ```
    /// α   = lr_a · sqrt(1 − pow(β₂, t)) / (1 − pow(β₁, t))
    /// m   ← m + (g − m)·(1 − β₁);   v ← v + (g² − v)·(1 − β₂)
    /// var ← var − (m·α) / (sqrt(v) + ε)
    /// ```
    /// **Weight decay** (Muon's own `_apply_weight_decay`, before the step, for every variable
    /// ``Keras3/Optimizer/usesWeightDecay(_:)`` keeps): `var ← var − (var·wd)·lr` with `wd` =
    /// `adam_weight_decay` for AdamW variables and `weight_decay` for Muon ones (either may be `nil`: none;
    /// Muon applies `adam_weight_decay` even when `weight_decay` is `nil`).
    ///
    /// **Variables**, per model variable in order: `<var>_momentum`, then `<var>_velocity` for the AdamW
    /// ones only. Sparse gradients are made dense where Keras' `add`/`subtract` make them dense (the Muon
    /// step, `g − m`), and `g²` squares each repeated row before the sum.
    ///
    /// **float64**: Keras 3.15.1 cannot run the Muon step on a float64 variable with `rms_rate` set (its
    /// `lr_adjust` multiplies the float64 update by a float32 square root: TensorFlow raises
    /// InvalidArgumentError after the weight decay and momentum were written); Descent throws at the build
    /// instead. With `rms_rate` `nil`, and on the AdamW path, float64 works as in Keras.
    open class Muon: Optimizer {
        /// β₁ of the AdamW path (`adam_beta_1`).
        public let adamBeta1: ConfigNumber
        /// β₂ of the AdamW path (`adam_beta_2`).
        public let adamBeta2: ConfigNumber
        /// The AdamW path's weight decay (`adam_weight_decay`; `nil`: none).
        public let adamWeightDecay: ConfigNumber?
        /// ε of the AdamW path (`epsilon`).
        public let epsilon: ConfigNumber
        /// Regular expressions; a variable whose path matches one uses AdamW (`exclude_layers`).
        public let excludeLayers: [String]
        /// Variables whose path contains "embedding" use AdamW (`exclude_embeddings`).
        public let excludeEmbeddings: Bool
        /// The Newton–Schulz coefficients a, b, c (`muon_a`, `muon_b`, `muon_c`).
        public let muonA: ConfigNumber, muonB: ConfigNumber, muonC: ConfigNumber
        /// The AdamW path's learning rate over the main one (`adam_lr_ratio`).
        public let adamLearningRateRatio: ConfigNumber
        /// The Muon momentum μ (`momentum`).
        public let momentum: ConfigNumber
        /// Newton–Schulz iterations (`ns_steps`, 0...1000).
        public let nsSteps: Int
        /// Nesterov momentum for the Muon step (`nesterov`).
        public let nesterov: Bool
        /// The Moonlight update scale (`rms_rate`; `nil`: the update is not rescaled).
        public let rmsRate: ConfigNumber?
        /// The momentum of every variable, by position of the variables built with.
        public private(set) var momentums: [Variable] = []
        /// The second moment of the AdamW variables, `nil` for the Muon ones (Keras' `adam_velocities`).
        public private(set) var velocities: [Variable?] = []

        /// Creates Keras 3's Muon with its defaults (`weight_decay` and `adam_weight_decay` 0.004).
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a number float32 cannot hold,
        ///   `ns_steps` outside 0...1000, a pattern of `exclude_layers` that is not a regular expression,
        ///   and the base's errors (see ``Keras3/Optimizer/init(learningRate:name:options:)``).
        public init(learningRate: Hyperparameter = 0.001, adamBeta1: ConfigNumber = 0.9, adamBeta2: ConfigNumber = 0.999,
                    adamWeightDecay: ConfigNumber? = 0.004, epsilon: ConfigNumber = 1e-7, weightDecay: ConfigNumber? = 0.004,
                    excludeLayers: [String] = [], excludeEmbeddings: Bool = true, muonA: ConfigNumber = 3.4445,
                    muonB: ConfigNumber = -4.7750, muonC: ConfigNumber = 2.0315, adamLearningRateRatio: ConfigNumber = 1,
                    momentum: ConfigNumber = 0.95, nsSteps: Int = 5, nesterov: Bool = true, rmsRate: ConfigNumber? = 0.2,
                    name: String = "", options: Options = .defaults) throws {
            var fields: [(String, ConfigNumber)] = [
                ("adam_beta_1", adamBeta1), ("adam_beta_2", adamBeta2), ("epsilon", epsilon), ("muon_a", muonA),
                ("muon_b", muonB), ("muon_c", muonC), ("adam_lr_ratio", adamLearningRateRatio), ("momentum", momentum),
            ]
            if let adamWeightDecay { fields.append(("adam_weight_decay", adamWeightDecay)) }
            if let rmsRate { fields.append(("rms_rate", rmsRate)) }
            for (field, n) in fields { try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName) }
            guard (0...1000).contains(nsSteps) else {
                throw OptimizerError.invalidArgument(field: "ns_steps", message: "Muon expects 0...1000 Newton-Schulz iterations, received: \(nsSteps)")
            }
            for pattern in excludeLayers {
                do { _ = try Regex(pattern) } catch {
                    throw OptimizerError.invalidArgument(field: "exclude_layers", message: "'\(pattern)' is not a regular expression: \(error)")
                }
            }
            self.adamBeta1 = adamBeta1
            self.adamBeta2 = adamBeta2
            self.adamWeightDecay = adamWeightDecay
            self.epsilon = epsilon
            self.excludeLayers = excludeLayers
            self.excludeEmbeddings = excludeEmbeddings
            self.muonA = muonA
            self.muonB = muonB
            self.muonC = muonC
            self.adamLearningRateRatio = adamLearningRateRatio
            self.momentum = momentum
            self.nsSteps = nsSteps
            self.nesterov = nesterov
            self.rmsRate = rmsRate
            var options = options
            options.weightDecay = weightDecay
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Muon" }

        /// Whether `variable` gets the AdamW step (Keras' `_should_use_adamw`; see the type's doc).
        public func usesAdamW(_ variable: Variable) -> Bool {
            if variable.shape.count != 2 { return true }
            if excludeEmbeddings && variable.name.lowercased().contains("embedding") { return true }
            for pattern in excludeLayers {
                // Checked in `init`.
                if let regex = try? Regex(pattern), variable.name.contains(regex) { return true }
            }
            return false
        }

        open override func buildVariables(_ variables: [Variable]) throws {
            var ms: [Variable] = [], vs: [Variable?] = []
            for v in variables {
                let adam = usesAdamW(v)
                if !adam && v.dtype == .float64 && rmsRate != nil {
                    throw OptimizerError.gradientMismatch(
                        variable: v.name, message: "Keras 3's Muon cannot update a float64 variable with rms_rate set (lr_adjust multiplies the float64 update by a float32 tensor: TensorFlow's InvalidArgumentError); use float32, rms_rate None, or exclude_layers to update it with AdamW")
                }
                ms.append(try addVariable(from: v, name: "momentum"))
                vs.append(adam ? try addVariable(from: v, name: "velocity") : nil)
            }
            momentums = ms
            velocities = vs
        }

        open override func resetClassBuild() {
            momentums = []
            velocities = []
        }

        open override func weightDecayRate(for variable: Variable) -> Double? {
            guard usesWeightDecay(variable), let i = variableIndex[variable.id] else { return nil }
            return (velocities[i] != nil ? adamWeightDecay : options.weightDecay)?.value
        }

        open override var appliesWeightDecay: Bool { options.weightDecay != nil || adamWeightDecay != nil }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let t = try c["local_step"]
            // `learning_rate * self.adam_lr_ratio`: a float32 product, then cast to the dtype.
            let adamLR = TypedScalar(Double(try currentLearningRate() * Float(adamLearningRateRatio.value)), c.dtype)
            let beta1Power = TypedScalar.castFromFloat32(adamBeta1.value, c.dtype).pow(t)
            let beta2Power = TypedScalar.castFromFloat32(adamBeta2.value, c.dtype).pow(t)
            c.set("adam_alpha", adamLR * (1 - beta2Power).squareRoot() / (1 - beta1Power))
            c.set("adam_one_minus_beta_1", c.scalar(1 - adamBeta1.value))
            c.set("adam_one_minus_beta_2", c.scalar(1 - adamBeta2.value))
            c.set("epsilon", c.scalar(epsilon.value))
            c.set("momentum", c.scalar(momentum.value))
            c.set("momentum_minus_one", c.scalar(momentum.value - 1))
            c.set("muon_a", c.scalar(muonA.value))
            c.set("muon_b", c.scalar(muonB.value))
            c.set("muon_c", c.scalar(muonC.value))
            c.set("ns_epsilon", c.scalar(1e-7))
            if let rmsRate { c.set("rms_rate", c.scalar(rmsRate.value)) }
        }

        /// True for Muon itself (a subclass may override ``updateStep(_:_:_:)`` with shared state, so it
        /// opts in itself): one variable's update touches only that variable and its slots, and
        /// Newton–Schulz on several matrices runs faster one matrix per thread (see BENCHMARKS.md).
        open override var updatesVariablesIndependently: Bool { type(of: self) == Keras3.Muon.self }

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            if let v = velocities[i] {
                try adamWStep(gradient, variable, momentums[i], v, c)
            } else {
                try muonStep(gradient, variable, momentums[i], c)
            }
        }

        /// Keras' `_muon_update_step`.
        private func muonStep(_ gradient: Gradient, _ variable: Variable, _ m: Variable, _ c: Coefficients) throws {
            let g = try densified(gradient)
            let mu = try c["momentum"].value, muMinusOne = try c["momentum_minus_one"].value
            try m.assign(try m.untrackedValue + (g + m.untrackedValue * muMinusOne))
            let direction = nesterov ? try g + m.untrackedValue * mu : m.untrackedValue
            let orthogonal = try newtonSchulz(direction, c)
            var update = try orthogonal * (try c["lr"].value)
            if rmsRate != nil {
                // `x * ops.sqrt(ops.maximum(rows, cols)) * rms_rate`: an int32 maximum, float32 sqrt.
                let scale = Double(Float(Swift.max(variable.shape[0], variable.shape[1])).squareRoot())
                update = try (update * scale) * (try c["rms_rate"].value)
            }
            try variable.assign(try variable.untrackedValue - update)
        }

        /// Keras' `zeropower_via_newtonschulz5` on a 2-D tensor, products on GEMM with BLAS transposes.
        func newtonSchulz(_ d: Tensor, _ c: Coefficients) throws -> Tensor {
            let a = try c["muon_a"].value, b = try c["muon_b"].value, cc = try c["muon_c"].value
            // Keras transposes a tall matrix; here Z = d stays as it is and the products say Zᵀ.
            let tall = d.shape[0] > d.shape[1]
            let norm = try d.squared().sum().sqrt()
            var x = try d / (norm + (try c["ns_epsilon"].value))
            for _ in 0..<nsSteps {
                let gram = tall ? try x.matmul(x, transposeA: true) : try x.matmul(x, transposeB: true)
                let poly = try (gram * b) + (gram * cc).matmul(gram)
                x = try (x * a) + (tall ? x.matmul(poly, transposeB: true) : poly.matmul(x))
            }
            return x.untracked
        }

        /// Keras' `_adamw_update_step`.
        private func adamWStep(_ gradient: Gradient, _ variable: Variable, _ m: Variable, _ v: Variable,
                               _ c: Coefficients) throws {
            let alpha = try c["adam_alpha"].value, eps = try c["epsilon"].value
            let omb1 = try c["adam_one_minus_beta_1"].value, omb2 = try c["adam_one_minus_beta_2"].value
            let g = try densified(gradient), g2 = try densifiedSquares(gradient)
            try m.assign(try m.untrackedValue + (g - m.untrackedValue) * omb1)
            try v.assign(try v.untrackedValue + (g2 - v.untrackedValue) * omb2)
            try variable.assign(try variable.untrackedValue - (m.untrackedValue * alpha) / (v.untrackedValue.sqrt() + eps))
        }

        open override var ownConfig: JSONObject {
            get throws {
                func number(_ n: ConfigNumber?) -> JSONValue { n?.json ?? .null }
                return [
                    "adam_beta_1": adamBeta1.json, "adam_beta_2": adamBeta2.json, "epsilon": epsilon.json,
                    "exclude_layers": .array(excludeLayers.map { .string($0) }), "muon_a": muonA.json,
                    "muon_b": muonB.json, "muon_c": muonC.json, "adam_lr_ratio": adamLearningRateRatio.json,
                    "momentum": momentum.json, "ns_steps": .int(nsSteps), "nesterov": .bool(nesterov),
                    "exclude_embeddings": .bool(excludeEmbeddings), "adam_weight_decay": number(adamWeightDecay),
                    "rms_rate": number(rmsRate),
                ]
            }
        }

        /// The class's own config keys, in Keras' order.
        static let ownConfigKeys = [
            "adam_beta_1", "adam_beta_2", "epsilon", "exclude_layers", "muon_a", "muon_b", "muon_c", "adam_lr_ratio",
            "momentum", "ns_steps", "nesterov", "exclude_embeddings", "adam_weight_decay", "rms_rate",
        ]

        /// Rebuilds Keras 3's Muon from its config (`Muon.from_config`); `null` for `weight_decay`,
        /// `adam_weight_decay` or `rms_rate` turns it off, a missing key takes Keras' default.
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Muon", customObjects: customObjects)
            let base = try r.base(defaultWeightDecay: 0.004)
            let present = { (key: String) in config[key] != nil }
            let adamBeta1 = try r.number("adam_beta_1") ?? 0.9, adamBeta2 = try r.number("adam_beta_2") ?? 0.999
            let epsilon = try r.number("epsilon") ?? 1e-7
            let excludeLayers = try r.strings("exclude_layers") ?? []
            let muonA = try r.number("muon_a") ?? 3.4445, muonB = try r.number("muon_b") ?? -4.7750
            let muonC = try r.number("muon_c") ?? 2.0315
            let ratio = try r.number("adam_lr_ratio") ?? 1
            let momentum = try r.number("momentum") ?? 0.95
            let nsSteps = try r.int("ns_steps") ?? 5
            let nesterov = try r.bool("nesterov") ?? true
            let excludeEmbeddings = try r.bool("exclude_embeddings") ?? true
            let adamWeightDecay = present("adam_weight_decay") ? try r.number("adam_weight_decay") : 0.004
            let rmsRate = present("rms_rate") ? try r.number("rms_rate") : 0.2
            try r.finish(allowed: Self.ownConfigKeys)
            try self.init(learningRate: base.learningRate ?? 0.001, adamBeta1: adamBeta1, adamBeta2: adamBeta2,
                          adamWeightDecay: adamWeightDecay, epsilon: epsilon, weightDecay: base.options.weightDecay,
                          excludeLayers: excludeLayers, excludeEmbeddings: excludeEmbeddings, muonA: muonA, muonB: muonB,
                          muonC: muonC, adamLearningRateRatio: ratio, momentum: momentum, nsSteps: nsSteps,
                          nesterov: nesterov, rmsRate: rmsRate, name: base.name ?? "", options: base.options)
        }
    }
}
