/// How one linear layer is quantized during training and inference.
public struct LayerQuantization: Sendable, Equatable, Codable {
    /// The weight format: binary, ternary, int4 or int8 (activations are always int8).
    public var mode: QuantizationMode
    /// Weight scale granularity; nil = the mode's default (per tensor for binary and
    /// ternary, per output channel for int4 and int8).
    public var granularity: Granularity?
    /// absmax / qmax (BitNet) or absmax / (qmax + 0.5) (Qwix).
    public var bound: ScaleBound
    /// Backward matmuls in float (QAT, straight-through) or int8 (QT).
    public var backward: BackwardPrecision
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
        self.granularity = granularity
        self.bound = bound
        self.backward = backward
        self.gradientAt = gradientAt
        self.clippedSTE = clippedSTE
        self.stochasticRoundingSeed = stochasticRoundingSeed
    }

    /// The weight scale granularity in effect: `granularity`, or the mode's default when nil.
    public var weightGranularity: Granularity { granularity ?? mode.defaultGranularity }
}

/// The operands at which the straight-through gradient is computed.
public enum GradientPoint: String, Sendable, Codable, CaseIterable {
    /// dX = dY·Ŵ, dW = dYᵀ·X̂ with the dequantized weights and activations (classic fake quantization).
    case dequantized
    /// dX = dY·W, dW = dYᵀ·X with the float weights and activations.
    case original
}

// MARK: - Codable, in the JSON layout checkpoints have always used

/// The JSON form of a ``Granularity``: `{"kind": "tensor" | "channel" | "group", "size": n}`.
extension Granularity: Codable {
    private enum Keys: String, CodingKey { case kind, size }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "tensor": self = .perTensor
        case "channel": self = .perChannel
        case "group": self = .perGroup(try c.decode(Int.self, forKey: .size))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown granularity '\(other)' (tensor, channel or group)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .perTensor: try c.encode("tensor", forKey: .kind)
        case .perChannel: try c.encode("channel", forKey: .kind)
        case .perGroup(let n): try c.encode("group", forKey: .kind); try c.encode(n, forKey: .size)
        }
    }
}

/// A raw-valued enum in the JSON form `{"name": rawValue}`; an unknown name is an error.
protocol NamedCodable: Codable, RawRepresentable, CaseIterable where RawValue == String {}

private enum NameKey: String, CodingKey { case name }

extension NamedCodable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: NameKey.self)
        let name = try c.decode(String.self, forKey: .name)
        guard let value = Self(rawValue: name) else {
            throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription:
                "unknown \(Self.self) '\(name)' (\(Self.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: NameKey.self)
        try c.encode(rawValue, forKey: .name)
    }
}

extension ScaleBound: NamedCodable {}
extension BackwardPrecision: NamedCodable {}

/// Static-range activation statistics of one layer: how many batches were seen and the sum
/// of their batch-averaged per-token absmax. Their mean is the fixed activation range once
/// frozen. In the encoder a batch's average is over its real steps: padding rows, which hold
/// no data, are left out.
public struct ActivationStatistics: Sendable, Equatable {
    /// Number of batches whose absmax has been added.
    public var count: Int = 0
    /// The sum, over those batches, of each batch's mean per-token absmax.
    public var sumOfAbsmax: Double = 0
    /// The mean per-token absmax over the batches seen (0 when none): the activation range
    /// a frozen layer uses.
    public var mean: Double { count > 0 ? sumOfAbsmax / Double(count) : 0 }
}
