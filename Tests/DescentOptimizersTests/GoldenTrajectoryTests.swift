import DescentOptimizers
import DescentTensor
import Foundation
import Testing

/// The TensorFlow 2.21 golden trajectories in Tests/Fixtures/optimizers (see scripts/golden/).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func load(_ path: String) throws -> JSONValue {
        let text = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
        return try JSONValue(parsing: text)
    }

    static func names(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)
            .filter { $0.hasSuffix(".json") && $0 != "INDEX.json" }.map { String($0.dropLast(5)) }.sorted()
    }

    static let optimizerCases = (try? names(in: "optimizers")) ?? []
    static let tiedCases = (try? names(in: "optimizers_tied")) ?? []
    static let configCases = (try? names(in: "configs")) ?? []
}

/// Relative error with a floor of 1 for the scale: `|x − e| / max(|e|, 1)`; 0 when both are NaN or the
/// same infinity (the `nonfinite_*` fixtures), NaN (never within a tolerance) when only one is.
func relativeError(_ x: Double, _ e: Double) -> Double {
    if x.isNaN && e.isNaN || x == e { return 0 }
    return abs(x - e) / max(abs(e), 1)
}

/// The worst ``relativeError`` over every element of every variable of every step of a replay output,
/// and where it is.
func worstStepError(_ gotSteps: [JSONValue], _ wantSteps: [JSONValue]) -> (Double, String) {
    var worst = 0.0, worstAt = ""
    for (s, (got, want)) in zip(gotSteps, wantSteps).enumerated() {
        let g = got.objectValue?["variables"]?.arrayValue ?? [], w = want.objectValue?["variables"]?.arrayValue ?? []
        for (v, (gv, wv)) in zip(g, w).enumerated() {
            for (i, (x, e)) in zip(gv.arrayValue ?? [], wv.arrayValue ?? []).enumerated() {
                let err = relativeError(x.doubleValue ?? .nan, e.doubleValue ?? .nan)
                if !(err <= worst) { worst = err; worstAt = "step \(s) variable \(v) element \(i): \(x) vs \(e)" }
            }
        }
    }
    return (worst, worstAt)
}

/// The worst ``relativeError`` over the optimizer's weights (a scalar weight may be written bare); NaN on
/// one side only counts as the worst.
func worstWeightError(_ gotWeights: [JSONValue], _ wantWeights: [JSONValue]) -> Double {
    var worst = 0.0
    for (gw, ww) in zip(gotWeights, wantWeights) {
        for (x, e) in zip(gw.arrayValue ?? [gw], ww.arrayValue ?? [ww]) {
            let err = relativeError(x.doubleValue ?? .nan, e.doubleValue ?? .nan)
            if !(err <= worst) { worst = err }
        }
    }
    return worst
}

@Suite struct GoldenTrajectoryTests {
    @Test func fixturesArePresent() {
        #expect(Fixtures.optimizerCases.count >= 100)
    }

    @Test(arguments: Fixtures.optimizerCases)
    func matchesTensorFlow(_ name: String) throws {
        let fixture = try #require(try Fixtures.load("optimizers/\(name).json").objectValue)
        let input = try #require(fixture["input"])
        let expected = try #require(fixture["expected"]?.objectValue)
        let output = try Replay.run(input)

        #expect(output["iterations"] == expected["iterations"])
        #expect(output["weight_names"] == expected["weight_names"])
        #expect(output["config"] == expected["config"], "config: \(output["config"]?.serialized ?? "")")

        let gotSteps = try #require(output["steps"]?.arrayValue)
        let wantSteps = try #require(expected["steps"]?.arrayValue)
        #expect(gotSteps.count == wantSteps.count)
        let (worst, worstAt) = worstStepError(gotSteps, wantSteps)
        #expect(worst <= 1e-5, "worst \(worst) at \(worstAt)")
        let gotWeights = output["weights"]?.arrayValue ?? [], wantWeights = expected["weights"]?.arrayValue ?? []
        #expect(gotWeights.count == wantWeights.count)
        let worstWeight = worstWeightError(gotWeights, wantWeights)
        #expect(worstWeight <= 1e-5, "optimizer weights differ by \(worstWeight)")
        if name.hasPrefix("denormal_") { try expectSameZeros(got: output, want: expected) }
    }

    /// The relative tolerance cannot see a denormal (1e-39 vs 0); for the denormal cases every element
    /// that TensorFlow flushed to 0 (variables at every step, and slots) must be exactly 0 here too.
    func expectSameZeros(got: JSONObject, want: JSONObject) throws {
        func zeros(_ value: JSONValue?) -> [Bool] {
            (value?.arrayValue ?? []).flatMap { inner in
                (inner.arrayValue ?? [inner]).map { ($0.doubleValue ?? .nan) == 0 }
            }
        }
        let gotSteps = got["steps"]?.arrayValue ?? [], wantSteps = want["steps"]?.arrayValue ?? []
        for (s, (g, w)) in zip(gotSteps, wantSteps).enumerated() {
            #expect(zeros(g.objectValue?["variables"]) == zeros(w.objectValue?["variables"]), "zeros differ at step \(s)")
        }
        let wantWeightZeros = zeros(want["weights"])
        #expect(wantWeightZeros.contains(true))
        #expect(zeros(got["weights"]) == wantWeightZeros, "slot zeros differ")
    }
}
