import Foundation

/// A seeded multivariate classification problem of any size, for scale tests and benchmarks
/// where the UEA sets are too small (the largest has a few thousand series).
///
/// Every series is noise with one pulse in each channel; a class is the order in which the
/// channels pulse (one permutation per class, drawn from the seed). Every channel holds the
/// same pulse and the same noise in every class, so its values taken without their order
/// (mean, variance, histogram) say nothing of the class: only the timing does. Series `i`
/// depends on the seed and `i` alone, so a larger set extends a smaller one.
public struct SyntheticSeries: Sendable, Equatable {
    /// Steps per series.
    public var steps: Int
    /// Values per step; also the pulses per series.
    public var channels: Int
    /// Classes, each a distinct order of the channels' pulses (at most channels!).
    public var classes: Int
    /// Standard deviation of the noise around the pulses (of height 1).
    public var noise: Float
    /// Draws the class orders and every series.
    public var seed: UInt64

    /// The default is 100 steps × 8 channels, 4 classes, noise 0.5.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` for fewer than 2 channels or classes, more
    ///   classes than orders of the channels (or than 1,000), fewer than 4 steps per channel,
    ///   or a noise that is negative or not finite.
    public init(steps: Int = 100, channels: Int = 8, classes: Int = 4, noise: Float = 0.5, seed: UInt64 = 0) throws {
        guard channels >= 2 else { throw LowBitError.invalidArgument("a synthetic set needs at least 2 channels (one order of pulses per class), got \(channels)") }
        let orders = (1...min(channels, 7)).reduce(1, *)
        guard classes >= 2, classes <= min(orders, 1000) else {
            throw LowBitError.invalidArgument("classes must be from 2 to \(min(orders, 1000)) for \(channels) channels, got \(classes)")
        }
        guard steps >= 4 * channels else { throw LowBitError.invalidArgument("steps must be at least 4 per channel (\(4 * channels)), got \(steps)") }
        guard noise >= 0, noise.isFinite else { throw LowBitError.invalidArgument("noise must be finite and not negative, got \(noise)") }
        (self.steps, self.channels, self.classes, self.noise, self.seed) = (steps, channels, classes, noise, seed)
    }

    /// The order in which the channels pulse in each class: distinct permutations.
    public var orders: [[Int]] {
        var rng = SeededGenerator(seed: seed ^ 0x0DE5_0F0C_1A55_E500)
        var found: [[Int]] = []
        while found.count < classes {
            let order = Array(0..<channels).shuffled(using: &rng)
            if !found.contains(order) { found.append(order) }
        }
        return found
    }

    /// Series `first..<first + count`: the classes take turns (series i is of class i mod
    /// classes), so every class has its share.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` for a negative `first` or a `count` below 1.
    public func dataset(series count: Int, first: Int = 0, name: String = "Synthetic") throws -> TimeSeriesDataset {
        guard first >= 0, count >= 1 else { throw LowBitError.invalidArgument("a synthetic set needs at least 1 series from index 0 or later, got \(count) from \(first)") }
        let orders = self.orders
        let slot = steps / channels, width = max(3, slot / 2)
        let pulse = (0..<width).map { Float(sin(Double.pi * Double($0 + 1) / Double(width + 1))) }
        var values: [[Float]] = [], labels: [Int] = []
        values.reserveCapacity(count)
        for i in first..<(first + count) {
            var rng = SeededGenerator(seed: seed &+ 0xA5A5_0000 &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            let label = i % classes
            var row = [Float](repeating: 0, count: steps * channels)
            for k in row.indices { row[k] = noise * Self.gaussian(&rng) }
            for (j, channel) in orders[label].enumerated() {
                let start = j * slot + Int.random(in: 0...(slot - width), using: &rng)
                for (t, v) in pulse.enumerated() { row[(start + t) * channels + channel] += v }
            }
            values.append(row)
            labels.append(label)
        }
        return try TimeSeriesDataset(name: name, channels: channels, series: values, labels: labels,
                                     classNames: (0..<classes).map { "c\($0)" })
    }

    /// Box–Muller: a standard normal draw.
    private static func gaussian(_ rng: inout SeededGenerator) -> Float {
        let u = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300), v = Double(rng.next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
}
