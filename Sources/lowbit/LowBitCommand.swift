import ArgumentParser
import LowBit

@main
struct LowBitCommand: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "lowbit",
        abstract: "Low-bit (binary, ternary, int4, int8) transformers on the CPU.",
        discussion: """
            Environment: LOWBIT_BACKEND=reference|blas|kernels (default kernels), \
            LOWBIT_ISA=scalar|avx2|avx512|avx512vnni|neon|neondot (default: the fastest this CPU runs), \
            LOWBIT_THREADS=N (default: every CPU).
            """,
        version: version,
        subcommands: [Info.self, Demo.self, Train.self, Eval.self, Calibrate.self, Bench.self, Generate.self]
    )
}

/// The environment's configuration. A bad value throws a LowBitError, which the argument
/// parser prints as "Error: ..." before exiting with status 1.
func runtimeConfiguration() throws -> RuntimeConfiguration {
    try RuntimeConfiguration.fromEnvironment()
}
