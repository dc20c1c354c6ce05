import Foundation
import LowBit
import Testing

/// Convolution tokens: the kernel features against a direct computation, the summary token,
/// fitting, saving, and a model that reads them.
@Suite("Convolution tokens")
struct ConvolutionTokenTests {
    /// The tokens of `series` computed the plain way: every kernel's nine weights (2 at its
    /// three taps, −1 elsewhere) times the clamped taps, compared with its bias, counted over
    /// each token's steps.
    static func directTokens(_ t: ConvolutionTokenizer, _ series: [Float]) -> [Float] {
        let steps = series.count / t.channels
        let patches = (steps + t.patchLength - 1) / t.patchLength
        let triples = (0..<9).flatMap { a in ((a + 1)..<9).flatMap { b in ((b + 1)..<9).map { c in [a, b, c] } } }
        var out: [Float] = []
        for token in 0...patches {
            let range = token == patches ? 0..<steps
                : max(0, steps - (patches - token) * t.patchLength)..<(steps - (patches - token - 1) * t.patchLength)
            for c in 0..<t.channels {
                for (di, d) in t.dilations.enumerated() {
                    for (k, triple) in triples.enumerated() {
                        let bias = t.biases[(c * t.dilations.count + di) * 84 + k]
                        var above = 0
                        for s in range {
                            var r: Float = 0
                            for j in 0..<9 { r += Float(triple.contains(j) ? 2 : -1) * series[min(max(s + (j - 4) * d, 0), steps - 1) * t.channels + c] }
                            if r > bias { above += 1 }
                        }
                        out.append(Float(above) / Float(range.count))
                    }
                }
            }
        }
        return out
    }

    @Test("each token is the share of its steps where a kernel's response exceeds its bias; the last token is the whole series'",
          arguments: [1, 2, 3, 7, 9, 23])
    func tokensMatchDirectComputation(length: Int) throws {
        var rng = TestRandom(UInt64(length))
        // Integer values and half-integer biases: every response is exact, no comparison is a tie.
        let biases = (0..<(2 * 2 * 84)).map { _ in Float(Int(rng.next() % 9) - 4) + 0.5 }
        let t = try ConvolutionTokenizer(channels: 2, patchLength: 3, dilations: [1, 2], biases: biases)
        let series = (0..<(2 * length)).map { _ in Float(Int(rng.next() % 7) - 3) }
        let tokens = t.tokens(of: series)
        #expect(t.featureCount == 2 * 2 * 84)
        #expect(tokens.count == t.tokenCount(steps: length) * t.featureCount)
        #expect(t.tokenCount(steps: length) == (length + 2) / 3 + 1)
        #expect(tokens == Self.directTokens(t, series))
        // Adding a constant to a channel changes nothing: every kernel's weights sum to zero.
        let shifted = series.enumerated().map { $0.offset % 2 == 0 ? $0.element + 1000 : $0.element }
        #expect(t.tokens(of: shifted) == tokens)
    }

    @Test("fitting: the dilations follow the length, the same data and seed give the same biases, the tokenizer survives JSON")
    func fitting() throws {
        #expect(ConvolutionTokenizer.dilations(maxLength: 24) == [1, 2])
        #expect(ConvolutionTokenizer.dilations(maxLength: 251) == [1, 2, 4, 8, 16])
        #expect(ConvolutionTokenizer.dilations(maxLength: 5) == [1])
        #expect(ConvolutionTokenizer.dilations(maxLength: 10_000_000).count == ConvolutionTokenizer.maxDilations)
        let data = try RecipeTests.slopes(count: 10, lengths: 30...60, channels: 2)
        let a = try ConvolutionTokenizer(fittedTo: data, patchLength: 4, seed: 3)
        #expect(a == (try ConvolutionTokenizer(fittedTo: data, patchLength: 4, seed: 3)))
        #expect(a != (try ConvolutionTokenizer(fittedTo: data, patchLength: 4, seed: 4)))
        #expect(a.dilations == ConvolutionTokenizer.dilations(maxLength: data.maxLength) && a.biases.count == 2 * a.dilations.count * 84)
        // The biases are quantiles of real responses: every feature is neither always 0 nor always 1 on the data.
        let tokens = try a.tokens(of: data)
        #expect(tokens.channels == a.featureCount && tokens.labels == data.labels && tokens.lengths == data.lengths.map { a.tokenCount(steps: $0) })
        let summaries = tokens.series.map { Array($0.suffix(a.featureCount)) }
        let varying = (0..<a.featureCount).filter { f in Set(summaries.map { $0[f] }).count > 1 }
        #expect(varying.count > a.featureCount / 2)
        #expect(try JSONDecoder().decode(ConvolutionTokenizer.self, from: JSONEncoder().encode(a)) == a)
        // A decoded tokenizer is checked as a new one is.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(a)) as! [String: Any]
        json["biases"] = [1.0, 2.0]
        #expect(throws: LowBitError.self) { try JSONDecoder().decode(ConvolutionTokenizer.self, from: JSONSerialization.data(withJSONObject: json)) }
        expectError("a convolution tokenizer needs one or more positive dilations, got [0]") {
            _ = try ConvolutionTokenizer(channels: 1, patchLength: 1, dilations: [0], biases: [Float](repeating: 0, count: 84))
        }
        expectError("slopes has 2 channels, the model's convolution tokens read 1") {
            _ = try ConvolutionTokenizer(channels: 1, patchLength: 1, dilations: [1], biases: [Float](repeating: 0, count: 84)).tokens(of: data)
        }
    }

    @Test("the recipe: convolution tokens where raw values would need patches, raw steps where a step makes a token")
    func recipeChoosesTokens() throws {
        let r = TrainingRecipe()
        #expect(r.tokens(maxLength: 29, channels: 12) == .patches)   // JapaneseVowels
        #expect(r.tokens(maxLength: 24, channels: 1) == .convolution)
        #expect(r.tokens(maxLength: 1460, channels: 1) == .convolution)
        #expect(r.tokens(maxLength: 500, channels: 12) == .convolution)
        #expect(r.convolutionPatchLength(maxLength: 24) == 1 && r.convolutionPatchLength(maxLength: 1460) == 46)
        let univariate = try RecipeTests.slopes(count: 8, lengths: 40...70)
        let s = r.settings(TrainingSettings(dropout: 0.2), for: univariate)
        // Convolution tokens keep the settings' regularisation.
        let t = univariate.maxLength
        #expect(s.tokens == .convolution && s.patchLength == 3 && s.dropout == 0.2 && s.augmentation == Augmentation())
        #expect(s.tokenShape(of: univariate) == (tokens: (t + 2) / 3 + 1, values: ConvolutionTokenizer.dilations(maxLength: t).count * 84))
        #expect(r.settings(TrainingSettings(), for: univariate, tokens: .patches).tokens == .patches)
    }

    @Test("a padded batch of convolution tokens gives each series the result it gets alone", arguments: [nil, QuantizationMode.binary])
    func paddingInvariance(mode: QuantizationMode?) throws {
        let data = try RecipeTests.slopes(count: 6, lengths: 5...40)
        let settings = TrainingSettings(mode: mode, patchLength: 4, tokens: .convolution, width: 8, layerCount: 2, headCount: 2,
                                        dropout: 0.1, epochs: 1, seed: 2)
        let run = try ClassifierTraining(settings: settings, train: data)
        let t = try #require(run.tokenizer)
        #expect(run.model.configuration.inputWidth == t.featureCount && run.model.configuration.maxSteps == (data.maxLength + 3) / 4 + 1)
        let backend = ReferenceBackend()
        try run.run(train: data, backend: backend)
        let exec = Execution(backend: backend, training: false)
        let window = run.model.configuration.maxSteps
        let all = try run.info.batch(data, Array(0..<data.count), windowSize: window).batch
        #expect(Set(all.shape.lengths).count > 2)
        let together = try run.model.forward(all, exec)
        for i in 0..<data.count {
            let alone = try run.model.forward(try run.info.batch(data, [i], windowSize: window).batch, exec)
            #expect(Array(together.scalars[(i * 2)..<(i * 2 + 2)]) == alone.scalars, "series \(i)")
        }
        // batches and batch read the same tokens.
        #expect(try run.info.batches(data, size: 6, windowSize: window)[0].batch.values == all.values)
    }

    @Test("a saved model and a checkpoint keep the tokenizer: a loaded model classifies raw series, a resumed run continues")
    func savedAndResumed() throws {
        let data = try RecipeTests.slopes(count: 12, lengths: 30...50)
        let settings = TrainingSettings(mode: .ternary, patchLength: 5, tokens: .convolution, width: 8, layerCount: 1, headCount: 2,
                                        epochs: 2, seed: 5)
        let run = try ClassifierTraining(settings: settings, train: data)
        let checkpoint = temporaryPath("convolution-checkpoint.safetensors")
        try run.run(train: data, backend: KernelsBackend(), checkpointPath: checkpoint, shouldStop: { true })
        let resumed = try ClassifierTraining(resumingFrom: checkpoint)
        #expect(resumed.tokenizer == run.tokenizer && resumed.standardization == run.standardization)
        try resumed.run(train: data, backend: KernelsBackend())
        try run.run(train: data, backend: KernelsBackend())
        #expect(resumed.model.parameters.map(\.value) == run.model.parameters.map(\.value))

        let packed = try PackedClassifier(run.model, info: run.info, backend: KernelsBackend())
        let path = temporaryPath("convolution.packed.safetensors")
        try packed.save(to: path, info: run.info)
        let (loaded, info) = try PackedClassifier.load(from: path, backend: KernelsBackend())
        #expect(info.tokenizer == run.tokenizer && info.channels == 1)
        let batch = try info.batch(data, Array(0..<data.count), windowSize: loaded.configuration.maxSteps).batch
        #expect(try loaded.logits(batch) == packed.logits(batch))
        let raw = (0..<data.length(3)).map { [data.series[3][$0]] }
        let label = try loaded.classify(raw)
        #expect(label.label == info.classNames[try loaded.predict(try info.batch(data, [3], windowSize: loaded.configuration.maxSteps).batch)[0]])

        // A file whose tokenizer does not match its standardization is refused, naming both.
        var bad = run.info
        bad.standardization = try ChannelStandardization(mean: [0], deviation: [1])
        let badPath = temporaryPath("convolution-bad.packed.safetensors")
        try packed.save(to: badPath, info: bad)
        let error = #expect(throws: LowBitError.self) { try PackedClassifier.load(from: badPath, backend: KernelsBackend()) }
        #expect("\(error!)".contains("do not match the standardization (1 features)"), "\(error!)")
    }
}
