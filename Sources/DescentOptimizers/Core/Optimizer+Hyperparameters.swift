import DescentTensor

extension Optimizer {
    /// The current learning rate as a number: the hyperparameter's value (its variable's, once created),
    /// a closure's result, a scalar tensor's value, or a schedule evaluated at the current
    /// ``iterationCount`` (the rate the next step starts from). Time-inverse `decay` is not applied
    /// (as Keras' `opt.lr` does not); ``decayedLearningRate(_:)`` gives the next step's rate with it.
    /// - Throws: ``OptimizerError/invalidHyperparameter(name:message:)`` when there is no learning rate,
    ///   and what the closure, schedule or tensor throws (a tensor that is not one element).
    public var learningRateValue: Double {
        get throws {
            switch try hyper("learning_rate") {
            case .number(let d): return d
            case .integer(let i): return Double(i)
            case .tensor(let t): return try t.item()
            case .closure(let f): return try f()
            case .schedule(let s): return try s(Double(iterationCount))
            }
        }
    }
}
