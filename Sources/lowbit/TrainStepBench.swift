import ArgumentParser
import Foundation
import LowBit

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
    var batch: Int
    var steps: Int
    var hiddenSize: Int
    var layers: Int
    var trainStepMs: Double
    var forwardBatch32Ms: Double
    var forwardBatch1Ms: Double
    /// Peak resident memory during the timed steps (the whole process: the tool, its
    /// libraries and the model).
    var peakRSSMB: Double?
    /// Resident memory after the timed steps minus after three warm-up steps: growth across steps.
    var rssGrowthMB: Double?
    /// Weights, gradients and AdamW's two moments: 16 bytes per parameter.
    var stateMB: Double
    enum CodingKeys: String, CodingKey {
        case mode, backend, qt, threads, workers, batch, steps, layers
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

    func measure(_ shape: ModelShapeOptions) throws -> [TrainStepRow] {
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
                    rows.append(try measureOne(shape, mode: mode, backend: c.makeBackend(), threads: t))
                    let r = rows.last!
                    printError("  train \(r.mode)\(qt ? "+qt" : "") \(r.backend) \(t) thread(s), \(r.workers) worker(s): step "
                               + String(format: "%.1f ms, forward b32 %.2f ms, b1 %.3f ms", r.trainStepMs, r.forwardBatch32Ms, r.forwardBatch1Ms))
                }
            }
        }
        return rows
    }

    private func measureOne(_ shape: ModelShapeOptions, mode: QuantizationMode?, backend: any Backend, threads: Int) throws -> TrainStepRow {
        let configuration = try shape.configuration(mode)
        let rules = mode.map { [QuantizationRule("*", LayerQuantization(mode: $0, backward: qt ? .int8 : .float,
                                                                          stochasticRoundingSeed: qt ? 1 : nil))] }
        let model = try SequenceClassifier(configuration, classes: 10, rules: rules)
        let trainer = try Trainer(model: model, backend: backend, optimizer: AdamW(learningRate: 1e-3), workers: dataParallel ? threads : 1)
        let batch = try ModelShapeOptions.input(configuration, batch: trainBatch)
        var rng = SeededGenerator(seed: 5)
        let labels = (0..<trainBatch).map { _ in Int(rng.next() % 10) }
        // Three steps allocate what every step reuses (the allocator keeps freed blocks); the
        // resident size after them and after the timed steps shows any growth across steps.
        for _ in 0..<3 { try trainer.step(batch, labels: labels) }
        let before = ProcessMemory.currentMegabytes()
        ProcessMemory.resetPeak()
        let step = try medianSeconds(budget: max(shape.seconds, 1)) { try trainer.step(batch, labels: labels) }
        let peak = ProcessMemory.peakMegabytes(), after = ProcessMemory.currentMegabytes()
        let parameters = model.parameters.reduce(0) { $0 + $1.value.count }

        let packed = try (backend as? KernelsBackend).map { try PackedClassifier(model, backend: $0) }
        func forward(_ b: Int) throws -> Double {
            let input = try ModelShapeOptions.input(configuration, batch: b)
            return try medianSeconds(budget: shape.seconds) {
                if let packed { _ = try packed.logits(input) }
                else { _ = try model.forward(input, Execution(backend: backend, training: false)) }
            }
        }
        func ms(_ s: Double) -> Double { (s * 1e6).rounded() / 1e3 }
        return TrainStepRow(mode: mode?.rawValue ?? "float", backend: backend.kind.rawValue, qt: qt && mode != nil, threads: threads,
                            workers: dataParallel ? threads : 1,
                            batch: trainBatch, steps: configuration.maxSteps, hiddenSize: configuration.width,
                            layers: configuration.layerCount, trainStepMs: ms(step), forwardBatch32Ms: ms(try forward(32)),
                            forwardBatch1Ms: ms(try forward(1)), peakRSSMB: peak.map { ($0 * 10).rounded() / 10 },
                            rssGrowthMB: before.flatMap { b in after.map { (($0 - b) * 10).rounded() / 10 } },
                            stateMB: (Double(parameters * 16) / 1e5).rounded() / 10)
    }
}

func trainStepTable(_ rows: [TrainStepRow]) -> String {
    var s = "mode        backend  threads  workers  batch  train step ms  fwd b32 ms  fwd b1 ms  peak RSS MB  state MB\n"
    for r in rows {
        s += pad(r.mode + (r.qt ? "+qt" : ""), 11) + " " + pad(r.backend, 8) + " " + pad(String(r.threads), 8) + " "
            + pad(String(r.workers), 8) + " " + pad(String(r.batch), 6) + " " + pad(String(format: "%.1f", r.trainStepMs), 14) + " "
            + pad(String(format: "%.2f", r.forwardBatch32Ms), 11) + " " + pad(String(format: "%.3f", r.forwardBatch1Ms), 10) + " "
            + pad(r.peakRSSMB.map { String(format: "%.0f", $0) } ?? "-", 12) + " " + String(format: "%.1f", r.stateMB) + "\n"
    }
    return s
}
