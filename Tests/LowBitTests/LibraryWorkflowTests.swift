import Foundation
import LowBit
import Testing

/// The workflow of `lowbit train`, `eval` and a deployment, from Swift alone (no CLI): the
/// part between the markers is the program a package depending on LowBit writes.
@Suite("Library workflow")
struct LibraryWorkflowTests {
    static func writeRamps(_ dir: URL) throws -> (train: URL, test: URL) {
        try LowBitTests.writeRamps(dir, train: 32, test: 20, seed: 21)
    }

    @Test("train every mode on a .ts file, save the packed ensembles, load one and classify a new series: under 30 lines")
    func wholeWorkflow() throws {
        let directory = URL(fileURLWithPath: temporaryPath("library-workflow"))
        let (trainFile, testFile) = try Self.writeRamps(directory)
        // --- program begins ---
        let train = try Datasets.read(trainFile.path), test = try Datasets.read(testFile.path)
        // Every mode (float, int8, int4, ternary, binary), each an ensemble of two, with the
        // recipe of `lowbit train` for this data; small here, so that the test is quick.
        let base = TrainingSettings(width: 16, layerCount: 1, headCount: 2)
        let comparison = ModeComparison(for: train, base: base, recipe: TrainingRecipe(steps: 60), directory: directory)
        let results = try comparison.run(train: train, evaluation: test)   // checkpoints and packed models in directory
        for r in results {
            print(r.settings.modeName, r.evaluation.accuracy, r.model.weightBytes, r.modelFile.lastPathComponent)
        }
        let ternary = try PackedClassifier.load(from: results[3].modelFile)   // or a checkpoint
        let rising: [[Float]] = (0..<12).map { [Float($0)] }   // steps × channels
        let answer = try ternary.classify(rising)
        print(answer.label, answer.probability(of: "up")!)
        // --- program ends ---
        #expect(results.map(\.settings.modeName) == ["float", "int8", "int4", "ternary", "binary"])
        for r in results {
            #expect(r.evaluation.accuracy >= 0.9, "\(r.settings.modeName): \(r.evaluation.accuracy)")
            #expect(r.runs.count == 2 && r.model.ensembleSize == 2 && r.modelAccuracies.count == 2)
            #expect(r.evaluation.meanCrossEntropy.map { $0.isFinite && $0 >= 0 } == true)
            #expect(r.settings.tokens == .convolution && r.settings.patchLength == 1 && r.runs[0].optimizer.step == 60)
        }
        #expect(answer.label == "up" && answer.classNames == ["up", "down"])
        #expect(abs(answer.probabilities.reduce(0, +) - 1) < 1e-9)
        // The loaded file answers as the model that was saved, series by series.
        #expect(try ternary.classify(test) == results[3].model.classify(test))
        #expect(try ternary.evaluate(on: test) == results[3].evaluation)
        // A checkpoint loads as a (single) packed model too.
        let single = try PackedClassifier.load(from: directory.appendingPathComponent("ternary/checkpoint.safetensors"))
        #expect(single.ensembleSize == 1 && single.info == results[3].model.info)
    }

    @Test("bad input to the library is a clear error: a series of the wrong width, a model without class names, a comparison that cannot run")
    func clearErrors() throws {
        let directory = URL(fileURLWithPath: temporaryPath("library-errors"))
        let (trainFile, _) = try Self.writeRamps(directory)
        let train = try Datasets.read(trainFile.path)
        let run = try ClassifierTraining(settings: TrainingSettings(mode: .ternary, width: 16, layerCount: 1, headCount: 2, epochs: 1), train: train)
        let packed = try PackedClassifier(run.model, info: run.info, backend: KernelsBackend())
        let wide = #expect(throws: LowBitError.self) { try packed.classify([[1, 2], [3, 4]]) }
        #expect("\(wide!)".contains("series 0, step 0 has 2 values, the model takes 1 channels"), "\(wide!)")
        #expect(throws: LowBitError.self) { try packed.classify([[[Float]]]([[]])) }
        let nan = #expect(throws: LowBitError.self) { try packed.classify([[1], [.nan]]) }
        #expect("\(nan!)".lowercased().contains("nan") || "\(nan!)".contains("finite"), "\(nan!)")
        let bare = try PackedClassifier(run.model, backend: KernelsBackend())
        let e = #expect(throws: LowBitError.self) { try bare.classify([[1]]) }
        #expect("\(e!)".contains("no class names"), "\(e!)")
        #expect(throws: LowBitError.self) { try PackedClassifier(run.model, info: ModelInfo(classNames: ["a", "b", "c"], standardization: run.info.standardization, modeName: "ternary"), backend: KernelsBackend()) }
        // A quantized mode that learns from float, without float in the comparison.
        var learner = TrainingSettings(mode: .binary, width: 16, layerCount: 1, headCount: 2, epochs: 1)
        learner.distillation = Distillation()
        let c = #expect(throws: LowBitError.self) {
            try ModeComparison(settings: [learner], directory: directory).run(train: train, evaluation: train)
        }
        #expect("\(c!)".contains("no float mode"), "\(c!)")
        // Datasets from nested arrays (series × steps × channels).
        let made = try TimeSeriesDataset(series: [[[1, 2], [3, 4]], [[5, 6]]], labels: ["b", "a"])
        #expect(made.channels == 2 && made.classNames == ["b", "a"] && made.labels == [0, 1] && made.series == [[1, 2, 3, 4], [5, 6]])
        let ragged = #expect(throws: LowBitError.self) { try TimeSeriesDataset(series: [[[1, 2]], [[3]]], labels: ["a", "b"]) }
        #expect("\(ragged!)".contains("series 1, step 0 has 1 values, series 0 has 2 channels"), "\(ragged!)")
        #expect(throws: LowBitError.self) { try TimeSeriesDataset(series: [[[1]]], labels: ["a", "b"]) }
        #expect(throws: LowBitError.self) { try TimeSeriesDataset(series: [[[1]]], labels: ["c"], classNames: ["a", "b"]) }
        let twice = TrainingSettings(mode: .int8, width: 16, layerCount: 1, headCount: 2, epochs: 1)
        #expect(throws: LowBitError.self) { try ModeComparison(settings: [twice, twice], directory: directory).run(train: train, evaluation: train) }
    }
}
