import Foundation

/// The block's feed-forward network: quantizable up projection (hidden → 4·hidden), SiLU,
/// dropout, quantizable down projection (4·hidden → hidden).
public final class FeedForward {
    /// The layer's path in its model, e.g. "blocks.0.ffn"; its layers sit at `path + ".up"`,
    /// `path + ".down"` and `path + ".dropout"`.
    public let path: String
    /// The up projection, hidden → 4·hidden, followed by SiLU.
    public let up: Linear
    /// The down projection, 4·hidden → hidden.
    public let down: Linear
    let dropout: Dropout
    private var preActivation: Tensor?

    /// Creates the network for rows of `hidden` features, with dropout probability `rate` after
    /// the SiLU; the projections start float, drawn from `seed`.
    public init(path: String, hidden: Int, dropout rate: Float, seed: UInt64) {
        self.path = path
        up = Linear(path: path + ".up", inputs: hidden, outputs: 4 * hidden, bias: true, quantizable: true, seed: seed)
        down = Linear(path: path + ".down", inputs: 4 * hidden, outputs: hidden, bias: true, quantizable: true, seed: seed)
        dropout = Dropout(path: path + ".dropout", rate: rate, seed: seed)
    }

    /// The trainable parameters: the up weight and bias, then the down weight and bias.
    public var parameters: [Parameter] { up.parameters + down.parameters }
    var linears: [Linear] { [up, down] }

    /// Maps rows [n, hidden] to [n, hidden]; in training, keeps what ``backward(_:_:)`` needs.
    public func forward(_ x: Tensor, _ exec: Execution) throws -> Tensor {
        try forward(x, exec, adding: nil)
    }

    /// ``forward(_:_:)`` + `residual` ([n, hidden]), the sum done by the down projection. In
    /// evaluation the up projection applies SiLU itself (its input to SiLU is not kept) and,
    /// where the backend can, quantizes its result for the down projection too.
    func forward(_ x: Tensor, _ exec: Execution, adding residual: Tensor?) throws -> Tensor {
        let a: Tensor
        if exec.training {
            let u = try up.forward(x, exec)
            preActivation = u
            a = LinearEpilogue(silu: true).apply(to: u, exec.backend)
        } else {
            preActivation = nil
            // The kernels hand the SiLU's result to the down projection as its int8 rows, never
            // writing the float hidden layer (4 · hidden wide) out and reading it back.
            if down.takesQuantizedInput(exec), let h = try up.forwardQuantizing(x, exec, then: LinearEpilogue(silu: true)) {
                dropout.skipInEvaluation()
                return try down.forward(quantized: h, exec, then: LinearEpilogue(residual: residual))
            }
            a = try up.forward(x, exec, then: LinearEpilogue(silu: true))
        }
        return try down.forward(dropout.forward(a, exec), exec, then: LinearEpilogue(residual: residual))
    }

    /// Takes dL/d(output) [n, hidden] for the last training forward, returns dL/d(input)
    /// [n, hidden], and adds to the projections' gradients.
    ///
    /// Throws ``LowBitError/invalidArgument(_:)`` if no training forward came first.
    public func backward(_ dy: Tensor, _ exec: Execution) throws -> Tensor {
        guard let u = preActivation else { throw LowBitError.invalidArgument("\(path): backward without a training forward") }
        var da = dropout.backward(try down.backward(dy, exec))
        exec.backend.siluBackward(u.scalars, gradient: &da.scalars)
        return try up.backward(da, exec)
    }
}
