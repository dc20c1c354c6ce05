// swift-tools-version: 6.1
//
// libFuzzer targets for LowBit's readers: a package of its own, so that the main package's
// builds never see -sanitize=fuzzer. Build and run with Fuzz/run.sh (Linux).
import PackageDescription

let package = Package(
    name: "LowBitFuzz",
    dependencies: [.package(name: "LowBit", path: "..")],
    targets: [.target(name: "FuzzSupport")] + ["FuzzTS", "FuzzCSV", "FuzzSafeTensors", "FuzzModelFile"].map {
        .executableTarget(name: $0, dependencies: ["FuzzSupport", .product(name: "LowBit", package: "LowBit")])
    }
)
