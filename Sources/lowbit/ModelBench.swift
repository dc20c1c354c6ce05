import ArgumentParser
import Foundation
import LowBit

/// One model-forward measurement.
struct ModelBenchRow: Codable {
    var mode: String
    var backend: String
    var batch: Int
    var steps: Int
    var hiddenSize: Int
    var layers: Int
    var threads: Int
    var ms: Double
    var sequencesPerSecond: Double
    enum CodingKeys: String, CodingKey {
        case mode, backend, batch, steps, layers, threads, ms
        case hiddenSize = "hidden_size", sequencesPerSecond = "sequences_per_s"
    }
}

/// `lowbit bench model`: classifier forward (evaluation mode) per backend and mode.
struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Time the classifier's forward pass per backend and mode (packed for the kernels backend); with --train, a whole training step too.")

    @OptionGroup var shape: ModelShapeOptions
    @OptionGroup var training: TrainStepOptions
    @Flag(help: "Print only a JSON array on standard output.") var json = false

    func run() throws {
        if training.train {
            let group = try training.processGroup()
            let rows = try training.measure(shape, group: group)
            guard (group?.rank ?? 0) == 0 else { return }
            if json {
                try printJSON(rows)
            } else {
                printOutput(trainStepTable(rows), terminator: "")
            }
            return
        }
        let rows = try shape.measure()
        if json {
            try printJSON(rows)
        } else {
            printOutput(modelTable(rows), terminator: "")
        }
    }
}

/// The model shapes `lowbit bench model` knows by name.
enum ModelShape: String, ExpressibleByArgument, CaseIterable {
    /// The classifier `lowbit train` builds by default, on JapaneseVowels-sized input.
    case small
    /// The design's encoder (EncoderConfiguration.Design) on 256 features, 60 steps, 10 classes.
    case design

    var defaults: (features: Int, steps: Int, width: Int, layers: Int, heads: Int, positions: Bool) {
        switch self {
        case .small:
            let s = TrainingSettings()
            return (12, 29, s.width, s.layerCount, s.headCount, s.usesPositionalEncoding)
        case .design:
            typealias D = EncoderConfiguration.Design
            return (256, D.maxSteps, D.width, D.layerCount, D.headCount, false)
        }
    }
}

struct ModelShapeOptions: ParsableArguments {
    @Option(help: "Modes: all, or a comma-separated list of float, int8, int4, ternary, binary.") var modes = "all"
    @Option(help: "Backends, comma-separated (reference,blas,kernels). Default: all three; kernels,blas with --train.")
    var backends: String?
    @Option(help: "Sequences per forward pass, comma-separated (without --train).") var batch = "1,64"
    @Option(help: "small (the model `lowbit train` builds by default: 12 features, 29 steps, hidden 64, 3 layers, positions on) or design (256 features, 60 steps, hidden 256, 4 heads, 4 layers, 10 classes).")
    var shape = ModelShape.small
    @Option(help: "Steps per sequence (default: the shape's).") var steps: Int?
    @Option(help: "Features per step (default: the shape's).") var features: Int?
    @Option(help: "Hidden size (default: the shape's).") var hiddenSize: Int?
    @Option(help: "Transformer blocks (default: the shape's).") var layers: Int?
    @Option(help: "Attention heads (default: the shape's).") var heads: Int?
    @Flag(inversion: .prefixedNo, help: "Sinusoidal positional encoding (default: the shape's).")
    var positionalEncoding: Bool?
    @Option(help: "Time budget per case, in seconds.") var seconds = 0.3

    /// The encoder these options describe, in `mode`, without dropout (a benchmark times the
    /// arithmetic; the peers it is compared with have none).
    func configuration(_ mode: QuantizationMode?) throws -> EncoderConfiguration {
        let d = shape.defaults
        let c = EncoderConfiguration(inputWidth: features ?? d.features, width: hiddenSize ?? d.width, headCount: heads ?? d.heads,
                                     layerCount: layers ?? d.layers, weightMode: mode, dropout: 0, maxSteps: steps ?? d.steps,
                                     usesPositionalEncoding: positionalEncoding ?? d.positions, seed: 1)
        do { try c.validate() } catch { throw ValidationError("\(error)") }
        return c
    }

    func backendKinds(default text: String) throws -> [BackendKind] {
        try (backends ?? text).split(separator: ",").map {
            try BackendKind(parsing: String($0).trimmingCharacters(in: .whitespaces), variable: "--backends")
        }
    }

    /// Random input [batch, maxSteps, inputWidth], every sequence full length.
    static func input(_ c: EncoderConfiguration, batch: Int) throws -> SequenceBatch {
        var rng = SeededGenerator(seed: 3)
        let x = Tensor(shape: [batch, c.maxSteps, c.inputWidth]) { _ in rng.signedUnit() }
        return try SequenceBatch(values: x, lengths: Array(repeating: c.maxSteps, count: batch))
    }

    func measure() throws -> [ModelBenchRow] {
        let config = try runtimeConfiguration()
        let modeList = try parseModes(modes)
        let kinds = try backendKinds(default: "reference,blas,kernels")
        let batches = try parseList(batch, "--batch")
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
        var rows: [ModelBenchRow] = []
        for mode in modeList {
            let configuration = try configuration(mode)
            let model = try SequenceClassifier(configuration, classes: 10)
            for kind in kinds {
                var c = config
                c.backend = kind
                let backend = try c.makeBackend()
                let packed = kind == .kernels ? try PackedClassifier(model, backend: backend as! KernelsBackend) : nil
                for b in batches {
                    let input = try Self.input(configuration, batch: b)
                    let sec = try medianSeconds(budget: seconds) {
                        if let packed { _ = try packed.logits(input) } else { _ = try model.forward(input, Execution(backend: backend, training: false)) }
                    }
                    rows.append(ModelBenchRow(mode: mode?.rawValue ?? "float", backend: kind.rawValue, batch: b, steps: configuration.maxSteps,
                                              hiddenSize: configuration.width, layers: configuration.layerCount, threads: config.threads,
                                              ms: (sec * 1e7).rounded() / 1e4, sequencesPerSecond: (Double(b) / sec).rounded()))
                    printError("  model \(rows.last!.mode) \(kind.rawValue) batch \(b): " + String(format: "%.3f ms", sec * 1e3))
                }
            }
        }
        return rows
    }
}

func modelTable(_ rows: [ModelBenchRow]) -> String {
    var s = "mode     backend    batch  steps  hidden  layers  ms        seq/s      × reference\n"
    for r in rows {
        let base = rows.first { $0.backend == "reference" && $0.mode == r.mode && $0.batch == r.batch }
        s += pad(r.mode, 8) + " " + pad(r.backend, 10) + " " + pad(String(r.batch), 6) + " " + pad(String(r.steps), 6) + " "
            + pad(String(r.hiddenSize), 7) + " " + pad(String(r.layers), 7) + " " + pad(String(format: "%.3f", r.ms), 9) + " "
            + pad(String(format: "%.0f", r.sequencesPerSecond), 10) + " " + (base.map { String(format: "%.1f×", $0.ms / r.ms) } ?? "") + "\n"
    }
    return s
}

/// `lowbit bench all` (the default): the quantized matmul of every mode on every backend,
/// then the model forward, in one run.
struct AllBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Matmul and model-forward throughput per backend and mode, in one run (the default).")

    @Option(help: "Matmul output channels M and input features K.") var size = 1024
    @Option(help: "Matmul tokens N, comma-separated.") var n = "1,64"
    @OptionGroup var shape: ModelShapeOptions
    @Flag(help: "Print only JSON ({\"matmul\": […], \"model\": […]}) on standard output.") var json = false

    func run() throws {
        let config = try runtimeConfiguration()
        let ns = try parseList(n, "--n")
        guard size > 0, size <= 65536 else { throw ValidationError("--size must be in 1...65536") }
        let kinds = try shape.backendKinds(default: "reference,blas,kernels")
        var rng = SeededGenerator(seed: 7)
        let w = Tensor(shape: [size, size]) { _ in rng.signedUnit() }
        var matmul: [BenchRow] = []
        for mode in try parseModes(shape.modes) {
            for kind in kinds {
                var c = config
                c.backend = kind
                let backend = try c.makeBackend()
                let prepared = try mode.map { try backend.prepare(backend.quantize(weights: w, mode: $0)) }
                for nn in ns {
                    let x = Tensor(shape: [nn, size]) { _ in rng.signedUnit() }
                    let sec = try medianSeconds(budget: shape.seconds) {
                        if let prepared { _ = try backend.linear(x, prepared, bias: nil) }
                        else { _ = try backend.matmul(x, w, transposeA: false, transposeB: true) }
                    }
                    let isa = kind == .kernels ? config.isa.rawValue : kind.rawValue
                    matmul.append(BenchRow(mode: mode?.rawValue ?? "float", backend: kind.rawValue, isa: isa, m: size, k: size, n: nn,
                                           threads: config.threads, gops: (2 * Double(size * size * nn) / sec / 1e9 * 100).rounded() / 100,
                                           ms: (sec * 1e7).rounded() / 1e4))
                    printError("  matmul \(matmul.last!.mode) \(kind.rawValue) n=\(nn): \(matmul.last!.gops) GOP/s")
                }
            }
        }
        let model = try shape.measure()
        if json {
            try printJSON(AllBenchReport(matmul: matmul, model: model))
            return
        }
        printOutput("matmul y = x·Wᵀ (activations quantized inside the call; float: sgemm / reference matmul)")
        printOutput("mode     backend    M      K      N    threads  GOP/s     ms")
        for r in matmul {
            printOutput(pad(r.mode, 8) + " " + pad(r.backend, 10) + " " + pad(String(r.m), 6) + " " + pad(String(r.k), 6) + " "
                        + pad(String(r.n), 4) + " " + pad(String(r.threads), 8) + " " + pad(String(format: "%.1f", r.gops), 9) + " "
                        + String(format: "%.3f", r.ms))
        }
        printOutput("\nclassifier forward (evaluation mode)")
        printOutput(modelTable(model), terminator: "")
    }
}

struct AllBenchReport: Codable {
    var matmul: [BenchRow]
    var model: [ModelBenchRow]
}
