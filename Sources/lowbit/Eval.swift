import ArgumentParser
import Foundation
import LowBit

/// `lowbit eval MODEL`: accuracy and confusion matrix of a saved model on labelled data,
/// and optionally every series' prediction.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a saved model (packed model or checkpoint): accuracy, confusion matrix, and each series' prediction.")

    @Argument(help: "A model.packed.safetensors or checkpoint.safetensors written by `lowbit train`.") var model: String
    @Option(help: "Labelled data: a .ts or CSV/TSV file (default: the embedded JapaneseVowels test split).") var data: String?
    @Option(help: "Write each series' true class, predicted class and class probabilities to this CSV file.")
    var predictions: String?
    @Flag(help: "Print only JSON on standard output (with every series' prediction).") var json = false

    func run() throws {
        let config = try runtimeConfiguration()
        let kernels = try KernelsBackend(isa: config.isa, threads: config.threads)
        let packed = try ModelFile.load(from: URL(fileURLWithPath: model), backend: kernels).packed(backend: kernels)
        let dataset = try data.map(Datasets.read) ?? Datasets.japaneseVowels().test
        let info = packed.info!
        let labelled = try dataset.relabelled(to: info.classNames)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: info.classNames.count), count: info.classNames.count)
        var rows: [Prediction] = []
        for (i, (answer, label)) in zip(try packed.classify(labelled), labelled.labels).enumerated() {
            confusion[label][info.classNames.firstIndex(of: answer.label)!] += 1
            rows.append(Prediction(index: i, label: info.classNames[label], predicted: answer.label, probabilities: answer.probabilities))
        }
        let evaluation = Evaluation(classNames: info.classNames, confusion: confusion)
        if let predictions { try Prediction.csv(rows, classNames: info.classNames).write(toFile: predictions, atomically: true, encoding: .utf8) }
        if json {
            let report = EvalReport(model: model, data: data ?? "embedded JapaneseVowels_TEST", mode: info.modeName,
                                    accuracy: evaluation.accuracy, correct: evaluation.correct, count: evaluation.count,
                                    classes: evaluation.classNames, confusion: evaluation.confusion, predictions: rows)
            try printJSON(report)
            return
        }
        printOutput("\(model) (\(info.modeName)) on \(data ?? "embedded JapaneseVowels_TEST"): "
                    + String(format: "accuracy %.4f (%d of %d)", evaluation.accuracy, evaluation.correct, evaluation.count))
        printOutput(confusionTable(evaluation), terminator: "")
        if let predictions { printOutput("predictions of \(rows.count) series in \(predictions)") }
    }
}

/// One series' prediction: its position in the data file (from 0), true and predicted class,
/// and the probability of each class in the model's class order.
struct Prediction: Codable {
    var index: Int
    var label, predicted: String
    var probabilities: [Double]

    /// index,label,predicted,p_CLASS… with one row per series; class names are quoted when
    /// they hold a comma or a quote.
    static func csv(_ rows: [Prediction], classNames: [String]) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var s = (["index", "label", "predicted"] + classNames.map { field("p_" + $0) }).joined(separator: ",") + "\n"
        for r in rows {
            s += ([String(r.index), field(r.label), field(r.predicted)] + r.probabilities.map { String(format: "%.6g", $0) })
                .joined(separator: ",") + "\n"
        }
        return s
    }
}

struct EvalReport: Codable {
    var model, data, mode: String
    var accuracy: Double
    var correct, count: Int
    var classes: [String]
    var confusion: [[Int]]
    var predictions: [Prediction]
}

/// Prints a confusion matrix with class names.
func confusionTable(_ e: Evaluation) -> String {
    let width = max(5, (e.classNames.map(\.count).max() ?? 1) + 1)
    var s = pad("true\\pred", width + 5)
    for c in e.classNames { s += pad(String(c.prefix(width - 1)), width) }
    s += "\n"
    for (i, row) in e.confusion.enumerated() {
        s += pad(String(e.classNames[i].prefix(width + 3)), width + 5)
        for v in row { s += pad(String(v), width) }
        s += "\n"
    }
    return s
}
