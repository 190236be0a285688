@testable import DescentOptimizers
import DescentAutodiff
import DescentTensor
import Foundation
import Testing

/// Keras 3's Lion, RMSprop, Nadam, Adamax and Lamb: configs as Keras 3.15.1 writes them, defaults, option
/// errors, trajectories taken from Keras (TensorFlow backend), and the fused kernels against the reference
/// `updateStep`.
@Suite struct Keras3ElementwiseTests {
    // MARK: - Fixed trajectories from Keras 3.15.1

    /// The variable of the trajectory checks (float32, shape [3, 2]).
    static let start: [Float] = [0.5, -1.0, 1.5, 0.25, -0.75, 2.0]
    /// Three dense gradients.
    static let denseGradients: [[Float]] = [
        [0.1, -0.2, 0.3, 0.05, -0.4, 0.25], [-0.3, 0.1, 0.2, -0.15, 0.05, 0.35], [0.2, 0.2, -0.1, 0.4, 0.3, -0.05],
    ]
    /// Three sparse gradients, rows at indices [2, 0, 2] (row 2 repeated, row 1 absent).
    static let sparseRows: [[Float]] = [
        [0.1, -0.2, 0.3, 0.05, -0.4, 0.25], [0.2, 0.1, -0.3, 0.15, 0.05, -0.35], [-0.1, 0.3, 0.2, 0.2, 0.3, 0.1],
    ]

    /// Runs the three steps on a fresh variable and returns its values.
    static func trajectory(_ opt: Keras3.Optimizer, sparse: Bool) throws -> [Double] {
        let w = Variable(try Tensor(shape: [3, 2], scalars: start), name: "w")
        for s in 0..<3 {
            let g: Gradient = sparse
                ? .sparse(try IndexedSlices(values: try Tensor(shape: [3, 2], scalars: sparseRows[s]), indices: [2, 0, 2], denseShape: [3, 2]))
                : .dense(try Tensor(shape: [3, 2], scalars: denseGradients[s]))
            try opt.applyGradients([(g, w)])
        }
        return w.untrackedValue.doubles
    }

    /// `make` with the values Keras 3 printed for the same steps (`v.numpy()` after each run).
    static func expectTrajectory(_ make: () throws -> Keras3.Optimizer, dense: [Double], sparse: [Double],
                                 tolerance: Double = 0, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (isSparse, want) in [(false, dense), (true, sparse)] {
            let got = try trajectory(try make(), sparse: isSparse)
            let worst = zip(got, want).map { abs($0 - $1) / max(abs($1), 1) }.max() ?? .nan
            #expect(got.count == want.count && worst <= tolerance, "\(isSparse ? "sparse" : "dense"): \(got) vs \(want)",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func lionMatchesKeras3() throws {
        try Self.expectTrajectory({ try Keras3.Lion(learningRate: 0.1, beta1: 0.8) },
            dense: [0.4000000059604645, -1.100000023841858, 1.399999976158142, 0.15000000596046448, -0.8500000238418579, 1.899999976158142],
            sparse: [0.4000000059604645, -1.3000000715255737, 1.5, 0.25, -0.8500000238418579, 1.899999976158142])
    }

    @Test func rmspropMatchesKeras3() throws {
        try Self.expectTrajectory({ try Keras3.RMSprop(learningRate: 0.1, momentum: 0.5, centered: true) },
            dense: [0.20335684716701508, -0.863329291343689, 0.7110403776168823, -0.17468824982643127, -0.4322054386138916, 1.0237445831298828],
            sparse: [0.1161336675286293, -2.3629446029663086, 1.5, 0.25, -0.7255952954292297, 1.93412184715271])
        try Self.expectTrajectory({ try Keras3.RMSprop(learningRate: 0.1) },
            dense: [0.3092765808105469, -1.0528907775878906, 1.0936646461486816, -0.06093445420265198, -0.6764971017837524, 1.4611082077026367],
            sparse: [0.2695607542991638, -1.8711066246032715, 1.5, 0.25, -0.8191068768501282, 1.8873037099838257])
    }

    @Test func nadamMatchesKeras3() throws {
        try Self.expectTrajectory({ try Keras3.Nadam(learningRate: 0.1) },
            dense: [0.43604525923728943, -1.0019659996032715, 1.3488333225250244, 0.14108267426490784, -0.7077876329421997, 1.8073348999023438],
            sparse: [0.41584157943725586, -1.29588782787323, 1.5, 0.25, -0.7613546252250671, 1.9645118713378906])
    }

    @Test func adamaxMatchesKeras3() throws {
        try Self.expectTrajectory({ try Keras3.Adamax(learningRate: 0.1) },
            dense: [0.43548783659935, -0.9025425910949707, 1.2776525020599365, 0.1586596518754959, -0.6111108660697937, 1.7641963958740234],
            sparse: [0.3839626908302307, -1.237701177597046, 1.5, 0.25, -0.7013512253761292, 1.9951766729354858])
    }

    @Test func lambMatchesKeras3() throws {
        try Self.expectTrajectory({ try Keras3.Lamb(learningRate: 0.1) },
            dense: [0.45606523752212524, -0.9057984948158264, 1.1041628122329712, 0.10467340052127838, -0.5508676767349243, 1.5681102275848389],
            sparse: [0.26711443066596985, -1.7257075309753418, 1.5, 0.25, -0.6724792718887329, 1.9936035871505737])
    }

    // MARK: - Configs

    /// What Keras 3.15.1 wrote (`json.dumps(keras.optimizers.serialize(opt))`) for each class.
    static let kerasConfigs = [
        #"{"module": "keras.optimizers", "class_name": "Lion", "config": {"name": "lion_1", "learning_rate": 0.009999999776482582, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.8, "beta_2": 0.95}, "registered_name": null}"#,
        #"{"module": "keras.optimizers", "class_name": "RMSprop", "config": {"name": "rm_sprop_1", "learning_rate": 0.009999999776482582, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "rho": 0.8, "momentum": 0.9, "epsilon": 1e-07, "centered": true}, "registered_name": null}"#,
        #"{"module": "keras.optimizers", "class_name": "Nadam", "config": {"name": "nadam_2", "learning_rate": 0.009999999776482582, "weight_decay": 0.1, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-07}, "registered_name": null}"#,
        #"{"module": "keras.optimizers", "class_name": "Adamax", "config": {"name": "adamax_1", "learning_rate": 0.009999999776482582, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.9, "epsilon": 1e-07}, "registered_name": null}"#,
        #"{"module": "keras.optimizers", "class_name": "Lamb", "config": {"name": "lamb_2", "learning_rate": 0.009999999776482582, "weight_decay": 0.1, "clipnorm": 1.0, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07}, "registered_name": null}"#,
    ]

    @Test(arguments: kerasConfigs)
    func configRoundTripsByteForByte(_ json: String) throws {
        let opt = try Optimizer.deserialize(json: json)
        #expect(opt is Keras3.Optimizer)
        #expect(try opt.serializedJSON() == json)
    }

    @Test func defaultsAreKeras3s() throws {
        let lion = try Keras3.Lion()
        let lionRate = try lion.currentLearningRate()
        #expect(lion.beta1 == 0.9 && lion.beta2 == 0.99 && lionRate == 0.001)
        let rms = try Keras3.RMSprop()
        #expect(rms.rho == 0.9 && rms.momentum == 0.0 && rms.epsilon == 1e-7 && !rms.centered)
        #expect(try rms.ownConfig.keys == ["rho", "momentum", "epsilon", "centered"])
        for opt: Keras3.Optimizer in [try Keras3.Nadam(), try Keras3.Adamax(), try Keras3.Lamb()] {
            #expect(try opt.ownConfig.keys == ["beta_1", "beta_2", "epsilon"])
            let own = try opt.ownConfig
            #expect(own["beta_1"] == 0.9 && own["beta_2"] == 0.999 && own["epsilon"] == 1e-7)
            #expect(try opt.currentLearningRate() == 0.001)
            #expect(try Array(opt.config.keys) == Keras3.baseConfigKeys + Array(own.keys))
        }
        // Config keys of a default instance, by name: `"lion"` etc. deserialize to the Keras 3 classes.
        for (name, type) in [("Lion", Keras3.Lion.self), ("RMSprop", Keras3.RMSprop.self), ("Nadam", Keras3.Nadam.self),
                             ("Adamax", Keras3.Adamax.self), ("Lamb", Keras3.Lamb.self)] as [(String, Keras3.Optimizer.Type)] {
            let opt = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "\#(name)", "config": {}}"#)
            #expect(Swift.type(of: opt) == type)
        }
    }

    @Test func badOptionsThrowNamingTheField() throws {
        for beta in [0.0, -0.5, 1.5] {
            do { _ = try Keras3.Lion(beta1: ConfigNumber(beta)); Issue.record("expected an error for beta_1=\(beta)") } catch {
                #expect("\(error)".contains("beta_1"))
            }
        }
        _ = try Keras3.Lion(beta1: 1)  // (0, 1]: 1 is allowed
        do { _ = try Keras3.RMSprop(epsilon: 1e300); Issue.record("expected an error") } catch { #expect("\(error)".contains("epsilon")) }
        do { _ = try Keras3.Nadam(beta2: ConfigNumber(Double.nan)); Issue.record("expected an error") } catch { #expect("\(error)".contains("beta_2")) }
        for name in ["Lion", "RMSprop", "Nadam", "Adamax", "Lamb"] {
            do {
                _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "\#(name)", "config": {"beta": 0.9}}"#)
                Issue.record("expected an error for \(name)")
            } catch { #expect("\(error)".contains("beta")) }
        }
        do {
            _ = try Optimizer.deserialize(json: #"{"module": "keras.optimizers", "class_name": "RMSprop", "config": {"centered": 1}}"#)
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("centered")) }
    }

    // MARK: - Variables

    @Test func variablesAreNamedAndOrderedAsKeras3() throws {
        func names(_ opt: Keras3.Optimizer) throws -> [String] {
            let k = Variable(Tensor([1, 2] as [Float]), name: "dense/kernel"), b = Variable(Tensor([0.5] as [Float]), name: "dense/bias")
            try opt.applyGradients([(Tensor([1, 1] as [Float]), k), (Tensor([1] as [Float]), b)])
            return opt.weights.map(\.name)
        }
        #expect(try names(Keras3.Lion(name: "lion")) == ["lion/iteration", "lion/learning_rate", "lion/dense_kernel_momentum", "lion/dense_bias_momentum"])
        #expect(try names(Keras3.RMSprop(momentum: 0.5, centered: true, name: "rms")) == [
            "rms/iteration", "rms/learning_rate", "rms/dense_kernel_velocity", "rms/dense_bias_velocity",
            "rms/dense_kernel_momentum", "rms/dense_bias_momentum", "rms/dense_kernel_average_gradient", "rms/dense_bias_average_gradient",
        ])
        #expect(try names(Keras3.Adamax(name: "ax")) == ["ax/iteration", "ax/learning_rate", "ax/dense_kernel_momentum", "ax/dense_kernel_norm", "ax/dense_bias_momentum", "ax/dense_bias_norm"])
        #expect(try names(Keras3.Lamb(name: "lb")) == ["lb/iteration", "lb/learning_rate", "lb/dense_kernel_momentum", "lb/dense_kernel_velocity", "lb/dense_bias_momentum", "lb/dense_bias_velocity"])
        let nadam = try names(Keras3.Nadam(name: "nd"))
        #expect(Array(nadam.prefix(6)) == ["nd/iteration", "nd/learning_rate", "nd/dense_kernel_momentum", "nd/dense_kernel_velocity", "nd/dense_bias_momentum", "nd/dense_bias_velocity"])
        // Keras' unnamed `keras.Variable`: "variable", "variable_1", ... in creation order.
        #expect(nadam.count == 7 && nadam[6].hasPrefix("nd/variable"))
    }

    /// Keras 3 advances `u_product` once per update (in `_backend_update_step`), not once per variable,
    /// and not on the calls that only accumulate gradients.
    @Test func nadamAdvancesUProductOncePerUpdate() throws {
        let a = Variable(Tensor([1, 2] as [Float]), name: "a"), b = Variable(Tensor([3] as [Float]), name: "b")
        let opt = try Keras3.Nadam(options: .init(gradientAccumulationSteps: 2))
        try opt.applyGradients([(Tensor([1, 1] as [Float]), a), (Tensor([1] as [Float]), b)])
        let u = try #require(opt.uProduct)
        #expect(u.dtype == .float32 && u.untrackedValue.doubles == [1])
        try opt.applyGradients([(Tensor([1, 1] as [Float]), a), (Tensor([1] as [Float]), b)])
        let first = Float(0.9) * (1 - 0.5 * powf(0.96, 1))
        #expect(u.untrackedValue.doubles == f32([first]))
        try opt.applyGradients([(Tensor([1, 1] as [Float]), a), (Tensor([1] as [Float]), b)])
        try opt.applyGradients([(Tensor([1, 1] as [Float]), a), (Tensor([1] as [Float]), b)])
        #expect(u.untrackedValue.doubles == f32([first * Float(0.9) * (1 - 0.5 * powf(0.96, 2))]))
        // Its dtype is the first variable's.
        let d = Variable(Tensor([1.0] as [Double]), name: "d")
        let opt64 = try Keras3.Nadam()
        try opt64.applyGradients([(Tensor([1.0] as [Double]), d)])
        #expect(try #require(opt64.uProduct).untrackedValue.doubles == [0.9 * (1 - 0.5 * 0.96)])
    }

    // MARK: - Fused kernels against the reference updateStep

    final class ReferenceLion: Keras3.Lion { override var fusesDenseUpdates: Bool { false } }
    final class ReferenceRMSprop: Keras3.RMSprop { override var fusesDenseUpdates: Bool { false } }
    final class ReferenceNadam: Keras3.Nadam { override var fusesDenseUpdates: Bool { false } }
    final class ReferenceAdamax: Keras3.Adamax { override var fusesDenseUpdates: Bool { false } }
    final class ReferenceLamb: Keras3.Lamb { override var fusesDenseUpdates: Bool { false } }

    /// Four steps on 37 float32 and 37 float64 elements (SIMD body and tail), fused and reference.
    static func expectFusedEqualsReference(_ fused: Keras3.Optimizer, _ reference: Keras3.Optimizer,
                                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(fused.fusesDenseUpdates && !reference.fusesDenseUpdates, sourceLocation: sourceLocation)
        func run(_ opt: Keras3.Optimizer) throws -> [[Double]] {
            let start: [Double] = (0..<37).map { (i: Int) -> Double in sin(Double(i) * 1.3) * 2 }
            let v32 = Variable(try Tensor(shape: [37], scalars: start.map { Float($0) }), name: "v32")
            let v64 = Variable(try Tensor(shape: [37], scalars: start), name: "v64")
            for s in 0..<4 {
                let g: [Double] = (0..<37).map { (i: Int) -> Double in
                    s == 2 && i % 5 == 0 ? 0 : cos(Double(i * (s + 2)) * 0.7)
                }
                try opt.applyGradients([(.dense(try Tensor(shape: [37], scalars: g.map { Float($0) })), v32),
                                        (.dense(try Tensor(shape: [37], scalars: g)), v64)])
            }
            return [v32.untrackedValue.doubles, v64.untrackedValue.doubles] + opt.weights.map { $0.untrackedValue.doubles }
        }
        let a = try run(fused), b = try run(reference)
        #expect(a == b, sourceLocation: sourceLocation)
    }

    @Test func fusedKernelsEqualTheReferenceUpdateStep() throws {
        let wd = Keras3.Options(weightDecay: 0.05)
        try Self.expectFusedEqualsReference(try Keras3.Lion(learningRate: 0.01, options: wd), try ReferenceLion(learningRate: 0.01, options: wd))
        for (mu, centered) in [(0.0, false), (0.0, true), (0.9, false), (0.9, true)] {
            try Self.expectFusedEqualsReference(try Keras3.RMSprop(learningRate: 0.01, momentum: ConfigNumber(mu), centered: centered),
                                                try ReferenceRMSprop(learningRate: 0.01, momentum: ConfigNumber(mu), centered: centered))
        }
        try Self.expectFusedEqualsReference(try Keras3.Nadam(learningRate: 0.01, options: wd), try ReferenceNadam(learningRate: 0.01, options: wd))
        try Self.expectFusedEqualsReference(try Keras3.Adamax(learningRate: 0.01), try ReferenceAdamax(learningRate: 0.01))
        try Self.expectFusedEqualsReference(try Keras3.Lamb(learningRate: 0.01, options: wd), try ReferenceLamb(learningRate: 0.01, options: wd))
    }
}
