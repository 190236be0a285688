import DescentOptimizers
import Foundation
import Synchronization
import Testing

/// The parser follows RFC 8259 exactly (plus Python's NaN/Infinity), rejects what a Swift String or a
/// Double cannot hold, bounds nesting, and is linear in the document's length.
@Suite struct JSONStrictnessTests {
    /// The error for `text` (as bytes), or nil if it parses.
    static func parseError(_ bytes: [UInt8], options: JSONParsingOptions = .default) -> String? {
        do {
            _ = try JSONValue(parsing: bytes, options: options)
            return nil
        } catch {
            return "\(error)"
        }
    }

    static func parseError(_ text: String) -> String? { parseError(Array(text.utf8)) }

    // MARK: Item 4: laxness

    @Test(arguments: [
        ("01", "line 1, column 1", "leading zeros"),
        ("-01", "line 1, column 1", "leading zeros"),
        ("+1", "line 1, column 1", "'+'"),
        (".5", "line 1, column 1", "'.'"),
        ("1.", "line 1, column 3", "after the decimal point"),
        ("1.e5", "line 1, column 3", "after the decimal point"),
        ("1e", "line 1, column 3", "exponent"),
        ("1e+", "line 1, column 4", "exponent"),
        ("-", "line 1, column 2", "after '-'"),
        ("- 1", "line 1, column 2", "after '-'"),
        ("[1, 2]x", "line 1, column 7", "after the document"),
        (#""\u+123""#, "line 1, column 2", "4 hex digits"),
        (#""\u12""#, "line 1, column 2", "4 hex digits"),
        (#""\x""#, "line 1, column 2", "invalid escape"),
        (#""\'""#, "line 1, column 2", "invalid escape"),
        ("\"a\tb\"", "line 1, column 3", "control character U+0009"),
        ("\"a\nb\"", "line 1, column 3", "control character U+000A"),
        ("[1,]", "line 1, column 4", "']'"),
        (#"{"a": 1,}"#, "line 1, column 9", "string key"),
        ("{'a': 1}", "line 1, column 2", "string key"),
        ("{\"a\" 1}", "line 1, column 6", "':'"),
        ("[1 2]", "line 1, column 4", "',' or ']'"),
        ("tru", "line 1, column 1", "'true'"),
        ("nan", "line 1, column 1", "'null'"),
        ("-NaN", "line 1, column 2", "after '-'"),
        ("infinity", "line 1, column 1", "'i'"),
        ("\u{0B}1", "line 1, column 1", "byte 0x0B"),
        ("\u{0C}1", "line 1, column 1", "byte 0x0C"),
        ("\u{A0}1", "line 1, column 1", "byte 0xC2"),
        ("", "line 1, column 1", "end of input"),
        ("  \n ", "line 2, column 2", "end of input"),
        ("[\n  1,\n  01]", "line 3, column 3", "leading zeros"),
        ("\"abc", "line 1, column 1", "unterminated string"),
        ("\u{FEFF}{}", "line 1, column 1", "byte order mark"),
    ])
    func laxInputIsRejectedNamingTheLineAndColumn(_ text: String, _ position: String, _ what: String) throws {
        let message = try #require(Self.parseError(text), "\(text.debugDescription) was accepted")
        #expect(message.contains(position), "\(text.debugDescription): \(message)")
        #expect(message.contains(what), "\(text.debugDescription): \(message)")
    }

    @Test func validEdgeCasesAreAccepted() throws {
        #expect(try JSONValue(parsing: "-0") == .int(0))
        #expect(try JSONValue(parsing: "-0.0").doubleValue?.sign == .minus)
        #expect(try JSONValue(parsing: "1E+2") == .double(100))
        #expect(try JSONValue(parsing: "1e-2") == .double(0.01))
        #expect(try JSONValue(parsing: "0.5E2") == .double(50))
        #expect(try JSONValue(parsing: #""\u00e9""#) == "é")
        #expect(try JSONValue(parsing: #""\u00E9\u20AC""#) == "é€")
        #expect(try JSONValue(parsing: #""\ud83d\ude00""#) == "😀")
        #expect(try JSONValue(parsing: #""\/\"\\\b\f\n\r\t""#) == "/\"\\\u{08}\u{0C}\n\r\t")
        #expect(try JSONValue(parsing: "[[], {}, [{}], {\"a\": []}]") == [[], [:], [[:]], ["a": []]])
        #expect(try JSONValue(parsing: " \t\r\n[ 1 , 2 ]\r\n\t ") == [1, 2])
        #expect(try JSONValue(parsing: "\"é😀 raw\"") == "é😀 raw")
        #expect(try JSONValue(parsing: "[NaN, Infinity, -Infinity]").arrayValue?.map { $0.doubleValue?.isFinite } == [false, false, false])
        #expect(try JSONValue(parsing: "9223372036854775807") == .int(Int.max))
        #expect(try JSONValue(parsing: "-9223372036854775808") == .int(Int.min))
        // Beyond Int64: the nearest Double (Python keeps a big integer).
        #expect(try JSONValue(parsing: "9223372036854775808") == .double(9223372036854775808))
        #expect(try JSONValue(parsing: "123456789012345678901234567890") == .double(1.2345678901234568e29))
        // Underflow is zero, as in Python.
        #expect(try JSONValue(parsing: "1e-400") == .double(0))
        #expect(try JSONValue(parsing: "true") == true)
        #expect(try JSONValue(parsing: "null") == .null)
    }

    @Test func numberLiteralsBeyondDoubleAreErrors() throws {
        for text in ["1e400", "-1e400", "[1, 2e308]", "1" + String(repeating: "0", count: 400)] {
            let message = try #require(Self.parseError(text), "\(text)")
            #expect(message.contains("is out of range"), "\(text): \(message)")
            #expect(message.contains("line 1, column"), "\(message)")
        }
        #expect(Self.parseError("1e400")?.contains("number 1e400 is out of range") == true)
    }

    /// The fast decimal path must round exactly as Swift's (correctly rounded) `Double(String)`.
    @Test func numbersRoundExactlyAsDoubleParsing() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = ["0.1", "0.2", "0.3", "1.7976931348623157e308", "2.2250738585072014e-308", "5e-324", "4.9e-324",
                     "9007199254740993", "9007199254740993.0", "0.10000000149011612", "123456789012345678e-5",
                     "1e22", "1e23", "8.98846567431158e307", "0.000001", "1234567.890123e-10", "-2.5e+20"]
        for _ in 0..<2000 {
            let mantissa = String(UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator))
            let split = Int.random(in: 0...mantissa.count, using: &generator)
            let intPart = split == 0 ? "0" : String(mantissa.prefix(split)).replacingOccurrences(of: "^0+(?=.)", with: "", options: .regularExpression)
            let frac = String(mantissa.dropFirst(split))
            var text = intPart + (frac.isEmpty ? ".0" : "." + frac)
            if Bool.random(using: &generator) { text += "e\(Int.random(in: -30...30, using: &generator))" }
            texts.append(text)
        }
        for text in texts {
            let parsed = try JSONValue(parsing: text).doubleValue
            #expect(parsed == Double(text), "\(text)")
        }
    }

    // MARK: Item 4: UTF-8

    @Test(arguments: [
        ([0xC0, 0xAF], "overlong"),
        ([0xC1, 0xBF], "overlong"),
        ([0xE0, 0x80, 0xAF], "overlong"),
        ([0xF0, 0x80, 0x80, 0xAF], "overlong"),
        ([0xED, 0xA0, 0x80], "surrogate"),
        ([0xED, 0xBF, 0xBF], "surrogate"),
        ([0xF4, 0x90, 0x80, 0x80], "above U+10FFFF"),
        ([0xF5, 0x80, 0x80, 0x80], "above U+10FFFF"),
        ([0xFF], "above U+10FFFF"),
        ([0x80], "continuation byte"),
        ([0xE2, 0x82], "truncated"),
        ([0xE2, 0x82, 0x41], "truncated"),
        ([0xF0, 0x9F, 0x98], "truncated"),
        ([0xC3], "truncated"),
    ] as [([UInt8], String)])
    func invalidUTF8IsAnErrorWithItsPosition(_ sequence: [UInt8], _ what: String) throws {
        // `["é", "<bad>"]`: the bad sequence is at column 8 (characters, not bytes).
        let bytes = Array("[\"é\", \"".utf8) + sequence + Array("\"]".utf8)
        let message = try #require(Self.parseError(bytes), "\(sequence) was accepted")
        #expect(message.contains("invalid UTF-8"), "\(message)")
        #expect(message.contains(what), "\(message)")
        #expect(message.contains("line 1, column 8"), "\(message)")
        // A truncated sequence at the very end of the input, too.
        #expect(Self.parseError(Array("\"".utf8) + sequence) != nil)
    }

    @Test func validUTF8InEveryLengthIsAccepted() throws {
        let text = "\u{7F}\u{80}\u{7FF}\u{800}\u{D7FF}\u{E000}\u{FFFF}\u{10000}\u{10FFFF}"
        #expect(try JSONValue(parsing: Array("\"\(text)\"".utf8)) == .string(text))
        #expect(try JSONValue(parsing: Array("{\"é\": \"x\\n€\"}".utf8)) == ["é": "x\n€"])
        // Through a non-contiguous collection too.
        #expect(try JSONValue(parsing: "[1, \"€\"]".utf8.lazy.map { $0 }) == [1, "€"])
    }

    // MARK: Item 1: surrogates

    @Test(arguments: [
        (#""\uD800\u0041""#, "unpaired UTF-16 surrogate \\uD800"),
        (#""\uD800""#, "unpaired UTF-16 surrogate \\uD800"),
        (#""\ud800x""#, "unpaired UTF-16 surrogate \\uD800"),
        (#""\uDBFF\uDBFF""#, "unpaired UTF-16 surrogate \\uDBFF"),
        (#""\uDC00""#, "unpaired UTF-16 surrogate \\uDC00"),
        (#""\uDFFF\uD800""#, "unpaired UTF-16 surrogate \\uDFFF"),
        (#""\uD800\n""#, "unpaired UTF-16 surrogate \\uD800"),
        (#""\uD800\u12""#, "4 hex digits"),
    ])
    func unpairedSurrogateEscapesAreErrors(_ text: String, _ what: String) throws {
        let message = try #require(Self.parseError(text), "\(text)")
        #expect(message.contains(what), "\(message)")
        #expect(message.contains("line 1, column"), "\(message)")
        // As an object key and through Optimizer.deserialize, the same.
        #expect(Self.parseError("{\(text): 1}")?.contains(what) == true)
        #expect(throws: JSONError.self) { try Optimizer.deserialize(json: "{\"class_name\": \(text), \"config\": {}}") }
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try JSONValue(parsing: #""\uD834\uDD1E and \uDBFF\uDFFF""#) == .string("\u{1D11E} and \u{10FFFF}"))
        // And serialize back as Python's ensure_ascii writes them.
        #expect(JSONValue.string("\u{1D11E}").serialized == #""\ud834\udd1e""#)
    }

    // MARK: Item 2: nesting

    static func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }

    @Test func nestingIsLimited() throws {
        #expect(JSONParsingOptions.default.maxDepth == 512)
        let deepest = try JSONValue(parsing: Self.nested(512))
        #expect(deepest.serialized == Self.nested(512))
        let message = try #require(Self.parseError(Self.nested(513)))
        #expect(message.contains("nesting deeper than 512 levels"), "\(message)")
        #expect(message.contains("line 1, column 513"), "\(message)")
        // The issue's reproducer: 100,000 unclosed brackets.
        #expect(Self.parseError(String(repeating: "[", count: 100_000))?.contains("nesting deeper") == true)
        let objects = String(repeating: "{\"a\": ", count: 600) + "1" + String(repeating: "}", count: 600)
        #expect(Self.parseError(objects)?.contains("nesting deeper") == true)
        // Configurable.
        #expect(Self.parseError(Array("[[[1]]]".utf8), options: JSONParsingOptions(maxDepth: 2))?.contains("deeper than 2") == true)
        #expect(Self.parseError(Array("[[1]]".utf8), options: JSONParsingOptions(maxDepth: 2)) == nil)
        let deep = JSONParsingOptions(maxDepth: 5000)
        #expect(try JSONValue(parsing: Array(Self.nested(5000).utf8), options: deep).serialized.count == 10_000)
    }

    /// On a secondary thread with a 512 KiB stack, the deepest legal document parses, serializes,
    /// compares and is released, and the 100,000-level one is an error (not a crash).
    @Test func nestingIsSafeOnASmallStack() throws {
        let outcome = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            var log: [String] = []
            do {
                let mixed = String(repeating: "[{\"k\": ", count: 256) + "1" + String(repeating: "}]", count: 256)
                for text in [Self.nested(512), mixed] {
                    let a = try JSONValue(parsing: text), b = try JSONValue(parsing: Array(text.utf8))
                    log.append(a == b && a.serialized.filter({ !" ".contains($0) }) == text.filter({ !" ".contains($0) }) ? "ok" : "mismatch")
                }
            } catch {
                log.append("error: \(error)")
            }
            log.append(Self.parseError(String(repeating: "[", count: 100_000)) ?? "accepted")
            outcome.withLock { $0 = log }
            done.signal()
        }
        thread.stackSize = 512 * 1024
        thread.start()
        done.wait()
        let log = outcome.withLock { $0 }
        #expect(log.count == 3)
        #expect(log.prefix(2) == ["ok", "ok"], "\(log)")
        #expect(log.last?.contains("nesting deeper than 512 levels") == true, "\(log)")
    }

    // MARK: Item 3: large objects, duplicate keys

    @Test func duplicateKeysKeepTheFirstPositionAndTheLastValue() throws {
        // Python: json.loads('{"a":1,"b":2,"a":3}') == {'a': 3, 'b': 2}
        let v = try #require(try JSONValue(parsing: #"{"a":1,"b":2,"a":3}"#).objectValue)
        #expect(v.keys == ["a", "b"])
        #expect(v["a"] == 3 && v["b"] == 2)
        #expect(JSONValue.object(v).serialized == #"{"a": 3, "b": 2}"#)
        // Past the index threshold as well.
        let many = "{" + (0..<40).map { "\"k\($0 % 20)\": \($0)" }.joined(separator: ", ") + "}"
        let o = try #require(try JSONValue(parsing: many).objectValue)
        #expect(o.keys == (0..<20).map { "k\($0)" })
        #expect(o.entries.map(\.value) == (20..<40).map { .int($0) })
    }

    @Test func aHundredThousandKeyObjectParses() throws {
        let n = 100_000
        let text = "{" + (0..<n).map { "\"k\($0)\": \($0)" }.joined(separator: ", ") + "}"
        let o = try #require(try JSONValue(parsing: text).objectValue)
        #expect(o.count == n)
        #expect(o["k0"] == 0 && o["k54321"] == 54321 && o["k99999"] == 99999 && o["k100000"] == nil)
        #expect(o.keys.last == "k99999")
        #expect(JSONValue.object(o).serialized == text)
    }

    @Test func objectEditsKeepTheIndexConsistent() {
        var o = JSONObject()
        for i in 0..<50 { o["k\(i)"] = .int(i) }
        o.removeValue(forKey: "k10")
        o["k20"] = nil
        o["k5"] = "five"
        o["new"] = true
        #expect(o.count == 49)
        #expect(o.keys.first == "k0" && o.keys.last == "new")
        #expect(o["k10"] == nil && o["k20"] == nil && o["k5"] == "five" && o["k49"] == 49 && o["new"] == true)
        #expect(o.keys.firstIndex(of: "k11") == 10)
        var small: JSONObject = ["a": 1, "b": 2]
        small["a"] = nil
        #expect(small.keys == ["b"])
        // Equality is by ordered entries, whether or not an index was built.
        var built = JSONObject()
        for i in 0..<30 { built["k\(i)"] = .int(i) }
        built["extra"] = 1
        built.removeValue(forKey: "extra")
        #expect(built == JSONObject((0..<30).map { ("k\($0)", .int($0)) }))
        #expect(built != JSONObject((0..<30).reversed().map { ("k\($0)", .int($0)) }))
    }

    // MARK: Serialization is unchanged

    @Test func validValuesSerializeAsBefore() throws {
        let text = #"{"a": 1, "b": 1.0, "c": 1e-07, "d": 0.10000000149011612, "e": [true, null, "x\"y\u00e9\ud83d\ude00"], "f": -2.5e+20, "g": NaN, "h": -Infinity, "i": {}}"#
        #expect(try JSONValue(parsing: text).serialized == text)
        #expect(try JSONValue(parsing: Array(text.utf8)).serialized == text)
    }
}
