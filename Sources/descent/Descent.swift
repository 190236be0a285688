import ArgumentParser
import Descent
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The `descent` command-line tool.
@main
struct DescentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "descent",
        abstract: "Descent: Keras' optimizers in Swift.",
        subcommands: [TrainCommand.self, CompareCommand.self, ReplayCommand.self, BenchCommand.self, ExampleCommand.self,
                      WriteTestWeightsCommand.self, WriteKerasCheckFilesCommand.self],
        defaultSubcommand: TrainCommand.self
    )

    /// Runs the command; usage and validation errors exit with status 2 (not ArgumentParser's 64), a
    /// ``CommandFailure`` (a diverged run) with its own status, other errors with status 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data(("error: " + failure.message + "\n").utf8))
            Glibc.exit(failure.status)
        } catch {
            if exitCode(for: error) == .validationFailure {
                let message = fullMessage(for: error)
                FileHandle.standardError.write(Data(("error: " + message.replacingOccurrences(of: "Error: ", with: "") + "\n").utf8))
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
