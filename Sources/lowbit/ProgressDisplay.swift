import Foundation
import LowBit

/// Training progress on standard error: a bar redrawn in place on a terminal (at most ten
/// times a second), one plain line per epoch otherwise (logs, pipes, CI).
struct ProgressDisplay {
    let label: String
    let live = isatty(STDERR_FILENO) != 0
    private var lastDraw = Date.distantPast
    private var lastEpoch = 0

    init(label: String) { self.label = label }

    mutating func update(_ p: TrainingProgress) {
        let endOfEpoch = p.step % max(p.steps / p.epochs, 1) == 0
        if live {
            guard Date().timeIntervalSince(lastDraw) > 0.1 || p.step == p.steps else { return }
            lastDraw = Date()
            let width = 24, filled = Int(Double(width) * Double(p.step) / Double(p.steps))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            printError("\r\u{1B}[2K\(label) \(bar) epoch \(p.epoch)/\(p.epochs) step \(p.step)/\(p.steps) " + stats(p), terminator: "")
        } else if endOfEpoch, p.epoch != lastEpoch {
            lastEpoch = p.epoch
            printError("\(label) epoch \(p.epoch)/\(p.epochs) step \(p.step)/\(p.steps) " + stats(p))
        }
    }

    private func stats(_ p: TrainingProgress) -> String {
        String(format: "loss %.4f acc %.3f %.1f steps/s ETA ", p.loss, p.accuracy, p.stepsPerSecond) + duration(p.secondsRemaining)
    }

    /// Ends the live line.
    func finish() { if live { printError("") } }
}

/// "1m05s", "12s", "0.4s".
func duration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    if s >= 60 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return s >= 10 ? String(format: "%.0fs", s) : String(format: "%.1fs", s)
}
