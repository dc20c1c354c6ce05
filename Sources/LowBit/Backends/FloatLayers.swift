import Foundation

/// The model's float passes besides its matmuls: layer norm, SiLU and causal attention.
///
/// They are part of ``Backend`` so that each implementation runs them its own way: these
/// plain-Swift loops are the reference (``ReferenceBackend`` and ``BLASBackend`` use them),
/// and ``KernelsBackend`` runs the C kernels' vectorised, threaded versions, which compute
/// the same formulas with a fixed operation order of their own (so the two agree to rounding,
/// not bit for bit).

/// A layer norm's result: the output and what its backward pass needs.
public struct LayerNormResult: Sendable {
    /// y = (x − mean) · rstd · γ + β, [n, d].
    public var output: Tensor
    /// (x − mean) · rstd per row, [n · d]; empty unless asked for.
    public var normalized: [Float]
    /// 1 / √(variance + ε) per row.
    public var reciprocalDeviations: [Float]
}

/// An attention pass's result: the heads' outputs and, for the backward pass, the attention
/// probabilities.
public struct AttentionResult: Sendable {
    /// [batch · steps, hidden]: for each step and head, the probability-weighted values
    /// ([batch, hidden] from the attention at the last steps).
    public var output: Tensor
    /// [batch, heads, steps, steps], zero past each step's visible keys ([batch, heads, steps]
    /// from the attention at the last steps); empty unless asked for.
    public var probabilities: [Float]
}

extension Backend {
    /// Normalizes each row of `x` [n, d] to zero mean and unit variance, then scales by `gamma`
    /// and shifts by `beta` ([d] each); keeps the normalized rows when `keepingNormalized`.
    public func layerNorm(_ x: Tensor, gamma: [Float], beta: [Float], epsilon: Float, keepingNormalized: Bool) throws -> LayerNormResult {
        let (n, d) = try x.matrixShape("layer norm input")
        var y = [Float](repeating: 0, count: n * d)
        var xhat = [Float](repeating: 0, count: keepingNormalized ? n * d : 0), rstd = [Float](repeating: 0, count: n)
        x.scalars.withUnsafeBufferPointer { x in
            for i in 0..<n {
                var mean: Float = 0
                for c in 0..<d { mean += x[i * d + c] }
                mean /= Float(d)
                var variance: Float = 0
                for c in 0..<d { variance += (x[i * d + c] - mean) * (x[i * d + c] - mean) }
                let r = 1 / (variance / Float(d) + epsilon).squareRoot()
                rstd[i] = r
                for c in 0..<d {
                    let h = (x[i * d + c] - mean) * r
                    if keepingNormalized { xhat[i * d + c] = h }
                    y[i * d + c] = h * gamma[c] + beta[c]
                }
            }
        }
        return LayerNormResult(output: try Tensor(shape: [n, d], scalars: y), normalized: xhat, reciprocalDeviations: rstd)
    }

    /// u · sigmoid(u), elementwise.
    public func silu(_ u: [Float]) -> [Float] { u.map { $0 / (1 + expf(-$0)) } }

    /// Multiplies `gradient` by SiLU's derivative at `u`, elementwise.
    public func siluBackward(_ u: [Float], gradient: inout [Float]) {
        precondition(u.count == gradient.count)
        for i in 0..<u.count {
            let s = 1 / (1 + expf(-u[i]))
            gradient[i] *= s * (1 + u[i] * (1 - s))
        }
    }

    /// The full attention's rows at each sequence's last real step, and their probabilities.
    public func attentionAtLastSteps(_ qkv: Tensor, shape s: SequenceShape, heads: Int,
                                     keepingProbabilities: Bool) throws -> AttentionResult {
        let full = try attention(qkv, shape: s, heads: heads, keepingProbabilities: keepingProbabilities)
        var probabilities = [Float]()
        if keepingProbabilities {
            probabilities.reserveCapacity(s.batch * heads * s.steps)
            for row in lastQueryRows(s, heads) { probabilities += full.probabilities[row] }
        }
        return AttentionResult(output: try full.output.gatheringRows(s.lastSteps), probabilities: probabilities)
    }

    /// The full backward with the gradient zero but at the last steps, and those rows'
    /// probabilities alone (the others are not needed: their gradient is zero).
    public func attentionBackwardAtLastSteps(_ qkv: Tensor, probabilities: [Float], gradient: Tensor, shape s: SequenceShape,
                                             heads: Int) throws -> Tensor {
        let T = s.steps
        guard probabilities.count == s.batch * heads * T, gradient.shape.count == 2, gradient.shape[0] == s.batch else {
            throw LowBitError.invalidShape("attention backward: probabilities or gradient do not match the forward")
        }
        var full = [Float](repeating: 0, count: s.batch * heads * T * T)
        for (i, row) in lastQueryRows(s, heads).enumerated() {
            full.replaceSubrange(row, with: probabilities[(i * T)..<((i + 1) * T)])
        }
        return try attentionBackward(qkv, probabilities: full, gradient: gradient.scatteringRows(s.lastSteps, into: s.rows),
                                     shape: s, heads: heads)
    }

    /// Where each sequence and head's last real query row lies in the full probabilities
    /// [batch, heads, steps, steps], in the order of the last steps' [batch, heads, steps].
    private func lastQueryRows(_ s: SequenceShape, _ heads: Int) -> [Range<Int>] {
        let T = s.steps
        return (0..<(s.batch * heads)).map { u in
            let start = (u * T + s.lengths[u / heads] - 1) * T
            return start..<(start + T)
        }
    }

    /// Causal self-attention over `qkv` [batch · steps, 3 · hidden] (Q, K, V side by side in
    /// each row) laid out by `shape`: each step attends to the real steps of its sequence up to
    /// itself, softmax scaled by 1 / √(hidden / heads). `hidden` must be a multiple of `heads`.
    public func attention(_ qkv: Tensor, shape s: SequenceShape, heads: Int, keepingProbabilities: Bool) throws -> AttentionResult {
        let H = qkv.shape[1] / 3, T = s.steps, hd = H / heads
        let scale = 1 / Float(hd).squareRoot()
        var att = [Float](repeating: 0, count: s.rows * H)
        var probs = [Float](repeating: 0, count: keepingProbabilities ? s.batch * heads * T * T : 0)
        var scores = [Float](repeating: 0, count: T)
        qkv.scalars.withUnsafeBufferPointer { q3 in
            for b in 0..<s.batch {
                let visibleKeys = s.lengths[b]  // no padded keys
                for h in 0..<heads {
                    for i in 0..<T {
                        let visible = min(i, visibleKeys - 1)  // causal
                        var maxScore = -Float.infinity
                        for j in 0...visible {
                            var d: Float = 0
                            for c in 0..<hd { d += q3[(b * T + i) * 3 * H + h * hd + c] * q3[(b * T + j) * 3 * H + H + h * hd + c] }
                            scores[j] = d * scale
                            maxScore = max(maxScore, scores[j])
                        }
                        var total: Float = 0
                        for j in 0...visible { scores[j] = expf(scores[j] - maxScore); total += scores[j] }
                        for j in 0...visible {
                            let p = scores[j] / total
                            if keepingProbabilities { probs[((b * heads + h) * T + i) * T + j] = p }
                            for c in 0..<hd { att[(b * T + i) * H + h * hd + c] += p * q3[(b * T + j) * 3 * H + 2 * H + h * hd + c] }
                        }
                    }
                }
            }
        }
        return AttentionResult(output: try Tensor(shape: [s.rows, H], scalars: att), probabilities: probs)
    }

    /// The gradient of ``attention(_:shape:heads:keepingProbabilities:)`` with respect to
    /// `qkv`, from the forward's `qkv` and probabilities and the gradient of its output.
    public func attentionBackward(_ qkv: Tensor, probabilities: [Float], gradient: Tensor, shape s: SequenceShape,
                                  heads: Int) throws -> Tensor {
        let H = qkv.shape[1] / 3, T = s.steps, hd = H / heads
        let scale = 1 / Float(hd).squareRoot()
        var dqkv = [Float](repeating: 0, count: s.rows * 3 * H)
        var dp = [Float](repeating: 0, count: T)
        qkv.scalars.withUnsafeBufferPointer { q3 in
            gradient.scalars.withUnsafeBufferPointer { datt in
                for b in 0..<s.batch {
                    for h in 0..<heads {
                        for i in 0..<T {
                            let visible = min(i, s.lengths[b] - 1)
                            let pRow = ((b * heads + h) * T + i) * T, oRow = (b * T + i) * H + h * hd
                            var weighted: Float = 0
                            for j in 0...visible {
                                let vRow = (b * T + j) * 3 * H + 2 * H + h * hd
                                var d: Float = 0
                                for c in 0..<hd { d += datt[oRow + c] * q3[vRow + c] }
                                dp[j] = d
                                let p = probabilities[pRow + j]
                                for c in 0..<hd { dqkv[vRow + c] += p * datt[oRow + c] }
                                weighted += p * d
                            }
                            let qRow = (b * T + i) * 3 * H + h * hd
                            for j in 0...visible {
                                let ds = probabilities[pRow + j] * (dp[j] - weighted) * scale
                                let kRow = (b * T + j) * 3 * H + H + h * hd
                                for c in 0..<hd {
                                    dqkv[qRow + c] += ds * q3[kRow + c]
                                    dqkv[kRow + c] += ds * q3[qRow + c]
                                }
                            }
                        }
                    }
                }
            }
        }
        return try Tensor(shape: [s.rows, 3 * H], scalars: dqkv)
    }
}
