import Foundation
import LowBit

/// The loss and accuracy curves of a run as a standalone SVG: training loss (left axis),
/// training and evaluation accuracy (right axis, 0 to 1), one point per epoch; for an
/// ensemble, every model's curves, the first drawn solid and the others fainter.
enum CurvePlot {
    static func svg(title: String, histories: [[EpochRecord]], evaluationName: String) -> String {
        let history = histories.first ?? []
        let (w, h) = (720.0, 400.0), (left, right, top, bottom) = (60.0, 60.0, 40.0, 50.0)
        let plotW = w - left - right, plotH = h - top - bottom
        let epochs = max(history.last?.epoch ?? 1, 1)
        let maxLoss = max(histories.joined().map { Double($0.trainLoss) }.max() ?? 1, 1e-6) * 1.05
        func x(_ e: Int) -> Double { left + plotW * Double(e) / Double(epochs) }
        func yLoss(_ l: Double) -> Double { top + plotH * (1 - l / maxLoss) }
        func yAcc(_ a: Double) -> Double { top + plotH * (1 - a) }
        func polyline(_ points: [(Double, Double)], _ color: String, dashed: Bool = false, opacity: Double = 1) -> String {
            guard !points.isEmpty else { return "" }
            let p = points.map { String(format: "%.1f,%.1f", $0.0, $0.1) }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")"
                + (opacity < 1 ? " stroke-opacity=\"\(opacity)\"" : "") + " points=\"\(p)\"/>\n"
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(w / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        for i in 0...4 {
            let f = Double(i) / 4, y = top + plotH * (1 - f)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y, left + plotW, y)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#1f77b4\">%.3g</text>\n", left - 6, y + 4, maxLoss * f)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d62728\">%.2f</text>\n", left + plotW + 6, y + 4, f)
        }
        for i in 0...5 {
            let e = Int((Double(epochs) * Double(i) / 5).rounded())
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x(e), top + plotH + 18, e)
        }
        s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left, top, plotW, plotH)
        s += "<text x=\"\(left + plotW / 2)\" y=\"\(h - 12)\" text-anchor=\"middle\">epoch</text>\n"
        for (i, history) in histories.enumerated().reversed() {
            let opacity = i == 0 ? 1 : 0.4
            s += polyline(history.map { (x($0.epoch), yLoss(Double($0.trainLoss))) }, "#1f77b4", opacity: opacity)
            s += polyline(history.map { (x($0.epoch), yAcc($0.trainAccuracy)) }, "#d62728", dashed: true, opacity: opacity)
            s += polyline(history.compactMap { r in r.evaluationAccuracy.map { (x(r.epoch), yAcc($0)) } }, "#2ca02c", opacity: opacity)
        }
        let legend = [("#1f77b4", "training loss (left)", false), ("#d62728", "training accuracy (right)", true),
                      ("#2ca02c", "\(evaluationName) accuracy (right)", false)]
        for (i, (color, name, dashed)) in legend.enumerated() {
            // Middle right: accuracy converges near the top, loss near the bottom.
            let (x0, y) = (left + plotW - 250, top + plotH * 0.4 + Double(i) * 16)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" ", x0, y - 4, x0 + 24, y - 4)
                + "stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">", x0 + 30, y) + escape(name) + "</text>\n"
        }
        return s + "</svg>\n"
    }

    static func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
