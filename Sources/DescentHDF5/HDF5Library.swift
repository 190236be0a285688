import CDescentHDF5
@_spi(DescentInternals) import DescentTensor

/// An error reading or writing an HDF5 file: the file, the path of the object inside it (`"/"` for the
/// file itself) and what went wrong, with libhdf5's own explanation when it gave one.
///
/// ```
/// m.h5: /model_weights/dense/dense/kernel:0: expected shape [64, 128], got [64, 100]
/// m.h5: not an HDF5 file (file signature not found)
/// ```
public struct HDF5Error: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (as the caller named it; `"m.keras/model.weights.h5"` for a file inside a zip).
    public let file: String
    /// The object's path inside the file (`"/"` for the file itself).
    public let path: String
    /// What was expected and what was found.
    public let message: String

    /// An error about the object at `path` in `file`.
    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String { path == "/" ? "\(file): \(message)" : "\(file): \(path): \(message)" }
}

/// The one place that talks to libhdf5's global state.
///
/// Every call into libhdf5 runs inside ``withLibrary(_:)``, which holds one process-wide lock: Debian's
/// serial libhdf5 is built thread-safe today (`H5_HAVE_THREADSAFE`), but that is a build option, and the
/// error stack read after a failed call must belong to that call. Saving and loading are not hot paths,
/// so one lock costs nothing measurable.
enum HDF5Library {
    /// Guards every libhdf5 call (see above). The state is whether the library was set up.
    private static let lock = SanitizerVisibleMutex(false)

    /// Runs `body` holding the library lock, after setting libhdf5 up once: `H5open`, and automatic
    /// error printing off (errors are read from the stack and thrown instead), and no clean-up at exit.
    static func withLibrary<R>(_ body: () throws -> R) rethrows -> R {
        try lock.withLock { initialized in
            if !initialized {
                // No clean-up at exit: a file libhdf5 could not close (a damaged one) would make it
                // print "infinite loop closing library" as the process ends; the OS frees everything.
                H5dont_atexit()
                H5open()
                H5Eset_auto2(descent_h5e_default(), nil, nil)
                initialized = true
            }
            H5Eclear2(descent_h5e_default())
            return try body()
        }
    }

    /// libhdf5's explanation of the call that just failed (the most specific messages of the current
    /// error stack), then clears the stack. Empty when libhdf5 recorded nothing.
    static func lastErrorText() -> String {
        final class Collector {
            var messages: [String] = []
        }
        let collector = Collector()
        let walk: H5E_walk2_t = { _, error, data in
            guard let error, let data else { return 0 }
            let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
            if let desc = error.pointee.desc {
                let text = String(cString: desc)
                if !text.isEmpty && !collector.messages.contains(text) { collector.messages.append(text) }
            }
            return 0
        }
        withExtendedLifetime(collector) {
            _ = H5Ewalk2(descent_h5e_default(), H5E_WALK_UPWARD, walk, Unmanaged.passUnretained(collector).toOpaque())
        }
        H5Eclear2(descent_h5e_default())
        return collector.messages.prefix(2).joined(separator: "; ")
    }

    /// `message`, followed by libhdf5's explanation in parentheses when there is one.
    static func failure(_ file: String, _ path: String, _ message: String) -> HDF5Error {
        let detail = lastErrorText()
        return HDF5Error(file: file, path: path, message: detail.isEmpty ? message : "\(message) (\(detail))")
    }

    /// Throws ``HDF5Error`` when a libhdf5 call returned a negative identifier or status.
    @discardableResult
    static func check<T: BinaryInteger>(_ result: T, _ file: String, _ path: String, _ what: @autoclosure () -> String) throws -> T {
        guard result >= 0 else { throw failure(file, path, what()) }
        return result
    }
}

/// The path of `name` inside the group at `group` (`"/"` + `"dense"` is `"/dense"`).
func joinPath(_ group: String, _ name: String) -> String {
    group.hasSuffix("/") ? group + name : group + "/" + name
}

/// The little-endian file type and the native memory type of a dtype (writing and reading both use them).
func hdf5Types(_ dtype: DType) -> (file: hid_t, memory: hid_t) {
    switch dtype {
    case .float32: return (descent_h5t_ieee_f32le(), descent_h5t_native_float())
    case .float64: return (descent_h5t_ieee_f64le(), descent_h5t_native_double())
    case .int64: return (descent_h5t_std_i64le(), descent_h5t_native_int64())
    }
}
