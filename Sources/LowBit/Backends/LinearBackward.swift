/// How the backward matmuls of a quantized linear layer are computed.
public enum BackwardPrecision: String, Sendable, CaseIterable {
    /// Straight-through estimator in float: the gradient is taken at the dequantized
    /// operands (classic fake quantization).
    case float
    /// Quantized training (QT): the backward matmuls in int8 too, reusing the forward's
    /// int8 operands. The incoming gradient is quantized per token for the input gradient
    /// and per output channel for the weight gradient.
    case int8
}

/// The gradients of y = x · Wᵀ + b.
public struct LinearGradients: Sendable {
    /// dL/dx, [tokens, inputs].
    public var input: Tensor
    /// dL/dW, [outputs, inputs] (applied to the latent float weights: straight-through).
    public var weight: Tensor
    /// dL/db, [outputs].
    public var bias: Tensor
}

extension Backend {
    /// Per-row int8 quantization of a gradient: nearest (this backend's quantizer) or stochastic.
    func quantizeGradient(_ g: Tensor, seed: UInt64?) throws -> QuantizedActivations {
        if let seed { return try ReferenceQuantizer.quantizeStochastic(rows: g, seed: seed) }
        return try quantize(activations: g)
    }

    /// The backward pass of ``linear(_:_:bias:)`` (forward and backward side by side: the
    /// forward is one call, so only the backward needs spelling out).
    ///
    /// With `.int8`, the weight scales are folded into the gradient before it is quantized
    /// (per group of columns when the weights have group scales), and the activation scales
    /// likewise, so that each int8 product needs one scale per output row.
    public func linearBackward(gradOutput g: Tensor, input x: QuantizedActivations, weights w: PreparedWeights,
                               precision: BackwardPrecision = .float,
                               stochasticRoundingSeed: UInt64? = nil) throws -> LinearGradients {
        let q = w.quantized
        guard g.shape == [x.tokens, q.rows] else {
            throw LowBitError.invalidShape("output gradient must be [\(x.tokens), \(q.rows)], got \(g.shape)")
        }
        guard x.cols == q.cols else {
            throw LowBitError.invalidShape("activations have \(x.cols) columns, weights need \(q.cols)")
        }
        try g.checkFinite("output gradient")
        let (n, m, k) = (x.tokens, q.rows, q.cols)
        var gradBias = [Float](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m { gradBias[j] += g.scalars[i * m + j] } }

        switch precision {
        case .float:
            return LinearGradients(
                input: try matmul(g, q.dequantized(), transposeA: false, transposeB: false),
                weight: try matmul(g, x.dequantized(), transposeA: true, transposeB: false),
                bias: try Tensor(shape: [m], scalars: gradBias))
        case .int8:
            var gradInput = [Float](repeating: 0, count: n * k)
            for c0 in stride(from: 0, to: k, by: q.groupLength) {
                let c1 = min(c0 + q.groupLength, k)
                let folded = Tensor(shape: [n, m]) { i in g.scalars[i] * q.scale(row: i % m, col: c0) }
                let gq = try quantizeGradient(folded, seed: stochasticRoundingSeed.map { $0 &+ UInt64(c0) })
                var slice = [Int8](repeating: 0, count: m * (c1 - c0))
                for r in 0..<m { for c in c0..<c1 { slice[r * (c1 - c0) + c - c0] = q.values[r * k + c] } }
                let prod = try gemmInt8(gq.matrix, Int8Matrix(rows: m, cols: c1 - c0, values: slice),
                                        transposeA: false, transposeB: false)
                for i in 0..<n { for c in c0..<c1 { gradInput[i * k + c] = Float(prod[i * (c1 - c0) + c - c0]) * gq.scales[i] } }
            }
            // per output channel: quantize the rows of (g · diag(sx))ᵀ
            let foldedT = Tensor(shape: [m, n]) { i in g.scalars[(i % n) * m + i / n] * x.scales[i % n] }
            let gqT = try quantizeGradient(foldedT, seed: stochasticRoundingSeed.map { $0 ^ 0x5bd1_e995 })
            let prod = try gemmInt8(gqT.matrix, x.matrix, transposeA: false, transposeB: false)
            let gradWeight = (0..<(m * k)).map { Float(prod[$0]) * gqT.scales[$0 / k] }
            return LinearGradients(
                input: try Tensor(shape: [n, k], scalars: gradInput),
                weight: try Tensor(shape: [m, k], scalars: gradWeight),
                bias: try Tensor(shape: [m], scalars: gradBias))
        }
    }
}
