import Dispatch
import LowBit
import PropertyBased
import Testing

@Suite("Backends agree")
struct BackendAgreementTests {
    @Test("quantized linear forward: every backend and ISA matches the reference", arguments: QuantizationMode.allCases)
    func linearForward(mode: QuantizationMode) async throws {
        let backends = try allBackends()
        let reference = ReferenceBackend()
        await propertyCheck(count: 30, input: Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...1_000_000)) {
            mi, ki, ni, seed in
            let (m, k, n) = (awkwardSizes[mi], awkwardSizes[ki], awkwardSizes[ni] % 70)
            var rng = TestRandom(UInt64(seed))
            let w = rng.tensor([m, k], scale: 0.2), x = rng.tensor([max(n, 1), k], scale: 3), bias = rng.tensor([m])
            let granularity: Granularity = mode == .int4 && k > 16 ? .perGroup(16) : mode.defaultGranularity
            let q = try reference.quantize(weights: w, mode: mode, granularity: granularity, bound: .qmax)
            let xq = try reference.quantize(activations: x)
            let want = try reference.linear(xq, reference.prepare(q), bias: bias)
            let wantNoBias = try reference.linear(xq, reference.prepare(q), bias: nil)
            let mag = magnitudes(xq.dequantized(), q.dequantized(), bias: bias)
            for b in backends {
                let prepared = try b.prepare(q)
                let got = try b.linear(xq, prepared, bias: bias)
                expectAgree(got, want, magnitudes: mag, k: k, groups: q.groupsPerRow, "\(label(b)) \(mode) m=\(m) k=\(k) n=\(x.shape[0])")
                expectAgree(try b.linear(xq, prepared, bias: nil), wantNoBias, magnitudes: mag, k: k, groups: q.groupsPerRow,
                            "\(label(b)) \(mode) without bias")
            }
        }
    }

    @Test("int8 GEMM: integer results bit-exact on every backend and ISA, all transposes")
    func gemmInt8() async throws {
        let backends = try allBackends()
        await propertyCheck(count: 30, input: Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...1_000_000)) {
            mi, ni, ki, seed in
            let (m, n, k) = (awkwardSizes[mi], awkwardSizes[ni], awkwardSizes[ki])
            var rng = TestRandom(UInt64(seed))
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = Int8Matrix(rows: ta ? k : m, cols: ta ? m : k, values: rng.int8s(m * k).map { max($0, -127) })
                let b = Int8Matrix(rows: tb ? n : k, cols: tb ? k : n, values: rng.int8s(n * k))
                let want = try ReferenceBackend().gemmInt8(a, b, transposeA: ta, transposeB: tb)
                for be in backends {
                    #expect(try be.gemmInt8(a, b, transposeA: ta, transposeB: tb) == want, "\(label(be)) \(m)x\(n)x\(k) ta=\(ta) tb=\(tb)")
                }
            }
        }
    }

    @Test("float matmul with transposes agrees with the reference")
    func floatMatmul() async throws {
        let backends = try allBackends()
        await propertyCheck(count: 20, input: Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...9), Gen.int(in: 0...1_000_000)) {
            mi, ni, ki, seed in
            let (m, n, k) = (awkwardSizes[mi], awkwardSizes[ni], awkwardSizes[ki])
            var rng = TestRandom(UInt64(seed))
            let a = rng.tensor([m, k]), b = rng.tensor([n, k])
            let want = try ReferenceBackend().matmul(a, b, transposeA: false, transposeB: true)
            let mag = magnitudes(a, b)
            for be in backends {
                expectAgree(try be.matmul(a, b, transposeA: false, transposeB: true), want, magnitudes: mag, k: k, "\(label(be)) a·bᵀ")
                expectAgree(try be.matmul(a.transposed(), b, transposeA: true, transposeB: true), want, magnitudes: mag, k: k, "\(label(be)) aᵀᵀ·bᵀ")
                expectAgree(try be.matmul(a, b.transposed(), transposeA: false, transposeB: false), want, magnitudes: mag, k: k, "\(label(be)) a·b")
            }
        }
    }

    @Test("backward (STE float and QT int8) agrees across backends; QT tracks the float gradient",
          arguments: QuantizationMode.allCases)
    func backward(mode: QuantizationMode) throws {
        let reference = ReferenceBackend()
        for (m, k, n) in [(1, 1, 1), (17, 33, 5), (65, 63, 17), (16, 64, 8)] {
            var rng = TestRandom(UInt64(m * 1000 + k))
            let w = rng.tensor([m, k], scale: 0.2), x = rng.tensor([n, k], scale: 2), g = rng.tensor([n, m])
            let granularity: Granularity = mode == .int4 && k > 16 ? .perGroup(16) : mode.defaultGranularity
            let q = try reference.quantize(weights: w, mode: mode, granularity: granularity, bound: .qmax)
            let xq = try reference.quantize(activations: x)
            let want = try reference.linearBackward(gradOutput: g, input: xq, weights: reference.prepare(q), precision: .float)
            // STE: the input gradient is g·Ŵ and the weight gradient gᵀ·x̂ (at the dequantized operands).
            #expect(want.input == (try reference.matmul(g, q.dequantized(), transposeA: false, transposeB: false)))
            #expect(want.weight == (try reference.matmul(g, xq.dequantized(), transposeA: true, transposeB: false)))
            let magInput = magnitudes(g, try q.dequantized().transposed())
            let magWeight = magnitudes(try g.transposed(), try xq.dequantized().transposed())
            let wantQT = try reference.linearBackward(gradOutput: g, input: xq, weights: reference.prepare(q), precision: .int8)
            let wantSR = try reference.linearBackward(gradOutput: g, input: xq, weights: reference.prepare(q), precision: .int8,
                                                      stochasticRoundingSeed: 7)
            for b in try allBackends() {
                let prepared = try b.prepare(q)
                let got = try b.linearBackward(gradOutput: g, input: xq, weights: prepared, precision: .float)
                expectAgree(got.input, want.input, magnitudes: magInput, k: m, "\(label(b)) \(mode) dX")
                expectAgree(got.weight, want.weight, magnitudes: magWeight, k: n, "\(label(b)) \(mode) dW")
                expectAgree(got.bias, want.bias, magnitudes: (0..<m).map { j in (0..<n).map { Double(abs(g.scalars[$0 * m + j])) }.reduce(0, +) },
                            k: n, "\(label(b)) dB")
                let qt = try b.linearBackward(gradOutput: g, input: xq, weights: prepared, precision: .int8)
                // QT's integer products are exact; only the final scaling rounds.
                expectAgree(qt.input, wantQT.input, magnitudes: magInput, k: 1, groups: q.groupsPerRow, "\(label(b)) \(mode) QT dX")
                expectAgree(qt.weight, wantQT.weight, magnitudes: magWeight, k: 1, "\(label(b)) \(mode) QT dW")
                // stochastic rounding draws the same numbers on every backend
                let sr = try b.linearBackward(gradOutput: g, input: xq, weights: prepared, precision: .int8, stochasticRoundingSeed: 7)
                expectAgree(sr.input, wantSR.input, magnitudes: magInput, k: 1, groups: q.groupsPerRow, "\(label(b)) \(mode) QT SR dX")
                expectAgree(sr.weight, wantSR.weight, magnitudes: magWeight, k: 1, "\(label(b)) \(mode) QT SR dW")
            }
            // int8 gradients lose little against the float STE gradient.
            for (a, e) in [(wantQT.input, want.input), (wantQT.weight, want.weight)] {
                let err = zip(a.scalars, e.scalars).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +).squareRoot()
                let norm = e.scalars.map { Double($0 * $0) }.reduce(0, +).squareRoot()
                #expect(err <= 0.03 * norm + 1e-9, "\(mode) QT relative error \(err / max(norm, 1e-30))")
            }
        }
    }

    @Test("kernels: one thread and two threads give identical results", arguments: QuantizationMode.allCases)
    func threadsAgree(mode: QuantizationMode) throws {
        var rng = TestRandom(5)
        let w = rng.tensor([300, 129]), x = rng.tensor([37, 129])
        let one = try KernelsBackend(threads: 1), two = try KernelsBackend(threads: 2)
        let q = try one.quantize(weights: w, mode: mode)
        #expect(q == (try two.quantize(weights: w, mode: mode)))
        #expect(try one.linear(x, one.prepare(q), bias: nil) == (try two.linear(x, two.prepare(q), bias: nil)))
    }
}

@Suite("OpenBLAS's process-wide thread count")
struct OpenBLASThreadTests {
    /// OpenBLAS sgemm sums in another order at another thread count; at this shape one and two
    /// threads differ on this machine kind, so a backend whose calls ran at the count another
    /// backend set would see its results change.
    @Test("a backend's float matmuls do not change when other backends, with other thread counts, are made or run")
    func floatMatmulIgnoresOtherBackends() throws {
        var rng = TestRandom(11)
        let a = rng.tensor([580, 64]), b = rng.tensor([64, 64])
        for make in [{ try KernelsBackend(threads: $0) as any Backend }, { BLASBackend(threads: $0) as any Backend }] {
            let two = try make(2)
            let alone = try two.matmul(a, b, transposeA: false, transposeB: true)
            let one = try make(1)
            let oneAlone = try one.matmul(a, b, transposeA: false, transposeB: true)
            #expect(try two.matmul(a, b, transposeA: false, transposeB: true) == alone, "\(label(two)) after a 1-thread backend was made")
            // Both at once, many times: each call must run at its own backend's count.
            let buffer = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 16)
            defer { buffer.deallocate() }
            nonisolated(unsafe) let results = buffer   // each iteration writes its own slot
            DispatchQueue.concurrentPerform(iterations: 16) { i in
                let backend = i % 2 == 0 ? two : one, want = i % 2 == 0 ? alone : oneAlone
                results[i] = (try? backend.matmul(a, b, transposeA: false, transposeB: true)) == want
            }
            #expect(results.allSatisfy { $0 }, "\(label(two)): \(results.filter { !$0 }.count) of 16 concurrent calls changed")
        }
    }

    @Test("a linear layer's backward adds to the gradient it finds (float, QAT and QT; every backend)")
    func backwardAccumulates() throws {
        var rng = TestRandom(7)
        let x = rng.tensor([5, 24], scale: 2), dy = rng.tensor([5, 9])
        let settings: [LayerQuantization?] = [nil, LayerQuantization(mode: .ternary), LayerQuantization(mode: .int8, backward: .int8)]
        for b in try allBackends() + [ReferenceBackend()] {
            for q in settings {
                let layer = try QAT.quantLinear(inputs: 24, outputs: 9, quantize: q, seed: 3)
                let exec = Execution(backend: b, training: true)
                _ = try layer.forward(x, exec)
                _ = try layer.backward(dy, exec)
                let once = layer.weight.grad, bias = layer.bias!.grad
                #expect(once.contains { $0 != 0 })
                _ = try layer.forward(x, exec)
                _ = try layer.backward(dy, exec)
                // the second backward adds the same values again: a sum of two equal terms is exact
                #expect(layer.weight.grad == once.map { $0 * 2 }, "\(label(b)) \(String(describing: q?.mode)) weight")
                #expect(layer.bias!.grad == bias.map { $0 * 2 }, "\(label(b)) \(String(describing: q?.mode)) bias")
            }
        }
    }
}
