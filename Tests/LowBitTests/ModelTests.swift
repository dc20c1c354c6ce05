import Foundation
@testable import LowBit
import PropertyBased
import Testing

@Suite("Model")
struct ModelTests {
    static let allModes: [QuantizationMode?] = [nil] + QuantizationMode.allCases

    /// Whether OpenBLAS's sgemm gives a row of a product the same bits whatever rows share the
    /// call. Its SkylakeX kernels do. Its Haswell and Zen kernels (AVX2 machines) order a row's
    /// sums by where the row falls in the call: a row alone and the same row first of a 16-row
    /// call differ in the last bits. Passes that change which rows share a call (evaluation in
    /// chunks, the last block on the last steps alone) then match the full pass only to
    /// rounding wherever OpenBLAS takes the float products: the blas backend, and the float
    /// model on the kernels backend.
    static let openBLASRowsIndependent: Bool = {
        var rng = TestRandom(5)
        let k = 64, outputs = 64, rows = 16
        let x = (0..<rows * k).map { _ in rng.float() }, w = (0..<outputs * k).map { _ in rng.float() }
        var all = [Float](repeating: 0, count: rows * outputs), one = [Float](repeating: 0, count: outputs)
        OpenBLAS.sgemm(x, w, m: rows, n: outputs, k: k, lda: k, ldb: k, transposeA: false, transposeB: true, into: &all, threads: 1)
        return (0..<rows).allSatisfy { r in
            OpenBLAS.sgemm(Array(x[r * k..<(r + 1) * k]), w, m: 1, n: outputs, k: k, lda: k, ldb: k,
                           transposeA: false, transposeB: true, into: &one, threads: 1)
            return one.map(\.bitPattern) == all[r * outputs..<(r + 1) * outputs].map(\.bitPattern)
        }
    }()

    /// got == want bit for bit; or, where OpenBLAS takes the float products and its rows are
    /// not independent of the call (openBLASRowsIndependent), to rounding: every value within
    /// 1e-5 of want, relative above 1 (a wrong step or row is off by far more).
    static func expectSameRows(_ got: Tensor, _ want: Tensor, backend: any Backend, mode: QuantizationMode?,
                               _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.shape == want.shape, comment, sourceLocation: sourceLocation)
        let viaOpenBLAS = backend is BLASBackend || (mode == nil && backend is KernelsBackend)
        if !viaOpenBLAS || openBLASRowsIndependent {
            #expect(got.scalars.map(\.bitPattern) == want.scalars.map(\.bitPattern), comment, sourceLocation: sourceLocation)
        } else {
            let worst = zip(got.scalars, want.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(got.shape == want.shape && worst <= 1e-5, "\(comment) (to rounding: OpenBLAS's rows depend on the call here): \(worst)",
                    sourceLocation: sourceLocation)
        }
    }

    @Test("an evaluation pass takes the last block's output at each sequence's last real step alone, bit for bit the full pass's")
    func evaluationKeepsLastSteps() throws {
        let (batch, _) = try DataParallelTests.batch(seed: 9)   // sequences of several lengths
        for backend in try allBackends() {
            for mode in Self.allModes {
                let encoder = try DataParallelTests.model(mode).encoder
                let got = try encoder.forward(batch, Execution(backend: backend, training: false))
                encoder.prunesLastBlock = false   // every row of every block
                let full = try encoder.forward(batch, Execution(backend: backend, training: false))
                Self.expectSameRows(got, full, backend: backend, mode: mode, "\(label(backend)) \(mode?.rawValue ?? "float")")
            }
        }
    }

    @Test("a training step takes the last block past its keys and values on the last real steps alone: the full pass's loss, dropout masks and gradients")
    func trainingKeepsLastSteps() throws {
        let (batch, labels) = try DataParallelTests.batch(seed: 9)   // sequences of several lengths, dropout 0.1
        for backend in try allBackends() {
            for mode in Self.allModes {
                for qt in mode == nil ? [false] : [false, true] {
                    let name = "\(label(backend)) \(mode?.rawValue ?? "float")\(qt ? " QT" : "")"
                    // step 3 of a worker's share that starts at row 12: the masks are the rows' own
                    let exec = Execution(backend: backend, training: true, step: 3, rowOffset: 12)
                    func pass(pruning: Bool) throws -> (loss: Float, gradients: [[Float]]) {
                        let model = try DataParallelTests.model(mode, qt: qt)   // the same weights, fresh masks
                        model.encoder.prunesLastBlock = pruning
                        let (loss, dLogits) = try Loss.softmaxCrossEntropy(logits: model.forward(batch, exec), labels: labels)
                        try model.backward(dLogits, exec)
                        return (loss, model.parameters.map(\.grad))
                    }
                    let pruned = try pass(pruning: true), full = try pass(pruning: false)
                    let names = try DataParallelTests.model(mode).parameters.map(\.name)
                    // The forward works row by row: the same logits up to the float products'
                    // order of sums (OpenBLAS may sum a 7-row product unlike a 42-row one).
                    #expect(abs(pruned.loss - full.loss) <= 1e-6 * abs(full.loss), "\(name): loss \(pruned.loss) vs \(full.loss)")
                    // The weight gradients sum over fewer rows (the rest were zeros): the same
                    // terms in another order.
                    for (i, (g, want)) in zip(pruned.gradients, full.gradients).enumerated() {
                        let scale = want.map { abs($0) }.max() ?? 0
                        let worst = zip(g, want).map { abs($0 - $1) }.max() ?? 0
                        #expect(worst <= 1e-5 * max(scale, 1e-6), "\(name): \(names[i]) off by \(worst) of \(scale)")
                    }
                    #expect(pruned.gradients.contains { $0.contains { $0 != 0 } }, "\(name): no gradient")
                }
            }
        }
    }

    @Test("an evaluation pass through a block, with SiLU and the residual sums inside the projections and the FFN's hidden rows handed to the down projection already quantized, gives the bits of the separate passes")
    func fusedEpilogues() throws {
        // 80 wide: the FFN's 320 outputs span several of the epilogue's 256-value pieces and
        // 20 panels, split over two threads.
        let s = try SequenceShape(batch: 3, steps: 5, lengths: [5, 2, 4])
        var rng = SeededGenerator(seed: 12)
        let x = try Tensor(shape: [s.rows, 80], scalars: rng.uniform(count: s.rows * 80, bound: 2))
        for backend in try allBackends() {
            for mode in Self.allModes {
                let block = try QAT.buildBlock(hiddenSize: 80, numHeads: 2, dropout: 0.1, quantize: mode, seed: 3)
                let exec = Execution(backend: backend, training: false)
                let x1 = add(x, try block.attention.forward(block.norm1.forward(x, exec), s, exec))
                var a = try block.feedForward.up.forward(block.norm2.forward(x1, exec), exec)
                a.scalars = backend.silu(a.scalars)
                let want = add(x1, try block.feedForward.down.forward(a, exec))
                let got = try block.forward(x, s, exec)
                #expect(got.shape == want.shape)
                #expect(got.scalars.map(\.bitPattern) == want.scalars.map(\.bitPattern), "\(label(backend)) \(mode?.rawValue ?? "float")")
                // The last steps alone, where the products are row by row: the packed kernels
                // (OpenBLAS's sgemm may order a 3-row product's sums unlike a 15-row one's at
                // this width, and does).
                guard backend is KernelsBackend, mode != nil else { continue }
                let last = try block.forwardAtLastSteps(x, s, exec)
                #expect(last.scalars.map(\.bitPattern) == (try got.gatheringRows(s.lastSteps)).scalars.map(\.bitPattern),
                        "\(label(backend)) \(mode?.rawValue ?? "float") last steps")
            }
        }
        // a residual of the wrong shape is named, not read past its end
        let linear = try QAT.quantLinear(inputs: 8, outputs: 5, quantize: LayerQuantization(mode: .ternary), seed: 1)
        let kernels = try KernelsBackend(isa: ISA.supported.last!, threads: 1)
        let input = try Tensor(shape: [2, 8], scalars: rng.uniform(count: 16, bound: 1))
        #expect(throws: LowBitError.invalidShape("residual must be [2, 5], got [2, 4]")) {
            try linear.forward(input, Execution(backend: kernels, training: false),
                               then: LinearEpilogue(residual: try Tensor(shape: [2, 4], scalars: [Float](repeating: 0, count: 8))))
        }
    }

    @Test("an evaluation pass in chunks of sequences gives every sequence the bits of a pass over the whole batch")
    func evaluationInChunks() throws {
        let (batch, _) = try DataParallelTests.batch(seed: 4)   // 7 sequences of 6 padded steps
        for backend in try allBackends() {
            for mode in Self.allModes {
                let encoder = try DataParallelTests.model(mode).encoder
                let whole = try encoder.forward(batch, Execution(backend: backend, training: false))
                for rows in [6, 13, 24] {   // chunks of 1, 2 and 4 sequences, the last one shorter
                    encoder.evaluationRows = rows
                    let got = try encoder.forward(batch, Execution(backend: backend, training: false))
                    Self.expectSameRows(got, whole, backend: backend, mode: mode, "\(label(backend)) \(mode?.rawValue ?? "float") \(rows)")
                }
            }
        }
    }

    @Test("forward and backward agree across backends and ISAs for every mode (random small configs)")
    func backendsAgree() async throws {
        let backends = try allBackends()
        await propertyCheck(count: 12, input: Gen.int(in: 0...4), Gen.int(in: 1...2), Gen.int(in: 0...1_000_000)) { mi, layers, seed in
            let mode = Self.allModes[mi]
            let options = EncoderConfiguration(inputWidth: 5, width: 16, headCount: 2, layerCount: layers, weightMode: mode, dropout: 0, seed: UInt64(seed))
            let reference = try SequenceClassifier(options, classes: 3)
            let (batch, labels) = try SyntheticTask(count: 5, seed: UInt64(seed)).batches(size: 5)[0]
            func run(_ model: SequenceClassifier, _ backend: any Backend) throws -> (Tensor, [Float]) {
                let exec = Execution(backend: backend, training: true)
                for p in model.parameters { p.zeroGrad() }
                let logits = try model.forward(batch, exec)
                try model.backward(try Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient, exec)
                return (logits, model.parameters.flatMap(\.grad))
            }
            let (wantLogits, wantGrads) = try run(reference, ReferenceBackend())
            for b in backends {
                let (logits, grads) = try run(try reference.copy(), b)
                // Float paths differ by rounding only. On quantized paths a rounding difference
                // upstream can move one int8 activation code by one step (1/127 of its row's
                // range), so results agree to about a percent, not to the last bit.
                let tolerance = mode == nil ? 1e-4 : 3e-2
                #expect(relativeError(logits, wantLogits) <= tolerance, "\(label(b)) \(String(describing: mode)) logits")
                let g = try Tensor(shape: [grads.count], scalars: grads), w = try Tensor(shape: [wantGrads.count], scalars: wantGrads)
                #expect(relativeError(g, w) <= 5 * tolerance, "\(label(b)) \(String(describing: mode)) gradients \(relativeError(g, w))")
            }
        }
    }

    @Test("an evaluation forward forgets the last training forward: a backward after it is refused, not run on the older batch", arguments: Self.allModes)
    func backwardAfterEvaluation(mode: QuantizationMode?) throws {
        let options = EncoderConfiguration(inputWidth: 4, width: 16, headCount: 2, layerCount: 1, weightMode: mode, dropout: 0, seed: 3)
        let model = try SequenceClassifier(options, classes: 3)
        let (batch, labels) = try SyntheticTask(count: 4, seed: 3).batches(size: 4)[0]
        let backend = ReferenceBackend()
        let gradient = try Loss.softmaxCrossEntropy(logits: try model.forward(batch, Execution(backend: backend, training: true)), labels: labels).gradient
        _ = try model.forward(batch, Execution(backend: backend, training: false))
        expectError("backward without a training forward") { try model.backward(gradient, Execution(backend: backend, training: true)) }
        // A training forward makes backward possible again.
        _ = try model.forward(batch, Execution(backend: backend, training: true))
        try model.backward(gradient, Execution(backend: backend, training: true))
    }

    @Test("a padded batch gives each sequence the result it gets alone", arguments: Self.allModes)
    func paddingInvariance(mode: QuantizationMode?) throws {
        let encoder = try QAT.build(embedDim: 3, hiddenSize: 8, numHeads: 2, numLayers: 2, quantize: mode, dropout: 0.1, seed: 3)
        let lengths = [5, 2, 7]
        var rng = TestRandom(21)
        let seqs = lengths.map { rng.tensor([1, $0, 3]) }
        var padded = Tensor(zeros: [3, 7, 3])
        for (b, s) in seqs.enumerated() { for i in 0..<s.count { padded.scalars[b * 21 + i] = s.scalars[i] } }
        for backend in try allBackends() {
            let exec = Execution(backend: backend, training: false)
            let together = try encoder.forward(SequenceBatch(values: padded, lengths: lengths), exec)
            for (b, s) in seqs.enumerated() {
                let alone = try encoder.forward(SequenceBatch(values: s, lengths: [lengths[b]]), exec)
                let row = Array(together.scalars[(b * 8)..<((b + 1) * 8)])
                if backend.kind == .reference {
                    #expect(row == alone.scalars, "\(String(describing: mode)) sequence \(b)")
                } else {
                    // Float layers run OpenBLAS sgemm, which may sum in another order for another
                    // batch size; downstream, that can move an int8 activation code by one step.
                    let tolerance = mode == nil ? 1e-5 : 3e-2
                    #expect(relativeError(try Tensor(shape: [8], scalars: row), try Tensor(shape: [8], scalars: alone.scalars)) < tolerance,
                            "\(label(backend)) \(String(describing: mode)) sequence \(b)")
                }
            }
        }
    }

    @Test("a small model learns a synthetic task in every mode, with QAT and with QT; packed inference matches",
          arguments: Self.allModes)
    func learns(mode: QuantizationMode?) throws {
        let backend = try KernelsBackend(threads: 2)
        for precision in (mode == nil ? [BackwardPrecision.float] : [.float, .int8]) {
            let options = EncoderConfiguration(inputWidth: 4, width: 16, headCount: 2, layerCount: 1, weightMode: mode, dropout: 0, seed: 1)
            let rules = [QuantizationRule("*", mode.map { LayerQuantization(mode: $0, backward: precision) })]
            let model = try SequenceClassifier(options, classes: 3, rules: rules)
            let trainer = Trainer(model: model, backend: backend, optimizer: AdamW(learningRate: 1e-2, weightDecay: 0))
            let train = try SyntheticTask(count: 96, seed: 1).batches(size: 16)
            let test = try SyntheticTask(count: 60, seed: 2).batches(size: 20)
            let before = try trainer.evaluate(test)
            for _ in 0..<8 { for (b, l) in train { try trainer.step(b, labels: l) } }
            let after = try trainer.evaluate(test)
            let chance = Float(log(3.0))
            #expect(after.loss < 0.5 * chance, "\(String(describing: mode)) \(precision): loss \(before.loss) -> \(after.loss)")
            #expect(after.accuracy > 0.85, "\(String(describing: mode)) \(precision): accuracy \(after.accuracy)")
            // Packed inference equals the QAT forward on the same backend, and stays close to the reference backend.
            let packed = try PackedClassifier(model, backend: backend)
            for (b, _) in test {
                let qat = try model.forward(b, Execution(backend: backend, training: false))
                #expect(try packed.logits(b) == qat)
                let ref = try model.forward(b, Execution(backend: ReferenceBackend(), training: false))
                #expect(relativeError(qat, ref) < 3e-2)
            }
            if mode != nil { #expect(packed.weightBytes < model.parameters.reduce(0) { $0 + 4 * $1.count }) }
        }
    }

    @Test("training is deterministic for a fixed seed and backend")
    func deterministic() throws {
        func losses() throws -> [Float] {
            let model = try SequenceClassifier(EncoderConfiguration(inputWidth: 4, width: 8, headCount: 2, layerCount: 1, weightMode: .ternary, dropout: 0.2, seed: 9), classes: 3)
            let trainer = Trainer(model: model, backend: try KernelsBackend(threads: 2))
            return try SyntheticTask(count: 48, seed: 4).batches(size: 16).map { try trainer.step($0.0, labels: $0.1) }
        }
        #expect(try losses() == losses())
    }

    @Test("static-range quantization: statistics from training or calibration, frozen ranges, count 0 refused")
    func staticRange() throws {
        let backend = try KernelsBackend(threads: 1)
        let options = EncoderConfiguration(inputWidth: 4, width: 8, headCount: 2, layerCount: 1, weightMode: .int8, dropout: 0, seed: 2)
        let fresh = try SequenceClassifier(options, classes: 3)
        #expect(throws: LowBitError.self) { try fresh.useStaticRanges() }
        let data = try SyntheticTask(count: 32, seed: 5).batches(size: 16)
        try fresh.calibrate(data.map(\.0), backend: backend)
        #expect(fresh.quantizedLayers.allSatisfy { $0.statistics.count == 2 && $0.statistics.mean > 0 })
        let model = try SequenceClassifier(options, classes: 3)
        let trainer = Trainer(model: model, backend: backend)
        for (b, l) in data { try trainer.step(b, labels: l) }
        #expect(model.quantizedLayers.allSatisfy { $0.statistics.count == 2 })
        let dynamic = try model.forward(data[0].0, Execution(backend: backend, training: false))
        try model.useStaticRanges()
        let frozen = try model.forward(data[0].0, Execution(backend: backend, training: false))
        #expect(frozen != dynamic)
        #expect(relativeError(frozen, dynamic) < 0.2)
        // frozen ranges do not move with more data, and agree across backends
        try model.calibrate(data.map(\.0), backend: backend)
        #expect(model.quantizedLayers.allSatisfy { $0.statistics.count == 2 })
        #expect(relativeError(try model.forward(data[0].0, Execution(backend: ReferenceBackend(), training: false)), frozen) < 1e-4)
    }

    @Test("static-range statistics are over real steps: a padded batch measures what its sequences measure alone")
    func staticRangeIgnoresPadding() throws {
        let backend = try KernelsBackend(threads: 1)
        let options = EncoderConfiguration(inputWidth: 3, width: 8, headCount: 2, layerCount: 1, weightMode: .int8, dropout: 0, seed: 4)
        var rng = SeededGenerator(seed: 8)
        let lengths = [6, 2, 4]
        let values = Tensor(shape: [3, 6, 3]) { _ in rng.signedUnit() }
        // The same sequences, their padding once zeros and once large: the real steps' statistics must not move.
        var loud = values
        for (b, n) in lengths.enumerated() { for t in n..<6 { for c in 0..<3 { loud.scalars[(b * 6 + t) * 3 + c] = 40 } } }
        func calibrated(_ v: Tensor) throws -> [ActivationStatistics] {
            let model = try SequenceClassifier(options, classes: 2)
            try model.calibrate([try SequenceBatch(values: v, lengths: lengths)], backend: backend)
            return model.quantizedLayers.map(\.statistics)
        }
        #expect(try calibrated(values) == calibrated(loud))
        // One full-length sequence alone: its mean over 6 rows is what a batch of it measures.
        let one = try SequenceBatch(values: Tensor(shape: [1, 6, 3], scalars: Array(values.scalars[0..<18])), lengths: [6])
        let model = try SequenceClassifier(options, classes: 2)
        try model.calibrate([one], backend: backend)
        #expect(model.quantizedLayers.allSatisfy { $0.statistics.count == 1 && $0.statistics.mean > 0 })
    }

    @Test("rules: first match wins, unmatched layers stay float, unused rules are reported")
    func rules() throws {
        let options = EncoderConfiguration(inputWidth: 4, width: 8, headCount: 2, layerCount: 2, weightMode: nil, dropout: 0)
        let encoder = try QAT.build(options, rules: [])
        let report = try encoder.apply(rules: [
            QuantizationRule("blocks.0.*", LayerQuantization(mode: .int4, granularity: .perGroup(8))),
            QuantizationRule("*.attn.*", LayerQuantization(mode: .int8)),
            QuantizationRule("*.ffn.up", LayerQuantization(mode: .binary)),
            QuantizationRule("decoder.*", LayerQuantization(mode: .ternary)),
        ])
        let modes = Dictionary(uniqueKeysWithValues: encoder.linears.map { ($0.path, $0.quantization?.mode) })
        #expect(modes["blocks.0.attn.qkv"] == .int4 && modes["blocks.0.ffn.down"] == .int4)
        #expect(modes["blocks.1.attn.qkv"] == .int8 && modes["blocks.1.attn.out"] == .int8)
        #expect(modes["blocks.1.ffn.up"] == .binary)
        #expect(modes["blocks.1.ffn.down"] == .some(nil))
        #expect(report.unusedRules.map(\.pattern) == ["decoder.*"])
        #expect(throws: LowBitError.self) {
            try encoder.apply(rules: [QuantizationRule("*", LayerQuantization(mode: .int4, granularity: .perGroup(6)))])
        }
    }

    @Test("checkpoints: save, load, identical predictions and training state; bad files are clear errors")
    func checkpoints() throws {
        let backend = try KernelsBackend(threads: 2)
        let options = EncoderConfiguration(inputWidth: 4, width: 8, headCount: 2, layerCount: 1, weightMode: .ternary, dropout: 0.1, seed: 3)
        let rules = [QuantizationRule("*.attn.*", LayerQuantization(mode: .int8, backward: .int8)), QuantizationRule("*", LayerQuantization(mode: .ternary))]
        let model = try SequenceClassifier(options, classes: 3, rules: rules)
        let trainer = Trainer(model: model, backend: backend)
        let data = try SyntheticTask(count: 32, seed: 6).batches(size: 16)
        for (b, l) in data { try trainer.step(b, labels: l) }
        let path = temporaryPath("model.safetensors")
        try Checkpoint.save(model, optimizer: trainer.optimizer, to: path, metadata: ["epoch": "1"])
        let (loaded, optimizer, metadata) = try Checkpoint.load(from: path)
        #expect(metadata["epoch"] == "1")
        let eval = Execution(backend: backend, training: false)
        #expect(try loaded.forward(data[0].0, eval) == model.forward(data[0].0, eval))
        #expect(loaded.encoder.linears.map(\.quantization) == model.encoder.linears.map(\.quantization))
        #expect(loaded.encoder.linears.map(\.statistics) == model.encoder.linears.map(\.statistics))
        #expect(optimizer?.step == trainer.optimizer.step)
        // Resuming continues exactly as the original would.
        let resumed = Trainer(model: loaded, backend: backend, optimizer: try #require(optimizer))
        #expect(try resumed.step(data[1].0, labels: data[1].1) == trainer.step(data[1].0, labels: data[1].1))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"))

        // Truncated, corrupted and mismatched files.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for (name, broken) in [("truncated", bytes.prefix(bytes.count - 10)), ("tiny", bytes.prefix(5)),
                               ("header", Data(bytes.prefix(8)) + Data(repeating: 0x7b, count: 64) + bytes.dropFirst(72))] {
            let p = temporaryPath("\(name).safetensors")
            try broken.write(to: URL(fileURLWithPath: p))
            #expect(throws: LowBitError.self, "\(name)") { try Checkpoint.load(from: p) }
        }
        #expect(throws: LowBitError.self) { try Checkpoint.load(from: temporaryPath("missing.safetensors")) }
        // The header alone: the same metadata as a full read; a short or damaged header is an error.
        #expect(try SafeTensors.metadata(of: path) == SafeTensors.read(path).metadata)
        for name in ["tiny", "header", "missing"] {
            #expect(throws: LowBitError.self, "\(name)") { try SafeTensors.metadata(of: temporaryPath("\(name).safetensors")) }
        }
        var (tensors, meta) = try SafeTensors.read(path)
        tensors["blocks.0.attn.qkv.weight"] = SafeTensors.Entry(floats: [Float](repeating: 0, count: 8 * 8), shape: [8, 8])
        try SafeTensors.write(tensors, metadata: meta, to: temporaryPath("mismatch.safetensors"))
        do {
            _ = try Checkpoint.load(from: temporaryPath("mismatch.safetensors"))
            Issue.record("a mismatched shape was accepted")
        } catch let e as LowBitError {
            #expect(e.description.contains("blocks.0.attn.qkv.weight"), "\(e)")
        }
        // A tensor the model does not have, and moments missing after steps were taken.
        for (name, change) in [("extra", { (t: inout [String: SafeTensors.Entry]) in t["blocks.9.ffn.up.weight"] = SafeTensors.Entry(floats: [1], shape: [1]) }),
                               ("moments", { (t: inout [String: SafeTensors.Entry]) in t["optimizer.m.head.weight"] = nil })] {
            var (t, m) = try SafeTensors.read(path)
            change(&t)
            try SafeTensors.write(t, metadata: m, to: temporaryPath("\(name).safetensors"))
            #expect { try Checkpoint.load(from: temporaryPath("\(name).safetensors")) } throws: {
                "\($0)".contains(name == "extra" ? "blocks.9.ffn.up.weight" : "optimizer.m.head.weight")
            }
        }
        meta["lowbit.format"] = "something-else"
        try SafeTensors.write(tensors, metadata: meta, to: temporaryPath("foreign.safetensors"))
        #expect(throws: LowBitError.self) { try Checkpoint.load(from: temporaryPath("foreign.safetensors")) }
    }

    @Test("bad input: wrong shapes, NaN, lengths, window, options")
    func badInput() throws {
        let encoder = try QAT.build(embedDim: 3, hiddenSize: 8, numHeads: 2, numLayers: 1, windowSize: 6)
        let exec = Execution(backend: try KernelsBackend(threads: 1), training: false)
        #expect(throws: LowBitError.self) { try encoder.forward(SequenceBatch(values: Tensor(zeros: [2, 4, 5]), lengths: [4, 4]), exec) }
        #expect(throws: LowBitError.self) { try SequenceBatch(values: Tensor(zeros: [2, 4]), lengths: [4, 4]) }
        #expect(throws: LowBitError.self) { try SequenceBatch(values: Tensor(zeros: [2, 4, 3]), lengths: [4, 5]) }
        #expect(throws: LowBitError.self) { try SequenceBatch(values: Tensor(zeros: [2, 4, 3]), lengths: [4]) }
        #expect(throws: LowBitError.self) { try encoder.forward(SequenceBatch(values: Tensor(zeros: [1, 7, 3]), lengths: [7]), exec) }
        var x = Tensor(zeros: [1, 4, 3]); x.scalars[5] = .nan
        #expect(throws: LowBitError.self) { try SequenceBatch(values: x, lengths: [4]) }
        #expect(throws: LowBitError.self) { try QAT.build(embedDim: 3, hiddenSize: 10, numHeads: 4) }
        #expect(throws: LowBitError.self) { try QAT.build(embedDim: 0, hiddenSize: 8, numHeads: 2) }
        #expect(throws: LowBitError.self) { try QAT.build(embedDim: 3, hiddenSize: 8, numHeads: 2, numLayers: 0) }
        #expect(throws: LowBitError.self) { try BitNet.build(embedDim: 3, hiddenSize: 8, numHeads: 2, quantize: .int4) }
        #expect(throws: LowBitError.self) { try SequenceClassifier(QAT.recommendedDefaults(embedDim: 12), classes: 1) }
        do {
            _ = try QAT.build(embedDim: 3, hiddenSize: 10, numHeads: 4)
        } catch { #expect("\(error)".contains("not divisible by numHeads")) }
    }

    @Test("builders and defaults")
    func builders() throws {
        let d = QAT.recommendedDefaults(embedDim: 12)
        #expect(d.width == 256 && d.headCount == 4 && d.layerCount == 4 && d.dropout == 0.1 && d.maxSteps == 60 && d.weightMode == .ternary)
        #expect(d == EncoderConfiguration(inputWidth: 12), "one source of defaults: the builders' and the type's")
        #expect(QAT.outputSize(hiddenSize: 64) == 64 && BitNet.outputSize(hiddenSize: 32) == 32)
        let e = try BitNet.build(embedDim: 12, hiddenSize: 16, numHeads: 2, numLayers: 2, quantize: .binary)
        #expect(e.linears.filter(\.quantizable).allSatisfy { $0.quantization?.mode == .binary })
        #expect(e.inputProjection != nil && e.outputSize == 16)
        let l = try BitNet.bitLinear(inputs: 8, outputs: 4)
        #expect(l.quantization?.mode == .ternary)
        let y = try l.forward(TestRandom(1).tensorCopy([2, 8]), Execution(backend: ReferenceBackend(), training: false))
        #expect(y.shape == [2, 4])
    }
}
