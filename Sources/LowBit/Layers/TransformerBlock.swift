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
    private var keptRows: [Int]?  // the last training forward's output rows, when it kept a few

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
        keptRows = nil
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

    /// The block's output at each sequence's last real step, [batch, hidden]: what the encoder
    /// keeps of its last block. Every row gives its keys and values; the rest (the output
    /// projection, the second norm and the feed-forward network: 9/12 of the block's
    /// multiply-adds, forward and backward) runs on the kept rows alone. Each row is the full
    /// pass's: every layer works row by row, and dropout draws the kept rows' own masks.
    func forwardAtLastSteps(_ x: Tensor, _ s: SequenceShape, _ exec: Execution) throws -> Tensor {
        let last = s.lastSteps, kept = exec.keeping(rows: last)
        keptRows = nil
        if !exec.training {
            let x1 = try attention.forwardAtLastSteps(norm1.forward(x, exec), s, exec, adding: x.gatheringRows(last))
            return try feedForward.forward(norm2.forward(x1, kept), kept, adding: x1)
        }
        let a = dropAttention.forward(try attention.forwardAtLastSteps(norm1.forward(x, exec), s, exec, adding: nil), kept)
        let x1 = add(try x.gatheringRows(last), a)
        let f = dropFeedForward.forward(try feedForward.forward(norm2.forward(x1, kept), kept), kept)
        keptRows = last
        return dropOutput.forward(add(x1, f), kept)
    }

    /// Takes dL/d(output) for the last training forward ([batch · steps, hidden], or [batch,
    /// hidden] after one at the last steps), returns dL/d(input) [batch · steps, hidden], and
    /// adds to every parameter's gradient.
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first.
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        let d = dropOutput.backward(dy)
        let dx1 = add(d, try norm2.backward(feedForward.backward(dropFeedForward.backward(d), exec), exec))
        var dx = try norm1.backward(attention.backward(dropAttention.backward(dx1), exec), exec)
        guard let kept = keptRows else { return add(dx1, dx) }
        // The residual reaches the kept rows alone; the others' gradient came through their
        // keys and values.
        let h = dx1.shape[1]
        dx.scalars.withUnsafeMutableBufferPointer { out in
            dx1.scalars.withUnsafeBufferPointer { residual in
                for (i, row) in kept.enumerated() {
                    for c in 0..<h { out[row * h + c] = residual[i * h + c] + out[row * h + c] }
                }
            }
        }
        return dx
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
