@_spi(DescentInternals) import DescentOptimizers
import Foundation

/// Keras' checkpoint file names: `filepath.format(epoch=epoch + 1, **logs)`, Python's `str.format` for
/// the forms file names use.
///
/// A field is `{name}` or `{name:spec}`, `name` being `epoch` (an integer) or a key of the epoch's logs
/// (a number); `{{` and `}}` are literal braces. `spec` is `[0][width][.precision][type]` with `type`
/// one of `d` (integers only), `f`, `e`, `g`, `%`, or none (Python's `str()`):
/// `"w.{epoch:02d}-{val_loss:.2f}"` → `"w.03-0.41"`.
public enum CheckpointFileName {
    /// A piece of a parsed template.
    enum Piece: Equatable {
        case text(String)
        case field(name: String, zeroPad: Bool, width: Int?, precision: Int?, type: Character?)
    }

    /// Parses `template`.
    /// - Throws: ``TrainingError/invalidArgument(_:)`` naming the template for an unclosed brace, an
    ///   empty field name, a conversion (`!r`) or a format spec outside the forms above.
    static func parse(_ template: String) throws -> [Piece] {
        func bad(_ why: String) -> TrainingError {
            TrainingError.invalidArgument("ModelCheckpoint file path \"\(template)\": \(why)")
        }
        var pieces: [Piece] = []
        var text = ""
        var i = template.startIndex
        while i < template.endIndex {
            let c = template[i]
            let next = template.index(after: i)
            if c == "}" {
                guard next < template.endIndex, template[next] == "}" else { throw bad("a single '}' (write '}}' for a brace)") }
                text.append("}")
                i = template.index(after: next)
                continue
            }
            guard c == "{" else { text.append(c); i = next; continue }
            if next < template.endIndex, template[next] == "{" {
                text.append("{")
                i = template.index(after: next)
                continue
            }
            guard let close = template[next...].firstIndex(of: "}") else { throw bad("a '{' without its '}'") }
            let body = String(template[next..<close])
            if !text.isEmpty { pieces.append(.text(text)); text = "" }
            pieces.append(try field(body, bad))
            i = template.index(after: close)
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        return pieces
    }

    private static func field(_ body: String, _ bad: (String) -> TrainingError) throws -> Piece {
        let parts = body.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard !name.isEmpty else { throw bad("an empty field name '{}' (Keras names every field: {epoch}, {val_loss})") }
        guard !name.contains("!"), !name.contains("{") else { throw bad("field '\(name)': conversions and nested fields are not supported") }
        guard parts.count == 2 else { return .field(name: name, zeroPad: false, width: nil, precision: nil, type: nil) }
        var spec = Substring(parts[1])
        var type: Character?
        if let last = spec.last, "defg%".contains(last) {
            type = last
            spec = spec.dropLast()
        }
        var precision: Int?
        if let dot = spec.firstIndex(of: ".") {
            guard let p = Int(spec[spec.index(after: dot)...]), p >= 0, p <= 50 else { throw bad("field '\(name)': bad precision in '\(parts[1])'") }
            precision = p
            spec = spec[..<dot]
        }
        var zeroPad = false
        if spec.first == "0" {
            zeroPad = true
            spec = spec.dropFirst()
        }
        var width: Int?
        if !spec.isEmpty {
            guard let w = Int(spec), w >= 0, w <= 100 else { throw bad("field '\(name)': unsupported format spec '\(parts[1])' (use [0][width][.precision][d|f|e|g|%])") }
            width = w
        }
        if type == "d" && precision != nil { throw bad("field '\(name)': precision is not allowed with 'd'") }
        return .field(name: name, zeroPad: zeroPad, width: width, precision: precision, type: type)
    }

    /// The file name for `epoch` (1-based) and `logs`.
    /// - Throws: ``TrainingError/invalidArgument(_:)`` for a template ``parse(_:)`` refuses, a field that
    ///   is neither `epoch` nor a key of `logs` (naming the keys there are, as Keras' `KeyError` message
    ///   does), or `d` applied to a non-integer metric.
    public static func format(_ template: String, epoch: Int, logs: Logs) throws -> String {
        var out = ""
        for piece in try parse(template) {
            switch piece {
            case .text(let t): out += t
            case let .field(name, zeroPad, width, precision, type):
                let value: Double
                let isInteger: Bool
                if name == "epoch" {
                    value = Double(epoch)
                    isInteger = true
                } else if let v = logs[name] {
                    value = v
                    isInteger = false
                } else {
                    throw TrainingError.invalidArgument(
                        "ModelCheckpoint file path \"\(template)\": no value for '{\(name)}' (available: epoch, \(logs.keys.sorted().joined(separator: ", ")))")
                }
                var text: String
                switch type {
                case "d":
                    guard isInteger else {
                        throw TrainingError.invalidArgument("ModelCheckpoint file path \"\(template)\": '{\(name):d}' needs an integer, and \(name) is a number")
                    }
                    text = String(epoch)
                case "f", "e", "g":
                    text = String(format: "%.\(precision ?? 6)\(type!)", value)
                case "%":
                    text = String(format: "%.\(precision ?? 6)f%%", value * 100)
                default:
                    if let precision { text = String(format: "%.\(precision)g", value) }
                    else { text = isInteger ? String(epoch) : JSONValue.pythonRepr(value) }
                }
                if let width, text.count < width {
                    let pad = String(repeating: zeroPad ? "0" : " ", count: width - text.count)
                    if zeroPad, text.hasPrefix("-") { text = "-" + pad + text.dropFirst() }
                    // Python right-aligns numbers by default.
                    else { text = pad + text }
                }
                out += text
            }
        }
        return out
    }
}
