// swift-tools-version: 6.1
//
// LowBit: low-bit (binary, ternary, int4, int8) transformers on the CPU.
//
// The default manifest carries no unsafe flags, so a package can depend on LowBit by
// version. The C kernels pick their ISA at run time (per-region target attributes, no
// -mavx2 / -march), and take threads from the OpenMP runtime by calling its entry points
// (libomp, linked by name below) rather than compiling with -fopenmp.
// System packages (Debian): libopenblas-dev, libomp-dev; with the MPI trait, libopenmpi-dev.
import PackageDescription

let package = Package(
    name: "LowBit",
    products: [
        .library(name: "LowBit", targets: ["LowBit"]),
        .executable(name: "lowbit", targets: ["lowbit"]),
        /// Data-parallel training over Open MPI; empty unless the package's MPI trait is on.
        .library(name: "LowBitMPI", targets: ["LowBitMPI"]),
    ],
    traits: [
        .trait(name: "MPI", description: "Build LowBitMPI and `lowbit train --distributed` against Open MPI (Debian: libopenmpi-dev)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // The trait list prunes a dependency that the local mirror does not carry.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        // `swift package generate-documentation --target LowBit` (Sources/LowBit/LowBit.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Public API
        .target(
            name: "LowBit",
            dependencies: ["LowBitKernels", "COpenBLAS"],
            resources: [.copy("Resources/JapaneseVowels")]
        ),
        .executableTarget(
            name: "lowbit",
            dependencies: ["LowBit", "LowBitKernels", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .target(name: "LowBitMPI", condition: .when(traits: ["MPI"]))],
            swiftSettings: [.define("LOWBIT_MPI", .when(traits: ["MPI"]))]
        ),
        /// ProcessGroup over MPI: only with the MPI trait does it import Open MPI, so the
        /// default build needs no MPI at all.
        .target(
            name: "LowBitMPI",
            dependencies: ["LowBit", .target(name: "COpenMPI", condition: .when(traits: ["MPI"]))],
            swiftSettings: [.define("LOWBIT_MPI", .when(traits: ["MPI"]))]
        ),

        // MARK: - Implementation details
        /// C11 kernels: one public header (include/lowbit.h), one file per concern and ISA.
        .target(
            name: "LowBitKernels",
            path: "CSources/LowBitKernels",
            exclude: ["lowbit_kernels.def"],
            linkerSettings: [
                .linkedLibrary("omp5", .when(platforms: [.linux])),
                .linkedLibrary("m", .when(platforms: [.linux])),
            ]
        ),
        /// OpenBLAS through pkg-config (Debian: libopenblas-dev).
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        /// Open MPI through pkg-config (Debian: libopenmpi-dev), for the MPI trait.
        .systemLibrary(
            name: "COpenMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),

        // MARK: - Tests
        .testTarget(
            name: "LowBitTests",
            dependencies: ["LowBit", "LowBitKernels", .product(name: "PropertyBased", package: "swift-property-based")]
        ),

        // MARK: - Benchmarks (swift package benchmark)
        .executableTarget(
            name: "LowBitBenchmarks",
            dependencies: ["LowBit", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/LowBitBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
