import DescentTensor

/// The per-replica loss whose gradients, summed over replicas, are those of the mean over the global
/// batch (TensorFlow's `tf.nn.compute_average_loss`): `sum(perExampleLoss * sampleWeight) /
/// globalBatchSize`.
///
/// Use it in a custom training loop under a strategy, whose optimizers sum gradients across replicas:
/// dividing by the local batch size instead would scale the step by the number of replicas.
/// - Parameters:
///   - perExampleLoss: one loss per example (a loss with reduction `.none`); any shape, summed whole.
///   - sampleWeight: optional weights, broadcast against `perExampleLoss`.
///   - globalBatchSize: the examples of all replicas in this step; `nil` means this replica's batch
///     (the first dimension of `perExampleLoss`, 1 for a scalar) times ``Strategy/numReplicasInSync``
///     of ``Strategy/current``.
/// - Throws: ``DistributionError/invalidArgument(_:)`` for a non-positive batch size or an integer
///   loss, and shape errors from the weights.
public func computeAverageLoss(_ perExampleLoss: Tensor, sampleWeight: Tensor? = nil,
                               globalBatchSize: Int? = nil) throws -> Tensor {
    guard perExampleLoss.dtype.isFloatingPoint else {
        throw DistributionError.invalidArgument("computeAverageLoss: the loss has dtype \(perExampleLoss.dtype); expected float32 or float64")
    }
    let local = perExampleLoss.rank == 0 ? 1 : perExampleLoss.shape[0]
    let global = globalBatchSize ?? local * Strategy.current.numReplicasInSync
    guard global > 0 else {
        throw DistributionError.invalidArgument("computeAverageLoss: globalBatchSize must be positive, got \(global)")
    }
    var losses = perExampleLoss
    if let sampleWeight { losses = try losses * sampleWeight.cast(to: perExampleLoss.dtype) }
    return try losses.sum() / Double(global)
}
