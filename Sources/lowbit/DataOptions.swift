import ArgumentParser
import Foundation
import LowBit

/// `--data` and `--test`: a training file and its test split, or the embedded JapaneseVowels.
struct DataOptions: ParsableArguments {
    @Option(help: "Training data: a .ts file (UEA/UCR) or CSV/TSV (default: the embedded JapaneseVowels).")
    var data: String?
    @Option(help: "Test data (default: the _TEST sibling of --data; without one, 25% of --data is held out).")
    var test: String?

    /// The training and test splits, and a description of where the test split came from.
    func load(seed: UInt64) throws -> (train: TimeSeriesDataset, test: TimeSeriesDataset, testSource: String) {
        guard let data else {
            if let test { return try checked(try Datasets.japaneseVowels().train, try Datasets.read(test), test) }
            let (train, test) = try Datasets.japaneseVowels()
            return (train, test, "embedded JapaneseVowels_TEST")
        }
        let train = try Datasets.read(data)
        if let path = test ?? Datasets.testSibling(of: data) { return try checked(train, try Datasets.read(path), path) }
        let (kept, held) = try train.split(holdingOut: 0.25, seed: seed)
        return (kept, held, "25% of \(data) held out (no --test and no _TEST sibling)")
    }

    /// The pair, once the test data is known to fit a model trained on `train`: refused
    /// before training rather than after it.
    private func checked(_ train: TimeSeriesDataset, _ test: TimeSeriesDataset, _ path: String) throws
        -> (train: TimeSeriesDataset, test: TimeSeriesDataset, testSource: String) {
        try test.checkEvaluable(trainedOn: train, source: path)
        return (train, test, path)
    }
}

/// Writes to standard output at once (unbuffered, so that it interleaves with the progress
/// on standard error in order).
func printOutput(_ text: String, terminator: String = "\n") {
    FileHandle.standardOutput.write(Data((text + terminator).utf8))
}

/// Writes `value` as one line of JSON with sorted keys to standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    printOutput(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Writes to standard error.
func printError(_ text: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((text + terminator).utf8))
}

/// Parses "float", a quantization mode, a comma-separated list of them, or "all".
func parseModes(_ text: String) throws -> [QuantizationMode?] {
    if text == "all" { return [nil] + QuantizationMode.trainingOrder }
    return try text.split(separator: ",").map { name in
        let n = name.trimmingCharacters(in: .whitespaces).lowercased()
        if n == "float" || n == "f32" { return nil }
        do { return try QuantizationMode(parsing: n) } catch {
            throw ValidationError("unknown mode '\(n)'; valid: all, float, \(QuantizationMode.trainingOrder.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

