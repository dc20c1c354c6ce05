import Foundation

/// Multi-head causal self-attention with a quantizable fused QKV projection
/// (hidden → 3·hidden, split into Q, K, V) and a quantizable output projection.
/// Keys beyond a sequence's length are masked, so padding never reaches a real step.
public final class CausalSelfAttention {
    /// The layer's path in its model, e.g. "blocks.0.attn"; its projections sit at
    /// `path + ".qkv"` and `path + ".out"`.
    public let path: String
    /// Features per row, in and out (the model's hidden size).
    public let hidden: Int
    /// Number of attention heads; each attends over `hidden / heads` features.
    public let heads: Int
    /// The fused Q, K, V projection, hidden → 3·hidden (Q, K, V side by side in each row).
    public let qkv: Linear
    /// The output projection, hidden → hidden, applied to the concatenated heads.
    public let output: Linear

    private var qkvOut: Tensor?
    private var probabilities: [Float] = []  // [batch, heads, steps, steps]
    private var shape: SequenceShape?

    /// Creates the layer with float projections drawn from `seed` (mixed with each one's path).
    ///
    /// `hidden` must be a multiple of `heads`; this initializer does not check it
    /// (``EncoderConfiguration/validate()`` does).
    public init(path: String, hidden: Int, heads: Int, seed: UInt64) {
        self.path = path
        self.hidden = hidden
        self.heads = heads
        qkv = Linear(path: path + ".qkv", inputs: hidden, outputs: 3 * hidden, bias: true, quantizable: true, seed: seed)
        output = Linear(path: path + ".out", inputs: hidden, outputs: hidden, bias: true, quantizable: true, seed: seed)
    }

    /// The trainable parameters: the QKV weight and bias, then the output weight and bias.
    public var parameters: [Parameter] { qkv.parameters + output.parameters }
    var linears: [Linear] { [qkv, output] }

    /// Attends over rows [batch · steps, hidden] laid out by `s`, and returns the same shape.
    ///
    /// Each step attends to the real steps of its sequence up to itself, with softmax
    /// scaled by 1 / √(hidden / heads). In training, keeps what ``backward(_:_:)`` needs.
    /// Throws ``LowBitError/invalidShape(_:)`` if rows are not `hidden` wide.
    public func forward(_ x: Tensor, _ s: SequenceShape, _ exec: Execution) throws -> Tensor {
        guard x.shape == [s.rows, hidden] else {
            throw LowBitError.invalidShape("attention input must be [\(s.rows), \(hidden)] for \(s.batch) sequences of \(s.steps) steps, got \(x.shape)")
        }
        let qkvT = try qkv.forward(x, exec)
        let (T, H, hd) = (s.steps, hidden, hidden / heads)
        let scale = 1 / Float(hd).squareRoot()
        var att = [Float](repeating: 0, count: s.rows * H)
        var probs = [Float](repeating: 0, count: s.batch * heads * T * T)
        var scores = [Float](repeating: 0, count: T)
        qkvT.scalars.withUnsafeBufferPointer { q3b in
            att.withUnsafeMutableBufferPointer { attb in
                probs.withUnsafeMutableBufferPointer { probsb in
                    scores.withUnsafeMutableBufferPointer { scoresb in
                        let q3 = q3b.baseAddress!, att = attb.baseAddress!, probs = probsb.baseAddress!
                        let scores = scoresb.baseAddress!
                        for b in 0..<s.batch {
                            let visibleKeys = s.lengths[b]  // no padded keys
                            for h in 0..<heads {
                                for i in 0..<T {
                                    let qRow = q3 + (b * T + i) * 3 * H + h * hd
                                    let visible = min(i, visibleKeys - 1)  // causal
                                    let keys = q3 + b * T * 3 * H + H + h * hd
                                    scoreRow(qRow, keys: keys, stride: 3 * H, count: visible + 1, width: hd, into: scores)
                                    var maxScore = -Float.infinity
                                    for j in 0...visible {
                                        scores[j] *= scale
                                        maxScore = max(maxScore, scores[j])
                                    }
                                    var total: Float = 0
                                    for j in 0...visible { scores[j] = expf(scores[j] - maxScore); total += scores[j] }
                                    let pRow = probs + ((b * heads + h) * T + i) * T
                                    let oRow = att + (b * T + i) * H + h * hd
                                    for j in 0...visible {
                                        let p = scores[j] / total
                                        pRow[j] = p
                                        let vRow = q3 + (b * T + j) * 3 * H + 2 * H + h * hd
                                        for c in 0..<hd { oRow[c] += p * vRow[c] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (qkvOut, probabilities, shape) = exec.training ? (qkvT, probs, s) : (nil, [], nil)
        return try output.forward(Tensor(shape: [s.rows, H], scalars: att), exec)
    }

    /// Takes dL/d(output) [batch · steps, hidden] for the last training forward, returns
    /// dL/d(input) of the same shape, and adds to the projections' gradients.
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first.
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        guard let s = shape, let qkvT = qkvOut else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        let dattT = try output.backward(dy, exec)
        let (T, H, hd) = (s.steps, hidden, hidden / heads)
        let scale = 1 / Float(hd).squareRoot()
        var dqkv = [Float](repeating: 0, count: s.rows * 3 * H)
        var dp = [Float](repeating: 0, count: T)
        qkvT.scalars.withUnsafeBufferPointer { q3b in
            probabilities.withUnsafeBufferPointer { pb in
                dattT.scalars.withUnsafeBufferPointer { dattb in
                    dqkv.withUnsafeMutableBufferPointer { dqkvb in
                        dp.withUnsafeMutableBufferPointer { dpb in
                            let q3 = q3b.baseAddress!, probabilities = pb.baseAddress!, datt = dattb.baseAddress!
                            let dqkv = dqkvb.baseAddress!, dp = dpb.baseAddress!
                            for b in 0..<s.batch {
                                for h in 0..<heads {
                                    for i in 0..<T {
                                        let visible = min(i, s.lengths[b] - 1)
                                        let pRow = probabilities + ((b * heads + h) * T + i) * T
                                        let oRow = datt + (b * T + i) * H + h * hd
                                        let keys = q3 + b * T * 3 * H + 2 * H + h * hd
                                        scoreRow(oRow, keys: keys, stride: 3 * H, count: visible + 1, width: hd, into: dp)
                                        var weighted: Float = 0
                                        for j in 0...visible {
                                            let dvRow = dqkv + (b * T + j) * 3 * H + 2 * H + h * hd
                                            let p = pRow[j]
                                            for c in 0..<hd { dvRow[c] += p * oRow[c] }
                                            weighted += p * dp[j]
                                        }
                                        let qRow = (b * T + i) * 3 * H + h * hd
                                        for j in 0...visible {
                                            let ds = pRow[j] * (dp[j] - weighted) * scale
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
                }
            }
        }
        return try qkv.backward(Tensor(shape: [s.rows, 3 * H], scalars: dqkv), exec)
    }
}

/// out[j] = Σ_c row[c] · keys[j · stride + c] for j < count, each sum taken in order of c
/// (so the result is the plain loop's, bit for bit), four keys at a time for speed.
@inline(__always)
private func scoreRow(_ row: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int, count: Int, width: Int,
                      into out: UnsafeMutablePointer<Float>) {
    var j = 0
    while j + 4 <= count {
        let k0 = keys + j * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride
        var d0: Float = 0, d1: Float = 0, d2: Float = 0, d3: Float = 0
        for c in 0..<width {
            let r = row[c]
            d0 += r * k0[c]; d1 += r * k1[c]; d2 += r * k2[c]; d3 += r * k3[c]
        }
        out[j] = d0; out[j + 1] = d1; out[j + 2] = d2; out[j + 3] = d3
        j += 4
    }
    while j < count {
        let k = keys + j * stride
        var d: Float = 0
        for c in 0..<width { d += row[c] * k[c] }
        out[j] = d
        j += 1
    }
}

