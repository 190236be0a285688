/// How ``JSONValue/init(parsing:options:)-(String,_)`` parses.
public struct JSONParsingOptions: Sendable, Equatable {
    /// The deepest nesting of arrays and objects accepted (`[[1]]` is 2 deep). Deeper documents are a
    /// thrown ``JSONError``.
    ///
    /// The parser itself does not recurse, but everything that walks a ``JSONValue`` does (``JSONValue/serialized``,
    /// `==`, releasing the value, the config readers); the default 512 keeps those walks well inside a
    /// 512 KiB secondary-thread stack, even in a debug build. Python's `json` stops near 1000 levels
    /// (its recursion limit).
    public var maxDepth: Int

    /// Options with a nesting limit (default 512).
    public init(maxDepth: Int = 512) { self.maxDepth = maxDepth }

    /// 512 levels.
    public static let `default` = JSONParsingOptions()
}

extension JSONValue {
    /// Parses a JSON document. See ``init(parsing:options:)-(Collection<UInt8>,_)`` for the grammar.
    /// - Throws: ``JSONError`` naming the line and column of the problem.
    public init(parsing text: String, options: JSONParsingOptions = .default) throws {
        var text = text
        self = try text.withUTF8 { try JSONParser.parse($0, options: options) }
    }

    /// Parses a JSON document from its UTF-8 bytes.
    ///
    /// The grammar is RFC 8259's, exactly: numbers `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`;
    /// strings with only the escapes `\" \\ \/ \b \f \n \r \t \uXXXX` (four hex digits) and no raw
    /// control characters; whitespace only space, tab, line feed and carriage return. The one extension
    /// is Python's: the constants `NaN`, `Infinity` and `-Infinity` (which `json.dumps` writes, and Keras
    /// files carry). Where Descent is stricter than Python's `json`:
    /// - the bytes must be valid UTF-8 (no overlong forms, no encoded surrogates, no truncated sequences,
    ///   nothing above U+10FFFF), and there is no byte order mark;
    /// - a `\uXXXX` surrogate escape must be a high surrogate followed by a low one (a Swift `String`
    ///   cannot hold a lone surrogate; Python keeps it);
    /// - a number literal beyond `Double`'s range (`1e400`) is an error (Python reads it as `inf`);
    /// - nesting is limited to ``JSONParsingOptions/maxDepth`` levels.
    ///
    /// An integer literal that does not fit `Int` (64 bits) becomes the nearest `Double` (Python keeps an
    /// exact big integer). A duplicate key keeps its first position and its last value, as Python's
    /// `json.loads` gives. Parsing takes time linear in the document's length.
    /// - Throws: ``JSONError`` naming the line and column (both from 1; columns count characters).
    public init(parsing bytes: some Collection<UInt8>, options: JSONParsingOptions = .default) throws {
        if let value = try bytes.withContiguousStorageIfAvailable({ try JSONParser.parse($0, options: options) }) {
            self = value
        } else {
            self = try Array(bytes).withUnsafeBufferPointer { try JSONParser.parse($0, options: options) }
        }
    }
}

/// A non-recursive RFC 8259 parser over a byte buffer (containers are kept on explicit stacks, so the
/// nesting limit is a choice, not a stack-size accident).
struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let end: Int
    let maxDepth: Int
    var i = 0
    /// Reused for strings with escapes.
    var scratch: [UInt8] = []

    private init(_ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.end = bytes.count
        self.maxDepth = maxDepth
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, options: JSONParsingOptions) throws -> JSONValue {
        var parser = JSONParser(bytes, maxDepth: options.maxDepth)
        return try parser.parseDocument()
    }

    // MARK: Errors

    /// An error at byte offset `position` (default: the current one), with its line and column.
    func error(_ what: String, at position: Int? = nil) -> JSONError {
        let p = min(position ?? i, end)
        var line = 1, column = 1
        for k in 0..<p {
            let b = bytes[k]
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {  // count characters, not continuation bytes
                column += 1
            }
        }
        return JSONError("invalid JSON at line \(line), column \(column): \(what)")
    }

    /// `'x'` for printable ASCII, `byte 0xNN` otherwise.
    func describe(_ b: UInt8) -> String {
        b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(hex2(b))"
    }

    func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
    }

    // MARK: Structure

    @inline(__always)
    mutating func skipWhitespace() {
        while i < end {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    private enum ContainerKind { case array, object }

    mutating func parseDocument() throws -> JSONValue {
        if end >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw error("a byte order mark is not allowed (RFC 8259 §8.1)")
        }
        var kinds: [ContainerKind] = []
        var arrays: [[JSONValue]] = []
        var objects: [JSONObject] = []
        var pendingKeys: [String] = []
        expectValue: while true {
            skipWhitespace()
            guard i < end else { throw error("unexpected end of input, expected a value") }
            var value: JSONValue
            switch bytes[i] {
            case UInt8(ascii: "["):
                guard kinds.count < maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
                i += 1
                skipWhitespace()
                if i < end, bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    value = .array([])
                } else {
                    kinds.append(.array)
                    arrays.append([])
                    continue expectValue
                }
            case UInt8(ascii: "{"):
                guard kinds.count < maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
                i += 1
                skipWhitespace()
                if i < end, bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    value = .object(JSONObject())
                } else {
                    pendingKeys.append(try parseKey())
                    kinds.append(.object)
                    objects.append(JSONObject())
                    continue expectValue
                }
            default:
                value = try parseScalar()
            }
            // Attach the value to the enclosing containers, closing those that end here.
            while let kind = kinds.last {
                skipWhitespace()
                switch kind {
                case .array:
                    arrays[arrays.count - 1].append(value)
                    guard i < end else { throw error("unterminated array, expected ',' or ']'") }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                        continue expectValue
                    }
                    guard bytes[i] == UInt8(ascii: "]") else { throw error("expected ',' or ']', got \(describe(bytes[i]))") }
                    i += 1
                    kinds.removeLast()
                    value = .array(arrays.removeLast())
                case .object:
                    objects[objects.count - 1][pendingKeys.removeLast()] = value
                    guard i < end else { throw error("unterminated object, expected ',' or '}'") }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                        skipWhitespace()
                        pendingKeys.append(try parseKey())
                        continue expectValue
                    }
                    guard bytes[i] == UInt8(ascii: "}") else { throw error("expected ',' or '}', got \(describe(bytes[i]))") }
                    i += 1
                    kinds.removeLast()
                    value = .object(objects.removeLast())
                }
            }
            skipWhitespace()
            guard i == end else { throw error("unexpected \(describe(bytes[i])) after the document") }
            return value
        }
    }

    /// A key and its `:` (at a `"`).
    mutating func parseKey() throws -> String {
        guard i < end, bytes[i] == UInt8(ascii: "\"") else {
            throw error(i < end ? "expected a string key in double quotes, got \(describe(bytes[i]))" : "unterminated object, expected a key")
        }
        let key = try parseString()
        skipWhitespace()
        guard i < end, bytes[i] == UInt8(ascii: ":") else {
            throw error(i < end ? "expected ':' after the key, got \(describe(bytes[i]))" : "unterminated object, expected ':'")
        }
        i += 1
        return key
    }

    mutating func parseScalar() throws -> JSONValue {
        switch bytes[i] {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "N"): try literal("NaN"); return .double(.nan)
        case UInt8(ascii: "I"): try literal("Infinity"); return .double(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case let b: throw error("unexpected \(describe(b)), expected a value")
        }
    }

    /// Whether `word` is at `position`.
    func matches(_ word: StaticString, at position: Int) -> Bool {
        let n = word.utf8CodeUnitCount
        guard position + n <= end else { return false }
        let w = word.utf8Start
        for k in 0..<n where bytes[position + k] != w[k] { return false }
        return true
    }

    mutating func literal(_ word: StaticString) throws {
        guard matches(word, at: i) else { throw error("invalid literal, expected '\(word)'") }
        i += word.utf8CodeUnitCount
    }
}
