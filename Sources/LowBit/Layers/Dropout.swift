/// Inverted dropout: in training, zeroes each element with probability `rate` and scales the
/// rest by 1 / (1 - rate); in evaluation, the identity. Seeded per layer, so a run is
/// repeatable.
public final class Dropout {
    public let path: String
    public let rate: Float
    private var rng: Initializer
    private var mask: [Float] = []

    public init(path: String, rate: Float, seed: UInt64) {
        self.path = path
        self.rate = rate
        rng = Initializer(seed: seed ^ stableHash(path))
    }

    public func forward(_ x: Tensor, _ exec: Execution) -> Tensor {
        guard exec.training, rate > 0 else { mask = []; return x }
        let keep = 1 - rate, scale = 1 / keep
        mask = (0..<x.count).map { _ in rng.unit() < keep ? scale : 0 }
        var y = x
        for i in 0..<y.count { y.scalars[i] *= mask[i] }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard !mask.isEmpty else { return dy }
        var dx = dy
        for i in 0..<dx.count { dx.scalars[i] *= mask[i] }
        return dx
    }
}
