import Dispatch

/// The one place a strategy's collectives are issued: a serial queue, so they run one at a time and in
/// the order they were submitted, which is the same on every rank (MPI requires both).
///
/// Asynchronous work (gradient buckets during the backward pass) and blocking calls (metrics,
/// broadcasts) go through the same queue, so a blocking call also waits for every bucket submitted
/// before it. The communication library is therefore only ever called from one thread at a time.
public final class CollectiveQueue: Sendable {
    private let queue: DispatchQueue
    private let group = DispatchGroup()

    /// Creates a queue labelled `label`.
    public init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    /// Runs `body` after everything submitted before, and waits for it.
    public func sync<R>(_ body: () throws -> R) rethrows -> R {
        try queue.sync(execute: body)
    }

    /// Submits `body` to run after everything submitted before; ``waitForSubmitted()`` waits for it.
    public func async(_ body: @escaping @Sendable () -> Void) {
        queue.async(group: group, execute: body)
    }

    /// Waits until everything submitted with ``async(_:)`` has run.
    public func waitForSubmitted() {
        group.wait()
    }
}
