/// A trainable tensor: the latent full-precision value, its gradient, and the version that
/// says when the value last changed (so that quantized or packed copies know when to renew).
public final class Parameter: @unchecked Sendable {
    /// The parameter's path in its model, e.g. "blocks.0.attn.qkv.weight".
    public let name: String
    /// The extent of each dimension, e.g. [outputs, inputs] for a linear layer's weight.
    public let shape: [Int]
    /// The latent full-precision values, row-major; every assignment increments `version`.
    public var value: [Float] { didSet { version &+= 1 } }
    /// The gradient, one entry per value: backward passes add to it, ``zeroGrad()`` clears it.
    public var grad: [Float]
    /// Whether AdamW's weight decay applies (matrices yes; biases and norms no).
    public let decays: Bool
    /// A counter (wrapping) that changes whenever `value` is assigned, so that cached
    /// quantized or packed copies know to renew.
    public private(set) var version: UInt64 = 0

    init(name: String, shape: [Int], value: [Float], decays: Bool) {
        precondition(value.count == shape.reduce(1, *))
        self.name = name
        self.shape = shape
        self.value = value
        self.grad = [Float](repeating: 0, count: value.count)
        self.decays = decays
    }

    /// Number of scalars: the product of `shape`.
    public var count: Int { value.count }
    /// A copy of the value as a ``Tensor`` of shape `shape`.
    public var tensor: Tensor { try! Tensor(shape: shape, scalars: value) }

    /// Sets every gradient entry to zero.
    public func zeroGrad() { grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }

    func accumulate(_ g: Tensor) { accumulate(g.scalars) }

    /// Adds `g` (one entry per value) to the gradient.
    func accumulate(_ g: [Float]) {
        precondition(g.count == grad.count, "\(name): gradient of \(g.count) values for \(grad.count)")
        g.withUnsafeBufferPointer { g in
            grad.withUnsafeMutableBufferPointer { grad in
                for i in 0..<grad.count { grad[i] += g[i] }
            }
        }
    }
}

/// A small seeded generator (SplitMix64): initialisation, dropout masks, stochastic rounding,
/// and repeatable demo and benchmark data. Initialisation is uniform in ±sqrt(1 / fanIn)
/// (PyTorch's default for linear layers).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64

    /// Creates a generator whose whole sequence is determined by `seed`.
    public init(seed: UInt64) { state = seed }

    /// Returns the next 64 random bits, advancing the state.
    public mutating func next() -> UInt64 {
        state &+= SeededGenerator.increment
        return SeededGenerator.mix(state)
    }

    /// SplitMix64: the state advances by a constant, and each output is a function of the
    /// state alone, so the i-th next value (from 0) can be computed directly.
    static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    static func mix(_ state: UInt64) -> UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// What `unit()` would return on its (i + 1)-th call from here, without advancing.
    @inline(__always)
    func unit(ahead i: Int) -> Float { Float(bits24(ahead: i)) / Float(1 << 24) }

    /// The 24 bits `unit()` would scale to [0, 1) on its (i + 1)-th call from here.
    @inline(__always)
    func bits24(ahead i: Int) -> UInt64 {
        SeededGenerator.mix(state &+ UInt64(truncatingIfNeeded: i + 1) &* SeededGenerator.increment) >> 40
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Uniform in [-1, 1).
    public mutating func signedUnit() -> Float { unit() * 2 - 1 }

    mutating func uniform(count: Int, bound: Float) -> [Float] {
        (0..<count).map { _ in (unit() * 2 - 1) * bound }
    }
}

/// A stable 64-bit hash of a string (FNV-1a), to derive per-layer seeds from paths.
func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
