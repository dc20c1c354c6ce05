import ArgumentParser
import Foundation
import LowBit
import LowBitKernels

/// This machine's limits, measured: the int8 dot-product and fp32 FMA throughput of one core
/// per ISA, and one core's read bandwidth from L3 and from DRAM. Results of `lowbit bench
/// kernels` are quoted against them, so that they compare across machines.
struct MachinePeak: Codable {
    struct Compute: Codable {
        var isa: String
        var int8GOPs: Double
        var fp32GFLOPs: Double
        enum CodingKeys: String, CodingKey { case isa, int8GOPs = "int8_gops", fp32GFLOPs = "fp32_gflops" }
    }
    var compute: [Compute]
    /// Read bandwidth of one core, GB/s: a buffer in L3 but not L2 (half the L3, at most 16
    /// L2s: a virtual machine's share of a large server L3 is smaller than the L3 it reports),
    /// and one far larger than the L3.
    var l3GBs: Double
    var dramGBs: Double
    /// The L3 size the system reports (bytes; 32 MB when it does not say), the L3 buffer's size,
    /// and the L2 size (1 MB when the system does not say).
    var l3Bytes: Int
    var l3BufferBytes: Int
    var l2Bytes: Int
    /// One core's read bandwidth, GB/s, of a buffer of each size that `bound` was asked about
    /// (keyed by the size in bytes): packed weights are read from wherever a buffer of their
    /// size lives, which the nominal cache sizes do not always say.
    var readGBs: [String: Double] = [:]
    enum CodingKeys: String, CodingKey {
        case compute, l3GBs = "l3_gbs", dramGBs = "dram_gbs", l3Bytes = "l3_bytes", l3BufferBytes = "l3_buffer_bytes"
        case l2Bytes = "l2_bytes", readGBs = "read_gbs"
    }

    static func measure(seconds: Double) -> MachinePeak {
        var compute: [Compute] = []
        for isa in ISA.supported where [.avx2, .avx512, .avx512vnni].contains(isa) {
            let raw = lowbit_isa(rawValue: UInt32(ISA.allCases.firstIndex(of: isa)!))
            let iterations: Int64 = 1 << 18
            var int8Ops: Int64 = 0, fp32Ops: Int64 = 0
            let int8 = medianSeconds(budget: seconds) { int8Ops = lowbit_peak_int8(raw, iterations) }
            let fp32 = medianSeconds(budget: seconds) { fp32Ops = lowbit_peak_fp32(raw, iterations) }
            compute.append(Compute(isa: isa.rawValue, int8GOPs: round1(Double(int8Ops) / int8 / 1e9),
                                   fp32GFLOPs: round1(Double(fp32Ops) / fp32 / 1e9)))
        }
        let l3 = cacheSize(index: 3) ?? 32 << 20, l2 = cacheSize(index: 2) ?? 1 << 20
        let l3Buffer = min(l3 / 2, 16 * l2), dramBuffer = max(256 << 20, 8 * l3)
        return MachinePeak(compute: compute, l3GBs: readBandwidth(bytes: l3Buffer, seconds: seconds),
                           dramGBs: readBandwidth(bytes: dramBuffer, seconds: seconds, passes: 1), l3Bytes: l3,
                           l3BufferBytes: l3Buffer, l2Bytes: l2)
    }

    /// One core reading a buffer of `bytes` over and over (about 64 MB a pass unless `passes`
    /// says), GB/s.
    static func readBandwidth(bytes: Int, seconds: Double, passes: Int? = nil) -> Double {
        var buffer = [UInt8](repeating: 0, count: bytes)
        for i in stride(from: 0, to: bytes, by: 64) { buffer[i] = UInt8(truncatingIfNeeded: i / 64) }
        let passes = Int64(passes ?? max(1, (64 << 20) / max(bytes, 1)))
        return buffer.withUnsafeBytes { b in
            var read: Int64 = 0
            let sec = medianSeconds(budget: seconds) { read = lowbit_read_bytes(b.baseAddress, Int64(bytes), passes) }
            return round1(Double(read) / sec / 1e9)
        }
    }

    /// Measures the read bandwidth of a buffer the size of `mode`'s packed [m, k] weights,
    /// once per size, for `bound`.
    mutating func measureRead(mode: QuantizationMode, m: Int, k: Int, seconds: Double) {
        let bytes = Self.packedBytes(mode: mode, m: m, k: k)
        if readGBs[String(bytes)] == nil { readGBs[String(bytes)] = Self.readBandwidth(bytes: bytes, seconds: seconds) }
    }

    /// The size Linux reports for CPU 0's cache at `index` (2: L2, 3: L3; "32768K"), in bytes.
    static func cacheSize(index: Int) -> Int? {
        guard let text = try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cache/index\(index)/size", encoding: .utf8) else { return nil }
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let unit = t.last.map { ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30][String($0)] ?? 1 } ?? 1
        return Int(t.filter(\.isNumber)).map { $0 * unit }
    }

    static func packedBytes(mode: QuantizationMode, m: Int, k: Int) -> Int {
        let format: lowbit_format = switch mode {
        case .binary: LOWBIT_FORMAT_BINARY
        case .ternary: LOWBIT_FORMAT_TERNARY
        case .int4: LOWBIT_FORMAT_INT4
        case .int8: LOWBIT_FORMAT_INT8
        }
        return lowbit_packed_size(format, Int64(m), Int64(k))
    }

    /// The int8 throughput of `isa`'s kernels on one core, GOP/s.
    func int8(_ isa: String) -> Double? { compute.first { $0.isa == isa }?.int8GOPs }

    /// What binds a packed matmul of `mode` on [m, k] weights and n tokens, on one thread:
    /// int8 compute, or moving the packed weights, the float activations and the output at the
    /// bandwidth of a buffer the weights' size (`measureRead`; without it, L3 bandwidth for
    /// weights that fit in L3, else DRAM bandwidth). The level is named by the weights' size
    /// against the caches. GOP/s.
    func bound(mode: QuantizationMode, isa: String, m: Int, k: Int, n: Int) -> (gops: Double, limit: String)? {
        guard let compute = int8(isa) else { return nil }
        let weightBytes = Self.packedBytes(mode: mode, m: m, k: k)
        let bytes = Double(weightBytes) + Double(n * k * 4) + Double(n * m * 4)
        let level = weightBytes <= l2Bytes ? "L2" : weightBytes <= l3Bytes ? "L3" : "DRAM"
        let bw = readGBs[String(weightBytes)] ?? (weightBytes <= l3Bytes ? l3GBs : dramGBs)
        let memory = 2 * Double(m) * Double(k) * Double(n) / (bytes / (bw * 1e9)) / 1e9
        return memory < compute ? (memory, level) : (compute, "int8")
    }
}

private func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }

/// `lowbit bench peak`: this machine's limits.
struct PeakBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peak",
        abstract: "Measure this machine's limits on one core: int8 dot and fp32 FMA throughput per ISA, L3 and DRAM read bandwidth.")

    @Option(help: "Time budget per measurement, in seconds.") var seconds = 0.3
    @Flag(help: "Print only JSON on standard output.") var json = false

    func run() throws {
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
        let peak = MachinePeak.measure(seconds: seconds)
        if json {
            try printJSON(peak)
            return
        }
        print("isa          int8 GOP/s  fp32 GFLOP/s   (one core)")
        for c in peak.compute { print(pad(c.isa, 12) + " " + pad(String(format: "%.1f", c.int8GOPs), 11) + " " + String(format: "%.1f", c.fp32GFLOPs)) }
        if peak.compute.isEmpty { print("(no x86 SIMD ISA here: compute peaks are measured on AVX2 and AVX-512)") }
        print(String(format: "read bandwidth, one core: L3 %.1f GB/s (a %d MB buffer), DRAM %.1f GB/s", peak.l3GBs, peak.l3BufferBytes >> 20, peak.dramGBs))
    }
}
