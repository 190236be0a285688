import Foundation
import Testing

@testable import DescentTensorBoard

/// A bitwise CRC-32C, obviously right and independent of the slicing-by-8 tables.
func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0x82F6_3B78 : 0) }
    }
    return ~crc
}

func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
}

enum TensorBoardFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tensorboard")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(name)))
    }

    /// Tests/Fixtures/tensorboard/tf_keras_reference.json (scripts/golden/generate_tensorboard_reference.py).
    /// Decoded with `JSONDecoder`: `JSONSerialization` on Linux reads some doubles a few ulps off.
    struct Reference: Decodable {
        struct Value: Decodable {
            var tag: String
            var plugin_name: String
            var dtype: String?
            var shape: [Int]?
            var values: [Double]?
        }
        struct Event: Decodable {
            var step: Int64
            var file_version: String?
            var values: [Value]?
            var summary_hex: String?
        }
        struct Run: Decodable { var events: [Event] }
        struct Case: Decodable { var runs: [String: Run] }
        struct Histogram: Decodable {
            var data: [Double]
            var buckets: Int
            var histogram: [[Double]]
        }
        var cases: [String: Case]
        var histograms: [String: Histogram]
    }

    static func reference() throws -> Reference {
        let data = try Data(contentsOf: root.appendingPathComponent("tf_keras_reference.json"))
        return try JSONDecoder().decode(Reference.self, from: data)
    }
}

@Suite struct CRC32CTests {
    @Test func knownVectors() {
        // The check value of CRC-32C, and RFC 3720 (iSCSI) B.4's vectors.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test func matchesBitwiseAtEveryLengthAndAlignment() {
        var g = SystemRandomNumberGenerator()
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &g) }
        for length in 0..<40 {
            for start in 0..<9 {
                let slice = Array(data[start..<start + length])
                #expect(CRC32C.checksum(slice) == referenceCRC32C(slice), "length \(length), start \(start)")
                // A slice (contiguous, not starting at 0) and a non-contiguous collection.
                #expect(CRC32C.checksum(data[start..<start + length]) == referenceCRC32C(slice))
                #expect(CRC32C.checksum(slice.lazy.map { $0 }) == referenceCRC32C(slice))
            }
        }
        #expect(CRC32C.checksum(data) == referenceCRC32C(data))
        #expect(CRC32C.extend(CRC32C.checksum(data[0..<123]), data[123...]) == CRC32C.checksum(data))
    }

    @Test func maskIsTensorFlowsAndInvertible() {
        // mask(c) = rotr(c, 15) + 0xa282ead8.
        #expect(CRC32C.mask(0) == 0xA282_EAD8)
        #expect(CRC32C.mask(0x0000_8000) == 0xA282_EAD9)
        #expect(CRC32C.mask(0xE306_9283) == (((0xE306_9283 as UInt32) >> 15 | (0xE306_9283 as UInt32) << 17) &+ 0xA282_EAD8))
        for c: UInt32 in [0, 1, 0xFFFF_FFFF, 0x1234_5678, 0xE306_9283] { #expect(CRC32C.unmask(CRC32C.mask(c)) == c) }
    }
}

@Suite struct TFRecordTests {
    @Test func recordBytesDecodedByHand() throws {
        let payload: [UInt8] = [0x0A, 0x03, 0x61, 0x62, 0x63]
        let record = TFRecord.frame(payload)
        #expect(record.count == 8 + 4 + payload.count + 4)
        #expect(Array(record[0..<8]) == [5, 0, 0, 0, 0, 0, 0, 0])
        let lengthCRC = UInt32(littleEndian(record[8..<12]))
        #expect(lengthCRC == CRC32C.mask(referenceCRC32C([5, 0, 0, 0, 0, 0, 0, 0])))
        #expect(Array(record[12..<17]) == payload)
        #expect(UInt32(littleEndian(record[17..<21])) == CRC32C.mask(referenceCRC32C(payload)))
        #expect(try TFRecord.records(in: record + TFRecord.frame([])) == [payload, []])
    }

    @Test func tensorFlowsFileReframesToTheSameBytes() throws {
        for name in ["tf_keras_epoch_validation.tfevents", "tf_keras_batch_histograms_train.tfevents"] {
            let file = try TensorBoardFixtures.bytes(name)
            let records = try TFRecord.records(in: file, source: name)
            #expect(records.count > 5)
            #expect(records.flatMap { TFRecord.frame($0) } == file, "\(name)")
        }
    }

    @Test func corruptAndTruncatedRecordsThrowNamingTheSource() throws {
        let good = TFRecord.frame([1, 2, 3, 4]) + TFRecord.frame([5, 6])
        for index in [3, 9, 13, 18, good.count - 1] {
            var bad = good
            bad[index] ^= 0x40
            #expect(throws: TensorBoardError.self, "flipped byte \(index)") { try TFRecord.records(in: bad, source: "f.tfevents") }
        }
        for cut in [1, 4, 11, 13, good.count - 11] {
            let error = #expect(throws: TensorBoardError.self) { try TFRecord.records(in: Array(good.dropLast(cut)), source: "f.tfevents") }
            #expect(error.map { "\($0)" }?.contains("f.tfevents") == true)
        }
        // A huge length does not overflow.
        var huge = TFRecord.littleEndianBytes(UInt64.max)
        huge += TFRecord.littleEndianBytes(CRC32C.mask(CRC32C.checksum(huge)))
        #expect(throws: TensorBoardError.self) { try TFRecord.records(in: huge + [0, 0, 0, 0], source: "f") }
    }
}
