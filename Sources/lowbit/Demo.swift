import Foundation
import ArgumentParser
import LowBit

/// `lowbit demo`: one quantized linear layer in every mode on every backend, side by side.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a small quantized matmul in every mode on every backend and compare them.")

    @Option(help: "Output channels.") var m = 64
    @Option(help: "Input features.") var k = 100
    @Option(help: "Tokens.") var n = 5
    @Option(help: "Random seed.") var seed: UInt64 = 42

    func run() throws {
        let config = try runtimeConfiguration()
        try Info().run()
        print("")
        print("y = quantize(x) · quantize(W)ᵀ + b with W [\(m), \(k)], x [\(n), \(k)], on every backend")
        var rng = SeededGenerator(seed: seed)
        let w = Tensor(shape: [m, k]) { _ in rng.signedUnit() * 0.1 }
        let x = Tensor(shape: [n, k]) { _ in rng.signedUnit() }
        let b = Tensor(shape: [m]) { _ in rng.signedUnit() * 0.01 }
        let exact = try ReferenceBackend().matmul(x, w, transposeA: false, transposeB: true)
        let backends: [any Backend] = [
            ReferenceBackend(), BLASBackend(threads: config.threads), try KernelsBackend(isa: config.isa, threads: config.threads),
        ]
        print("mode     backend    y[0,0]      y[\(n - 1),\(m - 1)]    max |Δ| vs reference  rel. error vs float")
        for mode in QuantizationMode.allCases {
            var reference: Tensor?
            for backend in backends {
                let q = try backend.quantize(weights: w, mode: mode)
                let out = try backend.linear(x, try backend.prepare(q), bias: b)
                if reference == nil { reference = out }
                let delta = zip(out.scalars, reference!.scalars).map { abs($0 - $1) }.max()!
                let num = zip(out.scalars, exact.scalars).enumerated().map { i, p in
                    let e = p.1 + b.scalars[i % m]
                    return (p.0 - e) * (p.0 - e)
                }.reduce(0, +)
                let den = exact.scalars.map { $0 * $0 }.reduce(0, +)
                print("\(pad(mode.rawValue, 8)) \(pad(backend.kind.rawValue, 10)) \(fmt(out.scalars[0])) \(fmt(out.scalars[n * m - 1]))  \(pad(String(format: "%.2e", delta), 21)) \(String(format: "%.3f", (num / den).squareRoot()))")
            }
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
func fmt(_ v: Float) -> String { pad(String(format: "%+.5f", v), 11) }
