/// A pre-norm transformer block: x + Dropout(Attn(LN(x))), then x + Dropout(FFN(LN(x))),
/// then dropout on the block's output (between blocks).
public final class TransformerBlock {
    public let path: String
    public let norm1: LayerNorm
    public let attention: CausalSelfAttention
    public let norm2: LayerNorm
    public let feedForward: FeedForward
    let dropAttention: Dropout
    let dropFeedForward: Dropout
    let dropOutput: Dropout

    public init(path: String, hidden: Int, heads: Int, dropout: Float, seed: UInt64) {
        self.path = path
        norm1 = LayerNorm(path: path + ".norm1", features: hidden)
        attention = CausalSelfAttention(path: path + ".attn", hidden: hidden, heads: heads, seed: seed)
        norm2 = LayerNorm(path: path + ".norm2", features: hidden)
        feedForward = FeedForward(path: path + ".ffn", hidden: hidden, dropout: dropout, seed: seed)
        dropAttention = Dropout(path: path + ".drop_attn", rate: dropout, seed: seed)
        dropFeedForward = Dropout(path: path + ".drop_ffn", rate: dropout, seed: seed)
        dropOutput = Dropout(path: path + ".drop_out", rate: dropout, seed: seed)
    }

    public var parameters: [Parameter] { norm1.parameters + attention.parameters + norm2.parameters + feedForward.parameters }
    var linears: [Linear] { attention.linears + feedForward.linears }

    public func forward(_ x: Tensor, _ s: SequenceShape, _ exec: Execution) throws -> Tensor {
        let a = dropAttention.forward(try attention.forward(norm1.forward(x, exec), s, exec), exec)
        let x1 = add(x, a)
        let f = dropFeedForward.forward(try feedForward.forward(norm2.forward(x1, exec), exec), exec)
        return dropOutput.forward(add(x1, f), exec)
    }

    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        let d = dropOutput.backward(dy)
        let dx1 = add(d, try norm2.backward(feedForward.backward(dropFeedForward.backward(d), exec), exec))
        return add(dx1, try norm1.backward(attention.backward(dropAttention.backward(dx1), exec), exec))
    }
}

/// Elementwise sum of two tensors of one shape.
func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape)
    var c = a
    for i in 0..<c.count { c.scalars[i] += b.scalars[i] }
    return c
}
