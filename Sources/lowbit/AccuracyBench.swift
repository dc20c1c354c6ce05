import ArgumentParser
import Foundation
import LowBit

/// `lowbit bench accuracy`: `lowbit train` with its defaults on every dataset of a panel,
/// for several seeds, every mode: the accuracy a new user gets, dataset by dataset.
struct AccuracyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accuracy",
        abstract: "Train every mode with the default recipe on each panel dataset and seed; print the median test accuracy per mode.",
        discussion: """
            Each dataset and seed is one `lowbit train --data DIR/NAME/NAME_TRAIN.ts --seed S` (test split NAME_TEST.ts), \
            with the defaults. The panel (--panel) is the repository's Tests/Data/panel: UEA/UCR datasets ArrowHead, \
            ItalyPowerDemand, OSULeaf, ACSF1, CardanoSentiment (sign of its sentiment as the class) and JapaneseVowels \
            (the embedded copy when the panel has none). Benchmarks/accuracy_panel.sh runs MiniRocket beside it.
            """)

    static let panel = ["ArrowHead", "ItalyPowerDemand", "OSULeaf", "ACSF1", "CardanoSentiment", "JapaneseVowels"]

    @Option(help: "Folder of the panel: NAME/NAME_TRAIN.ts and NAME/NAME_TEST.ts per dataset.") var panel = "Tests/Data/panel"
    @Option(help: "Datasets, comma-separated.") var datasets = AccuracyBench.panel.joined(separator: ",")
    @Option(help: "Seeds, comma-separated; the table shows the median over them.") var seeds = "0,1,2"
    @Option(help: "Modes: all, or a comma-separated list.") var mode = "all"
    @Option(help: "Optimizer steps per model, instead of the recipe's budget (for a quick look; the table's targets are for the default).")
    var steps: Int?
    @Option(help: "Where each run writes its files (DIR/NAME/seed-S/).") var out = "out/bench-accuracy"
    @Flag(help: "Print only a JSON array (one object per dataset and mode) on standard output.") var json = false

    func validate() throws {
        _ = try parseModes(mode)
        _ = try seedList()
        guard !datasets.isEmpty else { throw ValidationError("--datasets is empty") }
    }

    func seedList() throws -> [UInt64] {
        try seeds.split(separator: ",").map {
            guard let s = UInt64($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--seeds: '\($0)' is not a seed") }
            return s
        }
    }

    /// The training file of `name`: in the panel, or the embedded JapaneseVowels.
    func trainingFile(_ name: String) throws -> String {
        let path = URL(fileURLWithPath: panel).appendingPathComponent(name).appendingPathComponent("\(name)_TRAIN.ts").path
        if FileManager.default.fileExists(atPath: path) { return path }
        if name == "JapaneseVowels" { return try Datasets.japaneseVowelsPath("TRAIN") }
        throw ValidationError("\(path) does not exist: --panel must hold NAME/NAME_TRAIN.ts and NAME_TEST.ts for each of --datasets")
    }

    func run() throws {
        let names = datasets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let files = try names.map(trainingFile)
        var rows: [AccuracyRow] = []
        for (name, file) in zip(names, files) {
            var runs: [(seed: UInt64, results: [TrainResult], seconds: Double)] = []
            for seed in try seedList() {
                let dir = URL(fileURLWithPath: out).appendingPathComponent(name).appendingPathComponent("seed-\(seed)").path
                printError("== \(name), seed \(seed)")
                let train = try Train.parse(["--data", file, "--seed", String(seed), "--mode", mode, "--out", dir, "--json"]
                                            + (steps.map { ["--steps", String($0)] } ?? []))
                let (results, _, seconds) = try train.trainModes(group: nil)
                runs.append((seed, results, seconds))
            }
            for (i, first) in runs[0].results.enumerated() {
                let accuracies = runs.map { $0.results[i].testAccuracy ?? .nan }
                rows.append(AccuracyRow(
                    dataset: name, mode: first.mode, seeds: runs.map(\.seed), accuracies: accuracies, medianAccuracy: median(accuracies),
                    trainSeconds: median(runs.map { $0.results[i].trainSeconds }), wallSeconds: median(runs.map(\.seconds)),
                    packedBytes: first.packedBytes, patchLength: first.settings.patchLength, tokens: first.settings.tokens, epochs: first.settings.epochs))
            }
            if !json { printError(AccuracyRow.table(rows.filter { $0.dataset == name }), terminator: "") }
        }
        if json {
            try printJSON(rows)
        } else {
            printOutput(AccuracyRow.table(rows), terminator: "")
        }
    }
}

/// One dataset and mode of `bench accuracy`.
struct AccuracyRow: Codable {
    var dataset, mode: String
    var seeds: [UInt64]
    /// Test accuracy per seed, in `seeds` order.
    var accuracies: [Double]
    var medianAccuracy: Double
    /// Median over seeds of the mode's training seconds (every model of its ensemble).
    var trainSeconds: Double
    /// Median over seeds of the whole `lowbit train` run: every mode, packing, evaluation.
    var wallSeconds: Double
    var packedBytes: Int
    var patchLength: Int
    /// What a token held: "patches" (raw values) or "convolution" (features).
    var tokens: TokenKind
    var epochs: Int

    enum CodingKeys: String, CodingKey {
        case dataset, mode, seeds, accuracies, epochs, tokens
        case medianAccuracy = "median_accuracy", trainSeconds = "train_seconds", wallSeconds = "wall_seconds"
        case packedBytes = "packed_bytes", patchLength = "patch_length"
    }

    static func table(_ rows: [AccuracyRow]) -> String {
        var s = pad("dataset", 17) + pad("mode", 8) + pad("median acc", 11) + pad("per seed", 24) + pad("train s", 9)
            + pad("all modes s", 12) + pad("packed bytes", 13) + "tokens\n"
        for r in rows {
            s += pad(r.dataset, 17) + pad(r.mode, 8) + pad(String(format: "%.4f", r.medianAccuracy), 11)
                + pad(r.accuracies.map { String(format: "%.3f", $0) }.joined(separator: " "), 24)
                + pad(String(format: "%.1f", r.trainSeconds), 9) + pad(String(format: "%.1f", r.wallSeconds), 12)
                + pad(String(r.packedBytes), 13) + "\(r.tokens.rawValue), patch \(r.patchLength)\n"
        }
        return s
    }
}

/// The median (the mean of the middle two for an even count).
func median(_ values: [Double]) -> Double {
    let v = values.sorted()
    guard !v.isEmpty else { return .nan }
    return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}
