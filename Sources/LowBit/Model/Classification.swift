import Foundation

/// A packed classifier's answer for one series: the predicted class and the probability of
/// every class (the ensemble's mean for an ensemble).
public struct Classification: Sendable, Equatable, Codable {
    /// The predicted class: the most probable one.
    public var label: String
    /// The model's classes, in its order.
    public var classNames: [String]
    /// The probability of each class, in `classNames` order; they sum to 1.
    public var probabilities: [Double]

    /// The probability of class `name`, or nil when the model has no such class.
    public func probability(of name: String) -> Double? {
        classNames.firstIndex(of: name).map { probabilities[$0] }
    }
}

extension PackedClassifier {
    /// Classifies one raw series, given as steps × channels (`series[t][c]`), exactly as
    /// the training data was read: standardized with the training data's statistics, cut
    /// into the model's patches, at most the model's window (the newest steps).
    public func classify(_ series: [[Float]]) throws -> Classification {
        try classify([series])[0]
    }

    /// Classifies several raw series (series × steps × channels), each on its own.
    public func classify(_ series: [[[Float]]]) throws -> [Classification] {
        let info = try requireInfo()
        let channels = info.channels
        for (i, s) in series.enumerated() {
            guard !s.isEmpty else { throw LowBitError.invalidShape("series \(i) has no steps") }
            if let t = s.firstIndex(where: { $0.count != channels }) {
                throw LowBitError.invalidShape("series \(i), step \(t) has \(s[t].count) values, the model takes \(channels) channels")
            }
        }
        let data = try TimeSeriesDataset(name: "input", channels: channels, series: series.map { $0.flatMap { $0 } },
                                         labels: [Int](repeating: 0, count: series.count), classNames: info.classNames)
        return try classify(data)
    }

    /// Classifies every series of `data` (its labels are not read), in order.
    public func classify(_ data: TimeSeriesDataset) throws -> [Classification] {
        let info = try requireInfo()
        var out: [Classification] = []
        out.reserveCapacity(data.count)
        for (batch, _) in try info.batches(try unlabelled(data, info), windowSize: configuration.maxSteps) {
            for p in try probabilities(batch) {
                let best = p.indices.max { p[$0] < p[$1] }!
                out.append(Classification(label: info.classNames[best], classNames: info.classNames, probabilities: p))
            }
        }
        return out
    }

    /// Accuracy, confusion matrix and mean cross-entropy on the labelled `data`, whose
    /// classes must be among the model's.
    public func evaluate(on data: TimeSeriesDataset) throws -> Evaluation {
        let info = try requireInfo()
        let labelled = try data.relabelled(to: info.classNames)
        let answers = try classify(labelled)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: info.classNames.count), count: info.classNames.count)
        var loss = 0.0
        for (answer, label) in zip(answers, labelled.labels) {
            confusion[label][info.classNames.firstIndex(of: answer.label)!] += 1
            loss -= log(max(answer.probabilities[label], Double.leastNormalMagnitude))
        }
        return Evaluation(classNames: info.classNames, confusion: confusion, meanCrossEntropy: loss / Double(max(data.count, 1)))
    }

    /// Static-range calibration on raw series (their labels are not read): the statistics of
    /// every quantized layer are gathered afresh on `data` and frozen as fixed activation
    /// ranges. See ``calibrate(_:)``.
    public func calibrate(on data: TimeSeriesDataset) throws {
        let info = try requireInfo()
        try calibrate(try info.batches(try unlabelled(data, info), windowSize: configuration.maxSteps).map(\.batch))
    }

    /// `data` under the model's class list with every label 0: for reading series whose
    /// labels do not matter (or are not among the model's classes).
    private func unlabelled(_ data: TimeSeriesDataset, _ info: ModelInfo) throws -> TimeSeriesDataset {
        try TimeSeriesDataset(name: data.name, channels: data.channels, series: data.series,
                              labels: [Int](repeating: 0, count: data.count), classNames: info.classNames)
    }

    func requireInfo() throws -> ModelInfo {
        guard let info else {
            throw LowBitError.invalidArgument("this packed model has no class names or standardization: pack it with "
                                              + "`info:` (a training run's `info`), or load it from a file")
        }
        return info
    }
}
