import Foundation
import LowBit
import Testing

/// A step split over workers (Trainer's `workers`): the same training as one worker up to the
/// order of the gradient sums, the same bits for a fixed worker count, the whole batch's dropout
/// masks and static-range statistics.
@Suite("Data-parallel steps")
struct DataParallelTests {
    static func batch(seed: UInt64) throws -> (SequenceBatch, [Int]) {
        var rng = SeededGenerator(seed: seed)
        let (count, steps, features) = (7, 6, 3)
        let values = Tensor(shape: [count, steps, features]) { _ in rng.signedUnit() }
        let lengths = (0..<count).map { $0 == 0 ? steps : 1 + Int(rng.next() % UInt64(steps)) }
        return (try SequenceBatch(values: values, lengths: lengths), (0..<count).map { $0 % 3 })
    }

    static func model(_ mode: QuantizationMode?, qt: Bool = false) throws -> SequenceClassifier {
        let configuration = EncoderConfiguration(inputWidth: 3, width: 16, headCount: 2, layerCount: 2, weightMode: mode,
                                                 dropout: 0.1, maxSteps: 6, seed: 5)
        let rules = mode.map { [QuantizationRule("*", LayerQuantization(mode: $0, backward: qt ? .int8 : .float))] }
        return try SequenceClassifier(configuration, classes: 3, rules: rules)
    }

    /// `steps` steps; the parameters, their last gradients, the losses and the statistics.
    static func train(_ mode: QuantizationMode?, qt: Bool = false, workers: Int, backend: any Backend,
                      steps: Int) throws -> (values: [[Float]], gradients: [[Float]], losses: [Float], statistics: [ActivationStatistics]) {
        let model = try model(mode, qt: qt)
        let trainer = try Trainer(model: model, backend: backend, optimizer: AdamW(learningRate: 1e-2), workers: workers)
        var losses: [Float] = []
        for step in 0..<steps {
            let (batch, labels) = try batch(seed: UInt64(step))
            losses.append(try trainer.step(batch, labels: labels))
        }
        return (model.parameters.map(\.value), model.parameters.map(\.grad), losses, model.quantizedLayers.map(\.statistics))
    }

    @Test("2 and 3 workers take the step one takes (to the order of the gradient sums), and repeat their own runs bit for bit",
          arguments: [(QuantizationMode?.none, false), (.ternary, false), (.int8, true), (.binary, false)])
    func sameTraining(mode: QuantizationMode?, qt: Bool) throws {
        for backend in [try KernelsBackend(threads: 2) as any Backend, ReferenceBackend()] {
            let one = try Self.train(mode, qt: qt, workers: 1, backend: backend, steps: 1)
            let name = "\(backend.identity) \(mode?.rawValue ?? "float")\(qt ? "+qt" : "")"
            for workers in [2, 3] {
                let split = try Self.train(mode, qt: qt, workers: workers, backend: backend, steps: 1)
                // The forward is per sequence: the same loss (OpenBLAS may sum a row in another
                // order for fewer rows), the same statistics (a mean over all rows of the batch).
                #expect(abs(one.losses[0] - split.losses[0]) <= 1e-6 * one.losses[0], "\(name): loss \(one.losses) vs \(split.losses)")
                for (a, b) in zip(one.statistics, split.statistics) {
                    #expect(a.count == b.count && abs(a.mean - b.mean) <= 1e-6 * a.mean, "\(name): statistics \(a) vs \(b)")
                }
                // The gradients: sums in another order; QT's are rounded stochastically, with
                // each worker drawing its own rows' noise, so they agree in expectation only.
                let g1 = one.gradients.joined(), g2 = split.gradients.joined()
                let scale = g1.map(abs).max() ?? 1
                let worst = zip(g1, g2).map { abs($0 - $1) }.max() ?? 0
                let relative = (zip(g1, g2).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / g1.map { $0 * $0 }.reduce(0, +)).squareRoot()
                if qt {
                    #expect(relative < 0.2, "\(name) \(workers) workers: gradients differ by \(relative) (relative L2)")
                } else {
                    #expect(worst <= 1e-4 * scale, "\(name) \(workers) workers: gradients off by \(worst) of \(scale)")
                }
                let a = try Self.train(mode, qt: qt, workers: workers, backend: backend, steps: 3)
                let b = try Self.train(mode, qt: qt, workers: workers, backend: backend, steps: 3)
                #expect(a.values == b.values && a.losses == b.losses && a.statistics == b.statistics, "\(name): \(workers) workers do not repeat")
            }
        }
    }

    @Test("worker counts out of range are refused; a batch of one sequence takes one worker")
    func bounds() throws {
        let model = try Self.model(.ternary)
        #expect(throws: LowBitError.self) { try Trainer(model: model, backend: ReferenceBackend(), workers: 0) }
        #expect(throws: LowBitError.self) { try Trainer(model: model, backend: ReferenceBackend(), workers: 65) }
        let trainer = try Trainer(model: model, backend: ReferenceBackend(), workers: 4)
        let (batch, labels) = try Self.batch(seed: 1)
        let one = try batch.sequences(0..<1)
        #expect(try trainer.step(one, labels: [labels[0]]).isFinite)
        #expect(throws: LowBitError.self) { try trainer.step(batch, labels: [0]) }
        #expect(throws: LowBitError.self) { try batch.sequences(3..<9) }
    }

    @Test("a comparison with two workers per model trains every mode, learns, and repeats itself bit for bit")
    func comparison() throws {
        let directory = URL(fileURLWithPath: temporaryPath("data-parallel-comparison"))
        let (trainFile, testFile) = try writeRamps(directory, train: 32, test: 20, seed: 4)
        let train = try Datasets.read(trainFile.path), test = try Datasets.read(testFile.path)
        func run(_ name: String, workers: Int) throws -> [ModeComparison.Result] {
            var comparison = ModeComparison(modes: [nil, .ternary], for: train,
                                            base: TrainingSettings(width: 16, layerCount: 1, headCount: 2, ensembleSize: 1),
                                            recipe: TrainingRecipe(steps: 40), directory: directory.appendingPathComponent(name))
            comparison.workersPerModel = workers
            return try comparison.run(train: train, evaluation: test)
        }
        let a = try run("a", workers: 2), b = try run("b", workers: 2), one = try run("one", workers: 1)
        for (x, y) in zip(a, b) {
            #expect(x.runs[0].model.parameters.map(\.value) == y.runs[0].model.parameters.map(\.value), "\(x.settings.modeName)")
        }
        for (x, y) in zip(a, one) {
            #expect(x.evaluation.accuracy >= 0.9 && y.evaluation.accuracy >= 0.9, "\(x.evaluation.accuracy) and \(y.evaluation.accuracy)")
            #expect(x.runs[0].optimizer.step == y.runs[0].optimizer.step)
            #expect(x.runs[0].workers == 2 && y.runs[0].workers == 1)
        }
        var bad = ModeComparison(modes: [nil], for: train, directory: directory.appendingPathComponent("bad"))
        bad.workersPerModel = 0
        #expect(throws: LowBitError.self) { try bad.run(train: train, evaluation: test) }
    }
}
