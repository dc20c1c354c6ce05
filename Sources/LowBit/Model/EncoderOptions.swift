/// The shape and regularisation of a ``SequenceEncoder``.
public struct EncoderOptions: Sendable, Equatable, Codable {
    /// Features per input step.
    public var embedDim: Int
    /// Width of every block's rows and of the output; the FFN is 4 times as wide.
    public var hiddenSize: Int
    /// Number of attention heads; must divide `hiddenSize`.
    public var numHeads: Int
    /// Number of transformer blocks.
    public var numLayers: Int
    /// Weight quantization of the block layers; nil keeps them float.
    public var quantize: QuantizationMode?
    /// Dropout probability, in [0, 1), on the input, inside every block and between blocks;
    /// 0 turns dropout off.
    public var dropout: Float
    /// The longest sequence the encoder accepts.
    public var windowSize: Int
    /// Adds a sinusoidal positional encoding after the input projection. Off in the library's
    /// builders, as designed (causal attention sees order without it); `lowbit train` turns
    /// it on, because it took validation errors away on JapaneseVowels.
    public var positionalEncoding: Bool
    /// Seeds initialisation and dropout.
    public var seed: UInt64

    /// Creates options; nothing is checked until ``validate()`` (which the builders call).
    public init(embedDim: Int, hiddenSize: Int = 256, numHeads: Int = 4, numLayers: Int = 4,
                quantize: QuantizationMode? = .ternary, dropout: Float = 0.1, windowSize: Int = 60,
                positionalEncoding: Bool = false, seed: UInt64 = 0) {
        self.embedDim = embedDim
        self.hiddenSize = hiddenSize
        self.numHeads = numHeads
        self.numLayers = numLayers
        self.quantize = quantize
        self.dropout = dropout
        self.windowSize = windowSize
        self.positionalEncoding = positionalEncoding
        self.seed = seed
    }

    /// The largest encoder LowBit builds, in one place: every size read from a file or an
    /// option is checked against these before anything is allocated for it, so products of
    /// them cannot overflow.
    public enum Limits {
        /// Features per input step (a token of ``TrainingRecipe/maxTokenValues`` values).
        public static let embedDim = 65536
        /// The FFN's 4 · hiddenSize must fit the kernels' largest K (65536).
        public static let hiddenSize = 16384
        /// Transformer blocks.
        public static let numLayers = 1024
        /// Steps per sequence.
        public static let windowSize = 1 << 20
        /// Entries of the positional encoding table, windowSize · hiddenSize (256 MB of floats).
        public static let positionTable = 1 << 26
        /// Output classes of a classifier.
        public static let classes = 1 << 20
    }

    /// Throws an error naming the first option that cannot build an encoder, or exceeds a
    /// limit of ``Limits``.
    public func validate() throws {
        func bad(_ m: String) -> LowBitError { .invalidArgument(m) }
        guard embedDim > 0 else { throw bad("embedDim must be positive, got \(embedDim)") }
        guard hiddenSize > 0 else { throw bad("hiddenSize must be positive, got \(hiddenSize)") }
        guard numHeads > 0 else { throw bad("numHeads must be positive, got \(numHeads)") }
        guard hiddenSize % numHeads == 0 else {
            throw bad("hiddenSize \(hiddenSize) is not divisible by numHeads \(numHeads)")
        }
        guard numLayers > 0 else { throw bad("numLayers must be positive, got \(numLayers)") }
        guard windowSize > 0 else { throw bad("windowSize must be positive, got \(windowSize)") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout must be in [0, 1), got \(dropout)") }
        guard embedDim <= Limits.embedDim else { throw bad("embedDim \(embedDim) exceeds the limit of \(Limits.embedDim)") }
        guard hiddenSize <= Limits.hiddenSize else {
            throw bad("hiddenSize \(hiddenSize) exceeds the limit of \(Limits.hiddenSize) (4·hiddenSize must be at most 65536)")
        }
        guard numLayers <= Limits.numLayers else { throw bad("numLayers \(numLayers) exceeds the limit of \(Limits.numLayers)") }
        guard windowSize <= Limits.windowSize else { throw bad("windowSize \(windowSize) exceeds the limit of \(Limits.windowSize)") }
        guard windowSize * hiddenSize <= Limits.positionTable else {
            throw bad("windowSize \(windowSize) × hiddenSize \(hiddenSize) exceeds the limit of \(Limits.positionTable) positions × features")
        }
    }

    /// The model's weights: a lower bound of its parameter count with `classes` outputs
    /// (every linear layer's weight matrix), computed without overflow for any valid options.
    func weightCount(classes: Int) -> Double {
        let (e, h, c) = (Double(embedDim), Double(hiddenSize), Double(classes))
        return e * h + Double(numLayers) * 12 * h * h + h * c
    }
}

/// A batch of sequences, padded to a common length: values [batch, steps, features].
public struct SequenceBatch: Sendable {
    /// The padded values [batch, steps, features]; steps past a sequence's length are padding.
    public let values: Tensor
    /// The batch's layout: batch size, padded steps and each sequence's real length.
    public let shape: SequenceShape

    /// Creates a batch from padded `values` [batch, steps, features] and each sequence's
    /// real length.
    ///
    /// Throws ``LowBitError/invalidShape(_:)`` unless `values` has rank 3 and every length
    /// is in 1...steps, and ``LowBitError/nonFinite(_:)`` for NaN or infinity anywhere in
    /// `values`, padding included.
    public init(values: Tensor, lengths: [Int]) throws {
        guard values.rank == 3 else {
            throw LowBitError.invalidShape("a sequence batch is [batch, steps, features], got shape \(values.shape)")
        }
        shape = try SequenceShape(batch: values.shape[0], steps: values.shape[1], lengths: lengths)
        try values.checkFinite("input sequences")
        self.values = values
    }

    /// Features per step (`values.shape[2]`); an encoder takes only its `embedDim`.
    public var features: Int { values.shape[2] }

    /// The batch's rows as one matrix [batch · steps, features].
    var rows: Tensor { try! Tensor(shape: [shape.rows, features], scalars: values.scalars) }
}
