import Descent
import Foundation
import FuzzSupport

/// The fuzz target (libFuzzer's `LLVMFuzzerTestOneInput`): `EventFileReader.events(atPath:)`, the
/// TensorBoard event-file reader (TFRecord framing with CRC-32C, then protobuf `Event`s), and
/// `EventFileReader.scalars`, on a file made from arbitrary bytes.
///
/// Random bytes almost never carry two matching CRC-32Cs, so the first byte picks how the file is made:
/// - even: the remaining bytes are the file, as they are (the framing and checksum checks);
/// - odd: the remaining bytes are split into payloads (each led by a length byte) that are framed with
///   correct checksums (``TFRecord/frame(_:)``), so that the protobuf decoder of `Event` gets arbitrary
///   records.
///
/// Any thrown error is fine. Checked: a file that reads re-frames to the same bytes (the records are kept
/// whole); its events serialize and parse back to equal events; `scalars` takes every event read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzSupport.bytes(data, size)
    guard let mode = input.first else { return 0 }
    let rest = Array(input.dropFirst())
    let file: [UInt8]
    if mode % 2 == 0 {
        file = rest
    } else {
        var framed: [UInt8] = [], i = 0
        while i < rest.count {
            let n = Int(rest[i]), start = i + 1, end = min(rest.count, start + n)
            TFRecord.append(rest[start..<end], to: &framed)
            i = end
        }
        file = framed
    }
    let path = FuzzSupport.scratchPath("events.out.tfevents.fuzz")
    FuzzSupport.writeFile(file, to: path)
    defer { FuzzSupport.removeFile(path) }
    guard let events = try? EventFileReader.events(atPath: path) else { return 0 }
    guard let records = try? TFRecord.records(in: file) else {
        FuzzSupport.fail("the events read but the framing does not")
    }
    guard records.count == events.count else {
        FuzzSupport.fail("\(records.count) records gave \(events.count) events")
    }
    var reframed: [UInt8] = []
    for record in records { TFRecord.append(record, to: &reframed) }
    guard reframed == file else { FuzzSupport.fail("re-framing the records does not give the file back") }
    for (index, event) in events.enumerated() {
        guard let bytes: [UInt8] = try? event.serializedBytes(),
              let again = try? Tensorboard_Event(serializedBytes: bytes) else {
            FuzzSupport.fail("event \(index) does not serialize and parse back")
        }
        // Compared as bytes: a NaN wall time or scalar never equals itself, but serializes to the same bits.
        guard let bytesAgain: [UInt8] = try? again.serializedBytes(), bytesAgain == bytes else {
            FuzzSupport.fail("event \(index) changes through serialize and parse")
        }
    }
    _ = EventFileReader.scalars(events)
    return 0
}
