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
    private var lastStepsOnly = false  // the last training forward kept each sequence's last real step

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
        try forward(x, s, exec, adding: nil)
    }

    /// ``forward(_:_:_:)`` + `residual` (the same shape), the sum done by the output projection.
    func forward(_ x: Tensor, _ s: SequenceShape, _ exec: Execution, adding residual: Tensor?) throws -> Tensor {
        try checkInput(x, s)
        let qkvT = try qkv.forward(x, exec)
        let result = try exec.backend.attention(qkvT, shape: s, heads: heads, keepingProbabilities: exec.training)
        (qkvOut, probabilities, shape, lastStepsOnly) = exec.training ? (qkvT, result.probabilities, s, false) : (nil, [], nil, false)
        return try output.forward(result.output, exec, then: LinearEpilogue(residual: residual))
    }

    /// The layer's output at each sequence's last real step, [batch, hidden]: every row's keys
    /// and values (and queries: the projection is one matrix), one query per sequence through
    /// the output projection. Each row is the full pass's. `residual` [batch, hidden], if
    /// given, is added by the output projection. In training, keeps those rows' attention
    /// probabilities for ``backward(_:_:)``.
    func forwardAtLastSteps(_ x: Tensor, _ s: SequenceShape, _ exec: Execution, adding residual: Tensor?) throws -> Tensor {
        try checkInput(x, s)
        let last = s.lastSteps, qkvT = try qkv.forward(x, exec)
        let result = try exec.backend.attentionAtLastSteps(qkvT, shape: s, heads: heads, keepingProbabilities: exec.training)
        (qkvOut, probabilities, shape, lastStepsOnly) = exec.training ? (qkvT, result.probabilities, s, true) : (nil, [], nil, false)
        return try output.forward(result.output, exec.keeping(rows: last), then: LinearEpilogue(residual: residual))
    }

    private func checkInput(_ x: Tensor, _ s: SequenceShape) throws {
        guard x.shape == [s.rows, hidden] else {
            throw LowBitError.invalidShape("attention input must be [\(s.rows), \(hidden)] for \(s.batch) sequences of \(s.steps) steps, got \(x.shape)")
        }
    }

    /// Takes dL/d(output) for the last training forward ([batch · steps, hidden], or [batch,
    /// hidden] after one at the last steps), returns dL/d(input) [batch · steps, hidden], and
    /// adds to the projections' gradients.
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first.
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        guard let s = shape, let qkvT = qkvOut else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        let dattT = try output.backward(dy, exec)
        let dqkv = lastStepsOnly
            ? try exec.backend.attentionBackwardAtLastSteps(qkvT, probabilities: probabilities, gradient: dattT, shape: s, heads: heads)
            : try exec.backend.attentionBackward(qkvT, probabilities: probabilities, gradient: dattT, shape: s, heads: heads)
        return try qkv.backward(dqkv, exec)
    }
}
