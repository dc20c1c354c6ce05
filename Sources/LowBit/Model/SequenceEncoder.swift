import Foundation

/// The pre-norm transformer sequence encoder:
/// input projection (float, only when embedDim ≠ hiddenSize) → optional positional encoding →
/// numLayers ``TransformerBlock``s → final LayerNorm → the last real step of each sequence →
/// [batch, hiddenSize].
public final class SequenceEncoder {
    /// The options the encoder was built with, validated.
    public let options: EncoderOptions
    /// The float projection embedDim → hiddenSize at path "input"; nil when they are equal.
    public let inputProjection: Linear?
    /// The transformer blocks, at paths "blocks.0" to "blocks.\(numLayers - 1)".
    public let blocks: [TransformerBlock]
    /// The layer norm after the last block, at path "norm".
    public let finalNorm: LayerNorm
    let dropInput: Dropout
    private var shape: SequenceShape?

    init(options: EncoderOptions) throws {
        try options.validate()
        self.options = options
        let (h, seed) = (options.hiddenSize, options.seed)
        inputProjection = options.embedDim == h ? nil
            : Linear(path: "input", inputs: options.embedDim, outputs: h, bias: true, quantizable: false, seed: seed)
        blocks = (0..<options.numLayers).map {
            TransformerBlock(path: "blocks.\($0)", hidden: h, heads: options.numHeads, dropout: options.dropout, seed: seed)
        }
        finalNorm = LayerNorm(path: "norm", features: h)
        dropInput = Dropout(path: "drop_input", rate: options.dropout, seed: seed)
    }

    /// Features per output row: `hiddenSize`.
    public var outputSize: Int { options.hiddenSize }

    /// Every trainable parameter: the input projection's (if any), each block's in order, then
    /// the final norm's.
    public var parameters: [Parameter] {
        (inputProjection?.parameters ?? []) + blocks.flatMap(\.parameters) + finalNorm.parameters
    }

    /// Every linear layer, float and quantizable, in order.
    public var linears: [Linear] { (inputProjection.map { [$0] } ?? []) + blocks.flatMap(\.linears) }

    /// [batch, hiddenSize]: the final-normalized state at each sequence's last real step.
    public func forward(_ batch: SequenceBatch, _ exec: Execution) throws -> Tensor {
        let s = batch.shape
        guard batch.features == options.embedDim else {
            throw LowBitError.invalidShape("the encoder takes \(options.embedDim) features per step, got \(batch.features)")
        }
        guard s.steps <= options.windowSize else {
            throw LowBitError.invalidShape("sequences of \(s.steps) steps exceed windowSize \(options.windowSize)")
        }
        var h = try inputProjection?.forward(batch.rows, exec) ?? batch.rows
        if options.positionalEncoding { addPositions(&h, s) }
        h = dropInput.forward(h, exec)
        for block in blocks { h = try block.forward(h, s, exec) }
        h = try finalNorm.forward(h, exec)
        if exec.training { shape = s }
        let H = options.hiddenSize
        var pooled = [Float](repeating: 0, count: s.batch * H)
        for b in 0..<s.batch {
            let row = b * s.steps + s.lengths[b] - 1
            for c in 0..<H { pooled[b * H + c] = h.scalars[row * H + c] }
        }
        return try Tensor(shape: [s.batch, H], scalars: pooled)
    }

    /// Backward from dL/d(pooled) [batch, hiddenSize]; returns dL/d(input) [batch, steps, embedDim].
    @discardableResult
    public func backward(_ dPooled: Tensor, _ exec: Execution) throws -> Tensor {
        guard let s = shape else { throw LowBitError.invalidArgument("encoder backward without a training forward") }
        let H = options.hiddenSize
        guard dPooled.shape == [s.batch, H] else { throw LowBitError.invalidShape("pooled gradient must be [\(s.batch), \(H)], got \(dPooled.shape)") }
        var dh = Tensor(zeros: [s.rows, H])
        for b in 0..<s.batch {
            let row = b * s.steps + s.lengths[b] - 1
            for c in 0..<H { dh.scalars[row * H + c] = dPooled.scalars[b * H + c] }
        }
        dh = try finalNorm.backward(dh, exec)
        for block in blocks.reversed() { dh = try block.backward(dh, exec) }
        dh = dropInput.backward(dh)
        let dx = try inputProjection?.backward(dh, exec) ?? dh
        return try Tensor(shape: [s.batch, s.steps, options.embedDim], scalars: dx.scalars)
    }

    /// Sinusoidal encoding (Vaswani et al.) of each row's step, added in place.
    private func addPositions(_ h: inout Tensor, _ s: SequenceShape) {
        let H = options.hiddenSize
        h.scalars.withUnsafeMutableBufferPointer { hb in
            positions.withUnsafeBufferPointer { pb in
                for r in 0..<s.rows {
                    let t = r % s.steps
                    for c in 0..<H { hb[r * H + c] += pb[t * H + c] }
                }
            }
        }
    }

    /// The encoding of every position the window holds, [windowSize, hiddenSize]: computed
    /// once, since sin, cos and pow would otherwise take a few percent of a training step.
    private lazy var positions: [Float] = {
        let H = options.hiddenSize
        var table = [Float](repeating: 0, count: options.windowSize * H)
        for t in 0..<options.windowSize {
            for c in 0..<H {
                let angle = Float(t) / powf(10000, Float(2 * (c / 2)) / Float(H))
                table[t * H + c] = c % 2 == 0 ? sinf(angle) : cosf(angle)
            }
        }
        return table
    }()

    /// Applies quantization rules to the block layers; see ``QuantizationRule``.
    @discardableResult
    public func apply(rules: [QuantizationRule]) throws -> RuleReport { try applyRules(rules, to: linears) }
}
