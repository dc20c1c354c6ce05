import ArgumentParser
import Foundation
import LowBit

/// `lowbit calibrate MODEL`: the standalone static-range calibration pass.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calibrate static activation ranges of a saved model on training data and write a packed model that uses them.",
        discussion: """
            Runs the model forward (evaluation mode) over --data, gathering each quantized layer's activation \
            statistics afresh (count and sum of per-token absmax), freezes their means as fixed ranges and saves a \
            packed model. Reports accuracy on --test with dynamic and with static ranges.
            """)

    @Argument(help: "A model.packed.safetensors or checkpoint.safetensors written by `lowbit train`.") var model: String
    @Option(help: "Calibration data (default: the embedded JapaneseVowels training split).") var data: String?
    @Option(help: "Evaluation data (default: the _TEST sibling of --data, or the embedded test split).") var test: String?
    @Option(help: "Use at most this many calibration sequences.") var limit: Int?
    @Option(help: "Output file (default: MODEL with .static before the extension).") var out: String?
    @Flag(help: "Print only JSON on standard output.") var json = false

    func run() throws {
        let config = try runtimeConfiguration()
        if let limit, limit < 1 { throw ValidationError("--limit must be positive, got \(limit)") }
        let kernels = try KernelsBackend(isa: config.isa, threads: config.threads)
        let packed = try ModelFile.load(from: URL(fileURLWithPath: model), backend: kernels).packed(backend: kernels)
        guard packed.hasQuantizedLayers else { throw ValidationError("\(model) is a float model: there is nothing to calibrate") }
        let calibration: TimeSeriesDataset, evaluation: TimeSeriesDataset
        if let data {
            calibration = try Datasets.read(data)
            guard let t = test ?? Datasets.testSibling(of: data) else {
                throw ValidationError("no evaluation data: pass --test (no _TEST sibling of \(data))")
            }
            evaluation = try Datasets.read(t)
        } else {
            let shipped = try Datasets.japaneseVowels()
            calibration = shipped.train
            evaluation = try test.map(Datasets.read) ?? shipped.test
        }
        let used = calibration.subset(Array(0..<min(limit ?? calibration.count, calibration.count)))
        let before = try packed.evaluate(on: evaluation)
        try packed.calibrate(on: used)
        let after = try packed.evaluate(on: evaluation)
        let path = out ?? URL(fileURLWithPath: model).deletingPathExtension().path + ".static.safetensors"
        try packed.save(to: URL(fileURLWithPath: path))
        let ranges = packed.staticRanges
        if json {
            let report = CalibrationReport(model: model, out: path, sequences: used.count, dynamicAccuracy: before.accuracy,
                                           staticAccuracy: after.accuracy, ranges: Dictionary(uniqueKeysWithValues: ranges))
            try printJSON(report)
            return
        }
        printOutput("calibrated \(ranges.count) layers on \(used.count) sequences (\((used.count + 63) / 64) batches):")
        for (layer, range) in ranges { printOutput("  \(pad(layer, 24)) activation range ±" + String(format: "%.4f", range)) }
        printOutput(String(format: "accuracy on the evaluation data: %.4f dynamic ranges → %.4f static ranges", before.accuracy, after.accuracy))
        printOutput("wrote \(path)")
    }
}

struct CalibrationReport: Codable {
    var model, out: String
    var sequences: Int
    var dynamicAccuracy, staticAccuracy: Double
    var ranges: [String: Double]
    enum CodingKeys: String, CodingKey {
        case model, out, sequences, ranges
        case dynamicAccuracy = "dynamic_accuracy", staticAccuracy = "static_accuracy"
    }
}
