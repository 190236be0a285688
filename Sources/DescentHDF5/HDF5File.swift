import CDescentHDF5
@_spi(DescentInternals) import DescentTensor
#if canImport(Glibc)
import Glibc
#endif

/// An HDF5 file opened for reading.
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

    /// The name errors use (the path given, or the caller's display name).
    public let name: String
    private let id: hid_t

    /// Opens the HDF5 file at `path` read-only.
    /// - Parameter displayName: the name errors use (default `path`), e.g. `"m.keras/model.weights.h5"`
    ///   for a file extracted from a zip.
    /// - Throws: ``HDF5Error`` when the file cannot be opened, is not an HDF5 file, or is truncated or
    ///   damaged where libhdf5 reads it first.
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
        id = try HDF5Library.withLibrary {
            let signature = H5Fis_hdf5(path)
            guard signature > 0 else {
                throw signature == 0 ? HDF5Error(file: name, path: "/", message: "not an HDF5 file (no HDF5 signature)")
                    : HDF5Library.failure(name, "/", "cannot open")
            }
            return try HDF5Library.check(H5Fopen(path, descent_h5f_acc_rdonly(), hid_t(H5P_DEFAULT)), name, "/",
                                         "cannot open as HDF5 (truncated or damaged?)")
        }
    }

    deinit {
        let id = self.id
        HDF5Library.withLibrary { _ = H5Fclose(id) }
    }

    // MARK: Objects

    /// Whether the object at `path` (absolute, `/`-separated) exists and what it is; `nil` when there is
    /// nothing there (or something other than a group or dataset, such as a named datatype).
    public func kind(of path: String) throws -> ObjectKind? {
        try HDF5Library.withLibrary { try unlockedKind(of: path) }
    }

    private func unlockedKind(of path: String) throws -> ObjectKind? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var prefix = ""
        for part in parts {
            prefix += "/" + part
            let exists = H5Lexists(id, prefix, hid_t(H5P_DEFAULT))
            if exists < 0 { throw HDF5Library.failure(name, prefix, "cannot look up") }
            if exists == 0 { return nil }
        }
        let object = H5Oopen(id, parts.isEmpty ? "/" : path, hid_t(H5P_DEFAULT))
        guard object >= 0 else { throw HDF5Library.failure(name, path, "cannot open the object (damaged file?)") }
        defer { H5Oclose(object) }
        switch H5Iget_type(object) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return nil
        }
    }

    /// Opens the group at `path` (it must be one) for `body`.
    private func withGroup<R>(_ path: String, _ body: (hid_t) throws -> R) throws -> R {
        guard try unlockedKind(of: path) == .group else {
            throw HDF5Error(file: name, path: path, message: "expected a group, but there is none")
        }
        let group = try HDF5Library.check(H5Gopen2(id, path, hid_t(H5P_DEFAULT)), name, path, "cannot open the group")
        defer { H5Gclose(group) }
        return try body(group)
    }

    /// The names of the members of the group at `path`, in name order.
    /// - Throws: ``HDF5Error`` when `path` is not a group.
    public func memberNames(ofGroup path: String) throws -> [String] {
        try HDF5Library.withLibrary {
            try withGroup(path) { group in
                var info = H5G_info_t()
                try HDF5Library.check(H5Gget_info(group, &info), name, path, "cannot read the group")
                return try (0..<info.nlinks).map { i in
                    try readName(path) { buffer, size in
                        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, buffer, size, hid_t(H5P_DEFAULT))
                    }
                }
            }
        }
    }

    /// Reads a name through a libhdf5 call that returns its length first (`buffer` nil), then fills it.
    private func readName(_ path: String, _ call: (UnsafeMutablePointer<CChar>?, Int) -> Int) throws -> String {
        let length = call(nil, 0)
        guard length >= 0 else { throw HDF5Library.failure(name, path, "cannot read a name") }
        var buffer = [CChar](repeating: 0, count: length + 1)
        guard call(&buffer, length + 1) >= 0 else { throw HDF5Library.failure(name, path, "cannot read a name") }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Attributes

    /// The names of the attributes of the object at `path`, in name order.
    public func attributeNames(of path: String) throws -> [String] {
        try HDF5Library.withLibrary {
            guard try unlockedKind(of: path) != nil else {
                throw HDF5Error(file: name, path: path, message: "expected a group or dataset, but there is none")
            }
            var info = H5O_info_t()
            try HDF5Library.check(H5Oget_info_by_name(id, path, &info, hid_t(H5P_DEFAULT)), name, path, "cannot read the object")
            return try (0..<info.num_attrs).map { i in
                try readName(path) { buffer, size in
                    H5Aget_name_by_idx(id, path, H5_INDEX_NAME, H5_ITER_INC, i, buffer, size, hid_t(H5P_DEFAULT))
                }
            }
        }
    }

    /// The attribute `attribute` of the object at `path`, or `nil` when the object has none of that name.
    /// - Throws: ``HDF5Error`` when the object does not exist, or the attribute is of a type other than
    ///   strings, integers or floating-point numbers, or of rank above 1.
    public func attribute(_ attribute: String, of path: String) throws -> HDF5AttributeValue? {
        try HDF5Library.withLibrary {
            guard try unlockedKind(of: path) != nil else {
                throw HDF5Error(file: name, path: path, message: "expected a group or dataset, but there is none")
            }
            let here = "\(path) attribute '\(attribute)'"
            let exists = H5Aexists_by_name(id, path, attribute, hid_t(H5P_DEFAULT))
            if exists < 0 { throw HDF5Library.failure(name, here, "cannot look up") }
            if exists == 0 { return nil }
            let a = try HDF5Library.check(H5Aopen_by_name(id, path, attribute, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), name, here, "cannot open")
            defer { H5Aclose(a) }
            let type = try HDF5Library.check(H5Aget_type(a), name, here, "cannot read the type")
            defer { H5Tclose(type) }
            let space = try HDF5Library.check(H5Aget_space(a), name, here, "cannot read the shape")
            defer { H5Sclose(space) }
            let (count, scalar) = try elementCount(space, here)
            return try readAttribute(a, type: type, count: count, scalar: scalar, path: here)
        }
    }

    /// The element count of a dataspace, and whether it is scalar; rank ≤ 1 only for attributes.
    private func elementCount(_ space: hid_t, _ path: String, maximumRank: Int32 = 1) throws -> (Int, Bool) {
        let kind = H5Sget_simple_extent_type(space)
        if kind == H5S_SCALAR { return (1, true) }
        if kind == H5S_NULL { return (0, false) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0, rank <= maximumRank else {
            throw HDF5Error(file: name, path: path, message: "expected at most \(maximumRank) dimension(s), got \(rank)")
        }
        let count = H5Sget_simple_extent_npoints(space)
        guard count >= 0, count <= 1 << 24 else {
            throw HDF5Error(file: name, path: path, message: "an attribute of \(count) elements is larger than any Keras writes")
        }
        return (Int(count), false)
    }

    private func readAttribute(_ a: hid_t, type: hid_t, count: Int, scalar: Bool, path: String) throws -> HDF5AttributeValue {
        switch H5Tget_class(type) {
        case H5T_STRING:
            let strings = try readStrings(type: type, count: count, path: path) { memoryType, buffer in H5Aread(a, memoryType, buffer) }
            return scalar ? .string(strings.first ?? "") : .strings(strings)
        case H5T_INTEGER:
            var values = [Int64](repeating: 0, count: max(count, 1))
            try HDF5Library.check(H5Aread(a, descent_h5t_native_int64(), &values), name, path, "cannot read")
            return .integers(Array(values.prefix(count)), scalar: scalar)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: max(count, 1))
            try HDF5Library.check(H5Aread(a, descent_h5t_native_double(), &values), name, path, "cannot read")
            return .doubles(Array(values.prefix(count)), scalar: scalar)
        default:
            throw HDF5Error(file: name, path: path, message: "expected strings or numbers, got HDF5 type class \(H5Tget_class(type).rawValue)")
        }
    }

    /// Reads `count` strings of the file string type `type` (fixed or variable length) through `read`.
    private func readStrings(type: hid_t, count: Int, path: String, _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
        let variable = H5Tis_variable_str(type)
        guard variable >= 0 else { throw HDF5Library.failure(name, path, "cannot read the string type") }
        let memoryType = try HDF5Library.check(H5Tcopy(descent_h5t_c_s1()), name, path, "H5Tcopy")
        defer { H5Tclose(memoryType) }
        H5Tset_cset(memoryType, H5Tget_cset(type))
        if variable > 0 {
            H5Tset_size(memoryType, descent_h5t_variable())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: max(count, 1))
            let status = pointers.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
            guard status >= 0 else { throw HDF5Library.failure(name, path, "cannot read") }
            defer { for p in pointers where p != nil { H5free_memory(p) } }
            return pointers.prefix(count).map { $0.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: strlen($0)), as: UTF8.self) } ?? "" }
        }
        let width = H5Tget_size(type)
        guard width > 0, width <= 1 << 20, count * width <= 1 << 26 else {
            throw HDF5Error(file: name, path: path, message: "a fixed-length string type of \(width) bytes × \(count) is larger than any Keras writes")
        }
        H5Tset_size(memoryType, width)
        H5Tset_strpad(memoryType, H5T_STR_NULLPAD)
        var bytes = [UInt8](repeating: 0, count: max(count * width, 1))
        let status = bytes.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
        guard status >= 0 else { throw HDF5Library.failure(name, path, "cannot read") }
        return (0..<count).map { i in
            let slice = bytes[(i * width)..<((i + 1) * width)]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
        }
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
        guard try unlockedKind(of: path) == .dataset else {
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
                let memoryType = HDF5WritingTypes.memoryType(dtype)
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

/// Memory types for reading.
enum HDF5WritingTypes {
    static func memoryType(_ dtype: DType) -> hid_t {
        switch dtype {
        case .float32: return descent_h5t_native_float()
        case .float64: return descent_h5t_native_double()
        case .int64: return descent_h5t_native_int64()
        }
    }
}
