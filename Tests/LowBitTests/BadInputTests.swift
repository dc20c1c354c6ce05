import LowBit
import Testing

@Suite("Bad input is refused with a clear error")
struct BadInputTests {
    @Test("NaN or infinity in weights, activations, bias or gradients", arguments: [Float.nan, .infinity, -.infinity])
    func nonFinite(bad: Float) throws {
        var rng = TestRandom(3)
        var w = rng.tensor([5, 40]); w.scalars[17] = bad
        var x = rng.tensor([3, 40]); x.scalars[41] = bad
        let good = rng.tensor([5, 40])
        for b in try allBackends() {
            for mode in QuantizationMode.allCases {
                #expect(throws: LowBitError.self, "\(label(b)) \(mode) weights") { try b.quantize(weights: w, mode: mode) }
            }
            let prepared = try b.prepare(try b.quantize(weights: good, mode: .ternary))
            #expect(throws: LowBitError.self, "\(label(b)) activations") { try b.linear(x, prepared, bias: nil) }
            var bias = Tensor(zeros: [5]); bias.scalars[2] = bad
            #expect(throws: LowBitError.self, "\(label(b)) bias") { try b.linear(good.transposed().transposed(), prepared, bias: bias) }
            let xq = try b.quantize(activations: rng.tensor([3, 40]))
            var g = Tensor(zeros: [3, 5]); g.scalars[4] = bad
            #expect(throws: LowBitError.self) { try b.linearBackward(gradOutput: g, input: xq, weights: prepared) }
            for seed in [nil, 7] as [UInt64?] {   // QT: the quantizers refuse it, the message names it
                do {
                    _ = try b.linearBackward(gradOutput: g, input: xq, weights: prepared, precision: .int8, stochasticRoundingSeed: seed)
                    Issue.record("\(label(b)) QT accepted \(bad)")
                } catch let error as LowBitError {
                    #expect(error.description.contains("output gradient holds"), "\(label(b)) QT: \(error)")
                }
            }
            #expect(throws: LowBitError.self) { try b.matmul(x, good, transposeA: false, transposeB: true) }
        }
        // a layer's output gradient in its backward (quantized and float layers): refused before
        // any gradient is added, whichever backend scans it
        for quantize in [LayerQuantization(mode: .ternary), nil] as [LayerQuantization?] {
            for b in try allBackends() {
                let probe = try quantize.map { try QAT.quantLinear(path: "probe", inputs: 40, outputs: 5, quantize: $0) }
                    ?? Linear(path: "probe", inputs: 40, outputs: 5, bias: true, quantizable: false, seed: 1)
                let exec = Execution(backend: b, training: true)
                _ = try probe.forward(good, exec)
                var dy = Tensor(zeros: [5, 5]); dy.scalars[7] = bad
                #expect(throws: LowBitError.self, "\(label(b)) \(quantize == nil ? "float" : "ternary") backward") { try probe.backward(dy, exec) }
                #expect(probe.weight.grad.allSatisfy { $0 == 0 } && probe.bias!.grad.allSatisfy { $0 == 0 }, "\(label(b)): a gradient was added")
            }
        }
        // a quantized layer's training input: the message names the layer
        let layer = try QAT.quantLinear(path: "probe", inputs: 40, outputs: 5, quantize: LayerQuantization(mode: .ternary))
        for b in try allBackends() {
            do {
                _ = try layer.forward(x, Execution(backend: b, training: true))
                Issue.record("\(label(b)) training input accepted \(bad)")
            } catch let error as LowBitError {
                #expect(error.description.contains("probe input holds"), "\(label(b)): \(error)")
            }
        }
        do {
            _ = try ReferenceBackend().quantize(activations: x)
            Issue.record("NaN accepted")
        } catch let error as LowBitError {
            #expect(error.description.contains("non-finite"), "message: \(error)")
        }
    }

    @Test("the first non-finite value is found at every position, in the vector part and the tail", arguments: [Float.nan, .infinity, -.infinity])
    func firstNonFinite(bad: Float) throws {
        for count in [1, 15, 16, 17, 33, 40] {
            var t = Tensor(zeros: [count])
            for i in 0..<count { t.scalars[i] = i.isMultiple(of: 2) ? .greatestFiniteMagnitude : -.leastNonzeroMagnitude }
            #expect(t.firstNonFiniteIndex == nil, "count \(count): finite extremes flagged")
            for position in 0..<count {
                var u = t
                u.scalars[position] = bad
                if position + 1 < count { u.scalars[count - 1] = -bad }  // a later one must not win
                #expect(u.firstNonFiniteIndex == position, "count \(count), \(bad) at \(position)")
                #expect(throws: LowBitError.self) { try u.checkFinite("probe") }
            }
        }
    }

    @Test("AdamW hyperparameters outside their ranges stop the step before it changes a weight")
    func badOptimizer() throws {
        let (batch, labels) = try DataParallelTests.batch(seed: 2)
        for (change, name) in [({ (o: AdamW) in o.beta1 = 1 }, "beta1"), ({ $0.beta2 = -0.1 }, "beta2"), ({ $0.epsilon = 0 }, "epsilon"),
                               ({ $0.learningRate = .nan }, "learning rate"), ({ $0.weightDecay = -1 }, "weight decay")]
            as [((AdamW) -> Void, String)] {
            let model = try DataParallelTests.model(.ternary)
            let before = model.parameters.map(\.value)
            let optimizer = AdamW()
            change(optimizer)
            #expect { try Trainer(model: model, backend: ReferenceBackend(), optimizer: optimizer).step(batch, labels: labels) } throws: {
                "\($0)".contains("AdamW \(name)")
            }
            #expect(model.parameters.map(\.value) == before, "\(name)")
        }
    }

    @Test("empty and mismatched shapes")
    func shapes() throws {
        var rng = TestRandom(4)
        for b in try allBackends() {
            #expect(throws: LowBitError.self) { try b.quantize(weights: Tensor(zeros: [0, 4]), mode: .int8) }
            #expect(throws: LowBitError.self) { try b.quantize(weights: Tensor(zeros: [4]), mode: .int8) }
            #expect(throws: LowBitError.self) { try b.quantize(activations: Tensor(zeros: [3, 0])) }
            let prepared = try b.prepare(try b.quantize(weights: rng.tensor([6, 10]), mode: .int4))
            #expect(throws: LowBitError.self) { try b.linear(rng.tensor([2, 11]), prepared, bias: nil) }
            #expect(throws: LowBitError.self) { try b.linear(rng.tensor([2, 10]), prepared, bias: Tensor(zeros: [5])) }
            #expect(throws: LowBitError.self) { try b.matmul(rng.tensor([2, 3]), rng.tensor([4, 2]), transposeA: false, transposeB: false) }
            #expect(throws: LowBitError.self) {
                try b.gemmInt8(Int8Matrix(rows: 2, cols: 3, values: [Int8](repeating: 1, count: 6)),
                               Int8Matrix(rows: 2, cols: 3, values: [Int8](repeating: 1, count: 6)), transposeA: false, transposeB: false)
            }
            let xq = try b.quantize(activations: rng.tensor([3, 10]))
            #expect(throws: LowBitError.self) { try b.linearBackward(gradOutput: Tensor(zeros: [3, 7]), input: xq, weights: prepared) }
            // finite weights so large that the canonical float partials overflow: refused
            // alike by every backend for the modes that average, kept by absmax ones
            let huge = Tensor(shape: [2, 64]) { i in i % 3 == 0 ? -1e38 : 1e38 }
            #expect(throws: LowBitError.self) { try b.quantize(weights: huge, mode: .ternary) }
            #expect(throws: LowBitError.self) { try b.quantize(weights: huge, mode: .binary) }
            _ = try b.quantize(weights: huge, mode: .int8)
            // the activation side is symmetric: -128 is refused by every backend alike
            var asymmetric = xq
            asymmetric.values[asymmetric.stride + 4] = -128
            #expect(throws: LowBitError.self) { try b.linear(asymmetric, prepared, bias: nil) }
            _ = try b.linear(xq, prepared, bias: nil)
            var left = Int8Matrix(rows: 2, cols: 3, values: [1, 2, 3, 4, 5, 6])
            let right = Int8Matrix(rows: 3, cols: 2, values: [-128, 127, -128, 127, 1, 2])
            _ = try b.gemmInt8(left, right, transposeA: false, transposeB: false)
            left.values[5] = -128
            #expect(throws: LowBitError.self) { try b.gemmInt8(left, right, transposeA: false, transposeB: false) }
        }
        #expect(throws: LowBitError.self) { try Tensor(shape: [2, 3], scalars: [1, 2]) }
    }

    @Test("group sizes the packed layout cannot hold, and weights from another backend")
    func arguments() throws {
        let w = TestRandom(1).tensorCopy([4, 64])
        for b in try allBackends() {
            #expect(throws: LowBitError.self) { try b.quantize(weights: w, mode: .int4, granularity: .perGroup(12), bound: .qmax) }
            #expect(throws: LowBitError.self) { try b.quantize(weights: w, mode: .int4, granularity: .perGroup(0), bound: .qmax) }
        }
        let q = try ReferenceBackend().quantize(weights: w, mode: .ternary)
        let fromBLAS = try BLASBackend(threads: 1).prepare(q)
        #expect(throws: LowBitError.self) { try KernelsBackend().linear(TestRandom(2).tensorCopy([1, 64]), fromBLAS, bias: nil) }
        // Values outside the format's range cannot be packed.
        var broken = q
        broken.values[0] = 5
        #expect(throws: LowBitError.self) { try KernelsBackend().prepare(broken) }
        #expect(throws: LowBitError.self) { try QuantizationMode(parsing: "int3") }
    }

    @Test("hand-made values the public API must refuse, not trap on or read past: zero or negative scale groups, out-of-range codes, bad scales, attention inputs of the wrong size, repeated class names, a held-out fraction outside [0, 1], an ensemble too large to load, a thread count out of range")
    func handMadeValues() throws {
        expectError("at least one column, got 0") {
            _ = try QuantizedWeights(mode: .int4, rows: 2, cols: 8, granularity: .perGroup(0), values: [Int8](repeating: 1, count: 16), scales: [1])
        }
        expectError("at least one column, got -8") {
            _ = try QuantizedWeights(mode: .int4, rows: 2, cols: 8, granularity: .perGroup(-8), values: [Int8](repeating: 1, count: 16), scales: [1, 1])
        }
        expectError("ternary values lie in [-1, 1], got 2") {
            _ = try QuantizedWeights(mode: .ternary, rows: 1, cols: 4, granularity: .perTensor, values: [0, 1, 2, -1], scales: [1])
        }
        expectError("int8 values lie in [-127, 127], got -128") {
            _ = try QuantizedWeights(mode: .int8, rows: 1, cols: 2, granularity: .perTensor, values: [-128, 1], scales: [1])
        }
        expectError("finite and non-negative") {
            _ = try QuantizedWeights(mode: .int8, rows: 1, cols: 2, granularity: .perChannel, values: [3, 1], scales: [.nan])
        }
        let attention = CausalSelfAttention(path: "a", hidden: 8, heads: 2, seed: 1)
        let shape = try SequenceShape(batch: 2, steps: 3, lengths: [3, 2])
        let exec = Execution(backend: ReferenceBackend(), training: false)
        expectError("attention input must be [6, 8]") { _ = try attention.forward(Tensor(zeros: [5, 8]), shape, exec) }
        expectError("appears twice") {
            _ = try TimeSeriesDataset(name: "d", channels: 1, series: [[1], [2]], labels: [0, 1], classNames: ["a", "a"])
        }
        let data = try TimeSeriesDataset(name: "d", channels: 1, series: [[1], [2]], labels: [0, 1], classNames: ["a", "b"])
        expectError("must be in [0, 1], got -0.5") { _ = try data.split(holdingOut: -0.5, seed: 1) }
        expectError("got nan") { _ = try data.split(holdingOut: .nan, seed: 1) }
        let model = try SequenceClassifier(EncoderConfiguration(inputWidth: 2, width: 8, headCount: 2, layerCount: 1, weightMode: .ternary), classes: 2)
        expectError("at most 16 models, got 17") {
            _ = try PackedClassifier(ensemble: [SequenceClassifier](repeating: model, count: 17), backend: KernelsBackend())
        }
        expectError("from 1 to 1024, got 5000") { _ = try KernelsBackend(threads: 5000) }
    }
}

extension TestRandom {
    func tensorCopy(_ shape: [Int], scale: Float = 1) -> Tensor {
        var r = self
        return r.tensor(shape, scale: scale)
    }

}
