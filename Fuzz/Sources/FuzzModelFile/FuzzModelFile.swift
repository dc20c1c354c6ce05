import Foundation
import LowBit

/// The model loaders, checkpoint and packed file, on any bytes: a model or a `LowBitError`.
/// The loaders read paths, so each input goes through a file in memory (/dev/shm).
nonisolated(unsafe) let backend = try! KernelsBackend(threads: 1)
let path = "/dev/shm/lowbit-fuzz-\(getpid()).safetensors"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: start, count: count)) else { fatalError("cannot write \(path)") }
    do { _ = try Checkpoint.load(from: path) } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    do { _ = try PackedClassifier.load(from: path, backend: backend) } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
