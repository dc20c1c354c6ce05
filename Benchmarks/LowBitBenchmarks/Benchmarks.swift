// Kernel benchmarks: each quantize kernel, and the packed matmul of each mode on the cases
// of KernelBenchmarkCases (the defaults of `lowbit bench kernels`), beside OpenBLAS on the
// same shapes.
// Run: swift package benchmark --target LowBitBenchmarks   (LOWBIT_THREADS sets the threads)
import Benchmark
import Foundation
import LowBit

let benchmarks: @Sendable () -> Void = {
    let config = (try? RuntimeConfiguration.fromEnvironment()) ?? RuntimeConfiguration()
    let shapes = KernelBenchmarkCases.shapes, tokens = KernelBenchmarkCases.tokens
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput], timeUnits: .microseconds, warmupIterations: 3,
        maxDuration: .seconds(1), maxIterations: 1000)

    var rng = SeededGenerator(seed: 7)
    let w = Tensor(shape: [4096, 4096]) { _ in rng.signedUnit() }
    let x = Tensor(shape: [256, 4096]) { _ in rng.signedUnit() }
    guard let backend = try? KernelsBackend(isa: config.isa, threads: config.threads) else { return }
    let suffix = "\(config.isa.rawValue), \(config.threads) thread(s)"

    // Quantize kernels: weights 4096 x 4096, activations 256 x 4096.
    for mode in QuantizationMode.allCases {
        Benchmark("quantize weights \(mode.rawValue) 4096x4096 (\(suffix))") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try backend.quantize(weights: w, mode: mode)) }
        }
    }
    Benchmark("quantize activations int8 256x4096 (\(suffix))") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try backend.quantize(activations: x)) }
    }

    // Packed matmul per mode (activations quantized inside the call), and OpenBLAS.
    OpenBLASLinear.setThreads(config.threads)
    for (m, k) in shapes {
        let wm = Tensor(shape: [m, k]) { _ in rng.signedUnit() }
        let xm = Tensor(shape: [256, k]) { _ in rng.signedUnit() }
        var y = [Float](repeating: 0, count: 256 * m)
        for mode in QuantizationMode.allCases {
            guard let q = try? backend.quantize(weights: wm, mode: mode),
                  let layer = try? PackedLinear(q, backend: backend, maxTokens: 256) else { continue }
            for n in tokens {
                Benchmark("matmul \(mode.rawValue) M=\(m) K=\(k) N=\(n) (\(suffix))",
                          configuration: .init(scalingFactor: .one)) { benchmark in
                    for _ in benchmark.scaledIterations {
                        try xm.scalars.withUnsafeBufferPointer { xp in
                            try y.withUnsafeMutableBufferPointer { yp in try layer(xp, tokens: n, into: yp) }
                        }
                    }
                }
            }
        }
        for n in tokens {
            Benchmark("matmul f32 OpenBLAS M=\(m) K=\(k) N=\(n) (\(config.threads) thread(s))") { benchmark in
                for _ in benchmark.scaledIterations {
                    xm.scalars.withUnsafeBufferPointer { xp in
                        wm.scalars.withUnsafeBufferPointer { wp in
                            y.withUnsafeMutableBufferPointer { yp in
                                OpenBLASLinear.run(x: xp.baseAddress!, weights: wp.baseAddress!, tokens: n, outputs: m,
                                                   inputs: k, into: yp.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
    }
}
