/// Tokens made of convolution features: each token of a long or narrow series is, for a
/// fixed bank of dilated kernels, the fraction of the token's steps at which each kernel's
/// response exceeds a bias; one more token, the last, holds the same fractions over the whole
/// series.
///
/// Why: a patch of raw values (``TrainingRecipe/patchLength(maxLength:channels:)``) leaves a
/// transformer trained on a few dozen series to learn shape detectors from scratch, and on
/// the long univariate panel datasets it stayed 20–37 points behind MiniRocket. These
/// features are MiniRocket's idea (Dempster et al., 2021): the 84 kernels of length 9 with
/// three weights of 2 and six of −1, at dilations 1, 2, 4, …, and the proportion of positive
/// values after a bias taken from a quantile of the kernel's responses on a training series.
/// Pooled per patch instead of over the whole series, they give the model shape features that
/// do not depend on where a shape lies inside its patch, and the summary token puts the
/// whole-series pooling where the classifier reads (the last real step). Nothing here is
/// trained: the kernels are fixed and the biases are fitted once, on training data only.
///
/// Every kernel's weights sum to zero, and steps outside a series repeat its first or last
/// value, so the features do not change when a constant is added to a channel.
public struct ConvolutionTokenizer: Sendable, Equatable, Codable {
    /// The channels of the series it reads.
    public let channels: Int
    /// Steps per token; tokens end at a series' last step, as patches do.
    public let patchLength: Int
    /// The dilations of the kernel bank, in increasing order.
    public let dilations: [Int]
    /// One bias per channel, dilation and kernel, in that order (kernel fastest).
    public let biases: [Float]

    /// Taps per kernel.
    public static let kernelLength = 9
    /// The taps that weigh 2 (the other six weigh −1): every choice of 3 of the 9 taps.
    static let kernels: [(Int, Int, Int)] = {
        var k: [(Int, Int, Int)] = []
        for a in 0..<9 { for b in (a + 1)..<9 { for c in (b + 1)..<9 { k.append((a, b, c)) } } }
        return k
    }()
    /// The kernels of the bank (84).
    public static var kernelCount: Int { kernels.count }
    /// The most dilations a bank holds, so that the work per step stays bounded on very long
    /// series (the largest dilations are kept: they see the series' coarse shape).
    public static let maxDilations = 10

    /// Values per token: one per channel, dilation and kernel.
    public var featureCount: Int { channels * dilations.count * Self.kernelCount }

    /// The dilations for series of up to `maxLength` steps: powers of two whose kernel spans no
    /// more than the series (8 · d < maxLength), at most ``maxDilations`` of them.
    public static func dilations(maxLength: Int) -> [Int] {
        var d = [1]
        while 8 * d.last! * 2 < maxLength { d.append(d.last! * 2) }
        return Array(d.suffix(maxDilations))
    }

    /// Creates a tokenizer from known parameters (for example, those saved with a model).
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` when a count is not positive, a dilation
    ///   is not positive, or the bias count is not channels × dilations × 84;
    ///   ``LowBitError/nonFinite(_:)`` when a bias is NaN or infinite.
    public init(channels: Int, patchLength: Int, dilations: [Int], biases: [Float]) throws {
        guard channels > 0, patchLength > 0 else {
            throw LowBitError.invalidArgument("a convolution tokenizer needs positive channels and patch length, got \(channels) and \(patchLength)")
        }
        guard !dilations.isEmpty, dilations.allSatisfy({ $0 > 0 && $0 <= Int(Int32.max) / Self.kernelLength }) else {
            throw LowBitError.invalidArgument("a convolution tokenizer needs one or more positive dilations, got \(dilations)")
        }
        guard biases.count == channels * dilations.count * Self.kernelCount else {
            throw LowBitError.invalidArgument("a convolution tokenizer of \(channels) channels and \(dilations.count) dilations needs "
                                              + "\(channels * dilations.count * Self.kernelCount) biases, got \(biases.count)")
        }
        guard biases.allSatisfy(\.isFinite) else { throw LowBitError.nonFinite("a convolution tokenizer's bias is NaN or infinite") }
        self.channels = channels
        self.patchLength = patchLength
        self.dilations = dilations
        self.biases = biases
    }

    /// Decodes a tokenizer, with the checks of ``init(channels:patchLength:dilations:biases:)``.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(channels: try c.decode(Int.self, forKey: .channels), patchLength: try c.decode(Int.self, forKey: .patchLength),
                      dilations: try c.decode([Int].self, forKey: .dilations), biases: try c.decode([Float].self, forKey: .biases))
    }

    /// Fits the biases on `train`: for each channel and dilation, the responses of every kernel
    /// on one training series drawn with `seed` (at most ``fittingSteps`` of its steps, evenly
    /// spaced), and for each kernel a quantile drawn in [0.1, 0.9]. The same data and seed give
    /// the same tokenizer.
    public init(fittedTo train: TimeSeriesDataset, patchLength: Int, seed: UInt64 = 0) throws {
        let dilations = Self.dilations(maxLength: train.maxLength)
        var rng = SeededGenerator(seed: seed ^ 0xC0_4E01_7E4B)
        var biases: [Float] = []
        biases.reserveCapacity(train.channels * dilations.count * Self.kernelCount)
        var responses = [Float]()
        for c in 0..<train.channels {
            for d in dilations {
                let i = Int.random(in: 0..<train.count, using: &rng)
                let steps = train.length(i)
                let x = (0..<steps).map { train.series[i][$0 * train.channels + c] }
                let taps = Taps(x, dilation: d)
                let sampled = stride(from: 0, to: steps, by: max(1, steps / Self.fittingSteps)).map { $0 }
                for k in 0..<Self.kernelCount {
                    responses = sampled.map { taps.response(k, $0) }
                    responses.sort()
                    let q = Float.random(in: 0.1...0.9, using: &rng)
                    let position = q * Float(responses.count - 1)
                    let lo = Int(position), hi = min(lo + 1, responses.count - 1), f = position - Float(lo)
                    biases.append(responses[lo] * (1 - f) + responses[hi] * f)
                }
            }
        }
        try self.init(channels: train.channels, patchLength: patchLength, dilations: dilations, biases: biases)
    }

    /// The most steps of a series whose responses a bias is a quantile of: enough for a
    /// quantile, and fitting stays quick on a series of 100 000 steps.
    public static let fittingSteps = 4096

    /// A channel's nine taps at one dilation for every step (t + (j − 4) · dilation, clamped
    /// to the series), and their sum: a kernel's response is 3 · (its three taps of weight 2)
    /// − (the sum of all nine).
    struct Taps {
        let steps: Int
        /// Tap j of step t at `values[j * steps + t]`.
        var values: [Float]
        var sum: [Float]

        init(_ x: [Float], dilation d: Int) {
            steps = x.count
            values = [Float](repeating: 0, count: kernelLength * x.count)
            sum = [Float](repeating: 0, count: x.count)
            let n = x.count
            for j in 0..<kernelLength {
                let shift = (j - 4) * d
                for t in 0..<n { values[j * n + t] = x[min(max(t + shift, 0), n - 1)] }
                for t in 0..<n { sum[t] += values[j * n + t] }
            }
        }

        func response(_ k: Int, _ t: Int) -> Float {
            let (a, b, c) = kernels[k]
            return 3 * (values[a * steps + t] + values[b * steps + t] + values[c * steps + t]) - sum[t]
        }
    }

    /// Tokens of a series of `steps` steps: one per patch of ``patchLength`` steps, and the
    /// summary token.
    public func tokenCount(steps: Int) -> Int { (max(steps, 1) + patchLength - 1) / patchLength + 1 }

    /// The tokens of one series (row-major [steps, channels]), row-major
    /// [``tokenCount(steps:)``, ``featureCount``]: each value is the fraction of the token's
    /// steps (the whole series' for the summary token) at which a kernel's response is above
    /// its bias.
    public func tokens(of series: [Float]) -> [Float] {
        let steps = series.count / channels, n = tokenCount(steps: steps) - 1, width = featureCount
        let first = steps - (n - 1) * patchLength   // steps in the first patch (it may be short)
        var out = [Float](repeating: 0, count: (n + 1) * width)
        out.withUnsafeMutableBufferPointer { out in
            for c in 0..<channels {
                let x = (0..<steps).map { series[$0 * channels + c] }
                for (di, d) in dilations.enumerated() {
                    let taps = Taps(x, dilation: d)
                    let feature = (c * dilations.count + di) * Self.kernelCount
                    taps.values.withUnsafeBufferPointer { v in
                        taps.sum.withUnsafeBufferPointer { sum in
                            let sum = sum.baseAddress!
                            for k in 0..<Self.kernelCount {
                                let (a, b, cc) = Self.kernels[k]
                                let (pa, pb, pc) = (v.baseAddress! + a * steps, v.baseAddress! + b * steps, v.baseAddress! + cc * steps)
                                let bias = biases[feature + k]
                                var total = 0
                                for token in 0..<n {
                                    let lo = token == 0 ? 0 : first + (token - 1) * patchLength, hi = first + token * patchLength
                                    var above = 0
                                    for t in lo..<hi where 3 * (pa[t] + pb[t] + pc[t]) - sum[t] > bias { above += 1 }
                                    out[token * width + feature + k] = Float(above) / Float(hi - lo)
                                    total += above
                                }
                                out[n * width + feature + k] = Float(total) / Float(steps)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `data` with every series replaced by its tokens: steps become tokens and channels
    /// features, labels and classes unchanged.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` when `data` has another channel count.
    public func tokens(of data: TimeSeriesDataset) throws -> TimeSeriesDataset {
        guard data.channels == channels else {
            throw LowBitError.invalidShape("\(data.name) has \(data.channels) channels, the model's convolution tokens read \(channels)")
        }
        var tokenized = data
        tokenized.channels = featureCount
        tokenized.series = data.series.map(tokens(of:))
        return tokenized
    }
}
