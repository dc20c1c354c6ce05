import Foundation
import FuzzSupport
import LowBit

/// The model loaders, checkpoint and packed file, on any bytes: a model or a `LowBitError`.
/// The loaders read paths, so each input goes through a file in memory (/dev/shm).
let backend = try! KernelsBackend(threads: 1)
let path = "/dev/shm/lowbit-fuzz-\(getpid()).safetensors"

@_cdecl("FuzzModelFile_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    lowbit_fuzz_run(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}

func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: start, count: count)) else { fatalError("cannot write \(path)") }
    do { _ = try Checkpoint.load(from: path) } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    do { _ = try PackedClassifier.load(from: path, backend: backend) } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
