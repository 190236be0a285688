import DescentHDF5
import DescentTensor
import Dispatch
import Foundation
import Synchronization
import Testing

// Opening an HDF5 file forks a child process (CDescentHDF5/metadata.h). fork() runs OpenBLAS' atfork
// handler, which stops OpenBLAS' worker threads: with a product running on another thread at that moment
// (OpenBLAS 0.3.21) either a busy worker never saw the stop request and the handler's join waited forever
// (the fork hung, holding libhdf5's lock, so every later load or save hung too), or a worker stopped
// before taking the product's share queued for it and the product waited forever. Training on one thread
// while saving or loading `.h5` files on another (a checkpoint callback, an app with a UI thread) did
// exactly this. Products and forks are now kept apart (`OpenBLASForkGate` in DescentTensor).

private final class Progress: Sendable {
    let stop = Atomic<Bool>(false)
    let products = Atomic<Int>(0)
    let loads = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
}

@Suite struct LoadDuringMatmulTests {
    /// Loads an `.h5` file again and again while another thread multiplies 512×512 matrices (above
    /// OpenBLAS' threading threshold, so its worker threads share every product).
    ///
    /// Before the fix this hung in 6 of 6 runs: 3 times the first load's fork, 3 times the product
    /// thread. Either hang wedges the process for good (libhdf5's lock held, or OpenBLAS waiting for a
    /// worker that is gone: every later HDF5 test or product would hang), so after the time limit the test
    /// stops the process with a message instead of letting CI wait forever.
    @Test(.enabled(if: ThreadPool.threadCount >= 2, "OpenBLAS runs every product on the calling thread: no workers to race"))
    func loadsFinishWhileProductsRun() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-hdf5-gemm-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("weights.h5").path
        let root = HDF5Group()
        root.setAttribute("layer_names", .fixedStrings(["dense"]))
        root.addGroup("dense").addDataset("kernel:0", try Tensor(shape: [2, 2], scalars: [Float](arrayLiteral: 1, 2, 3, 4)))
        try root.write(to: path)

        let side = 512
        let a = try Tensor(shape: [side, side], scalars: (0..<(side * side)).map { Float($0 % 7) - 3 })
        let progress = Progress()
        let productsStopped = DispatchSemaphore(value: 0), loadsDone = DispatchSemaphore(value: 0)
        Thread {
            while !progress.stop.load(ordering: .relaxed) {
                do { _ = try a.matmul(a) } catch { progress.failures.withLock { $0.append("matmul: \(error)") } }
                progress.products.add(1, ordering: .relaxed)
            }
            productsStopped.signal()
        }.start()
        let loadCount = 60
        Thread {
            while progress.products.load(ordering: .relaxed) == 0 { usleep(1000) }  // OpenBLAS' workers are up
            for _ in 0..<loadCount {
                do {
                    let file = try HDF5File(readingFrom: path)
                    let names = try file.attribute("layer_names", of: "/")?.stringList
                    if names != ["dense"] { progress.failures.withLock { $0.append("layer_names: \(String(describing: names))") } }
                    _ = try file.readDataset(at: "/dense/kernel:0")
                } catch {
                    progress.failures.withLock { $0.append("load: \(error)") }
                }
                progress.loads.add(1, ordering: .relaxed)
            }
            loadsDone.signal()
        }.start()

        let limit = 60.0
        if loadsDone.wait(timeout: .now() + limit) == .timedOut {
            fatalError("""
                LoadDuringMatmulTests: \(progress.loads.load(ordering: .relaxed)) of \(loadCount) loads finished in \(Int(limit)) s \
                while \(progress.products.load(ordering: .relaxed)) products ran: a fork during an OpenBLAS product \
                hung (see OpenBLASForkGate); stopping the process, which would otherwise hang
                """)
        }
        progress.stop.store(true, ordering: .relaxed)
        if productsStopped.wait(timeout: .now() + limit) == .timedOut {
            fatalError("""
                LoadDuringMatmulTests: the product thread did not finish its product in \(Int(limit)) s after the \
                loads: an OpenBLAS product waits for a worker that a fork stopped (see OpenBLASForkGate); \
                stopping the process, which would otherwise hang
                """)
        }
        #expect(progress.failures.withLock { $0 } == [])
        #expect(progress.loads.load(ordering: .relaxed) == loadCount)
        #expect(progress.products.load(ordering: .relaxed) > 0)
    }
}
