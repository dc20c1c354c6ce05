import ArgumentParser
import Foundation
import LowBit

/// `lowbit bench`: throughput measurements.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput, and accuracy on a dataset panel.", subcommands: [AllBench.self, KernelsBench.self, QuantizeBench.self, ModelBench.self, PeakBench.self, AccuracyBench.self, AllReduceBench.self], defaultSubcommand: AllBench.self)
}

/// One measurement, with the keys `../shared/peers/ort_matmul.py` uses too.
struct BenchRow: Codable {
    var mode: String
    var backend: String
    var isa: String
    var m: Int
    var k: Int
    var n: Int
    var threads: Int
    var gops: Double
    var ms: Double
    /// With `--peak`, one-thread rows of the kernels: the limit that binds this shape and mode
    /// on this machine ("int8" compute, or "L2" / "L3" / "DRAM" bandwidth), its GOP/s, and the
    /// result as a percentage of it.
    var bound: String?
    var boundGOPs: Double?
    var percentOfBound: Double?
    enum CodingKeys: String, CodingKey {
        case mode, backend, isa, m, k, n, threads, gops, ms, bound
        case boundGOPs = "bound_gops", percentOfBound = "pct_of_bound"
    }
}

/// `lowbit bench kernels`: packed low-bit matmul per mode against OpenBLAS sgemm, same shapes, one run.
struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time the packed matmul of each mode (kernels backend) and OpenBLAS sgemm on the same shapes.",
        discussion: """
            Each case is warmed up, then repeated for about --seconds; the median is reported. \
            Activations are quantized inside the timed call. gops = 2·M·N·K / median seconds / 1e9.
            """)

    @Option(help: "Modes, comma-separated (binary,ternary,int4,int8).") var modes = "binary,ternary,int4,int8"
    @Option(help: "Output channels M, comma-separated; paired with --k (1024,11008 with 1024,4096 is 1024x1024 and 11008x4096). Default: the cases of the package-benchmark suite.")
    var m = KernelBenchmarkCases.shapes.map { String($0.m) }.joined(separator: ",")
    @Option(help: "Input features K, comma-separated; paired with --m.") var k = KernelBenchmarkCases.shapes.map { String($0.k) }.joined(separator: ",")
    @Option(help: "Tokens N, comma-separated.") var n = KernelBenchmarkCases.tokens.map(String.init).joined(separator: ",")
    @Option(help: "Thread counts, comma-separated (default: LOWBIT_THREADS or every CPU).") var threads: String?
    @Option(help: "Time budget per case, in seconds.") var seconds = 0.5
    @Flag(help: "Measure this machine's limits first (lowbit bench peak) and give each one-thread kernels result as a percentage of the limit that binds it: int8 compute, or reading the packed weights, activations and output at the read bandwidth of a buffer the weights' size (named L2, L3 or DRAM by that size).")
    var peak = false
    @Flag(help: "Print only a JSON array on standard output.") var json = false

    func run() throws {
        let config = try runtimeConfiguration()
        var machine = peak ? MachinePeak.measure(seconds: 0.3) : nil
        let modeList = try modes.split(separator: ",").map { try QuantizationMode(parsing: String($0)) }
        let ms = try parseList(m, "--m"), ks = try parseList(k, "--k"), ns = try parseList(n, "--n")
        let threadList = try threads.map { try parseList($0, "--threads") } ?? [config.threads]
        guard ks.allSatisfy({ $0 <= 65536 }) else { throw ValidationError("--k must be at most 65536") }
        guard ms.count == ks.count || ms.count == 1 || ks.count == 1 else {
            throw ValidationError("--m and --k pair up: give as many of each (or one of either), got \(ms.count) and \(ks.count)")
        }
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
        var rows: [BenchRow] = []
        for (mm, kk) in zip(ms.count == 1 ? Array(repeating: ms[0], count: ks.count) : ms, ks.count == 1 ? Array(repeating: ks[0], count: ms.count) : ks) {
            var rng = SeededGenerator(seed: 7)
            let w = Tensor(shape: [mm, kk]) { _ in rng.signedUnit() }
            let maxN = ns.max()!
            let x = (0..<(maxN * kk)).map { _ in rng.signedUnit() }
            var y = [Float](repeating: 0, count: maxN * mm)
            for t in threadList {
                let backend = try KernelsBackend(isa: config.isa, threads: t)
                for mode in modeList {
                    let layer = try PackedLinear(backend.quantize(weights: w, mode: mode), backend: backend, maxTokens: maxN)
                    for nn in ns {
                        let sec = try x.withUnsafeBufferPointer { xp in
                            try y.withUnsafeMutableBufferPointer { yp in
                                try medianSeconds(budget: seconds) { try layer(xp, tokens: nn, into: yp) }
                            }
                        }
                        var r = row(mode.rawValue, "kernels", config.isa.rawValue, mm, kk, nn, t, sec)
                        if t == 1, machine != nil { machine!.measureRead(mode: mode, m: mm, k: kk, seconds: 0.2) }
                        if t == 1, let b = machine?.bound(mode: mode, isa: backend.isa.rawValue, m: mm, k: kk, n: nn) {
                            (r.bound, r.boundGOPs, r.percentOfBound) = (b.limit, (b.gops * 10).rounded() / 10, (r.gops / b.gops * 1000).rounded() / 10)
                        }
                        rows.append(r)
                        progress(rows.last!)
                    }
                }
                OpenBLASLinear.setThreads(t)
                for nn in ns {
                    let sec = x.withUnsafeBufferPointer { xp in
                        w.scalars.withUnsafeBufferPointer { wp in
                            y.withUnsafeMutableBufferPointer { yp in
                                medianSeconds(budget: seconds) {
                                    OpenBLASLinear.run(x: xp.baseAddress!, weights: wp.baseAddress!, tokens: nn, outputs: mm,
                                                       inputs: kk, into: yp.baseAddress!)
                                }
                            }
                        }
                    }
                    rows.append(row("f32", "openblas", "openblas", mm, kk, nn, t, sec))
                    progress(rows.last!)
                }
            }
        }
        if json {
            try printJSON(rows)
        } else {
            printTable(rows)
        }
    }

    func row(_ mode: String, _ backend: String, _ isa: String, _ m: Int, _ k: Int, _ n: Int, _ t: Int, _ sec: Double) -> BenchRow {
        BenchRow(mode: mode, backend: backend, isa: isa, m: m, k: k, n: n, threads: t,
                 gops: (2 * Double(m) * Double(n) * Double(k) / sec / 1e9 * 100).rounded() / 100,
                 ms: (sec * 1e3 * 10000).rounded() / 10000)
    }

    /// One line per case on standard error, so that a long run shows it is alive.
    func progress(_ r: BenchRow) {
        FileHandle.standardError.write(Data("  \(r.mode) n=\(r.n) threads=\(r.threads): \(r.gops) GOP/s\n".utf8))
    }

    func printTable(_ rows: [BenchRow]) {
        print("mode     backend   isa          M      K      N    threads  GOP/s     ms        × f32   bound")
        for r in rows {
            let base = rows.first { $0.mode == "f32" && $0.m == r.m && $0.k == r.k && $0.n == r.n && $0.threads == r.threads }
            let ratio = base.map { String(format: "%.1f×", r.gops / $0.gops) } ?? ""
            print("\(pad(r.mode, 8)) \(pad(r.backend, 9)) \(pad(r.isa, 10)) \(pad(String(r.m), 6)) \(pad(String(r.k), 6)) \(pad(String(r.n), 4)) \(pad(String(r.threads), 8)) \(pad(String(format: "%.1f", r.gops), 9)) \(pad(String(format: "%.3f", r.ms), 9)) \(pad(ratio, 7))\(r.percentOfBound.map { String(format: " %.0f%% of %@ %.0f", $0, r.bound!, r.boundGOPs!) } ?? "")")
        }
    }
}

func parseList(_ text: String, _ name: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("\(name) takes positive whole numbers separated by commas, got '\(text)'")
    }
    return values.map { $0! }
}

