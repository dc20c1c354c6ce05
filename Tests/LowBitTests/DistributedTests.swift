import Foundation
@testable import LowBit
import Testing

/// Steps split over the ranks of a process group: in-process ranks (threads) here; the same
/// code over Open MPI is run by Tests/MPI/run.sh under `mpirun -np 2`.
@Suite("Distributed steps")
struct DistributedTests {
    /// `steps` steps of `DataParallelTests`' model on `size` in-process ranks: every rank's
    /// parameters, losses and statistics.
    static func train(_ mode: QuantizationMode?, qt: Bool, ranks size: Int, backend: @escaping @Sendable () throws -> any Backend,
                      steps: Int, bucketLimit: Int? = nil) throws -> [(values: [[Float]], losses: [Float], statistics: [ActivationStatistics])] {
        try InProcessGroup.run(size: size) { group in
            let model = try DataParallelTests.model(mode, qt: qt)
            let trainer = Trainer(model: model, backend: try backend(), optimizer: AdamW(learningRate: 1e-2), group: group)
            if let bucketLimit { trainer.gradientBucketLimit = bucketLimit }
            var losses: [Float] = []
            for step in 0..<steps {
                let (batch, labels) = try DataParallelTests.batch(seed: UInt64(step))
                losses.append(try trainer.step(batch, labels: labels))
            }
            return (model.parameters.map(\.value), losses, model.quantizedLayers.map(\.statistics))
        }
    }

    @Test("P ranks take the steps of P workers bit for bit, and every rank keeps the same weights",
          arguments: [(QuantizationMode?.none, false), (.ternary, false), (.int8, true), (.binary, false)])
    func ranksAreWorkers(mode: QuantizationMode?, qt: Bool) throws {
        let backends: [(String, @Sendable () throws -> any Backend)] = [
            ("kernels/1", { try KernelsBackend(threads: 1) }), ("reference", { ReferenceBackend() }),
        ]
        for (name, make) in backends {
            for size in [2, 3] {
                let workers = try DataParallelTests.train(mode, qt: qt, workers: size, backend: try make(), steps: 3)
                // every gradient packed into one sum (this model's are small), and the larger
                // ones (the weight matrices) summed in place
                let packed = try Self.train(mode, qt: qt, ranks: size, backend: make, steps: 3)
                let mixed = try Self.train(mode, qt: qt, ranks: size, backend: make, steps: 3, bucketLimit: 64)
                for (r, rank) in (packed + mixed).enumerated() {
                    let what = "\(name) \(mode?.rawValue ?? "float")\(qt ? "+qt" : "") rank \(r % size) of \(size)"
                        + (r < size ? "" : ", large gradients in place")
                    #expect(rank.values == workers.values, "\(what): weights differ from \(size) workers'")
                    #expect(rank.losses == workers.losses, "\(what): losses \(rank.losses) vs \(workers.losses)")
                    #expect(rank.statistics == workers.statistics, "\(what): statistics differ")
                }
            }
        }
    }

    @Test("a batch smaller than the group leaves ranks idle and still takes the step of that many workers")
    func smallBatch() throws {
        let (batch, labels) = try DataParallelTests.batch(seed: 4)
        let two = try batch.sequences(0..<2)
        let want = try DataParallelTests.model(.ternary)
        try Trainer(model: want, backend: ReferenceBackend(), workers: 2).step(two, labels: Array(labels[0..<2]))
        let got = try InProcessGroup.run(size: 3) { group in
            let model = try DataParallelTests.model(.ternary)
            try Trainer(model: model, backend: ReferenceBackend(), group: group).step(two, labels: Array(labels[0..<2]))
            return model.parameters.map(\.value)
        }
        for values in got { #expect(values == want.parameters.map(\.value)) }
    }

    @Test("a rank that fails stops the others' sums instead of leaving them waiting; its error is the one thrown")
    func failingRank() throws {
        struct Boom: Error {}
        let (batch, labels) = try DataParallelTests.batch(seed: 1)
        #expect(throws: Boom.self) {
            _ = try InProcessGroup.run(size: 3) { group in
                let trainer = Trainer(model: try DataParallelTests.model(nil), backend: ReferenceBackend(), group: group)
                try trainer.step(batch, labels: labels)
                if group.rank == 1 { throw Boom() }
                try trainer.step(batch, labels: labels)   // ranks 0 and 2 would wait for rank 1 here
            }
        }
        #expect(throws: LowBitError.self) { _ = try InProcessGroup.run(size: 0) { _ in 0 } }
        // Ranks that pass different counts to one sum are told so.
        #expect(throws: LowBitError.self) {
            _ = try InProcessGroup.run(size: 2) { group in
                var v = [Float](repeating: 1, count: group.rank + 1)
                try group.allReduceSum(&v)
            }
        }
    }

    /// A run of JapaneseVowels' tiny model: `epochs` epochs on `ranks` in-process ranks (or
    /// `workers` workers in this process), from `resume` if given, checkpointing to `path`.
    static func run(_ mode: QuantizationMode?, epochs: Int, ranks: Int = 1, workers: Int = 1, resume: String?, path: String) throws -> [[Float]] {
        let (train, _) = try TrainingFixtures.data.get()
        let settings = { var s = TrainingFixtures.tiny(mode, epochs: 3); s.batchSize = 32; return s }()
        let results = try InProcessGroup.run(size: ranks) { group in
            let run = try resume.map { try ClassifierTraining(resumingFrom: $0) }
                ?? ClassifierTraining(settings: settings, train: train, windowSize: 29)
            run.workers = workers
            run.processGroup = group
            var steps = 0
            try run.run(train: train, backend: try KernelsBackend(threads: 1), checkpointPath: path) {
                steps = $0.step
            } shouldStop: { steps >= epochs * run.stepsPerEpoch(train) }
            return run.model.parameters.flatMap(\.value)
        }
        for r in results.dropFirst() { #expect(r == results[0], "the ranks' weights differ") }
        return [results[0]]
    }

    @Test("a run on 2 ranks is the run on 2 workers; resumed on another rank count it is the run resumed on that many workers")
    func runsAndResumes() throws {
        let dir = temporaryPath("distributed")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func path(_ name: String) -> String { dir + "/" + name + ".safetensors" }
        for mode in [QuantizationMode?.none, .ternary] {
            let ranks = try Self.run(mode, epochs: 3, ranks: 2, resume: nil, path: path("ranks"))
            let workers = try Self.run(mode, epochs: 3, workers: 2, resume: nil, path: path("workers"))
            #expect(ranks == workers, "\(String(describing: mode)): 2 ranks and 2 workers end apart")
            // One epoch on 2 ranks, then the rest on 1 (and the other way round), as with workers.
            for (first, second) in [(2, 1), (1, 2)] {
                _ = try Self.run(mode, epochs: 1, ranks: first, resume: nil, path: path("a"))
                let resumed = try Self.run(mode, epochs: 3, ranks: second, resume: path("a"), path: path("a"))
                _ = try Self.run(mode, epochs: 1, workers: first, resume: nil, path: path("b"))
                let want = try Self.run(mode, epochs: 3, workers: second, resume: path("b"), path: path("b"))
                #expect(resumed == want, "\(String(describing: mode)): resumed from \(first) on \(second) ranks")
            }
        }
    }
}
