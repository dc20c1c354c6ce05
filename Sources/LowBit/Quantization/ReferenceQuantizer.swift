/// The definition of LowBit's quantizers, in plain Swift. Every other implementation
/// (the C kernels on every ISA) must return the same values and the same scale bits.
///
/// Means are taken in a fixed order: the elements in blocks of 64 (the last padded with
/// +0.0); in each block b, lane l (0..<16) adds the `Float` (b[l] + b[l+16]) + (b[l+32] +
/// b[l+48]) to its `Float` partial l; after every 16th block and after the last one, the
/// `Float` partial is added to the `Double` partial l and reset; then the `Double` partials
/// are folded pairwise (8, 4, 2, 1). The order is part of the definition so that a SIMD
/// implementation can follow it exactly; the float steps cost SIMD code a few adds per
/// vector and one conversion per 1024 elements, and a float partial sums 64 elements.
public enum ReferenceQuantizer {
    /// Blocks of 64 summed in `Float` before a `Double` add.
    static let superblock = 16

    /// Sum and sum of magnitudes in the canonical order. Not finite if x holds NaN or
    /// infinity, or magnitudes so near `Float.greatestFiniteMagnitude` that a float partial
    /// (64 elements) overflows.
    public static func canonicalSums<C: Collection>(_ x: C) -> (sum: Double, absSum: Double) where C.Element == Float {
        var s = [Double](repeating: 0, count: 16), a = s
        var fs = [Float](repeating: 0, count: 16), fa = fs
        var block = [Float](repeating: 0, count: 64)
        var filled = 0, blocks = 0
        func flushPartials() {
            for l in 0..<16 {
                s[l] += Double(fs[l])
                a[l] += Double(fa[l])
                fs[l] = 0
                fa[l] = 0
            }
            blocks = 0
        }
        func addBlock() {
            for l in 0..<16 {
                fs[l] += (block[l] + block[l + 16]) + (block[l + 32] + block[l + 48])
                fa[l] += (block[l].magnitude + block[l + 16].magnitude) + (block[l + 32].magnitude + block[l + 48].magnitude)
            }
            for i in 0..<64 { block[i] = 0 }
            filled = 0
            blocks += 1
            if blocks == superblock { flushPartials() }
        }
        for v in x {
            block[filled] = v
            filled += 1
            if filled == 64 { addBlock() }
        }
        if filled > 0 { addBlock() }
        if blocks > 0 { flushPartials() }
        for w in [8, 4, 2, 1] { for l in 0..<w { s[l] += s[l + w]; a[l] += a[l + w] } }
        return (s[0], a[0])
    }

    /// numerator / denominator, capped at the largest finite float so that 0 * inverse is 0.
    static func finiteInverse(_ numerator: Float, _ denominator: Float) -> Float {
        let inv = numerator / denominator
        return inv <= .greatestFiniteMagnitude ? inv : .greatestFiniteMagnitude
    }

    static func round(_ x: Float, inverse: Float, qmax: Int) -> Int8 {
        let v = (x * inverse).rounded(.toNearestOrEven)
        return Int8(min(max(v, -Float(qmax)), Float(qmax)))
    }

    /// Quantizes one scope; returns its scale.
    static func quantizeScope(_ x: ArraySlice<Float>, mode: QuantizationMode, bound: Float, into q: inout [Int8], at start: Int) throws -> Float {
        let n = x.count
        switch mode {
        case .binary, .ternary:
            let (sum, absSum) = canonicalSums(x)
            guard absSum.isFinite else {
                throw LowBitError.nonFinite("weights holds NaN or infinity, or magnitudes near Float.greatestFiniteMagnitude")
            }
            if mode == .ternary {
                let scale = Float(absSum / Double(n))
                let inv = scale == 0 ? 0 : finiteInverse(1, scale)
                for (i, v) in x.enumerated() { q[start + i] = scale == 0 ? 0 : round(v, inverse: inv, qmax: 1) }
                return scale
            }
            let mean = Float(sum / Double(n))
            for (i, v) in x.enumerated() { q[start + i] = v >= mean ? 1 : -1 }
            return Float(absSum / Double(n))
        case .int4, .int8:
            let absmax = x.reduce(Float(0)) { max($0, $1.magnitude) }
            let inv = absmax == 0 ? 0 : finiteInverse(bound, absmax)
            for (i, v) in x.enumerated() { q[start + i] = absmax == 0 ? 0 : round(v, inverse: inv, qmax: mode.qmax) }
            return absmax / bound
        }
    }

    /// Throws unless `granularity` can be quantized and packed for a row of `cols`.
    public static func validate(_ granularity: Granularity, mode: QuantizationMode, cols: Int) throws {
        if case .perGroup(let g) = granularity {
            let chunk = Int(mode.traits.chunk_k)
            guard g > 0, g >= cols || g % chunk == 0 else {
                throw LowBitError.invalidArgument(
                    "group size \(g) for \(mode.rawValue) must be positive and a multiple of \(chunk) (or cover the row of \(cols))")
            }
        }
    }

    /// Quantizes float weights [rows, cols] in `mode`, one scale per scope of `granularity`:
    /// the values and scale bits every backend must return.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` unless `w` is a non-empty matrix;
    ///   ``LowBitError/invalidArgument(_:)`` for a group size that cannot be packed (see
    ///   ``ReferenceQuantizer/validate(_:mode:cols:)``); ``LowBitError/nonFinite(_:)`` for NaN or
    ///   infinity or, in binary and ternary, magnitudes so large that a partial sum overflows.
    public static func quantize(weights w: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound = .qmax) throws -> QuantizedWeights {
        let (rows, cols) = try w.matrixShape("weights")
        guard rows > 0, cols > 0 else { throw LowBitError.invalidShape("weights must be non-empty, got \(w.shape)") }
        try validate(granularity, mode: mode, cols: cols)
        try w.checkFinite("weights")
        let b = bound.value(qmax: mode.qmax)
        var q = [Int8](repeating: 0, count: rows * cols)
        var scales: [Float] = []
        let g = granularity.groupLength(cols: cols)
        if g == 0 {
            scales = [try quantizeScope(w.scalars[...], mode: mode, bound: b, into: &q, at: 0)]
        } else {
            for r in 0..<rows {
                for c0 in stride(from: 0, to: cols, by: g) {
                    let lo = r * cols + c0, hi = r * cols + min(c0 + g, cols)
                    scales.append(try quantizeScope(w.scalars[lo..<hi], mode: mode, bound: b, into: &q, at: lo))
                }
            }
        }
        return try QuantizedWeights(mode: mode, rows: rows, cols: cols, granularity: granularity, values: q, scales: scales)
    }

    /// Int8 absmax per token (row), bound 127, rows padded to `stride`.
    public static func quantize(activations x: Tensor, stride: Int? = nil) throws -> QuantizedActivations {
        let (n, k) = try x.matrixShape("activations")
        guard n > 0, k > 0 else { throw LowBitError.invalidShape("activations must be non-empty, got \(x.shape)") }
        try x.checkFinite("activations")
        let s = stride ?? paddedLength(k)
        var q = [Int8](repeating: 0, count: n * s)
        var scales = [Float](repeating: 0, count: n)
        var row = [Int8](repeating: 0, count: k)
        for i in 0..<n {
            scales[i] = try quantizeScope(x.scalars[(i * k)..<((i + 1) * k)], mode: .int8, bound: 127, into: &row, at: 0)
            for c in 0..<k { q[i * s + c] = row[c] }
        }
        return QuantizedActivations(quantized: n, cols: k, stride: s, values: q, scales: scales)
    }

    /// The row length the packed matmul reads: K rounded up to 32.
    public static func paddedLength(_ k: Int) -> Int { (k + 31) / 32 * 32 }
}

extension ReferenceQuantizer {
    /// Static-range activations: one fixed range for every token (scale = absmax / 127).
    public static func quantize(activations x: Tensor, staticAbsmax absmax: Float) throws -> QuantizedActivations {
        let (n, k) = try x.matrixShape("activations")
        guard n > 0, k > 0 else { throw LowBitError.invalidShape("activations must be non-empty, got \(x.shape)") }
        try x.checkFinite("activations")
        guard absmax.isFinite, absmax >= 0 else { throw LowBitError.invalidArgument("static range \(absmax) is not a finite magnitude") }
        let s = paddedLength(k)
        var q = [Int8](repeating: 0, count: n * s)
        let inv = absmax == 0 ? 0 : finiteInverse(127, absmax)
        for i in 0..<n { for c in 0..<k { q[i * s + c] = round(x.scalars[i * k + c], inverse: inv, qmax: 127) } }
        return QuantizedActivations(quantized: n, cols: k, stride: s, values: q, scales: [Float](repeating: absmax / 127, count: n))
    }

    /// Int8 absmax per row with stochastic rounding (floor(v + u), u uniform in [0, 1),
    /// from a seeded generator): unbiased, for quantized gradients.
    public static func quantizeStochastic(rows x: Tensor, seed: UInt64) throws -> QuantizedActivations {
        let (n, k) = try x.matrixShape("gradient")
        try x.checkFinite("gradient")
        let s = paddedLength(k)
        let rng = SeededGenerator(seed: seed)
        var q = [Int8](repeating: 0, count: n * s)
        var scales = [Float](repeating: 0, count: n)
        // The draws are the generator's in sequence (one per value of each non-zero row), each
        // computed from its index so that the loop carries no chain; floor by truncation (no
        // libm call): |v · inv + u| < 129.
        var drawn = 0
        x.scalars.withUnsafeBufferPointer { x in
            q.withUnsafeMutableBufferPointer { q in
                for i in 0..<n {
                    var absmax: Float = 0
                    for c in 0..<k { absmax = max(absmax, x[i * k + c].magnitude) }
                    scales[i] = absmax / 127
                    guard absmax > 0 else { continue }
                    let inv = finiteInverse(127, absmax)
                    for c in 0..<k {
                        let r = x[i * k + c] * inv + rng.unit(ahead: drawn + c)
                        let t = Float(Int32(r)), down = t > r ? t - 1 : t
                        q[i * s + c] = Int8(min(max(down, -127), 127))
                    }
                    drawn += k
                }
            }
        }
        return QuantizedActivations(quantized: n, cols: k, stride: s, values: q, scales: scales)
    }
}
