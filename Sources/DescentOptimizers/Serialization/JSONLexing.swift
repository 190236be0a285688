// Strings and numbers of `JSONParser`, straight from the bytes: a string without escapes is made from
// its byte range in one step, escapes go through one reused buffer, numbers are read without building
// text unless they need the general decimal-to-binary conversion.

extension JSONParser {
    // MARK: Strings

    /// A string (at its opening `"`).
    mutating func parseString() throws -> String {
        let open = i
        let start = i + 1
        var j = start
        // Fast path: printable ASCII up to the closing quote.
        while j < end {
            let b = bytes[j]
            if b == UInt8(ascii: "\"") {
                i = j + 1
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<j]), as: UTF8.self)
            }
            if b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x80 { break }
            j += 1
        }
        var escaped = false
        var run = start  // start of the bytes not yet copied to `scratch`
        while true {
            guard j < end else { throw error("unterminated string", at: open) }
            let b = bytes[j]
            if b == UInt8(ascii: "\"") {
                i = j + 1
                if !escaped { return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<j]), as: UTF8.self) }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<j]))
                return String(decoding: scratch, as: UTF8.self)
            }
            if b == UInt8(ascii: "\\") {
                if !escaped {
                    escaped = true
                    scratch.removeAll(keepingCapacity: true)
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<j]))
                j = try parseEscape(at: j)
                run = j
            } else if b < 0x20 {
                throw error("unescaped control character U+00\(hex2(b)) in a string", at: j)
            } else if b >= 0x80 {
                j = try endOfUTF8Sequence(at: j)
            } else {
                j += 1
            }
        }
    }

    /// Appends the escape at `j` (a backslash) to `scratch`; returns the offset after it.
    mutating func parseEscape(at j: Int) throws -> Int {
        guard j + 1 < end else { throw error("unterminated string", at: j) }
        let e = bytes[j + 1]
        let simple: UInt8
        switch e {
        case UInt8(ascii: "\""): simple = 0x22
        case UInt8(ascii: "\\"): simple = 0x5C
        case UInt8(ascii: "/"): simple = 0x2F
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"):
            let code = try hex4(at: j)
            var next = j + 6
            var scalar = code
            if code >= 0xD800 && code <= 0xDFFF {
                guard code < 0xDC00, next + 1 < end, bytes[next] == UInt8(ascii: "\\"), bytes[next + 1] == UInt8(ascii: "u"),
                    case let low = try hex4(at: next), low >= 0xDC00 && low <= 0xDFFF
                else { throw error("unpaired UTF-16 surrogate \\u\(hex4Text(code))", at: j) }
                scalar = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                next += 6
            }
            appendUTF8(scalar)
            return next
        default:
            throw error("invalid escape '\\\(e >= 0x20 && e < 0x7F ? String(Character(Unicode.Scalar(e))) : "byte 0x" + hex2(e))' (allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)", at: j)
        }
        scratch.append(simple)
        return j + 2
    }

    /// The four hex digits of the `\u` escape at `j`.
    func hex4(at j: Int) throws -> UInt32 {
        guard j + 6 <= end else { throw error("invalid \\u escape: expected 4 hex digits", at: j) }
        var v: UInt32 = 0
        for k in (j + 2)..<(j + 6) {
            let b = bytes[k]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape: expected 4 hex digits", at: j)
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    func hex4Text(_ v: UInt32) -> String { hex2(UInt8(v >> 8)) + hex2(UInt8(v & 0xFF)) }

    mutating func appendUTF8(_ v: UInt32) {
        switch v {
        case 0..<0x80:
            scratch.append(UInt8(v))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | (v >> 6)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | (v >> 12)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        default:
            scratch.append(UInt8(0xF0 | (v >> 18)))
            scratch.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    /// Validates the multi-byte UTF-8 sequence at `j` (Unicode's table 3-7 of well-formed sequences) and
    /// returns the offset after it.
    func endOfUTF8Sequence(at j: Int) throws -> Int {
        let b0 = bytes[j]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF
        var outOfRange = "truncated or malformed multi-byte sequence"
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0; outOfRange = "overlong encoding"
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F; outOfRange = "encoded UTF-16 surrogate"
        case 0xF0: length = 4; low = 0x90; outOfRange = "overlong encoding"
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F; outOfRange = "code point above U+10FFFF"
        case 0x80...0xBF: throw error("invalid UTF-8: unexpected continuation byte 0x\(hex2(b0))", at: j)
        case 0xC0, 0xC1: throw error("invalid UTF-8: overlong encoding (byte 0x\(hex2(b0)))", at: j)
        default: throw error("invalid UTF-8: byte 0x\(hex2(b0)) (code point above U+10FFFF)", at: j)
        }
        guard j + 1 < end, bytes[j + 1] & 0xC0 == 0x80 else {
            throw error("invalid UTF-8: truncated multi-byte sequence", at: j)
        }
        guard bytes[j + 1] >= low && bytes[j + 1] <= high else { throw error("invalid UTF-8: \(outOfRange)", at: j) }
        for k in 2..<length {
            guard j + k < end, bytes[j + k] & 0xC0 == 0x80 else {
                throw error("invalid UTF-8: truncated multi-byte sequence", at: j)
            }
        }
        return j + length
    }

    // MARK: Numbers

    /// 10^0 ... 10^22, exact in `Double`.
    private static let exactPowersOfTen: [Double] = (0...22).map { e in
        var p = 1.0
        for _ in 0..<e { p *= 10 }
        return p
    }

    @inline(__always)
    func isDigit(_ k: Int) -> Bool { k < end && bytes[k] >= UInt8(ascii: "0") && bytes[k] <= UInt8(ascii: "9") }

    /// A number (at `-` or a digit): RFC 8259's grammar, plus `-Infinity`.
    mutating func parseNumber() throws -> JSONValue {
        let start = i
        var j = i
        let negative = bytes[j] == UInt8(ascii: "-")
        if negative {
            j += 1
            if matches("Infinity", at: j) {
                i = j + 8
                return .double(-.infinity)
            }
            guard isDigit(j) else { throw error("expected a digit after '-'", at: j) }
        }
        // Significant digits (up to 19) go into `mantissa`; `decimalExponent` scales it.
        var mantissa: UInt64 = 0
        var significant = 0
        var decimalExponent = 0
        var exact = true  // the digits fit `mantissa`
        func digit(_ d: UInt8, fraction: Bool) {
            if mantissa == 0 && d == 0 {
                if fraction { decimalExponent -= 1 }
                return
            }
            if significant < 19 {
                mantissa = mantissa &* 10 &+ UInt64(d)
                significant += 1
                if fraction { decimalExponent -= 1 }
            } else {
                exact = false
                if !fraction { decimalExponent += 1 }
            }
        }
        if bytes[j] == UInt8(ascii: "0") {
            j += 1
            if isDigit(j) { throw error("a number cannot have leading zeros", at: start) }
        } else {
            while isDigit(j) {
                digit(bytes[j] - UInt8(ascii: "0"), fraction: false)
                j += 1
            }
        }
        let integerEnd = j
        var isInteger = true
        if j < end && bytes[j] == UInt8(ascii: ".") {
            isInteger = false
            j += 1
            guard isDigit(j) else { throw error("expected a digit after the decimal point", at: j) }
            while isDigit(j) {
                digit(bytes[j] - UInt8(ascii: "0"), fraction: true)
                j += 1
            }
        }
        if j < end && (bytes[j] == UInt8(ascii: "e") || bytes[j] == UInt8(ascii: "E")) {
            isInteger = false
            j += 1
            var exponentNegative = false
            if j < end && (bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-")) {
                exponentNegative = bytes[j] == UInt8(ascii: "-")
                j += 1
            }
            guard isDigit(j) else { throw error("expected a digit in the exponent", at: j) }
            var e = 0
            while isDigit(j) {
                if e < 1_000_000 { e = e * 10 + Int(bytes[j] - UInt8(ascii: "0")) }
                j += 1
            }
            decimalExponent += exponentNegative ? -e : e
        }
        i = j
        if isInteger, let v = integer(start..<integerEnd, negative: negative) { return .int(v) }
        // Clinger's fast path: an exact mantissa below 2^53 times an exact power of ten rounds once.
        if exact, mantissa <= 1 << 53, decimalExponent >= -22, decimalExponent <= 22 {
            var d = Double(mantissa)
            let p = Self.exactPowersOfTen[abs(decimalExponent)]
            d = decimalExponent < 0 ? d / p : d * p
            return .double(negative ? -d : d)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<j]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw error("number \(text) is out of range", at: start) }
        return .double(d)
    }

    /// The integer literal in `digits` (after the sign), or nil if it does not fit `Int`.
    func integer(_ digits: Range<Int>, negative: Bool) -> Int? {
        var v = 0
        for k in (negative ? digits.lowerBound + 1 : digits.lowerBound)..<digits.upperBound {
            let d = Int(bytes[k] - UInt8(ascii: "0"))
            let (times10, o1) = v.multipliedReportingOverflow(by: 10)
            // Accumulate negatively so Int.min fits.
            let (next, o2) = negative ? times10.subtractingReportingOverflow(d) : times10.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            v = next
        }
        return v
    }
}
