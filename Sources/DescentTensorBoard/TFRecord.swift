// TFRecord framing: the container of TensorBoard event files.

/// TFRecord framing, as TensorFlow's `io::RecordWriter` writes it: each record is
///
/// | bytes | content |
/// | --- | --- |
/// | 8 | the data's length `n`, little-endian `UInt64` |
/// | 4 | ``CRC32C/mask(_:)`` of the CRC-32C of those 8 bytes, little-endian |
/// | n | the data |
/// | 4 | the masked CRC-32C of the data, little-endian |
public enum TFRecord {
    /// The bytes of one record holding `data`.
    public static func frame(_ data: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        append(data, to: &out)
        return out
    }

    /// Appends the record holding `data` to `out`.
    public static func append(_ data: some Collection<UInt8>, to out: inout [UInt8]) {
        let header = littleEndianBytes(UInt64(data.count))
        out += header
        out += littleEndianBytes(CRC32C.mask(CRC32C.checksum(header)))
        out += data
        out += littleEndianBytes(CRC32C.mask(CRC32C.checksum(data)))
    }

    /// The data of every record in `bytes`, checking each length and checksum.
    /// - Parameter source: names the bytes in errors (a file path).
    /// - Throws: ``TensorBoardError/corruptRecord(path:offset:message:)`` at a truncated record or a
    ///   checksum that does not match.
    public static func records(in bytes: [UInt8], source: String = "<bytes>") throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else {
                throw TensorBoardError.corruptRecord(path: source, offset: offset, message: "truncated header: \(bytes.count - offset) of 12 bytes")
            }
            let header = bytes[offset..<offset + 8]
            let length = readUInt64(bytes, offset)
            guard readUInt32(bytes, offset + 8) == CRC32C.mask(CRC32C.checksum(header)) else {
                throw TensorBoardError.corruptRecord(path: source, offset: offset, message: "the length's checksum does not match")
            }
            let available = UInt64(bytes.count - offset - 12)
            guard length <= available, available - length >= 4 else {
                throw TensorBoardError.corruptRecord(path: source, offset: offset,
                                                     message: "truncated record: length \(length), \(available) bytes follow the header")
            }
            let start = offset + 12, end = start + Int(length)
            let data = Array(bytes[start..<end])
            guard readUInt32(bytes, end) == CRC32C.mask(CRC32C.checksum(data)) else {
                throw TensorBoardError.corruptRecord(path: source, offset: offset, message: "the data's checksum does not match")
            }
            result.append(data)
            offset = end + 4
        }
        return result
    }

    static func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    private static func readUInt64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << ($1 * 8) }
    }

    private static func readUInt32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << ($1 * 8) }
    }
}
