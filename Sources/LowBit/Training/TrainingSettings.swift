import Foundation

/// What `lowbit train` varies: the model's shape and mode, the optimisation schedule and
/// regularisation. Saved in every checkpoint, so that a resumed run continues the same one.
public struct TrainingSettings: Sendable, Equatable, Codable {
    /// Weight quantization of the encoder blocks; nil trains in float.
    public var mode: QuantizationMode?
    /// Quantized (int8) backward matmuls: QT instead of QAT.
    public var quantizedBackward: Bool
    /// Quantization-aware fine-tuning: the run starts from a trained float model's weights
    /// (given to ``ClassifierTraining/init(settings:train:windowSize:startingFrom:)``)
    /// instead of a random initialisation.
    public var startsFromFloat: Bool
    /// Learning from a trained float model's predictions as well as from the labels (given
    /// to ``ClassifierTraining/run(train:evaluation:teacher:backend:checkpointPath:evaluationInterval:selection:progress:shouldStop:)``);
    /// nil learns from the labels alone.
    public var distillation: Distillation?
    /// Steps per token: the encoder reads non-overlapping patches of this many steps (all
    /// their channels' values) instead of one step at a time, which gives a univariate
    /// series' tokens something to say and keeps attention over a long series short. The
    /// default of `lowbit train` depends on the series' length and channels
    /// (``TrainingRecipe/patchLength(maxLength:channels:)``).
    public var patchLength: Int
    /// What a token holds: the raw values of a patch, or convolution features of it
    /// (``ConvolutionTokenizer``). The default of `lowbit train` depends on the data's shape
    /// (``TrainingRecipe/tokens(maxLength:channels:)``).
    public var tokens: TokenKind
    /// The width of the encoder's hidden states (the design's `hiddenSize`); 64 by default.
    /// It must be a multiple of ``headCount``.
    public var width: Int
    /// The number of encoder blocks (the design's `numLayers`); 3 by default.
    public var layerCount: Int
    /// The number of attention heads per block (the design's `numHeads`); 4 by default.
    public var headCount: Int
    /// A sinusoidal encoding of each step's position added to the encoder's input. On by
    /// default: it took validation errors away in every mode (see docs/japanesevowels.md), although
    /// causal attention sees order without it.
    public var usesPositionalEncoding: Bool
    /// The dropout rate during training, in [0, 1); 0.2 by default (``TrainingRecipe`` sets it to
    /// 0 for patches).
    public var dropout: Float
    /// Random crops, scaling and noise of the training series (none by default).
    public var augmentation: Augmentation
    /// The number of passes over the training data; 40 by default (``TrainingRecipe`` derives it
    /// from a step budget).
    public var epochs: Int
    /// The number of series per optimizer step; 16 by default. An epoch's last batch may be
    /// smaller.
    public var batchSize: Int
    /// Peak learning rate, reached after `warmupEpochs` and decayed by a cosine to
    /// `finalLearningRateFraction` of it at the last step.
    public var learningRate: Float
    /// The epochs over which the learning rate rises linearly to ``learningRate``; 2 by default
    /// (5 % of 40 epochs).
    public var warmupEpochs: Int
    /// The fraction of ``learningRate`` the cosine decay ends at, in [0, 1]; 0.05 by default.
    public var finalLearningRateFraction: Float
    /// AdamW's decoupled weight decay, applied to the weight matrices only; 0.05 by default.
    public var weightDecay: Float
    /// The global L2 norm the gradients are clipped to before every update; 1 by default.
    public var maxGradientNorm: Float
    /// Seeds initialisation, dropout and the order of the batches.
    public var seed: UInt64
    /// How many models `lowbit train` trains per mode, each a run of these settings with its
    /// own seed (``member(_:)``), and averages (their predicted probabilities) in the packed
    /// model. Two by default: on validation splits the pair made fewer errors and a lower
    /// cross-entropy than either model in every mode (see docs/japanesevowels.md). One
    /// ``ClassifierTraining`` trains one of them.
    public var ensembleSize: Int

    /// The defaults of `lowbit train`, chosen on a validation split held out of
    /// JapaneseVowels' training split (see docs/japanesevowels.md). The model they train is
    /// smaller than the design's (``EncoderConfiguration/Design``: width 256, 4 blocks): on
    /// those validation splits a wider (128) or deeper (4 blocks) model made no fewer errors
    /// and took twice as long.
    public init(mode: QuantizationMode? = nil, quantizedBackward: Bool = false, startsFromFloat: Bool = false,
                distillation: Distillation? = nil, patchLength: Int = 1, tokens: TokenKind = .patches, width: Int = 64, layerCount: Int = 3,
                headCount: Int = 4, usesPositionalEncoding: Bool = true, dropout: Float = 0.2,
                augmentation: Augmentation = Augmentation(), epochs: Int = 40, batchSize: Int = 16, learningRate: Float = 2e-3,
                warmupEpochs: Int = 2, finalLearningRateFraction: Float = 0.05, weightDecay: Float = 0.05,
                maxGradientNorm: Float = 1, seed: UInt64 = 0, ensembleSize: Int = 2) {
        self.mode = mode
        self.quantizedBackward = quantizedBackward
        self.startsFromFloat = startsFromFloat
        self.distillation = distillation
        self.patchLength = patchLength
        self.tokens = tokens
        self.width = width
        self.layerCount = layerCount
        self.headCount = headCount
        self.usesPositionalEncoding = usesPositionalEncoding
        self.dropout = dropout
        self.augmentation = augmentation
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.warmupEpochs = warmupEpochs
        self.finalLearningRateFraction = finalLearningRateFraction
        self.weightDecay = weightDecay
        self.maxGradientNorm = maxGradientNorm
        self.seed = seed
        self.ensembleSize = ensembleSize
    }

    /// The settings of the ensemble's model `index` (from 0): these, with a seed of its own.
    /// Model 0 keeps `seed`, so an ensemble of one is the run these settings describe.
    public func member(_ index: Int) -> TrainingSettings {
        var s = self
        s.seed = seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
        return s
    }

    /// Throws an error naming the first setting that cannot train.
    public func validate() throws {
        func bad(_ m: String) -> LowBitError { .invalidArgument(m) }
        guard epochs > 0 else { throw bad("epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw bad("batch size must be positive, got \(batchSize)") }
        guard patchLength > 0 else { throw bad("patch length must be positive, got \(patchLength)") }
        try augmentation.validate()
        guard learningRate > 0, learningRate.isFinite else { throw bad("learning rate must be positive and finite, got \(learningRate)") }
        guard warmupEpochs >= 0 else { throw bad("warmup epochs must be non-negative, got \(warmupEpochs)") }
        guard (0...1).contains(finalLearningRateFraction) else { throw bad("final learning-rate fraction must be in [0, 1], got \(finalLearningRateFraction)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("weight decay must be non-negative, got \(weightDecay)") }
        guard maxGradientNorm > 0 else { throw bad("gradient clipping norm must be positive, got \(maxGradientNorm)") }
        // The model's own rules (heads dividing the width, dropout in [0, 1), the size limits),
        // checked here too so that a bad setting is refused before any data is read.
        try EncoderConfiguration(inputWidth: 1, width: width, headCount: headCount, layerCount: layerCount, weightMode: mode,
                                 dropout: dropout, maxSteps: 1).validate()
        guard (1...16).contains(ensembleSize) else { throw bad("ensemble size must be from 1 to 16, got \(ensembleSize)") }
        if quantizedBackward && mode == nil { throw bad("a quantized backward (QT) needs a quantized mode, not float") }
        if startsFromFloat && mode == nil { throw bad("starting from the float model needs a quantized mode, not float") }
        if let distillation {
            guard mode != nil else { throw bad("distillation from the float model needs a quantized mode, not float") }
            try distillation.validate()
        }
    }

    /// Quantization-aware fine-tuning in `mode` of the float model these settings train: the
    /// same model and regularisation, half the epochs (at least one), one warmup epoch, and a
    /// peak learning rate that grows with how far the mode starts from float: an eighth of
    /// the float run's for int8 and int4, which start almost where float ended (more only
    /// trains float further, past its best), half for ternary and binary, which must adapt.
    /// Chosen on validation splits of JapaneseVowels' training data (see docs/japanesevowels.md).
    public func fineTuning(_ mode: QuantizationMode, quantizedBackward: Bool = false) -> TrainingSettings {
        var s = self
        s.mode = mode
        s.quantizedBackward = quantizedBackward
        s.startsFromFloat = true
        s.epochs = max(epochs / 2, 1)
        switch mode {
        case .int8, .int4: s.learningRate = learningRate / 8
        case .ternary, .binary: s.learningRate = learningRate / 2
        }
        s.warmupEpochs = min(warmupEpochs, 1)
        return s
    }

    /// Optimizer steps per epoch on `trainCount` series.
    public func stepsPerEpoch(_ trainCount: Int) -> Int { (trainCount + batchSize - 1) / batchSize }

    /// The tokens the longest series of `train` becomes, and the values each holds, under these
    /// settings' ``tokens`` and ``patchLength``.
    public func tokenShape(of train: TimeSeriesDataset) -> (tokens: Int, values: Int) {
        switch tokens {
        case .patches: return (train.maxTokens(patchLength: patchLength), patchLength * train.channels)
        case .convolution:
            return (train.maxTokens(patchLength: patchLength) + 1,
                    train.channels * ConvolutionTokenizer.dilations(maxLength: train.maxLength).count * ConvolutionTokenizer.kernelCount)
        }
    }

    /// "float", or the quantization mode's name (with "+qt" for a quantized backward).
    public var modeName: String { (mode?.rawValue ?? "float") + (quantizedBackward ? "+qt" : "") }

    /// The keys of the saved settings: the design's names for the model's shape.
    enum CodingKeys: String, CodingKey {
        case mode, quantizedBackward, startsFromFloat, distillation, patchLength, tokens
        case width = "hiddenSize", layerCount = "numLayers", headCount = "numHeads"
        case usesPositionalEncoding = "positionalEncoding"
        case dropout, augmentation, epochs, batchSize, learningRate, warmupEpochs, finalLearningRateFraction
        case weightDecay, maxGradientNorm, seed, ensembleSize
    }

    /// Decodes settings saved before `startsFromFloat`, `distillation`, `positionalEncoding`,
    /// `ensembleSize`, `patchLength`, `tokens` and `augmentation` existed as what those runs did:
    /// starting from scratch, without a teacher, without positions, one model, one step per
    /// token of raw values, no augmentation.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(mode: try c.decodeIfPresent(QuantizationMode.self, forKey: .mode),
                  quantizedBackward: try c.decode(Bool.self, forKey: .quantizedBackward),
                  startsFromFloat: try c.decodeIfPresent(Bool.self, forKey: .startsFromFloat) ?? false,
                  distillation: try c.decodeIfPresent(Distillation.self, forKey: .distillation),
                  patchLength: try c.decodeIfPresent(Int.self, forKey: .patchLength) ?? 1,
                  tokens: try c.decodeIfPresent(TokenKind.self, forKey: .tokens) ?? .patches,
                  width: try c.decode(Int.self, forKey: .width), layerCount: try c.decode(Int.self, forKey: .layerCount),
                  headCount: try c.decode(Int.self, forKey: .headCount),
                  usesPositionalEncoding: try c.decodeIfPresent(Bool.self, forKey: .usesPositionalEncoding) ?? false,
                  dropout: try c.decode(Float.self, forKey: .dropout),
                  augmentation: try c.decodeIfPresent(Augmentation.self, forKey: .augmentation) ?? Augmentation(),
                  epochs: try c.decode(Int.self, forKey: .epochs), batchSize: try c.decode(Int.self, forKey: .batchSize),
                  learningRate: try c.decode(Float.self, forKey: .learningRate),
                  warmupEpochs: try c.decode(Int.self, forKey: .warmupEpochs),
                  finalLearningRateFraction: try c.decode(Float.self, forKey: .finalLearningRateFraction),
                  weightDecay: try c.decode(Float.self, forKey: .weightDecay),
                  maxGradientNorm: try c.decode(Float.self, forKey: .maxGradientNorm), seed: try c.decode(UInt64.self, forKey: .seed),
                  ensembleSize: try c.decodeIfPresent(Int.self, forKey: .ensembleSize) ?? 1)
    }
}

/// What one token of a series holds (``TrainingSettings/tokens``).
public enum TokenKind: String, Sendable, Equatable, Codable, CaseIterable {
    /// The raw values of ``TrainingSettings/patchLength`` consecutive steps, every channel.
    case patches
    /// Convolution features of each patch, and a last token summarising the whole series
    /// (``ConvolutionTokenizer``).
    case convolution
}
