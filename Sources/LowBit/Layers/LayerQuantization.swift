/// How one linear layer is quantized during training and inference.
public struct LayerQuantization: Sendable, Equatable, Codable {
    /// The weight format: binary, ternary, int4 or int8 (activations are always int8).
    public var mode: QuantizationMode
    /// Weight scale granularity; nil = the mode's default (per tensor for binary and
    /// ternary, per output channel for int4 and int8).
    public var granularity: GranularitySpec?
    /// absmax / qmax (BitNet) or absmax / (qmax + 0.5) (Qwix).
    public var bound: ScaleBoundSpec
    /// Backward matmuls in float (QAT, straight-through) or int8 (QT).
    public var backward: BackwardPrecisionSpec
    /// Where the straight-through gradient is taken (float backward only).
    public var gradientAt: GradientPoint
    /// Clipped straight-through estimator: no gradient through values outside the
    /// representable range (see ``Linear``).
    public var clippedSTE: Bool
    /// With int8 backward: stochastic rounding of the gradient with this seed.
    public var stochasticRoundingSeed: UInt64?

    /// Creates a layer quantization. The defaults are BitNet's: the mode's default granularity,
    /// absmax / qmax scales, a float straight-through backward at the dequantized operands,
    /// no clipping.
    public init(mode: QuantizationMode, granularity: Granularity? = nil, bound: ScaleBound = .qmax,
                backward: BackwardPrecision = .float, gradientAt: GradientPoint = .dequantized,
                clippedSTE: Bool = false, stochasticRoundingSeed: UInt64? = nil) {
        self.mode = mode
        self.granularity = granularity.map(GranularitySpec.init)
        self.bound = ScaleBoundSpec(bound)
        self.backward = BackwardPrecisionSpec(backward)
        self.gradientAt = gradientAt
        self.clippedSTE = clippedSTE
        self.stochasticRoundingSeed = stochasticRoundingSeed
    }

    /// The weight scale granularity in effect: `granularity`, or the mode's default when nil.
    public var weightGranularity: Granularity { granularity?.value ?? mode.defaultGranularity }
    /// The scale divisor that `bound` spells, as a ``ScaleBound``.
    public var scaleBound: ScaleBound { bound.value }
    /// The backward precision that `backward` spells, as a ``BackwardPrecision``.
    public var backwardPrecision: BackwardPrecision { backward.value }
}

/// The operands at which the straight-through gradient is computed.
public enum GradientPoint: String, Sendable, Codable, CaseIterable {
    /// dX = dY·Ŵ, dW = dYᵀ·X̂ with the dequantized weights and activations (classic fake quantization).
    case dequantized
    /// dX = dY·W, dW = dYᵀ·X with the float weights and activations.
    case original
}

/// Codable spellings of the quantization enums, so that configs round-trip through JSON.
public struct GranularitySpec: Sendable, Equatable, Codable {
    /// `"tensor"`, `"channel"` or `"group"`; any other string reads as per channel.
    public var kind: String  // "tensor", "channel", "group"
    /// The group length when `kind` is `"group"` (a missing one reads as 0, which validation
    /// refuses); nil otherwise.
    public var size: Int?
    init(_ g: Granularity) {
        switch g {
        case .perTensor: kind = "tensor"
        case .perChannel: kind = "channel"
        case .perGroup(let n): kind = "group"; size = n
        }
    }
    var value: Granularity {
        switch kind {
        case "tensor": .perTensor
        case "group": .perGroup(size ?? 0)
        default: .perChannel
        }
    }
}

/// The Codable spelling of a ``ScaleBound``: its raw value.
public struct ScaleBoundSpec: Sendable, Equatable, Codable {
    /// `"qmax"` or `"qmaxPlusHalf"`; any other name reads as `qmax`.
    public var name: String
    init(_ b: ScaleBound) { name = b.rawValue }
    var value: ScaleBound { ScaleBound(rawValue: name) ?? .qmax }
}

/// The Codable spelling of a ``BackwardPrecision``: its raw value.
public struct BackwardPrecisionSpec: Sendable, Equatable, Codable {
    /// `"float"` or `"int8"`; any other name reads as `float`.
    public var name: String
    init(_ b: BackwardPrecision) { name = b.rawValue }
    var value: BackwardPrecision { BackwardPrecision(rawValue: name) ?? .float }
}

/// Static-range activation statistics of one layer: how many batches were seen and the sum
/// of their batch-averaged per-token absmax. Their mean is the fixed activation range once
/// frozen.
public struct ActivationStatistics: Sendable, Equatable {
    /// Number of batches whose absmax has been added.
    public var count: Int = 0
    /// The sum, over those batches, of each batch's mean per-token absmax.
    public var sumOfAbsmax: Double = 0
    /// The mean per-token absmax over the batches seen (0 when none): the activation range
    /// a frozen layer uses.
    public var mean: Double { count > 0 ? sumOfAbsmax / Double(count) : 0 }
}
