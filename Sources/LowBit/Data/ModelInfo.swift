import Foundation

/// What a saved model needs, besides its weights, to classify raw series: the class names,
/// the training data's standardization and how steps become tokens.
public struct ModelInfo: Sendable, Equatable, Codable {
    /// The class names, in the order of the model's outputs: output `i` is `classNames[i]`.
    public var classNames: [String]
    /// The training data's per-channel mean and deviation, applied to every series before the
    /// model reads it.
    public var standardization: ChannelStandardization
    /// The mode the model was trained in, as ``TrainingSettings/modeName`` spells it: "float" or
    /// a quantization mode's name, with "+qt" for a quantized backward.
    public var modeName: String
    /// Steps per token (``TrainingSettings/patchLength``).
    public var patchLength: Int
    /// With convolution tokens, what turns a raw series into the model's tokens (its patch
    /// length is ``patchLength``); ``standardization`` then applies to the tokens' features.
    /// Nil: tokens are patches of raw values.
    public var tokenizer: ConvolutionTokenizer?

    /// Creates the description of a model; `patchLength` defaults to one step per token.
    public init(classNames: [String], standardization: ChannelStandardization, modeName: String, patchLength: Int = 1,
                tokenizer: ConvolutionTokenizer? = nil) {
        self.classNames = classNames
        self.standardization = standardization
        self.modeName = modeName
        self.patchLength = patchLength
        self.tokenizer = tokenizer
    }

    /// The channels of the raw series the model classifies.
    public var channels: Int { tokenizer?.channels ?? standardization.mean.count }

    /// Decodes files written before patches existed as one step per token.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(classNames: try c.decode([String].self, forKey: .classNames),
                  standardization: try c.decode(ChannelStandardization.self, forKey: .standardization),
                  modeName: try c.decode(String.self, forKey: .modeName),
                  patchLength: try c.decodeIfPresent(Int.self, forKey: .patchLength) ?? 1,
                  tokenizer: try c.decodeIfPresent(ConvolutionTokenizer.self, forKey: .tokenizer))
    }

    /// Examples `indices` of `data` as the model reads them: labels in the model's classes,
    /// standardized, cut into patches, at most `windowSize` tokens (the newest).
    public func batch(_ data: TimeSeriesDataset, _ indices: [Int], windowSize: Int) throws -> (batch: SequenceBatch, labels: [Int]) {
        try checkChannels(data)
        guard let tokenizer else {
            return try data.relabelled(to: classNames).batch(indices, standardization: standardization, maxSteps: windowSize, patchLength: patchLength)
        }
        return try tokenInfo.batch(try tokenizer.tokens(of: data.subset(indices)), Array(indices.indices), windowSize: windowSize)
    }

    /// All of `data`, in order, in batches of `size`, as ``batch(_:_:windowSize:)`` reads them.
    public func batches(_ data: TimeSeriesDataset, size: Int = 64, windowSize: Int) throws -> [(batch: SequenceBatch, labels: [Int])] {
        try tokens(of: data).relabelled(to: classNames).batches(size: size, standardization: standardization, maxSteps: windowSize,
                                                                patchLength: tokenInfo.patchLength)
    }

    /// `data` as tokens: itself, or with convolution tokens its series' tokens (one step per
    /// token, one channel per feature), to be batched by ``tokenInfo``. A training run
    /// tokenizes its data once this way rather than at every step.
    public func tokens(of data: TimeSeriesDataset) throws -> TimeSeriesDataset {
        try checkChannels(data)
        return try tokenizer?.tokens(of: data) ?? data
    }

    /// How data already turned into tokens by ``tokens(of:)`` is batched: this description
    /// without its tokenizer, one step per token.
    public var tokenInfo: ModelInfo {
        guard tokenizer != nil else { return self }
        var info = self
        info.tokenizer = nil
        info.patchLength = 1
        return info
    }

    private func checkChannels(_ data: TimeSeriesDataset) throws {
        guard data.channels == channels else {
            throw LowBitError.invalidShape("\(data.name) has \(data.channels) channels, the model takes \(channels)")
        }
    }

    static let metadataKey = "lowbit.data"

    func metadata() throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [Self.metadataKey: String(decoding: try encoder.encode(self), as: UTF8.self)]
    }

    init(metadata: [String: String], path: String) throws {
        guard let text = metadata[Self.metadataKey], let info = try? JSONDecoder().decode(ModelInfo.self, from: Data(text.utf8)) else {
            throw LowBitError.invalidFile(path: path, reason: "no readable class names and standardization ('\(Self.metadataKey)' metadata)")
        }
        guard info.classNames.count >= 2, info.patchLength >= 1, (try? ChannelStandardization(mean: info.standardization.mean, deviation: info.standardization.deviation)) != nil else {
            throw LowBitError.invalidFile(path: path, reason: "invalid class names or standardization in '\(Self.metadataKey)'")
        }
        guard Set(info.classNames).count == info.classNames.count else {
            let repeated = Dictionary(grouping: info.classNames, by: { $0 }).filter { $1.count > 1 }.keys.sorted()
            throw LowBitError.invalidFile(path: path, reason: "class names repeat (\(repeated.map { "'\($0)'" }.joined(separator: ", "))) in '\(Self.metadataKey)'")
        }
        let mode = info.modeName.hasSuffix("+qt") ? String(info.modeName.dropLast(3)) : info.modeName
        guard mode == "float" || QuantizationMode(rawValue: mode) != nil else {
            throw LowBitError.invalidFile(path: path, reason: "unknown mode '\(info.modeName)' in '\(Self.metadataKey)'")
        }
        if let t = info.tokenizer, t.featureCount != info.standardization.mean.count || t.patchLength != info.patchLength {
            throw LowBitError.invalidFile(path: path, reason: "the convolution tokens (\(t.featureCount) features, patches of \(t.patchLength)) do not match "
                                          + "the standardization (\(info.standardization.mean.count) features) and patch length (\(info.patchLength)) in '\(Self.metadataKey)'")
        }
        guard info.patchLength <= TrainingRecipe.maxTokenValues else {
            throw LowBitError.invalidFile(path: path, reason: "patch length \(info.patchLength) exceeds the limit of \(TrainingRecipe.maxTokenValues)")
        }
        self = info
    }
}
