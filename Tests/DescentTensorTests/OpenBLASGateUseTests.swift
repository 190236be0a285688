import Foundation
import Testing

/// Every OpenBLAS call in `Sources` runs inside `OpenBLASForkGate.call { ... }`: an ungated product or
/// `openblas_set_num_threads` running while Descent forks (opening an HDF5 file) can hang the process for
/// good (see OpenBLASForkGate.swift).
@Suite struct OpenBLASGateUseTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    @Test func everyOpenBLASCallIsGated() throws {
        let files = try #require(FileManager.default.enumerator(atPath: Self.sources.path))
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.count > 20, "found \(files.count) Swift files under \(Self.sources.path)")
        var calls = 0
        var ungated: [String] = []
        for file in files {
            let text = try String(contentsOf: Self.sources.appendingPathComponent(file), encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                String($0.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            }
            for (number, code) in lines.enumerated()
            where code.range(of: #"(?<![A-Za-z_])(cblas|openblas)_[a-z_]+\s*\("#, options: .regularExpression) != nil {
                calls += 1
                // The call is on the gate's line (`OpenBLASForkGate.call { openblas_set_num_threads(1) }`)
                // or on the line after it.
                let gate = "OpenBLASForkGate.call {"
                let gated = code.contains(gate)
                    || number > 0 && lines[number - 1].trimmingCharacters(in: .whitespaces).hasSuffix(gate)
                if !gated { ungated.append("\(file):\(number + 1): \(code.trimmingCharacters(in: .whitespaces))") }
            }
        }
        #expect(calls >= 5, "found \(calls) OpenBLAS calls")
        #expect(ungated.isEmpty, "wrap these in OpenBLASForkGate.call { ... }:\n\(ungated.joined(separator: "\n"))")
    }
}
