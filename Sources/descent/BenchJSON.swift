import ArgumentParser
import Descent
import Foundation

/// `descent bench json`: parse time of three generated JSON documents (`JSONValue(parsing:)` on bytes).
///
/// Compare with Python: `descent bench json --save-documents DIR`, then
/// `python3 bench/peers/json_parse.py DIR` times `json.loads` on the same bytes.
struct JSONBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json",
        abstract: "Time JSONValue parsing of a 100,000-key object, a deep-but-legal document and a big array.",
        discussion: """
            keys: one object of 100,000 keys ("k0": 0, ...). deep: 2,000 arrays nested 500 levels (the limit is \
            512). array: 200,000 floats as Python's repr writes them. Reports the median of --repeats parses.
            """)

    @Option(help: "Parses per document (the median is reported).")
    var repeats: Int = 21
    @Option(help: "Write the documents as keys.json, deep.json and array.json into this directory (for bench/peers/json_parse.py).")
    var saveDocuments: String?
    @Flag(help: "Print JSON lines.")
    var json = false

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    }

    /// The benchmark documents, by name.
    static func documents() -> [(name: String, bytes: [UInt8])] {
        let keys = "{" + (0..<100_000).map { "\"k\($0)\": \($0)" }.joined(separator: ", ") + "}"
        let nest = String(repeating: "[", count: 499) + "1" + String(repeating: "]", count: 499)
        let deep = "[" + Array(repeating: nest, count: 2_000).joined(separator: ", ") + "]"
        let array = "[" + (0..<200_000).map { JSONValue.double(Double($0) * 1.000001e-3 - 7.5).serialized }.joined(separator: ", ") + "]"
        return [("keys", Array(keys.utf8)), ("deep", Array(deep.utf8)), ("array", Array(array.utf8))]
    }

    func run() throws {
        let docs = Self.documents()
        if let dir = saveDocuments {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for d in docs { try AtomicFile.write(d.bytes, to: URL(fileURLWithPath: dir).appendingPathComponent("\(d.name).json").path) }
        }
        for d in docs {
            _ = try JSONValue(parsing: d.bytes)  // warm up
            var times: [Double] = []
            for _ in 0..<repeats {
                let start = now()
                let value = try JSONValue(parsing: d.bytes)
                times.append(now() - start)
                withExtendedLifetime(value) {}
            }
            times.sort()
            let median = times[times.count / 2]
            let mbps = Double(d.bytes.count) / median / 1e6
            if json {
                print(#"{"bench":"json","document":"\#(d.name)","bytes":\#(d.bytes.count),"median_ms":\#(median * 1e3),"mb_per_s":\#(mbps)}"#)
            } else {
                print(String(format: "%-6@ %9d bytes  median %8.2f ms  %7.1f MB/s", d.name, d.bytes.count, median * 1e3, mbps))
            }
        }
    }
}
