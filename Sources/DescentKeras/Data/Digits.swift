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

    /// Reads a digits CSV (optionally gzip-compressed): 64 pixel values 0–16 then the label, per line.
    /// - Throws: ``DataError`` naming the line and what is wrong.
    public static func load(contentsOf url: URL) throws -> Dataset {
        var data = try Data(contentsOf: url)
        if data.starts(with: [0x1F, 0x8B]) { data = try gunzip(data) }
        let text = String(decoding: data, as: UTF8.self)
        var pixels: [Float] = [], labels: [Int64] = []
        for (i, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",")
            guard fields.count == 65 else { throw DataError("\(url.lastPathComponent) line \(i + 1): expected 65 values, got \(fields.count)") }
            for f in fields.dropLast() {
                guard let v = Float(f) else { throw DataError("\(url.lastPathComponent) line \(i + 1): '\(f)' is not a number") }
                pixels.append(v / 16)
            }
            guard let label = Int64(fields[64]), (0...9).contains(label) else {
                throw DataError("\(url.lastPathComponent) line \(i + 1): label '\(fields[64])' is not a digit")
            }
            labels.append(label)
        }
        return Dataset(x: try Tensor(shape: [labels.count, 64], scalars: pixels), y: Tensor(labels))
    }

    /// Decompresses gzip data with zlib.
    static func gunzip(_ data: Data) throws -> Data {
        var stream = z_stream()
        guard descent_inflate_init_gzip(&stream) == Z_OK else { throw DataError("zlib: cannot initialise inflate") }
        defer { inflateEnd(&stream) }
        var output = Data()
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk)
        var input = [UInt8](data)
        var status: Int32 = Z_OK
        input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = uInt(inputBuffer.count)
            repeat {
                buffer.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output.append(out.baseAddress!, count: chunk - Int(stream.avail_out))
                }
            } while status == Z_OK
        }
        guard status == Z_STREAM_END else { throw DataError("zlib: the gzip data is corrupt (status \(status))") }
        return output
    }
}
