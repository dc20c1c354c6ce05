import Foundation
import LowBit
import Testing

/// The data and model size the training tests share.
enum TrainingFixtures {
    static let data = Result { try Datasets.japaneseVowels() }
    /// A model small and short enough for tests of what a run does. Without positions: in a
    /// model this small they slow the first epochs down (they pay off over the full run).
    static func tiny(_ mode: QuantizationMode?, epochs: Int = 6, seed: UInt64 = 3, positions: Bool = false) -> TrainingSettings {
        TrainingSettings(mode: mode, width: 16, layerCount: 1, headCount: 2, usesPositionalEncoding: positions,
                         dropout: 0.1, epochs: epochs, seed: seed)
    }
}

@Suite("Training runs")
struct TrainingRunTests {
    @Test("a short run on JapaneseVowels beats chance (1/9) by a wide margin, float and quantized, with and without positions",
          arguments: [nil, QuantizationMode.ternary, .binary], [false, true])
    func shortRunLearns(mode: QuantizationMode?, positions: Bool) throws {
        let (train, test) = try TrainingFixtures.data.get()
        let epochs = positions ? 10 : 6
        let run = try ClassifierTraining(settings: TrainingFixtures.tiny(mode, epochs: epochs, positions: positions), train: train, windowSize: 29)
        #expect(run.model.configuration.usesPositionalEncoding == positions)
        #expect(try run.run(train: train, backend: KernelsBackend()) == .finished)
        #expect(run.history.count == epochs)
        #expect(run.history.last!.trainLoss < run.history.first!.trainLoss * 0.6)
        let packed = try PackedClassifier(run.model, info: run.info, backend: KernelsBackend())
        let accuracy = try packed.evaluate(on: test).accuracy
        #expect(accuracy > 0.6, "test accuracy \(accuracy)")
    }

    @Test("settings saved before fine-tuning, distillation, positions, ensembles, patches and augmentation existed decode as starting from scratch without a teacher or positions, one model, one step per token, no augmentation; new ones round-trip")
    func settingsDecoding() throws {
        var settings = TrainingFixtures.tiny(.binary).fineTuning(.int4, quantizedBackward: true)
        settings.distillation = Distillation(weight: 0.25, temperature: 3)
        settings.usesPositionalEncoding = true
        settings.patchLength = 3
        settings.augmentation = Augmentation(crop: 0.1, scale: 0.2, jitter: 0.05)
        let data = try JSONEncoder().encode(settings)
        #expect(try JSONDecoder().decode(TrainingSettings.self, from: data) == settings)
        var old = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(old.removeValue(forKey: "startsFromFloat") as? Bool == true)
        #expect(old.removeValue(forKey: "distillation") != nil)
        #expect(old.removeValue(forKey: "positionalEncoding") as? Bool == true)
        #expect(old.removeValue(forKey: "ensembleSize") as? Int == 2)
        #expect(old.removeValue(forKey: "patchLength") as? Int == 3)
        #expect(old.removeValue(forKey: "augmentation") != nil)
        let decoded = try JSONDecoder().decode(TrainingSettings.self, from: try JSONSerialization.data(withJSONObject: old))
        var want = settings
        want.startsFromFloat = false
        want.distillation = nil
        want.usesPositionalEncoding = false
        want.ensembleSize = 1
        want.patchLength = 1
        want.augmentation = Augmentation()
        #expect(decoded == want)
        old.removeValue(forKey: "epochs")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(TrainingSettings.self, from: try JSONSerialization.data(withJSONObject: old)) }
    }

    @Test("a run interrupted mid-epoch and resumed from its checkpoint equals the uninterrupted run, bit for bit")
    func resumeIsExact() throws {
        let (full, _) = try TrainingFixtures.data.get()
        let train = full.subset(Array(stride(from: 0, to: full.count, by: 3)))  // 90 series: 6 steps per epoch
        let settings = TrainingFixtures.tiny(.ternary, epochs: 3, seed: 11)
        let backend = try KernelsBackend()
        let straight = try ClassifierTraining(settings: settings, train: train)
        try straight.run(train: train, evaluation: train, backend: backend)

        let path = temporaryPath("resume.safetensors")
        let first = try ClassifierTraining(settings: settings, train: train)
        var steps = 0
        let outcome = try first.run(train: train, evaluation: train, backend: backend, checkpointPath: path,
                                    progress: { _ in steps += 1 }, shouldStop: { steps == 8 })
        #expect(outcome == .interrupted)
        #expect(first.optimizer.step == 8)
        #expect(first.history.count == 1)

        let resumed = try ClassifierTraining(resumingFrom: path)
        #expect(resumed.optimizer.step == 8)
        #expect(resumed.settings == settings)
        #expect(try resumed.run(train: train, evaluation: train, backend: backend, checkpointPath: path) == .finished)
        #expect(resumed.isFinished(train))
        for (a, b) in zip(resumed.model.parameters, straight.model.parameters) { #expect(a.value == b.value, "\(a.name)") }
        let strip = { (h: [EpochRecord]) in h.map { ($0.epoch, $0.step, $0.trainLoss, $0.trainAccuracy, $0.evaluationAccuracy) } }
        #expect(strip(resumed.history).elementsEqual(strip(straight.history)) { $0 == $1 })
        // Resuming a finished run does nothing.
        let again = try ClassifierTraining(resumingFrom: path)
        #expect(try again.run(train: train, backend: backend) == .finished)
        #expect(again.optimizer.step == resumed.optimizer.step)
    }

    @Test("the learning rate warms up linearly, peaks, then decays by a cosine to the final fraction")
    func schedule() throws {
        let (train, _) = try TrainingFixtures.data.get()
        var s = TrainingFixtures.tiny(nil, epochs: 10)
        s.warmupEpochs = 2
        s.learningRate = 1e-2
        s.finalLearningRateFraction = 0.1
        let run = try ClassifierTraining(settings: s, train: train)
        let per = run.stepsPerEpoch(train), total = 10 * per
        let rates = (0..<total).map { run.learningRate(atStep: $0, stepsPerEpoch: per) }
        #expect(zip(rates, rates.dropFirst()).prefix(2 * per - 1).allSatisfy { $0 < $1 })
        #expect(abs(rates.max()! - 1e-2) < 1e-7)
        #expect(zip(rates, rates.dropFirst()).dropFirst(2 * per).allSatisfy { $0 >= $1 })
        #expect(abs(rates.last! - 1e-3) < 1e-7)
    }

    @Test("bad settings are errors naming the setting", arguments: [
        (TrainingSettings(epochs: 0), "epochs"),
        (TrainingSettings(batchSize: 0), "batch size"),
        (TrainingSettings(learningRate: .nan), "learning rate"),
        (TrainingSettings(mode: nil, quantizedBackward: true), "QT"),
        (TrainingSettings(width: 30, headCount: 4), "divisible"),
        (TrainingSettings(dropout: 1), "dropout"),
    ])
    func badSettings(settings: TrainingSettings, text: String) throws {
        let (train, _) = try TrainingFixtures.data.get()
        expectError(text) { _ = try ClassifierTraining(settings: settings, train: train) }
        expectError(text) { try settings.validate() }   // before any data is read
    }
}
