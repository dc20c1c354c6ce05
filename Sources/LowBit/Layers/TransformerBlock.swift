/// A pre-norm transformer block: x + Dropout(Attn(LN(x))), then x + Dropout(FFN(LN(x))),
/// then dropout on the block's output (between blocks).
public final class TransformerBlock {
    /// The block's path in its model, e.g. "blocks.0"; its layers sit at `path + ".norm1"`,
    /// `".attn"`, `".norm2"` and `".ffn"`.
    public let path: String
    /// The layer norm before attention.
    public let norm1: LayerNorm
    /// The causal self-attention of the first residual branch.
    public let attention: CausalSelfAttention
    /// The layer norm before the feed-forward network.
    public let norm2: LayerNorm
    /// The feed-forward network of the second residual branch.
    public let feedForward: FeedForward
    let dropAttention: Dropout
    let dropFeedForward: Dropout
    let dropOutput: Dropout

    /// Creates a block for rows of `hidden` features with `heads` attention heads and dropout
    /// probability `dropout` in all its dropout layers, float, initialised from `seed`.
    /// Nothing is validated here; ``QAT/buildBlock(path:hiddenSize:numHeads:dropout:quantize:seed:)``
    /// validates and quantizes.
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

    /// The trainable parameters of norm1, attention, norm2 and the FFN, in that order.
    public var parameters: [Parameter] { norm1.parameters + attention.parameters + norm2.parameters + feedForward.parameters }
    var linears: [Linear] { attention.linears + feedForward.linears }

    /// Maps rows [batch · steps, hidden], laid out by `s`, to the same shape; in training,
    /// keeps what ``backward(_:_:)`` needs.
    public func forward(_ x: Tensor, _ s: SequenceShape, _ exec: Execution) throws -> Tensor {
        if !exec.training {
            // Dropout is the identity: the output projections add the residuals themselves.
            let x1 = try attention.forward(norm1.forward(x, exec), s, exec, adding: x)
            return try feedForward.forward(norm2.forward(x1, exec), exec, adding: x1)
        }
        let a = dropAttention.forward(try attention.forward(norm1.forward(x, exec), s, exec), exec)
        let x1 = add(x, a)
        let f = dropFeedForward.forward(try feedForward.forward(norm2.forward(x1, exec), exec), exec)
        return dropOutput.forward(add(x1, f), exec)
    }

    /// The block's output at each sequence's last real step, [batch, hidden], in evaluation:
    /// what the encoder keeps of its last block. Every row gives its keys and values; the
    /// rest (one query per sequence through attention, the output projection, the second norm
    /// and the feed-forward network: 9/12 of the block's multiply-adds) runs on the kept rows
    /// alone. Each row is the full pass's (every layer works row by row; dropout is off).
    func forwardAtLastSteps(_ x: Tensor, _ s: SequenceShape, _ exec: Execution) throws -> Tensor {
        precondition(!exec.training, "an evaluation pass")
        let x1 = try attention.forwardAtLastSteps(norm1.forward(x, exec), s, exec, adding: x.gatheringRows(s.lastSteps))
        return try feedForward.forward(norm2.forward(x1, exec), exec, adding: x1)
    }

    /// Takes dL/d(output) [batch · steps, hidden] for the last training forward, returns
    /// dL/d(input) of the same shape, and adds to every parameter's gradient.
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first.
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        let d = dropOutput.backward(dy)
        let dx1 = add(d, try norm2.backward(feedForward.backward(dropFeedForward.backward(d), exec), exec))
        return add(dx1, try norm1.backward(attention.backward(dropAttention.backward(dx1), exec), exec))
    }
}

/// Elementwise sum of two tensors of one shape, in one pass into a new buffer (a copy of `a`
/// and an add into it were two).
func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape)
    var c = a
    c.scalars = kernelOutput(Float.self, a.count)
    a.scalars.withUnsafeBufferPointer { x in
        b.scalars.withUnsafeBufferPointer { y in
            c.scalars.withUnsafeMutableBufferPointer { z in
                for i in 0..<z.count { z[i] = x[i] + y[i] }
            }
        }
    }
    return c
}
