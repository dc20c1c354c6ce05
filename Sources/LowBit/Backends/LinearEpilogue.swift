import LowBitKernels

/// What a linear layer applies to its result x · Wᵀ + b before returning it: SiLU, then a
/// residual added (`residual + y`). The kernels backend does both inside the quantized
/// matmul, on each tile of the output while it is still in cache (a transformer block's FFN
/// up projection and its two residual sums were separate passes over the whole output);
/// every other path applies them after the product, with the backend's own SiLU and the
/// same sum, so the result is the same to the bit either way.
struct LinearEpilogue {
    var silu = false
    /// [rows, outputs], added last.
    var residual: Tensor?

    static let none = LinearEpilogue()

    var isNone: Bool { !silu && residual == nil }

    /// The epilogue as separate passes over `y`.
    func apply(to y: Tensor, _ backend: any Backend) -> Tensor {
        var out = y
        if silu { out.scalars = backend.silu(y.scalars) }
        if let residual { out = add(residual, out) }
        return out
    }
}

/// A backend whose quantized linear runs an epilogue inside the matmul.
protocol FusedEpilogueLinear {
    /// What ``Backend/linear(_:_:bias:)`` returns, with `epilogue` applied.
    func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?, epilogue: LinearEpilogue) throws -> Tensor
    /// That product quantized per token, as ``Backend/quantize(activations:)`` would quantize
    /// it, without writing it in float.
    func quantizedLinear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?,
                         epilogue: LinearEpilogue) throws -> QuantizedActivations
}

extension KernelsBackend: FusedEpilogueLinear {
    /// By `lowbit_matmul_f32_epilogue` (with no epilogue, ``linear(_:_:bias:)``'s product).
    ///
    /// - Throws: what ``linear(_:_:bias:)`` throws, and ``LowBitError/invalidShape(_:)`` for a
    ///   residual that is not [tokens, rows].
    func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?, epilogue: LinearEpilogue) throws -> Tensor {
        let (packed, w) = try fusedOperands(x, weights, bias: bias, epilogue: epilogue)
        var y = kernelOutput(Float.self, x.tokens * w.rows)
        let status = packed.withWeights { pw in
            withUnsafePointer(to: context) { ctx in
                withOptionalBuffer(epilogue.residual?.scalars) { residual in
                    var e = lowbit_epilogue(silu: epilogue.silu ? 1 : 0, residual: residual, ldr: Int64(w.rows))
                    return lowbit_matmul_f32_epilogue(ctx, pw, x.values, Int64(x.tokens), Int64(x.stride), x.scales,
                                                      bias?.scalars, &e, &y, Int64(w.rows))
                }
            }
        }
        try check(status, "quantized linear")
        return try Tensor(shape: [x.tokens, w.rows], scalars: y)
    }

    /// By `lowbit_matmul_quantized`: the bits of ``linear(_:_:bias:epilogue:)`` then
    /// ``quantize(activations:)``.
    ///
    /// - Throws: what those two throw.
    func quantizedLinear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?,
                         epilogue: LinearEpilogue) throws -> QuantizedActivations {
        let (packed, w) = try fusedOperands(x, weights, bias: bias, epilogue: epilogue)
        let stride = ReferenceQuantizer.paddedLength(w.rows)
        var q = kernelOutput(Int8.self, x.tokens * stride)
        var scales = kernelOutput(Float.self, x.tokens)
        let status = packed.withWeights { pw in
            withUnsafePointer(to: context) { ctx in
                let bytes = lowbit_matmul_quantized_workspace_size(ctx, pw, Int64(x.tokens))
                return withUnsafeTemporaryAllocation(byteCount: max(bytes, 1), alignment: 64) { work in
                    withOptionalBuffer(epilogue.residual?.scalars) { residual in
                        var e = lowbit_epilogue(silu: epilogue.silu ? 1 : 0, residual: residual, ldr: Int64(w.rows))
                        return lowbit_matmul_quantized(ctx, pw, x.values, Int64(x.tokens), Int64(x.stride), x.scales,
                                                       bias?.scalars, &e, &q, Int64(stride), &scales, work.baseAddress)
                    }
                }
            }
        }
        try check(status, "quantized linear's output")
        return QuantizedActivations(quantized: x.tokens, cols: w.rows, stride: stride, values: q, scales: scales)
    }
}

extension KernelsBackend {
    /// The checks of both fused products: ``linear(_:_:bias:)``'s, the weights packed by this
    /// backend, a residual of the output's shape.
    private func fusedOperands(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?,
                               epilogue: LinearEpilogue) throws -> (PackedStorage, QuantizedWeights) {
        try checkLinear(x, weights, bias: bias)
        guard let packed = weights.storage as? PackedStorage else {
            throw LowBitError.invalidArgument("weights were not prepared by the kernels backend")
        }
        let w = weights.quantized
        if let r = epilogue.residual, r.shape != [x.tokens, w.rows] {
            throw LowBitError.invalidShape("residual must be [\(x.tokens), \(w.rows)], got \(r.shape)")
        }
        return (packed, w)
    }
}

/// `body` with `values`' storage, or with nil.
private func withOptionalBuffer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}
