import Foundation
import LowBit
import Testing

/// Every backend to cross-validate: reference, blas, and the kernels on every ISA this CPU
/// runs (not only the best), with two threads so that the threaded paths run too.
func allBackends(threads: Int = 2) throws -> [any Backend] {
    var list: [any Backend] = [ReferenceBackend(), BLASBackend(threads: threads)]
    for isa in ISA.supported { list.append(try KernelsBackend(isa: isa, threads: threads)) }
    return list
}

/// A readable name for a backend in failure messages.
func label(_ b: any Backend) -> String {
    if let k = b as? KernelsBackend { return "kernels/\(k.isa.rawValue)" }
    return b.kind.rawValue
}

/// Awkward sizes: 1, odd, around multiples of 16 (panel rows) and 32 (K padding).
let awkwardSizes = [1, 2, 3, 7, 17, 31, 33, 63, 65, 257]

/// A small seeded generator for test data (the property-test inputs carry the seed).
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        var z = state
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        return z ^ (z >> 33)
    }
    /// Uniform in [-scale, scale).
    mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 23) - 1) * scale }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor(shape: shape) { _ in float(scale) }
    }
    mutating func int8s(_ count: Int) -> [Int8] { (0..<count).map { _ in Int8(truncatingIfNeeded: next()) } }
}

/// Tolerance for comparing two float results of a quantized linear layer or matmul
/// against each other.
///
/// Each implementation's error against exact arithmetic is bounded by the classic dot
/// product bound γ·Σ|terms| with γ = (K + extra)·u, u = 2⁻²⁴: BLAS rounds each of the K
/// products and partial sums (plus the dequantization of both operands), the integer path
/// rounds only the final scaling (a few roundings per scale group). Two implementations
/// can therefore differ by at most twice that bound. `magnitudes` holds Σ|terms| per element.
func agreementTolerance(k: Int, groups: Int = 1, magnitude: Double) -> Double {
    2 * Double(k + 2 * groups + 4) * 0x1p-24 * magnitude
}

/// Σ_k |a[i,k]|·|b[j,k]| + |bias[j]| for y = a·bᵀ + bias: the scale of each result's rounding error.
func magnitudes(_ a: Tensor, _ b: Tensor, bias: Tensor? = nil) -> [Double] {
    let (n, k) = (a.shape[0], a.shape[1]), m = b.shape[0]
    var out = [Double](repeating: 0, count: n * m)
    for i in 0..<n {
        for j in 0..<m {
            var s = Double(abs(bias?.scalars[j] ?? 0))
            for p in 0..<k { s += Double(abs(a.scalars[i * k + p])) * Double(abs(b.scalars[j * k + p])) }
            out[i * m + j] = s
        }
    }
    return out
}

/// Expects every element of `got` within the agreement tolerance of `want`.
func expectAgree(_ got: Tensor, _ want: Tensor, magnitudes mag: [Double], k: Int, groups: Int = 1, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.shape == want.shape, "\(what): shape \(got.shape) vs \(want.shape)", sourceLocation: sourceLocation)
    guard got.shape == want.shape else { return }
    var worst = 0.0, at = 0
    for i in 0..<got.count {
        let excess = abs(Double(got.scalars[i]) - Double(want.scalars[i])) - agreementTolerance(k: k, groups: groups, magnitude: mag[i])
        if excess > worst { worst = excess; at = i }
    }
    #expect(worst <= 0, "\(what): element \(at) is \(got.scalars[at]) vs \(want.scalars[at]), beyond tolerance by \(worst)",
            sourceLocation: sourceLocation)
}

/// Expects `body` to throw a `LowBitError` whose description contains `text`; returns it.
@discardableResult
func expectError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> LowBitError? {
    let error = #expect(throws: LowBitError.self, sourceLocation: sourceLocation) { try body() }
    #expect(error.map { "\($0)" }?.contains(text) == true, "\(String(describing: error)) lacks '\(text)'", sourceLocation: sourceLocation)
    return error
}

/// Writes `tensors` and `metadata` to a fresh safetensors file and expects `load` of its
/// path to throw a `LowBitError` whose description contains `text`.
func expectLoadError(_ tensors: [String: SafeTensors.Entry], _ metadata: [String: String], _ text: String,
                     sourceLocation: SourceLocation = #_sourceLocation, load: (String) throws -> Void) throws {
    let path = temporaryPath("damaged-\(UUID().uuidString).safetensors")
    try SafeTensors.write(tensors, metadata: metadata, to: path)
    expectError(text, sourceLocation: sourceLocation) { try load(path) }
}
