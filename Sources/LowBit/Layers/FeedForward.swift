import Foundation

/// The block's feed-forward network: quantizable up projection (hidden → 4·hidden), SiLU,
/// dropout, quantizable down projection (4·hidden → hidden).
public final class FeedForward {
    public let path: String
    public let up: Linear
    public let down: Linear
    let dropout: Dropout
    private var preActivation: Tensor?

    public init(path: String, hidden: Int, dropout rate: Float, seed: UInt64) {
        self.path = path
        up = Linear(path: path + ".up", inputs: hidden, outputs: 4 * hidden, bias: true, quantizable: true, seed: seed)
        down = Linear(path: path + ".down", inputs: 4 * hidden, outputs: hidden, bias: true, quantizable: true, seed: seed)
        dropout = Dropout(path: path + ".dropout", rate: rate, seed: seed)
    }

    public var parameters: [Parameter] { up.parameters + down.parameters }
    var linears: [Linear] { [up, down] }

    public func forward(_ x: Tensor, _ exec: Execution) throws -> Tensor {
        let u = try up.forward(x, exec)
        if exec.training { preActivation = u }
        var a = u
        a.scalars = u.scalars.map(silu)
        return try down.forward(dropout.forward(a, exec), exec)
    }

    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        guard let u = preActivation else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        var da = dropout.backward(try down.backward(dy, exec))
        u.scalars.withUnsafeBufferPointer { u in
            da.scalars.withUnsafeMutableBufferPointer { da in
                for i in 0..<da.count { da[i] *= siluDerivative(u[i]) }
            }
        }
        return try up.backward(da, exec)
    }
}

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
@inline(__always) func silu(_ x: Float) -> Float { x * sigmoid(x) }
@inline(__always) func siluDerivative(_ x: Float) -> Float {
    let s = sigmoid(x)
    return s * (1 + x * (1 - s))
}
