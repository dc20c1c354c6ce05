import ArgumentParser
import Foundation
import LowBit
#if LOWBIT_MPI
import LowBitMPI
#endif

/// One all-reduce measurement of `lowbit bench allreduce`.
struct AllReduceRow: Codable {
    var ranks: Int
    var bytes: Int
    var ms: Double
    /// Bytes each rank sends and receives in a ring all-reduce (2 (P − 1) / P of the message)
    /// per second: the link speed the sum achieved.
    var busGBps: Double
    enum CodingKeys: String, CodingKey {
        case ranks, bytes, ms
        case busGBps = "bus_gb_per_s"
    }
}

/// `lowbit bench allreduce`: the cost of summing float arrays over the ranks of `mpirun`, the
/// communication term of a distributed step (docs/distributed.md).
struct AllReduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Under mpirun (a lowbit built with --traits MPI): time MPI_Allreduce of float arrays of each size. Rank 0 prints.")

    @Option(help: "Message sizes in MB, comma-separated (12.6 MB: the design model's gradients).") var sizes = "0.001,0.01,0.1,1,4,12.6,50"
    @Option(help: "Timed calls per size (after 3 warm-up calls); the median is reported.") var repeats = 15
    @Flag(help: "Print only a JSON array on standard output.") var json = false

    func run() throws {
        let megabytes = try sizes.split(separator: ",").map { text -> Double in
            guard let v = Double(text.trimmingCharacters(in: .whitespaces)), v > 0, v <= 4096 else {
                throw ValidationError("--sizes takes sizes in MB from (0, 4096], got '\(text)'")
            }
            return v
        }
        guard (1...10_000).contains(repeats) else { throw ValidationError("--repeats must be from 1 to 10000, got \(repeats)") }
        #if LOWBIT_MPI
        let group = try MPIProcessGroup.world()
        var rows: [AllReduceRow] = []
        for mb in megabytes {
            let count = max(1, Int(mb * 1e6) / 4)
            var values = [Float](repeating: 1e-3, count: count)
            let seconds = try medianOf(repeats) { try group.allReduceSum(&values) }
            let moved = 2 * Double(group.size - 1) / Double(group.size) * Double(count * 4)
            rows.append(AllReduceRow(ranks: group.size, bytes: count * 4, ms: (seconds * 1e6).rounded() / 1e3,
                                     busGBps: ((moved / seconds / 1e9) * 100).rounded() / 100))
        }
        guard group.rank == 0 else { return }
        if json { return try printJSON(rows) }
        printOutput("ranks  bytes        ms        bus GB/s")
        for r in rows {
            printOutput(pad(String(r.ranks), 6) + " " + pad(String(r.bytes), 12) + " " + pad(String(format: "%.3f", r.ms), 9) + " "
                        + String(format: "%.2f", r.busGBps))
        }
        #else
        _ = megabytes
        throw ValidationError("bench allreduce needs a lowbit built with MPI: `swift build -c release --traits MPI` (Debian: libopenmpi-dev)")
        #endif
    }
}
