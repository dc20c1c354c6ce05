import LowBit
import LowBitKernels
import PropertyBased
import Testing

/// The C entry points called directly: pack/unpack and the exact int32 matmul on every ISA.
@Suite("Packed kernels")
struct PackedKernelTests {
    @Test("pack/unpack round trip and exact int32 matmul, every ISA, every format", arguments: QuantizationMode.allCases)
    func exactInt32(mode: QuantizationMode) async throws {
        let traits = lowbit_format_get(formatOf(mode)).pointee
        await propertyCheck(count: 25, input: Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...1_000_000)) {
            mi, ki, ni, seed in
            let (m, k, n) = (awkwardSizes[mi], awkwardSizes[ki], awkwardSizes[ni])
            var rng = TestRandom(UInt64(seed))
            let values: [Int8] = (0..<(m * k)).map { _ in
                let v = Int(rng.next() % UInt64(traits.qmax - traits.qmin + 1)) + Int(traits.qmin)
                return Int8(mode == .binary ? (v >= 0 ? 1 : -1) : v)
            }
            let kpad = Int(lowbit_padded_k(Int64(k)))
            var x = [Int8](repeating: 0, count: n * kpad)
            for i in 0..<n { for c in 0..<k { x[i * kpad + c] = Int8(truncatingIfNeeded: rng.next() % 255) &- 127 } }
            var packed = [UInt8](repeating: 0, count: lowbit_packed_size(formatOf(mode), Int64(m), Int64(k)))
            #expect(lowbit_pack(formatOf(mode), values, Int64(m), Int64(k), &packed) == LOWBIT_OK)
            var back = [Int8](repeating: 0, count: m * k)
            #expect(lowbit_unpack(formatOf(mode), packed, Int64(m), Int64(k), &back) == LOWBIT_OK)
            #expect(back == values, "\(mode) round trip [\(m), \(k)]")
            var want = [Int32](repeating: 0, count: n * m)
            for i in 0..<n { for j in 0..<m { for c in 0..<k { want[i * m + j] += Int32(x[i * kpad + c]) * Int32(values[j * k + c]) } } }
            for isa in ISA.allCases where lowbit_isa_supported(isaOf(isa)) != 0 {
                var ctx = lowbit_context()
                #expect(lowbit_context_init(&ctx, isaOf(isa), 2) == LOWBIT_OK)
                var y = [Int32](repeating: -1, count: n * m)
                let status = packed.withUnsafeBufferPointer { p in
                    var w = lowbit_packed_weights(format: formatOf(mode), m: Int64(m), k: Int64(k), group: 0, data: p.baseAddress, scales: nil)
                    return lowbit_matmul_s32(&ctx, &w, x, Int64(n), Int64(kpad), &y, Int64(m))
                }
                #expect(status == LOWBIT_OK)
                #expect(y == want, "\(isa) \(mode) m=\(m) k=\(k) n=\(n)")
            }
        }
    }

    @Test("the kernel list names every kernel, and info reports an ISA for each")
    func kernelList() throws {
        #expect(lowbit_kernel_count() == 23)
        let backend = try KernelsBackend(isa: .scalar, threads: 1)
        #expect(backend.kernelISAs.allSatisfy { $0.isa == .scalar })
        let best = try KernelsBackend(isa: .best, threads: 1)
        #expect(best.kernelISAs.map(\.kernel) == ["absmax", "sums", "quantize", "sign", "quantize_absmax", "quantize_sums",
                                                         "sign_sums", "dot_b1", "dot_b2", "dot_b4", "dot_b8", "dot_s8", "dot_wide",
                                                         "softmax", "silu", "silu_backward", "layernorm", "scores",
                                                         "quantize_stochastic", "dequantize", "combine", "adamw",
                                                         "transpose_scaled"])
    }

    func formatOf(_ mode: QuantizationMode) -> lowbit_format {
        switch mode {
        case .binary: LOWBIT_FORMAT_BINARY
        case .ternary: LOWBIT_FORMAT_TERNARY
        case .int4: LOWBIT_FORMAT_INT4
        case .int8: LOWBIT_FORMAT_INT8
        }
    }

    func isaOf(_ isa: ISA) -> lowbit_isa { lowbit_isa_from_name(isa.rawValue) }
}
