// Reading TensorBoard event files back (for tests and tools; TensorBoard's own reader is its
// `EventAccumulator`).

import Foundation
import SwiftProtobuf

/// Reads the events of TensorBoard event files.
public enum EventFileReader {
    /// The events of the event file at `path`, in order (the first is the file-version record).
    /// - Throws: ``TensorBoardError`` when the file cannot be read, a record's framing or checksum is
    ///   wrong, or a record is not an `Event`.
    public static func events(atPath path: String) throws -> [Tensorboard_Event] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TensorBoardError.cannotReadFile(path: path, message: "no such file or not readable")
        }
        return try events(in: [UInt8](data), source: path)
    }

    /// The events in the bytes of an event file.
    public static func events(in bytes: [UInt8], source: String = "<bytes>") throws -> [Tensorboard_Event] {
        try TFRecord.records(in: bytes, source: source).enumerated().map { index, record in
            do {
                return try Tensorboard_Event(serializedBytes: record)
            } catch {
                throw TensorBoardError.corruptRecord(path: source, offset: index, message: "record \(index) is not an Event: \(error)")
            }
        }
    }

    /// The event files (`events.out.tfevents.*`) directly in `directory`, sorted by name.
    public static func eventFiles(in directory: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw TensorBoardError.cannotReadFile(path: directory, message: "\(error.localizedDescription)")
        }
        return names.filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// The scalar values (TF 2 `DT_FLOAT` scalar tensors, or legacy `simple_value`s) of the events in
    /// `events`, by tag: `(step, value)` in file order.
    public static func scalars(_ events: [Tensorboard_Event]) -> [String: [(step: Int64, value: Float)]] {
        var result: [String: [(step: Int64, value: Float)]] = [:]
        for event in events {
            guard case .summary(let summary)? = event.what else { continue }
            for value in summary.value {
                switch value.value {
                case .simpleValue(let v):
                    result[value.tag, default: []].append((event.step, v))
                case .tensor(let t) where t.dtype == .dtFloat && t.tensorShape.dim.isEmpty:
                    if t.tensorContent.count == 4 {
                        let bits = t.tensorContent.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << ($1.offset * 8) }
                        result[value.tag, default: []].append((event.step, Float(bitPattern: bits)))
                    } else if let v = t.floatVal.first {
                        result[value.tag, default: []].append((event.step, v))
                    }
                default:
                    continue
                }
            }
        }
        return result
    }
}
