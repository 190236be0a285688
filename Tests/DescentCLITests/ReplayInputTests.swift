import Foundation
import Testing

/// `descent replay` reads standard input, `/dev/stdin` and files through the same strict parser.
@Suite(.serialized) struct ReplayInputTests {
    /// Runs `descent` with `stdin` as raw bytes.
    static func run(_ arguments: [String], stdin: [UInt8]) throws -> (status: Int32, stdout: String, stderr: String) {
        try CLI.run(arguments, stdinBytes: stdin)
    }

    static let valid = Array(#"{"optimizer": "sgd", "variables": [{"name": "v", "shape": [1], "value": [1]}], "steps": [{"gradients": [{"dense": [1]}]}]}"#.utf8)

    @Test func devStdinIsReadLikeDash() throws {
        let dash = try Self.run(["replay", "-"], stdin: Self.valid)
        let devStdin = try Self.run(["replay", "/dev/stdin"], stdin: Self.valid)
        #expect(dash.status == 0, "\(dash.stderr)")
        #expect(devStdin.status == 0, "\(devStdin.stderr)")
        #expect(devStdin.stdout == dash.stdout)
    }

    @Test func aMissingFileIsNamed() throws {
        let missing = try Self.run(["replay", "/nonexistent/in.json"], stdin: [])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: cannot read /nonexistent/in.json: No such file or directory\n")
    }

    @Test func invalidUTF8IsRejectedOnStandardInputAsInAFile() throws {
        // "v" followed by an overlong encoding of '"'.
        let bytes = Array(#"{"optimizer": "sgd", "variables": [{"name": "v"#.utf8) + [0xC0, 0xA2] + Array(#"", "shape": [1], "value": [1]}], "steps": []}"#.utf8)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("descent-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(bytes).write(to: file)
        let fromStdin = try Self.run(["replay", "-"], stdin: bytes)
        let fromFile = try Self.run(["replay", file.path], stdin: [])
        #expect(fromStdin.status == 1 && fromFile.status == 1)
        #expect(fromStdin.stderr == "error: standard input: invalid JSON at line 1, column 47: invalid UTF-8: overlong encoding (byte 0xC0)\n")
        #expect(fromFile.stderr == "error: \(file.path): invalid JSON at line 1, column 47: invalid UTF-8: overlong encoding (byte 0xC0)\n")
    }

    @Test func issueReproducersExitCleanly() throws {
        for input in [Array(#""\uD800\u0041""#.utf8), Array(String(repeating: "[", count: 100_000).utf8)] {
            let result = try Self.run(["replay", "-"], stdin: input)
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("error: standard input: invalid JSON at line 1, column "), "\(result.stderr)")
        }
    }
}
