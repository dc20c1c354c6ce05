import Foundation
import LowBit
import Testing

@Suite("Training runs")
struct TrainingRunTests {
    static let data = Result { try Datasets.japaneseVowels() }
    /// A model small and short enough for tests of what a run does. Without positions: in a
    /// model this small they slow the first epochs down (they pay off over the full run).
    static func tiny(_ mode: QuantizationMode?, epochs: Int = 6, seed: UInt64 = 3, positions: Bool = false) -> TrainingSettings {
        TrainingSettings(mode: mode, hiddenSize: 16, numLayers: 1, numHeads: 2, positionalEncoding: positions,
                         dropout: 0.1, epochs: epochs, seed: seed)
    }

    @Test("a short run on JapaneseVowels beats chance (1/9) by a wide margin, float and quantized, with and without positions",
          arguments: [nil, QuantizationMode.ternary, .binary], [false, true])
    func shortRunLearns(mode: QuantizationMode?, positions: Bool) throws {
        let (train, test) = try Self.data.get()
        let epochs = positions ? 10 : 6
        let run = try ClassifierTraining(settings: Self.tiny(mode, epochs: epochs, positions: positions), train: train, windowSize: 29)
        #expect(run.model.options.positionalEncoding == positions)
        #expect(try run.run(train: train, backend: KernelsBackend()) == .finished)
        #expect(run.history.count == epochs)
        #expect(run.history.last!.trainLoss < run.history.first!.trainLoss * 0.6)
        let packed = try PackedClassifier(run.model, backend: KernelsBackend())
        let accuracy = try ClassifierTraining.evaluate(test, info: run.info, windowSize: 29) { try packed.predict($0) }.accuracy
        #expect(accuracy > 0.6, "test accuracy \(accuracy)")
    }

    @Test("fine-tuning from float starts at the float model's weights, keeps its accuracy and resumes from its own checkpoint",
          arguments: [QuantizationMode.int4, .ternary, .binary])
    func fineTuningFromFloat(mode: QuantizationMode) throws {
        let (train, test) = try Self.data.get()
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: Self.tiny(nil), train: train, windowSize: 29)
        try float.run(train: train, backend: backend)
        let settings = float.settings.fineTuning(mode)
        #expect(settings.mode == mode && settings.startsFromFloat)
        // int8 and int4 start almost where float ended: a gentler learning rate
        let fraction: Float = mode == .int4 ? 8 : 2
        #expect(settings.epochs == 3 && settings.learningRate == float.settings.learningRate / fraction && settings.warmupEpochs == 1)
        #expect(settings.hiddenSize == 16 && settings.dropout == 0.1 && settings.seed == 3)

        let run = try ClassifierTraining(settings: settings, train: train, windowSize: 29, startingFrom: float)
        for (a, b) in zip(run.model.parameters, float.model.parameters) { #expect(a.name == b.name && a.value == b.value, "\(a.name)") }
        #expect(run.model.quantizedLayers.count == 4)
        let path = temporaryPath("fine-tune-\(mode.rawValue).safetensors")
        try run.run(train: train, backend: backend, checkpointPath: path)
        #expect(zip(run.model.parameters, float.model.parameters).contains { $0.value != $1.value })
        let accuracy = { (model: SequenceClassifier, info: ModelInfo) in
            let packed = try PackedClassifier(model, backend: backend)
            return try ClassifierTraining.evaluate(test, info: info, windowSize: 29) { try packed.predict($0) }.accuracy
        }
        let (floatAccuracy, tunedAccuracy) = (try accuracy(float.model, float.info), try accuracy(run.model, run.info))
        #expect(tunedAccuracy > 0.6 && tunedAccuracy > floatAccuracy - 0.1, "\(tunedAccuracy) after fine-tuning, \(floatAccuracy) float")
        let resumed = try ClassifierTraining(resumingFrom: path)
        #expect(resumed.settings == settings)
        #expect(resumed.isFinished(train))
    }

    @Test("starting from float refuses a missing, unfinished, quantized or differently shaped model")
    func fineTuningRefusals() throws {
        let (train, _) = try Self.data.get()
        let backend = try KernelsBackend()
        func expectError(_ text: String, _ body: () throws -> Void) {
            let error = #expect(throws: LowBitError.self) { try body() }
            #expect(error.map { "\($0)" }?.contains(text) == true, "\(String(describing: error)) lacks '\(text)'")
        }
        let float = try ClassifierTraining(settings: Self.tiny(nil, epochs: 1), train: train, windowSize: 29)
        let tuned = float.settings.fineTuning(.ternary)
        expectError("none was given") { _ = try ClassifierTraining(settings: tuned, train: train) }
        expectError("has not finished") { _ = try ClassifierTraining(settings: tuned, train: train, windowSize: 29, startingFrom: float) }
        try float.run(train: train, backend: backend)
        expectError("starts from scratch") { _ = try ClassifierTraining(settings: Self.tiny(.ternary), train: train, startingFrom: float) }
        var wide = tuned
        wide.hiddenSize = 32
        expectError("hidden size 16") { _ = try ClassifierTraining(settings: wide, train: train, windowSize: 29, startingFrom: float) }
        var ordered = tuned
        ordered.positionalEncoding = true
        expectError("trained without a positional encoding, this run is with one") {
            _ = try ClassifierTraining(settings: ordered, train: train, windowSize: 29, startingFrom: float)
        }
        expectError("up to 29 steps") { _ = try ClassifierTraining(settings: tuned, train: train, windowSize: 40, startingFrom: float) }
        let other = train.subset(Array(stride(from: 0, to: train.count, by: 2)))
        expectError("other data") { _ = try ClassifierTraining(settings: tuned, train: other, windowSize: 29, startingFrom: float) }
        let quantized = try ClassifierTraining(settings: Self.tiny(.int8, epochs: 1), train: train, windowSize: 29)
        try quantized.run(train: train, backend: backend)
        expectError("not float") { _ = try ClassifierTraining(settings: tuned, train: train, windowSize: 29, startingFrom: quantized) }
        var floatFromFloat = tuned
        floatFromFloat.mode = nil
        expectError("needs a quantized mode") { _ = try ClassifierTraining(settings: floatFromFloat, train: train, startingFrom: float) }
    }

    @Test("distillation teaches the float model's classes: with weight 1, a ternary student learns them from scrambled labels")
    func distillationTeaches() throws {
        let (train, test) = try Self.data.get()
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: Self.tiny(nil), train: train, windowSize: 29)
        try float.run(train: train, backend: backend)
        var scrambled = train
        scrambled.labels = train.labels.map { ($0 + 1) % train.classNames.count }  // every label wrong
        #expect(TrainingSettings(mode: .ternary).distillation == nil, "the labels alone by default")
        #expect(TrainingSettings().positionalEncoding, "positions on by default")
        #expect(Distillation() == Distillation(weight: 0.5, temperature: 2))
        var settings = Self.tiny(.ternary)
        settings.distillation = Distillation(weight: 1, temperature: 2)
        let student = try ClassifierTraining(settings: settings, train: scrambled, windowSize: 29)
        try student.run(train: scrambled, teacher: float, backend: backend)
        let accuracy = { (model: SequenceClassifier, info: ModelInfo) in
            let packed = try PackedClassifier(model, backend: backend)
            return try ClassifierTraining.evaluate(test, info: info, windowSize: 29) { try packed.predict($0) }.accuracy
        }
        let (floatAccuracy, studentAccuracy) = (try accuracy(float.model, float.info), try accuracy(student.model, student.info))
        #expect(studentAccuracy > 0.6 && studentAccuracy > floatAccuracy - 0.15, "student \(studentAccuracy), teacher \(floatAccuracy)")
        // The reported loss is the cross-entropy against the (scrambled) labels: high, since the student follows the teacher.
        #expect(student.history.last!.trainLoss > 2, "\(student.history.last!.trainLoss)")

        // Weight ½ from the true labels: the run differs from one without a teacher and still learns.
        settings.distillation = Distillation()
        let half = try ClassifierTraining(settings: settings, train: train, windowSize: 29)
        try half.run(train: train, teacher: float, backend: backend)
        let alone = try ClassifierTraining(settings: Self.tiny(.ternary), train: train, windowSize: 29)
        try alone.run(train: train, backend: backend)
        #expect(zip(half.model.parameters, alone.model.parameters).contains { $0.value != $1.value })
        #expect(try accuracy(half.model, half.info) > 0.6)
    }

    @Test("a distilled run interrupted and resumed equals the uninterrupted run, bit for bit")
    func distilledResumeIsExact() throws {
        let (full, _) = try Self.data.get()
        let train = full.subset(Array(stride(from: 0, to: full.count, by: 3)))  // 90 series: 6 steps per epoch
        let backend = try KernelsBackend()
        let float = try ClassifierTraining(settings: Self.tiny(nil, epochs: 2, seed: 11), train: train)
        try float.run(train: train, backend: backend)
        var settings = Self.tiny(.binary, epochs: 3, seed: 11)
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
        let (train, _) = try Self.data.get()
        let backend = try KernelsBackend()
        func expectError(_ text: String, _ body: () throws -> Void) {
            let error = #expect(throws: LowBitError.self) { try body() }
            #expect(error.map { "\($0)" }?.contains(text) == true, "\(String(describing: error)) lacks '\(text)'")
        }
        var settings = Self.tiny(.ternary, epochs: 1)
        settings.distillation = Distillation()
        let float = try ClassifierTraining(settings: Self.tiny(nil, epochs: 1), train: train, windowSize: 29)
        let student = { try ClassifierTraining(settings: settings, train: train, windowSize: 29) }
        expectError("none was given") { try student().run(train: train, backend: backend) }
        expectError("has not finished") { try student().run(train: train, teacher: float, backend: backend) }
        try float.run(train: train, backend: backend)
        expectError("labels alone, but a teacher was given") {
            try ClassifierTraining(settings: Self.tiny(.ternary, epochs: 1), train: train, windowSize: 29).run(train: train, teacher: float, backend: backend)
        }
        let quantized = try ClassifierTraining(settings: Self.tiny(.int8, epochs: 1), train: train, windowSize: 29)
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

    @Test("settings saved before fine-tuning, distillation, positions, ensembles, patches and augmentation existed decode as starting from scratch without a teacher or positions, one model, one step per token, no augmentation; new ones round-trip")
    func settingsDecoding() throws {
        var settings = Self.tiny(.binary).fineTuning(.int4, quantizedBackward: true)
        settings.distillation = Distillation(weight: 0.25, temperature: 3)
        settings.positionalEncoding = true
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
        want.positionalEncoding = false
        want.ensembleSize = 1
        want.patchLength = 1
        want.augmentation = Augmentation()
        #expect(decoded == want)
        old.removeValue(forKey: "epochs")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(TrainingSettings.self, from: try JSONSerialization.data(withJSONObject: old)) }
    }

    @Test("a run interrupted mid-epoch and resumed from its checkpoint equals the uninterrupted run, bit for bit")
    func resumeIsExact() throws {
        let (full, _) = try Self.data.get()
        let train = full.subset(Array(stride(from: 0, to: full.count, by: 3)))  // 90 series: 6 steps per epoch
        let settings = Self.tiny(.ternary, epochs: 3, seed: 11)
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

    @Test("a saved model evaluates to the same accuracy after loading: packed file and checkpoint")
    func savedModelEvaluatesTheSame() throws {
        let (train, test) = try Self.data.get()
        let backend = try KernelsBackend()
        for mode in [nil, QuantizationMode.int8, .int4, .ternary, .binary] {
            let run = try ClassifierTraining(settings: Self.tiny(mode, epochs: 2), train: train, windowSize: 29)
            try run.run(train: train, backend: backend)
            let packed = try PackedClassifier(run.model, backend: backend)
            let packedPath = temporaryPath("model-\(mode?.rawValue ?? "float").safetensors")
            try packed.save(to: packedPath, info: run.info)
            let checkpointPath = temporaryPath("checkpoint-\(mode?.rawValue ?? "float").safetensors")
            try run.save(to: checkpointPath)

            let (loaded, info) = try PackedClassifier.load(from: packedPath, backend: backend)
            #expect(info == run.info)
            let want = try ClassifierTraining.evaluate(test, info: run.info, windowSize: 29) { try packed.predict($0) }
            let got = try ClassifierTraining.evaluate(test, info: info, windowSize: 29) { try loaded.predict($0) }
            #expect(got == want, "\(String(describing: mode))")
            let batch = try test.batch(Array(0..<20), standardization: info.standardization).batch
            #expect(try loaded.logits(batch) == packed.logits(batch))
            #expect(loaded.weightBytes == packed.weightBytes)
            // The file holds the packed weights, not the latent float ones.
            let size = try FileManager.default.attributesOfItem(atPath: packedPath)[.size] as! Int
            #expect(size < packed.weightBytes + 16_384, "\(size) bytes for \(packed.weightBytes) bytes of weights")

            let restored = try ClassifierTraining(resumingFrom: checkpointPath)
            let fromCheckpoint = try PackedClassifier(restored.model, backend: backend)
            #expect(try ClassifierTraining.evaluate(test, info: restored.info, windowSize: 29) { try fromCheckpoint.predict($0) } == want)
        }
    }

    @Test("calibration freezes static ranges that survive saving and loading")
    func calibrationRoundTrip() throws {
        let (train, test) = try Self.data.get()
        let backend = try KernelsBackend()
        let run = try ClassifierTraining(settings: Self.tiny(.int8, epochs: 2), train: train, windowSize: 29)
        try run.run(train: train, backend: backend)
        let packed = try PackedClassifier(run.model, backend: backend)
        #expect(packed.staticRanges.isEmpty)
        #expect(throws: LowBitError.self) { try packed.calibrate([]) }
        try packed.calibrate(try train.batches(size: 64, standardization: run.standardization).map(\.batch))
        #expect(packed.staticRanges.count == 4)
        #expect(packed.staticRanges.allSatisfy { $0.absmax > 0 && $0.absmax.isFinite })
        let path = temporaryPath("static.safetensors")
        try packed.save(to: path, info: run.info)
        let (loaded, _) = try PackedClassifier.load(from: path, backend: backend)
        #expect(loaded.staticRanges.map(\.absmax) == packed.staticRanges.map(\.absmax))
        let batch = try test.batch(Array(0..<30), standardization: run.standardization).batch
        #expect(try loaded.logits(batch) == packed.logits(batch))
    }

    @Test("damaged packed model files are errors naming the problem")
    func damagedPackedFile() throws {
        let (train, _) = try Self.data.get()
        let backend = try KernelsBackend()
        let run = try ClassifierTraining(settings: Self.tiny(.ternary, epochs: 1), train: train)
        let path = temporaryPath("damaged.safetensors")
        try PackedClassifier(run.model, backend: backend).save(to: path, info: run.info)
        var (tensors, metadata) = try SafeTensors.read(path)

        func expectError(_ t: [String: SafeTensors.Entry], _ m: [String: String], _ text: String) throws {
            let p = temporaryPath("damaged-variant.safetensors")
            try SafeTensors.write(t, metadata: m, to: p)
            let error = #expect(throws: LowBitError.self) { try PackedClassifier.load(from: p, backend: backend) }
            #expect(error.map { "\($0)" }?.contains(text) == true, "\(String(describing: error)) lacks '\(text)'")
        }
        let name = "blocks.0.ffn.up.weight.packed"
        var codes = tensors[name]!
        codes.data[0] = 0xFF  // ternary code 3: not a ternary value
        try expectError(tensors.merging([name: codes]) { $1 }, metadata, "outside the ternary range")
        try expectError(tensors.filter { $0.key != name }, metadata, "missing tensor '\(name)'")
        var short = tensors[name]!
        short.shape = [short.shape[0] - 64]
        short.data.removeLast(64)
        try expectError(tensors.merging([name: short]) { $1 }, metadata, "has shape")
        try expectError(tensors, metadata.merging(["lowbit.format": "lowbit-checkpoint-1"]) { $1 }, "not a LowBit packed model")
        try expectError(tensors, metadata.filter { $0.key != "lowbit.data" }, "no readable class names")
        tensors["blocks.0.ffn.up.weight.scales"] = SafeTensors.Entry(floats: [-1], shape: [1])
        try expectError(tensors, metadata, "negative or non-finite scale")
        metadata["lowbit.classes"] = "3"
        try expectError(tensors, metadata, "classes")
    }

    @Test("an ensemble averages its models' probabilities, survives saving and loading, calibrates each model, and a damaged one is an error naming the model")
    func ensemble() throws {
        let (train, test) = try Self.data.get()
        let backend = try KernelsBackend()
        let settings = Self.tiny(.int4, epochs: 2)
        #expect(settings.member(0) == settings && settings.member(1).seed != settings.seed && settings.member(2).seed != settings.member(1).seed)
        let runs = try (0..<3).map { k in
            let run = try ClassifierTraining(settings: settings.member(k), train: train, windowSize: 29)
            try run.run(train: train, backend: backend)
            return run
        }
        #expect(runs[0].model.parameters[0].value != runs[1].model.parameters[0].value, "each model from its own seed")
        let ensemble = try PackedClassifier(ensemble: runs.map(\.model), backend: backend)
        let singles = try runs.map { try PackedClassifier($0.model, backend: backend) }
        #expect(ensemble.ensembleSize == 3 && singles[0].ensembleSize == 1)
        #expect(ensemble.weightBytes == singles.map(\.weightBytes).reduce(0, +))

        // log of the mean of the three softmaxes, computed here from the models alone
        let batch = try test.batch(Array(0..<40), standardization: runs[0].standardization).batch
        let logits = try ensemble.logits(batch)
        let each = try singles.map { try $0.logits(batch) }
        #expect(logits.shape == [40, 9])
        var disagreements = 0
        for i in 0..<40 {
            var mean = [Double](repeating: 0, count: 9)
            for l in each {
                let row = (0..<9).map { Double(l.scalars[i * 9 + $0]) }
                let z = row.map { exp($0 - row.max()!) }.reduce(0, +)
                for j in 0..<9 { mean[j] += exp(row[j] - row.max()!) / z / 3 }
            }
            for j in 0..<9 { #expect(abs(Double(logits.scalars[i * 9 + j]) - log(mean[j])) < 1e-4 * max(1, abs(log(mean[j])))) }
            let votes = each.map { l in (0..<9).max { l.scalars[i * 9 + $0] < l.scalars[i * 9 + $1] }! }
            if Set(votes).count > 1 { disagreements += 1 }
        }
        #expect(disagreements > 0, "two-epoch models should disagree somewhere, or this test shows nothing")

        let path = temporaryPath("ensemble.safetensors")
        try ensemble.save(to: path, info: runs[0].info)
        let (loaded, info) = try PackedClassifier.load(from: path, backend: backend)
        #expect(info == runs[0].info && loaded.ensembleSize == 3)
        #expect(try loaded.logits(batch) == logits)
        #expect(loaded.weightBytes == ensemble.weightBytes)

        try loaded.calibrate(try train.batches(size: 64, standardization: info.standardization).map(\.batch))
        #expect(loaded.staticRanges.count == 12 && loaded.staticRanges.contains { $0.layer.hasPrefix("3/") })
        let staticPath = temporaryPath("ensemble-static.safetensors")
        try loaded.save(to: staticPath, info: info)
        let (reloaded, _) = try PackedClassifier.load(from: staticPath, backend: backend)
        #expect(reloaded.staticRanges.map(\.absmax) == loaded.staticRanges.map(\.absmax))
        #expect(try reloaded.logits(batch) == loaded.logits(batch))

        // Models of different shapes cannot be averaged.
        var narrow = Self.tiny(.int4, epochs: 1)
        narrow.hiddenSize = 8
        let other = try ClassifierTraining(settings: narrow, train: train, windowSize: 29)
        #expect(throws: LowBitError.self) { try PackedClassifier(ensemble: [runs[0].model, other.model], backend: backend) }
        #expect(throws: LowBitError.self) { try PackedClassifier(ensemble: [], backend: backend) }

        let (tensors, file) = try SafeTensors.read(path)
        var metadata = file
        #expect(metadata["lowbit.format"] == PackedClassifier.ensembleFileFormatVersion && metadata["lowbit.members"] == "3")
        func expectError(_ t: [String: SafeTensors.Entry], _ m: [String: String], _ text: String) throws {
            let p = temporaryPath("ensemble-variant.safetensors")
            try SafeTensors.write(t, metadata: m, to: p)
            let error = #expect(throws: LowBitError.self) { try PackedClassifier.load(from: p, backend: backend) }
            #expect(error.map { "\($0)" }?.contains(text) == true, "\(String(describing: error)) lacks '\(text)'")
        }
        let name = "members.1.blocks.0.ffn.up.weight.packed"
        try expectError(tensors.filter { $0.key != name }, metadata, "model 2 of 3: missing tensor 'blocks.0.ffn.up.weight.packed'")
        try expectError(tensors, metadata.filter { $0.key != "lowbit.layers.2" }, "model 3 of 3 has no 'lowbit.layers.2'")
        try expectError(tensors, metadata.merging(["lowbit.members": "0"]) { $1 }, "lowbit.members")
        try expectError(tensors, metadata.merging(["lowbit.members": "2"]) { $1 }, "belongs to none of the 2 models")
        metadata["lowbit.members"] = "4"
        try expectError(tensors, metadata, "model 4 of 4 has no 'lowbit.layers.3'")
    }

    @Test("the learning rate warms up linearly, peaks, then decays by a cosine to the final fraction")
    func schedule() throws {
        let (train, _) = try Self.data.get()
        var s = Self.tiny(nil, epochs: 10)
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
        (TrainingSettings(hiddenSize: 30, numHeads: 4), "divisible"),
        (TrainingSettings(dropout: 1), "dropout"),
    ])
    func badSettings(settings: TrainingSettings, text: String) throws {
        let (train, _) = try Self.data.get()
        let error = #expect(throws: LowBitError.self) { try ClassifierTraining(settings: settings, train: train) }
        #expect(error.map { "\($0)" }?.contains(text) == true, "\(String(describing: error))")
    }
}
