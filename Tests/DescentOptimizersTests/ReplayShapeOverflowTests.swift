import DescentOptimizers
import Testing

/// A replay document whose variable shape overflows an element count. Trapped before: the replay computed
/// `shape.reduce(1, *)` for `[4611686018427387904, 4]` (an arithmetic overflow) before any check.
@Suite struct ReplayShapeOverflowTests {
    @Test func overflowingVariableShapeIsAnError() {
        let text = """
            {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1}},
             "variables": [{"name": "w", "shape": [4611686018427387904, 4], "dtype": "float32", "value": []}],
             "steps": []}
            """
        let result = Replay.command(path: "-", readStandardInput: { Array(text.utf8) }, readFile: { _ in [] })
        #expect(result.status != 0)
        #expect(result.stderr.contains("[4611686018427387904, 4]"), "\(result.stderr)")
        #expect(result.stderr.contains("too large"), "\(result.stderr)")
    }
}
