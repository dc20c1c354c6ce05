/// Normalizes each row to zero mean and unit variance, then scales and shifts (float).
public final class LayerNorm {
    /// The layer's path in its model, e.g. "blocks.0.norm1"; its parameters are
    /// `path + ".weight"` (γ) and `path + ".bias"` (β).
    public let path: String
    /// The width of the rows it normalizes.
    public let features: Int
    /// The per-feature scale γ, [features], initially 1; exempt from weight decay.
    public let gamma: Parameter
    /// The per-feature shift β, [features], initially 0; exempt from weight decay.
    public let beta: Parameter
    let epsilon: Float = 1e-5

    private var normalized: [Float] = []
    private var reciprocalStd: [Float] = []

    /// Creates a layer norm over rows of `features` values that starts as the identity
    /// (γ = 1, β = 0); ε is 1e-5.
    public init(path: String, features: Int) {
        self.path = path
        self.features = features
        gamma = Parameter(name: path + ".weight", shape: [features], value: [Float](repeating: 1, count: features), decays: false)
        beta = Parameter(name: path + ".bias", shape: [features], value: [Float](repeating: 0, count: features), decays: false)
    }

    /// The trainable parameters: γ, then β.
    public var parameters: [Parameter] { [gamma, beta] }

    /// Normalizes each row of `x` [n, features] and applies γ and β; in training, keeps what
    /// ``backward(_:_:)`` needs.
    ///
    /// Throws ``LowBitError/invalidShape(_:)`` unless `x` is a matrix of `features` columns.
    public func forward(_ x: Tensor, _ exec: Execution) throws -> Tensor {
        let (_, d) = try x.matrixShape("\(path) input")
        guard d == features else { throw LowBitError.invalidShape("\(path) normalizes \(features) features, got \(d)") }
        let result = try exec.backend.layerNorm(x, gamma: gamma.value, beta: beta.value, epsilon: epsilon,
                                                keepingNormalized: exec.training)
        (normalized, reciprocalStd) = exec.training ? (result.normalized, result.reciprocalDeviations) : ([], [])
        return result.output
    }

    /// Takes dL/d(output) for the last training forward, returns dL/d(input) [n, features],
    /// and adds to γ's and β's gradients.
    ///
    /// Throws ``LowBitError/invalidShape(_:)`` unless `dy` is shaped like that forward's output
    /// (so also when no training forward came first).
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        let d = features, n = reciprocalStd.count
        guard n > 0 else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        guard dy.shape == [n, d] else { throw LowBitError.invalidShape("\(path) output gradient must be [\(n), \(d)], got \(dy.shape)") }
        var dx = kernelOutput(Float.self, n * d)
        var dGamma = gamma.grad, dBeta = beta.grad
        // Over unsafe buffers with wrapping index arithmetic. The γ/β sums take 16 columns at a
        // time (`addColumns`: as a plain loop they stayed scalar, reloading the buffers'
        // addresses after every store, 60 % of this backward), in the same order of terms; a
        // row's two means are sums in 16 lanes (`laneSums`), where one chain of adds each, 256
        // long at the design's width, waited on every add.
        dy.scalars.withUnsafeBufferPointer { dy in
            gamma.value.withUnsafeBufferPointer { gv in
                normalized.withUnsafeBufferPointer { xhat in
                    reciprocalStd.withUnsafeBufferPointer { rstd in
                        dGamma.withUnsafeMutableBufferPointer { dGamma in
                            dBeta.withUnsafeMutableBufferPointer { dBeta in
                                dx.withUnsafeMutableBufferPointer { dx in
                                    for i in 0..<n {
                                        let row = i &* d
                                        addColumns(dy.baseAddress! + row, xhat.baseAddress! + row, dGamma.baseAddress!,
                                                   dBeta.baseAddress!, d)
                                        let (sumD, sumDX) = laneSums(dy.baseAddress! + row, gv.baseAddress!, xhat.baseAddress! + row, d)
                                        let meanD = sumD / Float(d), meanDX = sumDX / Float(d)
                                        let r = rstd[i]
                                        for c in 0..<d {
                                            let dn = dy[row &+ c] * gv[c]
                                            dx[row &+ c] = r * (dn - meanD - xhat[row &+ c] * meanDX)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        gamma.grad = dGamma
        beta.grad = dBeta
        return try Tensor(shape: [n, d], scalars: dx)
    }
}

/// Σ dn and Σ dn · xhat over d values, dn = dy · γ: lane l (0..<16) adds the terms at l, l + 16,
/// … in order from +0, then the lanes fold (l += l + w for w = 8, 4, 2, 1), as the kernels'
/// canonical 16-lane sums do. Independent lanes, where one running sum waits on each add.
@inline(__always)
private func laneSums(_ dy: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>, _ xhat: UnsafePointer<Float>,
                      _ d: Int) -> (Float, Float) {
    var sumD = SIMD16<Float>(), sumDX = SIMD16<Float>()
    var c = 0
    while c &+ 16 <= d {
        let dn = UnsafeRawPointer(dy + c).loadUnaligned(as: SIMD16<Float>.self)
            * UnsafeRawPointer(gamma + c).loadUnaligned(as: SIMD16<Float>.self)
        sumD += dn
        sumDX += dn * UnsafeRawPointer(xhat + c).loadUnaligned(as: SIMD16<Float>.self)
        c &+= 16
    }
    var l = 0
    while c < d {   // the tail: lanes 0 ..< d % 16 (the others would add +0)
        let dn = dy[c] * gamma[c]
        sumD[l] += dn
        sumDX[l] += dn * xhat[c]
        c &+= 1
        l &+= 1
    }
    return (fold(sumD), fold(sumDX))
}

/// Lane l += lane l + w for w = 8, 4, 2, 1; lane 0.
@inline(__always)
private func fold(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// dγ[c] += dy[c] · xhat[c] and dβ[c] += dy[c] for c < d: one row's terms of each column's
/// sum, each lane a column of its own (the same bits as one column at a time).
@inline(__always)
private func addColumns(_ dy: UnsafePointer<Float>, _ xhat: UnsafePointer<Float>, _ dGamma: UnsafeMutablePointer<Float>,
                        _ dBeta: UnsafeMutablePointer<Float>, _ d: Int) {
    var c = 0
    while c &+ 16 <= d {
        let g = UnsafeRawPointer(dy + c).loadUnaligned(as: SIMD16<Float>.self)
        let h = UnsafeRawPointer(xhat + c).loadUnaligned(as: SIMD16<Float>.self)
        let gamma = UnsafeMutableRawPointer(dGamma + c), beta = UnsafeMutableRawPointer(dBeta + c)
        gamma.storeBytes(of: gamma.loadUnaligned(as: SIMD16<Float>.self) + g * h, as: SIMD16<Float>.self)
        beta.storeBytes(of: beta.loadUnaligned(as: SIMD16<Float>.self) + g, as: SIMD16<Float>.self)
        c &+= 16
    }
    while c < d {
        dGamma[c] += dy[c] * xhat[c]
        dBeta[c] += dy[c]
        c &+= 1
    }
}
