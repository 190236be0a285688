import ArgumentParser
import Descent
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `descent bench checkpoint`: save and load time, and peak extra memory, of a large model with Adam's
/// state, in each format, beside the disk's own speed for the same number of bytes.
///
/// The model is `--layers` Dense layers of `--width` × `--width` (50.3M parameters by default), compiled
/// with Adam and built, so a checkpoint holds the weights and both slots: 600 MB. Each save is atomic
/// (temporary file, fsync, rename), as `torch.save` is not; the disk limit is measured the same way: a
/// plain `write` of as many bytes, then `fsync`. Peak extra memory is the process' high-water mark
/// (`VmHWM`, reset through `/proc/self/clear_refs`) above its resident size before the operation.
/// Peers on the same model: `bench/peers/checkpoint_peers.py` (torch.save/torch.load, tf_keras).
struct CheckpointBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Time save/load of a 50M-parameter model with Adam's state (.h5, .keras, .weights.h5) against the disk.")

    @Option(parsing: .unconditional, help: "Width of each Dense layer (inputs = outputs).")
    var width: Int = 4096
    @Option(parsing: .unconditional, help: "Number of Dense layers.")
    var layers: Int = 3
    @Option(help: "The folder for the files (default: the temporary folder).")
    var folder: String = FileManager.default.temporaryDirectory.path
    @Option(parsing: .unconditional, help: "Repeats per operation (the median is reported).")
    var repeats: Int = 3
    @Flag(help: "Print JSON lines.")
    var json = false

    func validate() throws {
        try requirePositive(width, "--width")
        try requirePositive(layers, "--layers")
        try requirePositive(repeats, "--repeats")
        guard width <= 65_536, layers <= 64 else { throw ValidationError("--width at most 65536, --layers at most 64") }
        let parameters = Double(layers) * Double(width) * Double(width + 1)
        // The model, two slots, a loaded copy and its slots.
        try requireMemory(parameters * 4 * 6, for: "--width \(width) --layers \(layers) (\(Int(parameters)) parameters)")
    }

    /// Resident and high-water memory in bytes (`/proc/self/status`).
    static func memory() -> (rss: Int, peak: Int) {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0) * 1024
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }

    /// Runs `body` `repeats` times: the median seconds and the largest peak memory above the resident
    /// size before each run.
    func measure(_ body: () throws -> Void) throws -> (seconds: Double, extra: Int) {
        var times: [Double] = [], extra = 0
        for _ in 0..<repeats {
            try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            let before = Self.memory().rss
            let start = now()
            try body()
            times.append(now() - start)
            extra = max(extra, Self.memory().peak - before)
        }
        times.sort()
        return (times[times.count / 2], extra)
    }

    func report(_ op: String, _ format: String, bytes: Int, _ result: (seconds: Double, extra: Int)) {
        let gbps = Double(bytes) / result.seconds / 1e9
        if json {
            print(#"{"bench":"checkpoint","op":"\#(op)","format":"\#(format)","bytes":\#(bytes),"median_s":\#(result.seconds),"gb_per_s":\#(gbps),"peak_extra_bytes":\#(result.extra)}"#)
        } else {
            print(String(format: "%-7@ %-12@ %6.0f MB  median %6.3f s  %5.2f GB/s  peak extra %6.0f MB (%.2f× the file)",
                         op, format, Double(bytes) / 1e6, result.seconds, gbps, Double(result.extra) / 1e6, Double(result.extra) / Double(bytes)))
        }
    }

    func run() throws {
        GlobalRandom.setSeed(1)
        let model = try Sequential(try (0..<layers).map { _ in try Dense(width) })
        try model.build(inputShape: [1, width])
        let adam = try Adam()
        model.compile(optimizer: adam, loss: MeanSquaredError())
        try adam.build(model.trainableWeights)
        let parameters = model.weights.reduce(0) { $0 + $1.scalarCount }
        if !json { print("model: \(layers) × Dense(\(width)), \(parameters) parameters, Adam (\(adam.weights.count) optimizer weights)") }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func path(_ name: String) -> String { URL(fileURLWithPath: folder).appendingPathComponent(name).path }
        func size(_ p: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0 }
        defer {
            for name in ["descent-ckpt.h5", "descent-ckpt.keras", "descent-ckpt.weights.h5", "descent-disk.bin"] { unlink(path(name)) }
        }

        // The disk: as many bytes as the .h5 file, written and synced, from memory that already exists.
        let h5 = path("descent-ckpt.h5")
        try model.save(toFile: h5)
        let bytes = size(h5)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { buffer.deallocate() }
        memset(buffer.baseAddress!, 1, bytes)
        let disk = path("descent-disk.bin")
        report("write", "disk", bytes: bytes, try measure {
            let fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw CommandFailure(message: "cannot write \(disk)", status: 1) }
            var done = 0
            while done < bytes {
                let n = write(fd, buffer.baseAddress! + done, bytes - done)
                guard n > 0 else { break }
                done += n
            }
            fsync(fd)
            close(fd)
        })
        report("read", "disk", bytes: bytes, try measure {
            let fd = open(disk, O_RDONLY)
            var done = 0
            while done < bytes {
                let n = read(fd, buffer.baseAddress! + done, bytes - done)
                guard n > 0 else { break }
                done += n
            }
            close(fd)
        })

        report("save", "h5", bytes: bytes, try measure { try model.save(toFile: h5) })
        report("load", "h5", bytes: bytes, try measure { withExtendedLifetime(try loadModel(fromFile: h5)) {} })
        report("loadw", "h5", bytes: bytes, try measure {
            // The weights alone (/model_weights, a third of the file) into the existing model.
            try model.loadWeights(fromFile: h5)
        })
        let keras = path("descent-ckpt.keras")
        try model.save(toFile: keras)
        report("save", "keras", bytes: size(keras), try measure { try model.save(toFile: keras) })
        report("load", "keras", bytes: size(keras), try measure { withExtendedLifetime(try loadModel(fromFile: keras)) {} })
        let tfWeights = path("descent-ckpt-weights.h5")
        defer { unlink(tfWeights) }
        try model.saveWeights(toFile: tfWeights)
        report("save", "weights-only.h5", bytes: size(tfWeights), try measure { try model.saveWeights(toFile: tfWeights) })
        report("load", "weights-only.h5", bytes: size(tfWeights), try measure { try model.loadWeights(fromFile: tfWeights) })
        let weights = path("descent-ckpt.weights.h5")
        try model.saveWeights(toFile: weights)
        report("save", "weights.h5", bytes: size(weights), try measure { try model.saveWeights(toFile: weights) })
        report("load", "weights.h5", bytes: size(weights), try measure { try model.loadWeights(fromFile: weights) })
    }
}
