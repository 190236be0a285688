import DescentOptimizers

/// Reduces the learning rate when a monitored quantity stops improving (Keras'
/// `ReduceLROnPlateau`, as tf_keras 2.21 runs it).
///
/// After each epoch, with `current = logs[monitor]`:
/// 1. in cooldown (`cooldownCounter > 0`): `cooldownCounter −= 1`, `wait = 0`;
/// 2. if `current` improves on the best (`current < best − minDelta` when minimizing, `current > best +
///    minDelta` when maximizing; `.auto` maximizes a monitor containing `acc`), it becomes the best and
///    `wait = 0`;
/// 3. otherwise, unless in cooldown: `wait += 1`; once `wait >= patience`, if the rate is above `minLR`
///    (compared in float32), it becomes `max(rate · factor, minLR)` (the product in float32, as Keras'
///    float32 variable), `cooldownCounter = cooldown`, `wait = 0`.
///
/// A monitor missing from the logs is skipped with Keras' warning. The optimizer's learning rate must be
/// a number (not a schedule), as Keras requires a settable rate.
public final class ReduceLROnPlateau: Callback {
    public let monitor: String
    /// The rate is multiplied by it (< 1).
    public let factor: Double
    /// Epochs without improvement before a reduction.
    public let patience: Int
    public let mode: MonitorMode
    /// The smallest change that counts as an improvement.
    public let minDelta: Double
    /// Epochs to wait after a reduction before counting again.
    public let cooldown: Int
    /// The rate is never reduced below it.
    public let minLR: Double
    /// Whether a reduction prints Keras' message.
    public let verbose: Bool
    private var best = Double.infinity
    private var wait = 0
    private var cooldownCounter = 0
    private let write: (String) -> Void

    /// - Throws: ``TrainingError`` for `factor >= 1` (Keras' `ValueError`), or a negative `patience`,
    ///   `cooldown` or `minLR`.
    public init(monitor: String = "val_loss", factor: Double = 0.1, patience: Int = 10, verbose: Bool = false,
                mode: MonitorMode = .auto, minDelta: Double = 1e-4, cooldown: Int = 0, minLR: Double = 0,
                output: ((String) -> Void)? = nil) throws {
        guard factor < 1 else { throw TrainingError.invalidArgument("ReduceLROnPlateau does not support a factor >= 1.0. Got \(factor)") }
        guard factor.isFinite else { throw TrainingError.invalidArgument("ReduceLROnPlateau.factor must be finite, got \(factor)") }
        guard patience >= 0 else { throw TrainingError.invalidArgument("ReduceLROnPlateau.patience must be >= 0, got \(patience)") }
        guard cooldown >= 0 else { throw TrainingError.invalidArgument("ReduceLROnPlateau.cooldown must be >= 0, got \(cooldown)") }
        guard minLR >= 0 else { throw TrainingError.invalidArgument("ReduceLROnPlateau.minLR must be >= 0, got \(minLR)") }
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.minDelta = minDelta
        self.cooldown = cooldown
        self.minLR = minLR
        self.write = output ?? { print($0, terminator: "") }
        reset()
    }

    /// Keras' rule: `.min`, or `.auto` on a monitor without `acc`, minimizes.
    private var minimizes: Bool { mode == .min || (mode == .auto && !monitor.contains("acc")) }

    private func reset() {
        best = minimizes ? .infinity : -.infinity
        cooldownCounter = 0
        wait = 0
    }

    private var inCooldown: Bool { cooldownCounter > 0 }

    public func onTrainBegin(model: Model) throws { reset() }

    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {
        guard let current = logs[monitor] else {
            write("WARNING: Learning rate reduction is conditioned on metric `\(monitor)` which is not available. "
                  + "Available metrics are: \(logs.keys.sorted().joined(separator: ","))\n")
            return
        }
        if inCooldown {
            cooldownCounter -= 1
            wait = 0
        }
        let improved = minimizes ? current < best - minDelta : current > best + minDelta
        if improved {
            best = current
            wait = 0
        } else if !inCooldown {
            wait += 1
            if wait >= patience {
                guard let optimizer = model.optimizer else { return }
                guard let rate = optimizer.learningRate.numericValue else {
                    throw TrainingError.invalidArgument("ReduceLROnPlateau needs a numeric learning rate, not a schedule or closure")
                }
                let old = Float(rate)
                if old > Float(minLR) {
                    let reduced = old * Float(factor)
                    let new = Double(reduced) < minLR ? Double(Float(minLR)) : Double(reduced)
                    optimizer.learningRate = .number(new)
                    if verbose && model.distributionStrategy.isChief {
                        write("\nEpoch \(epoch + 1): ReduceLROnPlateau reducing learning rate to \(Float(new)).\n")
                    }
                    cooldownCounter = cooldown
                    wait = 0
                }
            }
        }
    }
}
