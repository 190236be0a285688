#if canImport(Glibc)
import Glibc
#endif

/// Keras' progress bar (`Progbar`): on a terminal, one line per epoch updated in place,
///
///     12/45 [=======>......................] - ETA: 0s - loss: 0.2345 - accuracy: 0.9312
///
/// finished as `45/45 [==============================] - 0s 2ms/step - loss: ... - val_accuracy: ...`;
/// elsewhere (logs, CI) only the finished line is written, once per epoch.
public final class ProgressBar {
    /// Steps in the epoch.
    public let total: Int
    /// Whether to redraw in place (a terminal).
    public let interactive: Bool
    private let write: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private var lastDraw = -1.0
    private var lastWidth = 0
    /// Characters of the bar between the brackets.
    public static let width = 30

    /// - Parameters:
    ///   - interactive: redraw in place; defaults to whether standard output is a terminal.
    ///   - write: where text goes (standard output by default).
    ///   - clock: seconds, monotonic (injectable for tests).
    public init(total: Int, interactive: Bool? = nil, write: ((String) -> Void)? = nil, clock: (() -> Double)? = nil) {
        self.total = total
        self.interactive = interactive ?? (isatty(1) != 0)
        self.write = write ?? { text in
            print(text, terminator: "")
            fflush(nil)
        }
        self.clock = clock ?? monotonicSeconds
        self.start = self.clock()
    }

    /// Reports that `step` steps are done with the running `metrics`; redraws at most every 50 ms.
    public func update(step: Int, metrics: [(String, Double)]) {
        guard interactive else { return }
        let now = clock()
        if step < total && now - lastDraw < 0.05 { return }
        lastDraw = now
        let elapsed = now - start
        let eta = step > 0 ? elapsed / Double(step) * Double(total - step) : 0
        let line = bar(step) + " - ETA: " + ProgressBar.formatETA(eta) + ProgressBar.formatMetrics(metrics)
        redraw(line)
    }

    /// Writes the finished line for the epoch (with validation metrics) and a newline. As Keras'
    /// `ProgbarLogger._finalize_progbar`, the line shows the whole epoch (`45/45`) even when a callback
    /// stopped training after an earlier batch.
    public func finish(metrics: [(String, Double)]) {
        let elapsed = clock() - start
        let perStep = total > 0 ? elapsed / Double(total) : 0
        let seconds = elapsed.isFinite && elapsed < 1e15 ? "\(Int(elapsed.rounded()))" : "?"
        let timing = " - \(seconds)s " + ProgressBar.formatStepTime(perStep)
        let line = (interactive ? bar(total) : "\(total)/\(total)") + timing + ProgressBar.formatMetrics(metrics)
        if interactive { redraw(line) } else { write(line) }
        write("\n")
    }

    private func redraw(_ line: String) {
        let padding = max(0, lastWidth - line.count)
        write("\r" + line + String(repeating: " ", count: padding))
        lastWidth = line.count
    }

    /// `12/45 [=======>......................]`.
    func bar(_ step: Int) -> String {
        let digits = String(total).count
        let count = String(repeating: " ", count: max(0, digits - String(step).count)) + "\(step)/\(total)"
        let filled = total > 0 ? Swift.min(ProgressBar.width, Int(Double(ProgressBar.width) * Double(Swift.max(0, step)) / Double(total))) : ProgressBar.width
        var inside = String(repeating: "=", count: max(0, filled - (step < total ? 1 : 0)))
        if step < total { inside += ">" }
        inside += String(repeating: ".", count: max(0, ProgressBar.width - inside.count))
        return "\(count) [\(inside)]"
    }

    /// Keras' metric format: 4 decimals, or scientific below 1e-3.
    public static func formatMetrics(_ metrics: [(String, Double)]) -> String {
        metrics.map { name, value in " - \(name): " + formatValue(value) }.joined()
    }

    static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "nan" }  // printf writes "-nan" for a NaN with the sign bit; numpy writes nan
        if v != 0 && abs(v) < 1e-3 { return cFormat("%.4e", v) }
        return cFormat("%.4f", v)
    }

    static func formatETA(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 1e15 else { return "?" }  // Int(_:) traps on NaN and infinity
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600):" + twoDigits((s % 3600) / 60) + ":" + twoDigits(s % 60) }
        if s >= 60 { return "\(s / 60):" + twoDigits(s % 60) }
        return "\(s)s"
    }

    static func formatStepTime(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 1e9 else { return "?s/step" }
        if seconds >= 1 { return "\(Int(seconds.rounded()))s/step" }
        if seconds >= 1e-3 { return "\(Int((seconds * 1e3).rounded()))ms/step" }
        return "\(Int((seconds * 1e6).rounded()))us/step"
    }

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}

func cFormat(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, format, $0) }
    return String(cString: buffer)
}

/// Monotonic seconds.
public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
