import Foundation

/// Multi-head causal self-attention with a quantizable fused QKV projection
/// (hidden → 3·hidden, split into Q, K, V) and a quantizable output projection.
/// Keys beyond a sequence's length are masked, so padding never reaches a real step.
public final class CausalSelfAttention {
    public let path: String
    public let hidden: Int
    public let heads: Int
    public let qkv: Linear
    public let output: Linear

    private var qkvOut: Tensor?
    private var probabilities: [Float] = []  // [batch, heads, steps, steps]
    private var shape: SequenceShape?

    public init(path: String, hidden: Int, heads: Int, seed: UInt64) {
        self.path = path
        self.hidden = hidden
        self.heads = heads
        qkv = Linear(path: path + ".qkv", inputs: hidden, outputs: 3 * hidden, bias: true, quantizable: true, seed: seed)
        output = Linear(path: path + ".out", inputs: hidden, outputs: hidden, bias: true, quantizable: true, seed: seed)
    }

    public var parameters: [Parameter] { qkv.parameters + output.parameters }
    var linears: [Linear] { [qkv, output] }

    public func forward(_ x: Tensor, _ s: SequenceShape, _ exec: Execution) throws -> Tensor {
        let qkvT = try qkv.forward(x, exec)
        let (T, H, hd) = (s.steps, hidden, hidden / heads)
        let scale = 1 / Float(hd).squareRoot()
        var att = [Float](repeating: 0, count: s.rows * H)
        var probs = [Float](repeating: 0, count: s.batch * heads * T * T)
        let q3 = qkvT.scalars
        var scores = [Float](repeating: 0, count: T)
        for b in 0..<s.batch {
            for h in 0..<heads {
                for i in 0..<T {
                    let qRow = (b * T + i) * 3 * H + h * hd
                    let visible = min(i, s.lengths[b] - 1)  // causal, and no padded keys
                    var maxScore = -Float.infinity
                    for j in 0...visible {
                        let kRow = (b * T + j) * 3 * H + H + h * hd
                        var dot: Float = 0
                        for c in 0..<hd { dot += q3[qRow + c] * q3[kRow + c] }
                        scores[j] = dot * scale
                        maxScore = max(maxScore, scores[j])
                    }
                    var total: Float = 0
                    for j in 0...visible { scores[j] = expf(scores[j] - maxScore); total += scores[j] }
                    let pBase = ((b * heads + h) * T + i) * T
                    let oRow = (b * T + i) * H + h * hd
                    for j in 0...visible {
                        let p = scores[j] / total
                        probs[pBase + j] = p
                        let vRow = (b * T + j) * 3 * H + 2 * H + h * hd
                        for c in 0..<hd { att[oRow + c] += p * q3[vRow + c] }
                    }
                }
            }
        }
        if exec.training { qkvOut = qkvT; probabilities = probs; shape = s }
        return try output.forward(Tensor(shape: [s.rows, H], scalars: att), exec)
    }

    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        guard let s = shape, let qkvT = qkvOut else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        let dattT = try output.backward(dy, exec)
        let (T, H, hd) = (s.steps, hidden, hidden / heads)
        let scale = 1 / Float(hd).squareRoot()
        let q3 = qkvT.scalars, probabilities = self.probabilities, datt = dattT.scalars
        var dqkv = [Float](repeating: 0, count: s.rows * 3 * H)
        var dp = [Float](repeating: 0, count: T)
        for b in 0..<s.batch {
            for h in 0..<heads {
                for i in 0..<T {
                    let visible = min(i, s.lengths[b] - 1)
                    let pBase = ((b * heads + h) * T + i) * T
                    let oRow = (b * T + i) * H + h * hd
                    var weighted: Float = 0
                    for j in 0...visible {
                        let vRow = (b * T + j) * 3 * H + 2 * H + h * hd
                        var g: Float = 0
                        for c in 0..<hd {
                            g += datt[oRow + c] * q3[vRow + c]
                            dqkv[vRow + c] += probabilities[pBase + j] * datt[oRow + c]
                        }
                        dp[j] = g
                        weighted += probabilities[pBase + j] * g
                    }
                    let qRow = (b * T + i) * 3 * H + h * hd
                    for j in 0...visible {
                        let ds = probabilities[pBase + j] * (dp[j] - weighted) * scale
                        let kRow = (b * T + j) * 3 * H + H + h * hd
                        for c in 0..<hd {
                            dqkv[qRow + c] += ds * q3[kRow + c]
                            dqkv[kRow + c] += ds * q3[qRow + c]
                        }
                    }
                }
            }
        }
        return try qkv.backward(Tensor(shape: [s.rows, 3 * H], scalars: dqkv), exec)
    }
}
