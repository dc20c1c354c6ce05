import Foundation
import LowBit

/// A synthetic sequence task: each class has its own mean direction and drift over time;
/// steps are that signal plus noise, lengths vary.
struct SyntheticTask {
    let classes: Int, features: Int
    var sequences: [(values: [Float], length: Int, label: Int)] = []

    init(classes: Int = 3, features: Int = 4, count: Int, maxLength: Int = 10, seed: UInt64) {
        self.classes = classes
        self.features = features
        var rng = TestRandom(seed)
        var centers = TestRandom(1234)  // the same classes for every split
        let means = (0..<classes).map { _ in (0..<features).map { _ in centers.float(1) } }
        let drift = (0..<classes).map { _ in (0..<features).map { _ in centers.float(0.2) } }
        for i in 0..<count {
            let label = i % classes
            let length = 3 + Int(rng.next() % UInt64(maxLength - 2))
            var v = [Float]()
            for t in 0..<length { for f in 0..<features { v.append(means[label][f] + drift[label][f] * Float(t) + rng.float(0.6)) } }
            sequences.append((v, length, label))
        }
    }

    /// Batches padded to their longest sequence (padding steps are zero).
    func batches(size: Int) throws -> [(SequenceBatch, [Int])] {
        try stride(from: 0, to: sequences.count, by: size).map { start in
            let part = sequences[start..<min(start + size, sequences.count)]
            let steps = part.map(\.length).max()!
            var values = [Float](repeating: 0, count: part.count * steps * features)
            for (b, s) in part.enumerated() { for i in 0..<s.values.count { values[b * steps * features + i] = s.values[i] } }
            return (try SequenceBatch(values: Tensor(shape: [part.count, steps, features], scalars: values), lengths: part.map(\.length)),
                    part.map(\.label))
        }
    }
}

func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    let num = zip(a.scalars, b.scalars).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
    let den = b.scalars.map { Double($0) * Double($0) }.reduce(0, +)
    return (num / max(den, 1e-30)).squareRoot()
}

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lowbit-tests-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// Writes Ramps_TRAIN.ts and Ramps_TEST.ts into `dir`: univariate series, rising ("up") and
/// falling ("down") in turn, lengths 10 to 16, with uniform noise of amplitude 1. A small
/// dataset any mode learns in a few steps.
func writeRamps(_ dir: URL, train: Int, test: Int, seed: UInt64) throws -> (train: URL, test: URL) {
    var rng = SeededGenerator(seed: seed)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    var files: [URL] = []
    for (split, count) in [("TRAIN", train), ("TEST", test)] {
        var text = "@problemName Ramps\n@univariate true\n@classLabel true up down\n@data\n"
        for i in 0..<count {
            let n = 10 + i % 7
            text += (0..<n).map { t in String(Float(i % 2 == 0 ? t : n - t) + rng.signedUnit()) }.joined(separator: ",")
                + ":" + (i % 2 == 0 ? "up" : "down") + "\n"
        }
        let url = dir.appendingPathComponent("Ramps_\(split).ts")
        try text.write(to: url, atomically: true, encoding: .utf8)
        files.append(url)
    }
    return (files[0], files[1])
}
