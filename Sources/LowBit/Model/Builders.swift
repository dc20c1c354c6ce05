/// The design's builders for the quantization-aware sequence encoder, in any weight mode.
///
/// They keep the design's names (`embedDim`, `hiddenSize`, `numHeads`, …) and are thin
/// wrappers over the Swift-style types: ``EncoderConfiguration`` (whose table maps the
/// names), ``SequenceEncoder/init(_:rules:)``, ``TransformerBlock`` and ``Linear``. Their
/// defaults are the design's, ``EncoderConfiguration/Design``.
public enum QAT {
    /// The encoder with every block layer quantized in `quantize` mode (nil: float):
    /// `SequenceEncoder(EncoderConfiguration(inputWidth: embedDim, width: hiddenSize, …))`.
    public static func build(embedDim: Int, hiddenSize: Int = EncoderConfiguration.Design.width,
                             numHeads: Int = EncoderConfiguration.Design.headCount,
                             numLayers: Int = EncoderConfiguration.Design.layerCount,
                             quantize: QuantizationMode? = EncoderConfiguration.Design.weightMode,
                             dropout: Float = EncoderConfiguration.Design.dropout,
                             windowSize: Int = EncoderConfiguration.Design.maxSteps,
                             positionalEncoding: Bool = false, seed: UInt64 = 0) throws -> SequenceEncoder {
        try SequenceEncoder(EncoderConfiguration(inputWidth: embedDim, width: hiddenSize, headCount: numHeads,
                                                 layerCount: numLayers, weightMode: quantize, dropout: dropout,
                                                 maxSteps: windowSize, usesPositionalEncoding: positionalEncoding,
                                                 seed: seed))
    }

    /// The encoder for `configuration`: `SequenceEncoder(configuration, rules: rules)`.
    /// `rules`, when given, replace the default (every block layer in the configuration's
    /// weight mode).
    public static func build(_ configuration: EncoderConfiguration, rules: [QuantizationRule]? = nil) throws -> SequenceEncoder {
        try SequenceEncoder(configuration, rules: rules)
    }

    /// The builders' default rules: one rule, `"*"`, that quantizes every quantizable layer
    /// in `mode` (nil: keeps every layer float).
    public static func defaultRules(_ mode: QuantizationMode?) -> [QuantizationRule] {
        [QuantizationRule("*", mode.map { LayerQuantization(mode: $0) })]
    }

    /// One pre-norm block (for composing encoders by hand).
    public static func buildBlock(path: String = "block", hiddenSize: Int, numHeads: Int,
                                  dropout: Float = EncoderConfiguration.Design.dropout,
                                  quantize: QuantizationMode? = EncoderConfiguration.Design.weightMode,
                                  seed: UInt64 = 0) throws -> TransformerBlock {
        try EncoderConfiguration(inputWidth: hiddenSize, width: hiddenSize, headCount: numHeads, layerCount: 1, dropout: dropout).validate()
        let block = TransformerBlock(path: path, hidden: hiddenSize, heads: numHeads, dropout: dropout, seed: seed)
        _ = try applyRules(defaultRules(quantize), to: block.linears)
        return block
    }

    /// A quantized linear layer (float when `quantize` is nil).
    public static func quantLinear(path: String = "linear", inputs: Int, outputs: Int, bias: Bool = true,
                                   quantize: LayerQuantization? = LayerQuantization(mode: .ternary), seed: UInt64 = 0) throws -> Linear {
        guard inputs > 0, outputs > 0 else { throw LowBitError.invalidArgument("a linear layer needs positive sizes, got \(inputs) → \(outputs)") }
        if let q = quantize { try ReferenceQuantizer.validate(q.weightGranularity, mode: q.mode, cols: inputs) }
        let l = Linear(path: path, inputs: inputs, outputs: outputs, bias: bias, quantizable: true, seed: seed)
        l.quantization = quantize
        return l
    }

    /// The encoder's output width, which is its `hiddenSize` (the design's builder;
    /// ``SequenceEncoder/outputSize`` says the same of a built encoder).
    public static func outputSize(hiddenSize: Int) -> Int { hiddenSize }

    /// The design's encoder for `embedDim` input features: ``EncoderConfiguration/Design``
    /// (hiddenSize 256, numHeads 4, numLayers 4, dropout 0.1, windowSize 60, ternary), the
    /// same values as the builders' defaults. For training on a small dataset,
    /// ``TrainingSettings``' defaults are the validated choice.
    public static func recommendedDefaults(embedDim: Int = EncoderConfiguration.Design.width) -> EncoderConfiguration {
        EncoderConfiguration(inputWidth: embedDim)
    }
}

/// BitNet: the same encoder with binary or ternary weights only.
public enum BitNet {
    /// The encoder with every block layer quantized in `quantize` mode, as
    /// ``QAT/build(embedDim:hiddenSize:numHeads:numLayers:quantize:dropout:windowSize:positionalEncoding:seed:)``
    /// builds it; throws ``LowBitError/invalidArgument(_:)`` for a mode other than binary or ternary.
    public static func build(embedDim: Int, hiddenSize: Int = EncoderConfiguration.Design.width,
                             numHeads: Int = EncoderConfiguration.Design.headCount,
                             numLayers: Int = EncoderConfiguration.Design.layerCount,
                             quantize: QuantizationMode = .ternary,
                             dropout: Float = EncoderConfiguration.Design.dropout,
                             windowSize: Int = EncoderConfiguration.Design.maxSteps,
                             positionalEncoding: Bool = false, seed: UInt64 = 0) throws -> SequenceEncoder {
        try checkBitMode(quantize)
        return try QAT.build(embedDim: embedDim, hiddenSize: hiddenSize, numHeads: numHeads, numLayers: numLayers,
                             quantize: quantize, dropout: dropout, windowSize: windowSize,
                             positionalEncoding: positionalEncoding, seed: seed)
    }

    /// One pre-norm block with binary or ternary layers (for composing encoders by hand);
    /// throws ``LowBitError/invalidArgument(_:)`` for int4 or int8.
    public static func buildBlock(path: String = "block", hiddenSize: Int, numHeads: Int,
                                  dropout: Float = EncoderConfiguration.Design.dropout,
                                  quantize: QuantizationMode = .ternary, seed: UInt64 = 0) throws -> TransformerBlock {
        try checkBitMode(quantize)
        return try QAT.buildBlock(path: path, hiddenSize: hiddenSize, numHeads: numHeads, dropout: dropout, quantize: quantize, seed: seed)
    }

    /// A BitLinear layer: binary or ternary weights, int8 activations.
    public static func bitLinear(path: String = "linear", inputs: Int, outputs: Int, bias: Bool = true,
                                 quantize: QuantizationMode = .ternary, seed: UInt64 = 0) throws -> Linear {
        try checkBitMode(quantize)
        return try QAT.quantLinear(path: path, inputs: inputs, outputs: outputs, bias: bias, quantize: LayerQuantization(mode: quantize), seed: seed)
    }

    /// The encoder's output width: `hiddenSize`.
    public static func outputSize(hiddenSize: Int) -> Int { hiddenSize }
    /// The same defaults as ``QAT/recommendedDefaults(embedDim:)`` (ternary).
    public static func recommendedDefaults(embedDim: Int = EncoderConfiguration.Design.width) -> EncoderConfiguration { QAT.recommendedDefaults(embedDim: embedDim) }

    static func checkBitMode(_ mode: QuantizationMode) throws {
        guard mode == .binary || mode == .ternary else {
            throw LowBitError.invalidArgument("BitNet takes binary or ternary weights, not \(mode.rawValue); use QAT.build for int4 and int8")
        }
    }
}
