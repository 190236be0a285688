import DescentOptimizers
import DescentTensor
import Testing

/// The Keras 3.15.1 golden trajectories in Tests/Fixtures/keras3_optimizers
/// (scripts/golden/generate_keras3_optimizers.py): every step's variables, the optimizer's variables
/// (`optimizer.variables`, Keras 3's order), their paths, `iterations` and the config after the run.
@Suite struct Keras3GoldenTests {
    static let cases = (try? Fixtures.names(in: "keras3_optimizers")) ?? []

    @Test(arguments: cases)
    func matchesKeras3(_ name: String) throws {
        let fixture = try #require(try Fixtures.load("keras3_optimizers/\(name).json").objectValue)
        let input = try #require(fixture["input"])
        let expected = try #require(fixture["expected"]?.objectValue)
        let output = try Replay.run(input)
        #expect(output["iterations"] == expected["iterations"])
        // Keras names an unnamed variable (Nadam's `u_product`) "variable", "variable_1", ... from one
        // process-wide counter, so the suffix depends on what ran before in the process (the generator's
        // earlier cases, this process's earlier tests): compare names without it.
        func names(_ v: JSONValue?) -> [String] {
            (v?.arrayValue ?? []).map { ($0.stringValue ?? "").replacing(#/variable_[0-9]+$/#, with: "variable") }
        }
        #expect(names(output["weight_names"]) == names(expected["weight_names"]))
        #expect(output["config"] == expected["config"], "config: \(output["config"]?.serialized ?? "")")
        let gotSteps = try #require(output["steps"]?.arrayValue)
        let wantSteps = try #require(expected["steps"]?.arrayValue)
        #expect(gotSteps.count == wantSteps.count)
        for (got, want) in zip(gotSteps, wantSteps) {
            #expect(got.objectValue?["variables"]?.arrayValue?.count == want.objectValue?["variables"]?.arrayValue?.count)
        }
        let (worst, worstAt) = worstStepError(gotSteps, wantSteps)
        #expect(worst <= 1e-5, "worst \(worst) at \(worstAt)")
        let gotWeights = output["weights"]?.arrayValue ?? [], wantWeights = expected["weights"]?.arrayValue ?? []
        #expect(gotWeights.count == wantWeights.count)
        let worstWeight = worstWeightError(gotWeights, wantWeights)
        #expect(worstWeight <= 1e-5, "optimizer variables differ by \(worstWeight)")
    }
}
