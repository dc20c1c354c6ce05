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
        for i in 0..<n {
            let row = x.scalars[(i * d)..<((i + 1) * d)]
            let mean = row.reduce(0, +) / Float(d)
            let variance = row.reduce(Float(0)) { $0 + ($1 - mean) * ($1 - mean) } / Float(d)
            let r = 1 / (variance + epsilon).squareRoot()
            rstd[i] = r
            for (c, v) in row.enumerated() {
                let h = (v - mean) * r
                xhat[i * d + c] = h
                y[i * d + c] = h * gamma.value[c] + beta.value[c]
            }
        }
        if exec.training { normalized = xhat; reciprocalStd = rstd }
        return try Tensor(shape: [n, d], scalars: y)
    }

    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        let d = features, n = reciprocalStd.count
        guard dy.shape == [n, d] else { throw LowBitError.invalidShape("\(path) output gradient must be [\(n), \(d)], got \(dy.shape)") }
        var dx = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            var meanD: Float = 0, meanDX: Float = 0
            for c in 0..<d {
                let g = dy.scalars[i * d + c], h = normalized[i * d + c]
                gamma.grad[c] += g * h
                beta.grad[c] += g
                let dn = g * gamma.value[c]
                meanD += dn
                meanDX += dn * h
            }
            meanD /= Float(d)
            meanDX /= Float(d)
            for c in 0..<d {
                let dn = dy.scalars[i * d + c] * gamma.value[c]
                dx[i * d + c] = reciprocalStd[i] * (dn - meanD - normalized[i * d + c] * meanDX)
            }
        }
        return try Tensor(shape: [n, d], scalars: dx)
    }
}
