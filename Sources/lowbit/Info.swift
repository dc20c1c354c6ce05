import ArgumentParser
import LowBit
#if LOWBIT_MPI
import LowBitMPI
#endif

/// `lowbit info`: what this machine and build will run.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version, CPU features, kernel ISAs, threads and backend.")

    func run() throws {
        let config = try runtimeConfiguration()
        print("lowbit \(LowBitCommand.version)")
        print("cpu features:   \(ISA.cpuFeatures)")
        print("ISAs supported: \(ISA.supported.map(\.rawValue).joined(separator: " ")) (best: \(ISA.best.rawValue))")
        print("ISA selected:   \(config.isa.rawValue)")
        print("threads:        \(config.threads) of \(RuntimeConfiguration.cpuCount) CPUs"
              + (RuntimeConfiguration.threadingAvailable ? " (OpenMP runtime)" : " (serial build)"))
        print("backend:        \(config.backend.rawValue)")
        let blas = OpenBLASLinear.core
        print("OpenBLAS:       \(blas.name) kernels" + (blas.selectedByLowBit ? " (selected by LowBit: OpenBLAS took this CPU for a Prescott)" : ""))
        #if LOWBIT_MPI
        print("distributed:    train --distributed under mpirun (\(MPIProcessGroup.libraryVersion))")
        #else
        print("distributed:    not in this build (swift build --traits MPI, with Open MPI installed)")
        #endif
        let kernels = try KernelsBackend(isa: config.isa, threads: config.threads)
        print("kernels:")
        for (name, isa) in kernels.kernelISAs {
            print("  \(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(isa.rawValue)")
        }
    }
}
