/// OpenBLAS on dequantized operands: weights are dequantized once in ``prepare(_:)``,
/// then every product is an sgemm. The baseline the kernels must beat.
public struct BLASBackend: Backend {
    public var kind: BackendKind { .blas }

    /// - Parameter threads: OpenBLAS's thread count (a process-wide setting).
    public init(threads: Int) {
        OpenBLAS.setThreads(threads)
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor {
        let (m, n, k) = try checkMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        return try OpenBLAS.matmul(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)
    }

    public func quantize(weights: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound) throws -> QuantizedWeights {
        try ReferenceQuantizer.quantize(weights: weights, mode: mode, granularity: granularity, bound: bound)
    }

    public func quantize(activations: Tensor) throws -> QuantizedActivations {
        try ReferenceQuantizer.quantize(activations: activations)
    }

    public func prepare(_ weights: QuantizedWeights) throws -> PreparedWeights {
        PreparedWeights(quantized: weights, storage: FloatStorage(weights.dequantized().scalars), backend: kind)
    }

    public func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?) throws -> Tensor {
        try checkLinear(x, weights, bias: bias)
        let w = weights.quantized
        guard let dequantized = weights.storage as? FloatStorage else {
            throw LowBitError.invalidArgument("weights were not prepared by the blas backend")
        }
        var y = [Float](repeating: 0, count: x.tokens * w.rows)
        if let bias { for i in 0..<x.tokens { for j in 0..<w.rows { y[i * w.rows + j] = bias.scalars[j] } } }
        OpenBLAS.sgemm(x.dequantized().scalars, dequantized.values, m: x.tokens, n: w.rows, k: w.cols, lda: w.cols,
                       ldb: w.cols, transposeA: false, transposeB: true, into: &y, accumulate: bias != nil)
        return try Tensor(shape: [x.tokens, w.rows], scalars: y)
    }

    public func gemmInt8(_ a: Int8Matrix, _ b: Int8Matrix, transposeA: Bool, transposeB: Bool) throws -> [Int32] {
        let (m, n, k) = try checkGemm(a, b, transposeA: transposeA, transposeB: transposeB)
        let c = OpenBLAS.dgemm(a.values.map(Double.init), b.values.map(Double.init), m: m, n: n, k: k, lda: a.stride,
                               ldb: b.stride, transposeA: transposeA, transposeB: transposeB)
        return c.map { Int32($0) }
    }
}

/// Dequantized weights kept by ``BLASBackend``.
final class FloatStorage: @unchecked Sendable {
    let values: [Float]
    init(_ values: [Float]) { self.values = values }
}
