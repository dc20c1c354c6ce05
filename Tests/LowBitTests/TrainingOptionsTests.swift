import LowBit
import Testing

@Suite("Training options")
struct TrainingOptionsTests {
    let exec = Execution(backend: ReferenceBackend(), training: true)

    func gradients(_ q: LayerQuantization, x: Tensor, dy: Tensor, seed: UInt64 = 8) throws -> (dx: Tensor, dw: [Float], layer: Linear) {
        let l = try QAT.quantLinear(inputs: x.shape[1], outputs: dy.shape[1], quantize: q, seed: seed)
        _ = try l.forward(x, exec)
        for p in l.parameters { p.zeroGrad() }
        let dx = try l.backward(dy, exec)
        return (dx, l.weight.grad, l)
    }

    @Test("gradientAt: .original takes the STE gradient at the float operands")
    func originalOperands() throws {
        let x = TestRandom(1).tensorCopy([4, 9]), dy = TestRandom(2).tensorCopy([4, 6])
        let (dx, dw, l) = try gradients(LayerQuantization(mode: .ternary, gradientAt: .original), x: x, dy: dy)
        let ref = ReferenceBackend()
        #expect(dx == (try ref.matmul(dy, l.weight.tensor, transposeA: false, transposeB: false)))
        #expect(dw == (try ref.matmul(dy, x, transposeA: true, transposeB: false)).scalars)
    }

    @Test("clipped STE: no weight gradient where |w| > (qmax + ½)·scale, unchanged elsewhere")
    func clippedSTE() throws {
        let x = TestRandom(3).tensorCopy([4, 40]), dy = TestRandom(4).tensorCopy([4, 12])
        let plain = try gradients(LayerQuantization(mode: .ternary), x: x, dy: dy)
        let clipped = try gradients(LayerQuantization(mode: .ternary, clippedSTE: true), x: x, dy: dy)
        let scale = try clipped.layer.preparedWeights(ReferenceBackend()).quantized.scales[0]
        var masked = 0
        for (i, w) in clipped.layer.weight.value.enumerated() {
            if w.magnitude > 1.5 * scale {
                #expect(clipped.dw[i] == 0)
                masked += 1
            } else {
                #expect(clipped.dw[i] == plain.dw[i])
            }
        }
        #expect(masked > 0, "the test data should have weights beyond 1.5 × mean|w|")
        #expect(clipped.dx == plain.dx)
    }

    @Test("QT with stochastic rounding: repeatable for a seed, different per seed, close to the float gradient")
    func stochasticRounding() throws {
        let x = TestRandom(5).tensorCopy([16, 32]), dy = TestRandom(6).tensorCopy([16, 24])
        let float = try gradients(LayerQuantization(mode: .int8), x: x, dy: dy)
        let a = try gradients(LayerQuantization(mode: .int8, backward: .int8, stochasticRoundingSeed: 1), x: x, dy: dy)
        let b = try gradients(LayerQuantization(mode: .int8, backward: .int8, stochasticRoundingSeed: 1), x: x, dy: dy)
        let c = try gradients(LayerQuantization(mode: .int8, backward: .int8, stochasticRoundingSeed: 2), x: x, dy: dy)
        #expect(a.dw == b.dw && a.dx == b.dx)
        #expect(a.dw != c.dw)
        let f = try Tensor(shape: [float.dw.count], scalars: float.dw)
        #expect(relativeError(try Tensor(shape: [a.dw.count], scalars: a.dw), f) < 0.05)
        #expect(relativeError(a.dx, float.dx) < 0.05)
    }

    @Test("stochastic rounding is unbiased")
    func unbiased() throws {
        // 0.3 of a step, rounded stochastically many times, averages to 0.3 of a step.
        let x = try Tensor(shape: [1, 2], scalars: [127, 0.3])
        var total = 0.0
        for seed in 0..<2000 { total += Double(try ReferenceQuantizer.quantizeStochastic(rows: x, seed: UInt64(seed)).values[1]) }
        #expect(abs(total / 2000 - 0.3) < 0.05)
    }

    @Test("gradient clipping scales to the global norm")
    func clipping() throws {
        let l = try QAT.quantLinear(inputs: 3, outputs: 2, quantize: nil)
        l.weight.grad = [3, 0, 0, 0, 4, 0]
        l.bias!.grad = [0, 0]
        #expect(clipGradients(l.parameters, maxNorm: 1) == 5)
        #expect(l.weight.grad == [0.6, 0, 0, 0, 0.8, 0])
        #expect(clipGradients(l.parameters, maxNorm: 10) == 1)
    }

    @Test("AdamW decays matrices, not biases")
    func weightDecay() throws {
        let l = try QAT.quantLinear(inputs: 2, outputs: 2, quantize: nil)
        let w0 = l.weight.value, b0 = l.bias!.value
        for p in l.parameters { p.zeroGrad() }
        AdamW(learningRate: 0.1, weightDecay: 0.5).update(l.parameters)
        #expect(zip(l.weight.value, w0).allSatisfy { abs($0 - $1 * 0.95) < 1e-6 })
        #expect(l.bias!.value == b0)
    }
}
