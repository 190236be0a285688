// crc32c (Castagnoli), the checksum of TFRecord framing, computed slicing-by-8.

/// The CRC-32C checksum (Castagnoli polynomial `0x1EDC6F41`, reflected `0x82F63B78`; initial value and
/// final XOR `0xFFFFFFFF`), as TensorFlow's `crc32c::Value`, and TFRecord's masking of it.
///
/// `checksum(Array("123456789".utf8)) == 0xE306_9283`.
public enum CRC32C {
    /// `tables[k][b]`: the CRC of byte `b` followed by `k` zero bytes (slicing-by-8).
    private static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for b in 0..<256 {
            var c = UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (c & 1 == 0 ? 0 : 0x82F6_3B78) }
            t[0][b] = c
        }
        for k in 1..<8 {
            for b in 0..<256 { t[k][b] = (t[k - 1][b] >> 8) ^ t[0][Int(t[k - 1][b] & 0xFF)] }
        }
        return t
    }()

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        extend(0, bytes)
    }

    /// The CRC-32C of the bytes that gave `crc` followed by `bytes` (TensorFlow's `crc32c::Extend`):
    /// `extend(checksum(a), b) == checksum(a + b)`.
    public static func extend(_ crc: UInt32, _ bytes: some Collection<UInt8>) -> UInt32 {
        let fast = bytes.withContiguousStorageIfAvailable { buffer in
            extend(crc, UnsafeRawBufferPointer(buffer))
        }
        if let fast { return fast }
        return extend(crc, Array(bytes))
    }

    private static func extend(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        var i = 0
        let n = buffer.count
        tables.withUnsafeBufferPointer { t in
            let t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7]
            while n - i >= 8 {
                // Little-endian words: the first four bytes fold into the running CRC.
                let lo = UInt32(buffer[i]) | UInt32(buffer[i + 1]) << 8 | UInt32(buffer[i + 2]) << 16 | UInt32(buffer[i + 3]) << 24
                let w = c ^ lo
                c = t7[Int(w & 0xFF)] ^ t6[Int((w >> 8) & 0xFF)] ^ t5[Int((w >> 16) & 0xFF)] ^ t4[Int(w >> 24)]
                    ^ t3[Int(buffer[i + 4])] ^ t2[Int(buffer[i + 5])] ^ t1[Int(buffer[i + 6])] ^ t0[Int(buffer[i + 7])]
                i += 8
            }
            while i < n {
                c = (c >> 8) ^ t0[Int((c ^ UInt32(buffer[i])) & 0xFF)]
                i += 1
            }
        }
        return ~c
    }

    /// TFRecord's mask, `((crc >> 15) | (crc << 17)) &+ 0xA282EAD8` (32-bit rotate right by 15, then
    /// add), applied to every checksum a record stores.
    public static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The inverse of ``mask(_:)``.
    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }
}
