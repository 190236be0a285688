import Foundation
import Testing

/// `descent replay --max-output-numbers N`: the output limit (steps × total variable elements).
@Suite(.serialized) struct ReplayOutputLimitTests {
    /// 3 steps on a 2-element variable: 6 numbers. Under `--max-output-numbers 5` it is status 1 with the
    /// limit named; at 6 it runs; a negative limit is a usage error (status 2). Before, the option did
    /// not exist (status 2 for every call with it) and nothing bounded the output.
    @Test func theLimitIsAnOption() throws {
        let document = Array(#"""
            {"optimizer": "sgd", "variables": [{"name": "v", "shape": [2], "value": [1, 2]}],
             "steps": [{"gradients": [{"dense": [1, 1]}]}, {"gradients": [{"dense": [1, 1]}]}, {"gradients": [{"dense": [0, 0]}]}]}
            """#.utf8)
        let over = try ReplayInputTests.run(["replay", "--max-output-numbers", "5", "-"], stdin: document)
        #expect(over.status == 1 && over.stdout.isEmpty)
        #expect(over.stderr.contains("limit of 5") && over.stderr.contains("--max-output-numbers"), "\(over.stderr)")
        let at = try ReplayInputTests.run(["replay", "--max-output-numbers", "6", "-"], stdin: document)
        #expect(at.status == 0, "\(at.stderr)")
        let negative = try ReplayInputTests.run(["replay", "--max-output-numbers", "-1", "-"], stdin: document)
        #expect(negative.status == 2, "\(negative.stderr)")
        #expect(negative.stderr.contains("--max-output-numbers"), "\(negative.stderr)")
    }
}
