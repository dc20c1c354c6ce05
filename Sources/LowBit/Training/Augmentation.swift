import Foundation

/// Random changes to each training series, drawn afresh at every step, that leave its class
/// as it was: a small dataset then shows the model more than its few series. Training only;
/// evaluation reads the series as they are.
///
/// Each draw comes from (seed, step, position in the batch), so a resumed run sees the same
/// series as an uninterrupted one.
public struct Augmentation: Sendable, Equatable, Codable {
    /// Up to this share of a series' first steps is dropped (a random crop of its start; the
    /// end, which the classifier reads last, stays).
    public var crop: Float
    /// Each series is multiplied by a factor drawn uniformly from [1 − scale, 1 + scale]
    /// (after standardization).
    public var scale: Float
    /// Uniform noise of this amplitude is added to every value (after standardization).
    public var jitter: Float

    /// Creates an augmentation; every amount defaults to 0, so `Augmentation()` changes nothing.
    public init(crop: Float = 0, scale: Float = 0, jitter: Float = 0) {
        self.crop = crop
        self.scale = scale
        self.jitter = jitter
    }

    /// Whether it changes anything.
    public var isActive: Bool { crop > 0 || scale > 0 || jitter > 0 }

    /// Checks that the amounts can be used.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` naming the first bad amount: a `crop` or
    ///   `scale` outside [0, 1), or a `jitter` that is negative or not finite.
    public func validate() throws {
        guard crop >= 0, crop < 1 else { throw LowBitError.invalidArgument("augmentation crop must be in [0, 1), got \(crop)") }
        guard scale >= 0, scale < 1 else { throw LowBitError.invalidArgument("augmentation scale must be in [0, 1), got \(scale)") }
        guard jitter >= 0, jitter.isFinite else { throw LowBitError.invalidArgument("augmentation jitter must be non-negative and finite, got \(jitter)") }
    }

    /// Examples `indices` of `data` as the model reads them (see ``ModelInfo/batch(_:_:windowSize:)``),
    /// each changed by draws from `seed`: the same seed gives the same batch. The changes are
    /// made to the raw series, in units of the model's standardization, so the padding of a
    /// batch stays zero.
    public func batch(_ data: TimeSeriesDataset, _ indices: [Int], info: ModelInfo, windowSize: Int,
                      seed: UInt64) throws -> (batch: SequenceBatch, labels: [Int]) {
        guard isActive else { return try info.batch(data, indices, windowSize: windowSize) }
        let part = try augmented(data.subset(indices), standardization: info.standardization, seed: seed)
        return try info.batch(part, Array(part.series.indices), windowSize: windowSize)
    }

    /// Every series of `data` cropped, scaled about the channel means and jittered.
    func augmented(_ data: TimeSeriesDataset, standardization: ChannelStandardization, seed: UInt64) throws -> TimeSeriesDataset {
        let c = data.channels
        guard standardization.mean.count == c else {
            throw LowBitError.invalidShape("\(data.name) has \(c) channels, the model takes \(standardization.mean.count)")
        }
        var part = data
        var rng = SeededGenerator(seed: seed ^ 0xC809_0000_0000_0001)
        for i in part.series.indices {
            let length = part.length(i)
            // Draws in a fixed order per series, whatever is switched on.
            let drop = Int(rng.unit() * crop * Float(length))
            let factor = 1 + scale * rng.signedUnit()
            if drop > 0, drop < length { part.series[i].removeFirst(drop * c) }
            guard scale > 0 || jitter > 0 else { continue }
            part.series[i].withUnsafeMutableBufferPointer { v in
                for j in v.indices {
                    let (m, d) = (standardization.mean[j % c], standardization.deviation[j % c])
                    let noise = jitter > 0 ? jitter * rng.signedUnit() : 0
                    v[j] = m + (v[j] - m) * factor + noise * d
                }
            }
        }
        return part
    }
}
