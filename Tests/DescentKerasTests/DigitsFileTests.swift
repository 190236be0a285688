import DescentKeras
import DescentTensor
import Foundation
import Testing

/// `Digits.load(contentsOf:)`: integer pixels 0–16 and labels 0–9 only, errors naming the file, line
/// and column; bounded gzip decompression; one gzip member only.
@Suite struct DigitsFileTests {
    /// A valid line: 64 pixels then `label`.
    func line(_ pixels: [String] = Array(repeating: "3", count: 64), label: String = "7") -> String {
        (pixels + [label]).joined(separator: ",")
    }

    /// Writes `bytes` to a fresh file named `d.csv` and returns the error message of loading it (nil if it loaded).
    func loadError(_ bytes: [UInt8], maximumDecompressedBytes: Int = Digits.defaultMaximumDecompressedBytes) throws -> String? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("descent-digits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("d.csv")
        try AtomicFile.write(bytes, to: url.path)
        do {
            _ = try Digits.load(contentsOf: url, maximumDecompressedBytes: maximumDecompressedBytes)
            return nil
        } catch let error as DataError {
            return error.description.replacingOccurrences(of: folder.path + "/", with: "")
        }
    }

    func loadError(_ text: String) throws -> String? { try loadError(Array(text.utf8)) }

    func pixels(with value: String, at index: Int) -> [String] {
        var p = Array(repeating: "3", count: 64)
        p[index] = value
        return p
    }

    @Test func validLinesLoad() throws {
        #expect(try loadError(line() + "\n" + line(label: "0")) == nil)
        #expect(try loadError(line() + "\r\n" + line(Array(repeating: "16", count: 64)) + "\n") == nil)
        let url = try #require(Digits.resourceURL)
        let all = try Digits.load(contentsOf: url)
        #expect(all.x.shape == [1797, 64] && all.y.shape == [1797])
    }

    @Test func pixelsMustBeIntegersFrom0To16() throws {
        // The second field starts at column 3.
        for bad in ["nan", "inf", "-1", "+1", " 1", ""] {
            let message = try loadError(line(pixels(with: bad, at: 1)))
            #expect(message?.hasPrefix("d.csv line 1 column 3: ") == true, "\(bad): \(message ?? "loaded")")
        }
        for bad in ["1e3", "0x1p3", "1.5"] {  // a digit, then the bad byte at column 4
            let message = try loadError(line(pixels(with: bad, at: 1)))
            #expect(message?.hasPrefix("d.csv line 1 column 4: expected ',' after pixel 2") == true, "\(bad): \(message ?? "loaded")")
        }
        #expect(try loadError(line(pixels(with: "17", at: 1))) == "d.csv line 1 column 3: pixel 2: 17 is out of range (expected an integer 0–16)")
        #expect(try loadError(line(pixels(with: "1e39", at: 1))) == "d.csv line 1 column 4: expected ',' after pixel 2, found 'e'")
        #expect(try loadError(line() + "\n" + line(pixels(with: "nan", at: 0))) == "d.csv line 2 column 1: pixel 1: expected an integer 0–16, found 'n'")
    }

    @Test func labelsMustBeDigitsAndLinesHold65Values() throws {
        #expect(try loadError(line(label: "10")) == "d.csv line 1 column 129: the label: 10 is out of range (expected a digit 0–9)")
        #expect(try loadError(line(label: "-1"))?.hasPrefix("d.csv line 1 column 129: the label: expected a digit 0–9") == true)
        #expect(try loadError(line() + ",1") == "d.csv line 1 column 130: expected the end of the line after 65 values, found ','")
        #expect(try loadError(Array(repeating: "1", count: 64).joined(separator: ",")) == "d.csv line 1 column 128: expected ',' after pixel 64, found the end of the file")
        #expect(try loadError(Array(repeating: "1", count: 64).joined(separator: ",") + ",") == "d.csv line 1 column 129: the label: expected a digit 0–9, found the end of the file")
        #expect(try loadError(line() + "\n\n" + line())?.hasPrefix("d.csv line 2 column 1: pixel 1: expected an integer 0–16, found the end of the line") == true)
        #expect(try loadError("") == "d.csv: the file holds no samples")
    }

    @Test func invalidUTF8IsAnErrorNotRepaired() throws {
        var bytes = Array(line().utf8)
        bytes[2] = 0xFF
        #expect(try loadError(bytes) == "d.csv line 1 column 3: pixel 2: expected an integer 0–16, found byte 0xFF")
    }

    @Test func gzipIsBoundedAndHasOneMember() throws {
        let url = try #require(Digits.resourceURL)
        let gzip = try FileBytes.read(path: url.path)
        #expect(try loadError(gzip) == nil)
        // The decompressed size is capped (a gzip bomb fails at the cap, not after filling memory).
        #expect(try loadError(gzip, maximumDecompressedBytes: 100_000) == "d.csv: decompresses to more than 100000 bytes")
        // Bytes after the gzip member are an error, not ignored.
        #expect(try loadError(gzip + Array("trailing".utf8)) == "d.csv: 8 bytes after the end of the gzip data")
        #expect(try loadError(gzip + gzip) == "d.csv: \(gzip.count) bytes after the end of the gzip data")
        // Truncated gzip data is an error naming the file.
        #expect(try loadError(Array(gzip.dropLast(100)))?.hasPrefix("d.csv: the gzip data is corrupt or truncated") == true)
    }

    @Test func anUnreadableFileNamesIt() throws {
        let error = #expect(throws: DataError.self) { try Digits.load(contentsOf: URL(fileURLWithPath: "/nonexistent/d.csv")) }
        #expect(error?.description == "cannot read /nonexistent/d.csv: No such file or directory")
    }
}
