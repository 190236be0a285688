@_spi(DescentInternals) import DescentAutodiff
@_spi(DescentInternals) import DescentTensor

extension Optimizer {
    // MARK: - Minimize

    /// Computes the gradients of `loss` with a tape and applies them (Keras' `minimize`).
    ///
    /// - Parameters:
    ///   - loss: a closure returning the value to minimise.
    ///   - varList: the variables to update.
    ///   - gradLoss: the gradient flowing into the loss (multiplies it), or `nil`.
    ///   - tape: a tape to record on, or `nil` for a new one.
    @discardableResult
    public func minimize(_ loss: () throws -> Tensor, varList: [Variable], gradLoss: Tensor? = nil,
                         tape: GradientTape? = nil) throws -> Int64 {
        let grads = try computeGradients(loss, varList: { varList }, watching: varList, gradLoss: gradLoss, tape: tape)
        return try applyGradients(grads)
    }

    /// `minimize` with the variable list given as a closure, evaluated after the loss (for models whose
    /// variables are created when first called).
    @discardableResult
    public func minimize(_ loss: () throws -> Tensor, varList: () throws -> [Variable], gradLoss: Tensor? = nil,
                         tape: GradientTape? = nil) throws -> Int64 {
        let grads = try computeGradients(loss, varList: varList, watching: [], gradLoss: gradLoss, tape: tape)
        return try applyGradients(grads)
    }

    /// `minimize` with a loss already recorded on `tape` (TensorFlow 2.4+).
    @discardableResult
    public func minimize(_ loss: Tensor, varList: [Variable], gradLoss: Tensor? = nil, tape: GradientTape) throws -> Int64 {
        let grads = try tape.gradient(of: loss, wrt: varList, outputGradients: gradLoss)
        return try applyGradients(Array(zip(grads, varList)))
    }

    /// Keras' `_compute_gradients`: watches a given variable list (so non-trainable variables in it get
    /// gradients too), records `loss()` on the tape, evaluates `varList` after the loss (lazily built
    /// models), then differentiates.
    func computeGradients(_ loss: () throws -> Tensor, varList: () throws -> [Variable], watching: [Variable],
                          gradLoss: Tensor?, tape: GradientTape?) throws -> [(Gradient?, Variable)] {
        let tape = tape ?? GradientTape()
        tape.watch(watching)
        let (value, vars) = try tape.record { () throws -> (Tensor, [Variable]) in
            let value = try loss()
            return (value, try varList())
        }
        let grads = try tape.gradient(of: value, wrt: vars, outputGradients: gradLoss)
        return Array(zip(grads, vars))
    }

    /// The gradients of `loss` with respect to `params` (Keras' legacy `get_gradients`).
    /// - Throws: ``OptimizerError/missingGradient(variable:)`` when a variable gets none.
    public func getGradients(_ loss: () throws -> Tensor, params: [Variable]) throws -> [Tensor] {
        let grads = try computeGradients(loss, varList: { params }, watching: params, gradLoss: nil, tape: nil)
        return try grads.map { g, v in
            guard let g else { throw OptimizerError.missingGradient(variable: v.name) }
            return try g.denseValue
        }
    }

    /// A step built once and run many times: computes the gradients of `loss` and applies them (Keras'
    /// graph-mode `minimize` returning an op to `run()`).
    public func minimizeStep(_ loss: @escaping () throws -> Tensor, varList: @escaping () throws -> [Variable],
                             gradLoss: Tensor? = nil) -> TrainingStep {
        // `self` is captured strongly: the optimizer never holds its steps (no cycle), and a step may
        // outlive every other reference to its optimizer (`SGD().minimizeStep(...)`).
        TrainingStep {
            try self.minimize(loss, varList: varList, gradLoss: gradLoss)
        }
    }

    /// Keras' legacy `get_updates`: the list of update operations (one step) for `loss`.
    public func getUpdates(_ loss: @escaping () throws -> Tensor, params: [Variable]) -> [TrainingStep] {
        // `self` is captured strongly, as in `minimizeStep`.
        [TrainingStep {
            let grads = try self.getGradients(loss, params: params)
            return try self.applyGradients(Array(zip(grads.map { Gradient.dense($0) }, params)))
        }]
    }
}

/// A training step built once and run many times (Keras' graph-mode update op).
public final class TrainingStep {
    private let body: () throws -> Int64
    init(_ body: @escaping () throws -> Int64) { self.body = body }
    /// Runs the step; returns the optimizer's new `iterations`.
    @discardableResult public func run() throws -> Int64 { try body() }
}
