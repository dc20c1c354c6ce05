/// Inverted dropout: in training, zeroes each element with probability `rate` and scales the
/// rest by 1 / (1 - rate); in evaluation, the identity. The mask depends only on the seed,
/// the layer's path, the step and how many masks this layer drew in that step, so runs
/// repeat and resume exactly.
public final class Dropout {
    /// The layer's path in its model; mixed into the seed, so each dropout layer draws its own masks.
    public let path: String
    /// Probability of zeroing an element in training. The builders require [0, 1); this layer
    /// does not check.
    public let rate: Float
    private let seed: UInt64
    private var mask: [Float] = []
    private var lastStep = -1, drawsThisStep: UInt64 = 0

    /// Creates a dropout layer whose masks derive from `seed` and `path`.
    public init(path: String, rate: Float, seed: UInt64) {
        self.path = path
        self.rate = rate
        self.seed = seed ^ stableHash(path)
    }

    /// In training with a positive rate, returns `x` with each element zeroed with probability
    /// `rate` and the rest scaled by 1 / (1 − rate), keeping the mask for ``backward(_:)``;
    /// otherwise returns `x` unchanged.
    public func forward(_ x: Tensor, _ exec: Execution) -> Tensor {
        guard exec.training, rate > 0 else { mask = []; return x }
        let keep = 1 - rate, scale = 1 / keep
        if exec.step != lastStep { lastStep = exec.step; drawsThisStep = 0 }
        let rng = SeededGenerator(seed: seed &+ UInt64(truncatingIfNeeded: exec.step) &* 0x9E37_79B9_7F4A_7C15 &+ drawsThisStep &* 0xD1B5_4A32_D192_ED03)
        drawsThisStep += 1
        let cols = x.shape.last ?? 0
        var m = [Float](repeating: 0, count: x.count)
        var y = x
        // rng.unit() < keep, compared on the draw's 24 bits: unit() is those bits over 2²⁴, so
        // it is below keep exactly when the bits are below ⌈keep · 2²⁴⌉ (the same masks, with
        // no conversion to float in the loop).
        let threshold = UInt64((keep * Float(1 << 24)).rounded(.up))
        m.withUnsafeMutableBufferPointer { mb in
            y.scalars.withUnsafeMutableBufferPointer { yb in
                // Element i of the whole batch keeps with the generator's (i + 1)-th draw, as a
                // loop of rng.unit() calls would; computed per element, the loop has no chain.
                let scaleBits = scale.bitPattern
                for r in 0..<(cols > 0 ? mb.count / cols : 0) {
                    // The row's place in the whole batch (a worker's share, a few kept rows).
                    let first = (exec.rowOffset + (exec.rowIndices?[r] ?? r)) * cols
                    for c in 0..<cols {
                        // All ones when the draw is below the threshold (both are under 2²⁵, so
                        // the difference wraps), else zero: scale or +0 without a branch, which
                        // a random mask would mispredict a rate's share of the time.
                        let keeps = UInt32(truncatingIfNeeded: 0 &- ((rng.bits24(ahead: first + c) &- threshold) >> 63))
                        let kept = Float(bitPattern: scaleBits & keeps)
                        mb[r * cols + c] = kept
                        yb[r * cols + c] *= kept
                    }
                }
            }
        }
        mask = m
        return y
    }

    /// What an evaluation ``forward(_:_:)`` does to the layer, for an evaluation pass that
    /// skips it (it is the identity there): forgets the last training mask.
    func skipInEvaluation() { mask = [] }

    /// Multiplies `dy` by the last forward's mask: the identity after an evaluation forward
    /// or with rate 0. `dy` must have as many elements as that forward's input.
    public func backward(_ dy: Tensor) -> Tensor {
        guard !mask.isEmpty else { return dy }
        var dx = dy
        mask.withUnsafeBufferPointer { m in
            dx.scalars.withUnsafeMutableBufferPointer { d in
                precondition(d.count == m.count, "\(path): gradient of \(d.count) values for a mask of \(m.count)")
                for i in 0..<d.count { d[i] *= m[i] }
            }
        }
        return dx
    }
}
