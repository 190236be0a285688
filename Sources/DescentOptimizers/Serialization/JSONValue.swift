/// A JSON document, as Keras reads and writes configs.
///
/// Unlike Foundation's `JSONSerialization`, it keeps what Keras' JSON distinguishes: integers from
/// floats (`"learning_rate": 1` stays `1`), and the order of object keys. ``serialized`` writes exactly
/// what Python's `json.dumps` writes (separators `", "` and `": "`, floats as Python's `repr`).
///
/// Parsing: ``init(parsing:options:)-(Collection<UInt8>,_)``. Parsing, ``serialized`` and `==` do not
/// recurse, so they are safe at any depth. Releasing a value does recurse (Swift destroys nested arrays
/// one level per frame, roughly 100–150 bytes each): a parsed value is at most
/// ``JSONParsingOptions/maxDepth`` (512) levels deep, which is safe on any thread, but a value built in
/// code has no such bound, so keep such values to a few thousand levels on a 512 KiB secondary-thread
/// stack (tens of thousands on the 8 MiB main thread).
public enum JSONValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The value as Python's `json.dumps` writes it.
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    public var description: String { serialized }

    /// A container being written: its items and the next one to write.
    private enum WriteFrame {
        case array([JSONValue], next: Int)
        case object(JSONObject, next: Int)
    }

    /// Writes the value without recursion (an explicit stack of open containers), so serializing is
    /// safe at any depth.
    private func write(to out: inout String) {
        var stack: [WriteFrame] = []
        var value = self
        nextValue: while true {
            switch value {
            case .null: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .double(let d): out += JSONValue.pythonRepr(d)
            case .string(let s): JSONValue.writeString(s, to: &out)
            case .array(let items):
                out += "["
                stack.append(.array(items, next: 0))
            case .object(let object):
                out += "{"
                stack.append(.object(object, next: 0))
            }
            while let top = stack.last {
                switch top {
                case .array(let items, let k):
                    if k < items.count {
                        if k > 0 { out += ", " }
                        stack[stack.count - 1] = .array(items, next: k + 1)
                        value = items[k]
                        continue nextValue
                    }
                    out += "]"
                case .object(let object, let k):
                    if k < object.entries.count {
                        if k > 0 { out += ", " }
                        stack[stack.count - 1] = .object(object, next: k + 1)
                        JSONValue.writeString(object.entries[k].key, to: &out)
                        out += ": "
                        value = object.entries[k].value
                        continue nextValue
                    }
                    out += "}"
                }
                stack.removeLast()
            }
            return
        }
    }

    /// Equal values of the same case: `.int(1) != .double(1)`, `NaN != NaN`, objects compare their
    /// entries in order. Compares without recursion, so it is safe at any depth.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        var pending: [(JSONValue, JSONValue)] = [(lhs, rhs)]
        while let (a, b) = pending.popLast() {
            switch (a, b) {
            case (.null, .null): continue
            case let (.bool(x), .bool(y)): if x != y { return false }
            case let (.int(x), .int(y)): if x != y { return false }
            case let (.double(x), .double(y)): if x != y { return false }
            case let (.string(x), .string(y)): if x != y { return false }
            case let (.array(x), .array(y)):
                guard x.count == y.count else { return false }
                for k in x.indices.reversed() { pending.append((x[k], y[k])) }
            case let (.object(x), .object(y)):
                guard x.count == y.count else { return false }
                for k in x.entries.indices.reversed() {
                    guard x.entries[k].key == y.entries[k].key else { return false }
                    pending.append((x.entries[k].value, y.entries[k].value))
                }
            default: return false
            }
        }
        return true
    }

    /// Python's `repr(float)`: the shortest round-tripping digits, exponent form below 1e-4 and from
    /// 1e16 on, `NaN`/`Infinity` as `json.dumps` writes them.
    @_spi(DescentInternals) public static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        // Swift's description already uses the shortest round-trip digits and the same thresholds.
        return d.description
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value > 0x7E {
                    // Python's default ensure_ascii=True.
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                    } else {
                        out += hex4(scalar.value)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - h.count) + h
    }

    // MARK: Accessors

    /// The number as a `Double` (for `.int` and `.double`).
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The integer (also for a `.double` with an integral value).
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && Swift.abs(d) < 9.0e15: return Int(d)
        default: return nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var isNull: Bool { self == .null }

    /// A short type name for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

/// A malformed JSON document or a config that does not have the expected form.
public struct JSONError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What is wrong, naming the field or position.
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
