import LowBit
import Testing

/// The Backends article's example (one quantized layer, forward and QT backward), compiled
/// and run; DocumentationExampleTests checks that the article shows this very code.
@Test("Backends article example: quantize, pack, forward, int8 backward")
func backendExample() throws {
    let w = Tensor(shape: [8, 16]) { Float($0 % 7) - 3 }, x = Tensor(shape: [3, 16]) { Float($0 % 5) / 4 }
    let b = Tensor(zeros: [8]), g = Tensor(shape: [3, 8]) { Float($0 % 3) - 1 }
    // --- program begins ---
    let backend = try RuntimeConfiguration.fromEnvironment().makeBackend()   // or KernelsBackend(isa:threads:)
    let q = try backend.quantize(weights: w, mode: .ternary)                  // values + scales (mean|w|, per tensor)
    let layer = try backend.prepare(q)                                        // packed once for the kernels
    let y = try backend.linear(x, layer, bias: b)                            // int8 activations, int32 sums, fused dequantize
    let grads = try backend.linearBackward(gradOutput: g, input: backend.quantize(activations: x),
                                           weights: layer, precision: .int8) // QT: backward matmuls in int8 too
    // --- program ends ---
    #expect(y.shape == [3, 8] && grads.input.shape == [3, 16])
    #expect(try y == ReferenceBackend().linear(x, ReferenceBackend().prepare(q), bias: b))
}
