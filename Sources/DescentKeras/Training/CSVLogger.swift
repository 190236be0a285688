import DescentTensor
import Foundation

/// Writes each epoch's logs as a row of a CSV file (Keras' `CSVLogger`, as tf_keras 2.21 writes it).
///
/// The header is `epoch` and the first epoch's log keys sorted; when those have no `val_` key, the
/// `val_` columns of every key are added (filled with `NA` when missing). Rows end in `\r\n` (Python's
/// `csv.excel`), the epoch is 0-based, numbers are written as Python's `str(float)` (shortest
/// round-trip, e.g. `0.30000001192092896`, `1e-05`, `nan`), and a field holding the separator, a quote
/// or a line break is quoted. With `append`, rows go after an existing file's, and the header is written
/// only when that file is empty or missing.
///
/// Every epoch the whole file is rewritten atomically (a crash never leaves a torn row); only the chief
/// replica writes.
public final class CSVLogger: Callback {
    /// The CSV file.
    public let fileName: String
    /// The field separator (one character).
    public let separator: Character
    /// Whether to continue an existing file.
    public let append: Bool
    private var text = ""
    private var keys: [String]?
    private var writeHeader = true

    /// - Throws: ``TrainingError`` for an empty file name or a separator that is a quote or a line break.
    public init(fileName: String, separator: Character = ",", append: Bool = false) throws {
        guard !fileName.isEmpty else { throw TrainingError.invalidArgument("CSVLogger: fileName is empty") }
        guard separator != "\"" && !separator.isNewline else {
            throw TrainingError.invalidArgument("CSVLogger: separator must not be a quote or a line break, got \(separator.debugDescription)")
        }
        self.fileName = fileName
        self.separator = separator
        self.append = append
    }

    /// Reads the file to append to (Keras opens it in mode `a`), or starts empty.
    /// - Throws: `FileReadError` naming the file when it exists but cannot be read.
    public func onTrainBegin(model: Model) throws {
        keys = nil
        text = ""
        writeHeader = true
        if append && FileManager.default.fileExists(atPath: fileName) {
            text = String(decoding: try FileBytes.read(path: fileName), as: UTF8.self)
            writeHeader = text.isEmpty || text.hasPrefix("\n") || text.hasPrefix("\r")
        }
    }

    public func onEpochEnd(_ epoch: Int, logs: Logs, model: Model) throws {
        if keys == nil {
            var sorted = logs.keys.sorted()
            if !sorted.contains(where: { $0.hasPrefix("val_") }) { sorted += sorted.map { "val_" + $0 } }
            keys = sorted
            if writeHeader { text += row(["epoch"] + sorted) }
        }
        text += row(["\(epoch)"] + (keys ?? []).map { logs[$0].map(\.description) ?? "NA" })
        if model.distributionStrategy.isChief { try AtomicFile.write(text, to: fileName) }
    }

    private func row(_ fields: [String]) -> String {
        fields.map { field in
            guard field.contains(where: { $0 == separator || $0 == "\"" || $0.isNewline }) else { return field }
            return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }.joined(separator: String(separator)) + "\r\n"
    }
}
