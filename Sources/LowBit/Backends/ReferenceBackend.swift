/// Plain Swift loops: the ground truth the other backends are tested against. Written to
/// be read, not to be fast.
public struct ReferenceBackend: Backend {
    public var kind: BackendKind { .reference }

    public init() {}

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

    public func quantize(weights: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound) throws -> QuantizedWeights {
        try ReferenceQuantizer.quantize(weights: weights, mode: mode, granularity: granularity, bound: bound)
    }

    public func quantize(activations: Tensor) throws -> QuantizedActivations {
        try ReferenceQuantizer.quantize(activations: activations)
    }

    public func prepare(_ weights: QuantizedWeights) throws -> PreparedWeights {
        PreparedWeights(quantized: weights, storage: nil, backend: kind)
    }

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
