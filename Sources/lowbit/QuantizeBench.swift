import ArgumentParser
import Foundation
import LowBit
import LowBitKernels

/// One quantize measurement: float input read per second, against a plain read of the same
/// buffer timed in the same run.
struct QuantizeBenchRow: Codable {
    var kernel: String
    var isa: String
    var rows: Int
    var cols: Int
    var threads: Int
    var ms: Double
    var gbps: Double
    var ofRead: Double
    enum CodingKeys: String, CodingKey {
        case kernel, isa, rows, cols, threads, ms
        case gbps = "gb_per_s", ofRead = "of_read"
    }
}

/// `lowbit bench quantize`: the quantize kernels (activations per token; weights per row)
/// as read bandwidth, beside a plain vector read of the same buffer (OpenBLAS sasum).
struct QuantizeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Time the quantize kernels as float bytes read per second, beside a plain read of the same buffer.",
        discussion: """
            The default buffer, 256 x 4096 floats (4 MiB), lives in L3 but not in L2, so `read` \
            (OpenBLAS sasum over it) is the L3 read bandwidth and of_read the fraction of it each kernel reaches. Each \
            kernel writes int8 codes and one scale per row (activations: per token).
            """)

    @Option(help: "Rows (tokens, or weight rows).") var rows = 256
    @Option(help: "Columns (K).") var cols = 4096
    @Option(help: "Thread counts, comma-separated (default: LOWBIT_THREADS or every CPU).") var threads: String?
    @Option(help: "Time budget per case, in seconds.") var seconds = 0.5
    @Flag(help: "Print only a JSON array on standard output.") var json = false

    func run() throws {
        let config = try runtimeConfiguration()
        guard rows > 0, cols > 0, rows * cols <= 1 << 30 else { throw ValidationError("--rows and --cols must be positive, at most 2^30 elements") }
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
        let threadList = try threads.map { try parseList($0, "--threads") } ?? [config.threads]
        var rng = SeededGenerator(seed: 7)
        let x = (0..<(rows * cols)).map { _ in rng.signedUnit() }
        var q = [Int8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 0, count: rows)
        let bytes = Double(rows * cols * MemoryLayout<Float>.size)
        var out: [QuantizeBenchRow] = []
        for t in threadList {
            var ctx = lowbit_context()
            let status = lowbit_context_init(&ctx, lowbit_isa_from_name(config.isa.rawValue), Int32(t))
            guard status == LOWBIT_OK else { throw ValidationError("cannot run \(config.isa.rawValue) with \(t) threads") }
            let r = Int64(rows), c = Int64(cols)
            let kernels: [(String, (UnsafePointer<lowbit_context>, UnsafePointer<Float>, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>) -> lowbit_status)] = [
                ("activations int8", { lowbit_quantize_activations($0, $1, r, c, $2, c, $3) }),
                ("weights binary", { lowbit_quantize_sign($0, $1, r, c, c, $2, $3) }),
                ("weights ternary", { lowbit_quantize_ternary($0, $1, r, c, c, $2, $3) }),
                ("weights int4", { lowbit_quantize_absmax($0, $1, r, c, c, 7, 7, $2, $3) }),
                ("weights int8", { lowbit_quantize_absmax($0, $1, r, c, c, 127, 127, $2, $3) }),
            ]
            OpenBLASLinear.setThreads(t)
            let readSeconds = x.withUnsafeBufferPointer { xp in
                medianSeconds(budget: seconds) { readSink += OpenBLASLinear.sumOfMagnitudes(xp) }
            }
            out.append(row("read", config.isa.rawValue, t, readSeconds, bytes, readSeconds))
            for (name, kernel) in kernels {
                let sec = try x.withUnsafeBufferPointer { xp in
                    try q.withUnsafeMutableBufferPointer { qp in
                        try scales.withUnsafeMutableBufferPointer { sp in
                            try withUnsafePointer(to: ctx) { cp in
                                try medianSeconds(budget: seconds) {
                                    let s = kernel(cp, xp.baseAddress!, qp.baseAddress!, sp.baseAddress!)
                                    guard s == LOWBIT_OK else { throw ValidationError("\(name): \(String(cString: lowbit_status_string(s)))") }
                                }
                            }
                        }
                    }
                }
                out.append(row(name, config.isa.rawValue, t, sec, bytes, readSeconds))
                printError("  \(name) threads=\(t): \(out.last!.gbps) GB/s")
            }
        }
        if json {
            try printJSON(out)
        } else {
            printOutput("kernel             isa          rows   cols   threads  GB/s     ms       of read")
            for r in out {
                printOutput("\(pad(r.kernel, 18)) \(pad(r.isa, 12)) \(pad(String(r.rows), 6)) \(pad(String(r.cols), 6)) \(pad(String(r.threads), 8)) \(pad(String(format: "%.1f", r.gbps), 8)) \(pad(String(format: "%.3f", r.ms), 8)) \(String(format: "%.0f%%", r.ofRead * 100))")
            }
        }
    }

    func row(_ kernel: String, _ isa: String, _ t: Int, _ sec: Double, _ bytes: Double, _ readSec: Double) -> QuantizeBenchRow {
        QuantizeBenchRow(kernel: kernel, isa: kernel == "read" ? "openblas" : isa, rows: rows, cols: cols, threads: t,
                         ms: (sec * 1e7).rounded() / 1e4, gbps: (bytes / sec / 1e9 * 10).rounded() / 10,
                         ofRead: (readSec / sec * 1000).rounded() / 1000)
    }
}

nonisolated(unsafe) var readSink: Float = 0
