/// Plain Swift loops: the ground truth the other backends are tested against. Written to
/// be read, not to be fast.
public struct ReferenceBackend: Backend {
    /// Always ``BackendKind/reference``.
    public var kind: BackendKind { .reference }

    /// Creates the reference backend, which has no settings.
    public init() {}

    /// Float product op(a) · op(b) by a triple loop, summed in `Float` along K.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` for a non-matrix, empty or mismatched operand;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity in either operand.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor {
        let (m, n, k) = try checkMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        let lda = a.shape[1], ldb = b.shape[1]
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = transposeA ? a.scalars[p * lda + i] : a.scalars[i * lda + p]
                    let bv = transposeB ? b.scalars[j * ldb + p] : b.scalars[p * ldb + j]
                    s += av * bv
                }
                c[i * n + j] = s
            }
        }
        return try Tensor(shape: [m, n], scalars: c)
    }

    /// Quantizes with ``ReferenceQuantizer``, the definition the other backends must match.
    public func quantize(weights: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound) throws -> QuantizedWeights {
        try ReferenceQuantizer.quantize(weights: weights, mode: mode, granularity: granularity, bound: bound)
    }

    /// Quantizes activations [tokens, cols] to int8 per token with ``ReferenceQuantizer``,
    /// rows padded with zeros to K rounded up to a multiple of 32.
    public func quantize(activations: Tensor) throws -> QuantizedActivations {
        try ReferenceQuantizer.quantize(activations: activations)
    }

    /// Keeps the quantized weights as they are: the reference reads values and scales
    /// directly. The values are not checked against the mode's range, and this never throws.
    public func prepare(_ weights: QuantizedWeights) throws -> PreparedWeights {
        PreparedWeights(quantized: weights, storage: nil, backend: kind)
    }

    /// The quantized product, loop by loop: an exact int32 dot product per scale group, times
    /// the token's scale times the group's scale, added to `bias` group by group.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` for weights another backend prepared or a -128
    ///   in `x`; ``LowBitError/invalidShape(_:)`` for mismatched columns, K over 65,536 or a bias
    ///   not [rows]; ``LowBitError/nonFinite(_:)`` for NaN or infinity in `bias`.
    public func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?) throws -> Tensor {
        try checkLinear(x, weights, bias: bias)
        let w = weights.quantized
        var y = [Float](repeating: 0, count: x.tokens * w.rows)
        for i in 0..<x.tokens {
            for j in 0..<w.rows {
                var acc = bias?.scalars[j] ?? 0
                for c0 in stride(from: 0, to: w.cols, by: w.groupLength) {
                    var dot: Int32 = 0
                    for c in c0..<min(c0 + w.groupLength, w.cols) {
                        dot += Int32(x.value(token: i, col: c)) * Int32(w.values[j * w.cols + c])
                    }
                    acc += Float(dot) * (x.scales[i] * w.scale(row: j, col: c0))
                }
                y[i * w.rows + j] = acc
            }
        }
        return try Tensor(shape: [x.tokens, w.rows], scalars: y)
    }

    /// Int8 product by a triple loop with exact int32 sums, row-major [rows of op(a), cols of
    /// op(b)].
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` for empty operands, differing inner dimensions or
    ///   K over 65,536; ``LowBitError/invalidArgument(_:)`` for a -128 in `a` (`b` takes the full
    ///   int8 range).
    public func gemmInt8(_ a: Int8Matrix, _ b: Int8Matrix, transposeA: Bool, transposeB: Bool) throws -> [Int32] {
        let (m, n, k) = try checkGemm(a, b, transposeA: transposeA, transposeB: transposeB)
        var c = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Int32 = 0
                for p in 0..<k {
                    s += Int32(transposeA ? a[p, i] : a[i, p]) * Int32(transposeB ? b[j, p] : b[p, j])
                }
                c[i * n + j] = s
            }
        }
        return c
    }
}
