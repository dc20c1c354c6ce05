import ArgumentParser
import Foundation
import LowBit

/// `lowbit generate`: a synthetic classification set of any size, as `.ts` files.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a seeded synthetic multivariate classification set (NAME_TRAIN.ts and NAME_TEST.ts) of any size.",
        discussion: """
            Every series is noise with one pulse per channel; a class is the order in which the channels pulse, so \
            nothing but the timing separates the classes. The same seed gives the same series; a larger --series \
            extends a smaller one. Train with `lowbit train --data OUT/NAME_TRAIN.ts` (the _TEST file is found beside it).
            """)

    @Option(help: "Training series.") var series = 50_000
    @Option(help: "Test series (after the training ones; default a fifth of --series).") var testSeries: Int?
    @Option(help: "Steps per series.") var steps = 100
    @Option(help: "Channels (values per step).") var channels = 8
    @Option(help: "Classes (distinct orders of the channels' pulses).") var classes = 4
    @Option(help: "Standard deviation of the noise around pulses of height 1.") var noise: Float = 0.5
    @Option(help: "Seed of the class orders and of every series.") var seed: UInt64 = 0
    @Option(help: "Problem name, and the files' stem.") var name = "Synthetic"
    @Option(help: "Output directory.") var out = "data"

    func validate() throws {
        guard series >= 1 else { throw ValidationError("--series must be at least 1, got \(series)") }
        if let testSeries, testSeries < 1 { throw ValidationError("--test-series must be at least 1, got \(testSeries)") }
        guard !name.isEmpty, !name.contains(where: { " /:".contains($0) }) else { throw ValidationError("--name must be a plain file stem, got '\(name)'") }
    }

    func run() throws {
        let generator = try SyntheticSeries(steps: steps, channels: channels, classes: classes, noise: noise, seed: seed)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let tests = testSeries ?? max(1, series / 5)
        for (split, first, count) in [("TRAIN", 0, series), ("TEST", series, tests)] {
            let path = URL(fileURLWithPath: out).appendingPathComponent("\(name)_\(split).ts").path
            try TSFile.write(try generator.dataset(series: count, first: first, name: name), to: path)
            printOutput("\(path): \(count) series × \(steps) steps × \(channels) channels, \(classes) classes")
        }
    }
}
