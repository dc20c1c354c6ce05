import Foundation
import LowBit
import Testing

@Suite("Fine-tuning from float and distillation")
struct FloatStartTests {
    @Test("fine-tuning from float starts at the float model's weights, keeps its accuracy and resumes from its own checkpoint",
          arguments: [QuantizationMode.int4, .ternary, .binary])
    func fineTuningFromFloat(mode: QuantizationMode) throws {
        let (train, test) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: TrainingFixtures.tiny(nil), train: train, windowSize: 29)
        try float.run(train: train, backend: backend)
        let settings = float.settings.fineTuning(mode)
        #expect(settings.mode == mode && settings.startsFromFloat)
        // int8 and int4 start almost where float ended: a gentler learning rate
        let fraction: Float = mode == .int4 ? 8 : 2
        #expect(settings.epochs == 3 && settings.learningRate == float.settings.learningRate / fraction && settings.warmupEpochs == 1)
        #expect(settings.width == 16 && settings.dropout == 0.1 && settings.seed == 3)

        let run = try ClassifierTraining(settings: settings, train: train, windowSize: 29, startingFrom: float)
        for (a, b) in zip(run.model.parameters, float.model.parameters) { #expect(a.name == b.name && a.value == b.value, "\(a.name)") }
        #expect(run.model.quantizedLayers.count == 4)
        let path = temporaryPath("fine-tune-\(mode.rawValue).safetensors")
        try run.run(train: train, backend: backend, checkpointPath: path)
        #expect(zip(run.model.parameters, float.model.parameters).contains { $0.value != $1.value })
        let accuracy = { (model: SequenceClassifier, info: ModelInfo) in
            try PackedClassifier(model, info: info, backend: backend).evaluate(on: test).accuracy
        }
        let (floatAccuracy, tunedAccuracy) = (try accuracy(float.model, float.info), try accuracy(run.model, run.info))
        #expect(tunedAccuracy > 0.6 && tunedAccuracy > floatAccuracy - 0.1, "\(tunedAccuracy) after fine-tuning, \(floatAccuracy) float")
        let resumed = try ClassifierTraining(resumingFrom: path)
        #expect(resumed.settings == settings)
        #expect(resumed.isFinished(train))
    }

    @Test("starting from float refuses a missing, unfinished, quantized or differently shaped model")
    func fineTuningRefusals() throws {
        let (train, _) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: TrainingFixtures.tiny(nil, epochs: 1), train: train, windowSize: 29)
        let tuned = float.settings.fineTuning(.ternary)
        expectError("none was given") { _ = try ClassifierTraining(settings: tuned, train: train) }
        expectError("has not finished") { _ = try ClassifierTraining(settings: tuned, train: train, windowSize: 29, startingFrom: float) }
        try float.run(train: train, backend: backend)
        expectError("starts from scratch") { _ = try ClassifierTraining(settings: TrainingFixtures.tiny(.ternary), train: train, startingFrom: float) }
        var wide = tuned
        wide.width = 32
        expectError("hidden size 16") { _ = try ClassifierTraining(settings: wide, train: train, windowSize: 29, startingFrom: float) }
        var ordered = tuned
        ordered.usesPositionalEncoding = true
        expectError("trained without a positional encoding, this run is with one") {
            _ = try ClassifierTraining(settings: ordered, train: train, windowSize: 29, startingFrom: float)
        }
        expectError("up to 29 steps") { _ = try ClassifierTraining(settings: tuned, train: train, windowSize: 40, startingFrom: float) }
        let other = train.subset(Array(stride(from: 0, to: train.count, by: 2)))
        expectError("other data") { _ = try ClassifierTraining(settings: tuned, train: other, windowSize: 29, startingFrom: float) }
        let quantized = try ClassifierTraining(settings: TrainingFixtures.tiny(.int8, epochs: 1), train: train, windowSize: 29)
        try quantized.run(train: train, backend: backend)
        expectError("not float") { _ = try ClassifierTraining(settings: tuned, train: train, windowSize: 29, startingFrom: quantized) }
        var floatFromFloat = tuned
        floatFromFloat.mode = nil
        expectError("needs a quantized mode") { _ = try ClassifierTraining(settings: floatFromFloat, train: train, startingFrom: float) }
    }

    @Test("distillation teaches the float model's classes: with weight 1, a ternary student learns them from scrambled labels")
    func distillationTeaches() throws {
        let (train, test) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: TrainingFixtures.tiny(nil), train: train, windowSize: 29)
        try float.run(train: train, backend: backend)
        var scrambled = train
        scrambled.labels = train.labels.map { ($0 + 1) % train.classNames.count }  // every label wrong
        #expect(TrainingSettings(mode: .ternary).distillation == nil, "the labels alone by default")
        #expect(TrainingSettings().usesPositionalEncoding, "positions on by default")
        #expect(Distillation() == Distillation(weight: 0.5, temperature: 2))
        var settings = TrainingFixtures.tiny(.ternary)
        settings.distillation = Distillation(weight: 1, temperature: 2)
        let student = try ClassifierTraining(settings: settings, train: scrambled, windowSize: 29)
        try student.run(train: scrambled, teacher: float, backend: backend)
        let accuracy = { (model: SequenceClassifier, info: ModelInfo) in
            try PackedClassifier(model, info: info, backend: backend).evaluate(on: test).accuracy
        }
        let (floatAccuracy, studentAccuracy) = (try accuracy(float.model, float.info), try accuracy(student.model, student.info))
        #expect(studentAccuracy > 0.6 && studentAccuracy > floatAccuracy - 0.15, "student \(studentAccuracy), teacher \(floatAccuracy)")
        // The reported loss is the cross-entropy against the (scrambled) labels: high, since the student follows the teacher.
        #expect(student.history.last!.trainLoss > 2, "\(student.history.last!.trainLoss)")

        // Weight ½ from the true labels: the run differs from one without a teacher and still learns.
        settings.distillation = Distillation()
        let half = try ClassifierTraining(settings: settings, train: train, windowSize: 29)
        try half.run(train: train, teacher: float, backend: backend)
        let alone = try ClassifierTraining(settings: TrainingFixtures.tiny(.ternary), train: train, windowSize: 29)
        try alone.run(train: train, backend: backend)
        #expect(zip(half.model.parameters, alone.model.parameters).contains { $0.value != $1.value })
        #expect(try accuracy(half.model, half.info) > 0.6)
    }

    @Test("a distilled run interrupted and resumed equals the uninterrupted run, bit for bit")
    func distilledResumeIsExact() throws {
        let (full, _) = try TrainingFixtures.data.get()
        let train = full.subset(Array(stride(from: 0, to: full.count, by: 3)))  // 90 series: 6 steps per epoch
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: TrainingFixtures.tiny(nil, epochs: 2, seed: 11), train: train)
        try float.run(train: train, backend: backend)
        var settings = TrainingFixtures.tiny(.binary, epochs: 3, seed: 11)
        settings.distillation = Distillation()
        let straight = try ClassifierTraining(settings: settings, train: train)
        try straight.run(train: train, teacher: float, backend: backend)

        let path = temporaryPath("distilled-resume.safetensors")
        let first = try ClassifierTraining(settings: settings, train: train)
        var steps = 0
        #expect(try first.run(train: train, teacher: float, backend: backend, checkpointPath: path,
                              progress: { _ in steps += 1 }, shouldStop: { steps == 8 }) == .interrupted)
        let resumed = try ClassifierTraining(resumingFrom: path)
        #expect(resumed.settings == settings)
        #expect(try resumed.run(train: train, teacher: float, backend: backend) == .finished)
        for (a, b) in zip(resumed.model.parameters, straight.model.parameters) { #expect(a.value == b.value, "\(a.name)") }
    }

    @Test("distillation refuses a missing, unneeded, unfinished, quantized or foreign teacher, and bad settings")
    func distillationRefusals() throws {
        let (train, _) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        var settings = TrainingFixtures.tiny(.ternary, epochs: 1)
        settings.distillation = Distillation()
        let float = try ClassifierTraining(settings: TrainingFixtures.tiny(nil, epochs: 1), train: train, windowSize: 29)
        let student = { try ClassifierTraining(settings: settings, train: train, windowSize: 29) }
        expectError("none was given") { try student().run(train: train, backend: backend) }
        expectError("has not finished") { try student().run(train: train, teacher: float, backend: backend) }
        try float.run(train: train, backend: backend)
        expectError("labels alone, but a teacher was given") {
            try ClassifierTraining(settings: TrainingFixtures.tiny(.ternary, epochs: 1), train: train, windowSize: 29).run(train: train, teacher: float, backend: backend)
        }
        let quantized = try ClassifierTraining(settings: TrainingFixtures.tiny(.int8, epochs: 1), train: train, windowSize: 29)
        try quantized.run(train: train, backend: backend)
        expectError("not float") { try student().run(train: train, teacher: quantized, backend: backend) }
        let other = train.subset(Array(stride(from: 0, to: train.count, by: 2)))
        expectError("other data") {
            try ClassifierTraining(settings: settings, train: other, windowSize: 29).run(train: other, teacher: float, backend: backend)
        }
        expectError("up to 29 steps") {
            try ClassifierTraining(settings: settings, train: train, windowSize: 40).run(train: train, teacher: float, backend: backend)
        }
        var floatStudent = settings
        floatStudent.mode = nil
        expectError("needs a quantized mode") { _ = try ClassifierTraining(settings: floatStudent, train: train) }
        for (bad, text) in [(Distillation(weight: 0), "weight must be in (0, 1]"), (Distillation(weight: 1.5), "weight must be in (0, 1]"),
                            (Distillation(temperature: 0), "temperature"), (Distillation(temperature: .infinity), "temperature")] {
            var s = settings
            s.distillation = bad
            expectError(text) { _ = try ClassifierTraining(settings: s, train: train) }
        }
    }
}
