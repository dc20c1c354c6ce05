/// OpenBLAS on dequantized operands: weights are dequantized once in ``prepare(_:)``,
/// then every product is an sgemm. The baseline the kernels must beat.
public struct BLASBackend: Backend {
    /// Always ``BackendKind/blas``.
    public var kind: BackendKind { .blas }

    /// The OpenBLAS thread count every call of this backend runs with.
    public let threads: Int

    /// Creates the backend.
    ///
    /// OpenBLAS's thread count is process-wide; each call of this backend makes it `threads`
    /// for its duration (calls with another count wait), so this backend's results do not
    /// depend on the other backends in the process.
    ///
    /// - Parameter threads: OpenBLAS threads per call, at least 1 (a smaller value is taken
    ///   as 1).
    public init(threads: Int) {
        self.threads = max(1, threads)
    }

    /// Float product op(a) · op(b) by OpenBLAS sgemm.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` for a non-matrix, empty or mismatched operand;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity in either operand.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor {
        let (m, n, k) = try checkMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        return try OpenBLAS.matmul(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                   threads: threads)
    }

    /// Quantizes with ``ReferenceQuantizer`` (OpenBLAS has no quantizer), so the values and
    /// scales are those of every other backend.
    public func quantize(weights: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound) throws -> QuantizedWeights {
        try ReferenceQuantizer.quantize(weights: weights, mode: mode, granularity: granularity, bound: bound)
    }

    /// Quantizes activations [tokens, cols] to int8 per token with ``ReferenceQuantizer``,
    /// rows padded with zeros to K rounded up to a multiple of 32.
    public func quantize(activations: Tensor) throws -> QuantizedActivations {
        try ReferenceQuantizer.quantize(activations: activations)
    }

    /// Keeps the dequantized weights (value × scale, float [rows, cols]) for sgemm. The values
    /// are not checked against the mode's range, and this never throws.
    public func prepare(_ weights: QuantizedWeights) throws -> PreparedWeights {
        PreparedWeights(quantized: weights, storage: FloatStorage(weights.dequantized().scalars), backend: kind)
    }

    /// Dequantizes the activations and multiplies them by the dequantized weights with sgemm,
    /// adding `bias`: the float baseline, equal to the exact int32 path up to float rounding.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` for weights another backend prepared or a -128
    ///   in `x`; ``LowBitError/invalidShape(_:)`` for mismatched columns, K over 65,536 or a bias
    ///   not [rows]; ``LowBitError/nonFinite(_:)`` for NaN or infinity in `bias`.
    public func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?) throws -> Tensor {
        try checkLinear(x, weights, bias: bias)
        let w = weights.quantized
        guard let dequantized = weights.storage as? FloatStorage else {
            throw LowBitError.invalidArgument("weights were not prepared by the blas backend")
        }
        var y = [Float](repeating: 0, count: x.tokens * w.rows)
        if let bias { for i in 0..<x.tokens { for j in 0..<w.rows { y[i * w.rows + j] = bias.scalars[j] } } }
        OpenBLAS.sgemm(x.dequantized().scalars, dequantized.values, m: x.tokens, n: w.rows, k: w.cols, lda: w.cols,
                       ldb: w.cols, transposeA: false, transposeB: true, into: &y, accumulate: bias != nil, threads: threads)
        return try Tensor(shape: [x.tokens, w.rows], scalars: y)
    }

    /// Int8 product by OpenBLAS dgemm on the values converted to double (exact, since the sums
    /// stay far below 2^53), as int32, row-major [rows of op(a), cols of op(b)].
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` for empty operands, differing inner dimensions or
    ///   K over 65,536; ``LowBitError/invalidArgument(_:)`` for a -128 in `a` (`b` takes the full
    ///   int8 range).
    public func gemmInt8(_ a: Int8Matrix, _ b: Int8Matrix, transposeA: Bool, transposeB: Bool) throws -> [Int32] {
        let (m, n, k) = try checkGemm(a, b, transposeA: transposeA, transposeB: transposeB)
        let c = OpenBLAS.dgemm(a.values.map(Double.init), b.values.map(Double.init), m: m, n: n, k: k, lda: a.stride,
                               ldb: b.stride, transposeA: transposeA, transposeB: transposeB, threads: threads)
        return c.map { Int32($0) }
    }
}

/// Dequantized weights kept by ``BLASBackend``.
final class FloatStorage: @unchecked Sendable {
    let values: [Float]
    init(_ values: [Float]) { self.values = values }
}

extension BLASBackend: AccumulatingMatmul {}
