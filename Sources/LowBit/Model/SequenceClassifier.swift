import Foundation

/// A ``SequenceEncoder`` followed by a float linear classification head.
public final class SequenceClassifier {
    /// The encoder that turns each sequence into one row of `hiddenSize` features.
    public let encoder: SequenceEncoder
    /// The float classification head, hiddenSize → classes, at path "head"; never quantized.
    public let head: Linear
    /// Number of output classes (at least 2).
    public let classes: Int

    /// Creates a classifier with freshly initialised weights (drawn from the configuration's seed).
    ///
    /// - Parameters:
    ///   - configuration: the encoder's shape, weight mode and seed.
    ///   - classes: the number of classes, at least 2.
    ///   - rules: quantization rules for the encoder (default: every block layer in
    ///     the configuration's weight mode).
    public init(_ configuration: EncoderConfiguration, classes: Int, rules: [QuantizationRule]? = nil) throws {
        guard classes >= 2 else { throw LowBitError.invalidArgument("a classifier needs at least 2 classes, got \(classes)") }
        guard classes <= EncoderConfiguration.Limits.classes else {
            throw LowBitError.invalidArgument("\(classes) classes exceed the limit of \(EncoderConfiguration.Limits.classes)")
        }
        encoder = try SequenceEncoder(configuration, rules: rules)
        head = Linear(path: "head", inputs: configuration.width, outputs: classes, bias: true, quantizable: false, seed: configuration.seed)
        self.classes = classes
    }

    /// The configuration the encoder was built with.
    public var configuration: EncoderConfiguration { encoder.configuration }
    /// Every trainable parameter: the encoder's, then the head's weight and bias.
    public var parameters: [Parameter] { encoder.parameters + head.parameters }
    /// The quantized layers (those a rule gave a quantization).
    public var quantizedLayers: [Linear] { encoder.linears.filter { $0.quantization != nil } }

    /// Logits [batch, classes].
    public func forward(_ batch: SequenceBatch, _ exec: Execution) throws -> Tensor {
        try head.forward(encoder.forward(batch, exec), exec)
    }

    /// Backpropagates dL/d(logits) [batch, classes] through the head and the encoder, adding to
    /// every parameter's gradient; needs a training-mode ``forward(_:_:)`` first.
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first, and
    /// ``LowBitError/invalidShape(_:)`` if `dLogits` does not match it.
    public func backward(_ dLogits: Tensor, _ exec: Execution) throws {
        try encoder.backward(head.backward(dLogits, exec), exec)
    }

    /// The most likely class of each sequence.
    public func predict(_ batch: SequenceBatch, backend: any Backend) throws -> [Int] {
        argmaxRows(try forward(batch, Execution(backend: backend, training: false)))
    }

    // MARK: Static-range quantization

    /// Standalone calibration: runs `batches` forward in evaluation mode, adding to each
    /// quantized layer's activation statistics. All or nothing: when a batch fails (a bad
    /// shape, NaN), the statistics are those from before the call.
    public func calibrate(_ batches: [SequenceBatch], backend: any Backend) throws {
        let saved = rangeState
        do {
            for b in batches { _ = try forward(b, Execution(backend: backend, training: false, calibrating: true)) }
        } catch {
            rangeState = saved
            throw error
        }
    }

    /// Each quantized layer's statistics and whether it uses them as a fixed range.
    var rangeState: [(statistics: ActivationStatistics, isStatic: Bool)] {
        get { quantizedLayers.map { ($0.statistics, $0.usesStaticRange) } }
        set {
            for (layer, state) in zip(quantizedLayers, newValue) {
                layer.statistics = state.statistics
                layer.usesStaticRange = state.isStatic
            }
        }
    }

    /// Freezes the statistics as fixed activation ranges. A quantized layer that has seen no
    /// batch (count 0) is an error naming it.
    public func useStaticRanges() throws {
        if let empty = quantizedLayers.first(where: { $0.statistics.count == 0 }) {
            throw LowBitError.invalidArgument("\(empty.path) has no activation statistics (count 0): train or calibrate first")
        }
        for l in quantizedLayers { l.usesStaticRange = true }
    }

    /// Back to per-token dynamic ranges; optionally forgetting the statistics.
    public func useDynamicRanges(resetStatistics: Bool = false) {
        for l in quantizedLayers {
            l.usesStaticRange = false
            if resetStatistics { l.statistics = ActivationStatistics() }
        }
    }
}

func argmaxRows(_ t: Tensor) -> [Int] {
    let (n, c) = (t.shape[0], t.shape[1])
    return (0..<n).map { i in
        var best = 0
        for j in 1..<c where t.scalars[i * c + j] > t.scalars[i * c + best] { best = j }
        return best
    }
}

/// Each row's softmax, in double.
func softmaxRows(_ t: Tensor) -> [Double] {
    let (n, c) = (t.shape[0], t.shape[1])
    var p = [Double](repeating: 0, count: n * c)
    for i in 0..<n {
        let row = t.scalars[(i * c)..<((i + 1) * c)]
        let m = Double(row.max()!)
        var z = 0.0
        for j in 0..<c { p[i * c + j] = exp(Double(row[row.startIndex + j]) - m); z += p[i * c + j] }
        for j in 0..<c { p[i * c + j] /= z }
    }
    return p
}
