@testable import LowBit
import Testing

/// The float passes (layer norm, SiLU, attention): the kernels backend's C versions against the
/// reference backend's Swift loops on random shapes, including one sequence of one step, odd
/// widths and padded sequences; every ISA and thread count gives the same bits.
@Suite("Float layers")
struct FloatLayerTests {
    /// batch, steps, hidden, heads
    static let shapes: [(Int, Int, Int, Int)] = [(1, 1, 4, 1), (2, 5, 8, 2), (3, 17, 12, 3), (2, 29, 64, 4), (1, 60, 36, 4)]

    func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in rng.signedUnit() * scale }
    }

    func expectClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ what: String) {
        #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) values")
        let worst = zip(a, b).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
        #expect(worst <= tolerance, "\(what): off by \(worst)")
    }

    func backends() throws -> [KernelsBackend] {
        try ISA.supported.flatMap { isa in try [1, 2].map { try KernelsBackend(isa: isa, threads: $0) } }
    }

    @Test("attention, forward and backward, agrees with the reference; every ISA and thread count the same bits")
    func attention() throws {
        let reference = ReferenceBackend()
        for (i, (batch, steps, hidden, heads)) in Self.shapes.enumerated() {
            var rng = SeededGenerator(seed: UInt64(40 + i))
            let lengths = (0..<batch).map { $0 == 0 ? steps : 1 + Int(rng.next() % UInt64(steps)) }
            let shape = try SequenceShape(batch: batch, steps: steps, lengths: lengths)
            let qkv = try Tensor(shape: [batch * steps, 3 * hidden], scalars: random(batch * steps * 3 * hidden, seed: UInt64(i), scale: 2))
            let gradient = try Tensor(shape: [batch * steps, hidden], scalars: random(batch * steps * hidden, seed: UInt64(i + 9)))
            let want = try reference.attention(qkv, shape: shape, heads: heads, keepingProbabilities: true)
            let wantBackward = try reference.attentionBackward(qkv, probabilities: want.probabilities, gradient: gradient, shape: shape, heads: heads)
            var first: (AttentionResult, Tensor)?
            for backend in try backends() {
                let got = try backend.attention(qkv, shape: shape, heads: heads, keepingProbabilities: true)
                let back = try backend.attentionBackward(qkv, probabilities: got.probabilities, gradient: gradient, shape: shape, heads: heads)
                let name = "\(backend.identity) \(batch)×\(steps)×\(hidden)/\(heads)"
                expectClose(got.output.scalars, want.output.scalars, 1e-5, "\(name) output")
                expectClose(got.probabilities, want.probabilities, 1e-5, "\(name) probabilities")
                expectClose(back.scalars, wantBackward.scalars, 1e-4, "\(name) gradient")
                #expect(try backend.attention(qkv, shape: shape, heads: heads, keepingProbabilities: false).output == got.output)
                // Each sequence's last real step alone: those rows of the full pass, and the
                // backward from their gradient the full one's with zeros elsewhere, bit for bit
                // (the reference's versions are the full passes themselves).
                let last = try backend.attentionAtLastSteps(qkv, shape: shape, heads: heads, keepingProbabilities: true)
                let wantLast = try reference.attentionAtLastSteps(qkv, shape: shape, heads: heads, keepingProbabilities: true)
                #expect(last.output == (try got.output.gatheringRows(shape.lastSteps)), "\(name) last steps")
                expectClose(last.probabilities, wantLast.probabilities, 1e-5, "\(name) last steps' probabilities")
                let kept = try gradient.gatheringRows(shape.lastSteps)
                let backLast = try backend.attentionBackwardAtLastSteps(qkv, probabilities: last.probabilities, gradient: kept,
                                                                        shape: shape, heads: heads)
                let backZeros = try backend.attentionBackward(qkv, probabilities: got.probabilities,
                                                              gradient: kept.scatteringRows(shape.lastSteps, into: shape.rows),
                                                              shape: shape, heads: heads)
                #expect(backLast.scalars.map(\.bitPattern) == backZeros.scalars.map(\.bitPattern), "\(name) last steps' gradient")
                expectClose(backLast.scalars, try reference.attentionBackwardAtLastSteps(
                    qkv, probabilities: wantLast.probabilities, gradient: kept, shape: shape, heads: heads).scalars, 1e-4,
                    "\(name) last steps' gradient against the reference")
                if let first {
                    #expect(got.output == first.0.output && got.probabilities == first.0.probabilities && back == first.1, "\(name)")
                } else { first = (got, back) }
            }
        }
    }

    @Test("layer norm and SiLU agree with the reference; every ISA and thread count the same bits")
    func layerNormAndSiLU() throws {
        let reference = ReferenceBackend()
        for (rows, width) in [(1, 1), (1, 7), (3, 16), (5, 33), (60, 64), (31, 257)] {
            let x = try Tensor(shape: [rows, width], scalars: random(rows * width, seed: UInt64(rows * width), scale: 4).map { $0 + 2 })
            let gamma = random(width, seed: 3), beta = random(width, seed: 4)
            let want = try reference.layerNorm(x, gamma: gamma, beta: beta, epsilon: 1e-5, keepingNormalized: true)
            let u = x.scalars.map { $0 * 3 }, g = random(rows * width, seed: 5)
            var wantG = g
            reference.siluBackward(u, gradient: &wantG)
            var first: (LayerNormResult, [Float], [Float])?
            for backend in try backends() {
                let got = try backend.layerNorm(x, gamma: gamma, beta: beta, epsilon: 1e-5, keepingNormalized: true)
                var gotG = g
                backend.siluBackward(u, gradient: &gotG)
                let a = backend.silu(u)
                let name = "\(backend.identity) \(rows)×\(width)"
                expectClose(got.output.scalars, want.output.scalars, 1e-5, "\(name) layer norm")
                expectClose(got.normalized, want.normalized, 1e-5, "\(name) normalized")
                expectClose(got.reciprocalDeviations, want.reciprocalDeviations, 1e-5, "\(name) deviations")
                expectClose(a, reference.silu(u), 1e-6, "\(name) silu")
                expectClose(gotG, wantG, 1e-6, "\(name) silu backward")
                #expect(try backend.layerNorm(x, gamma: gamma, beta: beta, epsilon: 1e-5, keepingNormalized: false).normalized.isEmpty)
                if let first {
                    #expect(got.output == first.0.output && got.normalized == first.0.normalized && a == first.1 && gotG == first.2, "\(name)")
                } else { first = (got, a, gotG) }
            }
        }
    }

    @Test("stochastic rounding on the kernels is the reference's, bit for bit, on every ISA and thread count")
    func stochasticRounding() throws {
        for (rows, cols) in [(1, 1), (3, 17), (40, 70), (7, 257)] {
            var x = random(rows * cols, seed: UInt64(rows), scale: 5)
            if rows > 2 { for c in 0..<cols { x[cols + c] = 0 } }   // a zero row takes no draws
            let t = try Tensor(shape: [rows, cols], scalars: x)
            let want = try ReferenceQuantizer.quantizeStochastic(rows: t, seed: 99)
            for backend in try backends() {
                #expect(try backend.quantizeStochastic(rows: t, seed: 99) == want, "\(backend.identity) \(rows)×\(cols)")
            }
        }
        for (rows, cols) in [(1, 1), (5, 17), (9, 300)] {
            let t = try Tensor(shape: [rows, cols], scalars: random(rows * cols, seed: 8, scale: 3))
            for backend in try backends() { #expect(try backend.rowAbsmax(t) == ReferenceBackend().rowAbsmax(t)) }
        }
        var bad = [Float](repeating: 1, count: 6)
        bad[4] = .infinity
        #expect(throws: LowBitError.self) { try KernelsBackend(threads: 1).rowAbsmax(Tensor(shape: [2, 3], scalars: bad)) }
        #expect(throws: LowBitError.self) { try KernelsBackend(threads: 1).quantizeStochastic(rows: Tensor(shape: [2, 3], scalars: bad), seed: 1) }
    }

    @Test("the kernels backend refuses shapes that do not fit")
    func refusals() throws {
        let backend = try KernelsBackend(threads: 1)
        let shape = try SequenceShape(batch: 1, steps: 2, lengths: [2])
        #expect(throws: LowBitError.self) { try backend.attention(Tensor(zeros: [2, 12]), shape: shape, heads: 5, keepingProbabilities: false) }
        #expect(throws: LowBitError.self) { try backend.attention(Tensor(zeros: [3, 12]), shape: shape, heads: 2, keepingProbabilities: false) }
        #expect(throws: LowBitError.self) {
            try backend.attentionBackward(Tensor(zeros: [2, 12]), probabilities: [], gradient: Tensor(zeros: [2, 4]), shape: shape, heads: 2)
        }
        #expect(throws: LowBitError.self) { try backend.layerNorm(Tensor(zeros: [2, 3]), gamma: [1], beta: [0], epsilon: 1e-5, keepingNormalized: false) }
    }
}
