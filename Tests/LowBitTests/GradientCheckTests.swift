import Foundation
@testable import LowBit
import Testing

/// Finite-difference checks of every layer's backward pass on the float path: the loss is
/// L = Σ y ⊙ r for a fixed random r, so dL/dy = r, and each analytic gradient is compared
/// with a central difference (in float, so the step is 1e-2 and the check relative).
@Suite("Gradient checks")
struct GradientCheckTests {
    static let exec = Execution(backend: ReferenceBackend(), training: true)

    /// Compares analytic and numeric gradients for up to `samples` entries of `values`.
    func check(_ name: String, count: Int, samples: Int = 12, analytic: [Float], perturb: (Int, Float) -> Void,
               loss: () throws -> Float, sourceLocation: SourceLocation = #_sourceLocation) rethrows {
        var rng = TestRandom(UInt64(count))
        var worst: Float = 0
        for _ in 0..<min(samples, count) {
            let i = Int(rng.next() % UInt64(count))
            let h: Float = 1e-2
            perturb(i, h); let up = try loss()
            perturb(i, -2 * h); let down = try loss()
            perturb(i, h)
            let numeric = (up - down) / (2 * h)
            let err = abs(numeric - analytic[i]) / max(abs(numeric) + abs(analytic[i]), 1e-2)
            worst = max(worst, err)
        }
        #expect(worst < 0.02, "\(name): worst relative gradient error \(worst)", sourceLocation: sourceLocation)
    }

    /// Checks every parameter and the input of a layer given as forward/backward closures.
    func checkLayer(_ name: String, input: Tensor, parameters: [Parameter],
                    forward: (Tensor) throws -> Tensor, backward: (Tensor) throws -> Tensor) throws {
        var x = input
        let y0 = try forward(x)
        var rng = TestRandom(99)
        let r = rng.tensor(y0.shape)
        func loss() throws -> Float { zip(try forward(x).scalars, r.scalars).map { Float(Double($0) * Double($1)) }.reduce(0, +) }
        for p in parameters { p.zeroGrad() }
        _ = try forward(x)
        let dx = try backward(r)
        for p in parameters {
            try check("\(name) \(p.name)", count: p.count, analytic: p.grad, perturb: { p.value[$0] += $1 }, loss: loss)
        }
        try check("\(name) input", count: x.count, analytic: dx.scalars, perturb: { x.scalars[$0] += $1 }, loss: loss)
    }

    @Test func linear() throws {
        let l = try QAT.quantLinear(inputs: 7, outputs: 5, quantize: nil, seed: 1)
        try checkLayer("linear", input: TestRandom(1).tensorCopy([3, 7]), parameters: l.parameters,
                       forward: { try l.forward($0, Self.exec) }, backward: { try l.backward($0, Self.exec) })
    }

    /// 6 features, and 37: two blocks of the backward's 16-lane sums and a tail of 5.
    @Test(arguments: [6, 37]) func layerNorm(features: Int) throws {
        let n = LayerNorm(path: "norm", features: features)
        var rng = TestRandom(2)
        n.gamma.value = (0..<features).map { _ in 1 + rng.float(0.5) }
        n.beta.value = (0..<features).map { _ in rng.float(0.5) }
        try checkLayer("layernorm \(features)", input: rng.tensor([4, features], scale: 2), parameters: n.parameters,
                       forward: { try n.forward($0, Self.exec) }, backward: { try n.backward($0, Self.exec) })
    }

    @Test func attention() throws {
        let a = CausalSelfAttention(path: "attn", hidden: 8, heads: 2, seed: 3)
        let s = try SequenceShape(batch: 2, steps: 4, lengths: [4, 2])
        try checkLayer("attention", input: TestRandom(3).tensorCopy([8, 8]), parameters: a.parameters,
                       forward: { try a.forward($0, s, Self.exec) }, backward: { try a.backward($0, Self.exec) })
    }

    @Test func feedForward() throws {
        let f = FeedForward(path: "ffn", hidden: 6, dropout: 0, seed: 4)
        try checkLayer("ffn", input: TestRandom(4).tensorCopy([3, 6]), parameters: f.parameters,
                       forward: { try f.forward($0, Self.exec) }, backward: { try f.backward($0, Self.exec) })
    }

    @Test func block() throws {
        let b = try QAT.buildBlock(hiddenSize: 8, numHeads: 2, dropout: 0, quantize: nil, seed: 5)
        let s = try SequenceShape(batch: 2, steps: 3, lengths: [3, 1])
        try checkLayer("block", input: TestRandom(5).tensorCopy([6, 8]), parameters: b.parameters,
                       forward: { try b.forward($0, s, Self.exec) }, backward: { try b.backward($0, Self.exec) })
    }

    @Test("encoder with input projection, positional encoding and pooling", arguments: [false, true])
    func encoder(positions: Bool) throws {
        let e = try QAT.build(embedDim: 3, hiddenSize: 8, numHeads: 2, numLayers: 2, quantize: nil, dropout: 0,
                              windowSize: 5, positionalEncoding: positions, seed: 6)
        let x = TestRandom(6).tensorCopy([2, 5, 3])
        try checkLayer("encoder", input: x, parameters: e.parameters,
                       forward: { try e.forward(SequenceBatch(values: $0, lengths: [5, 3]), Self.exec) },
                       backward: { try e.backward($0, Self.exec) })
    }

    @Test("classifier with softmax cross-entropy, and mean squared error")
    func losses() throws {
        let model = try SequenceClassifier(EncoderConfiguration(inputWidth: 4, width: 8, headCount: 2, layerCount: 1, weightMode: nil, dropout: 0), classes: 3)
        var x = TestRandom(7).tensorCopy([3, 4, 4])
        let labels = [0, 2, 1]
        func loss() throws -> Float {
            try Loss.softmaxCrossEntropy(logits: model.forward(SequenceBatch(values: x, lengths: [4, 2, 3]), Self.exec), labels: labels).loss
        }
        for p in model.parameters { p.zeroGrad() }
        let logits = try model.forward(SequenceBatch(values: x, lengths: [4, 2, 3]), Self.exec)
        try model.backward(try Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient, Self.exec)
        for p in model.parameters {
            try check(p.name, count: p.count, samples: 6, analytic: p.grad, perturb: { p.value[$0] += $1 }, loss: loss)
        }
        _ = x
        // MSE gradient
        var pred = TestRandom(8).tensorCopy([3, 5])
        let target = TestRandom(9).tensorCopy([3, 5])
        let g = try Loss.meanSquaredError(predictions: pred, targets: target).gradient
        try check("mse", count: 15, samples: 15, analytic: g.scalars, perturb: { pred.scalars[$0] += $1 },
                  loss: { try Loss.meanSquaredError(predictions: pred, targets: target).loss })
        x.scalars[0] = .nan
        #expect(throws: LowBitError.self) { try SequenceBatch(values: x, lengths: [4, 2, 3]) }
    }

    @Test("distillation: the gradient of the objective, its limits (weight 0 is cross-entropy, a student equal to its teacher gets no soft gradient) and bad input",
          arguments: [(Float(0.5), Float(2)), (1, 1), (0.9, 4)])
    func distillation(weight: Float, temperature: Float) throws {
        var logits = TestRandom(10).tensorCopy([4, 6], scale: 3)
        let teacher = TestRandom(11).tensorCopy([4, 6], scale: 3)
        let labels = [5, 0, 2, 2]
        func objective() throws -> Float {
            try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher, weight: weight, temperature: temperature).loss
        }
        let d = try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher, weight: weight, temperature: temperature)
        try check("distillation", count: 24, samples: 24, analytic: d.gradient.scalars, perturb: { logits.scalars[$0] += $1 }, loss: objective)
        let plain = try Loss.softmaxCrossEntropy(logits: logits, labels: labels)
        #expect(d.crossEntropy == plain.loss)
        // The soft term is T² times the cross-entropy between the tempered distributions.
        func tempered(_ t: Tensor, _ i: Int) -> [Double] {
            let row = (0..<6).map { Double(t.scalars[i * 6 + $0]) / Double(temperature) }
            let z = row.map { Foundation.exp($0) }.reduce(0, +)
            return row.map { Foundation.exp($0) / z }
        }
        let soft = (0..<4).map { i in zip(tempered(teacher, i), tempered(logits, i)).map { -$0 * Foundation.log($1) }.reduce(0, +) }.reduce(0, +) / 4
        let expected = Double(1 - weight) * Double(plain.loss) + Double(weight * temperature * temperature) * soft
        #expect(abs(Double(d.loss) - expected) < 1e-4 * max(1, expected), "\(d.loss) vs \(expected)")

        let none = try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher, weight: 0, temperature: temperature)
        #expect(none.loss == plain.loss && none.gradient.scalars == plain.gradient.scalars)
        let mimic = try Loss.distillation(logits: logits, labels: labels, teacherLogits: logits, weight: 1, temperature: temperature)
        #expect(mimic.gradient.scalars.allSatisfy { abs($0) < 1e-6 }, "\(mimic.gradient.scalars)")

        expectError("teacher logits [4, 5]") {
            _ = try Loss.distillation(logits: logits, labels: labels, teacherLogits: TestRandom(1).tensorCopy([4, 5]), weight: weight, temperature: temperature)
        }
        expectError("weight must be in [0, 1]") { _ = try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher, weight: 1.5, temperature: 2) }
        expectError("temperature must be positive") { _ = try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher, weight: 0.5, temperature: 0) }
        var broken = teacher
        broken.scalars[3] = .nan
        expectError("teacher logits") { _ = try Loss.distillation(logits: logits, labels: labels, teacherLogits: broken, weight: 0.5, temperature: 2) }
        expectError("label 6") { _ = try Loss.distillation(logits: logits, labels: [6, 0, 2, 2], teacherLogits: teacher, weight: 0.5, temperature: 2) }
    }

    @Test("the loss taken in row shares (a worker's or rank's) is the whole batch's, bit for bit, with and without a teacher")
    func rowShares() throws {
        let logits = TestRandom(12).tensorCopy([7, 5], scale: 3), teacher = TestRandom(13).tensorCopy([7, 5], scale: 3)
        let labels = [4, 0, 2, 2, 1, 3, 0]
        let whole = try Loss.softmaxCrossEntropy(logits: logits, labels: labels)
        let soft = try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher, weight: 0.5, temperature: 2)
        func rows(_ t: Tensor, _ r: Range<Int>) throws -> Tensor {
            try Tensor(shape: [r.count, 5], scalars: Array(t.scalars[(r.lowerBound * 5)..<(r.upperBound * 5)]))
        }
        for cuts in [[0, 7], [0, 3, 7], [0, 1, 2, 7], [0, 0, 6, 7]] {
            var losses: [Double] = [], gradient: [Float] = [], distilled: [Float] = [], hard: [Double] = []
            for (a, b) in zip(cuts, cuts.dropFirst()) {
                let share = try Loss.crossEntropyRows(logits: try rows(logits, a..<b), labels: Array(labels[a..<b]), batchSize: 7)
                losses += share.rowLosses
                gradient += share.gradient
                let d = try Loss.distillationRows(logits: try rows(logits, a..<b), labels: Array(labels[a..<b]),
                                                  teacherLogits: try rows(teacher, a..<b), weight: 0.5, temperature: 2, batchSize: 7)
                hard += d.rowCrossEntropies
                distilled += d.gradient
            }
            #expect(Loss.mean(losses, over: 7) == whole.loss && gradient == whole.gradient.scalars, "cuts \(cuts)")
            #expect(Loss.mean(hard, over: 7) == soft.crossEntropy && distilled == soft.gradient.scalars, "cuts \(cuts)")
        }
    }

    @Test("quantized path: the STE gradient is the float gradient at the dequantized operands",
          arguments: QuantizationMode.allCases)
    func straightThrough(mode: QuantizationMode) throws {
        for backend in try allBackends() {
            let exec = Execution(backend: backend, training: true)
            let l = try QAT.quantLinear(inputs: 33, outputs: 17, quantize: LayerQuantization(mode: mode), seed: 8)
            let x = TestRandom(10).tensorCopy([5, 33]), dy = TestRandom(11).tensorCopy([5, 17])
            _ = try l.forward(x, exec)
            for p in l.parameters { p.zeroGrad() }
            let dx = try l.backward(dy, exec)
            let w = try l.preparedWeights(backend).quantized
            let xhat = try backend.quantize(activations: x).dequantized()
            let ref = ReferenceBackend()
            let wantDX = try ref.matmul(dy, w.dequantized(), transposeA: false, transposeB: false)
            let wantDW = try ref.matmul(dy, xhat, transposeA: true, transposeB: false)
            expectAgree(dx, wantDX, magnitudes: magnitudes(dy, try w.dequantized().transposed()), k: 17, "\(label(backend)) \(mode) dX")
            expectAgree(try Tensor(shape: [17, 33], scalars: l.weight.grad), wantDW,
                        magnitudes: magnitudes(try dy.transposed(), try xhat.transposed()), k: 5, "\(label(backend)) \(mode) dW")
            // and the forward really used discrete weights
            let distinct = Set(w.values)
            #expect(distinct.count <= (mode == .binary ? 2 : 2 * mode.qmax + 1))
        }
    }
}
