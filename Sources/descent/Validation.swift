import ArgumentParser
import Descent
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// Option checks shared by the subcommands. Every failed check throws ArgumentParser's
// `ValidationError` naming the option, the limit and the value; `DescentCommand.main` prints it as
// `error: ...` and exits with status 2.
//
// Numeric options are declared with `parsing: .unconditional`, so that `--epochs -1` reads `-1` as the
// value (ArgumentParser would otherwise take it for an option name and report a missing value) and the
// range check can say what is wrong.

/// Limits of the command-line options, with their reasons.
enum OptionLimits {
    /// The widest hidden layer `--hidden` accepts: far beyond what the digits need, and small enough
    /// that a layer's weight matrix is counted without overflow.
    static let maxHiddenSize = 1_000_000
    /// The most hidden layers `--hidden` accepts.
    static let maxHiddenLayers = 100
    /// The most threads `--threads` accepts (OpenBLAS and the thread pool take an `Int32` count; a
    /// thread per core is the useful range).
    static let maxThreads = 1024
}

/// Throws unless `value > 0`.
func requirePositive(_ value: Int, _ option: String) throws {
    guard value > 0 else { throw ValidationError("\(option) must be positive, got \(value)") }
}

/// Throws unless `value >= 0`.
func requireNonNegative(_ value: Int, _ option: String) throws {
    guard value >= 0 else { throw ValidationError("\(option) must be >= 0, got \(value)") }
}

/// Throws unless the learning rate is a finite number > 0.
func requireLearningRate(_ value: Double?, _ option: String = "--learning-rate") throws {
    guard let value else { return }
    guard value.isFinite, value > 0 else {
        throw ValidationError("\(option) must be a finite number > 0, got \(value)")
    }
}

/// Throws unless `threads` is nil or in 1...``OptionLimits/maxThreads``.
func requireThreads(_ threads: Int?) throws {
    guard let threads else { return }
    guard threads >= 1, threads <= OptionLimits.maxThreads else {
        throw ValidationError("--threads must be between 1 and \(OptionLimits.maxThreads), got \(threads)")
    }
}

/// The machine's physical memory in bytes.
func physicalMemoryBytes() -> Double {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, size > 0 else { return 16 * 1024 * 1024 * 1024 }  // unknown: assume 16 GiB
    return Double(pages) * Double(size)
}

/// `1.5 GB`, `24.0 TB`.
func formatBytes(_ bytes: Double) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
    var value = bytes, unit = 0
    while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
    return unit == 0 ? "\(Int(value)) bytes" : String(format: "%.1f %@", value, units[unit] as NSString)
}

/// Throws unless `bytes` (an estimate of what `what` needs) fits in the machine's physical memory.
func requireMemory(_ bytes: Double, for what: String) throws {
    let available = physicalMemoryBytes()
    guard bytes <= available else {
        throw ValidationError("\(what) needs about \(formatBytes(bytes)) of memory; this machine has \(formatBytes(available))")
    }
}

/// Throws unless a file can be created at `path`: its folder exists and is writable. Checked before
/// training, so a typo does not cost a whole run.
func requireWritableFile(_ path: String, _ option: String) throws {
    guard !path.isEmpty else { throw ValidationError("\(option) needs a file path") }
    let url = URL(fileURLWithPath: path)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("\(option) \(path) is a folder, not a file")
    }
    let folder = url.deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(option) \(path): the folder \(folder) does not exist")
    }
    guard access(folder, W_OK) == 0 else {
        throw ValidationError("\(option) \(path): cannot write in \(folder): \(String(cString: strerror(errno)))")
    }
}

/// A JSON number, or `null` for NaN and ±infinity (which JSON cannot represent).
func jsonNumber(_ value: Double) -> JSONValue { value.isFinite ? .double(value) : .null }

/// A failure after the options were accepted, with the exit status to use (1 for a failed run).
struct CommandFailure: Error, CustomStringConvertible {
    /// What went wrong (printed after `error: `).
    let message: String
    /// The process exit status.
    let status: Int32
    var description: String { message }
}
