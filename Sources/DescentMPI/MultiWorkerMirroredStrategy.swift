import DescentDistribute

/// Synchronous data-parallel training over processes (TensorFlow's
/// `tf.distribute.MultiWorkerMirroredStrategy`), on Open MPI: one replica per MPI rank, on any number of
/// hosts.
///
/// ```
/// mpirun -np 2 descent train --strategy multi-worker
/// ```
///
/// Started by `mpirun`, it joins `MPI_COMM_WORLD`; started alone it has one replica and makes no MPI
/// call, behaving exactly as ``Strategy/default``, so one program runs with or without `mpirun`.
/// Every instance in a process shares the one communicator and collective order. See ``Strategy`` for
/// what its scope does (mirrored variables, summed gradients).
public final class MultiWorkerMirroredStrategy: Strategy, @unchecked Sendable {
    // @unchecked Sendable: no stored state beyond Strategy's (see its invariant).

    private static let shared: (any Communicator, CollectiveQueue) = {
        let communicator: any Communicator = MPICommunicator.world ?? LocalCommunicator()
        return (communicator, CollectiveQueue(label: "descent.mpi.collectives"))
    }()

    /// Joins the job's processes (MPI's world) or, started without `mpirun`, runs as one replica.
    public init() {
        super.init(communicator: MultiWorkerMirroredStrategy.shared.0, collectives: MultiWorkerMirroredStrategy.shared.1)
    }
}
