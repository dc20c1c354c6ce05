/// Normalizes each row to zero mean and unit variance, then scales and shifts (float).
public final class LayerNorm {
    public let path: String
    public let features: Int
    public let gamma: Parameter
    public let beta: Parameter
    let epsilon: Float = 1e-5

    private var normalized: [Float] = []
    private var reciprocalStd: [Float] = []

    public init(path: String, features: Int) {
        self.path = path
        self.features = features
        gamma = Parameter(name: path + ".weight", shape: [features], value: [Float](repeating: 1, count: features), decays: false)
        beta = Parameter(name: path + ".bias", shape: [features], value: [Float](repeating: 0, count: features), decays: false)
    }

    public var parameters: [Parameter] { [gamma, beta] }

    public func forward(_ x: Tensor, _ exec: Execution) throws -> Tensor {
        let (n, d) = try x.matrixShape("\(path) input")
        guard d == features else { throw LowBitError.invalidShape("\(path) normalizes \(features) features, got \(d)") }
        var y = [Float](repeating: 0, count: n * d)
        var xhat = [Float](repeating: 0, count: n * d), rstd = [Float](repeating: 0, count: n)
        let (g, b, eps) = (gamma.value, beta.value, epsilon)
        x.scalars.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                xhat.withUnsafeMutableBufferPointer { xhat in
                    for i in 0..<n {
                        var mean: Float = 0
                        for c in 0..<d { mean += x[i * d + c] }
                        mean /= Float(d)
                        var variance: Float = 0
                        for c in 0..<d { variance += (x[i * d + c] - mean) * (x[i * d + c] - mean) }
                        let r = 1 / (variance / Float(d) + eps).squareRoot()
                        rstd[i] = r
                        for c in 0..<d {
                            let h = (x[i * d + c] - mean) * r
                            xhat[i * d + c] = h
                            y[i * d + c] = h * g[c] + b[c]
                        }
                    }
                }
            }
        }
        if exec.training { normalized = xhat; reciprocalStd = rstd }
        return try Tensor(shape: [n, d], scalars: y)
    }

    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        let d = features, n = reciprocalStd.count
        guard dy.shape == [n, d] else { throw LowBitError.invalidShape("\(path) output gradient must be [\(n), \(d)], got \(dy.shape)") }
        var dx = [Float](repeating: 0, count: n * d)
        var dGamma = gamma.grad, dBeta = beta.grad
        let (gv, xhat, rstd) = (gamma.value, normalized, reciprocalStd)
        dy.scalars.withUnsafeBufferPointer { dy in
            for i in 0..<n {
                var meanD: Float = 0, meanDX: Float = 0
                for c in 0..<d {
                    let g = dy[i * d + c], h = xhat[i * d + c]
                    dGamma[c] += g * h
                    dBeta[c] += g
                    let dn = g * gv[c]
                    meanD += dn
                    meanDX += dn * h
                }
                meanD /= Float(d)
                meanDX /= Float(d)
                for c in 0..<d {
                    let dn = dy[i * d + c] * gv[c]
                    dx[i * d + c] = rstd[i] * (dn - meanD - xhat[i * d + c] * meanDX)
                }
            }
        }
        gamma.grad = dGamma
        beta.grad = dBeta
        return try Tensor(shape: [n, d], scalars: dx)
    }
}
