import LowBitKernels

/// The float passes on the C kernels (lowbit.h, "float layers"): vectorised on the backend's
/// ISA and threaded over rows, or over sequences and heads, with the same bits for every ISA
/// and thread count.
extension KernelsBackend {
    /// Layer norm by `lowbit_layernorm_forward`.
    public func layerNorm(_ x: Tensor, gamma: [Float], beta: [Float], epsilon: Float, keepingNormalized: Bool) throws -> LayerNormResult {
        let (n, d) = try x.matrixShape("layer norm input")
        guard gamma.count == d, beta.count == d else {
            throw LowBitError.invalidShape("layer norm of \(d) features takes \(d) scales and shifts, got \(gamma.count) and \(beta.count)")
        }
        var y = kernelOutput(Float.self, n * d)
        var xhat = kernelOutput(Float.self, keepingNormalized ? n * d : 0), rstd = kernelOutput(Float.self, n)
        let status = withUnsafePointer(to: context) { ctx in
            xhat.withUnsafeMutableBufferPointer { xh in
                lowbit_layernorm_forward(ctx, x.scalars, Int64(n), Int64(d), gamma, beta, epsilon, &y,
                                         keepingNormalized ? xh.baseAddress : nil, &rstd)
            }
        }
        try check(status, "layer norm")
        return LayerNormResult(output: try Tensor(shape: [n, d], scalars: y), normalized: xhat, reciprocalDeviations: rstd)
    }

    /// SiLU by `lowbit_silu_forward`.
    public func silu(_ u: [Float]) -> [Float] {
        guard !u.isEmpty else { return [] }
        var a = kernelOutput(Float.self, u.count)
        _ = withUnsafePointer(to: context) { lowbit_silu_forward($0, u, Int64(u.count), &a) }
        return a
    }

    /// SiLU's backward by `lowbit_silu_backward`.
    public func siluBackward(_ u: [Float], gradient: inout [Float]) {
        precondition(u.count == gradient.count)
        guard !u.isEmpty else { return }
        _ = withUnsafePointer(to: context) { lowbit_silu_backward($0, u, Int64(u.count), &gradient) }
    }

    /// Attention by `lowbit_attention_forward`.
    public func attention(_ qkv: Tensor, shape s: SequenceShape, heads: Int, keepingProbabilities: Bool) throws -> AttentionResult {
        let H = try attentionWidth(qkv, s, heads)
        var att = kernelOutput(Float.self, s.rows * H)
        var probs = kernelOutput(Float.self, keepingProbabilities ? s.batch * heads * s.steps * s.steps : 0)
        var workspace = attentionWorkspace(s, H, heads)
        let lengths = s.lengths.map(Int64.init)
        let status = withUnsafePointer(to: context) { ctx in
            probs.withUnsafeMutableBufferPointer { p in
                lowbit_attention_forward(ctx, qkv.scalars, Int64(s.batch), Int64(s.steps), Int64(H), Int64(heads), lengths,
                                         1 / Float(H / heads).squareRoot(), &att, keepingProbabilities ? p.baseAddress : nil,
                                         &workspace)
            }
        }
        try check(status, "attention")
        return AttentionResult(output: try Tensor(shape: [s.rows, H], scalars: att), probabilities: probs)
    }

    /// Attention at each sequence's last real step by `lowbit_attention_forward_last`.
    public func attentionAtLastSteps(_ qkv: Tensor, shape s: SequenceShape, heads: Int,
                                     keepingProbabilities: Bool) throws -> AttentionResult {
        let H = try attentionWidth(qkv, s, heads)
        var att = kernelOutput(Float.self, s.batch * H)
        var probs = kernelOutput(Float.self, keepingProbabilities ? s.batch * heads * s.steps : 0)
        var workspace = attentionWorkspace(s, H, heads)
        let lengths = s.lengths.map(Int64.init)
        let status = withUnsafePointer(to: context) { ctx in
            probs.withUnsafeMutableBufferPointer { p in
                lowbit_attention_forward_last(ctx, qkv.scalars, Int64(s.batch), Int64(s.steps), Int64(H), Int64(heads), lengths,
                                              1 / Float(H / heads).squareRoot(), &att, keepingProbabilities ? p.baseAddress : nil,
                                              &workspace)
            }
        }
        try check(status, "attention")
        return AttentionResult(output: try Tensor(shape: [s.batch, H], scalars: att), probabilities: probs)
    }

    /// The backward of the attention at the last steps by `lowbit_attention_backward_last`.
    public func attentionBackwardAtLastSteps(_ qkv: Tensor, probabilities: [Float], gradient: Tensor, shape s: SequenceShape,
                                             heads: Int) throws -> Tensor {
        let H = try attentionWidth(qkv, s, heads)
        guard probabilities.count == s.batch * heads * s.steps, gradient.shape == [s.batch, H] else {
            throw LowBitError.invalidShape("attention backward: probabilities or gradient do not match the forward")
        }
        var dqkv = kernelOutput(Float.self, s.rows * 3 * H)
        var workspace = attentionWorkspace(s, H, heads)
        let lengths = s.lengths.map(Int64.init)
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_attention_backward_last(ctx, qkv.scalars, probabilities, gradient.scalars, Int64(s.batch), Int64(s.steps),
                                           Int64(H), Int64(heads), lengths, 1 / Float(H / heads).squareRoot(), &dqkv, &workspace)
        }
        try check(status, "attention backward")
        return try Tensor(shape: [s.rows, 3 * H], scalars: dqkv)
    }

    /// Attention's backward by `lowbit_attention_backward`.
    public func attentionBackward(_ qkv: Tensor, probabilities: [Float], gradient: Tensor, shape s: SequenceShape,
                                  heads: Int) throws -> Tensor {
        let H = try attentionWidth(qkv, s, heads)
        guard probabilities.count == s.batch * heads * s.steps * s.steps, gradient.shape == [s.rows, H] else {
            throw LowBitError.invalidShape("attention backward: probabilities or gradient do not match the forward")
        }
        var dqkv = kernelOutput(Float.self, s.rows * 3 * H)
        var workspace = attentionWorkspace(s, H, heads)
        let lengths = s.lengths.map(Int64.init)
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_attention_backward(ctx, qkv.scalars, probabilities, gradient.scalars, Int64(s.batch), Int64(s.steps), Int64(H),
                                      Int64(heads), lengths, 1 / Float(H / heads).squareRoot(), &dqkv, &workspace)
        }
        try check(status, "attention backward")
        return try Tensor(shape: [s.rows, 3 * H], scalars: dqkv)
    }

    /// Scratch for either attention pass (the C drivers allocate nothing).
    private func attentionWorkspace(_ s: SequenceShape, _ hidden: Int, _ heads: Int) -> [Float] {
        kernelOutput(Float.self, lowbit_attention_workspace_size(Int64(s.batch), Int64(s.steps), Int64(hidden), Int64(heads)) / 4)
    }

    private func attentionWidth(_ qkv: Tensor, _ s: SequenceShape, _ heads: Int) throws -> Int {
        let (rows, cols) = try qkv.matrixShape("attention input")
        guard rows == s.rows, cols % 3 == 0, heads > 0, (cols / 3) % heads == 0 else {
            throw LowBitError.invalidShape("attention takes [\(s.rows), 3 · hidden] with hidden a multiple of \(heads) heads, got [\(rows), \(cols)]")
        }
        return cols / 3
    }
}
