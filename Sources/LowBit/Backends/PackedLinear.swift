import LowBitKernels

/// A packed low-bit linear layer with its scratch memory allocated once: the inference
/// path. Each call quantizes the activations per token and runs the fused matmul, with
/// no allocation.
///
/// It may move between threads, but calls must not overlap: they share the scratch memory.
/// Give each thread its own layer (the packed weights can be shared through ``weights``).
public final class PackedLinear: @unchecked Sendable {
    /// The packed weights, prepared once by the layer's ``KernelsBackend``.
    public let weights: PreparedWeights
    /// One value per output, added to every token's result; nil for none.
    public let bias: [Float]?
    /// The most tokens one call may pass; the scratch memory is sized for it.
    public let maxTokens: Int
    private let backend: KernelsBackend
    private var workspace: [UInt8]

    /// Packs `weights` once for `backend`'s kernels.
    ///
    /// - Parameters:
    ///   - weights: the quantized weights to pack.
    ///   - bias: one value per output, or nil.
    ///   - backend: the kernels that run the layer.
    ///   - maxTokens: the most tokens one call may pass.
    public init(_ weights: QuantizedWeights, bias: [Float]? = nil, backend: KernelsBackend, maxTokens: Int) throws {
        guard maxTokens > 0 else { throw LowBitError.invalidArgument("maxTokens must be positive, got \(maxTokens)") }
        if let bias, bias.count != weights.rows {
            throw LowBitError.invalidShape("bias has \(bias.count) values, the layer has \(weights.rows) outputs")
        }
        self.weights = try backend.prepare(weights)
        self.bias = bias
        self.maxTokens = maxTokens
        self.backend = backend
        self.workspace = [UInt8](repeating: 0, count: lowbit_linear_workspace_size(Int64(maxTokens), Int64(weights.cols)))
    }

    /// The number of values per input token (K, the weights' columns).
    public var inputs: Int { weights.quantized.cols }
    /// The number of values per output token (the weights' rows).
    public var outputs: Int { weights.quantized.rows }

    /// y[tokens, outputs] = quantized(x[tokens, inputs]) · Wᵀ + bias.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, tokens: Int, into y: UnsafeMutableBufferPointer<Float>) throws {
        guard tokens > 0, tokens <= maxTokens else {
            throw LowBitError.invalidShape("tokens must be in 1...\(maxTokens), got \(tokens)")
        }
        guard x.count >= tokens * inputs, y.count >= tokens * outputs else {
            throw LowBitError.invalidShape("buffers too small for \(tokens) tokens of \(inputs) -> \(outputs)")
        }
        let packed = weights.storage as! PackedStorage
        let ctx = backend.context
        let status = packed.withWeights { pw in
            withUnsafePointer(to: ctx) { c in
                workspace.withUnsafeMutableBytes { ws in
                    lowbit_linear_f32(c, pw, x.baseAddress, Int64(tokens), bias, y.baseAddress, ws.baseAddress)
                }
            }
        }
        try backend.check(status, "packed linear input")
    }
}
