import CDescentHDF5
@_spi(DescentInternals) import DescentTensor
#if canImport(Glibc)
import Glibc
#endif

/// An HDF5 file's metadata, read in a child process (`descent_h5_start_metadata` in
/// CDescentHDF5/metadata.h): every object's path and kind, and every attribute's value.
///
/// The parent process never decodes attributes itself: a damaged file can make libhdf5 1.10.8
/// overrun a buffer while decoding them, and then only the child is hurt.
struct HDF5Metadata {
    /// Object kinds by absolute path (`"/"`, `"/model_weights/dense"`).
    var objects: [String: HDF5File.ObjectKind?] = [:]
    /// Attributes by object path, then name; `nil` for a type Descent does not read (its HDF5 class).
    var attributes: [String: [String: Result<HDF5AttributeValue, HDF5Error>]] = [:]

    /// The largest stream accepted (attribute text beyond this is not a Keras file).
    static let maximumBytes = 1 << 28

    /// Reads the metadata of `path` in a child process.
    /// - Throws: ``HDF5Error`` naming `name` when libhdf5 reports an error (with its message), the child
    ///   crashes or hangs (a damaged file), or the process cannot fork.
    static func read(path: String, name: String, timeoutMilliseconds: Int) throws -> HDF5Metadata {
        var child = descent_h5_child()
        // The fork alone runs with OpenBLAS's products held off: fork() runs OpenBLAS's atfork handler,
        // which hangs for good if a product runs on another thread meanwhile (see OpenBLASForkGate). The
        // wait for the child (up to the timeout) does not hold them off.
        let started = OpenBLASForkGate.forking { descent_h5_start_metadata(path, &child) }
        guard started == 0 else {
            throw HDF5Error(file: name, path: "/", message: "cannot read: fork or pipe failed (\(String(cString: strerror(started))))")
        }
        var buffer: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = descent_h5_collect_metadata(child, Int32(timeoutMilliseconds), maximumBytes, &buffer, &length)
        defer { free(buffer) }
        let bytes = buffer.map { UnsafeBufferPointer(start: $0, count: length) } ?? UnsafeBufferPointer(start: nil, count: 0)
        switch status {
        case 0, 3:
            var reader = StreamReader(bytes: bytes, file: name)
            return try reader.metadata(complete: status == 0)
        case 2000:
            throw HDF5Error(file: name, path: "/", message: "damaged: reading its metadata did not finish in \(timeoutMilliseconds / 1000) s or gave more than \(maximumBytes >> 20) MiB")
        case 4:
            throw HDF5Error(file: name, path: "/", message: "cannot read: the metadata stream from the child process broke")
        default:
            let how = status >= 1000 ? "signal \(status - 1000)" : "exit status \(status)"
            throw HDF5Error(file: name, path: "/", message: "damaged: libhdf5 crashed reading its metadata (in a child process: \(how))")
        }
    }

    /// Parses the stream (format in metadata.h).
    struct StreamReader {
        let bytes: UnsafeBufferPointer<UInt8>
        let file: String
        var offset = 0

        init(bytes: UnsafeBufferPointer<UInt8>, file: String) {
            self.bytes = bytes
            self.file = file
        }

        func broken() -> HDF5Error { HDF5Error(file: file, path: "/", message: "cannot read: the metadata stream from the child process is malformed") }

        mutating func byte() throws -> UInt8 {
            guard offset < bytes.count else { throw broken() }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u64() throws -> UInt64 {
            guard bytes.count - offset >= 8 else { throw broken() }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            offset += 8
            return v
        }

        mutating func count() throws -> Int {
            let v = try u64()
            guard v <= UInt64(bytes.count - offset) || v <= 1 << 24 else { throw broken() }
            return Int(v)
        }

        mutating func string() throws -> String {
            let n = try count()
            guard bytes.count - offset >= n else { throw broken() }
            defer { offset += n }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[offset..<(offset + n)]), as: UTF8.self)
        }

        mutating func metadata(complete: Bool) throws -> HDF5Metadata {
            var m = HDF5Metadata()
            while offset < bytes.count {
                switch try byte() {
                case UInt8(ascii: "O"):
                    let kind = try byte()
                    let path = try string()
                    m.objects[path] = kind == UInt8(ascii: "g") ? .group : kind == UInt8(ascii: "d") ? .dataset : .some(nil)
                case UInt8(ascii: "A"):
                    let path = try string(), name = try string()
                    let kind = try byte()
                    let scalar = try byte() != 0
                    let n = try count()
                    let here = "\(path) attribute '\(name)'"
                    let value: Result<HDF5AttributeValue, HDF5Error>
                    switch kind {
                    case UInt8(ascii: "s"):
                        var list: [String] = []
                        for _ in 0..<n { list.append(try string()) }
                        value = .success(scalar ? .string(list.first ?? "") : .strings(list))
                    case UInt8(ascii: "i"), UInt8(ascii: "f"):
                        guard bytes.count - offset >= n * 8 else { throw broken() }
                        var integers: [Int64] = [], doubles: [Double] = []
                        for _ in 0..<n {
                            let bits = try u64()
                            if kind == UInt8(ascii: "i") { integers.append(Int64(bitPattern: bits)) } else { doubles.append(Double(bitPattern: bits)) }
                        }
                        value = .success(kind == UInt8(ascii: "i") ? .integers(integers, scalar: scalar) : .doubles(doubles, scalar: scalar))
                    default:
                        value = .failure(HDF5Error(file: file, path: here, message: "expected strings or numbers, got HDF5 type class \(n)"))
                    }
                    m.attributes[path, default: [:]][name] = value
                case UInt8(ascii: "X"):
                    let message = try string()
                    throw HDF5Error(file: file, path: "/", message: "cannot read (truncated or damaged?): \(message)")
                case UInt8(ascii: "E"):
                    return m
                default:
                    throw broken()
                }
            }
            throw complete ? broken() : HDF5Error(file: file, path: "/", message: "cannot open as HDF5 (truncated or damaged?)")
        }
    }
}
