import DescentAutodiff
import DescentTensor

extension Optimizer {
    /// The `float32` variable behind the numeric hyperparameter `name` (creating the hyperparameter
    /// variables first if needed, as ``learningRateVariable`` does); `nil` for a schedule, closure or
    /// tensor. Assigning the variable changes the value the next step uses.
    /// - Throws: ``OptimizerError/invalidHyperparameter(name:message:)`` for a name this optimizer has not set.
    public func hyperparameterVariable(named name: String) throws -> Variable? {
        if self is Keras3.Optimizer {
            // Keras 3 keeps only the learning rate in a variable; its other hyperparameters are numbers.
            guard name == "learning_rate" else {
                throw OptimizerError.invalidHyperparameter(name: name, message: "\(self.name) is a Keras 3 optimizer: only learning_rate is a variable (its other hyperparameters are plain numbers)")
            }
            return learningRateVariable
        }
        createHypersIfNeeded()
        guard let entry = hypers.first(where: { $0.name == name }) else {
            throw OptimizerError.invalidHyperparameter(name: name, message: "\(self.name) has no such hyperparameter (it has: \(hypers.map(\.name).joined(separator: ", ")))")
        }
        if case .variable(let v) = entry.storage { return v }
        return nil
    }

    /// The current learning rate as a number: the hyperparameter's value (its variable's, once created),
    /// a closure's result, a scalar tensor's value, or a schedule evaluated at the current
    /// ``iterationCount`` (the rate the next step starts from). Time-inverse `decay` is not applied
    /// (as Keras' `opt.lr` does not); ``decayedLearningRate(_:)`` gives the next step's rate with it.
    /// - Throws: ``OptimizerError/invalidHyperparameter(name:message:)`` when there is no learning rate,
    ///   and what the closure, schedule or tensor throws (a tensor that is not one element).
    public var learningRateValue: Double {
        get throws {
            if let keras3 = self as? Keras3.Optimizer { return Double(try keras3.currentLearningRate()) }
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
