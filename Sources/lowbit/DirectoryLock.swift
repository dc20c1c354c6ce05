import Foundation
import LowBit
#if canImport(Glibc)
import Glibc
#endif

/// An advisory lock on an output directory, held for the life of the process: two
/// `lowbit train` runs writing checkpoints into the same `--out` would overwrite each
/// other's files, so the second is refused at once, naming the first. The kernel drops the
/// lock when the holder exits, however it exits (SIGKILL too), so a stale lock never blocks.
enum DirectoryLock {
    /// Kept open (and locked) until the process exits.
    nonisolated(unsafe) private static var held: [String: Int32] = [:]

    static func acquire(_ directory: String) throws {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(".lock").path
        guard held[path] == nil else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LowBitError.invalidFile(path: path, reason: "cannot open the lock file (errno \(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, buffer.count)
            close(fd)
            let owner = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw LowBitError.invalidArgument("\(directory) is in use by another lowbit train (process \(owner)); "
                                              + "wait for it to end, or choose another --out")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.utf8.count, 0)
        held[path] = fd
    }
}
