import LowBitKernels

/// How weights are quantized. Activations are always int8 absmax per token.
public enum QuantizationMode: String, CaseIterable, Sendable, Codable {
    /// {-1, +1}: sign(w - mean w), scaled by mean |w| (BitNet).
    case binary
    /// {-1, 0, +1}: clip(round(w / mean|w|), -1, 1), scaled by mean |w| (BitNet b1.58).
    case ternary
    /// Symmetric absmax to [-7, 7].
    case int4
    /// Symmetric absmax to [-127, 127].
    case int8

    /// The largest magnitude of a quantized value.
    public var qmax: Int {
        switch self {
        case .binary, .ternary: 1
        case .int4: 7
        case .int8: 127
        }
    }

    /// Bits per stored weight in the packed layout.
    public var bits: Int { Int(traits.bits) }

    /// Per tensor for binary and ternary (as in BitNet), per output channel for int4 and int8.
    public var defaultGranularity: Granularity {
        switch self {
        case .binary, .ternary: .perTensor
        case .int4, .int8: .perChannel
        }
    }

    var format: lowbit_format {
        switch self {
        case .binary: LOWBIT_FORMAT_BINARY
        case .ternary: LOWBIT_FORMAT_TERNARY
        case .int4: LOWBIT_FORMAT_INT4
        case .int8: LOWBIT_FORMAT_INT8
        }
    }

    /// The format's row of the C traits table (bits, step, zero point, chunk width).
    var traits: lowbit_format_traits { lowbit_format_get(format).pointee }

    /// Parses a mode name, or throws an error that lists the valid ones.
    public init(parsing name: String) throws {
        guard let mode = QuantizationMode(rawValue: name.lowercased()) else {
            throw LowBitError.invalidArgument(
                "unknown quantization mode '\(name)'; valid: \(QuantizationMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = mode
    }

    /// The order in which a comparison reports the modes: widest first.
    public static let trainingOrder: [QuantizationMode] = [.int8, .int4, .ternary, .binary]
}

/// Which weights share one scale.
public enum Granularity: Sendable, Equatable, Hashable {
    /// One scale for the whole tensor.
    case perTensor
    /// One scale per output channel (row).
    case perChannel
    /// One scale per run of `size` columns within a row (the last run may be shorter).
    case perGroup(Int)

    /// The C convention: 0 = whole tensor, else the group length.
    func groupLength(cols: Int) -> Int {
        switch self {
        case .perTensor: 0
        case .perChannel: cols
        case .perGroup(let g): min(g, cols)
        }
    }

    /// How many scales a [rows, cols] tensor has.
    func scaleCount(rows: Int, cols: Int) -> Int {
        let g = groupLength(cols: cols)
        return g == 0 ? 1 : rows * ((cols + g - 1) / g)
    }
}

/// What absmax divides by: `qmax` (as in BitNet) or `qmax + 0.5` (as in Qwix, which
/// spends the whole rounding interval of the extreme values).
public enum ScaleBound: String, Sendable, CaseIterable {
    /// Divides absmax by `qmax` (as in BitNet): the largest magnitude maps exactly to ±qmax.
    case qmax
    /// Divides absmax by `qmax + 0.5` (as in Qwix): a slightly finer step, with the largest
    /// magnitudes rounded into the top interval and clamped to ±qmax. Binary and ternary
    /// weights ignore the bound: their scale is mean |w|.
    case qmaxPlusHalf

    func value(qmax: Int) -> Float {
        switch self {
        case .qmax: Float(qmax)
        case .qmaxPlusHalf: Float(qmax) + 0.5
        }
    }
}
