import Foundation

/// The process's peak resident memory, which Linux keeps as VmHWM and lets a process reset
/// (writing 5 to /proc/self/clear_refs), so that one run can measure case after case.
enum ProcessMemory {
    /// Starts a new peak at the current resident size; false where the kernel refuses.
    @discardableResult
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// Peak resident memory since the last reset (or the start), in MB; nil where
    /// /proc/self/status is not readable.
    static func peakMegabytes() -> Double? { statusMegabytes("VmHWM:") }

    /// Resident memory now, in MB.
    static func currentMegabytes() -> Double? { statusMegabytes("VmRSS:") }

    private static func statusMegabytes(_ field: String) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kB = Double(line.dropFirst(field.count).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        else { return nil }
        return kB / 1024
    }
}
