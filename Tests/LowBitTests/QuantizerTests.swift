import LowBit
import PropertyBased
import Testing

@Suite("Quantizers")
struct QuantizerTests {
    static let granularities: [Granularity] = [.perTensor, .perChannel, .perGroup(32), .perGroup(64)]

    @Test("every backend and ISA returns the reference's values and scale bits",
          arguments: QuantizationMode.allCases)
    func bitExactAcrossBackends(mode: QuantizationMode) async throws {
        let backends = try allBackends()
        await propertyCheck(count: 25, input: Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...3), Gen.int(in: 0...1_000_000)) {
            ri, ci, gi, seed in
            let (rows, cols) = (awkwardSizes[ri], awkwardSizes[ci])
            var rng = TestRandom(UInt64(seed))
            let w = rng.tensor([rows, cols], scale: 0.3)
            let granularity = Self.granularities[gi]
            for bound in ScaleBound.allCases {
                let want = try ReferenceQuantizer.quantize(weights: w, mode: mode, granularity: granularity, bound: bound)
                for b in backends {
                    let got = try b.quantize(weights: w, mode: mode, granularity: granularity, bound: bound)
                    #expect(got.values == want.values, "\(label(b)) \(mode) \(granularity) [\(rows), \(cols)] values")
                    #expect(got.scales.map(\.bitPattern) == want.scales.map(\.bitPattern),
                            "\(label(b)) \(mode) \(granularity) [\(rows), \(cols)] scales")
                }
            }
        }
    }

    @Test("activations: int8 absmax per token, bit-exact on every backend, padded with zeros")
    func activationsBitExact() async throws {
        let backends = try allBackends()
        await propertyCheck(count: 30, input: Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...1_000_000)) { ni, ki, seed in
            var rng = TestRandom(UInt64(seed))
            let x = rng.tensor([awkwardSizes[ni], awkwardSizes[ki]], scale: 5)
            let want = try ReferenceQuantizer.quantize(activations: x)
            #expect(want.stride % 32 == 0 && want.stride >= x.shape[1])
            for i in 0..<want.tokens {
                #expect(want.values[(i * want.stride + want.cols)..<((i + 1) * want.stride)].allSatisfy { $0 == 0 })
                let absmax = x.scalars[(i * want.cols)..<((i + 1) * want.cols)].map(\.magnitude).max()!
                #expect(want.scales[i] == absmax / 127)
            }
            for b in backends {
                let got = try b.quantize(activations: x)
                #expect(got == want, "\(label(b)) activations [\(x.shape)]")
            }
        }
    }

    @Test("quantized weights are really discrete, with the documented scales", arguments: QuantizationMode.allCases)
    func discreteValuesAndScales(mode: QuantizationMode) throws {
        var rng = TestRandom(11)
        let w = rng.tensor([9, 77], scale: 2)
        for b in try allBackends() {
            let q = try b.quantize(weights: w, mode: mode, granularity: .perChannel, bound: .qmax)
            let allowed: ClosedRange<Int8> = mode == .binary ? -1...1 : Int8(-mode.qmax)...Int8(mode.qmax)
            #expect(q.values.allSatisfy { allowed.contains($0) && (mode != .binary || $0 != 0) }, "\(label(b)) \(mode)")
            #expect(Set(q.values).count <= (mode == .binary ? 2 : 2 * mode.qmax + 1))
            for r in 0..<9 {
                let row = w.scalars[(r * 77)..<((r + 1) * 77)]
                let expected: Float = switch mode {
                case .binary, .ternary: Float(row.map { Double($0.magnitude) }.reduce(0, +) / 77)
                case .int4, .int8: row.map(\.magnitude).max()! / Float(mode.qmax)
                }
                #expect(abs(q.scales[r] - expected) <= 1e-6 * expected, "\(label(b)) \(mode) row \(r) scale")
                // Dequantized weights stay within half a step of the originals (absmax modes).
                if mode == .int4 || mode == .int8 {
                    for c in 0..<77 { #expect(abs(Float(q.values[r * 77 + c]) * q.scales[r] - row[row.startIndex + c]) <= q.scales[r] * 0.5001) }
                }
            }
        }
    }

    @Test("binary is sign(w - mean) with sign(0) = +1; ternary rounds half to even")
    func signAndTies() throws {
        let w = try Tensor(shape: [1, 4], scalars: [1, 2, 3, 6]) // mean 3: the 3 maps to +1
        for b in try allBackends() {
            #expect(try b.quantize(weights: w, mode: .binary).values == [-1, -1, 1, 1], "\(label(b))")
        }
        // int8 with absmax 127 gives inverse 1: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2
        let ties = try Tensor(shape: [1, 5], scalars: [0.5, 1.5, 2.5, -2.5, 127])
        for b in try allBackends() {
            #expect(try b.quantize(weights: ties, mode: .int8).values == [0, 2, 2, -2, 127], "\(label(b))")
        }
    }

    @Test("an all-zero tensor has scale 0 and values 0", arguments: QuantizationMode.allCases)
    func zeros(mode: QuantizationMode) throws {
        for b in try allBackends() {
            let q = try b.quantize(weights: Tensor(zeros: [3, 5]), mode: mode)
            #expect(q.scales.allSatisfy { $0 == 0 })
            if mode != .binary { #expect(q.values.allSatisfy { $0 == 0 }, "\(label(b)) \(mode)") }
        }
    }
}
