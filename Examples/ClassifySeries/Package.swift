// swift-tools-version: 6.1
//
// A package that depends on LowBit by version, as a user's would. Examples/run.sh builds and
// runs it in CI against a tagged clone of this repository (LOWBIT_URL); set LOWBIT_URL to
// LowBit's repository (a git URL with a version tag) to build it elsewhere.
import PackageDescription
import Foundation

let lowBit = ProcessInfo.processInfo.environment["LOWBIT_URL"] ?? "https://github.com/lowbit/lowbit.git"

let package = Package(
    name: "ClassifySeries",
    dependencies: [.package(url: lowBit, from: "0.1.0")],
    targets: [
        .executableTarget(name: "ClassifySeries", dependencies: [.product(name: "LowBit", package: "lowbit")]),
    ]
)
