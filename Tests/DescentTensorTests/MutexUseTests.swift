import Foundation
import Testing

/// Every lock in `Sources` is a `SanitizerVisibleMutex`: a plain `Synchronization.Mutex` is invisible to
/// ThreadSanitizer in a debug build, so `make sanitize` would report the state it protects as racing.
@Suite struct MutexUseTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")
    /// The one file that may use `Mutex`: the wrapper's own.
    static let wrapperFile = "DescentTensor/ThreadSanitizerHooks.swift"

    @Test func noSourceFileUsesMutexDirectly() throws {
        let files = try #require(FileManager.default.enumerator(atPath: Self.sources.path))
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.count > 20, "found \(files.count) Swift files under \(Self.sources.path)")
        var direct: [String] = []
        for file in files where file != Self.wrapperFile {
            let text = try String(contentsOf: Self.sources.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                if code.range(of: #"(?<![A-Za-z])Mutex\s*[<(]"#, options: .regularExpression) != nil {
                    direct.append("\(file):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(direct.isEmpty, "use SanitizerVisibleMutex instead of Mutex:\n\(direct.joined(separator: "\n"))")
    }
}
