@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Keras3 {
    /// Adafactor (Shazeer & Stern, 2018), as Keras 3's `Adafactor.update_step` computes it, operation by
    /// operation.
    ///
    /// With `t = iterations + 1` and `rms(x) = sqrt(mean(x²))`:
    /// ```
    /// lr    = min(lr, 1/sqrt(t))                      (relative_step, numeric learning rate)
    /// ρ     = min(lr, 1/sqrt(t))
    /// α     = max(ε₂, rms(var)) · ρ
    /// G     = g² + ε₁
    /// β₂ₜ   = 1 − pow(t, beta_2_decay)
    /// rank ≥ 2 (factored over the last two axes):
    ///   r   ← β₂ₜ·r + (1 − β₂ₜ)·mean(G, axis −1)            shape var.shape[:-1]
    ///   c   ← β₂ₜ·c + (1 − β₂ₜ)·mean(G, axis −2)            shape var.shape[:-2] + [var.shape[-1]]
    ///   v   ← expand(r / mean(r, axis −1, keepdims), −1) · expand(c, −2)
    /// otherwise:
    ///   v   ← β₂ₜ·v + (1 − β₂ₜ)·G
    /// u     = g / sqrt(v)
    /// û     = u / max(1, rms(u) / clip_threshold)
    /// var   ← var − α·û
    /// ```
    /// ε₁, `clip_threshold` and `beta_2_decay` are Python numbers rounded once to the dtype, ε₂ is cast
    /// from float32. Variables, per variable in turn: for rank ≥ 2 `<optimizer>/<name>` twice (r, then c;
    /// `name` is the last component of the variable's path, as Keras' `add_variable(name=var.name)`),
    /// for rank < 2 two placeholder scalars named `<name>` (no optimizer prefix; Keras makes them int32
    /// zeros, here int64); then `<var>_velocity`. The mean reductions are
    /// ``DescentTensor/Tensor/mean(axes:keepDims:)``'s. Sparse gradients: `g²` is made dense (each repeated
    /// row squared before the sum), `u` keeps the rows (each divided by its row of `sqrt(v)`), `rms(u)`
    /// sums the squares of those rows over the dense element count, and the rows `α·û` are subtracted one
    /// after the other. Dense gradients take an in-place path for the element-wise parts (the same
    /// operations on the same values: the same numbers); Adafactor has no fused per-element kernel, its
    /// update needs whole-tensor reductions.
    ///
    /// Against Keras 3.15.1 (TensorFlow 2.21 CPU): bit-exact on small tensors; TensorFlow's `reduce_mean`
    /// sums in Eigen's order (8-lane AVX packets, a pairwise lane sum, halves above 8192 elements, thread
    /// blocks), Descent's reductions in their own, so rows of more than a few elements can differ by a
    /// few ulps (measured worst relative error: 3.6e-7 float32 on a [300, 1000] kernel, 6.5e-16 float64).
    open class Adafactor: Optimizer {
        /// The decay exponent of β₂ (`beta_2_decay`, negative).
        public let beta2Decay: ConfigNumber
        /// ε₁, added to the squared gradient (`epsilon_1`).
        public let epsilon1: ConfigNumber
        /// ε₂, the smallest scale of the step (`epsilon_2`).
        public let epsilon2: ConfigNumber
        /// The update's RMS is clipped to this (`clip_threshold`), independently of `clipnorm` & co.
        public let clipThreshold: ConfigNumber
        /// Cap a numeric learning rate by `1/sqrt(t)` (`relative_step`).
        public let relativeStep: Bool
        /// The row accumulators (placeholders for rank < 2), by position of the variables built with.
        public private(set) var rowAccumulators: [Variable] = []
        /// The column accumulators (placeholders for rank < 2).
        public private(set) var columnAccumulators: [Variable] = []
        /// The second moments.
        public private(set) var velocities: [Variable] = []

        /// Creates Keras 3's Adafactor with its defaults.
        /// - Throws: ``OptimizerError/invalidArgument(field:message:)`` for a hyperparameter float32 cannot
        ///   hold, and the base's errors.
        public init(learningRate: Hyperparameter = 0.001, beta2Decay: ConfigNumber = -0.8, epsilon1: ConfigNumber = 1e-30,
                    epsilon2: ConfigNumber = 1e-3, clipThreshold: ConfigNumber = 1.0, relativeStep: Bool = true,
                    name: String = "", options: Options = .defaults) throws {
            for (field, n) in [("beta_2_decay", beta2Decay), ("epsilon_1", epsilon1), ("epsilon_2", epsilon2),
                               ("clip_threshold", clipThreshold)] {
                try Float32Field.checkHyperparameter(n.value, field: field, owner: Self.kerasClassName)
            }
            self.beta2Decay = beta2Decay
            self.epsilon1 = epsilon1
            self.epsilon2 = epsilon2
            self.clipThreshold = clipThreshold
            self.relativeStep = relativeStep
            try super.init(learningRate: learningRate, name: name, options: options)
        }

        open override class var kerasClassName: String { "Adafactor" }

        open override func buildVariables(_ variables: [Variable]) throws {
            var rows: [Variable] = [], columns: [Variable] = [], velocities: [Variable] = []
            for v in variables {
                let shortName = v.name.split(separator: "/").last.map(String.init) ?? v.name
                if v.shape.count < 2 {
                    // Keras: `backend.Variable(0, name=var.name)`, outside the optimizer's scope.
                    rows.append(try addSlot(v, "r", initializer: .zeros, shape: [], fullName: "\(name)/\(shortName)", dtype: .int64))
                    columns.append(try addSlot(v, "c", initializer: .zeros, shape: [], fullName: "\(name)/\(shortName)", dtype: .int64))
                } else {
                    let s = v.shape
                    rows.append(try addSlot(v, "r", initializer: .zeros, shape: Array(s.dropLast()),
                                            fullName: "\(name)/\(shortName)", dtype: nil))
                    columns.append(try addSlot(v, "c", initializer: .zeros, shape: Array(s.dropLast(2)) + [s[s.count - 1]],
                                               fullName: "\(name)/\(shortName)", dtype: nil))
                }
                velocities.append(try addVariable(from: v, name: "velocity"))
            }
            rowAccumulators = rows
            columnAccumulators = columns
            self.velocities = velocities
        }

        open override func resetClassBuild() {
            rowAccumulators = []
            columnAccumulators = []
            velocities = []
            updateScratch = [:]
        }

        open override func prepare(_ c: inout Coefficients) throws {
            try super.prepare(&c)
            let t = try c["local_step"]
            let inverseSqrtStep = c.scalar(1) / t.squareRoot()
            func minimum(_ a: TypedScalar, _ b: TypedScalar) -> TypedScalar {
                a.value.isNaN || b.value.isNaN ? c.scalar(.nan) : (b.value < a.value ? b : a)
            }
            var lr = try c["lr"]
            if relativeStep, learningRateVariable != nil { lr = minimum(lr, inverseSqrtStep) }
            c.set("rho", minimum(lr, inverseSqrtStep))
            let beta2t = 1 - t.pow(c.scalar(beta2Decay.value))
            c.set("beta_2_t", beta2t)
            c.set("one_minus_beta_2_t", 1 - beta2t)
            c.set("epsilon_1", c.scalar(epsilon1.value))
            c.set("epsilon_2", TypedScalar.castFromFloat32(epsilon2.value, c.dtype))
            c.set("clip_threshold", c.scalar(clipThreshold.value))
        }

        /// `max(a, b)` of scalars, NaN if either is.
        private static func maximum(_ a: TypedScalar, _ b: TypedScalar) -> TypedScalar {
            a.value.isNaN || b.value.isNaN ? TypedScalar(.nan, a.dtype) : (a.value < b.value ? b : a)
        }

        /// The dense step's buffer for `u` (the largest variable's size, per dtype; never shared).
        private var updateScratch: [DType: Tensor] = [:]

        /// Whether dense gradients take ``denseStep(_:_:_:_:)`` (in-place passes for the element-wise parts,
        /// the same numbers) instead of the operation-by-operation reference path. Tests turn it off to
        /// compare the two; a subclass overriding ``updateStep(_:_:_:)`` replaces both.
        var usesInPlaceDensePath = true

        open override func updateStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            if usesInPlaceDensePath, case .dense(let g) = gradient {
                if variable.dtype == .float32 { try denseStep(Float.self, g.untracked, variable, c) } else { try denseStep(Double.self, g.untracked, variable, c) }
                return
            }
            try referenceStep(gradient, variable, c)
        }

        /// Keras' `update_step` operation by operation (dense and sparse gradients).
        func referenceStep(_ gradient: Gradient, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let dtype = variable.dtype
            let beta2t = try c["beta_2_t"].value, oneMinus = try c["one_minus_beta_2_t"].value
            let x = variable.untrackedValue
            let rmsVariable = TypedScalar(try x.squared().untracked.mean().untracked.sqrt().item(), dtype)
            let alpha = Self.maximum(try c["epsilon_2"], rmsVariable) * (try c["rho"])
            let squares = try (try densifiedSquares(gradient) + (try c["epsilon_1"].value)).untracked
            let v = velocities[i]
            if variable.shape.count >= 2 {
                let r = rowAccumulators[i], col = columnAccumulators[i]
                try r.assign(try (try r.untrackedValue * beta2t).untracked + (try squares.mean(axes: [-1]).untracked * oneMinus).untracked)
                try col.assign(try (try col.untrackedValue * beta2t).untracked + (try squares.mean(axes: [-2]).untracked * oneMinus).untracked)
                let rv = r.untrackedValue, cv = col.untrackedValue
                let normalized = try (rv / (try rv.mean(axes: [-1], keepDims: true)).untracked).untracked
                let rowFactor = try normalized.reshaped(to: rv.shape + [1])
                var columnShape = cv.shape
                columnShape.insert(1, at: columnShape.count - 1)
                try v.assign(try (rowFactor * (try cv.reshaped(to: columnShape))).untracked)
            } else {
                try v.assign(try (try v.untrackedValue * beta2t).untracked + (try squares * oneMinus).untracked)
            }
            let root = try v.untrackedValue.sqrt().untracked
            let clip = try c["clip_threshold"]
            switch gradient {
            case .dense(let g):
                let u = try (g.untracked / root).untracked
                let rmsU = TypedScalar(try u.squared().untracked.mean().untracked.sqrt().item(), dtype)
                let scale = Self.maximum(TypedScalar(1, dtype), rmsU / clip)
                let update = try (try (u / scale.value).untracked * alpha.value).untracked
                try variable.assign(try (x - update).untracked)
            case .sparse(let s):
                let u = try Keras3SparseRows(s).divided(by: root)
                let count = TypedScalar(Double(s.denseShape.reduce(1, *)), dtype)
                let sumSquares = TypedScalar(try u.values.squared().untracked.sum().item(), dtype)
                let rmsU = (sumSquares / count).squareRoot()
                let scale = Self.maximum(TypedScalar(1, dtype), rmsU / clip)
                let update = try u.mapValues { try ($0 / scale.value).untracked * alpha.value }
                update.scatter(into: variable, subtract: true)
            }
        }

        /// The dense step in three passes over memory, without whole-tensor temporaries (rank ≥ 2 adds the
        /// axis sums of `g² + ε₁`, see ``factors(_:_:_:_:_:epsilon1:)``):
        /// 1. `v` (updated in place, or made from the factors) and the two sums `sum(var²)` and `sum(u²)`,
        ///    `u = g / sqrt(v)`, each in ``DescentTensor/Tensor/sum(axes:keepDims:)``'s order (by
        ///    `reduceInChunks` and `sumPairInTensorOrder`);
        /// 2. the scalars `α` and the clip scale, by the reference path's tensor operations;
        /// 3. `var ← var − (u / scale)·α`, `u` kept from pass 1 in a buffer the optimizer reuses.
        /// The same operations on the same values as ``referenceStep(_:_:_:)``: the same numbers.
        private func denseStep<T: FloatingElement>(_: T.Type, _ g: Tensor, _ variable: Variable, _ c: Coefficients) throws {
            let i = try index(of: variable)
            let dtype = variable.dtype
            let beta2t = try c["beta_2_t"].value(as: T.self), oneMinus = try c["one_minus_beta_2_t"].value(as: T.self)
            let epsilon1 = try c["epsilon_1"].value(as: T.self)
            let count = variable.shape.reduce(1, *)
            let v = velocities[i]
            let shape = variable.shape
            let width = T.Vector.scalarCount
            /// `sqrt(mean)` of a sum of `count` squares, by the reference path's tensor operations.
            func rootMean(_ sum: T) throws -> TypedScalar {
                let total = try Tensor(repeating: Double(sum), shape: [], dtype: dtype)
                return TypedScalar(try (total / Double(count)).untracked.sqrt().item(), dtype)
            }
            // Rank ≥ 2: the factors of v (per flat row, and per column of each outer block).
            let factored = shape.count >= 2 ? try factors(T.self, g, i, beta2t, oneMinus, epsilon1: epsilon1) : nil
            let columns = shape.count >= 2 ? shape[shape.count - 1] : 1
            let rowsPerBlock = shape.count >= 2 ? shape[shape.count - 2] : 1
            let gp = g.unsafeStorage.base.assumingMemoryBound(to: T.self)
            if (updateScratch[dtype]?.scalarCount ?? -1) < count {
                updateScratch[dtype] = try Tensor.zeros(shape: [count], dtype: dtype)
            }
            let scratch = updateScratch[dtype]!  // made above
            let up = scratch.unsafeStorage.base.assumingMemoryBound(to: T.self)
            try withExtendedLifetime((g, factored, scratch)) {
                try variable.withUniqueStorage { ws in
                    let wp = ws.base.assumingMemoryBound(to: T.self)
                    try v.withUniqueStorage { vs in
                        let vp = vs.base.assumingMemoryBound(to: T.self)
                        // Pass 1. How v's elements are had: updated in place (rank < 2), made from the
                        // factors (each vector in one row), or read (made by a loop before).
                        var source = VelocitySource.decay
                        var np = UnsafePointer<T>(gp), cp = UnsafePointer<T>(gp)
                        let block = rowsPerBlock * columns
                        if let factored {
                            np = UnsafePointer(factored.rows.unsafeStorage.base.assumingMemoryBound(to: T.self))
                            cp = UnsafePointer(factored.columns.unsafeStorage.base.assumingMemoryBound(to: T.self))
                            source = columns % width == 0 ? .factors : .stored
                            if source == .stored {
                                let rowFactors = np, columnFactors = cp
                                ThreadPool.parallelFor(count) { range in
                                    for k in range { vp[k] = rowFactors[k / columns] * columnFactors[(k / block) * columns + k % columns] }
                                }
                            }
                        }
                        let vb = T.Vector(repeating: beta2t), vo = T.Vector(repeating: oneMinus)
                        let ve = T.Vector(repeating: epsilon1)
                        let (sumOfSquares, sumOfUpdateSquares) = reduceInChunks(
                            count, identity: (T(0), T(0)), combine: { ($0.0 + $1.0, $0.1 + $1.1) }
                        ) { range in
                            // The row of the vectors (.factors): found by division once per row.
                            var rowEnd = -1, rowStart = 0, columnBase = 0
                            var rowFactor = T.Vector(repeating: 0)
                            return sumPairInTensorOrder(range, vector: { k in
                                let gk = loadVector(gp + k)
                                let vk: T.Vector
                                switch source {
                                case .decay:
                                    vk = vb * loadVector(UnsafePointer(vp + k)) + vo * (gk * gk + ve)
                                    storeVector(vk, vp + k)
                                case .factors:
                                    if k >= rowEnd || k < rowStart {
                                        let flatRow = k / columns
                                        rowStart = flatRow * columns
                                        rowEnd = rowStart + columns
                                        columnBase = (k / block) * columns
                                        rowFactor = T.Vector(repeating: np[flatRow])
                                    }
                                    vk = rowFactor * loadVector(cp + columnBase + (k - rowStart))
                                    storeVector(vk, vp + k)
                                case .stored:
                                    vk = loadVector(UnsafePointer(vp + k))
                                }
                                let wk = loadVector(UnsafePointer(wp + k))
                                let u = gk / T.vectorSquareRoot(vk)
                                storeVector(u, up + k)
                                return (wk * wk, u * u)
                            }, scalar: { k in
                                let gk = gp[k]
                                let vk: T
                                switch source {
                                case .decay:
                                    vk = beta2t * vp[k] + oneMinus * (gk * gk + epsilon1)
                                    vp[k] = vk
                                case .factors:
                                    vk = np[k / columns] * cp[(k / block) * columns + k % columns]
                                    vp[k] = vk
                                case .stored:
                                    vk = vp[k]
                                }
                                let u = gk / T.scalarSquareRoot(vk)
                                up[k] = u
                                return (wp[k] * wp[k], u * u)
                            })
                        }
                        // Pass 2: the step's scalars.
                        let alpha = (Self.maximum(try c["epsilon_2"], try rootMean(sumOfSquares)) * (try c["rho"])).value(as: T.self)
                        let scale = Self.maximum(TypedScalar(1, dtype), try rootMean(sumOfUpdateSquares) / (try c["clip_threshold"])).value(as: T.self)
                        // Pass 3: var ← var − (u / scale)·α.
                        let vscale = T.Vector(repeating: scale), valpha = T.Vector(repeating: alpha)
                        ThreadPool.parallelFor(count) { range in
                            var k = range.lowerBound
                            while k + width <= range.upperBound {
                                let u = loadVector(UnsafePointer(up + k))
                                storeVector(loadVector(UnsafePointer(wp + k)) - (u / vscale) * valpha, wp + k)
                                k += width
                            }
                            while k < range.upperBound {
                                wp[k] = wp[k] - (up[k] / scale) * alpha
                                k += 1
                            }
                        }
                    }
                }
            }
        }

        /// Where the dense step's first pass gets v's elements.
        private enum VelocitySource { case decay, factors, stored }

        /// Rank ≥ 2: updates the row and column accumulators (`r`, `c`) from the axis means of `g² + ε₁`
        /// and returns v's factors, `r / mean(r, −1)` per flat row and `c` (so that `v[o, i, j] =
        /// rows[o·R + i] · columns[o·C + j]`, Keras' `expand(r / mean(r), −1) · expand(c, −2)`). The squares
        /// are computed where they are summed, in the order of ``DescentTensor/Tensor/mean(axes:keepDims:)``
        /// (a row: its lanes from the row's start; a column: row 0, then each next row added), so without
        /// the `g²` tensor.
        private func factors<T: FloatingElement>(_: T.Type, _ g: Tensor, _ i: Int, _ beta2t: T, _ oneMinus: T,
                                                 epsilon1: T) throws -> (rows: Tensor, columns: Tensor) {
            let shape = g.shape, count = g.scalarCount
            let columns = shape[shape.count - 1], rows = shape[shape.count - 2]
            let outer = count / Swift.max(1, rows * columns)
            let width = T.Vector.scalarCount
            let gp = g.unsafeStorage.base.assumingMemoryBound(to: T.self)
            let ve = T.Vector(repeating: epsilon1)
            var rowSums = [T](repeating: 0, count: outer * rows), columnSums = [T](repeating: 0, count: outer * columns)
            withExtendedLifetime(g) {
                rowSums.withUnsafeMutableBufferPointer { rowBuffer in
                    guard let rs = rowBuffer.baseAddress else { return }
                    func rowSum(_ range: Range<Int>) -> T {
                        sumInTensorOrder(range, vector: { k in
                            let gk = loadVector(gp + k)
                            return gk * gk + ve
                        }, scalar: { k in gp[k] * gp[k] + epsilon1 })
                    }
                    if outer * rows == 1 {
                        // One row: the tensor reduction splits it into chunks.
                        rs[0] = reduceInChunks(columns, identity: 0, combine: +, rowSum)
                        return
                    }
                    ThreadPool.parallelFor(outer * rows, grain: Swift.max(1, (1 << 15) / Swift.max(columns, 1)), alignment: 1) { range in
                        for flatRow in range { rs[flatRow] = rowSum(flatRow * columns..<(flatRow + 1) * columns) }
                    }
                }
                columnSums.withUnsafeMutableBufferPointer { columnBuffer in
                    guard let cs = columnBuffer.baseAddress, rows > 0 else { return }
                    for o in 0..<outer {
                        let d = cs + o * columns, src = gp + o * rows * columns
                        // Each column is summed over the rows in order: any split of the columns gives the
                        // same numbers.
                        ThreadPool.parallelFor(columns, grain: Swift.max(width, (1 << 15) / Swift.max(rows, 1)), alignment: width) { range in
                            for k in 0..<rows {
                                let row = src + k * columns
                                var j = range.lowerBound
                                while j + width <= range.upperBound {
                                    let gj = loadVector(row + j)
                                    let square = gj * gj + ve
                                    storeVector(k == 0 ? square : loadVector(UnsafePointer(d + j)) + square, d + j)
                                    j += width
                                }
                                while j < range.upperBound {
                                    let square = row[j] * row[j] + epsilon1
                                    d[j] = k == 0 ? square : d[j] + square
                                    j += 1
                                }
                            }
                        }
                    }
                }
            }
            let rowMean = try (try Tensor(shape: Array(shape.dropLast()), scalars: rowSums) / Double(columns)).untracked
            let columnMean = try (try Tensor(shape: Array(shape.dropLast(2)) + [columns], scalars: columnSums) / Double(rows)).untracked
            let r = rowAccumulators[i], col = columnAccumulators[i]
            Self.decay(r, rowMean, beta2t, oneMinus)
            Self.decay(col, columnMean, beta2t, oneMinus)
            let rv = r.untrackedValue, cv = col.untrackedValue
            // r / mean(r, −1, keepdims), as the reference path's tensor division (broadcast over the rows).
            let normalized = try (rv / (try rv.mean(axes: [-1], keepDims: true)).untracked).untracked
            return (rows: normalized, columns: cv)
        }

        /// `a ← β·a + (1 − β)·m` in place (Keras: `add(multiply(β, a), multiply(1 − β, m))`).
        private static func decay<T: FloatingElement>(_ a: Variable, _ m: Tensor, _ beta: T, _ oneMinus: T) {
            let n = m.scalarCount
            a.withUniqueStorage { storage in
                let ap = storage.base.assumingMemoryBound(to: T.self)
                let mp = m.unsafeStorage.base.assumingMemoryBound(to: T.self)
                withExtendedLifetime(m) {
                    ThreadPool.parallelFor(n) { range in
                        for k in range { ap[k] = beta * ap[k] + oneMinus * mp[k] }
                    }
                }
            }
        }

        open override var ownConfig: JSONObject {
            get throws {
                ["beta_2_decay": beta2Decay.json, "epsilon_1": epsilon1.json, "epsilon_2": epsilon2.json,
                 "clip_threshold": clipThreshold.json, "relative_step": .bool(relativeStep)]
            }
        }

        /// Rebuilds Keras 3's Adafactor from its config (`Adafactor.from_config`).
        public convenience init(config: JSONObject, customObjects: CustomObjects = .none) throws {
            var r = Keras3ConfigReader(config, className: "Adafactor", customObjects: customObjects)
            let base = try r.base()
            let beta2Decay = try r.number("beta_2_decay") ?? -0.8
            let epsilon1 = try r.number("epsilon_1") ?? 1e-30, epsilon2 = try r.number("epsilon_2") ?? 1e-3
            let clipThreshold = try r.number("clip_threshold") ?? 1.0
            let relativeStep = try r.bool("relative_step") ?? true
            try r.finish(allowed: ["beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold", "relative_step"])
            try self.init(learningRate: base.learningRate ?? 0.001, beta2Decay: beta2Decay, epsilon1: epsilon1,
                          epsilon2: epsilon2, clipThreshold: clipThreshold, relativeStep: relativeStep,
                          name: base.name ?? "", options: base.options)
        }
    }
}
