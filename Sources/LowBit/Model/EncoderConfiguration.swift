/// The shape and regularisation of a ``SequenceEncoder``, in Swift's names.
///
/// The design's builders (``QAT/build(embedDim:hiddenSize:numHeads:numLayers:quantize:dropout:windowSize:positionalEncoding:seed:)``
/// and the rest) take the same values under the design's names; this table maps them, and
/// files (checkpoints, packed models) store the design's names as keys:
///
/// | here | design | meaning |
/// |---|---|---|
/// | `inputWidth` | `embedDim` | features per input step |
/// | `width` | `hiddenSize` | width of every block's rows and of the output |
/// | `headCount` | `numHeads` | attention heads per block |
/// | `layerCount` | `numLayers` | transformer blocks |
/// | `weightMode` | `quantize` | weight quantization of the blocks (nil: float) |
/// | `dropout` | `dropout` | dropout probability |
/// | `maxSteps` | `windowSize` | the longest sequence |
///
/// Error messages name the design's names, which are also the keys of the files.
public struct EncoderConfiguration: Sendable, Equatable, Codable {
    /// Features per input step.
    public var inputWidth: Int
    /// Width of every block's rows and of the output; the FFN is 4 times as wide.
    public var width: Int
    /// Number of attention heads; must divide ``width``.
    public var headCount: Int
    /// Number of transformer blocks.
    public var layerCount: Int
    /// Weight quantization of the block layers; nil keeps them float.
    public var weightMode: QuantizationMode?
    /// Dropout probability, in [0, 1), on the input, inside every block and between blocks;
    /// 0 turns dropout off.
    public var dropout: Float
    /// The longest sequence the encoder accepts, in steps (tokens).
    public var maxSteps: Int
    /// Adds a sinusoidal positional encoding after the input projection. Off in the design
    /// (causal attention sees order without it); ``TrainingSettings`` turns it on, because
    /// it took validation errors away on JapaneseVowels.
    public var usesPositionalEncoding: Bool
    /// Seeds initialisation and dropout.
    public var seed: UInt64

    /// The design's encoder, written once: the defaults of this type's initializer, of the
    /// design's builders and of ``QAT/recommendedDefaults(embedDim:)``.
    ///
    /// ``TrainingSettings`` trains a smaller model by default (width 64, 3 blocks, dropout
    /// 0.2, positions on), chosen on validation splits of JapaneseVowels, where a wider or
    /// deeper model made no fewer errors; see `docs/japanesevowels.md`.
    public enum Design {
        /// Width of the blocks: 256.
        public static let width = 256
        /// Attention heads: 4.
        public static let headCount = 4
        /// Transformer blocks: 4.
        public static let layerCount = 4
        /// Weight mode: ternary.
        public static let weightMode: QuantizationMode? = .ternary
        /// Dropout: 0.1.
        public static let dropout: Float = 0.1
        /// Longest sequence: 60 steps.
        public static let maxSteps = 60
    }

    /// Creates a configuration, by default the design's (``Design``); nothing is checked
    /// until ``validate()``, which every builder and ``SequenceEncoder/init(_:rules:)`` call.
    public init(inputWidth: Int, width: Int = Design.width, headCount: Int = Design.headCount,
                layerCount: Int = Design.layerCount, weightMode: QuantizationMode? = Design.weightMode,
                dropout: Float = Design.dropout, maxSteps: Int = Design.maxSteps,
                usesPositionalEncoding: Bool = false, seed: UInt64 = 0) {
        self.inputWidth = inputWidth
        self.width = width
        self.headCount = headCount
        self.layerCount = layerCount
        self.weightMode = weightMode
        self.dropout = dropout
        self.maxSteps = maxSteps
        self.usesPositionalEncoding = usesPositionalEncoding
        self.seed = seed
    }

    /// The design's names, kept as the keys of every file that stores a configuration.
    enum CodingKeys: String, CodingKey {
        case inputWidth = "embedDim", width = "hiddenSize", headCount = "numHeads", layerCount = "numLayers"
        case weightMode = "quantize", dropout, maxSteps = "windowSize", usesPositionalEncoding = "positionalEncoding", seed
    }

    /// The largest encoder LowBit builds, in one place: every size read from a file or an
    /// option is checked against these before anything is allocated for it, so products of
    /// them cannot overflow.
    public enum Limits {
        /// Features per input step (a token of ``TrainingRecipe/maxTokenValues`` values).
        public static let inputWidth = 65536
        /// The FFN's 4 · width must fit the kernels' largest K (65536).
        public static let width = 16384
        /// Transformer blocks.
        public static let layerCount = 1024
        /// Steps per sequence.
        public static let maxSteps = 1 << 20
        /// Entries of the positional encoding table, maxSteps · width (256 MB of floats).
        public static let positionTable = 1 << 26
        /// Output classes of a classifier.
        public static let classes = 1 << 20
    }

    /// Throws ``LowBitError/invalidArgument(_:)`` naming the first value that cannot build an
    /// encoder, or exceeds a limit of ``Limits``.
    public func validate() throws {
        func bad(_ m: String) -> LowBitError { .invalidArgument(m) }
        guard inputWidth > 0 else { throw bad("embedDim must be positive, got \(inputWidth)") }
        guard width > 0 else { throw bad("hiddenSize must be positive, got \(width)") }
        guard headCount > 0 else { throw bad("numHeads must be positive, got \(headCount)") }
        guard width % headCount == 0 else {
            throw bad("hiddenSize \(width) is not divisible by numHeads \(headCount)")
        }
        guard layerCount > 0 else { throw bad("numLayers must be positive, got \(layerCount)") }
        guard maxSteps > 0 else { throw bad("windowSize must be positive, got \(maxSteps)") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout must be in [0, 1), got \(dropout)") }
        guard inputWidth <= Limits.inputWidth else { throw bad("embedDim \(inputWidth) exceeds the limit of \(Limits.inputWidth)") }
        guard width <= Limits.width else {
            throw bad("hiddenSize \(width) exceeds the limit of \(Limits.width) (4·hiddenSize must be at most 65536)")
        }
        guard layerCount <= Limits.layerCount else { throw bad("numLayers \(layerCount) exceeds the limit of \(Limits.layerCount)") }
        guard maxSteps <= Limits.maxSteps else { throw bad("windowSize \(maxSteps) exceeds the limit of \(Limits.maxSteps)") }
        guard maxSteps * width <= Limits.positionTable else {
            throw bad("windowSize \(maxSteps) × hiddenSize \(width) exceeds the limit of \(Limits.positionTable) positions × features")
        }
    }

    /// The model's weights: a lower bound of its parameter count with `classes` outputs
    /// (every linear layer's weight matrix), computed without overflow for any valid configuration.
    func weightCount(classes: Int) -> Double {
        let (e, h, c) = (Double(inputWidth), Double(width), Double(classes))
        return e * h + Double(layerCount) * 12 * h * h + h * c
    }
}
