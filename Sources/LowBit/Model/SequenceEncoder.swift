import Foundation

/// The pre-norm transformer sequence encoder:
/// input projection (float, only when the input width differs from the width) → optional
/// positional encoding → ``EncoderConfiguration/layerCount`` ``TransformerBlock``s → final
/// LayerNorm → the last real step of each sequence → [batch, width].
///
/// Build one with ``init(_:rules:)`` or with the design's builders, ``QAT`` and ``BitNet``.
public final class SequenceEncoder {
    /// The configuration the encoder was built with, validated.
    public let configuration: EncoderConfiguration
    /// The float projection embedDim → hiddenSize at path "input"; nil when they are equal.
    public let inputProjection: Linear?
    /// The transformer blocks, at paths "blocks.0" to "blocks.\(numLayers - 1)".
    public let blocks: [TransformerBlock]
    /// The layer norm after the last block, at path "norm".
    public let finalNorm: LayerNorm
    let dropInput: Dropout
    private var shape: SequenceShape?

    /// Creates an encoder with freshly initialised weights (drawn from the configuration's
    /// seed), its block layers quantized by `rules`.
    ///
    /// - Parameters:
    ///   - configuration: the encoder's shape, weight mode and seed; validated here.
    ///   - rules: which layers to quantize, and how; nil quantizes every block layer in the
    ///     configuration's ``EncoderConfiguration/weightMode`` (``QAT/defaultRules(_:)``).
    public init(_ configuration: EncoderConfiguration, rules: [QuantizationRule]? = nil) throws {
        try configuration.validate()
        self.configuration = configuration
        let (h, seed) = (configuration.width, configuration.seed)
        inputProjection = configuration.inputWidth == h ? nil
            : Linear(path: "input", inputs: configuration.inputWidth, outputs: h, bias: true, quantizable: false, seed: seed)
        blocks = (0..<configuration.layerCount).map {
            TransformerBlock(path: "blocks.\($0)", hidden: h, heads: configuration.headCount, dropout: configuration.dropout, seed: seed)
        }
        finalNorm = LayerNorm(path: "norm", features: h)
        dropInput = Dropout(path: "drop_input", rate: configuration.dropout, seed: seed)
        _ = try apply(rules: rules ?? QAT.defaultRules(configuration.weightMode))
    }

    /// Features per output row: the configuration's width.
    public var outputSize: Int { configuration.width }

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
        guard batch.features == configuration.inputWidth else {
            throw LowBitError.invalidShape("the encoder takes \(configuration.inputWidth) features per step, got \(batch.features)")
        }
        guard s.steps <= configuration.maxSteps else {
            throw LowBitError.invalidShape("sequences of \(s.steps) steps exceed windowSize \(configuration.maxSteps)")
        }
        if !exec.training && !exec.calibrating {
            // An evaluation pass keeps nothing for a backward, so it can take the sequences a
            // few at a time, every row-wise step alike: the activations of a chunk stay in the
            // core's L2 between the passes over them (the design's batch of 32 at 60 steps took
            // 8 % longer in one piece), and every result is the same to the bit where LowBit's
            // kernels take the products (OpenBLAS's Haswell and Zen sgemm order a row's sums by
            // where it falls in the call: there, to rounding). Threaded kernels get as many
            // rows per thread.
            let threads = (exec.backend as? KernelsBackend)?.threads ?? 1
            let chunk = max(1, evaluationRows * threads / s.steps)
            if s.batch > chunk {
                var pooled = [Float]()
                pooled.reserveCapacity(s.batch * configuration.width)
                for first in stride(from: 0, to: s.batch, by: chunk) {
                    pooled += try encode(batch.sequences(first..<min(first + chunk, s.batch)), exec).scalars
                }
                return try Tensor(shape: [s.batch, configuration.width], scalars: pooled)
            }
        }
        return try encode(batch, exec)
    }

    /// Rows (sequences × padded steps) per chunk of an evaluation pass, per kernel thread.
    var evaluationRows = 256

    /// The pass itself, over the whole of `batch`.
    private func encode(_ batch: SequenceBatch, _ exec: Execution) throws -> Tensor {
        let s = batch.shape
        var exec = exec
        exec.sequences = s
        var h = try inputProjection?.forward(batch.rows, exec) ?? batch.rows
        if configuration.usesPositionalEncoding { addPositions(&h, s) }
        h = dropInput.forward(h, exec)
        if exec.training { shape = s }
        if prunesLastBlock, let final = blocks.last {
            // Only each sequence's last real step leaves the encoder, so the last block takes
            // the other rows no further than their keys and values, in every pass: the same
            // outputs and gradients (to rounding where OpenBLAS's rows depend on the call, as
            // above), 3/16 of the multiply-adds fewer at four blocks. The
            // static-range statistics of the layers after its attention are then over the
            // rows those layers see in deployment.
            for block in blocks.dropLast() { h = try block.forward(h, s, exec) }
            return try finalNorm.forward(final.forwardAtLastSteps(h, s, exec), exec.keeping(rows: s.lastSteps))
        }
        for block in blocks { h = try block.forward(h, s, exec) }
        return try finalNorm.forward(h, exec).gatheringRows(s.lastSteps)
    }

    /// false runs the last block on every row, as the design draws it: the reference the tests
    /// hold the pruned pass to.
    var prunesLastBlock = true

    /// Backward from dL/d(pooled) [batch, hiddenSize]; returns dL/d(input) [batch, steps, embedDim].
    @discardableResult
    public func backward(_ dPooled: Tensor, _ exec: Execution) throws -> Tensor {
        guard let s = shape else { throw LowBitError.invalidArgument("encoder backward without a training forward") }
        let H = configuration.width
        guard dPooled.shape == [s.batch, H] else { throw LowBitError.invalidShape("pooled gradient must be [\(s.batch), \(H)], got \(dPooled.shape)") }
        var dh = try finalNorm.backward(prunesLastBlock ? dPooled : dPooled.scatteringRows(s.lastSteps, into: s.rows), exec)
        for block in blocks.reversed() { dh = try block.backward(dh, exec) }
        dh = dropInput.backward(dh)
        let dx = try inputProjection?.backward(dh, exec) ?? dh
        return try Tensor(shape: [s.batch, s.steps, configuration.inputWidth], scalars: dx.scalars)
    }

    /// Sinusoidal encoding (Vaswani et al.) of each row's step, added in place.
    private func addPositions(_ h: inout Tensor, _ s: SequenceShape) {
        let H = configuration.width
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
        let H = configuration.width
        var table = [Float](repeating: 0, count: configuration.maxSteps * H)
        for t in 0..<configuration.maxSteps {
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
