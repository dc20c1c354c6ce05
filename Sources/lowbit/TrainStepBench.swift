import ArgumentParser
import Foundation
import LowBit
#if LOWBIT_MPI
import LowBitMPI
#endif

/// One training-step measurement of `lowbit bench model --train`: a whole step (forward,
/// backward, clipping, AdamW) at the training batch, next to the evaluation forward at batch
/// 32 and 1 (packed for the kernels backend).
struct TrainStepRow: Codable {
    var mode: String
    var backend: String
    var qt: Bool
    var threads: Int
    /// Workers the step's batch is split over (Trainer's `workers`): with `--data-parallel`,
    /// as many as threads, each on one thread; otherwise 1, on `threads` threads.
    var workers: Int
    /// With `--distributed`: the ranks of `mpirun` the step is split over (each on `threads`).
    var ranks: Int?
    /// With `--distributed`: the median time of the gradients' all-reduce alone, and its size.
    var allReduceMs: Double?
    var gradientMB: Double?
    var batch: Int
    var steps: Int
    var hiddenSize: Int
    var layers: Int
    var trainStepMs: Double
    /// The evaluation forward at batch 32 and 1; not timed with `--distributed` (the other
    /// ranks' MPI polls would share the cores).
    var forwardBatch32Ms: Double?
    var forwardBatch1Ms: Double?
    /// Peak resident memory during the timed steps (the whole process: the tool, its
    /// libraries and the model).
    var peakRSSMB: Double?
    /// Resident memory after the timed steps minus after three warm-up steps: growth across steps.
    var rssGrowthMB: Double?
    /// Weights, gradients and AdamW's two moments: 16 bytes per parameter.
    var stateMB: Double
    enum CodingKeys: String, CodingKey {
        case mode, backend, qt, threads, workers, ranks, batch, steps, layers
        case allReduceMs = "allreduce_ms", gradientMB = "gradient_mb"
        case hiddenSize = "hidden_size", trainStepMs = "train_step_ms", forwardBatch32Ms = "fwd_b32_ms"
        case forwardBatch1Ms = "fwd_b1_ms", peakRSSMB = "peak_rss_mb", rssGrowthMB = "rss_growth_mb", stateMB = "state_mb"
    }
}

struct TrainStepOptions: ParsableArguments {
    @Flag(help: "Time a whole training step (forward, backward, AdamW) per mode, backend and thread count, next to the forward at batch 32 and 1.")
    var train = false
    @Flag(help: "With --train: quantized (int8) backward matmuls, QT, for the quantized modes.") var qt = false
    @Option(help: "With --train: thread counts, comma-separated (default: LOWBIT_THREADS or every CPU).") var threads: String?
    @Option(help: "With --train: sequences per training step.") var trainBatch = 32
    @Flag(help: "With --train: split each step's sequences over as many model copies as threads, one thread each (Trainer's workers), instead of threading inside each kernel.")
    var dataParallel = false
    @Flag(help: "With --train, under `mpirun -np P` (a lowbit built with --traits MPI): split each step's sequences over the P ranks, and time the gradients' all-reduce alone too. Rank 0 prints.")
    var distributed = false

    /// The ranks of `mpirun` with --distributed; nil otherwise.
    func processGroup() throws -> (any ProcessGroup)? {
        guard distributed else { return nil }
        guard !dataParallel else { throw ValidationError("--distributed and --data-parallel both split the step: give one") }
        #if LOWBIT_MPI
        return try MPIProcessGroup.world()
        #else
        throw ValidationError("--distributed needs a lowbit built with MPI: `swift build -c release --traits MPI` (Debian: libopenmpi-dev)")
        #endif
    }

    func measure(_ shape: ModelShapeOptions, group: (any ProcessGroup)? = nil) throws -> [TrainStepRow] {
        let config = try runtimeConfiguration()
        let threadCounts = try threads.map { try parseList($0, "--threads") } ?? [config.threads]
        guard threadCounts.allSatisfy({ $0 <= 1024 }) else { throw ValidationError("--threads takes counts from 1 to 1024") }
        guard trainBatch > 0, trainBatch <= 4096 else { throw ValidationError("--train-batch must be in 1...4096") }
        guard shape.seconds > 0, shape.seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
        let kinds = try shape.backendKinds(default: "kernels,blas")
        let modes = try parseModes(shape.modes).filter { !qt || $0 != nil }
        guard !modes.isEmpty else { throw ValidationError("--qt needs a quantized mode") }
        var rows: [TrainStepRow] = []
        for t in threadCounts {
            for mode in modes {
                for kind in kinds {
                    var c = config
                    (c.backend, c.threads) = (kind, t)
                    rows.append(try measureOne(shape, mode: mode, backend: c.makeBackend(), threads: t, group: group))
                    let r = rows.last!
                    if (group?.rank ?? 0) == 0 { printError("  train \(r.mode)\(qt ? "+qt" : "") \(r.backend) \(t) thread(s), \(r.workers) worker(s): step "
                               + String(format: "%.1f ms", r.trainStepMs)
                               + (r.forwardBatch32Ms.map { String(format: ", forward b32 %.2f ms, b1 %.3f ms", $0, r.forwardBatch1Ms ?? .nan) } ?? "")
                               + (r.ranks.map { " (\($0) ranks; all-reduce " + String(format: "%.2f ms of %.1f MB)", r.allReduceMs ?? 0, r.gradientMB ?? 0) } ?? "")) }
                }
            }
        }
        return rows
    }

    private func measureOne(_ shape: ModelShapeOptions, mode: QuantizationMode?, backend: any Backend, threads: Int,
                            group: (any ProcessGroup)?) throws -> TrainStepRow {
        let configuration = try shape.configuration(mode)
        let rules = mode.map { [QuantizationRule("*", LayerQuantization(mode: $0, backward: qt ? .int8 : .float,
                                                                          stochasticRoundingSeed: qt ? 1 : nil))] }
        let model = try SequenceClassifier(configuration, classes: 10, rules: rules)
        let trainer = try group.map { Trainer(model: model, backend: backend, optimizer: AdamW(learningRate: 1e-3), group: $0) }
            ?? Trainer(model: model, backend: backend, optimizer: AdamW(learningRate: 1e-3), workers: dataParallel ? threads : 1)
        let batch = try ModelShapeOptions.input(configuration, batch: trainBatch)
        var rng = SeededGenerator(seed: 5)
        let labels = (0..<trainBatch).map { _ in Int(rng.next() % 10) }
        // Three steps allocate what every step reuses (the allocator keeps freed blocks); the
        // resident size after them and after the timed steps shows any growth across steps.
        for _ in 0..<3 { try trainer.step(batch, labels: labels) }
        let before = ProcessMemory.currentMegabytes()
        ProcessMemory.resetPeak()
        let parameters = model.parameters.reduce(0) { $0 + $1.value.count }
        let step: Double
        var allReduce: Double?
        if let group {
            // Every rank must take as many steps: a fixed count, not a time budget.
            step = try medianOf(15) { try trainer.step(batch, labels: labels) }
            var gradients = [Float](repeating: 1e-3, count: parameters)
            allReduce = try medianOf(15) { try group.allReduceSum(&gradients) }
        } else {
            step = try medianSeconds(budget: max(shape.seconds, 1)) { try trainer.step(batch, labels: labels) }
        }
        let peak = ProcessMemory.peakMegabytes(), after = ProcessMemory.currentMegabytes()

        let packed = try (group == nil ? backend as? KernelsBackend : nil).map { try PackedClassifier(model, backend: $0) }
        func forward(_ b: Int) throws -> Double? {
            guard group == nil else { return nil }
            let input = try ModelShapeOptions.input(configuration, batch: b)
            return try medianSeconds(budget: shape.seconds) {
                if let packed { _ = try packed.logits(input) }
                else { _ = try model.forward(input, Execution(backend: backend, training: false)) }
            }
        }
        func ms(_ s: Double) -> Double { (s * 1e6).rounded() / 1e3 }
        let (b32, b1) = (try forward(32), try forward(1))
        return TrainStepRow(mode: mode?.rawValue ?? "float", backend: backend.kind.rawValue, qt: qt && mode != nil, threads: threads,
                            workers: dataParallel ? threads : 1, ranks: group?.size, allReduceMs: allReduce.map(ms),
                            gradientMB: group.map { _ in (Double(parameters * 4) / 1e5).rounded() / 10 },
                            batch: trainBatch, steps: configuration.maxSteps, hiddenSize: configuration.width,
                            layers: configuration.layerCount, trainStepMs: ms(step), forwardBatch32Ms: b32.map(ms),
                            forwardBatch1Ms: b1.map(ms), peakRSSMB: peak.map { ($0 * 10).rounded() / 10 },
                            rssGrowthMB: before.flatMap { b in after.map { (($0 - b) * 10).rounded() / 10 } },
                            stateMB: (Double(parameters * 16) / 1e5).rounded() / 10)
    }
}

/// The median seconds of `count` calls after 3 warm-up calls: for collective work, where every
/// rank must make the same calls.
func medianOf(_ count: Int, _ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    for _ in 0..<3 { try body() }
    var times: [Double] = []
    for _ in 0..<count {
        let d = try clock.measure { try body() }
        times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    return times.sorted()[count / 2]
}

func trainStepTable(_ rows: [TrainStepRow]) -> String {
    var s = "mode        backend  threads  workers  batch  train step ms  fwd b32 ms  fwd b1 ms  peak RSS MB  state MB\n"
    for r in rows {
        s += pad(r.mode + (r.qt ? "+qt" : ""), 11) + " " + pad(r.backend, 8) + " " + pad(String(r.threads), 8) + " "
            + pad(String(r.workers), 8) + " " + pad(String(r.batch), 6) + " " + pad(String(format: "%.1f", r.trainStepMs), 14) + " "
            + pad(r.forwardBatch32Ms.map { String(format: "%.2f", $0) } ?? "-", 11) + " "
            + pad(r.forwardBatch1Ms.map { String(format: "%.3f", $0) } ?? "-", 10) + " "
            + pad(r.peakRSSMB.map { String(format: "%.0f", $0) } ?? "-", 12) + " " + String(format: "%.1f", r.stateMB) + "\n"
    }
    return s
}
