/// Labelled multivariate time series of possibly different lengths, as read from a `.ts`
/// or CSV file: what a classifier trains and is evaluated on.
public struct TimeSeriesDataset: Sendable, Equatable {
    /// The problem's name (`@problemName`, or the file's name).
    public var name: String
    /// Values per step.
    public var channels: Int
    /// One series per example, row-major [steps, channels].
    public var series: [[Float]]
    /// Each example's class, an index into `classNames`.
    public var labels: [Int]
    /// Class names in their declared order (the order of `@classLabel`, or of first
    /// appearance).
    public var classNames: [String]

    /// Creates a dataset from flat series, each row-major [steps, channels], and one label per
    /// series, an index into `classNames`.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` when `channels` is not positive, there is no
    ///   series, the counts of series and labels differ, a series is empty or not a whole number
    ///   of steps, or a label is outside `classNames`; ``LowBitError/nonFinite(_:)`` when a value
    ///   is NaN or infinite.
    public init(name: String, channels: Int, series: [[Float]], labels: [Int], classNames: [String]) throws {
        guard channels > 0 else { throw LowBitError.invalidArgument("\(name): a dataset needs at least one channel") }
        guard !series.isEmpty else { throw LowBitError.invalidArgument("\(name): the dataset holds no series") }
        guard series.count == labels.count else {
            throw LowBitError.invalidArgument("\(name): \(series.count) series but \(labels.count) labels")
        }
        if let i = series.firstIndex(where: { $0.isEmpty || $0.count % channels != 0 }) {
            throw LowBitError.invalidArgument("\(name): series \(i) has \(series[i].count) values, not a positive multiple of \(channels) channels")
        }
        var seen = Set<String>()
        if let twice = classNames.first(where: { !seen.insert($0).inserted }) {
            throw LowBitError.invalidArgument("\(name): class name '\(twice)' appears twice")
        }
        if let i = labels.firstIndex(where: { !classNames.indices.contains($0) }) {
            throw LowBitError.invalidArgument("\(name): series \(i) has label index \(labels[i]) outside the \(classNames.count) classes")
        }
        if let i = series.firstIndex(where: { $0.contains { !$0.isFinite } }) {
            throw LowBitError.nonFinite("\(name): series \(i) holds NaN or infinity")
        }
        self.name = name
        self.channels = channels
        self.series = series
        self.labels = labels
        self.classNames = classNames
    }

    /// A dataset from nested arrays, series × steps × channels (`series[i][t][c]`), and one
    /// label per series. The classes are the distinct labels in order of first appearance,
    /// as the CSV reader names them, unless `classNames` gives the order.
    public init(name: String = "data", series: [[[Float]]], labels: [String], classNames: [String]? = nil) throws {
        guard let first = series.first?.first else { throw LowBitError.invalidArgument("\(name): the dataset holds no series, or its first series no steps") }
        for (i, s) in series.enumerated() {
            if let t = s.firstIndex(where: { $0.count != first.count }) {
                throw LowBitError.invalidArgument("\(name): series \(i), step \(t) has \(s[t].count) values, series 0 has \(first.count) channels")
            }
        }
        var names = classNames ?? []
        if classNames == nil { for l in labels where !names.contains(l) { names.append(l) } }
        let indices = try labels.enumerated().map { i, l in
            guard let k = names.firstIndex(of: l) else { throw LowBitError.invalidArgument("\(name): series \(i) has label '\(l)', not among the class names") }
            return k
        }
        try self.init(name: name, channels: first.count, series: series.map { $0.flatMap { $0 } }, labels: indices, classNames: names)
    }

    /// The number of series (examples).
    public var count: Int { series.count }
    /// Returns the number of steps of series `i`.
    public func length(_ i: Int) -> Int { series[i].count / channels }
    /// The number of steps of each series, in order.
    public var lengths: [Int] { series.map { $0.count / channels } }
    /// The number of steps of the longest series (0 when there is none).
    public var maxLength: Int { lengths.max() ?? 0 }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> TimeSeriesDataset {
        var d = self
        d.series = indices.map { series[$0] }
        d.labels = indices.map { labels[$0] }
        return d
    }

    /// This dataset's labels re-expressed in `classNames` (a model's class list). A class
    /// that list lacks is an error naming it.
    public func relabelled(to classNames: [String]) throws -> TimeSeriesDataset {
        guard classNames != self.classNames else { return self }
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })
        var d = self
        d.labels = try labels.map { l in
            guard let j = index[self.classNames[l]] else {
                throw LowBitError.invalidArgument("\(name): class '\(self.classNames[l])' is not one of the model's classes \(classNames)")
            }
            return j
        }
        d.classNames = classNames
        return d
    }

    /// Checks, before any training, that a model trained on `train` can be evaluated on this
    /// data: the same channels, classes among the training data's, and values that stay
    /// finite once standardized with the training data's statistics. The error names `source`
    /// (the file this data came from).
    public func checkEvaluable(trainedOn train: TimeSeriesDataset, source: String) throws {
        guard channels == train.channels else {
            throw LowBitError.invalidFile(path: source, reason: "\(channels) channels, the training data (\(train.name)) has \(train.channels)")
        }
        let known = Set(train.classNames)
        if let stranger = classNames.first(where: { !known.contains($0) && labels.contains(classNames.firstIndex(of: $0)!) }) {
            throw LowBitError.invalidFile(path: source, reason: "class '\(stranger)' does not occur in the training data (\(train.classNames.joined(separator: ", ")))")
        }
        let standardization = ChannelStandardization(fitting: train)
        for (i, s) in series.enumerated() {
            for (j, v) in s.enumerated() where !((v - standardization.mean[j % channels]) / standardization.deviation[j % channels]).isFinite {
                throw LowBitError.invalidFile(path: source, reason: "series \(i + 1), step \(j / channels + 1): the value \(v) overflows once "
                                              + "standardized with the training data's mean and deviation")
            }
        }
    }

    /// A stratified split: about `fraction` of each class goes to the second part, drawn
    /// with `seed`; both parts keep the original order.
    public func split(holdingOut fraction: Double, seed: UInt64) throws -> (kept: TimeSeriesDataset, heldOut: TimeSeriesDataset) {
        guard fraction >= 0, fraction <= 1 else { throw LowBitError.invalidArgument("\(name): the held-out fraction must be in [0, 1], got \(fraction)") }
        var rng = SeededGenerator(seed: seed)
        var held = Set<Int>()
        for c in classNames.indices {
            var members = labels.indices.filter { labels[$0] == c }
            members.shuffle(using: &rng)
            held.formUnion(members.prefix(Int((Double(members.count) * fraction).rounded())))
        }
        let all = Array(series.indices)
        return (subset(all.filter { !held.contains($0) }), subset(all.filter { held.contains($0) }))
    }

    /// Examples at `indices` as one batch padded to its longest series (padding is zero and
    /// masked by the lengths), after `standardization`.
    ///
    /// With `patchLength` P above 1, each token is P consecutive steps (their P · channels
    /// values, step-major): patches end at the series' last step, so the last token always
    /// holds the newest P steps and a length that is not a multiple of P leaves zeros at the
    /// start of the first token. A series longer than `maxSteps` tokens keeps its last
    /// `maxSteps` · P steps.
    public func batch(_ indices: [Int], standardization: ChannelStandardization?, maxSteps: Int = .max,
                      patchLength: Int = 1) throws -> (batch: SequenceBatch, labels: [Int]) {
        guard !indices.isEmpty else { throw LowBitError.invalidArgument("an empty batch") }
        guard patchLength > 0 else { throw LowBitError.invalidArgument("patch length must be positive, got \(patchLength)") }
        guard maxSteps > 0 else { throw LowBitError.invalidArgument("maxSteps must be positive, got \(maxSteps)") }
        if let s = standardization, s.mean.count != channels {
            throw LowBitError.invalidShape("\(name) has \(channels) channels, the standardization (and the model) \(s.mean.count)")
        }
        let p = patchLength, width = channels * p
        let kept = indices.map { maxSteps > Int.max / p ? length($0) : min(length($0), maxSteps * p) }
        let lengths = kept.map { ($0 + p - 1) / p }
        let steps = lengths.max()!
        var values = [Float](repeating: 0, count: indices.count * steps * width)
        values.withUnsafeMutableBufferPointer { out in
            for (b, i) in indices.enumerated() {
                let source = (length(i) - kept[b]) * channels
                // Zeros before the series so that the last patch ends at its last step.
                let start = b * steps * width + (lengths[b] * p - kept[b]) * channels
                series[i].withUnsafeBufferPointer { x in
                    for j in 0..<(kept[b] * channels) {
                        var v = x[source + j]
                        if let s = standardization { v = (v - s.mean[j % channels]) / s.deviation[j % channels] }
                        out[start + j] = v
                    }
                }
            }
        }
        return (try SequenceBatch(values: Tensor(shape: [indices.count, steps, width], scalars: values), lengths: lengths),
                indices.map { labels[$0] })
    }

    /// Every example in batches of `size`, in order.
    public func batches(size: Int, standardization: ChannelStandardization?, maxSteps: Int = .max,
                        patchLength: Int = 1) throws -> [(batch: SequenceBatch, labels: [Int])] {
        guard size > 0 else { throw LowBitError.invalidArgument("batch size must be positive, got \(size)") }
        return try stride(from: 0, to: count, by: size).map {
            try batch(Array($0..<min($0 + size, count)), standardization: standardization, maxSteps: maxSteps, patchLength: patchLength)
        }
    }

    /// Tokens of the longest series once cut into patches of `patchLength` steps.
    public func maxTokens(patchLength: Int) -> Int { (maxLength + patchLength - 1) / max(patchLength, 1) }
}

/// Per-channel mean and standard deviation, taken over every real step of a training set
/// and applied to every split, so that the test data never informs the model.
public struct ChannelStandardization: Sendable, Equatable, Codable {
    /// The mean of each channel, subtracted from its values before they are divided by
    /// ``deviation``.
    public var mean: [Float]
    /// Never zero: a constant channel gets 1.
    public var deviation: [Float]

    /// Creates a standardization from known statistics, one mean and one deviation per channel
    /// (for example, those saved with a model).
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` when the arrays are empty or differ in
    ///   length, a value is not finite, or a deviation is not positive.
    public init(mean: [Float], deviation: [Float]) throws {
        guard mean.count == deviation.count, !mean.isEmpty else {
            throw LowBitError.invalidArgument("standardization needs one mean and one deviation per channel")
        }
        guard (mean + deviation).allSatisfy(\.isFinite), deviation.allSatisfy({ $0 > 0 }) else {
            throw LowBitError.invalidArgument("standardization needs finite means and positive deviations")
        }
        self.mean = mean
        self.deviation = deviation
    }

    /// Fits the statistics to `data`: each channel's mean and population standard deviation over
    /// every step of every series. A (nearly) constant channel, whose deviation is at most
    /// 1e-6 · max(1, |mean|), gets a deviation of 1, so that standardizing never divides by zero.
    public init(fitting data: TimeSeriesDataset) {
        let c = data.channels
        var sum = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
        var n = 0.0
        for s in data.series {
            for (j, v) in s.enumerated() {
                sum[j % c] += Double(v)
                sq[j % c] += Double(v) * Double(v)
            }
            n += Double(s.count / c)
        }
        mean = sum.map { Float($0 / n) }
        deviation = (0..<c).map { j in
            let variance = max(sq[j] / n - (sum[j] / n) * (sum[j] / n), 0)
            let d = Float(variance.squareRoot())
            return d > 1e-6 * max(1, abs(Float(sum[j] / n))) ? d : 1
        }
    }
}
