/// The shape and regularisation of a ``SequenceEncoder``.
public struct EncoderOptions: Sendable, Equatable, Codable {
    /// Features per input step.
    public var embedDim: Int
    public var hiddenSize: Int
    public var numHeads: Int
    public var numLayers: Int
    /// Weight quantization of the block layers; nil keeps them float.
    public var quantize: QuantizationMode?
    public var dropout: Float
    /// The longest sequence the encoder accepts.
    public var windowSize: Int
    /// Adds a sinusoidal positional encoding after the input projection. Off in the library's
    /// builders, as designed (causal attention sees order without it); `lowbit train` turns
    /// it on, because it took validation errors away on JapaneseVowels.
    public var positionalEncoding: Bool
    /// Seeds initialisation and dropout.
    public var seed: UInt64

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

    /// Throws an error naming the first option that cannot build an encoder.
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
        guard 4 * hiddenSize <= 65536 else { throw bad("hiddenSize \(hiddenSize) is too large (4·hiddenSize must be at most 65536)") }
    }
}

/// A batch of sequences, padded to a common length: values [batch, steps, features].
public struct SequenceBatch: Sendable {
    public let values: Tensor
    public let shape: SequenceShape

    public init(values: Tensor, lengths: [Int]) throws {
        guard values.rank == 3 else {
            throw LowBitError.invalidShape("a sequence batch is [batch, steps, features], got shape \(values.shape)")
        }
        shape = try SequenceShape(batch: values.shape[0], steps: values.shape[1], lengths: lengths)
        try values.checkFinite("input sequences")
        self.values = values
    }

    public var features: Int { values.shape[2] }

    /// The batch's rows as one matrix [batch · steps, features].
    var rows: Tensor { try! Tensor(shape: [shape.rows, features], scalars: values.scalars) }
}
