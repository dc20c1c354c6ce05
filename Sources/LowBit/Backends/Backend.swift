/// The operations the model layer needs, with interchangeable implementations:
/// ``ReferenceBackend`` (plain Swift, the ground truth), ``BLASBackend`` (OpenBLAS on
/// dequantized weights) and ``KernelsBackend`` (LowBit's C kernels).
///
/// Every implementation validates its inputs the same way and throws ``LowBitError`` for
/// empty or mismatched shapes and for NaN or infinity in float inputs.
public protocol Backend: Sendable {
    /// Which implementation this is.
    var kind: BackendKind { get }

    /// Names the implementation and its settings ("kernels/avx512vnni/2"): prepared
    /// weights are reused only by the backend that prepared them.
    var identity: String { get }

    /// Float matrix product op(a) · op(b), where op transposes when asked.
    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor

    /// Quantizes float weights [rows, cols].
    func quantize(weights: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound) throws -> QuantizedWeights

    /// Quantizes activations [tokens, cols] to int8, absmax per token.
    func quantize(activations: Tensor) throws -> QuantizedActivations

    /// Turns quantized weights into this backend's working form, once per weight update
    /// (packed for the kernels, dequantized for BLAS).
    func prepare(_ weights: QuantizedWeights) throws -> PreparedWeights

    /// Quantized linear forward: y[i, j] = Σ_g (Σ_{k∈g} xq[i, k] · wq[j, k]) · sx[i] · sw[j, g] + bias[j].
    func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?) throws -> Tensor

    /// Exact int8 product op(a) · op(b) with int32 results, [rows of op(a), cols of op(b)].
    func gemmInt8(_ a: Int8Matrix, _ b: Int8Matrix, transposeA: Bool, transposeB: Bool) throws -> [Int32]

    /// max |x| of each row of `x` (the static-range statistics).
    func rowAbsmax(_ x: Tensor) throws -> [Float]

    /// Int8 absmax per row with stochastic rounding (the gradients of QT), as
    /// ``ReferenceQuantizer/quantizeStochastic(rows:seed:)`` gives it, bit for bit.
    func quantizeStochastic(rows: Tensor, seed: UInt64) throws -> QuantizedActivations

    // The model's float passes (FloatLayers.swift has the reference versions, which every
    // backend gets unless it has its own).

    /// Layer norm of the rows of `x` [n, d] with scale `gamma` and shift `beta` ([d] each).
    func layerNorm(_ x: Tensor, gamma: [Float], beta: [Float], epsilon: Float, keepingNormalized: Bool) throws -> LayerNormResult
    /// u · sigmoid(u), elementwise.
    func silu(_ u: [Float]) -> [Float]
    /// Multiplies `gradient` by SiLU's derivative at `u`, elementwise.
    func siluBackward(_ u: [Float], gradient: inout [Float])
    /// Causal self-attention over `qkv` [batch · steps, 3 · hidden] laid out by `shape`.
    func attention(_ qkv: Tensor, shape: SequenceShape, heads: Int, keepingProbabilities: Bool) throws -> AttentionResult
    /// Row `lengths[b] - 1` of ``attention(_:shape:heads:keepingProbabilities:)``'s output for
    /// each sequence b, [batch, hidden], and of its probabilities, [batch, heads, steps], bit
    /// for bit: all a pass needs of the last block's attention.
    func attentionAtLastSteps(_ qkv: Tensor, shape: SequenceShape, heads: Int, keepingProbabilities: Bool) throws -> AttentionResult
    /// The gradient of ``attention(_:shape:heads:keepingProbabilities:)`` with respect to its `qkv`.
    func attentionBackward(_ qkv: Tensor, probabilities: [Float], gradient: Tensor, shape: SequenceShape, heads: Int) throws -> Tensor
    /// The gradient of ``attentionAtLastSteps(_:shape:heads:keepingProbabilities:)`` with respect
    /// to its `qkv`, from its probabilities and the gradient of its output, [batch, hidden]:
    /// ``attentionBackward(_:probabilities:gradient:shape:heads:)``'s with a gradient that is
    /// zero but at the last steps.
    func attentionBackwardAtLastSteps(_ qkv: Tensor, probabilities: [Float], gradient: Tensor, shape: SequenceShape,
                                      heads: Int) throws -> Tensor
}

/// The three implementations, as `LOWBIT_BACKEND` names them.
public enum BackendKind: String, CaseIterable, Sendable {
    /// ``ReferenceBackend``: plain Swift loops, the ground truth.
    case reference
    /// ``BLASBackend``: OpenBLAS on dequantized operands, the float baseline.
    case blas
    /// ``KernelsBackend``: LowBit's packed C kernels, the default.
    case kernels

    /// Parses a name; anything else is an error that lists the valid names.
    public init(parsing name: String, variable: String = "LOWBIT_BACKEND") throws {
        guard let kind = BackendKind(rawValue: name) else {
            throw LowBitError.invalidEnvironment(
                variable: variable, value: name, expected: "one of \(BackendKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = kind
    }
}

/// Weights in a backend's working form, with the quantized values they came from.
public struct PreparedWeights: @unchecked Sendable {
    /// The quantized weights these were prepared from: shape, mode, values and scales, which
    /// the backward pass reads.
    public let quantized: QuantizedWeights
    /// Backend-specific storage (packed bytes, dequantized floats, or nothing).
    let storage: AnyObject?
    /// Which backend prepared them; another backend refuses them.
    public let backend: BackendKind
}

// MARK: - Shared argument checks

extension Backend {
    func checkLinear(_ x: QuantizedActivations, _ w: PreparedWeights, bias: Tensor?) throws {
        guard w.backend == kind else {
            throw LowBitError.invalidArgument("weights were prepared by the \(w.backend.rawValue) backend, not \(kind.rawValue)")
        }
        guard x.cols == w.quantized.cols else {
            throw LowBitError.invalidShape("activations have \(x.cols) columns, weights [\(w.quantized.rows), \(w.quantized.cols)] need \(w.quantized.cols)")
        }
        guard x.cols <= maxK else { throw LowBitError.invalidShape("K = \(x.cols) exceeds the largest supported K, \(maxK)") }
        if !x.isKnownSymmetric { try checkSymmetric(rows: x.tokens, cols: x.cols, stride: x.stride, values: x.values, "activations") }
        if let bias {
            guard bias.shape == [w.quantized.rows] else {
                throw LowBitError.invalidShape("bias must have shape [\(w.quantized.rows)], got \(bias.shape)")
            }
            try bias.checkFinite("bias")
        }
    }

    func checkMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> (m: Int, n: Int, k: Int) {
        let shape = try checkMatmulShapes(a, b, transposeA: transposeA, transposeB: transposeB)
        try a.checkFinite("left operand")
        try b.checkFinite("right operand")
        return shape
    }

    /// ``checkMatmul(_:_:transposeA:transposeB:)`` without scanning the values.
    func checkMatmulShapes(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> (m: Int, n: Int, k: Int) {
        let (ar, ac) = try a.matrixShape("left operand")
        let (br, bc) = try b.matrixShape("right operand")
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeB ? (bc, br) : (br, bc)
        guard k == k2 else {
            throw LowBitError.invalidShape("inner dimensions differ: op(a) is [\(m), \(k)], op(b) is [\(k2), \(n)]")
        }
        guard m > 0, n > 0, k > 0 else { throw LowBitError.invalidShape("empty matmul [\(m), \(k)] x [\(k2), \(n)]") }
        return (m, n, k)
    }

    func checkGemm(_ a: Int8Matrix, _ b: Int8Matrix, transposeA: Bool, transposeB: Bool) throws -> (m: Int, n: Int, k: Int) {
        let (m, k) = transposeA ? (a.cols, a.rows) : (a.rows, a.cols)
        let (k2, n) = transposeB ? (b.cols, b.rows) : (b.rows, b.cols)
        guard k == k2 else { throw LowBitError.invalidShape("inner dimensions differ: op(a) is [\(m), \(k)], op(b) is [\(k2), \(n)]") }
        guard m > 0, n > 0, k > 0 else { throw LowBitError.invalidShape("empty int8 GEMM [\(m), \(k)] x [\(k2), \(n)]") }
        guard k <= maxK else { throw LowBitError.invalidShape("K = \(k) exceeds the largest supported K, \(maxK)") }
        if !a.isKnownSymmetric {
            try checkSymmetric(rows: a.rows, cols: a.cols, stride: a.stride, values: a.values, "the left operand of the int8 GEMM")
        }
        return (m, n, k)
    }

    /// The activation side of every int8 product is symmetric, [-127, 127], as every
    /// quantizer here writes it: kernels may negate it (AVX2 does), and -128 has no negation.
    /// Padding past `cols` must be zero where the rows are padded activations.
    func checkSymmetric(rows: Int, cols: Int, stride: Int, values: [Int8], _ what: String) throws {
        try values.withUnsafeBufferPointer { v in
            for r in 0..<rows {
                for c in 0..<cols where v[r * stride + c] == Int8.min {
                    throw LowBitError.invalidArgument("\(what) hold -128 at [\(r), \(c)]; the int8 activation side is symmetric, [-127, 127]")
                }
            }
        }
    }

    /// The largest K whose int32 sums cannot overflow.
    var maxK: Int { 65536 }
}

extension Backend {
    /// The kind's name ("reference", "blas"), for backends whose settings do not change
    /// what they prepare.
    public var identity: String { kind.rawValue }

    /// Quantized linear forward from float activations (quantized per token first).
    public func linear(_ x: Tensor, _ weights: PreparedWeights, bias: Tensor?) throws -> Tensor {
        try linear(quantize(activations: x), weights, bias: bias)
    }

    /// Quantizes with the mode's default granularity and the BitNet bound.
    public func quantize(weights: Tensor, mode: QuantizationMode) throws -> QuantizedWeights {
        try quantize(weights: weights, mode: mode, granularity: mode.defaultGranularity, bound: .qmax)
    }
}
