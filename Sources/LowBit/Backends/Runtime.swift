import Foundation
import LowBitKernels

/// What the environment selects: `LOWBIT_BACKEND` (reference | blas | kernels, default
/// kernels), `LOWBIT_ISA` (default: the fastest the CPU runs) and `LOWBIT_THREADS`
/// (default: every online CPU). A bad value is an error, never a silent fallback.
public struct RuntimeConfiguration: Sendable, Equatable {
    /// The implementation ``RuntimeConfiguration/makeBackend()`` creates (`LOWBIT_BACKEND`).
    public var backend: BackendKind
    /// The instruction set of the kernels backend (`LOWBIT_ISA`); the others ignore it.
    public var isa: ISA
    /// Threads for the kernels and OpenBLAS (`LOWBIT_THREADS`); the reference backend ignores it.
    public var threads: Int

    /// Creates a configuration; the defaults are those of an empty environment: the kernels,
    /// the fastest ISA this CPU runs, one thread per online CPU. Nothing is validated here.
    public init(backend: BackendKind = .kernels, isa: ISA = .best, threads: Int = RuntimeConfiguration.cpuCount) {
        self.backend = backend
        self.isa = isa
        self.threads = threads
    }

    /// The number of online CPUs (at least 1): the default thread count.
    public static var cpuCount: Int { min(max(Int(lowbit_cpu_count()), 1), 1024) }

    /// Whether the kernels can run threads (the OpenMP runtime is linked).
    public static var threadingAvailable: Bool { lowbit_threading_available() != 0 }

    /// Reads the three variables from `environment`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RuntimeConfiguration {
        var config = RuntimeConfiguration()
        if let b = environment["LOWBIT_BACKEND"] { config.backend = try BackendKind(parsing: b) }
        if let i = environment["LOWBIT_ISA"] { config.isa = try ISA(parsing: i) }
        if let t = environment["LOWBIT_THREADS"] { config.threads = try parseThreads(t, variable: "LOWBIT_THREADS") }
        return config
    }

    /// A thread count from 1 to 1024.
    public static func parseThreads(_ text: String, variable: String) throws -> Int {
        guard let n = Int(text.trimmingCharacters(in: .whitespaces)), (1...1024).contains(n) else {
            throw LowBitError.invalidEnvironment(variable: variable, value: text, expected: "a whole number from 1 to 1024")
        }
        return n
    }

    /// The backend this configuration names.
    public func makeBackend() throws -> any Backend {
        switch backend {
        case .reference: ReferenceBackend()
        case .blas: BLASBackend(threads: threads)
        case .kernels: try KernelsBackend(isa: isa, threads: threads)
        }
    }
}
