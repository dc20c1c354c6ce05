/// Inverted dropout: in training, zeroes each element with probability `rate` and scales the
/// rest by 1 / (1 - rate); in evaluation, the identity. The mask depends only on the seed,
/// the layer's path, the step and how many masks this layer drew in that step, so runs
/// repeat and resume exactly.
public final class Dropout {
    public let path: String
    public let rate: Float
    private let seed: UInt64
    private var mask: [Float] = []
    private var lastStep = -1, drawsThisStep: UInt64 = 0

    public init(path: String, rate: Float, seed: UInt64) {
        self.path = path
        self.rate = rate
        self.seed = seed ^ stableHash(path)
    }

    public func forward(_ x: Tensor, _ exec: Execution) -> Tensor {
        guard exec.training, rate > 0 else { mask = []; return x }
        let keep = 1 - rate, scale = 1 / keep
        if exec.step != lastStep { lastStep = exec.step; drawsThisStep = 0 }
        var rng = SeededGenerator(seed: seed &+ UInt64(truncatingIfNeeded: exec.step) &* 0x9E37_79B9_7F4A_7C15 &+ drawsThisStep &* 0xD1B5_4A32_D192_ED03)
        drawsThisStep += 1
        var m = [Float](repeating: 0, count: x.count)
        for i in 0..<m.count where rng.unit() < keep { m[i] = scale }
        var y = x
        for i in 0..<y.count { y.scalars[i] *= m[i] }
        mask = m
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard !mask.isEmpty else { return dy }
        var dx = dy
        let m = mask
        for i in 0..<dx.count { dx.scalars[i] *= m[i] }
        return dx
    }
}
