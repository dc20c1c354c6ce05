import Foundation
import LowBit
import Testing

/// The training recipe: patches of steps as tokens, the step budget, long series.
@Suite("Training recipe")
struct RecipeTests {
    /// `count` univariate or multivariate series of varied lengths whose class is the sign of
    /// their slope.
    static func slopes(count: Int, lengths: ClosedRange<Int>, channels: Int = 1, seed: UInt64 = 1) throws -> TimeSeriesDataset {
        var rng = TestRandom(seed)
        var series: [[Float]] = [], labels: [Int] = []
        for i in 0..<count {
            let n = lengths.lowerBound + Int(rng.next() % UInt64(lengths.count))
            let up = i % 2 == 0
            series.append((0..<(n * channels)).map { j in Float(up ? j / channels : n - j / channels) / Float(n) + rng.float(0.3) })
            labels.append(up ? 0 : 1)
        }
        return try TimeSeriesDataset(name: "slopes", channels: channels, series: series, labels: labels, classNames: ["up", "down"])
    }

    @Test("a patch is P consecutive steps of every channel; the last patch ends at the series' last step; a window keeps the newest patches")
    func patchLayout() throws {
        let d = try TimeSeriesDataset(name: "p", channels: 2, series: [(1...14).map(Float.init), [21, 22, 23, 24]],
                                      labels: [0, 1], classNames: ["a", "b"])
        let (batch, _) = try d.batch([0, 1], standardization: nil, patchLength: 3)
        // 7 steps → 3 tokens of 6 values, the first one starting with two zero steps; 2 steps → 1 token.
        #expect(batch.values.shape == [2, 3, 6])
        #expect(batch.shape.lengths == [3, 1])
        #expect(Array(batch.values.scalars[0..<18]) == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        #expect(Array(batch.values.scalars[18..<36]) == [0, 0, 21, 22, 23, 24] + [Float](repeating: 0, count: 12))
        let (window, _) = try d.batch([0], standardization: nil, maxSteps: 2, patchLength: 3)
        #expect(window.values.scalars == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        // One step per token is the unpatched layout.
        #expect(try d.batch([0, 1], standardization: nil, patchLength: 1).batch.values == d.batch([0, 1], standardization: nil).batch.values)
        #expect(throws: LowBitError.self) { try d.batch([0], standardization: nil, patchLength: 0) }
    }

    @Test("a padded batch of patched series gives each series the result it gets alone", arguments: [nil, QuantizationMode.ternary])
    func patchedPaddingInvariance(mode: QuantizationMode?) throws {
        let data = try Self.slopes(count: 6, lengths: 5...23, channels: 2)
        let settings = TrainingSettings(mode: mode, patchLength: 4, hiddenSize: 8, numLayers: 2, numHeads: 2, positionalEncoding: true,
                                        dropout: 0.1, epochs: 1, seed: 2)
        let run = try ClassifierTraining(settings: settings, train: data)
        #expect(run.model.options.embedDim == 8 && run.model.options.windowSize == (data.maxLength + 3) / 4)
        let backend = ReferenceBackend()
        try run.run(train: data, backend: backend)
        let exec = Execution(backend: backend, training: false)
        let all = try run.info.batch(data, Array(0..<data.count), windowSize: run.model.options.windowSize).batch
        #expect(Set(all.shape.lengths).count > 2)
        let together = try run.model.forward(all, exec)
        for i in 0..<data.count {
            let alone = try run.model.forward(try run.info.batch(data, [i], windowSize: run.model.options.windowSize).batch, exec)
            #expect(Array(together.scalars[(i * 2)..<(i * 2 + 2)]) == alone.scalars, "series \(i)")
        }
    }

    @Test("patch length: fits the longest series in the token budget, gives a token a few values, never exceeds the series")
    func patchLengthRule() throws {
        let r = TrainingRecipe()
        #expect(r.patchLength(maxLength: 29, channels: 12) == 1)  // JapaneseVowels: unchanged
        #expect(r.patchLength(maxLength: 24, channels: 1) == r.minTokenValues)
        #expect(r.patchLength(maxLength: 24, channels: 2) == (r.minTokenValues + 1) / 2)
        #expect(r.patchLength(maxLength: 1460, channels: 1) == (1460 + r.maxTokens - 1) / r.maxTokens)
        #expect(r.patchLength(maxLength: 2, channels: 1) == 2)
        for (length, channels) in [(1, 1), (7, 3), (251, 1), (427, 1), (100_000, 1), (5000, 9)] {
            let p = r.patchLength(maxLength: length, channels: channels)
            #expect((length + p - 1) / p <= max(r.maxTokens, 1), "\(length)×\(channels): \(p)")
            #expect(p >= 1 && p <= length)
        }
    }

    @Test("the step budget: epochs follow the training set's size, so a small set gets as many updates as a large one")
    func stepBudget() throws {
        let r = TrainingRecipe(steps: 680)
        #expect(r.epochs(trainCount: 270, batchSize: 16) == 40)  // JapaneseVowels: unchanged
        #expect(r.warmupEpochs(epochs: 40) == 2)
        #expect(r.epochs(trainCount: 36, batchSize: 16) == 227)
        #expect(r.epochs(trainCount: 10_000, batchSize: 16) == 1)
        // A run from the recipe takes about the budgeted steps.
        let data = try Self.slopes(count: 36, lengths: 8...12)
        let base = TrainingSettings(hiddenSize: 8, numLayers: 1, numHeads: 2, dropout: 0, seed: 1)
        let settings = TrainingRecipe(steps: 30).settings(base, for: data)
        #expect(settings.epochs == 10 && settings.patchLength == 4)
        let run = try ClassifierTraining(settings: settings, train: data)
        try run.run(train: data, backend: KernelsBackend())
        #expect(run.optimizer.step == 30)
        // An option overrides the recipe.
        let fixed = TrainingRecipe(steps: 30).settings(base, for: data, patchLength: 2, epochs: 3)
        #expect(fixed.epochs == 3 && fixed.patchLength == 2)
    }

    @Test("a series of 100 000 steps trains in a bounded number of tokens; a token past the limit is refused before allocation")
    func longSeries() throws {
        let data = try Self.slopes(count: 4, lengths: 99_000...100_000)
        let settings = TrainingRecipe(steps: 2).settings(TrainingSettings(hiddenSize: 8, numLayers: 1, numHeads: 2, dropout: 0, seed: 1),
                                                         for: data)
        let run = try ClassifierTraining(settings: settings, train: data)
        #expect(run.model.options.windowSize <= TrainingRecipe().maxTokens)
        #expect(run.model.options.embedDim == settings.patchLength)
        #expect(try run.run(train: data, backend: KernelsBackend()) == .finished)
        let packed = try PackedClassifier(run.model, backend: KernelsBackend())
        let evaluation = try ClassifierTraining.evaluate(data, info: run.info, windowSize: run.model.options.windowSize) { try packed.predict($0) }
        #expect(evaluation.count == 4)

        var wide = settings
        wide.patchLength = TrainingRecipe.maxTokenValues + 1
        let error = #expect(throws: LowBitError.self) { try ClassifierTraining(settings: wide, train: data) }
        #expect("\(error!)".contains("\(TrainingRecipe.maxTokenValues) values per token"), "\(error!)")
        #expect(throws: LowBitError.self) { try TrainingRecipe.tokenShape(channels: Int.max / 2, steps: 10, patchLength: 4, name: "x") }
    }

    @Test("the model file keeps the patch length: a loaded model reads raw series as it was trained to")
    func patchLengthSaved() throws {
        let data = try Self.slopes(count: 8, lengths: 9...15)
        let run = try ClassifierTraining(settings: TrainingSettings(mode: .int4, patchLength: 3, hiddenSize: 8, numLayers: 1, numHeads: 2,
                                                                    epochs: 1, seed: 4), train: data)
        try run.run(train: data, backend: KernelsBackend())
        let packed = try PackedClassifier(run.model, backend: KernelsBackend())
        let path = temporaryPath("patched.safetensors")
        try packed.save(to: path, info: run.info)
        let (loaded, info) = try PackedClassifier.load(from: path, backend: KernelsBackend())
        #expect(info.patchLength == 3)
        let batch = try info.batch(data, Array(0..<8), windowSize: loaded.options.windowSize).batch
        #expect(try loaded.logits(batch) == packed.logits(batch))
        let probabilities = try loaded.probabilities(batch)
        #expect(probabilities.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-9 })
        // A file written before patches existed reads as one step per token.
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(info)) as! [String: Any]
        old.removeValue(forKey: "patchLength")
        #expect(try JSONDecoder().decode(ModelInfo.self, from: JSONSerialization.data(withJSONObject: old)).patchLength == 1)
        // Data with other channels is refused with both counts named.
        let other = try Self.slopes(count: 2, lengths: 9...9, channels: 2)
        let error = #expect(throws: LowBitError.self) { try info.batch(other, [0], windowSize: 8) }
        #expect("\(error!)".contains("2 channels, the model takes 1"), "\(error!)")
    }
}
