import Foundation
import LowBit
import Testing

@Suite("Packed models: saving, loading, calibration, ensembles")
struct PackedModelTests {
    @Test("a saved model evaluates to the same accuracy after loading: packed file and checkpoint")
    func savedModelEvaluatesTheSame() throws {
        let (train, test) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        for mode in [nil, QuantizationMode.int8, .int4, .ternary, .binary] {
            let run = try ClassifierTraining(settings: TrainingFixtures.tiny(mode, epochs: 2), train: train, windowSize: 29)
            try run.run(train: train, backend: backend)
            let packed = try PackedClassifier(run.model, info: run.info, backend: backend)
            let packedPath = temporaryPath("model-\(mode?.rawValue ?? "float").safetensors")
            try packed.save(to: packedPath, info: run.info)
            let checkpointPath = temporaryPath("checkpoint-\(mode?.rawValue ?? "float").safetensors")
            try run.save(to: checkpointPath)

            let (loaded, info) = try PackedClassifier.load(from: packedPath, backend: backend)
            #expect(info == run.info)
            let want = try packed.evaluate(on: test)
            let got = try loaded.evaluate(on: test)
            #expect(got == want, "\(String(describing: mode))")
            let batch = try test.batch(Array(0..<20), standardization: info.standardization).batch
            #expect(try loaded.logits(batch) == packed.logits(batch))
            #expect(loaded.weightBytes == packed.weightBytes)
            // The file holds the packed weights, not the latent float ones.
            let size = try FileManager.default.attributesOfItem(atPath: packedPath)[.size] as! Int
            #expect(size < packed.weightBytes + 16_384 && size >= packed.weightBytes, "\(size) bytes for \(packed.weightBytes) bytes of weights")

            let restored = try ClassifierTraining(resumingFrom: checkpointPath)
            let fromCheckpoint = try PackedClassifier(restored.model, info: restored.info, backend: backend)
            #expect(try fromCheckpoint.evaluate(on: test) == want)
        }
    }

    @Test("calibration freezes static ranges that survive saving and loading")
    func calibrationRoundTrip() throws {
        let (train, test) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        let run = try ClassifierTraining(settings: TrainingFixtures.tiny(.int8, epochs: 2), train: train, windowSize: 29)
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

        // A calibration that fails on its last batch changes nothing.
        var poisoned = batch.values
        poisoned.scalars[3] = .nan
        let ranges = loaded.staticRanges.map(\.absmax)
        #expect(throws: LowBitError.self) { try loaded.calibrate([batch, try SequenceBatch(values: poisoned, lengths: batch.shape.lengths)]) }
        #expect(loaded.staticRanges.map(\.absmax) == ranges)
        #expect(try loaded.logits(batch) == packed.logits(batch))
    }

    @Test("damaged packed model files are errors naming the problem")
    func damagedPackedFile() throws {
        let (train, _) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        let run = try ClassifierTraining(settings: TrainingFixtures.tiny(.ternary, epochs: 1), train: train)
        let path = temporaryPath("damaged.safetensors")
        try PackedClassifier(run.model, backend: backend).save(to: path, info: run.info)
        var (tensors, metadata) = try SafeTensors.read(path)

        func expectError(_ t: [String: SafeTensors.Entry], _ m: [String: String], _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            try expectLoadError(t, m, text, sourceLocation: sourceLocation) { _ = try PackedClassifier.load(from: $0, backend: backend) }
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
        let (train, test) = try TrainingFixtures.data.get()
        let backend = try KernelsBackend()
        let settings = TrainingFixtures.tiny(.int4, epochs: 2)
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
        var narrow = TrainingFixtures.tiny(.int4, epochs: 1)
        narrow.width = 8
        let other = try ClassifierTraining(settings: narrow, train: train, windowSize: 29)
        #expect(throws: LowBitError.self) { try PackedClassifier(ensemble: [runs[0].model, other.model], backend: backend) }
        #expect(throws: LowBitError.self) { try PackedClassifier(ensemble: [], backend: backend) }

        let (tensors, file) = try SafeTensors.read(path)
        var metadata = file
        #expect(metadata["lowbit.format"] == PackedClassifier.ensembleFileFormatVersion && metadata["lowbit.members"] == "3")
        func expectError(_ t: [String: SafeTensors.Entry], _ m: [String: String], _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            try expectLoadError(t, m, text, sourceLocation: sourceLocation) { _ = try PackedClassifier.load(from: $0, backend: backend) }
        }
        let name = "members.1.blocks.0.ffn.up.weight.packed"
        try expectError(tensors.filter { $0.key != name }, metadata, "model 2 of 3: missing tensor 'blocks.0.ffn.up.weight.packed'")
        try expectError(tensors, metadata.filter { $0.key != "lowbit.layers.2" }, "model 3 of 3 has no 'lowbit.layers.2'")
        try expectError(tensors, metadata.merging(["lowbit.members": "0"]) { $1 }, "lowbit.members")
        try expectError(tensors, metadata.merging(["lowbit.members": "2"]) { $1 }, "belongs to none of the 2 models")
        metadata["lowbit.members"] = "4"
        try expectError(tensors, metadata, "model 4 of 4 has no 'lowbit.layers.3'")
    }
}
