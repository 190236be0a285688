/// Errors of writing and reading TensorBoard event files; each names the path concerned.
public enum TensorBoardError: Error, Equatable, CustomStringConvertible {
    /// The log directory could not be created.
    case cannotCreateDirectory(path: String, message: String)
    /// The event file could not be created or opened.
    case cannotOpenFile(path: String, message: String)
    /// Writing (or closing) the event file failed; the events not yet written are kept, so a later
    /// `flush` retries them.
    case writeFailed(path: String, message: String)
    /// The writer was closed.
    case closed(path: String)
    /// A file could not be read.
    case cannotReadFile(path: String, message: String)
    /// A record's framing or checksum is wrong, or its data is not an `Event`.
    case corruptRecord(path: String, offset: Int, message: String)
    /// An argument is out of range.
    case invalidArgument(field: String, message: String)

    public var description: String {
        switch self {
        case .cannotCreateDirectory(let path, let message): "cannot create the log directory '\(path)': \(message)"
        case .cannotOpenFile(let path, let message): "cannot create the event file '\(path)': \(message)"
        case .writeFailed(let path, let message): "cannot write the event file '\(path)': \(message)"
        case .closed(let path): "the event file writer of '\(path)' is closed"
        case .cannotReadFile(let path, let message): "cannot read '\(path)': \(message)"
        case .corruptRecord(let path, let offset, let message): "'\(path)': corrupt record at byte \(offset): \(message)"
        case .invalidArgument(let field, let message): "\(field): \(message)"
        }
    }
}
