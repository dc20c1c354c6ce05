import ArgumentParser
import Foundation
import LowBit

/// `lowbit eval MODEL`: accuracy and confusion matrix of a saved model on labelled data.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a saved model (packed model or checkpoint): accuracy and confusion matrix.")

    @Argument(help: "A model.packed.safetensors or checkpoint.safetensors written by `lowbit train`.") var model: String
    @Option(help: "Labelled data: a .ts or CSV/TSV file (default: the embedded JapaneseVowels test split).") var data: String?
    @Flag(help: "Print only JSON on standard output.") var json = false

    func run() throws {
        let config = try runtimeConfiguration()
        let kernels = try KernelsBackend(isa: config.isa, threads: config.threads)
        let saved = try SavedModel.load(model, kernels: kernels)
        let dataset = try data.map(Datasets.read) ?? Datasets.japaneseVowels().test
        let packed = try saved.packed(kernels)
        let evaluation = try ClassifierTraining.evaluate(dataset, info: saved.info, windowSize: packed.options.windowSize) { try packed.predict($0) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let report = EvalReport(model: model, data: data ?? "embedded JapaneseVowels_TEST", mode: saved.info.modeName,
                                    accuracy: evaluation.accuracy, correct: evaluation.correct, count: evaluation.count,
                                    classes: evaluation.classNames, confusion: evaluation.confusion)
            printOutput(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        printOutput("\(model) (\(saved.info.modeName)) on \(data ?? "embedded JapaneseVowels_TEST"): "
                    + String(format: "accuracy %.4f (%d of %d)", evaluation.accuracy, evaluation.correct, evaluation.count))
        printOutput(confusionTable(evaluation), terminator: "")
    }
}

struct EvalReport: Codable {
    var model, data, mode: String
    var accuracy: Double
    var correct, count: Int
    var classes: [String]
    var confusion: [[Int]]
}
