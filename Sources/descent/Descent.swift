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
                      WriteTestWeightsCommand.self, WriteKerasCheckFilesCommand.self, DistributedCheckCommand.self],
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
            MPICommunicator.abortJobIfRunning(code: failure.status)
            Glibc.exit(failure.status)
        } catch {
            // Under mpirun, an error on one rank ends the whole job at once (the others may be waiting
            // in a collective for this one); exiting normally would wait in MPI_Finalize.
            if MPICommunicator.isLaunchedByMPI {
                FileHandle.standardError.write(Data(("error: " + fullMessage(for: error) + "\n").utf8))
                MPICommunicator.abortJobIfRunning(code: 1)
                Glibc.exit(exitCode(for: error) == .validationFailure ? 2 : 1)
            }
            if exitCode(for: error) == .validationFailure {
                let message = fullMessage(for: error)
                FileHandle.standardError.write(Data(("error: " + message.replacingOccurrences(of: "Error: ", with: "") + "\n").utf8))
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
