import DescentKeras
import Testing

// Keras' ModelCheckpoint file names: Python's str.format over the epoch and the logs (issue 10).
@Suite struct CheckpointFileNameTests {
    @Test func formatsKerasTemplates() throws {
        let logs: Logs = ["val_loss": 0.41234, "loss": 1.5, "accuracy": 0.875]
        #expect(try CheckpointFileName.format("w.{epoch:02d}-{val_loss:.2f}.h5", epoch: 3, logs: logs) == "w.03-0.41.h5")
        #expect(try CheckpointFileName.format("w-{epoch}.keras", epoch: 12, logs: logs) == "w-12.keras")
        #expect(try CheckpointFileName.format("{loss}-{accuracy:.1%}-{{x}}", epoch: 1, logs: logs) == "1.5-87.5%-{x}")
        #expect(try CheckpointFileName.format("{epoch:4d}|{val_loss:08.3f}|{loss:e}", epoch: 7, logs: logs) == "   7|0000.412|1.500000e+00")
    }

    @Test func badTemplatesAreErrors() throws {
        for (template, message) in [("w-{val_acc}.h5", "no value for '{val_acc}'"), ("w-{epoch.h5", "without its '}'"),
                                    ("w-}.h5", "a single '}'"), ("w-{}.h5", "empty field name"), ("{loss:d}", "needs an integer"),
                                    ("{epoch:>5}", "unsupported format spec")] {
            let error = #expect(throws: TrainingError.self) { try CheckpointFileName.format(template, epoch: 1, logs: ["loss": 1]) }
            #expect(error?.description.contains(message) == true, "\(template): \(String(describing: error))")
        }
    }
}
