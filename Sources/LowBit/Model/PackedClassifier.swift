import Foundation

/// A trained classifier converted for inference: its quantized layers packed once into
/// low-bit weights run by the C kernels, the rest kept in float. A snapshot: training the
/// source model further does not change it. Its logits equal the QAT model's forward pass
/// on the same kernels backend, in evaluation mode.
///
/// It may hold an ensemble: several models of one shape and class list, trained apart
/// (``TrainingSettings/ensembleSize``). Their predicted probabilities are averaged, and
/// the logits are the log of that average, so that softmax and argmax read them as they
/// read one model's.
public final class PackedClassifier {
    /// The kernels backend the weights are packed for and every forward pass runs on.
    public let backend: KernelsBackend
    /// One model, or the ensemble's models in order.
    let members: [SequenceClassifier]
    /// What the model needs to read raw series and name its answers: class names, the
    /// training data's standardization, steps per token. A model packed from a bare
    /// ``SequenceClassifier`` has none: it reads ready-made ``SequenceBatch``es only.
    public let info: ModelInfo?

    /// Packs one trained model (a copy: training `source` further leaves this unchanged).
    ///
    /// With `info` (a training run's ``ModelInfo``) it also classifies raw series. Throws
    /// ``LowBitError/invalidArgument(_:)`` if `info` names a different number of classes.
    public convenience init(_ source: SequenceClassifier, info: ModelInfo? = nil, backend: KernelsBackend) throws {
        try self.init(ensemble: [source], info: info, backend: backend)
    }

    /// Packs every model of `sources`, which must share their configuration and classes (and
    /// `info`'s class count, when given).
    public init(ensemble sources: [SequenceClassifier], info: ModelInfo? = nil, backend: KernelsBackend) throws {
        guard let first = sources.first else { throw LowBitError.invalidArgument("an ensemble needs at least one model") }
        // The file format's limit: a larger ensemble would save but not load.
        guard sources.count <= 16 else { throw LowBitError.invalidArgument("an ensemble holds at most 16 models, got \(sources.count)") }
        // The seed only drew the initial weights and dropout masks: the models differ in it.
        func shape(_ m: SequenceClassifier) -> EncoderConfiguration { var o = m.configuration; o.seed = 0; return o }
        for (i, m) in sources.enumerated() where shape(m) != shape(first) || m.classes != first.classes {
            throw LowBitError.invalidArgument("model \(i + 1) of the ensemble differs from the first in its configuration or classes; "
                                              + "an ensemble's models must share their shape, inputs and classes")
        }
        if let info, info.classNames.count != first.classes {
            throw LowBitError.invalidArgument("the model has \(first.classes) classes, but \(info.classNames.count) class names were given")
        }
        self.backend = backend
        self.info = info
        members = try sources.map { try $0.copy() }
        for l in members.flatMap(\.quantizedLayers) { _ = try l.preparedWeights(backend) }
    }

    /// Wraps models whose quantized layers already hold their packed weights.
    init(packed members: [SequenceClassifier], info: ModelInfo?, backend: KernelsBackend) {
        self.backend = backend
        self.members = members
        self.info = info
    }

    /// Number of classes: the columns of ``logits(_:)``.
    public var classes: Int { members[0].classes }
    /// The encoder configuration of the (first) packed model.
    public var configuration: EncoderConfiguration { members[0].configuration }
    /// How many models are averaged: 1 for a single model.
    public var ensembleSize: Int { members.count }

    /// Logits [batch, classes]: one model's, or the log of the ensemble's mean probabilities.
    public func logits(_ batch: SequenceBatch) throws -> Tensor {
        let exec = Execution(backend: backend, training: false)
        guard members.count > 1 else { return try members[0].forward(batch, exec) }
        var mean = [Double](repeating: 0, count: batch.shape.batch * classes)
        for m in members {
            let p = softmaxRows(try m.forward(batch, exec))
            for i in mean.indices { mean[i] += p[i] }
        }
        // A probability that underflowed in every model stays a finite (very negative) logit.
        let n = Double(members.count)
        return try Tensor(shape: [batch.shape.batch, classes],
                          scalars: mean.map { Float(log(max($0 / n, Double.leastNormalMagnitude))) })
    }

    /// The index of each sequence's most probable class: the argmax of ``logits(_:)``.
    public func predict(_ batch: SequenceBatch) throws -> [Int] { argmaxRows(try logits(batch)) }

    /// Each sequence's predicted probability of every class, in class order (the ensemble's
    /// mean for an ensemble).
    public func probabilities(_ batch: SequenceBatch) throws -> [[Double]] {
        let p = softmaxRows(try logits(batch))
        return (0..<batch.shape.batch).map { Array(p[($0 * classes)..<(($0 + 1) * classes)]) }
    }

    /// A Boolean value indicating whether the model has packed low-bit layers (false for a
    /// float model, which runs entirely in float).
    public var hasQuantizedLayers: Bool { !members[0].quantizedLayers.isEmpty }

    /// Standalone static-range calibration: forgets the statistics gathered so far, runs
    /// `batches` to gather them afresh, then freezes them as fixed activation ranges (each
    /// model of an ensemble its own). All or nothing: when it fails, every model keeps the
    /// ranges it had.
    public func calibrate(_ batches: [SequenceBatch]) throws {
        guard !batches.isEmpty else { throw LowBitError.invalidArgument("calibration needs at least one batch") }
        let saved = members.map(\.rangeState)
        do {
            for model in members {
                model.useDynamicRanges(resetStatistics: true)
                try model.calibrate(batches, backend: backend)
                try model.useStaticRanges()
            }
        } catch {
            for (model, state) in zip(members, saved) { model.rangeState = state }
            throw error
        }
    }

    /// Each quantized layer's fixed activation range (absmax), for those that use one; in an
    /// ensemble the layer names start with the model's number ("2/blocks.0.ffn.up").
    public var staticRanges: [(layer: String, absmax: Double)] {
        members.enumerated().flatMap { i, model in
            model.quantizedLayers.filter(\.usesStaticRange).map { ((members.count > 1 ? "\(i + 1)/" : "") + $0.path, $0.statistics.mean) }
        }
    }

    /// Bytes of the deployed weights: packed codes and scales for the quantized layers,
    /// float32 for everything else, summed over the ensemble's models.
    public var weightBytes: Int {
        members.reduce(0) { total, model in
            let quantized = Set(model.quantizedLayers.map { $0.weight.name })
            // From each layer's shape and mode: the codes of `rows` rows padded to whole
            // blocks, and one float scale per row or group (as the packed file holds them).
            let packed = model.quantizedLayers.reduce(0) { acc, l in
                guard let q = l.quantization else { return acc }
                let scales = q.weightGranularity.scaleCount(rows: l.outputs, cols: l.inputs)
                return acc + l.outputs * ReferenceQuantizer.paddedLength(l.inputs) * q.mode.bits / 8 + 4 * scales
            }
            let float = model.parameters.filter { !quantized.contains($0.name) }.reduce(0) { $0 + 4 * $1.count }
            return total + packed + float
        }
    }
}

extension SequenceClassifier {
    /// A deep copy: same configuration, per-layer quantization, weights and statistics.
    public func copy() throws -> SequenceClassifier {
        let rules = encoder.linears.filter(\.quantizable).map { QuantizationRule($0.path, $0.quantization) }
        let c = try SequenceClassifier(configuration, classes: classes, rules: rules)
        for (a, b) in zip(c.parameters, parameters) { a.value = b.value }
        for (a, b) in zip(c.encoder.linears, encoder.linears) {
            a.statistics = b.statistics
            a.usesStaticRange = b.usesStaticRange
        }
        return c
    }
}
