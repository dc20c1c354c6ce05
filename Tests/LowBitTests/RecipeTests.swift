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
        let settings = TrainingSettings(mode: mode, patchLength: 4, width: 8, layerCount: 2, headCount: 2, usesPositionalEncoding: true,
                                        dropout: 0.1, epochs: 1, seed: 2)
        let run = try ClassifierTraining(settings: settings, train: data)
        #expect(run.model.configuration.inputWidth == 8 && run.model.configuration.maxSteps == (data.maxLength + 3) / 4)
        let backend = ReferenceBackend()
        try run.run(train: data, backend: backend)
        let exec = Execution(backend: backend, training: false)
        let all = try run.info.batch(data, Array(0..<data.count), windowSize: run.model.configuration.maxSteps).batch
        #expect(Set(all.shape.lengths).count > 2)
        let together = try run.model.forward(all, exec)
        for i in 0..<data.count {
            let alone = try run.model.forward(try run.info.batch(data, [i], windowSize: run.model.configuration.maxSteps).batch, exec)
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

    @Test("regularisation: patched tokens get the recipe's dropout and augmentation, one step per token keeps the settings' own")
    func patchRegularisation() throws {
        let r = TrainingRecipe(patchDropout: 0.05, patchAugmentation: Augmentation(crop: 0.3, scale: 0.1, jitter: 0.02))
        let base = TrainingSettings(dropout: 0.2)
        let univariate = try Self.slopes(count: 8, lengths: 40...60)
        let patched = r.settings(base, for: univariate, tokens: .patches)
        #expect(patched.patchLength > 1 && patched.dropout == 0.05 && patched.augmentation == r.patchAugmentation)
        let wide = try Self.slopes(count: 8, lengths: 7...29, channels: 12)  // JapaneseVowels' shape: one step per token
        let plain = r.settings(base, for: wide)
        #expect(plain.patchLength == 1 && plain.dropout == 0.2 && plain.augmentation == Augmentation())
        // A patch length given by the caller decides as the recipe's would.
        #expect(r.settings(base, for: univariate, tokens: .patches, patchLength: 1).dropout == 0.2)
        #expect(r.settings(base, for: wide, patchLength: 2).augmentation == r.patchAugmentation)
        // Convolution tokens keep the settings' own.
        let convolution = r.settings(base, for: univariate)
        #expect(convolution.tokens == .convolution && convolution.dropout == 0.2 && convolution.augmentation == Augmentation())
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
        let base = TrainingSettings(width: 8, layerCount: 1, headCount: 2, dropout: 0, seed: 1)
        let settings = TrainingRecipe(steps: 30).settings(base, for: data, tokens: .patches)
        #expect(settings.epochs == 10 && settings.patchLength == 4)
        let run = try ClassifierTraining(settings: settings, train: data)
        try run.run(train: data, backend: KernelsBackend())
        #expect(run.optimizer.step == 30)
        // An option overrides the recipe.
        let fixed = TrainingRecipe(steps: 30).settings(base, for: data, tokens: .patches, patchLength: 2, epochs: 3)
        #expect(fixed.epochs == 3 && fixed.patchLength == 2)
    }

    @Test("a series of 100 000 steps trains in a bounded number of tokens; a token past the limit is refused before allocation")
    func longSeries() throws {
        let data = try Self.slopes(count: 4, lengths: 99_000...100_000)
        let settings = TrainingRecipe(steps: 2).settings(TrainingSettings(width: 8, layerCount: 1, headCount: 2, dropout: 0, seed: 1),
                                                         for: data, tokens: .patches)
        let run = try ClassifierTraining(settings: settings, train: data)
        #expect(run.model.configuration.maxSteps <= TrainingRecipe().maxTokens)
        #expect(run.model.configuration.inputWidth == settings.patchLength)
        #expect(try run.run(train: data, backend: KernelsBackend()) == .finished)
        let evaluation = try PackedClassifier(run.model, info: run.info, backend: KernelsBackend()).evaluate(on: data)
        #expect(evaluation.count == 4)

        var wide = settings
        wide.patchLength = TrainingRecipe.maxTokenValues + 1
        let error = #expect(throws: LowBitError.self) { try ClassifierTraining(settings: wide, train: data) }
        #expect("\(error!)".contains("\(TrainingRecipe.maxTokenValues) values per token"), "\(error!)")
        #expect(throws: LowBitError.self) { try TrainingRecipe.tokenShape(channels: Int.max / 2, steps: 10, patchLength: 4, name: "x") }
        // A series of 2.6 million steps (a 10 MB line of a .ts file) would need tokens of
        // 81 250 values: refused, naming the limit, before the model is built.
        let huge = try TimeSeriesDataset(name: "huge", channels: 1, series: [[Float](repeating: 1, count: 2_600_000), [Float](repeating: 2, count: 10)],
                                         labels: [0, 1], classNames: ["a", "b"])
        let hugeSettings = TrainingRecipe().settings(TrainingSettings(width: 8, layerCount: 1, headCount: 2), for: huge, tokens: .patches)
        expectError("huge: a token of 81250 steps × 1 channels exceeds the limit of 65536 values per token") {
            _ = try ClassifierTraining(settings: hugeSettings, train: huge)
        }
    }

    @Test("a series of 100 000 steps becomes a bounded number of convolution tokens of a bounded width, and trains")
    func longSeriesConvolution() throws {
        let data = try Self.slopes(count: 2, lengths: 99_000...100_000)
        let settings = TrainingRecipe(steps: 1).settings(TrainingSettings(width: 8, layerCount: 1, headCount: 2, seed: 1), for: data)
        #expect(settings.tokens == .convolution)
        let run = try ClassifierTraining(settings: settings, train: data)
        let t = try #require(run.tokenizer)
        #expect(run.model.configuration.maxSteps <= TrainingRecipe().maxTokens + 1)
        #expect(t.dilations.count == ConvolutionTokenizer.maxDilations && run.model.configuration.inputWidth == t.featureCount)
        #expect(try run.run(train: data, backend: KernelsBackend()) == .finished)
    }

    @Test("the model file keeps the patch length: a loaded model reads raw series as it was trained to")
    func patchLengthSaved() throws {
        let data = try Self.slopes(count: 8, lengths: 9...15)
        let run = try ClassifierTraining(settings: TrainingSettings(mode: .int4, patchLength: 3, width: 8, layerCount: 1, headCount: 2,
                                                                    epochs: 1, seed: 4), train: data)
        try run.run(train: data, backend: KernelsBackend())
        let packed = try PackedClassifier(run.model, backend: KernelsBackend())
        let path = temporaryPath("patched.safetensors")
        try packed.save(to: path, info: run.info)
        let (loaded, info) = try PackedClassifier.load(from: path, backend: KernelsBackend())
        #expect(info.patchLength == 3)
        let batch = try info.batch(data, Array(0..<8), windowSize: loaded.configuration.maxSteps).batch
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

/// Augmentation: random crops, scaling and noise of the training series.
@Suite("Augmentation")
struct AugmentationTests {
    @Test("an augmented batch: the same seed gives the same batch, the last step stays, padding stays zero, scaling stays in its range")
    func augmentedBatch() throws {
        let data = try RecipeTests.slopes(count: 6, lengths: 20...40, channels: 2)
        let run = try ClassifierTraining(settings: TrainingSettings(patchLength: 3, width: 8, layerCount: 1, headCount: 2, seed: 2),
                                         train: data)
        let (info, window, all) = (run.info, run.model.configuration.maxSteps, Array(0..<6))
        let plain = try info.batch(data, all, windowSize: window)
        #expect(try Augmentation().batch(data, all, info: info, windowSize: window, seed: 5).batch.values == plain.batch.values)

        let both = Augmentation(crop: 0.5, scale: 0.3, jitter: 0.1)
        let a = try both.batch(data, all, info: info, windowSize: window, seed: 5)
        #expect(a.labels == plain.labels)
        #expect(try both.batch(data, all, info: info, windowSize: window, seed: 5).batch.values == a.batch.values)
        #expect(try both.batch(data, all, info: info, windowSize: window, seed: 6).batch.values != a.batch.values)
        // Crops shorten series but keep at least half; a padded position is zero.
        let width = a.batch.features, steps = a.batch.shape.steps
        for b in 0..<6 {
            let (full, cut) = (plain.batch.shape.lengths[b], a.batch.shape.lengths[b])
            #expect(cut <= full && cut >= full / 2 - 1, "\(cut) of \(full) tokens")
            let row = Array(a.batch.values.scalars[(b * steps * width)..<((b + 1) * steps * width)])
            #expect(row[(cut * width)...].allSatisfy { $0 == 0 })
        }

        // Scaling alone: each series' standardized values are the plain ones times one factor in [0.7, 1.3].
        let scaled = try Augmentation(scale: 0.3).batch(data, all, info: info, windowSize: window, seed: 9).batch
        let plainSteps = plain.batch.shape.steps
        #expect(scaled.shape.steps == plainSteps)
        for b in 0..<6 {
            let range = (b * plainSteps * width)..<((b * plainSteps + plain.batch.shape.lengths[b]) * width)
            let ratios = zip(scaled.values.scalars[range], plain.batch.values.scalars[range]).filter { abs($1) > 0.1 }.map { $0 / $1 }
            #expect(!ratios.isEmpty && ratios.allSatisfy { $0 >= 0.7 - 1e-4 && $0 <= 1.3 + 1e-4 })
            #expect(ratios.max()! - ratios.min()! < 1e-3, "one factor per series")
        }
        // Crop alone: the series' last steps are unchanged.
        let cropped = try Augmentation(crop: 0.5).batch(data, all, info: info, windowSize: window, seed: 3).batch
        for b in 0..<6 {
            let last = { (x: SequenceBatch) in
                let (n, t) = (x.shape.lengths[b], x.shape.steps)
                return Array(x.values.scalars[((b * t + n - 1) * width)..<((b * t + n) * width)])
            }
            #expect(last(cropped) == last(plain.batch))
        }
    }

    @Test("bad augmentation settings are refused, naming the setting")
    func refused() throws {
        for (a, text) in [(Augmentation(crop: 1), "crop"), (Augmentation(scale: -0.1), "scale"), (Augmentation(jitter: .nan), "jitter")] {
            let error = #expect(throws: LowBitError.self) { try TrainingSettings(augmentation: a).validate() }
            #expect("\(error!)".contains(text), "\(error!)")
        }
    }

    @Test("training with augmentation: a resumed run equals the uninterrupted one bit for bit, and differs from a run without it")
    func resumeIsExact() throws {
        let data = try RecipeTests.slopes(count: 24, lengths: 12...30)
        var settings = TrainingSettings(mode: .ternary, patchLength: 2, width: 8, layerCount: 1, headCount: 2, dropout: 0,
                                        augmentation: Augmentation(crop: 0.3, scale: 0.2, jitter: 0.05), epochs: 3, batchSize: 8,
                                        seed: 7, ensembleSize: 1)
        let backend = try KernelsBackend()
        let straight = try ClassifierTraining(settings: settings, train: data)
        try straight.run(train: data, backend: backend)

        let path = temporaryPath("augmented-resume.safetensors")
        let first = try ClassifierTraining(settings: settings, train: data)
        var steps = 0
        #expect(try first.run(train: data, backend: backend, checkpointPath: path, progress: { _ in steps += 1 },
                              shouldStop: { steps == 4 }) == .interrupted)
        let resumed = try ClassifierTraining(resumingFrom: path)
        #expect(resumed.settings.augmentation == settings.augmentation)
        #expect(try resumed.run(train: data, backend: backend, checkpointPath: path) == .finished)
        for (a, b) in zip(resumed.model.parameters, straight.model.parameters) { #expect(a.value == b.value, "\(a.name)") }

        settings.augmentation = Augmentation()
        let plain = try ClassifierTraining(settings: settings, train: data)
        try plain.run(train: data, backend: backend)
        #expect(zip(plain.model.parameters, straight.model.parameters).contains { $0.value != $1.value })
    }
}

/// Checkpoint selection: a run ends with the weights of its best epoch on held-out data.
@Suite("Checkpoint selection")
struct CheckpointSelectionTests {
    @Test("a selecting run ends with the weights of its epoch of lowest selection loss; training itself is unchanged; a resumed run ends the same")
    func selection() throws {
        let train = try RecipeTests.slopes(count: 16, lengths: 8...20, seed: 3)
        let held = try RecipeTests.slopes(count: 10, lengths: 8...20, seed: 4)
        let settings = TrainingSettings(mode: .int4, patchLength: 2, width: 8, layerCount: 1, headCount: 2, dropout: 0,
                                        epochs: 6, batchSize: 4, learningRate: 1e-2, seed: 5, ensembleSize: 1)
        let backend = try KernelsBackend()
        let path = temporaryPath("selected.safetensors")
        let selecting = try ClassifierTraining(settings: settings, train: train)
        #expect(try selecting.run(train: train, backend: backend, selection: CheckpointSelection(data: held, path: path)) == .finished)
        let losses = selecting.history.map { $0.selectionLoss! }
        let chosen = try #require(selecting.selectedEpoch)
        #expect(losses[chosen - 1] == losses.min()!)
        #expect(losses.count == 6 && Set(losses).count > 1, "\(losses)")

        // The same run scored on the held-out data without selecting: the same losses, epoch by epoch.
        let plain = try ClassifierTraining(settings: settings, train: train)
        try plain.run(train: train, evaluation: held, backend: backend)
        #expect(plain.history.map { $0.evaluationLoss! } == losses)
        #expect(plain.selectedEpoch == nil)
        // The weights it ends with are the ones the run had after the chosen epoch.
        let perEpoch = plain.stepsPerEpoch(train)
        let stopped = try ClassifierTraining(settings: settings, train: train)
        var steps = 0
        try stopped.run(train: train, backend: backend, progress: { _ in steps += 1 }, shouldStop: { steps == chosen * perEpoch })
        #expect(stopped.optimizer.step == chosen * perEpoch)
        for (a, b) in zip(selecting.model.parameters, stopped.model.parameters) { #expect(a.value == b.value, "\(a.name)") }
        if chosen < 6 {
            #expect(zip(selecting.model.parameters, plain.model.parameters).contains { $0.value != $1.value })
        }

        // Interrupted and resumed: the same end.
        let checkpoint = temporaryPath("selecting-checkpoint.safetensors"), path2 = temporaryPath("selected-2.safetensors")
        let first = try ClassifierTraining(settings: settings, train: train)
        steps = 0
        #expect(try first.run(train: train, backend: backend, checkpointPath: checkpoint, selection: CheckpointSelection(data: held, path: path2),
                              progress: { _ in steps += 1 }, shouldStop: { steps == perEpoch * 3 + 1 }) == .interrupted)
        let resumed = try ClassifierTraining(resumingFrom: checkpoint)
        #expect(try resumed.run(train: train, backend: backend, checkpointPath: checkpoint,
                                selection: CheckpointSelection(data: held, path: path2)) == .finished)
        #expect(resumed.selectedEpoch == chosen)
        for (a, b) in zip(resumed.model.parameters, selecting.model.parameters) { #expect(a.value == b.value, "\(a.name)") }
    }
}
