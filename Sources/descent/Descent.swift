import ArgumentParser
import Descent

/// The `descent` command-line tool.
@main
struct DescentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "descent",
        abstract: "Descent: Keras' optimizers in Swift.",
        subcommands: [ExampleCommand.self, ReplayCommand.self, BenchCommand.self],
        defaultSubcommand: ExampleCommand.self
    )
}
