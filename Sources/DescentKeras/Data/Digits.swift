import CDescentZlib
import DescentTensor
import Foundation

/// Inputs and integer labels of a data set.
public struct Dataset: Sendable {
    /// Features, `[samples, features]`.
    public var x: Tensor
    /// Labels, `[samples]` (`int64` class indices for classification).
    public var y: Tensor
    /// The number of samples.
    public var count: Int { x.shape.first ?? 0 }

    public init(x: Tensor, y: Tensor) {
        self.x = x
        self.y = y
    }
}

/// An error reading a data file.
public struct DataError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The UCI hand-written digits (1797 8×8 images, as shipped by scikit-learn), bundled with Descent.
/// See `Resources/DIGITS-LICENSE.md` for its source and license (CC BY 4.0).
public enum Digits {
    /// The bundled file's URL.
    public static var resourceURL: URL? { Bundle.module.url(forResource: "digits", withExtension: "csv.gz") }

    /// All 1797 images: `x` `[1797, 64]` float32 pixels scaled to [0, 1] (divided by 16), `y` int64 labels.
    public static func loadAll() throws -> Dataset {
        guard let url = resourceURL else { throw DataError("the bundled digits.csv.gz was not found") }
        return try load(contentsOf: url)
    }

    /// The split of `descent train`: the first 1437 rows for training, the last 360 for testing.
    public static func load() throws -> (train: Dataset, test: Dataset) {
        let all = try loadAll()
        let train = Dataset(x: try all.x.slice(rows: 0..<1437), y: try all.y.slice(rows: 0..<1437))
        let test = Dataset(x: try all.x.slice(rows: 1437..<1797), y: try all.y.slice(rows: 1437..<1797))
        return (train, test)
    }

    /// The cap on a gzip file's decompressed size when none is given: 64 MiB (the bundled file
    /// decompresses to 265 KB; a gzip "bomb" of a few megabytes would otherwise expand to gigabytes).
    public static let defaultMaximumDecompressedBytes = 64 << 20

    /// Reads a digits CSV (optionally gzip-compressed, a single gzip member): per line, 64 pixel values
    /// then the label, separated by commas; pixels are integers 0–16 (scaled to [0, 1] by dividing by 16),
    /// labels integers 0–9, written as plain decimal digits (no sign, no spaces, no `nan`, no exponent).
    /// Lines end with `\n` (or `\r\n`); the last line's newline is optional; empty lines are an error.
    /// - Parameters:
    ///   - maximumBytes: the cap on the file's size (see ``FileBytes``).
    ///   - maximumDecompressedBytes: the cap on the decompressed size of a gzip file.
    /// - Throws: ``DataError`` naming the file and, for a bad value, the line and column (in bytes, from 1).
    public static func load(contentsOf url: URL, maximumBytes: Int = FileBytes.defaultMaximumBytes,
                            maximumDecompressedBytes: Int = defaultMaximumDecompressedBytes) throws -> Dataset {
        let name = url.path
        var bytes: [UInt8]
        do { bytes = try FileBytes.read(path: name, maximumBytes: maximumBytes) } catch {
            throw DataError("\(error)")
        }
        if bytes.starts(with: [0x1F, 0x8B]) {
            bytes = try gunzip(bytes, name: name, maximumBytes: maximumDecompressedBytes)
        }
        return try parse(bytes, name: name)
    }

    /// Parses the CSV bytes described in ``load(contentsOf:maximumBytes:maximumDecompressedBytes:)``.
    static func parse(_ bytes: [UInt8], name: String) throws -> Dataset {
        var pixels: [Float] = [], labels: [Int64] = []
        var line = 1, lineStart = 0, i = 0
        func fail(_ at: Int, _ what: String) -> DataError {
            DataError("\(name) line \(line) column \(at - lineStart + 1): \(what)")
        }
        func describe(_ byte: UInt8) -> String {
            byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }
        let n = bytes.count
        while i < n {
            for field in 0..<65 {
                let start = i
                var value = 0
                while i < n, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                    value = min(value * 10 + Int(bytes[i] - 0x30), 1000)
                    i += 1
                }
                let what = field < 64 ? "pixel \(field + 1)" : "the label"
                let range = field < 64 ? "an integer 0–16" : "a digit 0–9"
                if i == start {
                    let found = i == n ? "the end of the file" : bytes[i] == 0x0A ? "the end of the line" : describe(bytes[i])
                    throw fail(i, "\(what): expected \(range), found \(found)")
                }
                if value > (field < 64 ? 16 : 9) {
                    throw fail(start, "\(what): \(value) is out of range (expected \(range))")
                }
                if field < 64 { pixels.append(Float(value) / 16) } else { labels.append(Int64(value)) }
                let separator: UInt8 = field < 64 ? 0x2C : 0x0A
                if i == n, field == 64 { break }
                if field == 64, i + 1 < n, bytes[i] == 0x0D, bytes[i + 1] == 0x0A { i += 1 }  // \r\n
                guard i < n, bytes[i] == separator else {
                    let found = i == n ? "the end of the file" : describe(bytes[i])
                    throw fail(i, field < 64 ? "expected ',' after \(what), found \(found)" : "expected the end of the line after 65 values, found \(found)")
                }
                i += 1
            }
            line += 1
            lineStart = i
        }
        guard !labels.isEmpty else { throw DataError("\(name): the file holds no samples") }
        return Dataset(x: try Tensor(shape: [labels.count, 64], scalars: pixels), y: Tensor(labels))
    }

    /// Decompresses the single gzip member `data` with zlib, to at most `maximumBytes`.
    /// - Throws: ``DataError`` naming `name`: corrupt or truncated data, data after the member, too large.
    static func gunzip(_ data: [UInt8], name: String, maximumBytes: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard descent_inflate_init_gzip(&stream) == Z_OK else { throw DataError("\(name): zlib cannot initialise inflate") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk)
        var status: Int32 = Z_OK
        var consumed = 0
        // zlib counts in `uInt` (32 bits): the input is fed in pieces of at most 1 GiB.
        let piece = 1 << 30
        try data.withUnsafeBufferPointer { input in
            repeat {
                if stream.avail_in == 0, consumed < input.count {
                    let size = min(piece, input.count - consumed)
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                    stream.avail_in = uInt(size)
                    consumed += size
                }
                let produced: Int = buffer.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return chunk - Int(stream.avail_out)
                }
                if produced > maximumBytes - output.count {
                    throw DataError("\(name): decompresses to more than \(maximumBytes) bytes")
                }
                output.append(contentsOf: buffer[0..<produced])
            } while status == Z_OK
        }
        guard status == Z_STREAM_END else {
            throw DataError("\(name): the gzip data is corrupt or truncated (zlib status \(status))")
        }
        if stream.avail_in > 0 || consumed < data.count {
            throw DataError("\(name): \(Int(stream.avail_in) + data.count - consumed) bytes after the end of the gzip data")
        }
        return output
    }
}
