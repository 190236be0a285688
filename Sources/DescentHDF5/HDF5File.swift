import CDescentHDF5
@_spi(DescentInternals) import DescentTensor
#if canImport(Glibc)
import Glibc
#endif

/// An HDF5 file opened for reading. Its metadata is decoded in a child process (see
/// ``init(readingFrom:displayName:)``); datasets are read here, straight into tensors.
///
/// Every method names the file and the object's path in the ``HDF5Error`` it throws, and checks what a
/// damaged file could make unsafe before acting on it: a dataset's shape goes through
/// ``Shape/elementCount(_:operation:)`` and the machine's memory before anything is allocated, and a
/// contiguous dataset must have all its bytes in the file (libhdf5 would return fill values for the
/// missing ones: silently wrong weights).
///
/// ```swift
/// let file = try HDF5File(readingFrom: "w.h5")
/// let names = try file.attribute("layer_names", of: "/")?.stringList
/// let kernel = try file.readDataset(at: "/dense/dense/kernel:0")
/// ```
public final class HDF5File {
    /// What an object in the file is.
    public enum ObjectKind: Sendable, Equatable {
        case group, dataset
    }

    /// How long reading the metadata may take before the file is called damaged (a damaged file can send
    /// libhdf5 into an endless loop): 10 s, or `DESCENT_HDF5_METADATA_TIMEOUT_MS` milliseconds (the fuzz
    /// harness uses 2000). A Keras file's metadata takes milliseconds.
    static var metadataTimeoutMilliseconds: Int {
        if let text = getenv("DESCENT_HDF5_METADATA_TIMEOUT_MS").map({ String(cString: $0) }), let ms = Int(text), ms > 0, ms <= 3_600_000 {
            return ms
        }
        return 10_000
    }

    /// The name errors use (the path given, or the caller's display name).
    public let name: String
    private let id: hid_t
    private let metadata: HDF5Metadata

    /// Opens the HDF5 file at `path` read-only.
    ///
    /// Its metadata (every object and attribute) is decoded in a forked child process and handed back
    /// through a pipe (CDescentHDF5/metadata.h): Debian's libhdf5 1.10.8 can overrun a buffer while
    /// decoding a damaged file's attributes (a global heap object longer than the string that refers
    /// to it), and such a file then gives an ``HDF5Error`` instead of corrupting this process. The cost
    /// is a `fork` and the metadata's size in a pipe: about a millisecond for a Keras file. The fork waits
    /// for matrix products running on other threads to finish (`OpenBLASForkGate`: forking during one
    /// can hang OpenBLAS for good).
    /// - Parameter displayName: the name errors use (default `path`), e.g. `"m.keras/model.weights.h5"`
    ///   for a file extracted from a zip.
    /// - Throws: ``HDF5Error`` when the file cannot be opened, is not an HDF5 file, or is truncated or
    ///   damaged.
    public init(readingFrom path: String, displayName: String? = nil) throws {
        let name = displayName ?? path
        self.name = name
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw HDF5Error(file: name, path: "/", message: "cannot open: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw HDF5Error(file: name, path: "/", message: "not a regular file")
        }
        (id, metadata) = try HDF5Library.withLibrary {
            let signature = H5Fis_hdf5(path)
            guard signature > 0 else {
                throw signature == 0 ? HDF5Error(file: name, path: "/", message: "not an HDF5 file (no HDF5 signature)")
                    : HDF5Library.failure(name, "/", "cannot open")
            }
            let metadata = try HDF5Metadata.read(path: path, name: name, timeoutMilliseconds: HDF5File.metadataTimeoutMilliseconds)
            let id = try HDF5Library.check(H5Fopen(path, descent_h5f_acc_rdonly(), hid_t(H5P_DEFAULT)), name, "/",
                                           "cannot open as HDF5 (truncated or damaged?)")
            return (id, metadata)
        }
    }

    deinit {
        let id = self.id
        HDF5Library.withLibrary { _ = H5Fclose(id) }
    }

    // MARK: Objects

    /// `path` as the metadata keys it: absolute, no trailing or repeated `/`.
    static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// Whether the object at `path` (absolute, `/`-separated) exists and what it is; `nil` when there is
    /// nothing there (or something other than a group or dataset, such as a named datatype).
    public func kind(of path: String) throws -> ObjectKind? {
        metadata.objects[HDF5File.normalized(path)] ?? nil
    }

    /// The names of the members of the group at `path`, in name order.
    /// - Throws: ``HDF5Error`` when `path` is not a group.
    public func memberNames(ofGroup path: String) throws -> [String] {
        let group = HDF5File.normalized(path)
        guard metadata.objects[group] == .group else {
            throw HDF5Error(file: name, path: path, message: "expected a group, but there is none")
        }
        let prefix = group == "/" ? "/" : group + "/"
        return metadata.objects.keys.filter { $0.hasPrefix(prefix) && $0 != group && !$0.dropFirst(prefix.count).contains("/") }
            .map { String($0.dropFirst(prefix.count)) }.sorted()
    }

    // MARK: Attributes

    /// The names of the attributes of the object at `path`, in name order.
    public func attributeNames(of path: String) throws -> [String] {
        let key = HDF5File.normalized(path)
        guard metadata.objects[key] != nil else {
            throw HDF5Error(file: name, path: path, message: "expected a group or dataset, but there is none")
        }
        return (metadata.attributes[key] ?? [:]).keys.sorted()
    }

    /// The attribute `attribute` of the object at `path`, or `nil` when the object has none of that name.
    /// - Throws: ``HDF5Error`` when the object does not exist, or the attribute is of a type other than
    ///   strings, integers or floating-point numbers.
    public func attribute(_ attribute: String, of path: String) throws -> HDF5AttributeValue? {
        let key = HDF5File.normalized(path)
        guard metadata.objects[key] != nil else {
            throw HDF5Error(file: name, path: path, message: "expected a group or dataset, but there is none")
        }
        return try metadata.attributes[key]?[attribute]?.get()
    }

    // MARK: Datasets

    /// The shape and dtype a dataset reads as: float types of up to 4 bytes as `float32`, 8-byte floats
    /// as `float64`, integers as `int64`.
    /// - Throws: ``HDF5Error`` when `path` is not a dataset of numbers.
    public func datasetInfo(at path: String) throws -> (shape: [Int], dtype: DType) {
        try HDF5Library.withLibrary { try withDataset(path) { _, shape, dtype, _ in (shape, dtype) } }
    }

    /// Opens the dataset at `path` for `body` with its shape, dtype and the number of bytes a read
    /// produces (checked against the bytes the file holds for it).
    private func withDataset<R>(_ path: String, _ body: (hid_t, [Int], DType, Int) throws -> R) throws -> R {
        guard try kind(of: path) == .dataset else {
            throw HDF5Error(file: name, path: path, message: "expected a dataset, but there is none")
        }
        let d = try HDF5Library.check(H5Dopen2(id, path, hid_t(H5P_DEFAULT)), name, path, "cannot open the dataset")
        defer { H5Dclose(d) }
        let type = try HDF5Library.check(H5Dget_type(d), name, path, "cannot read the type")
        defer { H5Tclose(type) }
        let dtype: DType
        switch H5Tget_class(type) {
        case H5T_FLOAT: dtype = H5Tget_size(type) > 4 ? .float64 : .float32
        case H5T_INTEGER: dtype = .int64
        default:
            throw HDF5Error(file: name, path: path, message: "expected a dataset of numbers, got HDF5 type class \(H5Tget_class(type).rawValue)")
        }
        let space = try HDF5Library.check(H5Dget_space(d), name, path, "cannot read the shape")
        defer { H5Sclose(space) }
        var shape: [Int] = []
        switch H5Sget_simple_extent_type(space) {
        case H5S_SCALAR: shape = []
        case H5S_SIMPLE:
            let rank = H5Sget_simple_extent_ndims(space)
            guard rank >= 0, rank <= 32 else { throw HDF5Error(file: name, path: path, message: "expected at most 32 dimensions, got \(rank)") }
            var dims = [hsize_t](repeating: 0, count: Int(rank))
            guard H5Sget_simple_extent_dims(space, &dims, nil) == rank else { throw HDF5Library.failure(name, path, "cannot read the shape") }
            guard dims.allSatisfy({ $0 <= hsize_t(Int.max) }) else {
                throw HDF5Error(file: name, path: path, message: "dimensions \(dims) are too large")
            }
            shape = dims.map { Int($0) }
        default:
            throw HDF5Error(file: name, path: path, message: "the dataset has no data (null dataspace)")
        }
        let count: Int
        do {
            count = try Shape.elementCount(shape, operation: "dataset")
        } catch {
            throw HDF5Error(file: name, path: path, message: "\(error)")
        }
        let bytes = count * dtype.byteSize  // cannot overflow: elementCount keeps count × 8 in range
        // A contiguous dataset must have all of its bytes in the file; a damaged header can claim
        // data that is not there, and libhdf5 would then read fill values (zeros) instead.
        let plist = try HDF5Library.check(H5Dget_create_plist(d), name, path, "cannot read the layout")
        defer { H5Pclose(plist) }
        if H5Pget_layout(plist) == H5D_CONTIGUOUS && count > 0 {
            let stored = H5Dget_storage_size(d)
            let fileBytes = hsize_t(count) * hsize_t(H5Tget_size(type))
            guard stored == fileBytes else {
                throw HDF5Error(file: name, path: path, message: "the file holds \(stored) bytes of data for a dataset of shape \(shape) that needs \(fileBytes)")
            }
        }
        return try body(d, shape, dtype, bytes)
    }

    /// Reads the dataset at `path` into a new tensor (``datasetInfo(at:)`` gives its shape and dtype),
    /// copying the elements from the file straight into the tensor's memory.
    /// - Throws: ``HDF5Error`` naming the file and `path` when it is not a dataset of numbers, is too
    ///   large for this machine, or cannot be read (truncated or damaged file).
    public func readDataset(at path: String) throws -> Tensor {
        try HDF5Library.withLibrary {
            try withDataset(path) { d, shape, dtype, _ in
                let memoryType = hdf5Types(dtype).memory
                do {
                    return try Tensor(shape: shape, dtype: dtype, operation: "dataset") { buffer in
                        guard buffer.count > 0 else { return }
                        let all = descent_h5s_all()
                        guard H5Dread(d, memoryType, all, all, hid_t(H5P_DEFAULT), buffer.baseAddress) >= 0 else {
                            throw HDF5Library.failure(name, path, "cannot read the data (truncated or damaged file?)")
                        }
                    }
                } catch let error as TensorError {
                    throw HDF5Error(file: name, path: path, message: "\(error)")
                }
            }
        }
    }
}
