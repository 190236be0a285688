import Foundation

/// One line of a chart.
public struct ChartSeries: Sendable {
    public var name: String
    public var values: [Double]
    /// Drawn dashed (e.g. validation curves).
    public var dashed: Bool
    public init(name: String, values: [Double], dashed: Bool = false) {
        self.name = name
        self.values = values
        self.dashed = dashed
    }
}

/// One chart: a title, a y-axis label and its series, plotted against the epoch (1, 2, ...).
public struct ChartPanel: Sendable {
    public var title: String
    public var yLabel: String
    public var series: [ChartSeries]
    public init(title: String, yLabel: String, series: [ChartSeries]) {
        self.title = title
        self.yLabel = yLabel
        self.series = series
    }
}

/// Line charts as a standalone SVG document: panels side by side, each with axes, ticks, grid lines,
/// one polyline per series and a legend.
public enum SVGChart {
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]

    /// The SVG text for `panels`, each `panelWidth` × `height` pixels.
    public static func render(_ panels: [ChartPanel], title: String? = nil, panelWidth: Double = 460,
                              height: Double = 360) -> String {
        let top = title == nil ? 0.0 : 30.0
        let width = panelWidth * Double(max(panels.count, 1))
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(width))" height="\(fmt(height + top))" \
            viewBox="0 0 \(fmt(width)) \(fmt(height + top))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        if let title {
            svg += "<text x=\"\(fmt(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>\n"
        }
        for (i, panel) in panels.enumerated() {
            svg += renderPanel(panel, x0: Double(i) * panelWidth, y0: top, width: panelWidth, height: height)
        }
        svg += "</svg>\n"
        return svg
    }

    static func renderPanel(_ panel: ChartPanel, x0: Double, y0: Double, width: Double, height: Double) -> String {
        let left = x0 + 62, right = x0 + width - 16, plotTop = y0 + 34, bottom = y0 + height - 46
        let all = panel.series.flatMap(\.values).filter(\.isFinite)
        let epochs = max(panel.series.map(\.values.count).max() ?? 1, 1)
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if lo == hi { lo -= 0.5; hi += 0.5 }
        let yTicks = niceTicks(lo, hi, count: 6)
        lo = min(lo, yTicks.first ?? lo)
        hi = max(hi, yTicks.last ?? hi)
        let xTicks = niceTicks(1, Double(max(epochs, 2)), count: 8).filter { $0 >= 1 && $0 == $0.rounded() }
        func x(_ epoch: Double) -> Double { left + (epoch - 1) / Double(max(epochs - 1, 1)) * (right - left) }
        func y(_ v: Double) -> Double { bottom - (v - lo) / (hi - lo) * (bottom - plotTop) }

        var s = "<g>\n"
        s += "<text x=\"\(fmt((left + right) / 2))\" y=\"\(fmt(y0 + 20))\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
        for t in yTicks where t >= lo && t <= hi {
            s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y(t)))\" x2=\"\(fmt(right))\" y2=\"\(fmt(y(t)))\" stroke=\"#e6e6e6\"/>\n"
            s += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y(t) + 4))\" text-anchor=\"end\" fill=\"#333\">\(tickLabel(t))</text>\n"
        }
        for t in xTicks where t <= Double(epochs) {
            s += "<line x1=\"\(fmt(x(t)))\" y1=\"\(fmt(bottom))\" x2=\"\(fmt(x(t)))\" y2=\"\(fmt(bottom + 5))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(fmt(x(t)))\" y=\"\(fmt(bottom + 18))\" text-anchor=\"middle\" fill=\"#333\">\(tickLabel(t))</text>\n"
        }
        s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(bottom))\" x2=\"\(fmt(right))\" y2=\"\(fmt(bottom))\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(plotTop))\" x2=\"\(fmt(left))\" y2=\"\(fmt(bottom))\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(fmt((left + right) / 2))\" y=\"\(fmt(bottom + 36))\" text-anchor=\"middle\">epoch</text>\n"
        s += "<text transform=\"translate(\(fmt(x0 + 16)) \(fmt((plotTop + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(panel.yLabel))</text>\n"
        for (i, series) in panel.series.enumerated() {
            let color = palette[i % palette.count]
            let points = series.values.enumerated().filter { $0.element.isFinite }
                .map { "\(fmt(x(Double($0.offset + 1)))),\(fmt(y($0.element)))" }.joined(separator: " ")
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(points)\"><title>\(escape(series.name))</title></polyline>\n"
        }
        // Legend inside the plot, top right, or bottom right when the curves end high (accuracy).
        let legendWidth = 14.0 + 7 * Double(panel.series.map(\.name.count).max() ?? 0) + 24
        let legendHeight = Double(panel.series.count) * 18 + 8
        let tails = panel.series.compactMap { $0.values.last(where: \.isFinite) }
        let endsHigh = !tails.isEmpty && tails.reduce(0) { $0 + ($1 - lo) / (hi - lo) } / Double(tails.count) > 0.5
        let lx = right - legendWidth - 6, ly = endsHigh ? bottom - legendHeight - 6 : plotTop + 6
        s += "<rect x=\"\(fmt(lx))\" y=\"\(fmt(ly))\" width=\"\(fmt(legendWidth))\" height=\"\(fmt(legendHeight))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
        for (i, series) in panel.series.enumerated() {
            let color = palette[i % palette.count], ry = ly + 16 + Double(i) * 18
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<line x1=\"\(fmt(lx + 8))\" y1=\"\(fmt(ry - 4))\" x2=\"\(fmt(lx + 30))\" y2=\"\(fmt(ry - 4))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(fmt(lx + 36))\" y=\"\(fmt(ry))\">\(escape(series.name))</text>\n"
        }
        return s + "</g>\n"
    }

    /// "Nice" ticks (steps of 1, 2 or 5 × 10ⁿ) covering [lo, hi].
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(max(count - 1, 1))
        let magnitude = pow10(floorLog10(raw))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = (lo / step).rounded(.down) * step
        var ticks: [Double] = []
        while t <= hi + step * 0.5 && ticks.count < 50 {
            ticks.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return ticks
    }

    static func floorLog10(_ v: Double) -> Int {
        var e = 0, x = v
        while x >= 10 { x /= 10; e += 1 }
        while x < 1 { x *= 10; e -= 1 }
        return e
    }

    static func pow10(_ e: Int) -> Double {
        var r = 1.0
        if e >= 0 { for _ in 0..<e { r *= 10 } } else { for _ in 0..<(-e) { r /= 10 } }
        return r
    }

    static func tickLabel(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        var s = cFormat("%.4f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func fmt(_ v: Double) -> String { cFormat("%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
