import Foundation
import Testing

/// Files the CLI reads are capped (`FileBytes.defaultMaximumBytes`, 1 GiB): an endless source fails
/// with a message naming it instead of growing until the process is killed.
@Suite(.serialized) struct ReadSizeCapTests {
    @Test func replayOfDevZeroFailsAtTheCap() throws {
        let result = try ReplayInputTests.run(["replay", "/dev/zero"], stdin: [])
        #expect(result.status == 1)
        #expect(result.stderr == "error: cannot read /dev/zero: is larger than 1073741824 bytes\n")
    }

    @Test func optimizerFileOfDevZeroFailsAtTheCap() throws {
        let result = try ReplayInputTests.run(["train", "--optimizer", "/dev/zero", "--epochs", "1"], stdin: [])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--optimizer: cannot read /dev/zero: is larger than 1073741824 bytes"), "\(result.stderr)")
    }
}
