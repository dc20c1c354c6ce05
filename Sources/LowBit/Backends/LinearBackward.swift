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
    /// max |x| of each row of `x`, a row at a time.
    public func rowAbsmax(_ x: Tensor) throws -> [Float] {
        let (n, k) = try x.matrixShape("rows")
        try x.checkFinite("rows")
        return (0..<n).map { i in x.scalars[(i * k)..<((i + 1) * k)].reduce(Float(0)) { max($0, $1.magnitude) } }
    }

    /// ``ReferenceQuantizer/quantizeStochastic(rows:seed:)``.
    public func quantizeStochastic(rows: Tensor, seed: UInt64) throws -> QuantizedActivations {
        try ReferenceQuantizer.quantizeStochastic(rows: rows, seed: seed)
    }

    /// Per-row int8 quantization of a gradient: nearest (this backend's quantizer) or stochastic.
    func quantizeGradient(_ g: Tensor, seed: UInt64?) throws -> QuantizedActivations {
        if let seed { return try quantizeStochastic(rows: g, seed: seed) }
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
        switch precision {
        case .float:
            try g.checkFinite("output gradient")
            return LinearGradients(
                input: try matmul(g, q.dequantized(), transposeA: false, transposeB: false),
                weight: try matmul(g, x.dequantized(), transposeA: true, transposeB: false),
                bias: columnSums(g))
        case .int8:
            // its quantizers refuse NaN and infinity in g (the products of the float path would not)
            return try g.checkingFinite("output gradient") {
                try int8Gradients(g, x, q, stochasticRoundingSeed: stochasticRoundingSeed)
            }
        }
    }

    /// QT's gradients: see ``linearBackward(gradOutput:input:weights:precision:stochasticRoundingSeed:)``.
    private func int8Gradients(_ g: Tensor, _ x: QuantizedActivations, _ q: QuantizedWeights,
                               stochasticRoundingSeed: UInt64?) throws -> LinearGradients {
        let (n, m, k) = (x.tokens, q.rows, q.cols)
        // The folding and scaling passes below touch every element of the n × m gradient a
        // few times: they run over unsafe buffers, so that they vectorize (array subscripts'
        // bounds checks kept them scalar, a sixth of a QT step at the design's size).
        var gradInput = kernelOutput(Float.self, n * k)
        let scales = q.scalesPerRow, groups = q.groupsPerRow, length = q.groupLength
        var folded = kernelOutput(Float.self, n * m)
        for group in 0..<groups {
            let c0 = group * length, c1 = min(c0 + length, k), width = c1 - c0
            // the weight scales of this group folded into the gradient's columns
            var columnScales = kernelOutput(Float.self, m)
            for j in 0..<m { columnScales[j] = scales[j * groups + group] }
            g.scalars.withUnsafeBufferPointer { gs in
                columnScales.withUnsafeBufferPointer { cs in
                    folded.withUnsafeMutableBufferPointer { f in
                        for i in 0..<n {
                            let row = i &* m
                            for j in 0..<m { f[row &+ j] = gs[row &+ j] * cs[j] }
                        }
                    }
                }
            }
            let gq = try quantizeGradient(Tensor(shape: [n, m], scalars: folded), seed: stochasticRoundingSeed.map { $0 &+ UInt64(c0) })
            let slice: Int8Matrix
            if groups == 1 {
                slice = Int8Matrix(rows: m, cols: k, values: q.values)
            } else {
                var values = kernelOutput(Int8.self, m * width)
                q.values.withUnsafeBufferPointer { v in
                    values.withUnsafeMutableBufferPointer { out in
                        for r in 0..<m { for c in 0..<width { out[r * width + c] = v[r * k + c0 + c] } }
                    }
                }
                slice = Int8Matrix(rows: m, cols: width, values: values)
            }
            try gradInput.withUnsafeMutableBufferPointer { out in
                try rowScaledProduct(gq, slice, into: out.baseAddress! + c0, ldc: k)
            }
        }
        // per output channel: quantize the rows of (g · diag(sx))ᵀ
        let transposedSeed = stochasticRoundingSeed.map { $0 ^ 0x5bd1_e995 }
        let gqT: QuantizedActivations
        if let kernels = self as? any ScaledTranspose, let seed = transposedSeed {
            gqT = try g.scalars.withUnsafeBufferPointer { gs in
                try x.scales.withUnsafeBufferPointer { xs in
                    try kernels.quantizeStochasticTransposed(gs, rows: n, cols: m, scales: xs, seed: seed)
                }
            }
        } else {
            gqT = try quantizeGradient(transposedScaled(g, rowScales: x.scales), seed: transposedSeed)
        }
        var gradWeight = kernelOutput(Float.self, m * k)
        try gradWeight.withUnsafeMutableBufferPointer { out in
            try rowScaledProduct(gqT, x.matrix, into: out.baseAddress!, ldc: k)
        }
        return LinearGradients(
            input: try Tensor(shape: [n, k], scalars: gradInput),
            weight: try Tensor(shape: [m, k], scalars: gradWeight),
            bias: columnSums(g))
    }

    /// (g · diag(rowScales))ᵀ, [m, n] for g [n, m].
    private func transposedScaled(_ g: Tensor, rowScales: [Float]) throws -> Tensor {
        let (n, m) = (g.shape[0], g.shape[1])
        var foldedT = kernelOutput(Float.self, m * n)
        try g.scalars.withUnsafeBufferPointer { gs in
            try rowScales.withUnsafeBufferPointer { xs in
                try foldedT.withUnsafeMutableBufferPointer { t in
                    if let kernels = self as? any ScaledTranspose {
                        return try kernels.transposeScaled(gs, rows: n, cols: m, scales: xs, into: t)
                    }
                    // Blocks of 16 rows × 64 columns through a small tile: rows of the gradient
                    // 4 KB apart (m = 1024) share L1 sets, so a blocked loop straight from g
                    // to gᵀ missed L1 on most reads.
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 1024) { tile in
                        for i0 in stride(from: 0, to: n, by: 16) {
                            let rows = min(16, n - i0)
                            for j0 in stride(from: 0, to: m, by: 64) {
                                let cols = min(64, m - j0)
                                for a in 0..<rows {
                                    let s = xs[i0 &+ a], from = (i0 &+ a) &* m &+ j0
                                    for b in 0..<cols { tile[b &* 16 &+ a] = gs[from &+ b] * s }
                                }
                                for b in 0..<cols {
                                    let to = (j0 &+ b) &* n &+ i0
                                    for a in 0..<rows { t[to &+ a] = tile[b &* 16 &+ a] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return try Tensor(shape: [m, n], scalars: foldedT)
    }

    /// c[i · ldc + j] = Float(Σₖ a[i, k] · b[k, j]) · a.scales[i]: an int8 product dequantized per
    /// row, in the matmul's own epilogue where the backend has one.
    private func rowScaledProduct(_ a: QuantizedActivations, _ b: Int8Matrix, into c: UnsafeMutablePointer<Float>, ldc: Int) throws {
        if let scaled = self as? any RowScaledInt8Product {
            return try scaled.gemmInt8(a.matrix, rowScales: a.scales, b, into: c, ldc: ldc)
        }
        let (n, width) = (a.tokens, b.cols)
        let product = try gemmInt8(a.matrix, b, transposeA: false, transposeB: false)
        product.withUnsafeBufferPointer { p in
            a.scales.withUnsafeBufferPointer { rowScales in
                for i in 0..<n {
                    let s = rowScales[i], from = i &* width, to = c + i &* ldc
                    for j in 0..<width { to[j] = Float(p[from &+ j]) * s }
                }
            }
        }
    }
}
