import CDescentHDF5
@_spi(DescentInternals) import DescentTensor
#if canImport(Glibc)
import Glibc
#endif

/// A group of an HDF5 file to write: its attributes, and its members (groups and datasets) in order.
///
/// Build the tree, then ``write(to:)`` it in one go. Datasets hold ``Tensor`` values (copy-on-write:
/// no copy is made), written contiguous and uncompressed straight from the tensors' memory, as h5py
/// writes Keras' weights.
///
/// ```swift
/// let root = HDF5Group()
/// root.setAttribute("backend", .string("tensorflow"))
/// root.addGroup("dense").addDataset("dense/kernel:0", kernel)   // intermediate groups are created
/// try root.write(to: "w.h5")
/// ```
public final class HDF5Group {
    /// A member of a group.
    public enum Member {
        /// A subgroup.
        case group(HDF5Group)
        /// A dataset with the tensor's shape, dtype and elements (float32 `<f4`, float64 `<f8`, int64
        /// `<i8`; a rank-0 tensor is a scalar dataset).
        case dataset(Tensor)
    }

    /// The attributes, in the order they are written.
    public private(set) var attributes: [(name: String, value: HDF5Attribute)] = []
    /// The members, in the order they are created. A name may contain `/`: the groups on the way are
    /// created as needed (as h5py does for `f["a/b"] = data`).
    public private(set) var members: [(name: String, member: Member)] = []

    /// An empty group.
    public init() {}

    /// Sets (or replaces) the attribute `name`.
    public func setAttribute(_ name: String, _ value: HDF5Attribute) {
        if let i = attributes.firstIndex(where: { $0.name == name }) {
            attributes[i].value = value
        } else {
            attributes.append((name, value))
        }
    }

    /// Adds the subgroup `name` (or returns the one already added under that name).
    @discardableResult
    public func addGroup(_ name: String) -> HDF5Group {
        for (n, m) in members where n == name {
            if case .group(let g) = m { return g }
        }
        let g = HDF5Group()
        members.append((name, .group(g)))
        return g
    }

    /// Adds the dataset `name` holding `value`.
    public func addDataset(_ name: String, _ value: Tensor) {
        members.append((name, .dataset(value)))
    }

    /// Writes the tree as a new HDF5 file, atomically (``AtomicFile/write(to:viaTemporaryFile:)``):
    /// the file at `path` is replaced only once the new one is complete and synced.
    /// - Throws: ``HDF5Error`` naming `path` and the object that could not be written, or
    ///   `FileWriteError`.
    public func write(to path: String) throws {
        try AtomicFile.write(to: path, viaTemporaryFile: { temporary in
            try HDF5Library.withLibrary { try writeFile(at: temporary, name: path) }
        })
    }

    /// Writes the tree as a new HDF5 file at `path` directly, without the atomic replace and fsync of
    /// ``write(to:)``: for scratch files that are copied elsewhere (a `.keras` archive's member).
    /// - Throws: ``HDF5Error`` naming `path`.
    public func write(toScratchFile path: String) throws {
        try HDF5Library.withLibrary { try writeFile(at: path, name: path) }
    }

    /// Writes the tree with libhdf5 at `temporary` (errors name `name`). Holds the library lock.
    private func writeFile(at temporary: String, name: String) throws {
        let file = try HDF5Library.check(
            H5Fcreate(temporary, descent_h5f_acc_trunc(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), name, "/", "cannot create the file")
        do {
            let lcpl = try HDF5Library.check(H5Pcreate(descent_h5p_link_create()), name, "/", "H5Pcreate")
            defer { H5Pclose(lcpl) }
            try HDF5Library.check(H5Pset_create_intermediate_group(lcpl, 1), name, "/", "H5Pset_create_intermediate_group")
            // No modification times in object headers (h5py's default too), so the same tree always
            // gives the same bytes.
            let gcpl = try HDF5Library.check(H5Pcreate(descent_h5p_group_create()), name, "/", "H5Pcreate")
            defer { H5Pclose(gcpl) }
            let dcpl = try HDF5Library.check(H5Pcreate(descent_h5p_dataset_create()), name, "/", "H5Pcreate")
            defer { H5Pclose(dcpl) }
            try HDF5Library.check(H5Pset_obj_track_times(gcpl, false), name, "/", "H5Pset_obj_track_times")
            try HDF5Library.check(H5Pset_obj_track_times(dcpl, false), name, "/", "H5Pset_obj_track_times")
            try HDF5Writing(file: name, linkCreation: lcpl, groupCreation: gcpl, datasetCreation: dcpl).write(self, into: file, path: "/")
        } catch {
            H5Fclose(file)
            throw error
        }
        try HDF5Library.check(H5Fclose(file), name, "/", "cannot finish the file")
    }
}

/// The libhdf5 calls that write a tree; used with the library lock held.
private struct HDF5Writing {
    let file: String
    let linkCreation: hid_t
    let groupCreation: hid_t
    let datasetCreation: hid_t

    func write(_ group: HDF5Group, into location: hid_t, path: String) throws {
        for (name, value) in group.attributes { try writeAttribute(name, value, on: location, path: path) }
        for (name, member) in group.members {
            let memberPath = joinPath(path, name)
            switch member {
            case .group(let g):
                let id = try HDF5Library.check(
                    H5Gcreate2(location, name, linkCreation, groupCreation, hid_t(H5P_DEFAULT)), file, memberPath, "cannot create the group")
                defer { H5Gclose(id) }
                try write(g, into: id, path: memberPath)
            case .dataset(let tensor):
                try writeDataset(name, tensor, into: location, path: memberPath)
            }
        }
    }

    func dataspace(_ shape: [Int], path: String) throws -> hid_t {
        if shape.isEmpty { return try HDF5Library.check(H5Screate(H5S_SCALAR), file, path, "H5Screate") }
        let dims = shape.map { hsize_t($0) }
        return try HDF5Library.check(H5Screate_simple(Int32(dims.count), dims, nil), file, path, "H5Screate_simple")
    }

    func writeDataset(_ name: String, _ tensor: Tensor, into location: hid_t, path: String) throws {
        let (fileType, memoryType) = hdf5Types(tensor.dtype)
        let space = try dataspace(tensor.shape, path: path)
        defer { H5Sclose(space) }
        let id = try HDF5Library.check(
            H5Dcreate2(location, name, fileType, space, linkCreation, datasetCreation, hid_t(H5P_DEFAULT)), file, path,
            "cannot create the dataset")
        defer { H5Dclose(id) }
        guard tensor.scalarCount > 0 else { return }
        let all = descent_h5s_all()
        let status: herr_t
        switch tensor.dtype {
        case .float32: status = try tensor.withUnsafeBufferPointer(as: Float.self) { H5Dwrite(id, memoryType, all, all, hid_t(H5P_DEFAULT), $0.baseAddress) }
        case .float64: status = try tensor.withUnsafeBufferPointer(as: Double.self) { H5Dwrite(id, memoryType, all, all, hid_t(H5P_DEFAULT), $0.baseAddress) }
        case .int64: status = try tensor.withUnsafeBufferPointer(as: Int64.self) { H5Dwrite(id, memoryType, all, all, hid_t(H5P_DEFAULT), $0.baseAddress) }
        }
        try HDF5Library.check(status, file, path, "cannot write the dataset")
    }

    /// A variable-length string type with `cset`.
    func variableStringType(_ cset: HDF5CharacterSet, path: String) throws -> hid_t {
        let type = try HDF5Library.check(H5Tcopy(descent_h5t_c_s1()), file, path, "H5Tcopy")
        H5Tset_size(type, descent_h5t_variable())
        H5Tset_cset(type, cset == .utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
        H5Tset_strpad(type, H5T_STR_NULLTERM)
        return type
    }

    func writeAttribute(_ name: String, _ value: HDF5Attribute, on location: hid_t, path: String) throws {
        let attributePath = "\(path) attribute '\(name)'"
        func create(_ type: hid_t, _ space: hid_t) throws -> hid_t {
            try HDF5Library.check(H5Acreate2(location, name, type, space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), file, attributePath,
                                  "cannot create the attribute")
        }
        switch value {
        case .string(let text, let cset):
            let type = try variableStringType(cset, path: attributePath)
            defer { H5Tclose(type) }
            let space = try dataspace([], path: attributePath)
            defer { H5Sclose(space) }
            let a = try create(type, space)
            defer { H5Aclose(a) }
            let status = text.withCString { pointer -> herr_t in
                var p: UnsafePointer<CChar>? = pointer
                return H5Awrite(a, type, &p)
            }
            try HDF5Library.check(status, file, attributePath, "cannot write the attribute")
        case .strings(let list, let cset):
            let type = try variableStringType(cset, path: attributePath)
            defer { H5Tclose(type) }
            let space = try dataspace([list.count], path: attributePath)
            defer { H5Sclose(space) }
            let a = try create(type, space)
            defer { H5Aclose(a) }
            var pointers: [UnsafeMutablePointer<CChar>?] = list.map { strdup($0) }
            defer { pointers.forEach { free($0) } }
            if pointers.contains(where: { $0 == nil }) {
                throw HDF5Error(file: file, path: attributePath, message: "out of memory")
            }
            try HDF5Library.check(H5Awrite(a, type, &pointers), file, attributePath, "cannot write the attribute")
        case .fixedStrings(let list):
            if list.isEmpty { return try writeAttribute(name, .doubles([]), on: location, path: path) }
            let width = max(1, list.map(\.utf8.count).max() ?? 1)
            let type = try HDF5Library.check(H5Tcopy(descent_h5t_c_s1()), file, attributePath, "H5Tcopy")
            defer { H5Tclose(type) }
            H5Tset_size(type, width)
            H5Tset_strpad(type, H5T_STR_NULLPAD)
            H5Tset_cset(type, H5T_CSET_ASCII)
            var bytes = [UInt8](repeating: 0, count: width * list.count)
            for (i, s) in list.enumerated() {
                for (j, b) in s.utf8.enumerated() { bytes[i * width + j] = b }
            }
            let space = try dataspace([list.count], path: attributePath)
            defer { H5Sclose(space) }
            let a = try create(type, space)
            defer { H5Aclose(a) }
            try HDF5Library.check(H5Awrite(a, type, bytes), file, attributePath, "cannot write the attribute")
        case .doubles(let values):
            let space = try dataspace([values.count], path: attributePath)
            defer { H5Sclose(space) }
            let a = try create(descent_h5t_ieee_f64le(), space)
            defer { H5Aclose(a) }
            // An empty array still needs a valid buffer pointer.
            let status = values.isEmpty ? [0.0].withUnsafeBufferPointer { H5Awrite(a, descent_h5t_native_double(), $0.baseAddress) }
                : values.withUnsafeBufferPointer { H5Awrite(a, descent_h5t_native_double(), $0.baseAddress) }
            try HDF5Library.check(status, file, attributePath, "cannot write the attribute")
        case .int64(let v):
            let space = try dataspace([], path: attributePath)
            defer { H5Sclose(space) }
            let a = try create(descent_h5t_std_i64le(), space)
            defer { H5Aclose(a) }
            var value = v
            try HDF5Library.check(H5Awrite(a, descent_h5t_native_int64(), &value), file, attributePath, "cannot write the attribute")
        }
    }
}
