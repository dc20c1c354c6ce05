/// The defaults of `lowbit train` that depend on the data's shape: how many steps make one
/// token (patches), and how many epochs spend the step budget. One rule for every dataset,
/// from its length, channels and size alone; every choice can be overridden, and each was
/// chosen on validation splits held out of training data (docs/accuracy.md).
///
/// Why a step budget: a fixed epoch count gives a 36-series dataset a tenth of the updates
/// a 270-series one gets. Why patches: one step of a univariate series is one number, too
/// little for a token, and attention over T steps costs T² per head; a patch of P steps
/// turns T steps into T / P tokens of P · channels values each (as PatchTST does).
public struct TrainingRecipe: Sendable, Equatable, Codable {
    /// Optimizer steps per model, whatever the dataset's size. 680 is what JapaneseVowels'
    /// previous default (40 epochs of 17 batches) took, so its runs are unchanged.
    public var steps: Int
    /// The most tokens a series of the dataset's longest length becomes.
    public var maxTokens: Int
    /// The fewest values one token holds (steps · channels), so a univariate or
    /// two-channel series is read a few steps at a time.
    public var minTokenValues: Int
    /// Dropout of a model whose tokens are patches (P > 1). A model that reads one step per
    /// token keeps the settings' own dropout (0.2, chosen on JapaneseVowels).
    public var patchDropout: Float
    /// Augmentation of a model whose tokens are patches (P > 1); none for one step per token.
    public var patchAugmentation: Augmentation

    /// Creates a recipe. The defaults are those of `lowbit train`: 680 steps, at most 32 tokens
    /// of at least 4 values each, and for patches no dropout and augmentation with a crop of
    /// 0.2, a scale of 0.2 and a jitter of 0.1.
    public init(steps: Int = 680, maxTokens: Int = 32, minTokenValues: Int = 4, patchDropout: Float = 0,
                patchAugmentation: Augmentation = Augmentation(crop: 0.2, scale: 0.2, jitter: 0.1)) {
        self.steps = steps
        self.maxTokens = maxTokens
        self.minTokenValues = minTokenValues
        self.patchDropout = patchDropout
        self.patchAugmentation = patchAugmentation
    }

    /// The widest token a model takes (channels · patch length): bounds the input
    /// projection, and with it how long a series can be (``maxTokens`` times this many
    /// values). A longer series is refused before anything is allocated for it.
    public static let maxTokenValues = 65536

    /// Steps per token for series of up to `maxLength` steps of `channels` values: enough to
    /// fit the longest series in ``maxTokens`` tokens, and for a token to hold at least
    /// ``minTokenValues`` values, but never more steps than the series has.
    public func patchLength(maxLength: Int, channels: Int) -> Int {
        let forLength = (maxLength + maxTokens - 1) / maxTokens
        let forWidth = (minTokenValues + channels - 1) / max(channels, 1)
        return max(1, min(max(forLength, forWidth), max(maxLength, 1)))
    }

    /// What tokens hold for series of up to `maxLength` steps of `channels` values: convolution
    /// features wherever raw values would need patches (a patch longer than one step), raw
    /// values otherwise. On the validation splits of the long and univariate panel datasets,
    /// convolution tokens were 10–30 points ahead of raw patches (docs/accuracy.md); a series
    /// whose steps already make tokens (JapaneseVowels' 12 channels) keeps them.
    public func tokens(maxLength: Int, channels: Int) -> TokenKind {
        patchLength(maxLength: maxLength, channels: channels) > 1 ? .convolution : .patches
    }

    /// Steps per convolution token: enough to fit the longest series in ``maxTokens`` tokens
    /// (plus the summary token). A token holds 84 features per channel and dilation already,
    /// so no width floor applies.
    public func convolutionPatchLength(maxLength: Int) -> Int {
        max(1, (maxLength + maxTokens - 1) / maxTokens)
    }

    /// Epochs that spend about ``steps`` optimizer steps on `trainCount` series in batches of
    /// `batchSize` (at least one).
    public func epochs(trainCount: Int, batchSize: Int) -> Int {
        let perEpoch = max((trainCount + batchSize - 1) / max(batchSize, 1), 1)
        return max(1, Int((Double(steps) / Double(perEpoch)).rounded()))
    }

    /// Warmup epochs: 5 % of the run (2 of JapaneseVowels' 40 epochs, as before).
    public func warmupEpochs(epochs: Int) -> Int { Int((Double(epochs) * 0.05).rounded()) }

    /// `settings` adapted to `train`: the tokens, patch length and epochs of this recipe, except
    /// where `tokens`, `patchLength` or `epochs` gives one, and with patches of raw values, the
    /// patch regularisation. Convolution tokens keep the settings' dropout and augmentation.
    public func settings(_ settings: TrainingSettings, for train: TimeSeriesDataset, tokens: TokenKind? = nil, patchLength: Int? = nil,
                         epochs: Int? = nil) -> TrainingSettings {
        var s = settings
        s.tokens = tokens ?? self.tokens(maxLength: train.maxLength, channels: train.channels)
        s.epochs = epochs ?? self.epochs(trainCount: train.count, batchSize: s.batchSize)
        s.warmupEpochs = warmupEpochs(epochs: s.epochs)
        if s.tokens == .convolution {
            s.patchLength = patchLength ?? convolutionPatchLength(maxLength: train.maxLength)
            return s
        }
        s.patchLength = patchLength ?? self.patchLength(maxLength: train.maxLength, channels: train.channels)
        if s.patchLength > 1 {
            s.dropout = patchDropout
            s.augmentation = patchAugmentation
        }
        return s
    }

    /// Values per token and tokens of a series of `steps` steps: what the encoder is built
    /// for. Refuses, naming the limit, a token wider than ``maxTokenValues``.
    public static func tokenShape(channels: Int, steps: Int, patchLength: Int, name: String) throws -> (features: Int, tokens: Int) {
        guard patchLength > 0 else { throw LowBitError.invalidArgument("patch length must be positive, got \(patchLength)") }
        let (features, overflow) = channels.multipliedReportingOverflow(by: patchLength)
        guard !overflow, features <= maxTokenValues else {
            throw LowBitError.invalidArgument("\(name): a token of \(patchLength) steps × \(channels) channels exceeds the limit of "
                                              + "\(maxTokenValues) values per token; use a shorter --patch-length, or shorten the series "
                                              + "(the recipe fits a series in its token budget only up to \(maxTokenValues) values per token)")
        }
        return (features, (max(steps, 1) + patchLength - 1) / patchLength)
    }
}
