/// y = x · Wᵀ + b, in float or quantized.
///
/// Quantized (a ``LayerQuantization`` is set): the latent float weights are quantized on
/// every forward pass that follows a weight update (QAT), the activations per token (or
/// with the frozen static range), and the product runs on the backend's integer path. The
/// backward pass is the straight-through estimator: the gradient of the quantizer is taken
/// as the identity, at the dequantized operands (default) or the float ones; with
/// `clippedSTE` no gradient flows through weights with |w| > (qmax + ½)·scale or, with a
/// static range, activations with |x| > 127.5·scale. With `.int8` backward (QT) the
/// backward matmuls are int8 too.
public final class Linear {
    /// The layer's path in its model (e.g. "blocks.0.ffn.up"): quantization rules match it, and
    /// its parameters are named `path + ".weight"` and `path + ".bias"`.
    public let path: String
    /// Features per input row (the K of the product).
    public let inputs: Int
    /// Features per output row: the weight matrix's rows.
    public let outputs: Int
    /// The latent float weights [outputs, inputs]; a quantized layer quantizes them on the
    /// first forward pass after each update.
    public let weight: Parameter
    /// The bias [outputs], always float; nil for a layer without one.
    public let bias: Parameter?
    /// Whether quantization rules may apply (the input projection and heads stay float).
    public let quantizable: Bool
    /// nil: float.
    public internal(set) var quantization: LayerQuantization?
    /// The static-range statistics, added to by every training or calibrating forward pass of
    /// a quantized layer whose range is not frozen.
    public internal(set) var statistics = ActivationStatistics()
    /// The sum of the rows' absmax and the row count behind the statistics' last entry: what
    /// a step split over workers or ranks adds up into the whole batch's mean.
    var batchAbsmax: (sum: Double, rows: Int)?
    /// Activations use the frozen statistics' range instead of per-token absmax.
    public internal(set) var usesStaticRange = false

    // What the backward pass needs, kept by a training forward.
    private var input: Tensor?
    private var quantizedInput: QuantizedActivations?
    private var prepared: PreparedWeights?
    private var preparedKey: PreparedKey?

    /// Creates a float layer (a rule or ``QAT/quantLinear(path:inputs:outputs:bias:quantize:seed:)``
    /// quantizes it) with weight and bias uniform in ±√(1 / inputs), drawn from `seed` mixed
    /// with `path`. The sizes are not checked here.
    public init(path: String, inputs: Int, outputs: Int, bias: Bool, quantizable: Bool, seed: UInt64) {
        self.path = path
        self.inputs = inputs
        self.outputs = outputs
        self.quantizable = quantizable
        var rng = SeededGenerator(seed: seed ^ stableHash(path))
        let bound = (1 / Float(inputs)).squareRoot()
        weight = Parameter(name: path + ".weight", shape: [outputs, inputs],
                           value: rng.uniform(count: inputs * outputs, bound: bound), decays: true)
        self.bias = bias ? Parameter(name: path + ".bias", shape: [outputs], value: rng.uniform(count: outputs, bound: bound), decays: false) : nil
    }

    /// The trainable parameters: the weight, then the bias if there is one.
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    /// The weights as quantized for `backend`, renewed when the weights, the quantization or
    /// the backend change.
    public func preparedWeights(_ backend: any Backend) throws -> PreparedWeights {
        guard let q = quantization else { throw LowBitError.invalidArgument("\(path) is not quantized") }
        let key = PreparedKey(version: weight.version, backend: backend.identity, quantization: q)
        if let prepared, preparedKey == key { return prepared }
        let quantized = try backend.quantize(weights: weight.tensor, mode: q.mode, granularity: q.weightGranularity, bound: q.bound)
        let p = try backend.prepare(quantized)
        prepared = p
        preparedKey = key
        return p
    }

    /// Uses `prepared` (weights loaded already quantized) as this layer's weights on
    /// `backend`; the latent weights become their dequantized values.
    func install(_ prepared: PreparedWeights, backend: any Backend) throws {
        guard let q = quantization, prepared.quantized.mode == q.mode, prepared.quantized.rows == outputs,
              prepared.quantized.cols == inputs else {
            throw LowBitError.invalidArgument("\(path): prepared weights do not match the layer")
        }
        weight.value = prepared.quantized.dequantized().scalars
        self.prepared = prepared
        preparedKey = PreparedKey(version: weight.version, backend: backend.identity, quantization: q)
    }

    /// Returns x · Wᵀ + b, [n, outputs], for `x` [n, inputs]: in float, or on the backend's
    /// integer path when quantized. In training, keeps what ``backward(_:_:)`` needs.
    ///
    /// Throws ``LowBitError/invalidShape(_:)`` for input that is not `inputs` wide, and
    /// ``LowBitError/nonFinite(_:)`` for NaN or infinity in it.
    public func forward(_ x: Tensor, _ exec: Execution) throws -> Tensor {
        try forward(x, exec, then: .none)
    }

    /// ``forward(_:_:)`` with `epilogue` applied to its result: inside the matmul where the
    /// backend can (the output is not kept for the backward, so training may fuse too).
    func forward(_ x: Tensor, _ exec: Execution, then epilogue: LinearEpilogue) throws -> Tensor {
        let (_, k) = try x.matrixShape("\(path) input")
        guard k == inputs else { throw LowBitError.invalidShape("\(path) takes \(inputs) features, got \(k)") }
        // An evaluation forward forgets the last training forward: a backward after it would
        // otherwise silently use an older batch.
        input = exec.training ? x : nil
        quantizedInput = nil
        guard quantization != nil else {
            var y = try exec.backend.matmul(x, weight.tensor, transposeA: false, transposeB: true)
            if let bias { addRowVector(&y, bias.value) }
            return epilogue.apply(to: y, exec.backend)
        }
        let w = try preparedWeights(exec.backend)
        let xq = try quantize(input: x, exec)
        quantizedInput = exec.training ? xq : nil
        return try product(xq, w, exec, then: epilogue)
    }

    /// In evaluation, the quantized product with `epilogue` applied, quantized per token as a
    /// next quantized layer quantizes its input (the kernels' ``Backend/quantize(activations:)``),
    /// inside the matmul: the float result is never written out. nil (and nothing done) where
    /// the layer is float, the pass trains or calibrates, or the backend cannot; the caller
    /// then takes ``forward(_:_:then:)``. Its result goes to a layer's
    /// ``forward(quantized:_:then:)``.
    func forwardQuantizing(_ x: Tensor, _ exec: Execution, then epilogue: LinearEpilogue) throws -> QuantizedActivations? {
        guard !exec.training, !exec.calibrating, quantization != nil, let fused = exec.backend as? any FusedEpilogueLinear else {
            return nil
        }
        let (_, k) = try x.matrixShape("\(path) input")
        guard k == inputs else { throw LowBitError.invalidShape("\(path) takes \(inputs) features, got \(k)") }
        (input, quantizedInput) = (nil, nil)
        let w = try preparedWeights(exec.backend)
        return try fused.quantizedLinear(try quantize(input: x, exec), w, bias: bias?.tensor, epilogue: epilogue)
    }

    /// Whether, in this evaluation pass, the layer quantizes its input per token on the fly (no
    /// static range, not calibrating), so that it may take it already quantized.
    func takesQuantizedInput(_ exec: Execution) -> Bool {
        !exec.training && !exec.calibrating && quantization != nil && !usesStaticRange
    }

    /// ``forward(_:_:then:)`` of an evaluation pass whose input comes already quantized per
    /// token (``forwardQuantizing(_:_:then:)``'s result); see ``takesQuantizedInput(_:)``.
    func forward(quantized xq: QuantizedActivations, _ exec: Execution, then epilogue: LinearEpilogue) throws -> Tensor {
        guard takesQuantizedInput(exec) else { throw LowBitError.invalidArgument("\(path) quantizes its own input in this pass") }
        guard xq.cols == inputs else { throw LowBitError.invalidShape("\(path) takes \(inputs) features, got \(xq.cols)") }
        (input, quantizedInput) = (nil, nil)
        return try product(xq, try preparedWeights(exec.backend), exec, then: epilogue)
    }

    /// The input quantized for the product: with the static range, or per token (taking the
    /// static-range statistics when training or calibrating).
    private func quantize(input x: Tensor, _ exec: Execution) throws -> QuantizedActivations {
        let n = x.shape[0]
        if (exec.training || exec.calibrating) && !usesStaticRange {
            let absmax = try x.checkingFinite("\(path) input") { try exec.backend.rowAbsmax(x) }
            var total = 0.0, rows = 0
            if let s = exec.sequences, s.rows == n {
                // Real steps only: a padding row's activations are not the data's.
                for b in 0..<s.batch {
                    for t in 0..<s.lengths[b] { total += Double(absmax[b * s.steps + t]) }
                    rows += s.lengths[b]
                }
            } else {
                total = absmax.reduce(0.0) { $0 + Double($1) }
                rows = n
            }
            batchAbsmax = (total, rows)
            statistics.count += 1
            statistics.sumOfAbsmax += total / Double(rows)
        }
        return usesStaticRange
            ? try ReferenceQuantizer.quantize(activations: x, staticAbsmax: Float(statistics.mean))
            : try exec.backend.quantize(activations: x)
    }

    /// The quantized product and its epilogue: inside the matmul where the backend can.
    private func product(_ xq: QuantizedActivations, _ w: PreparedWeights, _ exec: Execution,
                         then epilogue: LinearEpilogue) throws -> Tensor {
        if !epilogue.isNone, let fused = exec.backend as? any FusedEpilogueLinear {
            return try fused.linear(xq, w, bias: bias?.tensor, epilogue: epilogue)
        }
        return epilogue.apply(to: try exec.backend.linear(xq, w, bias: bias?.tensor), exec.backend)
    }

    /// Takes dL/dy [n, outputs] for the last training forward, returns dL/dx [n, inputs], and
    /// adds dL/dW and dL/db to the parameters' gradients (straight-through when quantized).
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first, and
    /// ``LowBitError/invalidShape(_:)`` if `dy` does not match that forward.
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        guard let x = input else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        let n = x.shape[0]
        guard dy.shape == [n, outputs] else { throw LowBitError.invalidShape("\(path) output gradient must be [\(n), \(outputs)], got \(dy.shape)") }
        let backend = exec.backend
        guard let q = quantization, let xq = quantizedInput else {
            let dx: Tensor
            if let fused = backend as? any AccumulatingMatmul {
                // x and the weights were checked by the forward: dy alone is scanned, once
                try dy.checkFinite("\(path) output gradient")
                dx = try fused.matmul(finite: dy, weight.tensor, transposeA: false, transposeB: false)
                try fused.matmul(finite: dy, x, transposeA: true, transposeB: false, addingTo: &weight.grad)
            } else {
                dx = try backend.matmul(dy, weight.tensor, transposeA: false, transposeB: false)
                weight.accumulate(try backend.matmul(dy, x, transposeA: true, transposeB: false))
            }
            bias?.accumulate(columnSums(dy))
            return dx
        }
        let w = try preparedWeights(backend)
        if q.backward == .float && !q.clippedSTE, let fused = backend as? any AccumulatingMatmul {
            // The straight-through products, dW added straight into the gradient. The forward
            // checked x and the weights, dequantized values are finite, dy is scanned once.
            let original = q.gradientAt == .original
            try dy.checkFinite("\(path) output gradient")
            let dx = try fused.matmul(finite: dy, original ? weight.tensor : w.quantized.dequantized(), transposeA: false, transposeB: false)
            try fused.matmul(finite: dy, original ? x : xq.dequantized(), transposeA: true, transposeB: false, addingTo: &weight.grad)
            bias?.accumulate(columnSums(dy))
            return dx
        }
        var dx: Tensor, dW: Tensor, db: Tensor
        if q.backward == .float && q.gradientAt == .original {
            dx = try backend.matmul(dy, weight.tensor, transposeA: false, transposeB: false)
            dW = try backend.matmul(dy, x, transposeA: true, transposeB: false)
            db = columnSums(dy)
        } else {
            let g = try backend.linearBackward(gradOutput: dy, input: xq, weights: w, precision: q.backward,
                                               stochasticRoundingSeed: q.stochasticRoundingSeed.map { $0 &+ weight.version })
            (dx, dW, db) = (g.input, g.weight, g.bias)
        }
        if q.clippedSTE {
            let wq = w.quantized
            let limit = Float(q.mode.qmax) + 0.5
            for r in 0..<outputs {
                for c in 0..<inputs where weight.value[r * inputs + c].magnitude > limit * wq.scale(row: r, col: c) {
                    dW.scalars[r * inputs + c] = 0
                }
            }
            if usesStaticRange {
                let range = Float(statistics.mean) / 127 * 127.5
                for i in 0..<dx.count where x.scalars[i].magnitude > range { dx.scalars[i] = 0 }
            }
        }
        weight.accumulate(dW)
        bias?.accumulate(db)
        return dx
    }

    /// Drops what the backward pass kept.
    func release() {
        input = nil
        quantizedInput = nil
    }
}

/// Σ over rows, for bias gradients.
func columnSums(_ t: Tensor) -> Tensor {
    let (n, m) = (t.shape[0], t.shape[1])
    var s = [Float](repeating: 0, count: m)
    t.scalars.withUnsafeBufferPointer { x in
        s.withUnsafeMutableBufferPointer { s in
            // wrapping index arithmetic: an overflow check per element kept the loop scalar
            for i in 0..<n { let row = i &* m; for j in 0..<m { s[j] += x[row &+ j] } }
        }
    }
    return try! Tensor(shape: [m], scalars: s)
}

/// y[i, j] += v[j] for every row i.
func addRowVector(_ y: inout Tensor, _ v: [Float]) {
    let m = v.count
    v.withUnsafeBufferPointer { v in
        y.scalars.withUnsafeMutableBufferPointer { y in
            for i in 0..<(y.count / m) { let row = i &* m; for j in 0..<m { y[row &+ j] += v[j] } }
        }
    }
}

/// What the prepared weights were made from: they are reused while all three stay the same.
/// A value, not a description string, since it is compared on every forward pass.
private struct PreparedKey: Equatable {
    var version: UInt64
    var backend: String
    var quantization: LayerQuantization
}
