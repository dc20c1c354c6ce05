import Foundation
import LowBit

/// Training progress on standard error, for one run or several at once. On a terminal, one
/// bar per running mode, redrawn in place (at most ten times a second); otherwise one plain
/// line per mode and epoch (logs, pipes, CI). Messages go through it too, so that a line
/// printed while runs are going is not torn by the bars being redrawn.
final class ProgressDisplay: @unchecked Sendable {
    let live = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    /// The running modes' bars, in the order they started.
    private var bars: [(label: String, text: String)] = []
    private var lastEpoch: [String: Int] = [:]
    /// How many bar lines are on the screen; the cursor is at the end of the last.
    private var drawn = 0
    private var lastDraw = Date.distantPast

    func update(_ label: String, _ p: TrainingProgress) {
        lock.withLock {
            if live {
                let width = 24, filled = Int(Double(width) * Double(p.step) / Double(max(p.steps, 1)))
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                let text = "\(label) \(bar) epoch \(p.epoch)/\(p.epochs) step \(p.step)/\(p.steps) " + stats(p)
                if let i = bars.firstIndex(where: { $0.label == label }) { bars[i].text = text } else { bars.append((label, text)) }
                guard Date().timeIntervalSince(lastDraw) > 0.1 || p.step == p.steps else { return }
                lastDraw = Date()
                redraw()
            } else if p.step % max(p.steps / p.epochs, 1) == 0, p.epoch != lastEpoch[label] {
                lastEpoch[label] = p.epoch
                printError("\(label) epoch \(p.epoch)/\(p.epochs) step \(p.step)/\(p.steps) " + stats(p))
            }
        }
    }

    /// Ends `label`'s bar: its last state stays on the screen above the bars still running.
    func finish(_ label: String) {
        lock.withLock {
            guard live, let i = bars.firstIndex(where: { $0.label == label }) else { return }
            let done = bars.remove(at: i)
            clear()
            printError(done.text)
            draw()
        }
    }

    /// Prints a line (on standard output or standard error) above the running bars.
    func say(_ text: String, onStandardOutput: Bool) {
        lock.withLock {
            clear()
            onStandardOutput ? printOutput(text) : printError(text)
            draw()
        }
    }

    private func stats(_ p: TrainingProgress) -> String {
        String(format: "loss %.4f acc %.3f %.1f steps/s ETA ", p.loss, p.accuracy, p.stepsPerSecond) + duration(p.secondsRemaining)
    }

    private func clear() {
        guard drawn > 0 else { return }
        printError("\r" + (drawn > 1 ? "\u{1B}[\(drawn - 1)A" : "") + "\u{1B}[J", terminator: "")
        drawn = 0
    }

    private func draw() {
        guard live, !bars.isEmpty else { return }
        printError(bars.map(\.text).joined(separator: "\n"), terminator: "")
        drawn = bars.count
    }

    private func redraw() {
        clear()
        draw()
    }
}

/// "1m05s", "12s", "0.4s".
func duration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    if s >= 60 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return s >= 10 ? String(format: "%.0fs", s) : String(format: "%.1fs", s)
}
