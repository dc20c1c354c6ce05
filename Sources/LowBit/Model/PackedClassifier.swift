/// A trained classifier converted for inference: its quantized layers packed once into
/// low-bit weights run by the C kernels, the rest kept in float. A snapshot: training the
/// source model further does not change it. Its logits equal the QAT model's forward pass
/// on the same kernels backend, in evaluation mode.
public final class PackedClassifier {
    public let backend: KernelsBackend
    let model: SequenceClassifier

    public init(_ source: SequenceClassifier, backend: KernelsBackend) throws {
        self.backend = backend
        model = try source.copy()
        for l in model.quantizedLayers { _ = try l.preparedWeights(backend) }
    }

    /// Wraps a model whose quantized layers already hold their packed weights.
    init(packed model: SequenceClassifier, backend: KernelsBackend) {
        self.backend = backend
        self.model = model
    }

    public var classes: Int { model.classes }
    public var options: EncoderOptions { model.options }

    /// Logits [batch, classes].
    public func logits(_ batch: SequenceBatch) throws -> Tensor {
        try model.forward(batch, Execution(backend: backend, training: false))
    }

    public func predict(_ batch: SequenceBatch) throws -> [Int] { argmaxRows(try logits(batch)) }

    public var hasQuantizedLayers: Bool { !model.quantizedLayers.isEmpty }

    /// Standalone static-range calibration: forgets the statistics gathered so far, runs
    /// `batches` to gather them afresh, then freezes them as fixed activation ranges.
    public func calibrate(_ batches: [SequenceBatch]) throws {
        guard !batches.isEmpty else { throw LowBitError.invalidArgument("calibration needs at least one batch") }
        model.useDynamicRanges(resetStatistics: true)
        try model.calibrate(batches, backend: backend)
        try model.useStaticRanges()
    }

    /// Each quantized layer's fixed activation range (absmax), for those that use one.
    public var staticRanges: [(layer: String, absmax: Double)] {
        model.quantizedLayers.filter(\.usesStaticRange).map { ($0.path, $0.statistics.mean) }
    }

    /// Bytes of the deployed weights: packed codes and scales for the quantized layers,
    /// float32 for everything else.
    public var weightBytes: Int {
        let quantized = Set(model.quantizedLayers.map { $0.weight.name })
        let packed = try? model.quantizedLayers.reduce(0) { acc, l in
            let q = try l.preparedWeights(backend).quantized
            return acc + q.rows * ReferenceQuantizer.paddedLength(q.cols) * q.mode.bits / 8 + 4 * q.scales.count
        }
        let float = model.parameters.filter { !quantized.contains($0.name) }.reduce(0) { $0 + 4 * $1.count }
        return (packed ?? 0) + float
    }
}

extension SequenceClassifier {
    /// A deep copy: same options, per-layer quantization, weights and statistics.
    public func copy() throws -> SequenceClassifier {
        let rules = encoder.linears.filter(\.quantizable).map { QuantizationRule($0.path, $0.quantization) }
        let c = try SequenceClassifier(options, classes: classes, rules: rules)
        for (a, b) in zip(c.parameters, parameters) { a.value = b.value }
        for (a, b) in zip(c.encoder.linears, encoder.linears) {
            a.statistics = b.statistics
            a.usesStaticRange = b.usesStaticRange
        }
        return c
    }
}
